"""DAGs the operator tests run for real with ``airflow dags test``; settings come from ZD_TEST_* variables."""

from __future__ import annotations

import datetime
import os
from typing import Any

from airflow.sdk import DAG
from airflow.timetables.interval import CronDataIntervalTimetable

from airflow_provider_zendrive.operators.zendrive import ZenDriveStatsOperator

START = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)


def _task(dag: DAG) -> ZenDriveStatsOperator:
    extra: dict[str, Any] = {}  # strings from the environment: the operator checks them
    for name in (
        "output_path",
        "output_format",
        "sql_conn_id",
        "table",
        "revisions_table",
        "from_date",
        "to_date",
    ):
        value = os.environ.get(f"ZD_TEST_{name.upper()}")
        if value:
            extra[name] = value
    return ZenDriveStatsOperator(
        task_id="pull",
        dag=dag,
        zendrive_conn_id="zendrive_test",
        retries=int(os.environ.get("ZD_TEST_RETRIES", "0")),
        retry_delay=datetime.timedelta(seconds=0),
        **extra,
    )


# Airflow 3's default for "@daily": CronTriggerTimetable, an empty data interval.
with DAG("zendrive_stats_daily", schedule="@daily", start_date=START, catchup=False) as daily_dag:
    _task(daily_dag)

# The old [start, end) interval.
with DAG(
    "zendrive_stats_interval",
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=START,
    catchup=False,
) as interval_dag:
    _task(interval_dag)

# One run writes the same window to SQLite and to PostgreSQL (connections zd_sqlite / zd_pg).
with DAG("zendrive_stats_tables", schedule=None, start_date=START, catchup=False) as tables_dag:
    for conn_id in ("zd_sqlite", "zd_pg"):
        ZenDriveStatsOperator(
            task_id=f"pull_{conn_id}",
            zendrive_conn_id="zendrive_test",
            from_date=os.environ.get("ZD_TEST_FROM_DATE"),
            to_date=os.environ.get("ZD_TEST_TO_DATE"),
            sql_conn_id=conn_id,
        )
