"""Concurrent writers on one SQLite table (a mapped fleet on the embedded warehouse): none fails, none is lost."""

from __future__ import annotations

import datetime
import json
import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_zendrive._outputs.tables import get_db_hook, upsert_rows

WRITERS = 6
WRITES = 12
DAYS = 20


def rows_for(service_id: int, write: int) -> list[dict[str, Any]]:
    start = datetime.date(2026, 1, 1)
    return [
        {
            "service_id": service_id,
            "date": (start + datetime.timedelta(days=day)).isoformat(),
            "total_requests": write * 1000 + day,
            "successful_requests": write,
            "client_errors": 0,
            "auth_failures": 0,
            "bytes_sent": 10**12 + write,
            "bytes_received": 0,
            "unique_ips": 1,
        }
        for day in range(DAYS)
    ]


def write_all(conn_id: str, service_id: int) -> None:
    for write in range(WRITES):
        upsert_rows(get_db_hook(conn_id), "zendrive_daily_usage", rows_for(service_id, write))


def check_table(path: Path, services: range) -> None:
    with sqlite3.connect(path) as conn:
        rows = conn.execute(
            "SELECT service_id, COUNT(*), MIN(total_requests), MAX(successful_requests) "
            "FROM zendrive_daily_usage GROUP BY service_id ORDER BY service_id"
        ).fetchall()
    # Every writer's last write won on its own rows: nothing lost, nothing duplicated.
    assert rows == [(service, DAYS, (WRITES - 1) * 1000, WRITES - 1) for service in services]


def test_threads_upserting_into_one_sqlite_table_all_succeed(sqlite_conn: tuple[str, Path]) -> None:
    conn_id, path = sqlite_conn
    errors: list[BaseException] = []

    def writer(service_id: int) -> None:
        try:
            write_all(conn_id, service_id)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(service,)) for service in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert errors == []
    check_table(path, range(WRITERS))


@pytest.mark.slow
def test_processes_upserting_into_one_sqlite_table_all_succeed(
    sqlite_conn: tuple[str, Path], tmp_path: Path
) -> None:
    conn_id, path = sqlite_conn
    script = (
        "import sys; sys.path.insert(0, sys.argv[2]); "
        "from test_sqlite_writers import write_all; write_all(sys.argv[1], int(sys.argv[3]))"
    )
    env = {
        **os.environ,
        f"AIRFLOW_CONN_{conn_id.upper()}": json.dumps({"conn_type": "sqlite", "host": str(path)}),
    }
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", script, conn_id, str(Path(__file__).parent), str(service)],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for service in range(WRITERS)
    ]
    failures = []
    for process in processes:
        _, err = process.communicate(timeout=300)
        if process.returncode != 0:
            failures.append(err[-2000:])

    assert failures == []
    check_table(path, range(WRITERS))
