"""The DAG the installed-wheel check deploys: wait for the service (deferred), then pull into a table and a CSV."""

from __future__ import annotations

import os

from airflow.sdk import DAG

from airflow_provider_zendrive.operators.zendrive import ZenDriveStatsOperator
from airflow_provider_zendrive.sensors.zendrive import ZenDriveServiceActiveSensor

with DAG("zendrive_install_check", schedule=None, catchup=False, tags=["zendrive"]):
    wait = ZenDriveServiceActiveSensor(task_id="wait_active", deferrable=True, poke_interval=5, timeout=300)
    pull = ZenDriveStatsOperator(
        task_id="pull",
        from_date=os.environ["ZENDRIVE_CHECK_FROM"],
        to_date=os.environ["ZENDRIVE_CHECK_TO"],
        output_path=os.environ["ZENDRIVE_CHECK_CSV"],
        sql_conn_id="zendrive_warehouse",
        table="zendrive_daily_usage",
    )
    wait >> pull
