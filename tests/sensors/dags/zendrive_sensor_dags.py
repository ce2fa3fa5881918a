"""DAGs that wait for the ZenDRIVE service with each sensor mode; run for real by tests/sensors/."""

from __future__ import annotations

from airflow.sdk import DAG

from airflow_provider_zendrive.sensors.zendrive import ZenDriveServiceActiveSensor

with DAG("zendrive_wait_deferrable", schedule=None, catchup=False):
    ZenDriveServiceActiveSensor(task_id="wait_active", deferrable=True, poke_interval=0.5, timeout=120)

with DAG("zendrive_wait_reschedule", schedule=None, catchup=False):
    ZenDriveServiceActiveSensor(task_id="wait_active", mode="reschedule", poke_interval=1, timeout=120)

with DAG("zendrive_wait_bad_keys", schedule=None, catchup=False):
    ZenDriveServiceActiveSensor(task_id="wait_active", deferrable=True, poke_interval=0.5, timeout=120)
