"""
The monthly reconciliation: the month reported, its file names, and the check that the month's daily rows, the
API's summary and the warehouse table agree before anyone bills.

Public through :mod:`airflow_provider_zendrive.reports`. Pure except
:func:`~airflow_provider_zendrive.reports.read_warehouse_month`, which reads the table through the
connection's common-sql hook.
"""

from __future__ import annotations

import datetime
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_zendrive._outputs.summary import format_volume

if TYPE_CHECKING:
    from airflow_provider_zendrive._client.models import UsageStats

__all__ = ["Reconciliation", "ReportMonth", "read_warehouse_month", "reconcile_month"]

_MONTH = re.compile(r"([0-9]{4})-(0[1-9]|1[0-2])")
_SHOWN = 5  # days named in a problem before "..."


@dataclass(frozen=True)
class ReportMonth:
    """
    One calendar month (UTC days).

    :param first: its first day.
    :param last: its last day.
    """

    first: datetime.date
    last: datetime.date

    @classmethod
    def parse(cls, month: str) -> ReportMonth:
        """
        The month ``YYYY-MM``.

        :raises ValueError: for anything else.
        """
        match = _MONTH.fullmatch(month) if isinstance(month, str) else None
        if match is None:
            raise ValueError(f"month must be YYYY-MM (e.g. 2026-04), got {month!r}")
        first = datetime.date(int(match[1]), int(match[2]), 1)
        following = (first + datetime.timedelta(days=32)).replace(day=1)
        return cls(first, following - datetime.timedelta(days=1))

    @classmethod
    def before(cls, day: datetime.date) -> ReportMonth:
        """The calendar month before the one holding ``day`` (what a run on the 1st reports)."""
        previous = day.replace(day=1) - datetime.timedelta(days=1)
        return cls.parse(previous.strftime("%Y-%m"))

    @classmethod
    def of_run(cls, month: str | None, logical_date: datetime.datetime | None) -> ReportMonth:
        """
        The month a report run covers: ``month`` if given (a DAG param), else the month before the run's
        logical date (before today, UTC, for a run triggered without one).

        :raises ValueError: if ``month`` is given and not ``YYYY-MM``.
        """
        if month:
            return cls.parse(month)
        return cls.before((logical_date or datetime.datetime.now(datetime.UTC)).date())

    @property
    def name(self) -> str:
        """``YYYY-MM``."""
        return self.first.strftime("%Y-%m")

    @property
    def days(self) -> list[str]:
        """Every day of the month, ``YYYY-MM-DD``, oldest first."""
        count = (self.last - self.first).days + 1
        return [(self.first + datetime.timedelta(days=n)).isoformat() for n in range(count)]

    def report_uri(self, base: str, suffix: str = ".csv") -> str:
        """
        Where this month's report goes: ``<base>/zendrive-usage-YYYY-MM<suffix>``.

        :param base: a local folder (``~`` and relative paths are made absolute, as a ``file://`` URI) or any
            URI ``ObjectStoragePath`` understands (``s3://bucket/prefix``).
        :param suffix: ``.csv``, ``.html``, ...
        """
        base = base.rstrip("/")
        if "://" not in base:
            base = "file://" + os.path.abspath(os.path.expanduser(base))
        return f"{base}/zendrive-usage-{self.name}{suffix}"


@dataclass(frozen=True)
class Reconciliation:
    """
    The outcome of :func:`reconcile_month`.

    :param service_id: the service.
    :param month: the month checked.
    :param totals: the sums of the month's daily rows, per additive counter.
    :param problems: one sentence per difference found; empty: the sources agree.
    :param checked: what was compared, e.g. ``"30 daily rows == API summary == warehouse table"``.
    :param warehouse_rows: the table's rows for the month (0 when the table was not checked).
    """

    service_id: int
    month: ReportMonth
    totals: Mapping[str, int]
    problems: tuple[str, ...]
    checked: str
    warehouse_rows: int

    @property
    def ok(self) -> bool:
        """True when every source agrees."""
        return not self.problems

    @property
    def success_rate(self) -> float | None:
        """Successful / all requests of the month; None without requests."""
        total = self.totals["total_requests"]
        return self.totals["successful_requests"] / total if total else None

    def summary(self) -> str:
        """One line for people: requests, success rate, GB (and GiB) sent and received, what was compared."""
        rate = self.success_rate
        sent = self.totals["bytes_sent"]
        return (
            f"ZenDRIVE usage of service {self.service_id} in {self.month.first:%B %Y}: "
            f"{self.totals['total_requests']:,} requests, "
            f"{'n/a (no requests)' if rate is None else f'{rate:.2%}'} successful, "
            f"{format_volume(sent)} ({format_volume(sent, 'GiB')}) sent, "
            f"{format_volume(self.totals['bytes_received'])} received. "
            + (
                f"Reconciled: {self.checked}."
                if self.ok
                else f"Reconciliation FAILED: {len(self.problems)} problem(s)."
            )
        )

    def raise_for_problems(self) -> None:
        """
        Fail the task, without retries (retrying cannot change the numbers), when the sources differ.

        :raises AirflowFailException: listing every problem.
        """
        from airflow.providers.common.compat.sdk import AirflowFailException

        if self.problems:
            raise AirflowFailException(
                f"ZenDRIVE reconciliation of service {self.service_id}, {self.month.first}..{self.month.last} "
                "failed:\n- " + "\n- ".join(self.problems)
            )

    def as_dict(self) -> dict[str, Any]:
        """JSON-serialisable, for XCom: service, window, totals, success rate, days and warehouse rows."""
        return {
            "service_id": self.service_id,
            "from": self.month.first.isoformat(),
            "to": self.month.last.isoformat(),
            **self.totals,
            "success_rate": self.success_rate,
            "days": len(self.month.days),
            "warehouse_rows": self.warehouse_rows,
        }


def reconcile_month(
    stats: UsageStats,
    warehouse: Mapping[str, Mapping[str, int]] | None = None,
    *,
    table: str = "the warehouse table",
) -> Reconciliation:
    """
    Compare the month's daily rows (zeros for the days the API omits, as the CSV holds them), the API's summary
    totals and, if given, the warehouse table's rows, day by day.

    :param stats: the API's answer for one calendar month, as the hook returns it.
    :param warehouse: the table's rows of the month, ``{"YYYY-MM-DD": {counter: value}}``
        (:func:`read_warehouse_month`); None: not checked.
    :param table: the table's name, for the problems' wording.
    :raises ValueError: if ``stats`` does not cover exactly one calendar month.
    """
    from airflow_provider_zendrive._client.models import ADDITIVE_FIELDS

    month = ReportMonth.parse(stats["from"][:7])
    if (stats["from"], stats["to"]) != (month.first.isoformat(), month.last.isoformat()):
        raise ValueError(f"the stats cover {stats['from']}..{stats['to']}, not one calendar month")
    days = month.days
    problems: list[str] = []
    zero = dict.fromkeys(ADDITIVE_FIELDS, 0)
    daily = {row["date"]: {name: int(row[name]) for name in ADDITIVE_FIELDS} for row in stats["daily"]}  # type: ignore[literal-required]
    outside = sorted(set(daily) - set(days))
    if outside:
        problems.append(f"the API sent days outside {month.first}..{month.last}: {_some(outside)}")
    rows = {day: daily.get(day, zero) for day in days}
    totals = {name: sum(row[name] for row in rows.values()) for name in ADDITIVE_FIELDS}
    summary: Mapping[str, Any] = stats["summary"]
    for name in ADDITIVE_FIELDS:
        if totals[name] != summary[name]:
            problems.append(
                f"{name}: the daily rows add up to {totals[name]}, the API summary says {summary[name]}"
            )
    checked = f"{len(days)} daily rows == API summary"
    if warehouse is not None:
        checked += " == warehouse table"
        missing = [day for day in days if day not in warehouse]
        if missing:
            problems.append(
                f"the table {table} has no row for {len(missing)} day(s) of the month ({_some(missing)}); "
                "backfill zendrive_daily_billing for them"
            )
        differing = [day for day in days if day in warehouse and dict(warehouse[day]) != rows[day]]
        if differing:
            problems.append(
                f"the table {table} differs from the API on {len(differing)} day(s) ({_some(differing)}); "
                "rerun zendrive_daily_billing for them"
            )
    return Reconciliation(
        service_id=int(stats["service_id"]),
        month=month,
        totals=totals,
        problems=tuple(problems),
        checked=checked,
        warehouse_rows=0 if warehouse is None else sum(day in warehouse for day in days),
    )


def read_warehouse_month(
    sql_conn_id: str, table: str, service_id: int, month: ReportMonth
) -> dict[str, dict[str, int]]:
    """
    The rows the stats operator wrote to ``table`` for one service and month, ``{"YYYY-MM-DD": {counter: n}}``.

    :param sql_conn_id: the warehouse's SQL connection (any common-sql hook).
    :param table: the table, ``[schema.]name``.
    :param service_id: the service.
    :param month: the month.
    :raises AirflowFailException: when the table does not exist (retrying cannot help); other database errors
        (an unreachable server) propagate, so the task's retries apply.
    """
    from airflow.providers.common.compat.sdk import AirflowFailException

    from airflow_provider_zendrive._client.models import ADDITIVE_FIELDS
    from airflow_provider_zendrive._outputs.tables import get_db_hook, quote_table

    hook = get_db_hook(sql_conn_id)
    quoted = quote_table(table, hook.escape_word_format)
    mark = hook.placeholder
    try:
        records = hook.get_records(
            f"SELECT date, {', '.join(ADDITIVE_FIELDS)} FROM {quoted} "  # noqa: S608 - checked identifiers
            f"WHERE service_id = {mark} AND date >= {mark} AND date <= {mark}",
            parameters=(service_id, month.first.isoformat(), month.last.isoformat()),
        )
    except Exception as exc:
        if table.rsplit(".", 1)[-1] not in str(exc):
            raise
        raise AirflowFailException(
            f"Cannot read the table {table} on connection {sql_conn_id!r}: {exc}. Run (or backfill) "
            "zendrive_daily_billing for the month first, or do not check the warehouse."
        ) from None
    return {
        str(record[0])[:10]: dict(zip(ADDITIVE_FIELDS, map(int, record[1:]), strict=True))
        for record in records
    }


def _some(days: list[str]) -> str:
    return ", ".join(days[:_SHOWN]) + (", ..." if len(days) > _SHOWN else "")
