"""
What the usage page shows, read from the warehouse table the stats operator writes: per service the month's
requests and GB sent so far and its budget, the daily totals of the 90 days up to then, the newest
``fetched_at`` and the revisions of the last 30 days.

Read-only and bounded: five ``SELECT`` statements on one connection (SQLite's opened ``query_only``), every value
a bound parameter, every table name checked and quoted (:func:`~airflow_provider_zendrive._outputs.tables.quote_table`),
no window longer than :data:`MAX_DAYS` days, at most :data:`REVISIONS_SHOWN` revisions. Nothing here knows a
connection's secret: only the connection id and the table names are kept.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import sqlite3
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from airflow_provider_zendrive._config import UsageSettings
from airflow_provider_zendrive._outputs.reconcile import ReportMonth

__all__ = [
    "CHART_DAYS",
    "MAX_DAYS",
    "REVISIONS_SHOWN",
    "REVISION_DAYS",
    "DayTotals",
    "Revision",
    "ServiceMonth",
    "UsageQuery",
    "UsageView",
    "read_usage",
]

log = logging.getLogger(__name__)

#: The longest window any query reads, in days (the month selector's reach).
MAX_DAYS = 400
#: The chart's days, ending on the last day shown.
CHART_DAYS = 90
#: How far back the revisions go, in days.
REVISION_DAYS = 30
#: The most revisions listed (the newest).
REVISIONS_SHOWN = 200
#: Which DAGs fill the table, for the empty state.
FILLED_BY = "zendrive_daily_billing (daily), zendrive_fleet (many services) or zendrive_history (a backfill)"


@dataclass(frozen=True)
class UsageQuery:
    """
    What to show: a month (the current one by default) and one service or all.

    :param month: the month.
    :param service_id: one service; None: every service.
    :param today: today (UTC); the month-to-date ends here in the current month.
    """

    month: ReportMonth
    service_id: int | None
    today: datetime.date

    @classmethod
    def parse(cls, month: str | None, service: str | None, today: datetime.date) -> UsageQuery:
        """
        From the page's query string.

        :param month: ``YYYY-MM`` from the last :data:`MAX_DAYS` days, or empty: the current month.
        :param service: a service id, or empty: every service.
        :raises ValueError: for anything else.
        """
        chosen = ReportMonth.parse(month) if month else ReportMonth.parse(today.strftime("%Y-%m"))
        if chosen.name not in months_offered(today):
            raise ValueError(f"month must be one of the last {MAX_DAYS} days' months, got {chosen.name}")
        service_id = None
        if service:
            if not service.isdigit() or len(service) > 18:
                raise ValueError("service must be a service id (digits) or empty for every service")
            service_id = int(service)
        return cls(chosen, service_id, today)

    @property
    def through(self) -> datetime.date:
        """The last day shown: the month's last day, or today in the current month."""
        return min(self.month.last, self.today)

    @property
    def chart_first(self) -> datetime.date:
        """The chart's first day."""
        return self.through - datetime.timedelta(days=CHART_DAYS - 1)


def months_offered(today: datetime.date) -> list[str]:
    """The month selector's months, newest first: every month with a day in the last :data:`MAX_DAYS` days."""
    months: list[str] = []
    oldest = today - datetime.timedelta(days=MAX_DAYS - 1)
    day = today.replace(day=1)
    while True:
        months.append(day.strftime("%Y-%m"))
        previous_last = day - datetime.timedelta(days=1)
        if previous_last < oldest:
            return months
        day = previous_last.replace(day=1)


@dataclass(frozen=True)
class ServiceMonth:
    """
    One service's month so far.

    :param service_id: the service.
    :param requests: ``total_requests`` from the 1st through the last day shown.
    :param bytes_sent: ``bytes_sent`` over the same days.
    :param budget: the service's monthly budget in bytes; None: none.
    :param fetched_at: the newest ``fetched_at`` of its rows of the month (UTC, ``YYYY-MM-DD HH:MM:SS``).
    """

    service_id: int
    requests: int
    bytes_sent: int
    budget: int | None
    fetched_at: str | None

    @property
    def budget_share(self) -> float | None:
        """``bytes_sent`` / budget; None without a budget."""
        return None if self.budget is None else self.bytes_sent / self.budget


@dataclass(frozen=True)
class DayTotals:
    """
    One day of the chart (every day of the window, zeros where the table has no row).

    :param date: ``YYYY-MM-DD``.
    :param requests: ``total_requests`` of the services shown.
    :param bytes_sent: ``bytes_sent`` of the services shown.
    """

    date: str
    requests: int
    bytes_sent: int


@dataclass(frozen=True)
class Revision:
    """
    One counter value a later pull changed (a row of the revisions table).

    :param service_id: the service.
    :param date: the day revised.
    :param counter: the counter.
    :param old_value: before.
    :param new_value: after.
    :param revised_at: when (UTC).
    :param revised_by: which task run.
    """

    service_id: int
    date: str
    counter: str
    old_value: int
    new_value: int
    revised_at: str
    revised_by: str


@dataclass(frozen=True)
class UsageView:
    """
    Everything the page shows, as the data endpoint returns it.

    :param sql_conn_id: the connection read (its id only).
    :param table: the usage table.
    :param revisions_table: the revisions table, or None when none is configured.
    :param month: ``YYYY-MM`` shown.
    :param through: the last day of the month-to-date.
    :param month_last: the month's last day.
    :param service_id: the service shown, or None for every service.
    :param months: the months offered, newest first.
    :param services: every service in the table's last :data:`MAX_DAYS` days (also when one is shown).
    :param rows: per service, the month so far.
    :param daily: the chart's days, oldest first.
    :param last_pull: the newest ``fetched_at`` of the services shown, in the last :data:`MAX_DAYS` days.
    :param revisions: the newest revisions of the last :data:`REVISION_DAYS` days (empty without a table).
    :param problem: why there is nothing to show (no table, no rows, unreadable), with what to do; None: data.
    :param revisions_problem: why the revisions are not shown, or None.
    """

    sql_conn_id: str
    table: str
    revisions_table: str | None
    month: str
    through: str
    month_last: str
    service_id: int | None
    months: list[str]
    services: list[int]
    rows: list[ServiceMonth]
    daily: list[DayTotals]
    last_pull: str | None
    revisions: list[Revision]
    problem: str | None
    revisions_problem: str | None

    def as_dict(self) -> dict[str, Any]:
        """JSON-serialisable (the data endpoint's body)."""
        return asdict(self)


def read_usage(settings: UsageSettings, query: UsageQuery) -> UsageView:
    """
    Read what the page shows. A missing or unreadable table is not an error: the view says what is wrong and
    which DAG fills the table (the details go to the API server's log, not to the page).

    :param settings: the ``[zendrive]`` section.
    :param query: the month and service asked for.
    """
    from airflow_provider_zendrive._outputs.budget import budgets_in_bytes
    from airflow_provider_zendrive._outputs.tables import get_db_hook, quote_table

    empty = UsageView(
        sql_conn_id=settings.sql_conn_id,
        table=settings.table,
        revisions_table=settings.revisions_table,
        month=query.month.name,
        through=query.through.isoformat(),
        month_last=query.month.last.isoformat(),
        service_id=query.service_id,
        months=months_offered(query.today),
        services=[],
        rows=[],
        daily=[],
        last_pull=None,
        revisions=[],
        problem=None,
        revisions_problem=None,
    )
    try:
        hook = get_db_hook(settings.sql_conn_id)
        quote = hook.escape_word_format
        table = quote_table(settings.table, quote)
        revisions_table = (
            None if settings.revisions_table is None else quote_table(settings.revisions_table, quote)
        )
        conn: Any = hook.get_conn()
    except Exception as exc:
        log.warning("ZenDRIVE usage page: cannot open %s", settings.sql_conn_id, exc_info=True)
        return replace(
            empty,
            problem=f"The connection {settings.sql_conn_id!r} cannot be opened ({type(exc).__name__}). Set [zendrive] "
            "sql_conn_id to the SQL connection the stats operator writes to, with its database's provider "
            "installed on the API server.",
        )
    budget_of = budgets_in_bytes(settings.budget_gb) if settings.budget_gb is not None else (lambda _: None)
    columns = "service_id, date, counter, old_value, new_value, revised_at, revised_by"
    with contextlib.closing(conn):
        if isinstance(conn, sqlite3.Connection):
            conn.execute("PRAGMA query_only = ON")
        reader = _Reader(conn, hook.placeholder, query.service_id)
        oldest = query.today - datetime.timedelta(days=MAX_DAYS - 1)
        # Only checked and quoted table names are formatted into the statements; every value is bound.
        try:
            # Every service, whichever is shown: the selector offers them all.
            services = reader.select(f"SELECT DISTINCT service_id FROM {table}", oldest, every_service=True)  # noqa: S608
            month = reader.select(
                f"SELECT service_id, SUM(total_requests), SUM(bytes_sent), MAX(fetched_at) FROM {table}",  # noqa: S608
                query.month.first,
                query.through,
                tail=" GROUP BY service_id ORDER BY service_id",
            )
            days = reader.select(
                f"SELECT date, SUM(total_requests), SUM(bytes_sent) FROM {table}",  # noqa: S608
                query.chart_first,
                query.through,
                tail=" GROUP BY date",
            )
            ((newest,),) = reader.select(f"SELECT MAX(fetched_at) FROM {table}", oldest)  # noqa: S608
        except Exception as exc:
            return replace(empty, problem=_table_problem(exc, settings.table, settings.sql_conn_id))
        revisions: list[Revision] = []
        revisions_problem = None
        if revisions_table is not None:
            since = datetime.datetime.combine(
                query.today - datetime.timedelta(days=REVISION_DAYS), datetime.time()
            )
            try:
                records = reader.select(
                    f"SELECT {columns} FROM {revisions_table}",  # noqa: S608
                    since.isoformat(sep=" "),
                    column="revised_at",
                    tail=" ORDER BY revised_at DESC",
                    limit=REVISIONS_SHOWN,
                )
            except Exception as exc:
                records = []
                revisions_problem = _table_problem(
                    exc, str(settings.revisions_table), settings.sql_conn_id, revisions=True
                )
            revisions = [
                Revision(
                    int(r[0]), str(r[1])[:10], str(r[2]), int(r[3]), int(r[4]), _stamp(r[5]) or "", str(r[6])
                )
                for r in records
            ]
    rows = [
        ServiceMonth(int(r[0]), int(r[1] or 0), int(r[2] or 0), budget_of(int(r[0])), _stamp(r[3]))
        for r in month
    ]
    by_day = {str(r[0])[:10]: (int(r[1] or 0), int(r[2] or 0)) for r in days}
    daily = []
    for n in range(CHART_DAYS):
        day = (query.chart_first + datetime.timedelta(days=n)).isoformat()
        requests, sent = by_day.get(day, (0, 0))
        daily.append(DayTotals(day, requests, sent))
    problem = None
    if not services:
        problem = (
            f"The table {settings.table} has no rows in the last {MAX_DAYS} days. It is "
            f"filled by the DAGs {FILLED_BY}: unpause zendrive_daily_billing, or trigger zendrive_history for "
            "the past."
        )
    elif not rows:
        problem = f"No rows for {query.month.name}{_for_service(query)} yet."
    return replace(
        empty,
        services=sorted(int(r[0]) for r in services),
        rows=rows,
        daily=daily,
        last_pull=_stamp(newest),
        revisions=revisions,
        problem=problem,
        revisions_problem=revisions_problem,
    )


class _Reader:
    """Runs the page's ``SELECT`` statements on one connection: a window on ``date`` (or another column) and
    the service filter appended, every value bound."""

    def __init__(self, conn: Any, placeholder: str, service_id: int | None) -> None:
        self.conn = conn
        self.mark = placeholder
        self.service_id = service_id

    def select(
        self,
        sql: str,
        first: datetime.date | str,
        last: datetime.date | None = None,
        *,
        column: str = "date",
        tail: str = "",
        limit: int | None = None,
        every_service: bool = False,
    ) -> Sequence[Sequence[Any]]:
        where = [f"{column} >= {self.mark}"]
        parameters: list[Any] = [first.isoformat() if isinstance(first, datetime.date) else first]
        if last is not None:
            where.append(f"{column} <= {self.mark}")
            parameters.append(last.isoformat())
        if self.service_id is not None and not every_service:
            where.append(f"service_id = {self.mark}")
            parameters.append(self.service_id)
        cursor = self.conn.cursor()
        try:
            cursor.execute(f"{sql} WHERE {' AND '.join(where)}{tail}", parameters)
            return list(cursor.fetchall() if limit is None else cursor.fetchmany(limit))
        finally:
            cursor.close()


def _table_problem(exc: Exception, table: str, sql_conn_id: str, *, revisions: bool = False) -> str:
    """What the page says about a table it cannot read (the exception's text stays in the log)."""
    if table.rsplit(".", 1)[-1].lower() in str(exc).lower():
        log.info("ZenDRIVE usage page: no table %s on %s (%s)", table, sql_conn_id, exc)
        if revisions:
            return (
                f"The revisions table {table} does not exist yet on connection {sql_conn_id!r}. The stats "
                f"operator creates it at its first write when given revisions_table={table!r}, as the DAGs "
                f"{FILLED_BY} are; or set [zendrive] revisions_table to the one yours use (empty: none)."
            )
        return (
            f"The table {table} does not exist yet on connection {sql_conn_id!r}. The stats operator creates it "
            f"at its first write: trigger zendrive_daily_billing once (or zendrive_history for the past; "
            f"the DAGs {FILLED_BY} all fill it), or set [zendrive] table to the table your DAGs write."
        )
    log.warning("ZenDRIVE usage page: cannot read %s on %s", table, sql_conn_id, exc_info=True)
    return (
        f"The table {table} on connection {sql_conn_id!r} cannot be read ({type(exc).__name__}); "
        "the API server's log has the details."
    )


def _stamp(value: object) -> str | None:
    """A timestamp as ``YYYY-MM-DD HH:MM:SS`` (drivers return strings or datetimes)."""
    return None if value is None else str(value)[:19]


def _for_service(query: UsageQuery) -> str:
    return "" if query.service_id is None else f" for service {query.service_id}"
