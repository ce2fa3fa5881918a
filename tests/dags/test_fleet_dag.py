"""
Fleets of services in batches, run for real with ``airflow dags test`` against the emulator over TLS and a
SQLite warehouse: 3 broken services among 10 (bad keys, suspended, the API down for one) do not hold back the
others; the batch fails naming the 3, and Airflow's retry pulls only those 3, counted at the emulator. With
final errors only (bad keys, suspended) the example DAG fails at once, naming them, the others written.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from airflow_provider_zendrive.testing import Fault, ZenDriveEmulator

if TYPE_CHECKING:
    from airflow_runner import AirflowRunner, DagRunResult

pytestmark = pytest.mark.slow

EXAMPLE_DAGS = Path(__file__).resolve().parents[2] / "example_dags"
RETRY_DAG = Path(__file__).resolve().parents[1] / "dags_for_tests" / "zendrive_fleet_retry_dag.py"
SIZE = 10


def keys(n: int) -> tuple[str, str, int]:
    return f"AKFLEET{n:02d}", f"fleet-secret-{n:02d}-0123456789abcdef", 7000 + n


def fleet_env(
    emulator: ZenDriveEmulator, warehouse: Path, *, secrets: dict[int, str] | None = None
) -> dict[str, str]:
    """One connection per service (``zd_fleet_NN``, no in-process retries), and the warehouse as two ids."""
    db = json.dumps({"conn_type": "sqlite", "host": str(warehouse)})
    env = {"AIRFLOW_CONN_ZENDRIVE_WAREHOUSE": db, "AIRFLOW_CONN_ZD_DB": db}
    for n in range(SIZE):
        access_key, secret_key, _ = keys(n)
        secret_key = (secrets or {}).get(n, secret_key)
        env[f"AIRFLOW_CONN_ZD_FLEET_{n:02d}"] = emulator.connection_uri(
            access_key, secret_key, max_retries="0"
        )
    return env


def conn_ids() -> list[str]:
    return [f"zd_fleet_{n:02d}" for n in range(SIZE)]


def requests_by_service(emulator: ZenDriveEmulator, start: int = 0) -> Counter[str]:
    by_key = {keys(n)[0]: f"zd_fleet_{n:02d}" for n in range(SIZE)}
    return Counter(by_key[str(request.access_key)] for request in emulator.requests[start:])


def services_written(path: Path) -> set[int]:
    with sqlite3.connect(path) as conn:
        return {row[0] for row in conn.execute("SELECT DISTINCT service_id FROM zendrive_daily_usage")}


def ledger(path: Path) -> list[str]:
    with sqlite3.connect(path) as conn:
        return [
            row[0] for row in conn.execute("SELECT conn_id FROM zendrive_fleet_progress ORDER BY conn_id")
        ]


def batch_tries(result: DagRunResult, task_id: str) -> list[int]:
    with sqlite3.connect(result.home / "airflow.db") as conn:
        rows = conn.execute(
            "SELECT try_number FROM task_instance WHERE dag_id = ? AND task_id = ? ORDER BY map_index",
            (result.dag_id, task_id),
        ).fetchall()
    return [row[0] for row in rows]


@pytest.fixture
def fleet(zendrive_emulator: ZenDriveEmulator) -> ZenDriveEmulator:
    for n in range(SIZE):
        zendrive_emulator.add_account(*keys(n))
    return zendrive_emulator


@pytest.fixture
def registers_late(fleet: ZenDriveEmulator) -> Iterator[None]:
    """Service 2's keys are unknown (401) until the emulator has answered them once: then they are registered."""
    access_key, secret_key, service_id = keys(2)
    fleet.add_account(access_key, "not-yet-registered-0123456789", service_id)
    stop = threading.Event()

    def watch() -> None:
        while not stop.wait(0.02):
            if any(r.access_key == access_key and r.status == 401 for r in list(fleet.requests)):
                fleet.add_account(access_key, secret_key, service_id)
                return

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    yield
    stop.set()
    watcher.join(timeout=1)


def test_a_retried_batch_pulls_only_its_3_broken_services(
    airflow_runner: AirflowRunner, fleet: ZenDriveEmulator, tmp_path: Path, registers_late: None
) -> None:
    fleet.suspend(keys(5)[0], requests=1)  # suspended, then resumed
    fleet.inject(Fault(status=503, access_key=keys(8)[0]))  # the API down for one service, once
    warehouse = tmp_path / "warehouse.db"
    batches = [conn_ids()[:6], conn_ids()[6:]]

    result = airflow_runner.run(
        "zendrive_fleet_retry",
        dags_folder=RETRY_DAG,
        env=fleet_env(fleet, warehouse),
        conf={"batches": batches},
        timeout=240,
    )

    assert result.state == "success", result.output[-5000:]
    assert batch_tries(result, "pull") == [2, 2]  # both batches had a broken service: each failed once
    log = result.log("pull")
    assert "2 of 6 services failed (4 written): zd_fleet_02: ZenDriveAuthError" in log
    assert "zd_fleet_05: ZenDriveServiceInactiveError" in log
    assert "1 of 4 services failed (3 written): zd_fleet_08: ZenDriveUnavailableError" in log
    broken = {"zd_fleet_02", "zd_fleet_05", "zd_fleet_08"}
    assert requests_by_service(fleet) == {c: 2 if c in broken else 1 for c in conn_ids()}
    assert services_written(warehouse) == {keys(n)[2] for n in range(SIZE)}
    assert ledger(warehouse) == []
    assert all(keys(n)[1] not in result.all_text() for n in range(SIZE))


def test_the_example_fleet_names_3_final_failures_without_retrying_and_writes_the_others(
    airflow_runner: AirflowRunner, fleet: ZenDriveEmulator, tmp_path: Path
) -> None:
    """Bad keys and a suspended service are final: the batches fail at once, naming them, the others written."""
    warehouse = tmp_path / "warehouse.db"
    wrong = {1: "wrong-secret-0123456789abcdef", 7: "wrong-secret-0123456789abcdef"}
    fleet.suspend(keys(4)[0])
    conf = {"conn_ids": conn_ids(), "batch_size": 5}

    failed = airflow_runner.run(
        "zendrive_fleet",
        "2026-05-02",
        dags_folder=EXAMPLE_DAGS,
        env=fleet_env(fleet, warehouse, secrets=wrong),
        conf=conf,
    )

    assert failed.state == "failed", failed.output[-5000:]
    assert batch_tries(failed, "pull_daily_usage") == [1, 1]  # final errors: the retry policy does not retry
    log = failed.log("pull_daily_usage")
    assert "2 of 5 services failed (3 written): zd_fleet_01: ZenDriveAuthError" in log
    assert "zd_fleet_04: ZenDriveServiceInactiveError" in log
    assert "1 of 5 services failed (4 written): zd_fleet_07: ZenDriveAuthError" in log
    assert services_written(warehouse) == {keys(n)[2] for n in range(SIZE) if n not in (1, 4, 7)}
    assert "wrong-secret" not in failed.all_text()

    # What a clear of the failed batches (a new try of the same task instances) skips: the 7 written.
    assert ledger(warehouse) == [f"zd_fleet_{n:02d}" for n in range(SIZE) if n not in (1, 4, 7)]
