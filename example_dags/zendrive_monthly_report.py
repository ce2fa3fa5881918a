"""
Monthly report: the previous calendar month's ZenDRIVE usage as a CSV file, reconciled before anyone bills.

On the 1st of every month (00:00 UTC) this DAG

1. waits until the ZenDRIVE service is active (a suspended service answers 403): a deferrable sensor, so the
   wait holds no worker slot;
2. pulls the previous calendar month in one call and writes it as a CSV file, one row per day (days without
   traffic as zero rows), to ``<report_base>/zendrive-usage-YYYY-MM.csv``;
3. reconciles three sources and fails the run on any difference: the month's daily rows (what the CSV holds:
   the pull task reads the file back and compares it before it succeeds), the API's summary totals for the
   month, and the rows the daily billing DAG (``zendrive_daily_billing``) wrote to the warehouse table for that
   month, day by day;
4. writes a self-contained HTML report next to the CSV (``zendrive-usage-YYYY-MM.html``: the month's totals,
   the reconciliation result, bar charts of GB sent and requests per day as inline SVG, no JavaScript, so it
   renders offline and in mail clients) and, with ``ZENDRIVE_REPORT_TO`` (or ``ZENDRIVE_SUMMARY_TO``) set,
   emails it through the official SMTP provider (connection ``smtp_default``), also when the reconciliation
   failed (the report says why);
5. logs a human summary: requests, success rate, and the volume sent in GB and GiB.

**What it needs**

* the ZenDRIVE connection ``zendrive_default`` and the pool ``zendrive_api`` (as ``zendrive_daily_billing``);
* the SQL connection ``zendrive_warehouse`` holding the table ``zendrive_daily_usage`` filled by
  ``zendrive_daily_billing`` for every day of the month (turn the ``check_warehouse`` param off to skip that
  check);
* a place for the report: ``report_base`` is a local folder (default ``$AIRFLOW_HOME/zendrive-reports``) or
  any URI ``ObjectStoragePath`` understands (``s3://bucket/zendrive``, ``gs://...``), with the connection in
  ``ZENDRIVE_REPORT_CONN_ID`` (e.g. ``aws_default``) when the storage needs one. A deployment sets the
  default with the ``ZENDRIVE_REPORT_BASE`` environment variable. No task opens a file another task wrote
  (data passes through XCom), so the DAG runs on any number of workers; with more than one machine, point
  ``ZENDRIVE_REPORT_BASE`` at storage people can reach (``s3://...``), or the CSV stays on whichever worker
  ran ``pull_month``.

**Params** (set them when triggering by hand): ``month`` (``YYYY-MM``; empty: the month before the run's
logical date), ``report_base`` and ``check_warehouse``.

Environment variables read when the file is parsed: ``ZENDRIVE_CONN_ID``, ``ZENDRIVE_WAREHOUSE_CONN_ID``,
``ZENDRIVE_POOL``, ``ZENDRIVE_REPORT_BASE``, ``ZENDRIVE_REPORT_CONN_ID`` and ``ZENDRIVE_POKE_INTERVAL``
(seconds between checks while the service is suspended, default 300).
"""

from __future__ import annotations

import datetime
import os
from typing import Any

from airflow.sdk import DAG, Param, task

from airflow_provider_zendrive.operators.zendrive import ZenDriveStatsOperator
from airflow_provider_zendrive.reports import monthly_report_html, write_report
from airflow_provider_zendrive.sensors.zendrive import ZenDriveServiceActiveSensor

ZENDRIVE_CONN_ID = os.environ.get("ZENDRIVE_CONN_ID", "zendrive_default")
WAREHOUSE_CONN_ID = os.environ.get("ZENDRIVE_WAREHOUSE_CONN_ID", "zendrive_warehouse")
ZENDRIVE_POOL = os.environ.get("ZENDRIVE_POOL", "zendrive_api")
TABLE = "zendrive_daily_usage"
REPORT_BASE = os.environ.get("ZENDRIVE_REPORT_BASE") or os.path.join(
    os.environ.get("AIRFLOW_HOME", "~/airflow"), "zendrive-reports"
)
REPORT_CONN_ID = os.environ.get("ZENDRIVE_REPORT_CONN_ID") or None
POKE_INTERVAL = float(os.environ.get("ZENDRIVE_POKE_INTERVAL", "300"))
REPORT_TO = [
    address.strip()
    for address in (
        os.environ.get("ZENDRIVE_REPORT_TO") or os.environ.get("ZENDRIVE_SUMMARY_TO") or ""
    ).split(",")
    if address.strip()
]
REPORT_FROM = os.environ.get("ZENDRIVE_SUMMARY_FROM", "zendrive-billing@localhost")
SMTP_CONN_ID = os.environ.get("ZENDRIVE_SMTP_CONN_ID", "smtp_default")
#: The counters that add up over days (unique_ips does not).
COUNTERS = (
    "total_requests",
    "successful_requests",
    "client_errors",
    "auth_failures",
    "bytes_sent",
    "bytes_received",
)


def email_report(subject: str, html: str) -> None:
    """Send the HTML report as the body of an email, through the official SMTP provider."""
    from airflow.providers.smtp.hooks.smtp import SmtpHook

    with SmtpHook(smtp_conn_id=SMTP_CONN_ID) as smtp:
        smtp.send_email_smtp(to=REPORT_TO, from_email=REPORT_FROM, subject=subject, html_content=html)


with DAG(
    dag_id="zendrive_monthly_report",
    description="The previous month's ZenDRIVE usage as a CSV report, reconciled with the warehouse.",
    schedule="@monthly",  # 00:00 UTC on the 1st
    start_date=datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC),
    catchup=False,
    max_active_runs=1,
    params={
        "month": Param(
            None,
            type=["null", "string"],
            pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$",
            description="The month to report, YYYY-MM. Empty: the month before the run's logical date.",
        ),
        "report_base": Param(
            REPORT_BASE,
            type="string",
            minLength=1,
            description="A local folder or an object storage URI (s3://bucket/prefix, gs://..., ...).",
        ),
        "check_warehouse": Param(
            True,
            type="boolean",
            description="Also compare with the daily rows zendrive_daily_billing wrote to the warehouse.",
        ),
    },
    default_args={
        "retries": 3,
        "retry_delay": datetime.timedelta(minutes=2),
        "retry_exponential_backoff": True,  # doubling waits; Airflow 3.1 takes a bool only
        "max_retry_delay": datetime.timedelta(minutes=30),
    },
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
        """The month to report (``from``, ``to``, ``month``) and the URI of its CSV file (``path``)."""
        if params.get("month"):
            first = datetime.date.fromisoformat(f"{params['month']}-01")
        else:
            run_day = (logical_date or datetime.datetime.now(datetime.UTC)).date()
            first = (run_day.replace(day=1) - datetime.timedelta(days=1)).replace(day=1)
        last = (first + datetime.timedelta(days=31)).replace(day=1) - datetime.timedelta(days=1)
        base = str(params["report_base"]).rstrip("/")
        if "://" not in base:  # a local folder: an absolute file:// URI, readable by ObjectStoragePath
            base = os.path.abspath(os.path.expanduser(base))
            base = "file://" + base
        month = first.strftime("%Y-%m")
        return {
            "from": first.isoformat(),
            "to": last.isoformat(),
            "month": month,
            "path": f"{base}/zendrive-usage-{month}.csv",
        }

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
        """
        Check daily rows == API summary == warehouse rows for the month; fail the run on any difference.

        The stats come through XCom; the CSV at ``path`` is never opened here (``pull_month`` read it back and
        compared it before succeeding), so this task may run on another machine than the one that wrote it.

        :return: the month's totals, for XCom and for downstream tasks.
        """
        import logging

        from airflow.providers.common.compat.sdk import AirflowFailException  # 3.1 and later
        from airflow.sdk import BaseHook

        log = logging.getLogger("zendrive_monthly_report")
        first = datetime.date.fromisoformat(stats["from"])
        last = datetime.date.fromisoformat(stats["to"])
        days = [(first + datetime.timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]
        problems: list[str] = []

        # 1. The daily rows, as the CSV holds them: one per day, zeros for a day without traffic.
        zero = dict.fromkeys(COUNTERS, 0)
        daily = {row["date"]: {f: int(row[f]) for f in COUNTERS} for row in stats["daily"]}
        if not set(daily) <= set(days):
            problems.append(
                f"the API sent days outside {first}..{last}: {sorted(set(daily) - set(days))[:5]}"
            )
        csv_rows = {day: daily.get(day, zero) for day in days}
        csv_totals = {f: sum(row[f] for row in csv_rows.values()) for f in COUNTERS}

        # 2. The API's summary totals.
        for field in COUNTERS:
            if csv_totals[field] != stats["summary"][field]:
                problems.append(
                    f"{field}: the daily rows add up to {csv_totals[field]}, the API summary says "
                    f"{stats['summary'][field]}"
                )

        # 3. The warehouse table that zendrive_daily_billing fills day by day.
        warehouse_rows = 0
        if params["check_warehouse"]:
            hook = BaseHook.get_connection(WAREHOUSE_CONN_ID).get_hook()
            mark = hook.placeholder
            try:
                records = hook.get_records(
                    f"SELECT date, {', '.join(COUNTERS)} FROM {TABLE} "  # noqa: S608 - constant identifiers
                    f"WHERE service_id = {mark} AND date >= {mark} AND date <= {mark}",
                    parameters=(stats["service_id"], first.isoformat(), last.isoformat()),
                )
            except Exception as exc:
                if TABLE not in str(exc):
                    raise  # e.g. the database is unreachable: the task's retries apply
                # The table does not exist ("no such table", "does not exist"): retrying cannot help.
                raise AirflowFailException(
                    f"Cannot read the table {TABLE} on connection {WAREHOUSE_CONN_ID!r}: {exc}. Run (or "
                    "backfill) zendrive_daily_billing for the month first, or set the param check_warehouse "
                    "to false."
                ) from None
            table = {
                str(record[0])[:10]: dict(zip(COUNTERS, map(int, record[1:]), strict=True))
                for record in records
            }
            warehouse_rows = len(table)
            missing = [day for day in days if day not in table]
            if missing:
                problems.append(
                    f"the table {TABLE} has no row for {len(missing)} day(s) of the month ({', '.join(missing[:5])}"
                    f"{', ...' if len(missing) > 5 else ''}); backfill zendrive_daily_billing for them"
                )
            differing = [day for day in days if day in table and table[day] != csv_rows.get(day)]
            if differing:
                problems.append(
                    f"the table {TABLE} differs from the API on {len(differing)} day(s) "
                    f"({', '.join(differing[:5])}{', ...' if len(differing) > 5 else ''}); rerun "
                    "zendrive_daily_billing for them"
                )
        checked = f"{len(days)} daily rows == API summary" + (
            " == warehouse table" if params["check_warehouse"] else ""
        )

        # 4. The HTML report next to the CSV, and by email: written and sent by this task, whatever the outcome.
        month = first.strftime("%Y-%m")
        html = monthly_report_html(stats, month=month, reconciliation=problems, checked=checked)
        page = write_report(path.removesuffix(".csv") + ".html", html, conn_id=REPORT_CONN_ID)
        log.info("Wrote the HTML report %s.", page)
        if REPORT_TO:
            outcome = "reconciliation FAILED" if problems else "reconciled"
            email_report(f"ZenDRIVE usage report, service {stats['service_id']}, {month}: {outcome}", html)
            log.info("Emailed the report to %s.", ", ".join(REPORT_TO))

        if problems:
            raise AirflowFailException(
                f"ZenDRIVE reconciliation of service {stats['service_id']}, {first}..{last} failed:\n- "
                + "\n- ".join(problems)
            )

        total = csv_totals["total_requests"]
        sent = csv_totals["bytes_sent"]
        rate = csv_totals["successful_requests"] / total if total else None
        log.info(
            "ZenDRIVE usage of service %s in %s: %s requests, %s successful, %s GB (%s GiB) sent, "
            "%s GB received. Reconciled: %s. Report: %s",
            stats["service_id"],
            first.strftime("%B %Y"),
            f"{total:,}",
            "n/a (no requests)" if rate is None else f"{rate:.2%}",
            f"{sent / 1e9:,.1f}",
            f"{sent / 2**30:,.1f}",
            f"{csv_totals['bytes_received'] / 1e9:,.1f}",
            checked,
            path,
        )
        return {
            "service_id": stats["service_id"],
            "from": stats["from"],
            "to": stats["to"],
            **csv_totals,
            "success_rate": rate,
            "days": len(days),
            "warehouse_rows": warehouse_rows,
            "report": path,
            "html_report": page,
        }

    # [END zendrive_monthly_report_reconcile]

    wait_for_service >> window
    reconcile(pull_month.output, window["path"])
