"""
Revisions: a write that changes the counters of rows already in the table says so (log and asset event). What
the table and the audit trail hold, on every warehouse, is in test_table_contract.py.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import pendulum
import pytest
from zendrive_expected import DAILY_KEYS

from airflow_provider_zendrive._outputs.tables import get_db_hook, upsert_rows
from airflow_provider_zendrive.operators.zendrive import ZenDriveStatsOperator
from airflow_provider_zendrive.testing import ZenDriveEmulator

if TYPE_CHECKING:
    from airflow.sdk.types import OutletEventAccessorsProtocol

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


class _Event:
    def __init__(self) -> None:
        self.extra: dict[str, Any] = {}


def as_accessors(events: dict[Any, _Event]) -> OutletEventAccessorsProtocol:
    """The fake ``outlet_events``: what the operator uses of Airflow's accessors (``[asset].extra``)."""
    return cast("OutletEventAccessorsProtocol", events)


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
    op.execute({"outlet_events": as_accessors(events), "logical_date": pendulum.datetime(2026, 5, 8)})
    assert events[table].extra["revised"] == 0

    import sqlite3

    with sqlite3.connect(path) as conn:  # the vendor's numbers for May 3 and 4 were different before
        conn.execute(
            "UPDATE zendrive_daily_usage SET total_requests = 5, bytes_sent = 6 WHERE date = '2026-05-03'"
        )
        conn.execute("UPDATE zendrive_daily_usage SET client_errors = 1 WHERE date = '2026-05-04'")
    events = {table: _Event()}
    op.execute({"outlet_events": as_accessors(events), "logical_date": pendulum.datetime(2026, 5, 8)})

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
    upsert_rows(hook, "zendrive_daily_usage", rows(days))
    (revision,) = upsert_rows(
        get_db_hook(sqlite_conn[0]), "zendrive_daily_usage", rows(days, bump={1: 1})
    ).revisions
    assert set(revision.changes) == {"total_requests", "bytes_sent"}


# -- the optional audit trail (its contract on every warehouse: test_table_contract.py) ------------------------

AUDIT = "zendrive_usage_revisions"


def test_the_operator_appends_revisions_to_its_audit_trail_with_the_task_run(
    zendrive_emulator: ZenDriveEmulator, set_connection: Callable[..., str], sqlite_conn: tuple[str, Path]
) -> None:
    import sqlite3

    conn_id = set_connection(zendrive_emulator.connection_uri())
    sql_conn, path = sqlite_conn
    op = ZenDriveStatsOperator(
        task_id="pull",
        zendrive_conn_id=conn_id,
        from_date="2026-05-02",
        to_date="2026-05-04",
        sql_conn_id=sql_conn,
        revisions_table=AUDIT,
    )
    context: Any = {"logical_date": pendulum.datetime(2026, 5, 5)}
    op.execute(context)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE zendrive_daily_usage SET unique_ips = 99 WHERE date = '2026-05-03'")
    op.execute(context)
    expected = zendrive_emulator.expected_stats(datetime.date(2026, 5, 3), datetime.date(2026, 5, 3))[
        "daily"
    ][0]
    with sqlite3.connect(path) as conn:
        trail = conn.execute(
            f"SELECT service_id, date, counter, old_value, new_value FROM {AUDIT}"  # noqa: S608
        ).fetchall()
    assert trail == [
        (expected_service(zendrive_emulator), "2026-05-03", "unique_ips", 99, expected["unique_ips"])
    ]


def expected_service(emulator: ZenDriveEmulator) -> int:
    from airflow_provider_zendrive.testing import DEMO_ACCESS_KEY

    return emulator.account(DEMO_ACCESS_KEY).service_id


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"revisions_table": AUDIT}, "needs sql_conn_id"),
        ({"revisions_table": "zendrive_daily_usage", "sql_conn_id": "x"}, "a table of its own"),
        ({"revisions_table": "bad name;", "sql_conn_id": "SQLITE"}, "not a valid table name"),
    ],
)
def test_a_bad_audit_trail_fails_before_any_request(
    zendrive_emulator: ZenDriveEmulator,
    set_connection: Callable[..., str],
    sqlite_conn: tuple[str, Path],
    kwargs: dict[str, Any],
    problem: str,
) -> None:
    from airflow_provider_zendrive.exceptions import ZenDriveInputError

    if kwargs.get("sql_conn_id") == "SQLITE":
        kwargs = {**kwargs, "sql_conn_id": sqlite_conn[0]}
    op = ZenDriveStatsOperator(
        task_id="pull", zendrive_conn_id=set_connection(zendrive_emulator.connection_uri()), **kwargs
    )
    with pytest.raises(ZenDriveInputError, match=problem):
        op.execute(cast("Any", {"logical_date": pendulum.datetime(2026, 5, 5)}))
    assert zendrive_emulator.requests == []
