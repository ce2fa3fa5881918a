"""Revisions: a write that changes the counters of rows already in the table says so (log and asset event)."""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import pendulum
import pytest
from zendrive_expected import DAILY_KEYS

from airflow_provider_zendrive._outputs.tables import Revision, get_db_hook, upsert_rows
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


def check_revisions(conn_id: str) -> None:
    hook = get_db_hook(conn_id)
    first = upsert_rows(hook, "zendrive_daily_usage", rows(range(1, 4)))
    assert (first.rows, first.revisions) == (3, [])  # new rows are not revisions

    later = datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC)
    same = upsert_rows(get_db_hook(conn_id), "zendrive_daily_usage", rows(range(1, 4)), fetched_at=later)
    assert same.revisions == []  # fetched_at alone changing is not a revision

    changed = upsert_rows(get_db_hook(conn_id), "zendrive_daily_usage", rows(range(2, 6), bump={3: 7}))
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


# -- the optional audit trail ------------------------------------------------------------------------------------

AUDIT = "zendrive_usage_revisions"
#: "What changed after we invoiced?": the query the operator guide documents, in its portable form.
AFTER_INVOICE = (
    f"SELECT date, counter, old_value, new_value, revised_by FROM {AUDIT} "  # noqa: S608
    "WHERE service_id = {mark} AND date >= {mark} AND date <= {mark} AND revised_at > {mark} "
    "ORDER BY date, counter"
)


def check_audit_trail(conn_id: str) -> None:
    invoiced = datetime.datetime(2026, 6, 3, 9, tzinfo=datetime.UTC)
    hook = get_db_hook(conn_id)
    upsert_rows(hook, "zendrive_daily_usage", rows(range(1, 4)), revisions_table=AUDIT, revised_by="first")
    assert get_db_hook(conn_id).get_records(f"SELECT COUNT(*) FROM {AUDIT}")[0][0] == 0  # noqa: S608

    before = invoiced - datetime.timedelta(days=1)
    upsert_rows(  # a revision before the invoice: not in the answer
        get_db_hook(conn_id),
        "zendrive_daily_usage",
        rows(range(1, 4), bump={1: 1}),
        fetched_at=before,
        revisions_table=AUDIT,
        revised_by="before",
    )
    after = invoiced + datetime.timedelta(days=2)
    upsert_rows(
        get_db_hook(conn_id),
        "zendrive_daily_usage",
        rows(range(1, 4), bump={1: 1, 3: 7}),
        fetched_at=after,
        revisions_table=AUDIT,
        revised_by="zendrive_daily_billing.pull_daily_usage run x try 1",
    )
    hook = get_db_hook(conn_id)
    stamp = invoiced.replace(tzinfo=None).isoformat(sep=" ")
    answer = hook.get_records(
        AFTER_INVOICE.format(mark=hook.placeholder), parameters=(7, "2026-05-01", "2026-05-31", stamp)
    )
    assert [(str(r[0])[:10], *r[1:]) for r in answer] == [
        (
            "2026-05-03",
            "bytes_sent",
            10**12 + 3,
            10**12 + 38,
            "zendrive_daily_billing.pull_daily_usage run x try 1",
        ),
        ("2026-05-03", "total_requests", 3000, 3007, "zendrive_daily_billing.pull_daily_usage run x try 1"),
    ]
    assert hook.get_records(f"SELECT COUNT(*) FROM {AUDIT}")[0][0] == 4  # noqa: S608 - two before, two after


def test_sqlite_audit_trail_answers_what_changed_after_we_invoiced(sqlite_conn: tuple[str, Path]) -> None:
    check_audit_trail(sqlite_conn[0])


def test_postgres_audit_trail_answers_what_changed_after_we_invoiced(
    set_connection: Callable[..., str], postgresql_db: dict[str, Any]
) -> None:
    check_audit_trail(set_connection(postgresql_db["uri"], "zd_pg_audit"))


def test_the_audit_trail_is_written_in_the_upserts_transaction(sqlite_conn: tuple[str, Path]) -> None:
    """A failing audit insert rolls the upsert back too: the table never holds a revision the trail lacks."""
    import sqlite3

    conn_id, path = sqlite_conn
    upsert_rows(get_db_hook(conn_id), "zendrive_daily_usage", rows(range(1, 3)), revisions_table=AUDIT)
    with sqlite3.connect(path) as conn:  # an audit table the insert cannot satisfy
        conn.execute(f"DROP TABLE {AUDIT}")
        conn.execute(f"CREATE TABLE {AUDIT} (service_id BIGINT NOT NULL CHECK (service_id < 0))")
    with pytest.raises(sqlite3.Error):
        upsert_rows(
            get_db_hook(conn_id),
            "zendrive_daily_usage",
            rows(range(1, 3), bump={2: 1}),
            revisions_table=AUDIT,
        )
    with sqlite3.connect(path) as conn:
        (total,) = conn.execute(
            "SELECT total_requests FROM zendrive_daily_usage WHERE date = '2026-05-02'"
        ).fetchone()
    assert total == 2000  # unchanged


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
