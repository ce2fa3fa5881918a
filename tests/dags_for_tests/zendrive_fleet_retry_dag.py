"""
A fleet DAG the batch tests run for real with ``airflow dags test``: ``zendrive_fleet``'s pull over batches,
with one retry after 1 s (the example waits a minute), so a test sees a failed batch retried. The services come
from the run's conf (``{"batches": [[conn ids], ...]}``); the warehouse is the connection ``zd_db``.
"""

from __future__ import annotations

import datetime
from typing import Any

from airflow.sdk import DAG, task

from airflow_provider_zendrive.operators.zendrive import ZenDriveFleetStatsOperator

with DAG(
    "zendrive_fleet_retry",
    schedule=None,
    start_date=datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC),
    catchup=False,
    params={"batches": []},
):

    @task
    def batches(**context: Any) -> list[list[str]]:
        return list(context["params"]["batches"])

    ZenDriveFleetStatsOperator.partial(
        task_id="pull",
        from_date="2026-05-01",
        to_date="2026-05-01",
        sql_conn_id="zd_db",
        revisions_table="zendrive_usage_revisions",
        retries=1,
        retry_delay=datetime.timedelta(seconds=1),
        map_index_template="{{ task.conn_ids[0] }}..{{ task.conn_ids[-1] }}",
    ).expand(conn_ids=batches())
