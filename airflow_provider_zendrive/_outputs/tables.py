"""
Writing daily rows to any SQL table reachable through a common-sql ``DbApiHook``, idempotently.

* The table (default ``zendrive_daily_usage``) has the columns of :data:`~airflow_provider_zendrive._outputs.rows.COLUMNS`
  plus ``fetched_at`` (UTC timestamp), primary key ``(service_id, date)``, and ``BIGINT`` counters: byte counts
  pass ``2**31`` every day.
* Rows are upserted on the primary key, so a rerun or an overlapping window updates rows in place. On
  PostgreSQL they are ``COPY``-ed into a temporary table, and one ``INSERT ... SELECT ... ON CONFLICT
  (service_id, date) DO UPDATE`` upserts them all and returns the rows whose counters it changed;
  elsewhere one ``executemany`` of the statement the hook's common-sql dialect
  generates (``REPLACE INTO`` on SQLite and MySQL) follows a read of the rows it replaces.
* The tables are created first (``CREATE TABLE IF NOT EXISTS``, see :func:`create_tables`), committed on their
  own; then every upsert runs in one transaction, committed once: any failure rolls all rows back. The DDL never
  shares the writing transaction because MySQL and MariaDB commit at every DDL statement. On SQLite the
  transactions are ``BEGIN IMMEDIATE``, so concurrent writers queue for the lock (up to a minute) instead of
  failing with "database is locked".
* Optionally, an audit trail: with ``revisions_table``, every counter a write changes is appended there (one row
  per changed value: the day, the counter, old and new value, when and by which task), in the same transaction.
  See :data:`REVISION_COLUMNS` and the query in the operator guide ("what changed after we invoiced").
* Values are always bound parameters; identifiers are checked and quoted with the hook's quote characters.

common-sql is imported only when a table is written.
"""

from __future__ import annotations

import contextlib
import datetime
import io
import re
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_provider_zendrive._outputs.rows import COLUMNS
from airflow_provider_zendrive.exceptions import ZenDriveInputError

if TYPE_CHECKING:
    from airflow.providers.common.sql.hooks.sql import DbApiHook

    from airflow_provider_zendrive._outputs.rows import Row

__all__ = [
    "KEY_COLUMNS",
    "REVISION_COLUMNS",
    "REVISION_TYPES",
    "SQLITE_BUSY_TIMEOUT_MS",
    "TABLE_COLUMNS",
    "TABLE_TYPES",
    "Revision",
    "TableWrite",
    "check_table_target",
    "connection",
    "create_revisions_table_sql",
    "create_sql",
    "create_table_sql",
    "create_tables",
    "describe_revision",
    "get_db_hook",
    "quote_table",
    "transaction",
    "upsert_rows",
]

#: Every column of the table, in order.
TABLE_COLUMNS: tuple[str, ...] = (*COLUMNS, "fetched_at")
#: The primary key, and the conflict target of the upsert.
KEY_COLUMNS: tuple[str, ...] = ("service_id", "date")
#: The SQL type of each column of the table, in order (what ``CREATE TABLE`` declares).
TABLE_TYPES: dict[str, str] = {
    name: {"date": "DATE", "fetched_at": "TIMESTAMP"}.get(name, "BIGINT") for name in TABLE_COLUMNS
}
#: The columns of the optional audit trail (``revisions_table``): one row per counter value a write changed.
REVISION_COLUMNS: tuple[str, ...] = (
    "service_id",
    "date",
    "counter",
    "old_value",
    "new_value",
    "revised_at",
    "revised_by",
)
#: The SQL type of each column of the audit trail, in order.
REVISION_TYPES: dict[str, str] = {
    "service_id": "BIGINT",
    "date": "DATE",
    "counter": "VARCHAR(32)",
    "old_value": "BIGINT",
    "new_value": "BIGINT",
    "revised_at": "TIMESTAMP",
    "revised_by": "VARCHAR(500)",
}
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")


def get_db_hook(sql_conn_id: str) -> DbApiHook:
    """
    Return the hook of an Airflow connection, checking that it is a common-sql ``DbApiHook``.

    :param sql_conn_id: any SQL connection (sqlite, postgres, mysql, ...).
    :raises ZenDriveInputError: if common-sql is missing or the connection's hook is not a ``DbApiHook``.
    """
    try:
        from airflow.providers.common.sql.hooks.sql import DbApiHook
    except ImportError:
        raise ZenDriveInputError(
            "Writing to a table needs apache-airflow-providers-common-sql: "
            "pip install 'airflow-provider-zendrive[sql]' (plus your database's provider)."
        ) from None
    from airflow.sdk import BaseHook

    connection = BaseHook.get_connection(sql_conn_id)
    try:
        hook = connection.get_hook()  # type: ignore[no-untyped-call]
    except Exception as exc:
        raise ZenDriveInputError(
            f"sql_conn_id={sql_conn_id!r} (type {connection.conn_type!r}) has no usable hook: "
            f"{type(exc).__name__}: {exc}. Install the provider of that database."
        ) from None
    if not isinstance(hook, DbApiHook):
        raise ZenDriveInputError(
            f"sql_conn_id={sql_conn_id!r} has type {connection.conn_type!r}, whose hook "
            f"{type(hook).__name__} is not a common-sql DbApiHook; use a SQL connection "
            "(sqlite, postgres, mysql, ...)."
        )
    return hook


def quote_table(table: str, quote_format: str = '"{}"') -> str:
    """
    Check a ``[catalog.][schema.]table`` name and quote each part.

    :param table: the name; each part must be a plain identifier (letters, digits, ``_``, ``$``).
    :param quote_format: the hook's ``escape_word_format``, e.g. ``"{}"`` or ``\\`{}\\```.
    :raises ZenDriveInputError: for any other name.
    """
    parts = table.split(".")
    if not table or len(parts) > 3 or not all(_IDENTIFIER.fullmatch(part) for part in parts):
        raise ZenDriveInputError(
            f"table={table!r} is not a valid table name: use [schema.]name made of letters, digits and _."
        )
    return ".".join(quote_format.format(part) for part in parts)


def check_table_target(hook: DbApiHook, table: str) -> None:
    """
    Refuse a table that cannot be written, before the API is called: an invalid name, a database that cannot be
    opened (a SQLite file in a missing folder, a server that is down), or on SQLite a schema that is not
    attached.

    :raises ZenDriveInputError: with what to fix.
    """
    quote_table(table, hook.escape_word_format)
    try:
        conn: Any = hook.get_conn()
    except Exception as exc:
        raise ZenDriveInputError(
            f"The database of the table {table!r} cannot be opened: {type(exc).__name__}: {exc}"
        ) from None
    try:
        if isinstance(conn, sqlite3.Connection):
            parts = table.split(".")
            schemas = {row[1] for row in conn.execute("PRAGMA database_list")}
            if len(parts) > 2 or (len(parts) == 2 and parts[0] not in schemas):
                raise ZenDriveInputError(
                    f"table={table!r}: SQLite knows the schemas {sorted(schemas)} only; use name or schema.name."
                )
    finally:
        with contextlib.suppress(Exception):
            conn.close()


def create_sql(
    quoted_table: str, types: Mapping[str, str], quote_format: str = '"{}"', key: Sequence[str] = ()
) -> str:
    """
    A portable ``CREATE TABLE IF NOT EXISTS`` statement: every column ``NOT NULL``, in the order of ``types``.

    :param quoted_table: the name, from :func:`quote_table`.
    :param types: ``{column: SQL type}``.
    :param quote_format: the hook's ``escape_word_format``.
    :param key: the primary key's columns; empty: no key.
    """
    columns = [f"{quote_format.format(name)} {sql_type} NOT NULL" for name, sql_type in types.items()]
    if key:
        columns.append(f"PRIMARY KEY ({', '.join(quote_format.format(name) for name in key)})")
    return f"CREATE TABLE IF NOT EXISTS {quoted_table} ({', '.join(columns)})"


def create_table_sql(quoted_table: str, quote_format: str = '"{}"') -> str:
    """The ``CREATE TABLE IF NOT EXISTS`` statement of the usage table."""
    return create_sql(quoted_table, TABLE_TYPES, quote_format, KEY_COLUMNS)


def create_revisions_table_sql(quoted_table: str, quote_format: str = '"{}"') -> str:
    """The ``CREATE TABLE IF NOT EXISTS`` statement of the audit trail (append-only, no key)."""
    return create_sql(quoted_table, REVISION_TYPES, quote_format)


@dataclass(frozen=True)
class Revision:
    """
    A row that already existed and whose counters the upsert changed.

    :param service_id: the service.
    :param date: the day, ``YYYY-MM-DD``.
    :param changes: ``{counter: (old, new)}`` for each counter that changed (``fetched_at`` is not a counter).
    """

    service_id: int
    date: str
    changes: dict[str, tuple[int, int]]


@dataclass(frozen=True)
class TableWrite:
    """
    What one upsert did.

    :param rows: the number of rows written (new or updated).
    :param revisions: the rows that existed before with other counters, oldest first.
    """

    rows: int
    revisions: list[Revision] = field(default_factory=list)


def upsert_rows(
    hook: DbApiHook,
    table: str,
    rows: list[Row],
    *,
    create_table: bool = True,
    fetched_at: datetime.datetime | None = None,
    revisions_table: str | None = None,
    revised_by: str = "",
    after_write: Callable[[Any, TableWrite], None] | None = None,
) -> TableWrite:
    """
    Upsert ``rows`` into ``table`` in one transaction, after creating the tables if asked (committed on their
    own, see :func:`create_tables`), and report the revisions: rows that existed with other counters. They are
    read in the same transaction, before the write, and appended to ``revisions_table`` when one is given, in
    that transaction too: all or nothing.

    :param hook: the SQL hook from :func:`get_db_hook`.
    :param table: ``[schema.]name``.
    :param rows: rows from :func:`~airflow_provider_zendrive._outputs.rows.daily_rows`.
    :param create_table: create the missing tables first.
    :param fetched_at: the value of ``fetched_at`` (default: now, UTC), and of ``revised_at``.
    :param revisions_table: ``[schema.]name`` of the audit trail (created if ``create_table``); None: none.
    :param revised_by: who wrote, for the audit trail (the operator passes ``dag_id.task_id run run_id``).
    :param after_write: called with the cursor and what was written, inside the writing transaction, after
        the rows: its statements commit or roll back with them (the fleet operator's progress mark).
    :return: the number of rows written and the revisions.
    """
    quote_format = hook.escape_word_format
    quoted = quote_table(table, quote_format)
    quoted_revisions = None if revisions_table is None else quote_table(revisions_table, quote_format)
    stamp = (fetched_at or datetime.datetime.now(datetime.UTC)).astimezone(datetime.UTC)
    # ISO strings bind the same way on every driver (sqlite3's date adapters are deprecated since 3.12).
    fetched = stamp.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
    values = [(*(row[name] for name in COLUMNS), fetched) for row in rows]
    if not values and not create_table and after_write is None:
        return TableWrite(0)
    sql = hook.dialect.generate_replace_sql(
        quoted,
        TABLE_COLUMNS,  # the "row" only sets the number of placeholders: one per column
        [quote_format.format(name) for name in TABLE_COLUMNS],
        replace_index=[quote_format.format(name) for name in KEY_COLUMNS],
    )
    with connection(hook) as conn:
        if create_table:  # no rows (fill_missing_days=False, no traffic): the tables are still created
            ddl = {quoted: create_table_sql(quoted, quote_format)}
            if quoted_revisions is not None:
                ddl[quoted_revisions] = create_revisions_table_sql(quoted_revisions, quote_format)
            create_tables(conn, hook, ddl)
        with transaction(conn) as cursor:
            copies = hasattr(cursor, "copy") or hasattr(cursor, "copy_expert")  # psycopg 3, psycopg2
            if values and copies and getattr(hook, "dialect_name", "") == "postgresql":
                revisions = _copy_and_upsert(cursor, quoted, quote_format, values)
            else:
                revisions = _revisions(cursor, quoted, quote_format, hook.placeholder, rows)
                if values:
                    cursor.executemany(sql, values)
            written = TableWrite(len(values), revisions)
            if after_write is not None:
                after_write(cursor, written)
            if quoted_revisions is None:
                return written
            audit = [
                (revision.service_id, revision.date, name, old, new, fetched, revised_by)
                for revision in revisions
                for name, (old, new) in revision.changes.items()
            ]
            if audit:
                names = ", ".join(quote_format.format(name) for name in REVISION_COLUMNS)
                marks = ", ".join([hook.placeholder] * len(REVISION_COLUMNS))
                cursor.executemany(f"INSERT INTO {quoted_revisions} ({names}) VALUES ({marks})", audit)  # noqa: S608
    return written


def _revisions(
    cursor: Any, quoted: str, quote_format: str, placeholder: str, rows: list[Row]
) -> list[Revision]:
    """Compare ``rows`` with what the table holds for their keys (one query per service)."""
    counters = [name for name in COLUMNS if name not in KEY_COLUMNS]
    service, date = (quote_format.format(name) for name in KEY_COLUMNS)
    select = (
        f"SELECT {date}, {', '.join(quote_format.format(name) for name in counters)} FROM {quoted} "  # noqa: S608
        f"WHERE {service} = {placeholder} AND {date} >= {placeholder} AND {date} <= {placeholder}"
    )
    revisions = []
    for service_id in sorted({int(row["service_id"]) for row in rows}):
        mine = {str(row["date"]): row for row in rows if int(row["service_id"]) == service_id}
        cursor.execute(select, (service_id, min(mine), max(mine)))
        for record in cursor.fetchall():
            row = mine.get(str(record[0])[:10])
            if row is None:
                continue
            old = dict(zip(counters, (int(value) for value in record[1:]), strict=True))
            changes = {name: (old[name], int(row[name])) for name in counters if old[name] != int(row[name])}
            if changes:  # a new row, or one with the same counters, is not a revision
                revisions.append(Revision(service_id, str(row["date"]), changes))
    return sorted(revisions, key=lambda revision: (revision.date, revision.service_id))


#: The temporary table :func:`_copy_and_upsert` copies the rows into (dropped at commit or rollback).
_INCOMING = "zendrive_incoming"


def _copy_and_upsert(
    cursor: Any, quoted: str, quote_format: str, values: list[tuple[Any, ...]]
) -> list[Revision]:
    """
    PostgreSQL: ``COPY`` the rows into a temporary table, then upsert them all with one statement that also
    returns the revisions: its ``changed`` CTE reads the table as it was before the statement (every part of a
    statement sees the same snapshot), the ``upsert`` CTE writes. The temporary table is dropped at the end of
    the transaction. psycopg 3 streams the rows (``cursor.copy``); psycopg2 sends them as COPY text.
    """
    counters = [name for name in COLUMNS if name not in KEY_COLUMNS]
    names = ", ".join(quote_format.format(name) for name in TABLE_COLUMNS)
    key = ", ".join(quote_format.format(name) for name in KEY_COLUMNS)
    columns = ", ".join(f"{quote_format.format(name)} {TABLE_TYPES[name]}" for name in TABLE_COLUMNS)
    cursor.execute(f"CREATE TEMPORARY TABLE {_INCOMING} ({columns}) ON COMMIT DROP")
    copy = f"COPY {_INCOMING} ({names}) FROM STDIN"
    if hasattr(cursor, "copy"):
        with cursor.copy(copy) as stream:
            for row in values:
                stream.write_row(row)
    else:  # the values are ints and ISO dates: nothing to escape in COPY's text format
        text = "".join("\t".join("\\N" if v is None else str(v) for v in row) + "\n" for row in values)
        cursor.copy_expert(copy, io.StringIO(text))
    old = ", ".join(f"t.{quote_format.format(name)}" for name in counters)
    new = ", ".join(f"i.{quote_format.format(name)}" for name in counters)
    joined = " AND ".join(
        f"t.{quote_format.format(name)} = i.{quote_format.format(name)}" for name in KEY_COLUMNS
    )
    updates = ", ".join(
        f"{quote_format.format(name)} = EXCLUDED.{quote_format.format(name)}"
        for name in TABLE_COLUMNS
        if name not in KEY_COLUMNS
    )
    service, date = (f"t.{quote_format.format(name)}" for name in KEY_COLUMNS)
    cursor.execute(
        f"WITH changed AS (SELECT {service}, {date}, {old}, {new} FROM {quoted} AS t "  # noqa: S608
        f"JOIN {_INCOMING} AS i ON {joined} WHERE ({old}) IS DISTINCT FROM ({new})), "
        f"upsert AS (INSERT INTO {quoted} ({names}) SELECT {names} FROM {_INCOMING} "
        f"ON CONFLICT ({key}) DO UPDATE SET {updates}) "
        "SELECT * FROM changed"
    )
    revisions = []
    for record in cursor.fetchall():
        before, after = record[2 : 2 + len(counters)], record[2 + len(counters) :]
        changes = {
            name: (int(o), int(n))
            for name, o, n in zip(counters, before, after, strict=True)
            if int(o) != int(n)
        }
        revisions.append(Revision(int(record[0]), str(record[1])[:10], changes))
    return sorted(revisions, key=lambda revision: (revision.date, revision.service_id))


def describe_revision(revision: Revision) -> str:
    """One log line for a revised day: the old and new value of each counter that changed."""
    changes = "; ".join(f"{name} {old:,} -> {new:,}" for name, (old, new) in revision.changes.items())
    return f"ZenDRIVE revised {revision.date} (service {revision.service_id}): {changes}."


#: How long a SQLite writer waits for another writer's lock before giving up, in milliseconds.
SQLITE_BUSY_TIMEOUT_MS = 60_000


def create_tables(conn: Any, hook: DbApiHook, ddl: Mapping[str, str]) -> None:
    """
    Create the tables that are missing, in a transaction of their own on ``conn``, committed before the caller
    writes anything: MySQL and MariaDB commit at every DDL statement (``CREATE TABLE IF NOT EXISTS`` of a table
    that exists included), so a DDL statement inside a writing transaction would commit the writes before it.
    A write that fails afterwards leaves the tables created and without its rows.

    Safe against concurrent creators (a mapped fleet's first run). On PostgreSQL two transactions that create
    the same new table at once collide on the catalog (``UniqueViolation`` on ``pg_type``) although both say
    ``IF NOT EXISTS``; when a table does not exist yet, a transaction-scoped advisory lock on its name
    serializes the creators: the second waits for the first to commit, then finds the table (once it exists,
    no lock is taken). SQLite's ``BEGIN IMMEDIATE`` queues them; MySQL and MariaDB lock the table's metadata.

    :param conn: a connection from :func:`connection`.
    :param hook: its hook (for the dialect and the placeholder).
    :param ddl: ``{quoted table: its CREATE TABLE IF NOT EXISTS statement}``, created in this order.
    """
    with transaction(conn) as cursor:
        for quoted_table, statement in ddl.items():
            if getattr(hook, "dialect_name", "") == "postgresql":
                cursor.execute(f"SELECT to_regclass({hook.placeholder})", (quoted_table,))
                if cursor.fetchone()[0] is None:
                    cursor.execute(
                        f"SELECT pg_advisory_xact_lock(hashtext({hook.placeholder}))",
                        (f"zendrive:{quoted_table}",),
                    )
            cursor.execute(statement)


@contextlib.contextmanager
def connection(hook: DbApiHook) -> Iterator[Any]:
    """A fresh connection of ``hook`` for :func:`transaction` blocks, autocommit off, closed when the block ends."""
    conn: Any = hook.get_conn()
    try:
        if hook.supports_autocommit:
            hook.set_autocommit(conn, False)
        yield conn
    finally:
        with contextlib.suppress(Exception):
            conn.close()


@contextlib.contextmanager
def transaction(conn: Any) -> Iterator[Any]:
    """
    One transaction on ``conn`` (from :func:`connection`), as a cursor: committed when the block ends, rolled
    back on any exception (then re-raised). On SQLite it is ``BEGIN IMMEDIATE``: writers wait up to
    :data:`SQLITE_BUSY_TIMEOUT_MS` for each other instead of failing with "database is locked".
    """
    try:
        _begin_sqlite_write(conn)
        cursor = conn.cursor()
        try:
            yield cursor
        finally:
            cursor.close()
        conn.commit()
    except BaseException:
        with contextlib.suppress(Exception):
            conn.rollback()
        raise


def _begin_sqlite_write(conn: Any) -> None:
    """
    On sqlite3 only (a no-op on other drivers), open the transaction explicitly: the driver's legacy mode would
    run DDL outside of it, and would begin it deferred.

    ``BEGIN IMMEDIATE`` takes the write lock up front, waiting up to :data:`SQLITE_BUSY_TIMEOUT_MS` for other
    writers (threads or processes) to finish. A deferred ``BEGIN`` followed by a write is SQLite's lock-upgrade
    deadlock: one of two concurrent writers fails at once with "database is locked" instead of waiting.
    """
    if isinstance(conn, sqlite3.Connection) and conn.isolation_level is not None and not conn.in_transaction:
        conn.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        conn.execute("BEGIN IMMEDIATE")
