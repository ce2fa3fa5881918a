"""
Monthly egress budget alerts that fire once per crossing, from the warehouse table alone (no API request).

**When a threshold is crossed** is derived from the data: for a service and a calendar month, the threshold
``t %`` of a budget ``B`` is crossed on the first day ``d`` whose month-to-date ``bytes_sent`` reaches
``t / 100 * B`` (the days before ``d`` add up to less). Rows updated later (late data, a lookback re-read)
may move that day; the crossing itself is the same.

**Once** is kept by a ledger table, one row per ``(service_id, month, threshold)`` (its primary key). Each
crossing is claimed and committed on its own, in a transaction of its own around its own notification: the
row is inserted, the notifiers are called, and the row is committed as soon as they returned. So:

* a claim that exists means the alert was delivered: reruns, retries, backfills and re-reads never send it
  again, and a failure of one alert never re-sends another that went out;
* a notifier that fails rolls back only its own claim: that alert is left to the task's retry, which sends it
  then (the other crossings of the run are still delivered, except the higher thresholds of the same service
  and month, which wait for the failed one so that 50 % never arrives after 80 %);
* **at least once, not exactly once**: a crash (the worker killed, the database lost) after a notifier
  returned and before its claim's commit leaves no claim, so the retry repeats that one alert. Every alert has
  a stable identity, :attr:`Crossing.alert_id` (``zendrive-budget.<service>.<month>.<threshold>``), in its text
  and as its email's ``Message-ID`` (:attr:`Crossing.message_id`), so a repeat can be recognised.

Two runs at the same moment queue on the write lock (SQLite) or on the key (a second insert of the same key
waits for the first transaction, then fails; the claim is then found and the alert skipped). The ledger is
created before any claim, in a transaction of its own (:func:`~airflow_provider_zendrive._outputs.tables.create_tables`):
MySQL and MariaDB commit at every DDL statement.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from airflow_provider_zendrive._outputs.summary import VOLUME_UNITS, format_volume
from airflow_provider_zendrive._outputs.tables import (
    connection,
    create_sql,
    create_tables,
    quote_table,
    transaction,
)
from airflow_provider_zendrive.exceptions import ZenDriveInputError

if TYPE_CHECKING:
    from airflow.providers.common.sql.hooks.sql import DbApiHook

__all__ = [
    "LEDGER_COLUMNS",
    "LEDGER_KEY",
    "Crossing",
    "budgets_in_bytes",
    "check_thresholds",
    "find_crossings",
    "notify_new_crossings",
    "read_month_to_date",
]

#: The ledger's columns; ``(service_id, month, threshold)`` (:data:`LEDGER_KEY`) is its primary key.
LEDGER_COLUMNS = ("service_id", "month", "threshold", "crossed_on", "month_to_date", "budget", "alerted_at")
#: The ledger's primary key: one alert per service, month and threshold.
LEDGER_KEY = LEDGER_COLUMNS[:3]
_LEDGER_TYPES = {
    "service_id": "BIGINT",
    "month": "VARCHAR(7)",
    "threshold": "INTEGER",
    "crossed_on": "DATE",
    "month_to_date": "BIGINT",
    "budget": "BIGINT",
    "alerted_at": "TIMESTAMP",
}


@dataclass(frozen=True)
class Crossing:
    """
    A service's month-to-date egress reaching a threshold of its budget.

    :param service_id: the service.
    :param month: ``YYYY-MM``.
    :param threshold: the threshold, in percent of the budget.
    :param day: the first day (``YYYY-MM-DD``) whose month-to-date reaches it.
    :param month_to_date: ``bytes_sent`` from the 1st through ``day``.
    :param budget: the monthly budget, in bytes.
    """

    service_id: int
    month: str
    threshold: int
    day: str
    month_to_date: int
    budget: int

    @property
    def alert_id(self) -> str:
        """The alert's stable identity, the same for every repeat of this crossing: ``zendrive-budget.S.M.T``."""
        return f"zendrive-budget.{self.service_id}.{self.month}.{self.threshold}"

    @property
    def message_id(self) -> str:
        """An RFC 5322 ``Message-ID`` for the alert's email, derived from :attr:`alert_id`."""
        return f"<{self.alert_id}@airflow-provider-zendrive>"

    @property
    def text(self) -> str:
        """The alert, for people: a headline (an email subject), then the numbers, then the alert's id."""
        share = 100 * self.month_to_date / self.budget
        return (
            f"ZenDRIVE service {self.service_id} reached {self.threshold} % of its {self.month} egress budget "
            f"on {self.day}\n"
            f"Sent from {self.month}-01 through {self.day}: {format_volume(self.month_to_date)} "
            f"({share:.1f} % of the {format_volume(self.budget)} budget).\n"
            f"Alert id: {self.alert_id}"
        )


def check_thresholds(thresholds: Iterable[int]) -> tuple[int, ...]:
    """
    Validate thresholds (percent of the budget, 1 to 1000) and return them sorted, without duplicates.

    :raises ZenDriveInputError: for anything else, or none at all.
    """
    values = tuple(thresholds)
    if not values or any(isinstance(v, bool) or not isinstance(v, int) or not 0 < v <= 1000 for v in values):
        raise ZenDriveInputError(
            f"thresholds must be whole percentages of the budget between 1 and 1000, got {list(values)!r}"
        )
    return tuple(sorted(set(values)))


def budgets_in_bytes(budget_gb: float | Mapping[int | str, float]) -> Callable[[int], int | None]:
    """
    The budget of a service in bytes, from one budget for every service or a ``{service_id: GB}`` mapping
    (services not in it have no budget and are never alerted on).

    :raises ZenDriveInputError: for a budget that is not a positive number of GB.
    """
    if isinstance(budget_gb, Mapping):
        table = {int(service): _positive_gb(gb) for service, gb in budget_gb.items()}
        return table.get
    one = _positive_gb(budget_gb)
    return lambda service_id: one


def _positive_gb(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < float("inf"):
        raise ZenDriveInputError(f"a budget must be a positive number of GB, got {value!r}")
    return round(value * VOLUME_UNITS["GB"])


def find_crossings(
    daily: Iterable[tuple[int, str, int]], budget_of: Callable[[int], int | None], thresholds: Sequence[int]
) -> list[Crossing]:
    """
    Every threshold crossed, per service and month, with the day the data shows it.

    :param daily: ``(service_id, YYYY-MM-DD, bytes_sent)`` rows, in any order (one per service and day).
    :param budget_of: the budget of a service in bytes (None: no budget).
    :param thresholds: percentages of the budget, from :func:`check_thresholds`.
    """
    months: dict[tuple[int, str], list[tuple[str, int]]] = {}
    for service_id, day, sent in daily:
        months.setdefault((int(service_id), str(day)[:7]), []).append((str(day)[:10], int(sent)))
    crossings = []
    for (service_id, month), days in sorted(months.items()):
        budget = budget_of(service_id)
        if budget is None:
            continue
        total = 0
        pending = list(thresholds)
        for day, sent in sorted(days):
            total += sent
            while pending and 100 * total >= pending[0] * budget:
                crossings.append(Crossing(service_id, month, pending.pop(0), day, total, budget))
    return crossings


def read_month_to_date(hook: DbApiHook, table: str, *, months_back: int = 1) -> list[tuple[int, str, int]]:
    """
    ``(service_id, date, bytes_sent)`` of the newest month in the table and the ``months_back`` months before
    it: what a run can still see cross (older months were checked by the runs of their time).
    """
    quoted = quote_table(table, hook.escape_word_format)
    newest = hook.get_first(f"SELECT MAX(date) FROM {quoted}")  # noqa: S608 - a checked, quoted identifier
    if not newest or newest[0] is None:
        return []
    last = datetime.date.fromisoformat(str(newest[0])[:10])
    first = last.replace(day=1)
    for _ in range(months_back):
        first = (first - datetime.timedelta(days=1)).replace(day=1)
    rows = hook.get_records(
        f"SELECT service_id, date, bytes_sent FROM {quoted} WHERE date >= {hook.placeholder}",  # noqa: S608
        parameters=(first.isoformat(),),
    )
    return [(int(r[0]), str(r[1])[:10], int(r[2])) for r in rows]


def notify_new_crossings(
    hook: DbApiHook,
    ledger: str,
    crossings: Sequence[Crossing],
    notify: Callable[[Crossing], None],
    *,
    now: datetime.datetime | None = None,
) -> list[Crossing]:
    """
    Claim each crossing not in the ledger yet and notify it, each in a transaction of its own (see the module
    docstring): a failed notification rolls back only its own claim.

    :param ledger: ``[schema.]name`` of the ledger table (created if missing).
    :param notify: sends one alert; an exception leaves that crossing unclaimed, for the retry.
    :return: the crossings notified now (those already claimed are skipped).
    :raises Exception: after every other crossing was tried, the first notifier's exception, with a note naming
        each alert that was not delivered.
    """
    quote = hook.escape_word_format
    quoted = quote_table(ledger, quote)
    stamp = (now or datetime.datetime.now(datetime.UTC)).astimezone(datetime.UTC).replace(tzinfo=None)
    alerted_at = stamp.isoformat(sep=" ", timespec="seconds")
    key_names = [quote.format(name) for name in LEDGER_KEY]
    with connection(hook) as conn:
        create_tables(conn, hook, {quoted: create_sql(quoted, _LEDGER_TYPES, quote, LEDGER_KEY)})
        with transaction(conn) as cursor:
            cursor.execute(f"SELECT service_id, month, threshold FROM {quoted}")  # noqa: S608
            claimed = {(int(r[0]), str(r[1]), int(r[2])) for r in cursor.fetchall()}
        names = ", ".join(quote.format(name) for name in LEDGER_COLUMNS)
        marks = ", ".join([hook.placeholder] * len(LEDGER_COLUMNS))
        insert = f"INSERT INTO {quoted} ({names}) VALUES ({marks})"  # noqa: S608
        where = " AND ".join(f"{name} = {hook.placeholder}" for name in key_names)
        select = f"SELECT COUNT(*) FROM {quoted} WHERE {where}"  # noqa: S608
        fresh: list[Crossing] = []
        failed: list[tuple[Crossing, BaseException]] = []
        for crossing in crossings:
            key = (crossing.service_id, crossing.month, crossing.threshold)
            if key in claimed or any(key[:2] == (f.service_id, f.month) for f, _ in failed):
                continue
            row = (*key, crossing.day, crossing.month_to_date, crossing.budget, alerted_at)
            try:
                with transaction(conn) as cursor:
                    cursor.execute(select, key)  # claimed since the read above, by a run that committed
                    if int(cursor.fetchone()[0]):
                        continue
                    cursor.execute(insert, row)  # a concurrent claim of the same key waits here, then fails
                    try:
                        notify(crossing)
                    except Exception as exc:
                        failed.append((crossing, exc))
                        raise _NotDelivered from None
            except _NotDelivered:
                continue
            except Exception:
                with transaction(conn) as cursor:  # lost the race for the key: the other run sent it
                    cursor.execute(select, key)
                    if int(cursor.fetchone()[0]):
                        continue
                raise
            fresh.append(crossing)
    if failed:
        first = failed[0][1]
        first.add_note(
            "ZenDRIVE budget alerts not delivered (left to the retry): "
            + "; ".join(f"{crossing.alert_id}: {type(exc).__name__}: {exc}" for crossing, exc in failed)
            + (f". Delivered in this run: {', '.join(c.alert_id for c in fresh)}." if fresh else ".")
        )
        raise first
    return fresh


class _NotDelivered(Exception):
    """Rolls back the claim of an alert whose notifier failed (the failure itself is kept aside)."""
