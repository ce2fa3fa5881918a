"""
Injected failures in real DAG runs (``airflow dags test``): no partial file, no partial rows, asset events.

A database trigger makes the upsert fail on a day in the middle of the window, after earlier rows of the same
statement went in; a directory at the output path makes the final rename of a file fail after its temporary file
was written. Each failing run must leave what was there before exactly as it was.
"""

from __future__ import annotations

import contextlib
import csv
import datetime
import json
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
import pytest
from zendrive_expected import sqlite_rows, truth_tuples

from airflow_provider_zendrive._outputs.tables import create_table_sql

if TYPE_CHECKING:
    from airflow_runner import AirflowRunner, DagRunResult

    from airflow_provider_zendrive.testing import ZenDriveEmulator

pytestmark = pytest.mark.slow

DAGS = Path(__file__).parent.parent / "dags_for_tests" / "zendrive_failure_dags.py"
D = datetime.date
SERVICE_ID = 4321
WINDOW = {"from_date": "2026-05-01", "to_date": "2026-05-07"}
FAILING_DAY = "2026-05-05"  # after three rows that already exist and one new row
TABLE = "zendrive_daily_usage"
TABLE_URI = f"x-zendrive-table://zd_db/{TABLE}"
#: Stale rows for the first three days of the window, as an earlier pull could have left them.
OLD_ROWS = [
    (SERVICE_ID, f"2026-05-0{day}", day, day, 0, 0, 10 * day, 20 * day, 1, "2020-01-02 03:04:05.000006")
    for day in (1, 2, 3)
]


def _env(emulator: ZenDriveEmulator, db: str, **settings: str) -> dict[str, str]:
    emulator.add_account("fail-key", "fail-secret-5d1e0c", SERVICE_ID)
    env = {
        "AIRFLOW_CONN_ZENDRIVE_TEST": emulator.connection_uri("fail-key", "fail-secret-5d1e0c"),
        "AIRFLOW_CONN_ZD_DB": db,
    }
    env.update({f"ZD_TEST_{name.upper()}": value for name, value in {**WINDOW, **settings}.items()})
    return env


def _sqlite_conn(path: Path) -> str:
    return json.dumps({"conn_type": "sqlite", "host": str(path)})


def _expected_rows() -> list[tuple[Any, ...]]:
    return truth_tuples(SERVICE_ID, D(2026, 5, 1), D(2026, 5, 7))


def _asset_events(result: DagRunResult) -> dict[str, list[dict[str, Any]]]:
    """Every asset event of the run, by asset URI, with the JSON-decoded extra."""
    with contextlib.closing(sqlite3.connect(result.home / "airflow.db")) as conn:
        rows = conn.execute(
            "SELECT a.uri, e.extra FROM asset_event e JOIN asset a ON a.id = e.asset_id "
            "WHERE e.source_dag_id = ? ORDER BY e.id",
            (result.dag_id,),
        ).fetchall()
    events: dict[str, list[dict[str, Any]]] = {}
    for uri, extra in rows:
        events.setdefault(uri, []).append(json.loads(extra) if isinstance(extra, str) else extra)
    return events


# -- SQLite ------------------------------------------------------------------------------------------------------


def _sqlite_table_with_trigger(db: Path) -> None:
    with contextlib.closing(sqlite3.connect(db)) as conn, conn:
        conn.execute(create_table_sql(f'"{TABLE}"'))
        conn.executemany(f"INSERT INTO {TABLE} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", OLD_ROWS)  # noqa: S608
        conn.execute(
            f"CREATE TRIGGER boom BEFORE INSERT ON {TABLE} WHEN NEW.date = '{FAILING_DAY}' "
            "BEGIN SELECT RAISE(ABORT, 'injected failure'); END"
        )


def _sqlite_snapshot(db: Path) -> tuple[list[tuple[Any, ...]], bytes]:
    """Every row with its ``fetched_at`` (first, for a readable diff), and the database file's bytes."""
    with contextlib.closing(sqlite3.connect(db)) as conn:
        rows = conn.execute(f"SELECT * FROM {TABLE} ORDER BY date").fetchall()  # noqa: S608
    return rows, db.read_bytes()


def test_sqlite_failure_mid_upsert_leaves_the_table_as_it_was_and_a_rerun_fills_it(
    airflow_runner: AirflowRunner, zendrive_emulator: ZenDriveEmulator, tmp_path: Path
) -> None:
    db = tmp_path / "usage.db"
    _sqlite_table_with_trigger(db)
    before = _sqlite_snapshot(db)
    assert before[0] == OLD_ROWS
    env = _env(zendrive_emulator, _sqlite_conn(db))

    result = airflow_runner.run("zendrive_fail_table", None, dags_folder=DAGS, env=env)
    assert result.state == "failed", result.output[-3000:]
    assert result.task_states() == {"pull": "failed"}
    assert "injected failure" in result.output
    after = _sqlite_snapshot(db)
    assert after[0] == before[0]  # same rows, same fetched_at
    assert after[1] == before[1]  # and the very same bytes
    assert [p.name for p in tmp_path.iterdir()] == ["usage.db"]  # no journal left behind

    with contextlib.closing(sqlite3.connect(db)) as conn, conn:
        conn.execute("DROP TRIGGER boom")
    result = airflow_runner.run("zendrive_fail_table", None, dags_folder=DAGS, env=env)
    assert result.state == "success", result.output[-3000:]
    assert sqlite_rows(db) == _expected_rows()  # one row per day, the stale ones replaced
    with contextlib.closing(sqlite3.connect(db)) as conn:
        stamps = {row[0] for row in conn.execute(f"SELECT fetched_at FROM {TABLE}")}  # noqa: S608
    assert len(stamps) == 1
    assert OLD_ROWS[0][-1] not in stamps


# -- PostgreSQL --------------------------------------------------------------------------------------------------


def test_postgres_failure_mid_upsert_leaves_the_table_as_it_was_and_a_rerun_fills_it(
    airflow_runner: AirflowRunner,
    zendrive_emulator: ZenDriveEmulator,
    postgresql_db: dict[str, Any],
) -> None:
    info = {k: postgresql_db[k] for k in ("host", "port", "user", "dbname")}
    # xmin is the transaction that wrote each row version: a committed rewrite of a row changes it.
    snapshot = (
        "SELECT xmin::text, service_id, date::text, total_requests, successful_requests, client_errors, "
        "auth_failures, bytes_sent, bytes_received, unique_ips, fetched_at::text FROM zendrive_daily_usage "
        "ORDER BY date"
    )
    with psycopg.connect(**info) as conn:
        conn.execute(create_table_sql(f'"{TABLE}"'))
        conn.cursor().executemany(
            f"INSERT INTO {TABLE} VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",  # noqa: S608
            OLD_ROWS,
        )
        conn.execute(
            "CREATE FUNCTION boom() RETURNS trigger AS $$ BEGIN "
            f"IF NEW.date = DATE '{FAILING_DAY}' THEN RAISE EXCEPTION 'injected failure'; END IF; "
            "RETURN NEW; END $$ LANGUAGE plpgsql"
        )
        conn.execute(f"CREATE TRIGGER boom BEFORE INSERT ON {TABLE} FOR EACH ROW EXECUTE FUNCTION boom()")
    with psycopg.connect(**info) as conn:
        before = conn.execute(snapshot).fetchall()
    assert [row[1:] for row in before] == OLD_ROWS
    env = _env(zendrive_emulator, str(postgresql_db["uri"]))

    result = airflow_runner.run("zendrive_fail_table", None, dags_folder=DAGS, env=env)
    assert result.state == "failed", result.output[-3000:]
    assert result.task_states() == {"pull": "failed"}
    assert "injected failure" in result.output
    with psycopg.connect(**info) as conn:
        assert conn.execute(snapshot).fetchall() == before

    with psycopg.connect(**info) as conn:
        conn.execute(f"DROP TRIGGER boom ON {TABLE}")
    result = airflow_runner.run("zendrive_fail_table", None, dags_folder=DAGS, env=env)
    assert result.state == "success", result.output[-3000:]
    with psycopg.connect(**info) as conn:
        after = conn.execute(snapshot).fetchall()
    assert [row[1:-1] for row in after] == _expected_rows()  # one row per day, the stale ones replaced
    assert len({row[0] for row in after}) == 1  # all written by one transaction
    assert len({row[-1] for row in after}) == 1


# -- files -------------------------------------------------------------------------------------------------------


def test_file_failures_leave_no_partial_file_and_no_temp_file(
    airflow_runner: AirflowRunner, zendrive_emulator: ZenDriveEmulator, tmp_path: Path
) -> None:
    # file_only: the final name is a non-empty directory: refused before the API call (it used to be found
    # only when the rename of the finished temp file failed).
    blocked = tmp_path / "blocked"
    (blocked / "usage.csv").mkdir(parents=True)
    (blocked / "usage.csv" / "keep.txt").write_text("pre-existing content\n")
    # file_and_table: the file is written first, then the table's upsert hits the trigger.
    both = tmp_path / "both"
    both.mkdir()
    (both / "usage.csv").write_text("old file\n")
    db = tmp_path / "usage.db"
    _sqlite_table_with_trigger(db)
    table_before = _sqlite_snapshot(db)
    env = _env(
        zendrive_emulator,
        _sqlite_conn(db),
        file_path=str(blocked / "usage.csv"),
        both_path=str(both / "usage.csv"),
    )

    result = airflow_runner.run("zendrive_fail_file", None, dags_folder=DAGS, env=env)
    assert result.state == "failed", result.output[-3000:]
    assert result.task_states() == {"file_only": "failed", "file_and_table": "failed"}
    assert "is a folder; name the file to write" in result.output
    assert "injected failure" in result.output

    # What was at the final path is untouched, and no temp file was left.
    assert sorted(p.name for p in blocked.rglob("*")) == ["keep.txt", "usage.csv"]
    assert (blocked / "usage.csv" / "keep.txt").read_text() == "pre-existing content\n"
    assert list(tmp_path.rglob(".*.tmp")) == []

    # The file of the combined task is complete and correct (the file is written before the table); the
    # table is exactly as it was. Neither output of a failed task gets an asset event.
    assert [p.name for p in both.iterdir()] == ["usage.csv"]
    with (both / "usage.csv").open() as handle:
        records = [tuple(int(v) if k != "date" else v for k, v in r.items()) for r in csv.DictReader(handle)]
    assert records == _expected_rows()
    assert _sqlite_snapshot(db) == table_before
    assert _asset_events(result) == {}


# -- asset events ------------------------------------------------------------------------------------------------


def test_file_and_table_outputs_emit_asset_events_with_the_window_and_row_counts(
    airflow_runner: AirflowRunner, zendrive_emulator: ZenDriveEmulator, tmp_path: Path
) -> None:
    path = tmp_path / "out" / "usage.jsonl"
    db = tmp_path / "usage.db"
    env = _env(zendrive_emulator, _sqlite_conn(db), file_path=str(path), to_date="2026-05-10")

    result = airflow_runner.run("zendrive_file_and_table", None, dags_folder=DAGS, env=env)
    assert result.state == "success", result.output[-3000:]
    extra = {"from": "2026-05-01", "to": "2026-05-10", "rows": 10}
    file_uri = f"file://{path}"
    assert _asset_events(result) == {file_uri: [extra], TABLE_URI: [{**extra, "revised": 0}]}
    with contextlib.closing(sqlite3.connect(result.home / "airflow.db")) as conn:
        assets = {uri for (uri,) in conn.execute("SELECT uri FROM asset")}
    assert {file_uri, TABLE_URI} <= assets
    assert len(path.read_text().splitlines()) == 10
    assert len(sqlite_rows(db)) == 10
