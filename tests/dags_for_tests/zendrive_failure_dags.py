"""
DAGs the failure tests run for real with ``airflow dags test``; paths and dates come from ZD_TEST_* variables.

Every table output goes to the SQL connection ``zd_db``: SQLite or PostgreSQL, whichever ``AIRFLOW_CONN_ZD_DB``
names. No task retries, so an injected failure fails the run.
"""

from __future__ import annotations

import datetime
import os
from typing import Any

from airflow.sdk import DAG

from airflow_provider_zendrive.operators.zendrive import ZenDriveStatsOperator

START = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)


def _setting(name: str) -> str | None:
    return os.environ.get(f"ZD_TEST_{name}") or None


def _pull(task_id: str, **kwargs: Any) -> ZenDriveStatsOperator:
    return ZenDriveStatsOperator(
        task_id=task_id,
        zendrive_conn_id="zendrive_test",
        from_date=_setting("FROM_DATE"),
        to_date=_setting("TO_DATE"),
        retries=0,
        **kwargs,
    )


# A table only: a trigger in the database makes the upsert fail mid-way.
with DAG("zendrive_fail_table", schedule=None, start_date=START, catchup=False):
    _pull("pull", sql_conn_id="zd_db")

# Two independent tasks: the final rename of a file fails; a file is written, then its table fails.
with DAG("zendrive_fail_file", schedule=None, start_date=START, catchup=False):
    _pull("file_only", output_path=_setting("FILE_PATH"))
    _pull("file_and_table", output_path=_setting("BOTH_PATH"), sql_conn_id="zd_db")

# A file and a table, both literal, so both are outlet Assets.
with DAG("zendrive_file_and_table", schedule=None, start_date=START, catchup=False):
    _pull("pull", output_path=_setting("FILE_PATH"), sql_conn_id="zd_db")
