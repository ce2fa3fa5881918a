"""The sensor in real ``airflow dags test`` runs (which run deferred triggers inline)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from airflow_provider_zendrive.testing import DEMO_ACCESS_KEY, DEMO_SECRET_KEY, ZenDriveEmulator

if TYPE_CHECKING:
    from airflow_runner import AirflowRunner

DAGS = Path(__file__).parent / "dags" / "zendrive_sensor_dags.py"
UNIQUE_SECRET = "s3cr3t-DagRun-93e1f0-Kp"

pytestmark = pytest.mark.slow


def test_deferrable_sensor_waits_out_a_suspension_in_a_real_run(
    airflow_runner: AirflowRunner, zendrive_emulator: ZenDriveEmulator
) -> None:
    zendrive_emulator.suspend(DEMO_ACCESS_KEY, requests=2)
    env = {"AIRFLOW_CONN_ZENDRIVE_DEFAULT": zendrive_emulator.connection_uri()}

    result = airflow_runner.run("zendrive_wait_deferrable", dags_folder=DAGS, env=env)

    assert result.state == "success", result.output
    assert result.task_states() == {"wait_active": "success"}
    # One synchronous poke (403), then the trigger: 403, wait poke_interval, 200.
    assert [r.status for r in zendrive_emulator.requests] == [403, 403, 200]
    trigger_gap = zendrive_emulator.requests[2].at - zendrive_emulator.requests[1].at
    assert trigger_gap >= 0.45
    assert "running trigger in line" in result.output
    assert DEMO_SECRET_KEY not in result.all_text()


def test_reschedule_mode_sensor_in_a_real_run(
    airflow_runner: AirflowRunner, zendrive_emulator: ZenDriveEmulator
) -> None:
    zendrive_emulator.suspend(DEMO_ACCESS_KEY, requests=1)
    env = {"AIRFLOW_CONN_ZENDRIVE_DEFAULT": zendrive_emulator.connection_uri()}

    result = airflow_runner.run("zendrive_wait_reschedule", dags_folder=DAGS, env=env)

    assert result.state == "success", result.output
    assert [r.status for r in zendrive_emulator.requests] == [403, 200]


def test_bad_keys_fail_the_real_run_at_once_without_retries(
    airflow_runner: AirflowRunner, zendrive_emulator: ZenDriveEmulator
) -> None:
    env = {"AIRFLOW_CONN_ZENDRIVE_DEFAULT": zendrive_emulator.connection_uri(DEMO_ACCESS_KEY, UNIQUE_SECRET)}

    result = airflow_runner.run("zendrive_wait_bad_keys", dags_folder=DAGS, env=env)

    assert result.task_states() == {"wait_active": "failed"}, result.output
    assert [r.status for r in zendrive_emulator.requests] == [401]
    assert "ZenDRIVE rejected the credentials" in result.output
    assert UNIQUE_SECRET not in result.all_text()
