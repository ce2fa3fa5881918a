"""
The table contract, on every warehouse we name (the ``warehouse`` fixture: SQLite, PostgreSQL, MariaDB): exact
rows, zero rows for quiet days, reruns in place, the column types, revisions and their audit trail, all or
nothing, and a mapped fleet's concurrent first writes.
"""

from __future__ import annotations

import datetime
import threading
from collections.abc import Callable
from typing import Any, cast

import pytest
from warehouses import Warehouse
from zendrive_expected import COLUMNS, DAILY_KEYS, truth_tuples

from airflow_provider_zendrive._outputs.tables import TABLE_COLUMNS, Revision, upsert_rows
from airflow_provider_zendrive.operators.zendrive import ZenDriveStatsOperator
from airflow_provider_zendrive.testing import DEMO_SERVICE_ID

TABLE = "zendrive_daily_usage"
AUDIT = "zendrive_usage_revisions"
COUNTERS = DAILY_KEYS[1:]  # every column of a daily row after its date
D = datetime.date


def rows(days: range, bump: dict[int, int] | None = None, service_id: int = 7) -> list[dict[str, Any]]:
    """Rows of May 2026 with distinct counters; ``bump`` adds to a day's ``total_requests`` (and bytes)."""
    bump = bump or {}
    return [
        {
            "service_id": service_id,
            "date": f"2026-05-{day:02d}",
            **{name: 100 * day + index for index, name in enumerate(COUNTERS)},
            "total_requests": 1000 * day + bump.get(day, 0),
            "bytes_sent": 10**12 + day + 5 * bump.get(day, 0),
        }
        for day in days
    ]


def pull(warehouse: Warehouse, first: D, last: D, **kwargs: Any) -> None:
    """One run of the operator into the warehouse, from the emulator (the ``zendrive_test`` connection)."""
    op = ZenDriveStatsOperator(
        task_id="pull",
        zendrive_conn_id="zendrive_test",
        from_date=first.isoformat(),
        to_date=last.isoformat(),
        sql_conn_id=warehouse.conn_id,
        **kwargs,
    )
    op.execute(cast("Any", {}))


def test_the_operator_writes_the_exact_rows_with_zero_rows_for_quiet_days_and_reruns_in_place(
    zendrive_conn: str, warehouse: Warehouse
) -> None:
    for _ in range(2):  # a rerun
        pull(warehouse, D(2026, 5, 1), D(2026, 5, 7))  # May 1st has no traffic: a zero row
    assert warehouse.rows() == truth_tuples(DEMO_SERVICE_ID, D(2026, 5, 1), D(2026, 5, 7))
    pull(warehouse, D(2026, 5, 5), D(2026, 5, 31))  # an overlapping window: the rest of the month
    assert warehouse.rows() == truth_tuples(DEMO_SERVICE_ID, D(2026, 5, 1), D(2026, 5, 31))
    assert any(row[2] == 0 for row in warehouse.rows())


def test_an_empty_write_creates_the_tables_with_bigint_counters_a_date_and_a_timestamp(
    warehouse: Warehouse,
) -> None:
    # fill_missing_days=False and a day without traffic give no rows; downstream queries still need the table.
    assert upsert_rows(warehouse.hook(), TABLE, [], revisions_table=AUDIT).rows == 0
    assert warehouse.rows() == []
    types = warehouse.column_types(TABLE)
    assert list(types) == list(TABLE_COLUMNS)
    assert all(types[name] == "bigint" for name in TABLE_COLUMNS if name not in ("date", "fetched_at"))
    assert types["date"] == "date"
    assert types["fetched_at"].startswith("timestamp")
    assert warehouse.records(f"SELECT COUNT(*) FROM {AUDIT}") == [(0,)]  # noqa: S608


def test_writes_report_revisions(warehouse: Warehouse) -> None:
    first = upsert_rows(warehouse.hook(), TABLE, rows(range(1, 4)))
    assert (first.rows, first.revisions) == (3, [])  # new rows are not revisions

    later = datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC)
    same = upsert_rows(warehouse.hook(), TABLE, rows(range(1, 4)), fetched_at=later)
    assert same.revisions == []  # fetched_at alone changing is not a revision

    changed = upsert_rows(warehouse.hook(), TABLE, rows(range(2, 6), bump={3: 7}))
    assert changed.rows == 4
    assert changed.revisions == [
        Revision(7, "2026-05-03", {"total_requests": (3000, 3007), "bytes_sent": (10**12 + 3, 10**12 + 38)})
    ]


#: "What changed after we invoiced?": the query the operator guide documents, in its portable form.
AFTER_INVOICE = (
    f"SELECT date, counter, old_value, new_value, revised_by FROM {AUDIT} "  # noqa: S608
    "WHERE service_id = {mark} AND date >= {mark} AND date <= {mark} AND revised_at > {mark} "
    "ORDER BY date, counter"
)


def test_the_audit_trail_answers_what_changed_after_we_invoiced(warehouse: Warehouse) -> None:
    invoiced = datetime.datetime(2026, 6, 3, 9, tzinfo=datetime.UTC)
    upsert_rows(warehouse.hook(), TABLE, rows(range(1, 4)), revisions_table=AUDIT, revised_by="first")
    assert warehouse.records(f"SELECT COUNT(*) FROM {AUDIT}") == [(0,)]  # noqa: S608

    upsert_rows(  # a revision before the invoice: not in the answer
        warehouse.hook(),
        TABLE,
        rows(range(1, 4), bump={1: 1}),
        fetched_at=invoiced - datetime.timedelta(days=1),
        revisions_table=AUDIT,
        revised_by="before",
    )
    by = "zendrive_daily_billing.pull_daily_usage run x try 1"
    upsert_rows(
        warehouse.hook(),
        TABLE,
        rows(range(1, 4), bump={1: 1, 3: 7}),
        fetched_at=invoiced + datetime.timedelta(days=2),
        revisions_table=AUDIT,
        revised_by=by,
    )
    stamp = invoiced.replace(tzinfo=None).isoformat(sep=" ")
    answer = warehouse.records(AFTER_INVOICE, (7, "2026-05-01", "2026-05-31", stamp))
    assert [(str(r[0])[:10], r[1], int(r[2]), int(r[3]), r[4]) for r in answer] == [
        ("2026-05-03", "bytes_sent", 10**12 + 3, 10**12 + 38, by),
        ("2026-05-03", "total_requests", 3000, 3007, by),
    ]
    assert warehouse.records(f"SELECT COUNT(*) FROM {AUDIT}") == [(4,)]  # noqa: S608 - two before, two after


# -- all or nothing -------------------------------------------------------------------------------------------


def test_an_audit_insert_failing_after_the_upsert_leaves_the_usage_table_unchanged(
    warehouse: Warehouse,
) -> None:
    """
    The audit insert comes after the upsert, in its transaction. On MySQL and MariaDB any DDL statement commits
    (``CREATE TABLE IF NOT EXISTS`` of a table that exists too): one between the two would commit the upsert.
    """
    upsert_rows(warehouse.hook(), TABLE, rows(range(1, 3)), revisions_table=AUDIT)
    before = warehouse.rows(fetched_at=True)
    warehouse.run(  # an audit trail the insert cannot satisfy: a column missing
        f"DROP TABLE {AUDIT}",
        f"CREATE TABLE {AUDIT} (service_id BIGINT NOT NULL, date DATE NOT NULL, counter VARCHAR(32) NOT NULL, "
        "old_value BIGINT NOT NULL, new_value BIGINT NOT NULL, revised_at TIMESTAMP NOT NULL)",
    )
    later = datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC)
    with pytest.raises(Exception, match="revised_by"):
        upsert_rows(
            warehouse.hook(),
            TABLE,
            rows(range(1, 4), bump={2: 1}),  # day 2 revised, day 3 new
            fetched_at=later,
            revisions_table=AUDIT,
        )
    assert warehouse.rows(fetched_at=True) == before  # no new day, no new value, no new fetched_at
    assert warehouse.records(f"SELECT COUNT(*) FROM {AUDIT}") == [(0,)]  # noqa: S608


@pytest.mark.parametrize("existing", [True, False], ids=["existing-table", "new-table"])
def test_a_row_failing_mid_write_leaves_the_table_as_it_was(warehouse: Warehouse, existing: bool) -> None:
    if existing:
        upsert_rows(warehouse.hook(), TABLE, rows(range(1, 8)))
    before = warehouse.rows(fetched_at=True) if existing else []
    bad = rows(range(5, 15), bump={5: 1, 6: 1})
    bad[7]["bytes_sent"] = None  # violates NOT NULL after seven good rows, two of them revisions
    with pytest.raises(Exception, match="bytes_sent"):
        upsert_rows(warehouse.hook(), TABLE, bad, revisions_table=AUDIT)
    assert warehouse.rows(fetched_at=True) == before  # a new table: created, and empty
    assert warehouse.records(f"SELECT COUNT(*) FROM {AUDIT}") == [(0,)]  # noqa: S608


# -- a mapped fleet's first run -------------------------------------------------------------------------------

WRITERS = 6


def test_concurrent_first_writes_to_new_tables_all_succeed(warehouse: Warehouse) -> None:
    """
    Several tasks create the same new tables at once. Without a lock, PostgreSQL fails all but one with
    UniqueViolation on pg_type although every statement says IF NOT EXISTS.
    """
    for attempt in range(3):  # a fresh table each time: the race is at creation
        table = f"usage_race_{attempt}"
        start = threading.Barrier(WRITERS)
        errors: list[BaseException] = []

        def write(
            service_id: int,
            table: str = table,
            start: threading.Barrier = start,
            errors: list[BaseException] = errors,
        ) -> None:
            hook = warehouse.hook()
            try:
                start.wait(timeout=30)
                upsert_rows(
                    hook, table, rows(range(1, 21), service_id=service_id), revisions_table=f"{table}_rev"
                )
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=write, args=(100 + n,)) for n in range(WRITERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert errors == []
        assert len(warehouse.rows(table)) == WRITERS * 20


def test_postgres_writes_the_same_through_psycopg2(
    monkeypatch: pytest.MonkeyPatch, set_connection: Callable[..., str], postgresql_db: dict[str, Any]
) -> None:
    """The PostgreSQL provider runs on psycopg2 where psycopg 3 or SQLAlchemy 2 is missing: COPY works there too."""
    import psycopg2

    monkeypatch.setattr("airflow.providers.postgres.hooks.postgres.USE_PSYCOPG3", False)
    warehouse = Warehouse("postgresql", set_connection(str(postgresql_db["uri"]), "zd_pg2"))
    assert isinstance(warehouse.hook().get_conn(), psycopg2.extensions.connection)
    upsert_rows(warehouse.hook(), TABLE, rows(range(1, 4)), revisions_table=AUDIT)
    changed = upsert_rows(warehouse.hook(), TABLE, rows(range(2, 6), bump={3: 7}), revisions_table=AUDIT)
    assert changed.revisions == [
        Revision(7, "2026-05-03", {"total_requests": (3000, 3007), "bytes_sent": (10**12 + 3, 10**12 + 38)})
    ]
    expected = rows(range(1, 6), bump={3: 7})
    assert warehouse.rows() == [tuple(row[name] for name in COLUMNS) for row in expected]
    assert warehouse.records(f"SELECT COUNT(*) FROM {AUDIT}") == [(2,)]  # noqa: S608
    bad = rows(range(1, 8))
    bad[5]["bytes_sent"] = None
    with pytest.raises(psycopg2.Error, match="bytes_sent"):
        upsert_rows(warehouse.hook(), TABLE, bad)
    assert len(warehouse.rows()) == 5
