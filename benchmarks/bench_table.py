"""
Table sink: upserting 366 x N daily rows (N services) into SQLite and PostgreSQL.

Ours is :func:`airflow_provider_zendrive._outputs.tables.upsert_rows`, what ``ZenDriveStatsOperator`` runs for
``sql_conn_id`` (``CREATE TABLE IF NOT EXISTS`` + one ``executemany`` of the dialect's upsert, one transaction).
The baseline is common-sql's ``DbApiHook.insert_rows(table, rows, target_fields, replace=True)`` with its
defaults (``commit_every=1000``; row by row on SQLite, ``executemany`` per 1000 rows on PostgreSQL, whose hook
sets ``supports_executemany``), given the conflict key as ``replace_index``. Both start from the same row dicts
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
                results.append(
                    Result(
                        "Table sink",
                        "PostgreSQL",
                        "not run",
                        "not run",
                        Series(),
                        "<= 1",
                        None,
                        f"skipped: {exc}",
                    )
                )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return results


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
            met = ratio.median <= 1.0
            note = detail
            if not met:
                note += "; " + _miss_reason(name, len(rows), ratio)
            results.append(
                Result(
                    "Table sink: upsert_rows / insert_rows(replace=True)",
                    f"{name}, 366 x {services} = {len(rows)} rows, {situation}",
                    Series(ours).fmt(),
                    Series(base).fmt(),
                    ratio,
                    "<= 1",
                    met,
                    note,
                )
            )
    return results


def _miss_reason(name: str, rows: int, ratio: Series) -> str:
    reason = "slower than the baseline"
    if min(ratio.values) < 1 < max(ratio.values):
        reason += " by a median within the spread (some repeats faster, some slower)"
    if name == "PostgreSQL" and rows <= 1000:
        reason += (
            ": with at most 1000 rows both send one executemany of the same INSERT ... ON CONFLICT (the "
            "PostgreSQL hook sets supports_executemany) and commit once; ours also runs CREATE TABLE IF NOT "
            "EXISTS first (one more round trip), as the operator does by default"
        )
    return reason


if __name__ == "__main__":
    raise SystemExit(cli(__doc__ or "", run))
