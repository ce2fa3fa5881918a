"""
Monthly report: the previous calendar month's ZenDRIVE usage as a CSV file, reconciled before anyone bills.

On the 1st of every month (00:00 UTC) this DAG

1. waits, deferred (no worker slot held), until the ZenDRIVE service is active (a suspended service answers
   403);
2. pulls the previous calendar month in one call into ``<report_base>/zendrive-usage-YYYY-MM.csv``, one row
   per day (days without traffic as zero rows), read back and compared before the task succeeds;
3. reconciles the month's daily rows, the API's summary totals and the rows ``zendrive_daily_billing`` wrote
   to the warehouse table, day by day, and fails the run on any difference;
4. writes the HTML report next to the CSV (``zendrive-usage-YYYY-MM.html``) and, when ``ZENDRIVE_REPORT_TO``
   is set, emails it, also when the reconciliation failed (the report says why).

**What it needs**

* the ZenDRIVE connection ``zendrive_default`` and the pool ``zendrive_api`` (as ``zendrive_daily_billing``);
* the SQL connection ``zendrive_warehouse`` with the table ``zendrive_daily_usage`` filled by
  ``zendrive_daily_billing`` for every day of the month (or set the param ``check_warehouse`` to false);
* a place for the reports: a local folder or any URI ``ObjectStoragePath`` understands (``s3://bucket/zd``).
  No task opens a file another task wrote, so the DAG runs on any number of workers; with more than one
  machine, use storage people can reach.

**Params**: ``month`` (``YYYY-MM``; empty: the month before the run's logical date), ``report_base`` and
``check_warehouse``.

**Environment variables**, read when the file is parsed:

* ``ZENDRIVE_CONN_ID``, ``ZENDRIVE_WAREHOUSE_CONN_ID``, ``ZENDRIVE_POOL``: the ids above;
* ``ZENDRIVE_REPORT_BASE``: the default ``report_base`` (default ``$AIRFLOW_HOME/zendrive-reports``);
* ``ZENDRIVE_REPORT_CONN_ID``: the object storage's connection, when it needs one (e.g. ``aws_default``);
* ``ZENDRIVE_REPORT_TO``: the report's recipients, comma-separated (unset: no email);
* ``ZENDRIVE_SUMMARY_FROM`` and ``ZENDRIVE_SMTP_CONN_ID``: sender and SMTP connection, as in
  ``zendrive_daily_billing`` (defaults ``zendrive-billing@localhost`` and ``smtp_default``);
* ``ZENDRIVE_POKE_INTERVAL``: seconds between checks while the service is suspended (default 300).
"""

from __future__ import annotations

import datetime
import logging
import os
from typing import Any

from airflow.sdk import DAG, Param, task

from airflow_provider_zendrive.operators.zendrive import ZenDriveStatsOperator
from airflow_provider_zendrive.reports import (
    ReportMonth,
    monthly_report_html,
    read_warehouse_month,
    reconcile_month,
    write_report,
)
from airflow_provider_zendrive.sensors.zendrive import ZenDriveServiceActiveSensor

ZENDRIVE_CONN_ID = os.environ.get("ZENDRIVE_CONN_ID", "zendrive_default")
WAREHOUSE_CONN_ID = os.environ.get("ZENDRIVE_WAREHOUSE_CONN_ID", "zendrive_warehouse")
ZENDRIVE_POOL = os.environ.get("ZENDRIVE_POOL", "zendrive_api")
TABLE = "zendrive_daily_usage"
AIRFLOW_HOME = os.environ.get("AIRFLOW_HOME", "~/airflow")
REPORT_BASE = os.environ.get("ZENDRIVE_REPORT_BASE") or os.path.join(AIRFLOW_HOME, "zendrive-reports")
REPORT_CONN_ID = os.environ.get("ZENDRIVE_REPORT_CONN_ID") or None
REPORT_TO = [a.strip() for a in os.environ.get("ZENDRIVE_REPORT_TO", "").split(",") if a.strip()]
REPORT_FROM = os.environ.get("ZENDRIVE_SUMMARY_FROM", "zendrive-billing@localhost")
SMTP_CONN_ID = os.environ.get("ZENDRIVE_SMTP_CONN_ID", "smtp_default")
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
        run_day = (logical_date or datetime.datetime.now(datetime.UTC)).date()  # None: triggered by hand
        month = ReportMonth.parse(params["month"]) if params["month"] else ReportMonth.before(run_day)
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
    def reconcile(stats: dict[str, Any], path: str, params: dict[str, Any]) -> dict[str, Any]:
        """Daily rows == API summary == warehouse rows, or fail; the HTML report is written (and sent) anyway."""
        month = ReportMonth.parse(stats["from"][:7])
        warehouse = None
        if params["check_warehouse"]:
            warehouse = read_warehouse_month(WAREHOUSE_CONN_ID, TABLE, stats["service_id"], month)
        result = reconcile_month(stats, warehouse, table=TABLE)
        html = monthly_report_html(
            stats, month=month.name, reconciliation=result.problems, checked=result.checked
        )
        page = write_report(path.removesuffix(".csv") + ".html", html, conn_id=REPORT_CONN_ID)
        if REPORT_TO:
            from airflow.providers.smtp.hooks.smtp import SmtpHook

            outcome = "reconciled" if result.ok else "reconciliation FAILED"
            subject = f"ZenDRIVE usage report, service {result.service_id}, {month.name}: {outcome}"
            with SmtpHook(smtp_conn_id=SMTP_CONN_ID) as smtp:
                smtp.send_email_smtp(to=REPORT_TO, from_email=REPORT_FROM, subject=subject, html_content=html)
        result.raise_for_problems()
        logging.getLogger(__name__).info("%s Report: %s", result.summary(), path)
        return {**result.as_dict(), "report": path, "html_report": page}

    # [END zendrive_monthly_report_reconcile]

    wait_for_service >> window
    reconcile(pull_month.output, window["path"])
