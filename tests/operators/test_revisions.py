"""Revisions: a write that changes the counters of rows already in the table says so (log and asset event)."""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pendulum
import pytest
from zendrive_expected import DAILY_KEYS

from airflow_provider_zendrive._outputs.tables import Revision, get_db_hook, upsert_rows
from airflow_provider_zendrive.operators.zendrive import ZenDriveStatsOperator
from airflow_provider_zendrive.testing import ZenDriveEmulator

COUNTERS = DAILY_KEYS[1:]  # every column of a daily row after its date


def rows(days: range, bump: dict[int, int] | None = None) -> list[dict[str, Any]]:
    bump = bump or {}
    return [
        {
            "service_id": 7,
            "date": f"2026-05-{day:02d}",
            **{name: 100 * day + index for index, name in enumerate(COUNTERS)},
            "total_requests": 1000 * day + bump.get(day, 0),
            "bytes_sent": 10**12 + day + 5 * bump.get(day, 0),
        }
        for day in days
    ]


def check_revisions(conn_id: str) -> None:
    hook = get_db_hook(conn_id)
    first = upsert_rows(hook, "zendrive_daily_usage", rows(range(1, 4)))  # type: ignore[arg-type]
    assert (first.rows, first.revisions) == (3, [])  # new rows are not revisions

    later = datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC)
    same = upsert_rows(get_db_hook(conn_id), "zendrive_daily_usage", rows(range(1, 4)), fetched_at=later)  # type: ignore[arg-type]
    assert same.revisions == []  # fetched_at alone changing is not a revision

    changed = upsert_rows(get_db_hook(conn_id), "zendrive_daily_usage", rows(range(2, 6), bump={3: 7}))  # type: ignore[arg-type]
    assert changed.rows == 4
    assert changed.revisions == [
        Revision(7, "2026-05-03", {"total_requests": (3000, 3007), "bytes_sent": (10**12 + 3, 10**12 + 38)})
    ]


def test_sqlite_upserts_report_revisions(sqlite_conn: tuple[str, Path]) -> None:
    check_revisions(sqlite_conn[0])


def test_postgres_upserts_report_revisions(
    set_connection: Callable[..., str], postgresql_db: dict[str, Any]
) -> None:
    check_revisions(set_connection(postgresql_db["uri"], "zd_pg_rev"))


class _Event:
    def __init__(self) -> None:
        self.extra: dict[str, Any] = {}


def test_the_operator_logs_each_revised_day_and_counts_them_in_the_asset_event(
    zendrive_emulator: ZenDriveEmulator,
    set_connection: Callable[..., str],
    sqlite_conn: tuple[str, Path],
    logs: list[dict[str, Any]],
) -> None:
    conn_id = set_connection(zendrive_emulator.connection_uri())
    sql_conn, path = sqlite_conn
    op = ZenDriveStatsOperator(
        task_id="pull",
        zendrive_conn_id=conn_id,
        from_date="2026-05-01",
        to_date="2026-05-07",
        sql_conn_id=sql_conn,
    )
    (table,) = op.outlets
    events = {table: _Event()}
    op.execute({"outlet_events": events, "logical_date": pendulum.datetime(2026, 5, 8)})  # type: ignore[arg-type]
    assert events[table].extra["revised"] == 0

    import sqlite3

    with sqlite3.connect(path) as conn:  # the vendor's numbers for May 3 and 4 were different before
        conn.execute(
            "UPDATE zendrive_daily_usage SET total_requests = 5, bytes_sent = 6 WHERE date = '2026-05-03'"
        )
        conn.execute("UPDATE zendrive_daily_usage SET client_errors = 1 WHERE date = '2026-05-04'")
    events = {table: _Event()}
    op.execute({"outlet_events": events, "logical_date": pendulum.datetime(2026, 5, 8)})  # type: ignore[arg-type]

    assert events[table].extra == {"from": "2026-05-01", "to": "2026-05-07", "rows": 7, "revised": 2}
    text = json.dumps(logs, default=str)
    expected = zendrive_emulator.expected_stats(datetime.date(2026, 5, 3), datetime.date(2026, 5, 3))[
        "daily"
    ][0]
    assert "ZenDRIVE revised 2026-05-03 (service" in text
    assert f"total_requests 5 -> {expected['total_requests']:,}" in text
    assert "ZenDRIVE revised 2026-05-04" in text
    assert "2 days revised" in text


@pytest.mark.parametrize("days", [range(1, 2)])
def test_a_revision_names_only_the_counters_that_changed(sqlite_conn: tuple[str, Path], days: range) -> None:
    hook = get_db_hook(sqlite_conn[0])
    upsert_rows(hook, "zendrive_daily_usage", rows(days))  # type: ignore[arg-type]
    (revision,) = upsert_rows(
        get_db_hook(sqlite_conn[0]), "zendrive_daily_usage", rows(days, bump={1: 1})
    ).revisions  # type: ignore[arg-type]
    assert set(revision.changes) == {"total_requests", "bytes_sent"}
