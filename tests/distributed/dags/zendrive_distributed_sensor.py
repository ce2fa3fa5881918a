"""The distributed check's sensor DAG: wait for a suspended service (deferred to the triggerer), then pull."""

from __future__ import annotations

import os

from airflow.sdk import DAG

from airflow_provider_zendrive.operators.zendrive import ZenDriveStatsOperator
from airflow_provider_zendrive.sensors.zendrive import ZenDriveServiceActiveSensor

CONN_ID = "zendrive_sensor"

with DAG("zendrive_distributed_sensor", schedule=None, catchup=False, tags=["zendrive"]):
    wait = ZenDriveServiceActiveSensor(
        task_id="wait_active",
        zendrive_conn_id=CONN_ID,
        deferrable=True,
        poke_interval=5,
        timeout=180,
        pool="zendrive_api",  # a deferred sensor holds no slot while the triggerer polls
    )
    pull = ZenDriveStatsOperator(
        task_id="pull",
        zendrive_conn_id=CONN_ID,
        from_date="2026-05-01",
        to_date="2026-05-07",
        output_path=os.environ["ZENDRIVE_DISTRIBUTED_OUTPUT"],  # a folder every worker reaches
        pool="zendrive_api",
    )
    wait >> pull
