"""
Texts for people, built from the stats the hook returns: a run's summary, the monthly reconciliation and its
HTML report, and an atomic way to store a report anywhere the operator can write.

Nothing here talks to the API or holds a key; the example DAGs ``zendrive_daily_billing`` (the summary, by
email) and ``zendrive_monthly_report`` (the month reconciled, its report stored and emailed) use them.
"""

from __future__ import annotations

from airflow_provider_zendrive._outputs.reconcile import (
    Reconciliation,
    ReportMonth,
    read_warehouse_month,
    reconcile_month,
)
from airflow_provider_zendrive._outputs.report_html import monthly_report_html
from airflow_provider_zendrive._outputs.report_mail import ReportEmail, monthly_report_email
from airflow_provider_zendrive._outputs.summary import format_volume, usage_summary

__all__ = [
    "Reconciliation",
    "ReportEmail",
    "ReportMonth",
    "format_volume",
    "monthly_report_email",
    "monthly_report_html",
    "read_warehouse_month",
    "reconcile_month",
    "usage_summary",
    "write_report",
]


def write_report(uri: str, text: str, *, conn_id: str | None = None) -> str:
    """
    Store a report atomically (a temp file and a rename locally, one ``put`` on object storage) and read it
    back, as the operator writes its files.

    :param uri: an absolute local path, a ``file://`` URI or any URI ``ObjectStoragePath`` understands.
    :param text: the report (UTF-8).
    :param conn_id: the connection of the object store, if it needs one.
    :return: the URI written.
    """
    from airflow_provider_zendrive._outputs.files import refuse_relative, write_atomically

    refuse_relative(uri)
    return write_atomically(uri, text.encode("utf-8"), conn_id=conn_id)
