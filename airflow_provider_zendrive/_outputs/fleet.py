"""
A batch of services in one task: the bounded thread pool that pulls them, and the progress ledger that lets a
retry pull only the services an earlier try of the same run could not.

**Why a table.** Airflow clears a task instance's XComs when a new try starts (the Task Execution API hands
the worker the keys to purge), so nothing a failed try pushes survives into its retry. The warehouse does: the
ledger (default ``zendrive_fleet_progress``, next to the usage table) holds one row per service written by a
task run that has not succeeded yet, keyed by ``(run, conn_id)``, where ``run`` names the task instance
without its try (``dag_id.task_id[map_index] run run_id``). Each row is inserted in the same transaction as
that service's usage rows (:func:`~airflow_provider_zendrive._outputs.tables.upsert_rows`'s ``after_write``),
so a service counts as done exactly when its rows are committed, whatever kills the task afterwards. When
every service of the batch is done, the task deletes its run's rows: a table that only holds unfinished runs,
and a later clear of a successful task pulls the whole batch again.

Columns: ``run`` (``VARCHAR(500)``), ``conn_id`` (``VARCHAR(250)``, Airflow's limit), ``service_id``,
``written_rows`` and ``revised_rows`` (``BIGINT``), ``done_at`` (``TIMESTAMP``, UTC); primary key ``(run, conn_id)``.
"""

from __future__ import annotations

import datetime
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from airflow_provider_zendrive._outputs.tables import connection, create_sql, quote_table, transaction

if TYPE_CHECKING:
    from airflow.providers.common.sql.hooks.sql import DbApiHook

    from airflow_provider_zendrive._outputs.tables import TableWrite

__all__ = [
    "PROGRESS_COLUMNS",
    "PROGRESS_TYPES",
    "FleetProgress",
    "Outcome",
    "PerThread",
    "ServiceDone",
    "run_bounded",
]

#: The SQL type of each column of the progress ledger, in order.
PROGRESS_TYPES: dict[str, str] = {
    "run": "VARCHAR(500)",
    "conn_id": "VARCHAR(250)",
    "service_id": "BIGINT",
    "written_rows": "BIGINT",
    "revised_rows": "BIGINT",
    "done_at": "TIMESTAMP",
}
#: Every column of the progress ledger, in order.
PROGRESS_COLUMNS: tuple[str, ...] = tuple(PROGRESS_TYPES)

T = TypeVar("T")


@dataclass(frozen=True)
class ServiceDone:
    """
    One service of a batch whose rows are committed.

    :param conn_id: its ZenDRIVE connection.
    :param service_id: the service the API answered for.
    :param rows: rows upserted.
    :param revised: rows that existed with other counters.
    """

    conn_id: str
    service_id: int
    rows: int
    revised: int


class FleetProgress:
    """
    The progress ledger of one task run (see the module docstring).

    :param hook: the warehouse's hook.
    :param table: the ledger, ``[schema.]name``.
    :param run: the task instance without its try, ``dag_id.task_id[map_index] run run_id``.
    """

    def __init__(self, hook: DbApiHook, table: str, run: str) -> None:
        self.hook = hook
        self.table = table
        self.run = run
        self.quoted = quote_table(table, hook.escape_word_format)

    def ddl(self) -> dict[str, str]:
        """The ledger's ``CREATE TABLE IF NOT EXISTS``, for :func:`~airflow_provider_zendrive._outputs.tables.create_tables`."""
        fmt = self.hook.escape_word_format
        return {self.quoted: create_sql(self.quoted, PROGRESS_TYPES, fmt, ("run", "conn_id"))}

    def done(self) -> dict[str, ServiceDone]:
        """The services an earlier try of this run committed, by connection id."""
        fmt = self.hook.escape_word_format
        names = ", ".join(
            fmt.format(name) for name in ("conn_id", "service_id", "written_rows", "revised_rows")
        )
        select = f"SELECT {names} FROM {self.quoted} WHERE {fmt.format('run')} = {self.hook.placeholder}"  # noqa: S608
        with connection(self.hook) as conn, transaction(conn) as cursor:
            cursor.execute(select, (self.run,))
            records = cursor.fetchall()
        return {
            str(record[0]): ServiceDone(str(record[0]), int(record[1]), int(record[2]), int(record[3]))
            for record in records
        }

    def mark(self, conn_id: str, service_id: int) -> Callable[[Any, TableWrite], None]:
        """
        What records ``conn_id`` as done, inside the transaction that writes its rows (``after_write``).

        :param conn_id: the service's ZenDRIVE connection.
        :param service_id: the service its pull answered for.
        """
        fmt = self.hook.escape_word_format
        names = ", ".join(fmt.format(name) for name in PROGRESS_COLUMNS)
        marks = ", ".join([self.hook.placeholder] * len(PROGRESS_COLUMNS))
        insert = f"INSERT INTO {self.quoted} ({names}) VALUES ({marks})"  # noqa: S608

        def record(cursor: Any, written: TableWrite) -> None:
            now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None).isoformat(sep=" ")
            cursor.execute(insert, (self.run, conn_id, service_id, written.rows, len(written.revisions), now))

        return record

    def forget(self) -> None:
        """Delete this run's rows: every service of the batch is done."""
        fmt = self.hook.escape_word_format
        delete = f"DELETE FROM {self.quoted} WHERE {fmt.format('run')} = {self.hook.placeholder}"  # noqa: S608
        with connection(self.hook) as conn, transaction(conn) as cursor:
            cursor.execute(delete, (self.run,))


@dataclass(frozen=True)
class Outcome(Generic[T]):
    """
    What one item of :func:`run_bounded` gave: its result, or the exception it raised.

    :param item: the item.
    :param result: the worker's return value (None on error).
    :param error: what it raised (None on success).
    """

    item: str
    result: T | None
    error: BaseException | None


def run_bounded(
    items: Sequence[str], work: Callable[[str], T], max_concurrency: int, *, name: str = "zendrive"
) -> list[Outcome[T]]:
    """
    Run ``work`` on every item, at most ``max_concurrency`` at once in threads; an item that raises does not
    stop the others. Outcomes come back in the order of ``items``.

    :param items: the items (connection ids).
    :param work: what to do with one; it must be safe to run in threads.
    :param max_concurrency: the most threads at once (1: one after the other, still in a thread).
    :param name: the threads' name prefix.
    """

    def attempt(item: str) -> Outcome[T]:
        try:
            return Outcome(item, work(item), None)
        except Exception as exc:  # one service's failure is reported, not propagated
            return Outcome(item, None, exc)

    if not items:
        return []
    with ThreadPoolExecutor(max_workers=min(max_concurrency, len(items)), thread_name_prefix=name) as pool:
        return list(pool.map(attempt, items))


class PerThread(Generic[T]):
    """
    One value per thread, made on first use in that thread (a DB hook: common-sql hooks keep their last
    connection on ``self``, so threads must not share one).

    :param make: what builds the value.
    """

    def __init__(self, make: Callable[[], T]) -> None:
        self._make = make
        self._local = threading.local()

    def get(self) -> T:
        """This thread's value."""
        value: T | None = getattr(self._local, "value", None)
        if value is None:
            value = self._make()
            self._local.value = value
        return value
