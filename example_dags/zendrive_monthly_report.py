"""
Monthly report: the previous calendar month's ZenDRIVE usage as a CSV file, reconciled before anyone bills.

On the 1st of every month (00:00 UTC) this DAG waits, deferred, until the ZenDRIVE service is active (a
suspended service answers 403); pulls the previous month in one call into
``<report_base>/zendrive-usage-YYYY-MM.csv`` (one row per day, zeros for days without traffic); reconciles the
daily rows, the API's summary and the warehouse rows ``zendrive_daily_billing`` wrote, day by day, failing the
run on any difference; and writes the HTML report next to the CSV, emailed when ``ZENDRIVE_REPORT_TO`` is set
(also when the reconciliation failed: the report says why).

**What it needs**: the ZenDRIVE connection ``zendrive_default`` and the pool ``zendrive_api`` (as
``zendrive_daily_billing``); the SQL connection ``zendrive_warehouse`` with the month in
``zendrive_daily_usage`` (or the param ``check_warehouse`` set to false); a local folder or any
``ObjectStoragePath`` URI for the reports (``s3://bucket/zd``: with several workers, storage people can reach).

**Params**: ``month`` (``YYYY-MM``; empty: the month before the run's logical date), ``report_base``,
``check_warehouse``.

**Environment variables**, read when the file is parsed:

* ``ZENDRIVE_CONN_ID``, ``ZENDRIVE_WAREHOUSE_CONN_ID``, ``ZENDRIVE_POOL``: the ids above;
* ``ZENDRIVE_REPORT_BASE``: the default ``report_base`` (default ``$AIRFLOW_HOME/zendrive-reports``), and
  ``ZENDRIVE_REPORT_CONN_ID``: its storage's connection, if it needs one (e.g. ``aws_default``);
* ``ZENDRIVE_REPORT_TO``: the recipients, comma-separated (unset: no email, else through the SMTP connection
  ``smtp_default``), and ``ZENDRIVE_SUMMARY_FROM``: the sender (default ``zendrive-billing@localhost``);
* ``ZENDRIVE_POKE_INTERVAL``: seconds between checks while the service is suspended (default 300).
"""

from __future__ import annotations

import datetime
import logging
import os
from typing import Any

from airflow.sdk import DAG, Param, get_current_context, task

from airflow_provider_zendrive import reports
from airflow_provider_zendrive.hooks.zendrive import UsageStats
from airflow_provider_zendrive.notifications.zendrive import ZenDriveEmailNotifier
from airflow_provider_zendrive.operators.zendrive import ZenDriveStatsOperator
from airflow_provider_zendrive.sensors.zendrive import ZenDriveServiceActiveSensor

ZENDRIVE_CONN_ID = os.environ.get("ZENDRIVE_CONN_ID", "zendrive_default")
WAREHOUSE_CONN_ID = os.environ.get("ZENDRIVE_WAREHOUSE_CONN_ID", "zendrive_warehouse")
ZENDRIVE_POOL = os.environ.get("ZENDRIVE_POOL", "zendrive_api")
TABLE = "zendrive_daily_usage"
REPORT_BASE = os.environ.get("ZENDRIVE_REPORT_BASE") or os.path.join(
    os.environ.get("AIRFLOW_HOME", "~/airflow"), "zendrive-reports"
)
REPORT_CONN_ID = os.environ.get("ZENDRIVE_REPORT_CONN_ID") or None
REPORT_TO = [a.strip() for a in os.environ.get("ZENDRIVE_REPORT_TO", "").split(",") if a.strip()]
REPORT_FROM = os.environ.get("ZENDRIVE_SUMMARY_FROM", "zendrive-billing@localhost")
POKE_INTERVAL = float(os.environ.get("ZENDRIVE_POKE_INTERVAL", "300"))

with DAG(
    dag_id="zendrive_monthly_report",
    description="The previous month's ZenDRIVE usage as a CSV report, reconciled with the warehouse.",
    schedule="@monthly",  # 00:00 UTC on the 1st
    start_date=datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC),
    catchup=False,
    max_active_runs=1,
    params={
        "month": Param(None, type=["null", "string"], pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$"),
        "report_base": Param(REPORT_BASE, type="string", minLength=1),
        "check_warehouse": Param(True, type="boolean"),
    },
    default_args={"retries": 3, "retry_delay": datetime.timedelta(minutes=2)},
    tags=["zendrive", "billing", "report"],
    doc_md=__doc__,
) as dag:
    # [START zendrive_monthly_report_sensor]
    wait_for_service = ZenDriveServiceActiveSensor(
        task_id="wait_for_service",
        zendrive_conn_id=ZENDRIVE_CONN_ID,
        deferrable=True,  # polls from the triggerer; no worker slot is held while the service is suspended
        poke_interval=POKE_INTERVAL,
        timeout=datetime.timedelta(days=2).total_seconds(),
        pool=ZENDRIVE_POOL,
    )
    # [END zendrive_monthly_report_sensor]

    @task(multiple_outputs=True)
    def report_window(
        params: dict[str, Any], logical_date: datetime.datetime | None = None
    ) -> dict[str, str]:
        """The month to report (``from``, ``to``) and the URI of its CSV file (``path``)."""
        month = reports.ReportMonth.of_run(params["month"], logical_date)  # no logical date: by hand
        path = month.report_uri(params["report_base"])
        return {"from": month.first.isoformat(), "to": month.last.isoformat(), "path": path}

    window = report_window()

    # [START zendrive_monthly_report_pull]
    pull_month = ZenDriveStatsOperator(
        task_id="pull_month",
        zendrive_conn_id=ZENDRIVE_CONN_ID,
        from_date=window["from"],
        to_date=window["to"],
        output_path=window["path"],
        output_format="csv",
        output_conn_id=REPORT_CONN_ID,
        pool=ZENDRIVE_POOL,
    )
    # [END zendrive_monthly_report_pull]

    # [START zendrive_monthly_report_reconcile]
    @task
    def reconcile(stats: UsageStats, path: str, params: dict[str, Any]) -> dict[str, Any]:
        """Daily rows == API summary == warehouse rows, or fail; the report is written (and sent) anyway."""
        month = reports.ReportMonth.parse(stats["from"][:7])
        warehouse = None
        if params["check_warehouse"]:
            warehouse = reports.read_warehouse_month(WAREHOUSE_CONN_ID, TABLE, stats["service_id"], month)
        result = reports.reconcile_month(stats, warehouse, table=TABLE)
        html = reports.monthly_report_html(
            stats, month=month.name, reconciliation=result.problems, checked=result.checked
        )
        page = reports.write_report(path.removesuffix(".csv") + ".html", html, conn_id=REPORT_CONN_ID)
        if REPORT_TO:  # a text and an HTML part; the mailed charts are tables, which every mail client shows
            mail = reports.monthly_report_email(
                stats, month=month.name, reconciliation=result.problems, checked=result.checked
            )
            ZenDriveEmailNotifier(  # on the SMTP connection smtp_default
                to=REPORT_TO, from_email=REPORT_FROM, subject=mail.subject, text=mail.text, html=mail.html
            ).notify(get_current_context())
        result.raise_for_problems()
        logging.getLogger(__name__).info("%s Report: %s", result.summary(), path)
        return {**result.as_dict(), "report": path, "html_report": page}

    # [END zendrive_monthly_report_reconcile]

    wait_for_service >> window
    reconcile(pull_month.output, window["path"])  # type: ignore[arg-type]  # the XComArg is the stats at run time
