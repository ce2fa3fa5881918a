"""
History: load any range of past ZenDRIVE usage into the warehouse table, from one task.

Trigger it by hand with the params ``from`` and ``to`` (``YYYY-MM-DD``; ``to`` defaults to yesterday, UTC). One
task pulls the whole range and upserts one row per day into ``zendrive_daily_usage`` on
``zendrive_warehouse``, the table ``zendrive_daily_billing`` fills every day, keyed by ``(service_id, date)``.

**Why not a backfill.** ``airflow backfill create`` over a year of ``zendrive_daily_billing`` makes 365 task
runs and 365 API requests against the key's rate limit. This DAG asks for up to 366 days per request, so a
year is one request and three years are three, from one task run (``docs/benchmarks.md`` compares both on
the same range). The hook splits the range into 366-day windows, checks each answer against its window and
merges them exactly; the upsert runs in one transaction, so a failed run leaves the table as it was.

**Idempotent.** Running it again for the same range changes nothing: the same rows are upserted, and the
table's asset event says ``"revised": 0``. When the vendor's numbers did change, each revised day is logged
with its old and new values.

**Limits.** A range is at most 3,660 days (ten requests) unless ``max_pull_days`` is raised below: a longer
one is almost always a typo (``1026-05-01``). ``from`` must not be after ``to``; both are checked before any
request is sent.

It needs what ``zendrive_daily_billing`` needs: the ZenDRIVE connection ``zendrive_default``, the SQL
connection ``zendrive_warehouse`` and the pool ``zendrive_api``. Environment variables read when the file is
parsed: ``ZENDRIVE_CONN_ID``, ``ZENDRIVE_WAREHOUSE_CONN_ID`` and ``ZENDRIVE_POOL``.
"""

from __future__ import annotations

import datetime
import os
from typing import Any

from airflow.sdk import DAG, Param, task

from airflow_provider_zendrive.operators.zendrive import ZenDriveStatsOperator, table_asset

ZENDRIVE_CONN_ID = os.environ.get("ZENDRIVE_CONN_ID", "zendrive_default")
WAREHOUSE_CONN_ID = os.environ.get("ZENDRIVE_WAREHOUSE_CONN_ID", "zendrive_warehouse")
ZENDRIVE_POOL = os.environ.get("ZENDRIVE_POOL", "zendrive_api")
TABLE = "zendrive_daily_usage"
#: The audit trail: one row per counter value a later pull changed (see docs/guides/operator.rst).
REVISIONS_TABLE = "zendrive_usage_revisions"
DATE_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"

# [START zendrive_history]
with DAG(
    dag_id="zendrive_history",
    description="Load a range of past ZenDRIVE usage into zendrive_daily_usage, one request per 366 days.",
    schedule=None,  # manual only: trigger with {"from": "2024-01-01", "to": "2026-10-31"}
    start_date=datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC),
    catchup=False,
    max_active_runs=1,
    params={
        "from": Param(
            type="string",
            pattern=DATE_PATTERN,
            description="The first day to load, YYYY-MM-DD (UTC).",
        ),
        "to": Param(
            None,
            type=["null", "string"],
            pattern=DATE_PATTERN,
            description="The last day to load, YYYY-MM-DD (UTC). Empty: yesterday.",
        ),
    },
    default_args={
        "retries": 3,
        "retry_delay": datetime.timedelta(minutes=1),
        "retry_exponential_backoff": True,  # doubling waits; Airflow 3.1 takes a bool only
        "max_retry_delay": datetime.timedelta(minutes=30),
    },
    tags=["zendrive", "billing", "history"],
    doc_md=__doc__,
) as dag:

    @task(multiple_outputs=True)
    def history_window(params: dict[str, Any]) -> dict[str, str]:
        """The range to load: the params, with ``to`` defaulting to yesterday (UTC) when the task runs."""
        yesterday = datetime.datetime.now(datetime.UTC).date() - datetime.timedelta(days=1)
        return {"from": params["from"], "to": params.get("to") or yesterday.isoformat()}

    window = history_window()

    ZenDriveStatsOperator(
        task_id="load_history",
        zendrive_conn_id=ZENDRIVE_CONN_ID,
        from_date=window["from"],
        to_date=window["to"],
        sql_conn_id=WAREHOUSE_CONN_ID,
        table=TABLE,
        revisions_table=REVISIONS_TABLE,
        pool=ZENDRIVE_POOL,
        outlets=[table_asset(WAREHOUSE_CONN_ID, TABLE)],
        do_xcom_push=False,  # years of daily rows belong in the table, not in the metadata DB
    )
# [END zendrive_history]
