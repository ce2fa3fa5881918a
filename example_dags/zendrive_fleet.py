"""
Fleet billing: yesterday's usage of many ZenDRIVE services, one connection each, into one warehouse table.

Every day at 00:00 UTC this DAG maps one pull task over a list of ZenDRIVE connection ids (dynamic task
mapping): each mapped task pulls the UTC day before the run's logical date for its service and upserts the
row into ``zendrive_daily_usage`` on ``zendrive_warehouse``. Rows are keyed by ``(service_id, date)``, so the
services never overwrite each other, and the table is the one ``zendrive_daily_billing`` writes.

**What it needs**

* one ZenDRIVE connection per service (access key as login, secret key as password);
* the list of their ids, from the first of: the ``conn_ids`` param of the run (trigger with
  ``{"conn_ids": ["zendrive_acme", "zendrive_globex"]}``), the Variable ``zendrive_fleet_conn_ids`` (a JSON
  list, e.g. ``AIRFLOW_VAR_ZENDRIVE_FLEET_CONN_IDS='["zendrive_acme", "zendrive_globex"]'``), or
  ``["zendrive_default"]``;
* the SQL connection ``zendrive_warehouse`` (any common-sql database);
* the pool ``zendrive_api``: all mapped tasks run in it, so its slots bound how many services are pulled at
  once, however long the list grows.

Each mapped task is labelled with its connection id in the UI. Retries, backoff and the Asset updated
(``x-zendrive-table://zendrive_warehouse/zendrive_daily_usage``) are as in ``zendrive_daily_billing``.
Environment variables read when the file is parsed: ``ZENDRIVE_WAREHOUSE_CONN_ID`` and ``ZENDRIVE_POOL``.
"""

from __future__ import annotations

import datetime
import os
from typing import Any

from airflow.sdk import DAG, Param, Variable, task

from airflow_provider_zendrive.operators.zendrive import ZenDriveStatsOperator, table_asset

WAREHOUSE_CONN_ID = os.environ.get("ZENDRIVE_WAREHOUSE_CONN_ID", "zendrive_warehouse")
ZENDRIVE_POOL = os.environ.get("ZENDRIVE_POOL", "zendrive_api")
TABLE = "zendrive_daily_usage"
FLEET_VARIABLE = "zendrive_fleet_conn_ids"
ZENDRIVE_DAILY_USAGE = table_asset(WAREHOUSE_CONN_ID, TABLE)

with DAG(
    dag_id="zendrive_fleet",
    description="Yesterday's ZenDRIVE usage of every service in the fleet, into zendrive_daily_usage.",
    schedule="@daily",
    start_date=datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC),
    catchup=False,
    max_active_runs=2,
    params={
        "conn_ids": Param(
            None,
            type=["null", "array"],
            items={"type": "string", "minLength": 1},
            uniqueItems=True,
            description=f"ZenDRIVE connection ids; empty: the Variable {FLEET_VARIABLE}.",
        ),
    },
    default_args={
        "retries": 4,
        "retry_delay": datetime.timedelta(minutes=1),
        "retry_exponential_backoff": True,  # doubling waits; Airflow 3.1 takes a bool only
        "max_retry_delay": datetime.timedelta(minutes=30),
    },
    tags=["zendrive", "billing"],
    doc_md=__doc__,
) as dag:
    # [START zendrive_fleet_conn_ids]
    @task
    def fleet_conn_ids(params: dict[str, Any]) -> list[str]:
        """The ZenDRIVE connection ids to pull: the param, else the Variable, else ``zendrive_default``."""
        from airflow.providers.common.compat.sdk import AirflowFailException  # 3.1 and later

        conn_ids = params.get("conn_ids") or Variable.get(FLEET_VARIABLE, default=None, deserialize_json=True)
        conn_ids = conn_ids or ["zendrive_default"]
        if not isinstance(conn_ids, list) or not all(isinstance(c, str) and c for c in conn_ids):
            raise AirflowFailException(f"The fleet must be a JSON list of connection ids, got {conn_ids!r}.")
        if len(set(conn_ids)) != len(conn_ids):
            raise AirflowFailException(f"The fleet lists a connection id twice: {conn_ids!r}.")
        return conn_ids

    # [END zendrive_fleet_conn_ids]

    # [START zendrive_fleet_mapped_pull]
    ZenDriveStatsOperator.partial(
        task_id="pull_daily_usage",
        sql_conn_id=WAREHOUSE_CONN_ID,
        table=TABLE,
        pool=ZENDRIVE_POOL,  # the pool's slots bound how many services are pulled at once
        outlets=[ZENDRIVE_DAILY_USAGE],
        map_index_template="{{ task.zendrive_conn_id }}",
    ).expand(zendrive_conn_id=fleet_conn_ids())
    # [END zendrive_fleet_mapped_pull]
