"""ZenDriveStatsOperator in real DAG runs (``airflow dags test`` in a subprocess, against the emulator)."""

from __future__ import annotations

import csv
import datetime
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
import pytest
from zendrive_expected import sqlite_rows, truth_rows, truth_tuples

from airflow_provider_zendrive.testing import DEMO_SERVICE_ID, usage_for_day

if TYPE_CHECKING:
    from airflow_runner import AirflowRunner

    from airflow_provider_zendrive.testing import ZenDriveEmulator

pytestmark = pytest.mark.slow

DAGS = Path(__file__).parent.parent / "dags_for_tests" / "zendrive_stats_dags.py"
D = datetime.date
SECRET = "dag-run-secret-4c9a1b77e0"


def _env(emulator: ZenDriveEmulator, **settings: str) -> dict[str, str]:
    emulator.add_account("dag-key", SECRET, 4321)
    env = {"AIRFLOW_CONN_ZENDRIVE_TEST": emulator.connection_uri("dag-key", SECRET)}
    env.update({f"ZD_TEST_{name.upper()}": value for name, value in settings.items()})
    return env


def test_daily_dag_pulls_the_day_before_and_writes_csv(
    airflow_runner: AirflowRunner, zendrive_emulator: ZenDriveEmulator, tmp_path: Path
) -> None:
    path = tmp_path / "out" / "usage.csv"
    result = airflow_runner.run(
        "zendrive_stats_daily",
        "2026-05-04",
        dags_folder=DAGS,
        env=_env(zendrive_emulator, output_path=str(path)),
    )
    assert result.state == "success", result.output[-3000:]
    day = D(2026, 5, 3)
    assert result.xcom("pull") == zendrive_emulator.expected_stats(day, day, access_key="dag-key")
    with path.open() as handle:
        records = list(csv.DictReader(handle))
    assert [{k: v if k == "date" else int(v) for k, v in r.items()} for r in records] == truth_rows(
        4321, day, day
    )
    assert "the UTC day before the run's logical date" in result.output
    for text in (result.all_text(), path.read_text(), json.dumps(result.rendered_fields("pull"))):
        assert SECRET not in text
    assert result.rendered_fields("pull")["zendrive_conn_id"] == "zendrive_test"


def test_interval_dag_pulls_the_interval_and_writes_jsonl(
    airflow_runner: AirflowRunner, zendrive_emulator: ZenDriveEmulator, tmp_path: Path
) -> None:
    path = tmp_path / "usage.jsonl"
    result = airflow_runner.run(
        "zendrive_stats_interval",
        "2026-05-14",
        dags_folder=DAGS,
        env=_env(zendrive_emulator, output_path=str(path)),
    )
    assert result.state == "success", result.output[-3000:]
    day = D(2026, 5, 13)  # a manual run at May 14 gets the interval that ends there: [May 13, May 14)
    assert (
        usage_for_day(4321, day) is None
    )  # a day without traffic: the API omits it, the file has a zero row
    assert "the run's data interval [2026-05-13T00:00:00+00:00, 2026-05-14T00:00:00+00:00)" in result.output
    assert result.xcom("pull") == zendrive_emulator.expected_stats(day, day, access_key="dag-key")
    assert result.xcom("pull")["daily"] == []
    assert [json.loads(line) for line in path.read_text().splitlines()] == truth_rows(4321, day, day)
    assert SECRET not in result.all_text() + path.read_text()


def test_explicit_window_wins_and_writes_json(
    airflow_runner: AirflowRunner, zendrive_emulator: ZenDriveEmulator, tmp_path: Path
) -> None:
    path = tmp_path / "usage.json"
    env = _env(zendrive_emulator, output_path=str(path), from_date="2026-05-03", to_date="2026-05-09")
    result = airflow_runner.run("zendrive_stats_daily", "2026-05-20", dags_folder=DAGS, env=env)
    assert result.state == "success", result.output[-3000:]
    first, last = D(2026, 5, 3), D(2026, 5, 9)
    truth = zendrive_emulator.expected_stats(first, last, access_key="dag-key")
    assert len(truth["daily"]) < 7  # quiet days in the window: the JSON keeps the API's shape, without them
    assert [(r.from_date, r.to_date) for r in zendrive_emulator.requests] == [("2026-05-03", "2026-05-09")]
    assert result.xcom("pull") == truth
    assert json.loads(path.read_text()) == truth
    assert SECRET not in result.all_text() + path.read_text()


def test_bad_keys_fail_at_once_despite_retries(
    airflow_runner: AirflowRunner, zendrive_emulator: ZenDriveEmulator, tmp_path: Path
) -> None:
    env = _env(zendrive_emulator, output_path=str(tmp_path / "u.json"), retries="3")
    env["AIRFLOW_CONN_ZENDRIVE_TEST"] = zendrive_emulator.connection_uri("dag-key", "wrong-" + SECRET)
    result = airflow_runner.run("zendrive_stats_daily", "2026-05-04", dags_folder=DAGS, env=env)
    assert result.state == "failed"
    assert result.task_states() == {"pull": "failed"}
    assert len(zendrive_emulator.requests) == 1  # the retry policy failed the task without a second try
    assert "ZenDriveAuthError" in result.output
    assert list(tmp_path.iterdir()) == []


def test_tables_in_sqlite_and_postgres_after_reruns_and_an_overlap(
    airflow_runner: AirflowRunner,
    zendrive_emulator: ZenDriveEmulator,
    postgresql_db: dict[str, Any],
    tmp_path: Path,
) -> None:
    db = tmp_path / "usage.db"
    base = {
        "AIRFLOW_CONN_ZD_SQLITE": json.dumps({"conn_type": "sqlite", "host": str(db)}),
        "AIRFLOW_CONN_ZD_PG": postgresql_db["uri"],
    }
    info = {k: postgresql_db[k] for k in ("host", "port", "user", "dbname")}
    select = (
        "SELECT service_id, date::text, total_requests, successful_requests, client_errors, auth_failures, "
        "bytes_sent, bytes_received, unique_ips FROM zendrive_daily_usage ORDER BY date"
    )
    windows = [("2026-05-01", "2026-05-07"), ("2026-05-01", "2026-05-07"), ("2026-05-05", "2026-05-14")]
    for start, end in windows:
        env = {**base, **_env(zendrive_emulator, from_date=start, to_date=end)}
        result = airflow_runner.run("zendrive_stats_tables", None, dags_folder=DAGS, env=env)
        assert result.state == "success", result.output[-3000:]
        expected = truth_tuples(4321, D(2026, 5, 1), D.fromisoformat(end))
        assert sqlite_rows(db) == expected
        with psycopg.connect(**info) as conn:
            assert conn.execute(select).fetchall() == expected
        assert result.xcom("pull_zd_pg") == zendrive_emulator.expected_stats(
            D.fromisoformat(start), D.fromisoformat(end), access_key="dag-key"
        )
    assert DEMO_SERVICE_ID != 4321
