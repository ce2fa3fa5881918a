"""
OpenLineage: real DAG runs with the OpenLineage provider's listener writing its events to a file.

The operator reports the ZenDRIVE usage API of the service as its input and the file and tables it wrote as
outputs, named per OpenLineage's conventions; no event carries the secret key.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from airflow_runner import AirflowRunner

    from airflow_provider_zendrive.testing import ZenDriveEmulator

pytest.importorskip(
    "airflow.providers.openlineage", reason="the test extra installs the OpenLineage provider"
)
pytestmark = pytest.mark.slow

DAGS = Path(__file__).parent.parent / "dags_for_tests" / "zendrive_stats_dags.py"
SECRET = "lineage-secret-5e1d0c9b3a"


def lineage_env(emulator: ZenDriveEmulator, events: Path) -> dict[str, str]:
    emulator.add_account("lineage-key", SECRET, 4321)
    return {
        "AIRFLOW_CONN_ZENDRIVE_TEST": emulator.connection_uri("lineage-key", SECRET),
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(
            {"type": "file", "log_file_path": str(events), "append": True}
        ),
        "AIRFLOW__OPENLINEAGE__NAMESPACE": "zendrive-tests",
    }


def completed(events: Path) -> dict[str, dict[str, Any]]:
    """The COMPLETE events of task runs, by task id."""
    found = {}
    for line in events.read_text().splitlines():
        event = json.loads(line)
        name = event["job"]["name"]
        if event["eventType"] == "COMPLETE" and name.count(".") == 1:  # dag_id.task_id: a task, not the DAG
            found[name.split(".")[1]] = event
    return found


def datasets(event: dict[str, Any], kind: str) -> list[tuple[str, str]]:
    return [(d["namespace"], d["name"]) for d in event[kind]]


def test_lineage_names_the_api_and_the_tables_written(
    airflow_runner: AirflowRunner,
    zendrive_emulator: ZenDriveEmulator,
    postgresql_db: dict[str, Any],
    tmp_path: Path,
) -> None:
    db = tmp_path / "usage.db"
    events = tmp_path / "events.jsonl"
    env = {
        **lineage_env(zendrive_emulator, events),
        "AIRFLOW_CONN_ZD_SQLITE": json.dumps({"conn_type": "sqlite", "host": str(db)}),
        "AIRFLOW_CONN_ZD_PG": postgresql_db["uri"],
        "ZD_TEST_FROM_DATE": "2026-05-01",
        "ZD_TEST_TO_DATE": "2026-05-03",
    }
    result = airflow_runner.run("zendrive_stats_tables", None, dags_folder=DAGS, env=env)
    assert result.state == "success", result.output[-3000:]

    by_task = completed(events)
    api = (f"https://127.0.0.1:{zendrive_emulator.port}", "/zendrive-api/cdn-stats/4321")
    assert datasets(by_task["pull_zd_sqlite"], "inputs") == [api]
    assert datasets(by_task["pull_zd_sqlite"], "outputs") == [(f"sqlite://{db}", "main.zendrive_daily_usage")]
    assert datasets(by_task["pull_zd_pg"], "inputs") == [api]
    assert datasets(by_task["pull_zd_pg"], "outputs") == [
        (
            f"postgres://{postgresql_db['host']}:{postgresql_db['port']}",
            f"{postgresql_db['dbname']}.public.zendrive_daily_usage",
        )
    ]
    assert SECRET not in events.read_text()


def test_lineage_names_a_local_file_as_airflow_does(
    airflow_runner: AirflowRunner, zendrive_emulator: ZenDriveEmulator, tmp_path: Path
) -> None:
    events = tmp_path / "events.jsonl"
    path = tmp_path / "out" / "usage.csv"
    env = {**lineage_env(zendrive_emulator, events), "ZD_TEST_OUTPUT_PATH": str(path)}
    result = airflow_runner.run("zendrive_stats_daily", "2026-05-04", dags_folder=DAGS, env=env)
    assert result.state == "success", result.output[-3000:]

    event = completed(events)["pull"]
    assert datasets(event, "outputs") == [("file", str(path))]
    assert datasets(event, "inputs") == [
        (f"https://127.0.0.1:{zendrive_emulator.port}", "/zendrive-api/cdn-stats/4321")
    ]
    assert SECRET not in events.read_text()
