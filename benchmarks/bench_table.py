"""
Table sink: upserting 366 x N daily rows (N services) into SQLite, PostgreSQL and MariaDB.

Ours is :func:`airflow_provider_zendrive._outputs.tables.upsert_rows`, what ``ZenDriveStatsOperator`` runs for
``sql_conn_id``, revision detection included: ``CREATE TABLE IF NOT EXISTS`` (committed on its own), then one
transaction: on PostgreSQL a ``COPY`` into a temporary table and one ``INSERT ... ON CONFLICT DO UPDATE`` that
also returns the changed rows; elsewhere a read of the rows it replaces and one ``executemany`` of the
dialect's upsert (``REPLACE INTO``). The baseline is common-sql's
``DbApiHook.insert_rows(table, rows, target_fields, replace=True)`` with its defaults (``commit_every=1000``;
row by row on SQLite, ``executemany`` per 1000 rows on PostgreSQL and MySQL, whose hooks set
``supports_executemany``), given the conflict key as ``replace_index``; it detects no revisions. Both start from the same row dicts
(the baseline's timing includes turning them into tuples) and write through the same hook type, from the same
Airflow connection.

Two situations, each on a table created beforehand off the clock: ``insert`` (the table is empty) and
``rerun`` (every row is already there, so every row conflicts and is updated).

Run alone: ``python benchmarks/bench_table.py [--quick]``.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

from _common import Result, Series, cli, eprint, isolate_airflow_home, quiet_logs, ratio_series

TABLE = "zendrive_daily_usage"
START = datetime.date(2024, 1, 1)
END = datetime.date(2024, 12, 31)  # 366 days
FETCHED_AT = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)


def make_rows(services: int) -> list[dict[str, Any]]:
    """366 daily rows for each of ``services`` services, as the operator builds them."""
    from airflow_provider_zendrive._outputs.rows import daily_rows
    from airflow_provider_zendrive.testing._data import window_stats

    rows: list[dict[str, Any]] = []
    for service_id in range(1, services + 1):
        rows.extend(daily_rows(window_stats(1000 + service_id, START, END)))
    return rows


def _ours(hook: Any, rows: list[dict[str, Any]]) -> None:
    from airflow_provider_zendrive._outputs.tables import upsert_rows

    upsert_rows(hook, TABLE, rows, create_table=True, fetched_at=FETCHED_AT)


def _baseline(hook: Any, rows: list[dict[str, Any]]) -> None:
    from airflow_provider_zendrive._outputs.rows import COLUMNS
    from airflow_provider_zendrive._outputs.tables import KEY_COLUMNS, TABLE_COLUMNS

    fetched = FETCHED_AT.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
    values = [(*(row[name] for name in COLUMNS), fetched) for row in rows]
    hook.insert_rows(
        TABLE, values, target_fields=list(TABLE_COLUMNS), replace=True, replace_index=list(KEY_COLUMNS)
    )


def _reset_table(hook: Any, prefill: list[dict[str, Any]] | None) -> None:
    """Drop and re-create the table off the clock; fill it with ``prefill`` for a rerun."""
    from airflow_provider_zendrive._outputs.tables import create_table_sql, quote_table

    quoted = quote_table(TABLE, hook.escape_word_format)
    hook.run(
        [f"DROP TABLE IF EXISTS {quoted}", create_table_sql(quoted, hook.escape_word_format)], autocommit=True
    )
    if prefill:
        _ours(hook, prefill)


def _count(hook: Any) -> int:
    row = hook.get_first(f"SELECT COUNT(*) FROM {TABLE}")  # noqa: S608 - a constant name
    return int(row[0])


def _time(
    hook: Any, fn: Callable[[Any, list[dict[str, Any]]], None], rows: list[dict[str, Any]], rerun: bool
) -> float:
    _reset_table(hook, rows if rerun else None)
    started = time.perf_counter()
    fn(hook, rows)
    elapsed = time.perf_counter() - started
    count = _count(hook)
    if count != len(rows):
        raise AssertionError(f"{fn.__name__} left {count} rows in the table, expected {len(rows)}")
    return elapsed


def run(quick: bool) -> list[Result]:
    """Measure every database x size x situation, ours and the baseline interleaved; return the table lines."""
    isolate_airflow_home()
    from postgres_server import PostgresUnavailable, postgres_server

    sizes = (1, 10) if quick else (1, 10, 100)
    repeats = 2 if quick else 5
    results: list[Result] = []
    folder = tempfile.mkdtemp(prefix="zendrive-bench-sqlite-")
    try:
        os.environ["AIRFLOW_CONN_ZENDRIVE_BENCH_SQLITE"] = json.dumps(
            {"conn_type": "sqlite", "host": f"{folder}/bench.db"}
        )
        with quiet_logs():
            results.extend(
                _measure_db(
                    "SQLite", "zendrive_bench_sqlite", f"sqlite3 {sqlite3.sqlite_version}", sizes, repeats
                )
            )
            try:
                with postgres_server() as server:
                    import psycopg

                    with psycopg.connect(
                        host=str(server["host"]),
                        port=int(str(server["port"])),
                        user="postgres",
                        dbname="postgres",
                        autocommit=True,
                    ) as conn:
                        conn.execute('CREATE DATABASE "bench"')
                    os.environ["AIRFLOW_CONN_ZENDRIVE_BENCH_PG"] = (
                        f"postgres://postgres@{server['host']}:{server['port']}/bench"
                    )
                    detail = f"{server['version']}, fsync off"
                    results.extend(_measure_db("PostgreSQL", "zendrive_bench_pg", detail, sizes, repeats))
            except PostgresUnavailable as exc:
                eprint(f"table: PostgreSQL skipped: {exc}")
                results.append(_not_run("PostgreSQL", exc))
            results.extend(_measure_mariadb(sizes, repeats))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return results


def _not_run(name: str, exc: Exception) -> Result:
    return Result("Table sink", name, "not run", "not run", Series(), "<= 1", None, f"skipped: {exc}")


def _measure_mariadb(sizes: tuple[int, ...], repeats: int) -> list[Result]:
    """The MariaDB rows, on the tests' throwaway server (``tests/mariadb_server.py``), through the MySQL provider."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "tests"))
    from mariadb_server import MariaDBUnavailable, mariadb_server

    try:
        with mariadb_server() as server:
            import MySQLdb

            conn = MySQLdb.connect(host=str(server["host"]), port=int(str(server["port"])), user="root")
            try:
                conn.cursor().execute("CREATE DATABASE bench")
            finally:
                conn.close()
            os.environ["AIRFLOW_CONN_ZENDRIVE_BENCH_MARIADB"] = (
                f"mysql://root@{server['host']}:{server['port']}/bench"
            )
            detail = f"{server['version']}, mysqlclient, no flush at commit"
            return _measure_db("MariaDB", "zendrive_bench_mariadb", detail, sizes, repeats)
    except MariaDBUnavailable as exc:
        eprint(f"table: MariaDB skipped: {exc}")
        return [_not_run("MariaDB", exc)]


#: The issue 24 target: the PostgreSQL write of 100 services x a year, revisions detected, at most 0.6 x.
_BULK_TARGET = {("PostgreSQL", 36600): 0.6}


def _measure_db(name: str, conn_id: str, detail: str, sizes: tuple[int, ...], repeats: int) -> list[Result]:
    from airflow_provider_zendrive._outputs.tables import get_db_hook

    hook = get_db_hook(conn_id)
    _time(hook, _ours, make_rows(1), rerun=False)  # warm up: imports, dialect, connection
    _time(hook, _baseline, make_rows(1), rerun=False)
    results = []
    for services in sizes:
        rows = make_rows(services)
        for situation, rerun in (("insert", False), ("rerun", True)):
            ours: list[float] = []
            base: list[float] = []
            for repeat in range(repeats):
                order = [(_ours, ours), (_baseline, base)]
                if repeat % 2:
                    order.reverse()
                for fn, sink in order:
                    sink.append(_time(hook, fn, rows, rerun))
            ratio = ratio_series(ours, base)
            eprint(
                f"table: {name} {len(rows)} rows {situation}: ours {Series(ours).median:.3f} s, "
                f"baseline {Series(base).median:.3f} s"
            )
            target = _BULK_TARGET.get((name, len(rows)), 1.0)
            met = ratio.median <= target
            note = detail
            if not met:
                note += "; " + _miss_reason(ratio, target)
            results.append(
                Result(
                    "Table sink: upsert_rows / insert_rows(replace=True)",
                    f"{name}, 366 x {services} = {len(rows)} rows, {situation}",
                    Series(ours).fmt(),
                    Series(base).fmt(),
                    ratio,
                    f"<= {target:g}",
                    met,
                    note,
                )
            )
    return results


def _miss_reason(ratio: Series, target: float) -> str:
    reason = "slower than the baseline" if target == 1.0 else f"above {target:g} x the baseline"
    if min(ratio.values) < target < max(ratio.values):
        reason += " by a median within the spread (some repeats below the target, some above)"
    return reason


if __name__ == "__main__":
    raise SystemExit(cli(__doc__ or "", run))
