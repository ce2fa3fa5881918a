"""
Date windows: parsing user input into UTC dates and splitting long windows into API-sized chunks.

The API takes inclusive ``from`` / ``to`` dates (``YYYY-MM-DD``, UTC) and refuses windows longer than
:data:`MAX_WINDOW_DAYS` days. Everything here runs before a request is sent, so bad input fails without
touching the network.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass
from typing import TypeAlias

from airflow_provider_zendrive.exceptions import ZenDriveInputError

__all__ = [
    "DEFAULT_WINDOW_DAYS",
    "ISO_DATE",
    "LONGEST_PULL_DAYS",
    "MAX_WINDOW_DAYS",
    "DateLike",
    "DateWindow",
    "choose_window",
    "shift",
    "to_utc_date",
    "utc_today",
    "window_from_dates",
]

#: The longest window, in days counted inclusively, that one request may ask for.
MAX_WINDOW_DAYS = 366
#: The server's default: ``from`` is this many days before ``to``.
DEFAULT_WINDOW_DAYS = 30
#: The longest pull accepted unless the caller raises it on purpose (``max_pull_days``): ten years, i.e. ten
#: requests. A longer window is almost always a typo (``1026-05-01``) that would cost hundreds of requests.
LONGEST_PULL_DAYS = 3660
#: A ``YYYY-MM-DD`` date, and nothing else ISO 8601 allows (``2026-W01-1``, ``20260101``).
ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")

#: What the hook and operator accept as a date: a date, a datetime (converted to its UTC date; naive
#: datetimes are taken as UTC), a pendulum Date/DateTime, or an ISO string (``YYYY-MM-DD`` or a full
#: ISO 8601 timestamp such as a rendered ``{{ logical_date }}``).
DateLike: TypeAlias = "datetime.date | str"


@dataclass(frozen=True)
class DateWindow:
    """An inclusive window of UTC dates."""

    start: datetime.date
    end: datetime.date

    def __post_init__(self) -> None:
        if self.start > self.end:
            raise ZenDriveInputError(
                f"from_date {self.start.isoformat()} is after to_date {self.end.isoformat()}; "
                "'from' must be on or before 'to'."
            )

    @classmethod
    def today(cls) -> DateWindow:
        """Today's UTC date as a one-day window: what the service-active check asks for."""
        day = utc_today()
        return cls(day, day)

    @property
    def days(self) -> int:
        """Number of days in the window, both ends included."""
        return (self.end - self.start).days + 1

    def dates(self) -> list[datetime.date]:
        """Every date of the window, oldest first."""
        return [self.start + datetime.timedelta(days=offset) for offset in range(self.days)]

    def chunks(self, max_days: int = MAX_WINDOW_DAYS) -> list[DateWindow]:
        """Split into consecutive windows of at most ``max_days`` days, oldest first."""
        if max_days < 1:
            raise ValueError("max_days must be at least 1")
        result = []
        start = self.start
        while True:
            end = (
                self.end
                if (self.end - start).days < max_days
                else start + datetime.timedelta(days=max_days - 1)
            )
            result.append(DateWindow(start, end))
            if end == self.end:  # never step past the last day: 9999-12-31 has no successor
                return result
            start = end + datetime.timedelta(days=1)

    def as_params(self) -> dict[str, str]:
        """The ``from`` / ``to`` fields of a request body."""
        return {"from": self.start.isoformat(), "to": self.end.isoformat()}

    def __str__(self) -> str:
        return f"{self.start.isoformat()}..{self.end.isoformat()}"


def utc_today() -> datetime.date:
    """Today's date in UTC, the API's calendar."""
    return datetime.datetime.now(datetime.UTC).date()


def to_utc_date(value: DateLike, name: str = "date") -> datetime.date:
    """
    Convert ``value`` to a UTC calendar date.

    :param value: a date, datetime (aware ones are converted to UTC; naive ones are taken as UTC), pendulum
        object, or ISO string.
    :param name: the parameter's name, used in the error message.
    :raises ZenDriveInputError: (a ``ValueError``) if the value cannot be read as a date.
    """
    if isinstance(value, datetime.datetime):
        if value.tzinfo is not None and value.utcoffset() is not None:
            value = value.astimezone(datetime.UTC)
        return datetime.date(value.year, value.month, value.day)
    if isinstance(value, datetime.date):
        return datetime.date(value.year, value.month, value.day)
    if isinstance(value, str):
        text = value.strip()
        try:
            # Only YYYY-MM-DD dates: fromisoformat also takes week dates (2026-W01-1) and basic (20260101).
            if ISO_DATE.fullmatch(text):
                return datetime.date.fromisoformat(text)
            if ISO_DATE.fullmatch(text[:10]) and text[10:11] in ("T", " "):
                return to_utc_date(datetime.datetime.fromisoformat(text.replace("Z", "+00:00")), name)
        except ValueError:
            pass
        raise ZenDriveInputError(f"{name}={value!r} is not a valid date; use YYYY-MM-DD (UTC).")
    raise ZenDriveInputError(
        f"{name}={value!r} has type {type(value).__name__}; pass a date, datetime or 'YYYY-MM-DD' string."
    )


def window_from_dates(
    from_date: DateLike | None,
    to_date: DateLike | None,
    *,
    today: datetime.date | None = None,
    max_days: int = LONGEST_PULL_DAYS,
) -> DateWindow | None:
    """
    Turn optional user bounds into a window, or None to let the API apply its default (last 30 days).

    With only ``to_date`` given, ``from`` is ``to - 30 days``; with only ``from_date`` given, ``to`` is today
    (UTC): the same defaults the server applies.

    :param max_days: the longest window accepted (:data:`LONGEST_PULL_DAYS` by default).
    :raises ZenDriveInputError: if a bound cannot be parsed, ``from_date`` is after ``to_date`` or the window
        is longer than ``max_days``.
    """
    if from_date is None and to_date is None:
        return None
    today = today or utc_today()
    end = to_utc_date(to_date, "to_date") if to_date is not None else today
    start = (
        to_utc_date(from_date, "from_date")
        if from_date is not None
        else shift(end, -DEFAULT_WINDOW_DAYS, "to_date")
    )
    window = DateWindow(start, end)
    if window.days > max_days:
        raise ZenDriveInputError(
            f"The window {window} spans {window.days:,} days ({len(window.chunks()):,} requests); the longest "
            f"pull allowed is {max_days:,} days. Check the dates for a typo, or pass a larger max_pull_days to "
            "pull a longer history on purpose."
        )
    return window


def shift(day: datetime.date, days: int, name: str = "date") -> datetime.date:
    """
    ``day`` moved by ``days`` days.

    :raises ZenDriveInputError: when that leaves the calendar (before 0001-01-01 or after 9999-12-31).
    """
    try:
        return day + datetime.timedelta(days=days)
    except OverflowError:
        raise ZenDriveInputError(
            f"{name} {day.isoformat()} moved by {days} days leaves the calendar (0001-01-01..9999-12-31)."
        ) from None


def choose_window(
    *,
    from_date: DateLike | None,
    to_date: DateLike | None,
    data_interval_start: datetime.datetime | None = None,
    data_interval_end: datetime.datetime | None = None,
    logical_date: datetime.datetime | None = None,
    lookback_days: int = 0,
    max_days: int = LONGEST_PULL_DAYS,
    today: datetime.date | None = None,
) -> tuple[DateWindow | None, str]:
    """
    Which days a run pulls, and why: the one answer the operator uses.

    1. Explicit bounds win (an empty string, e.g. a template that rendered to nothing, counts as not given).
    2. A non-empty data interval ``[start, end)`` pulls ``start.date() .. (end - 1 day).date()``, at least
       ``start``'s day.
    3. An empty interval (Airflow 3's default ``CronTriggerTimetable``, e.g. ``@daily``) pulls the single UTC day
       before the logical date.
    4. A run without a logical date lets the API default apply (None: the last 30 days).

    ``lookback_days`` then moves the start that many days earlier (the API default becomes its explicit
    window, ``today - 30 days .. today``), so late-arriving numbers of the days before are read again; one
    request still carries up to 366 days.

    :return: the window (None: the API default) and the reason, for the log.
    :raises ZenDriveInputError: on unparsable dates, ``from_date`` after ``to_date``, a window longer than
        ``max_days``, or dates at the edge of the calendar.
    """
    window, why = _base_window(
        from_date, to_date, data_interval_start, data_interval_end, logical_date, max_days
    )
    if lookback_days <= 0:
        return window, why
    if window is None:  # the API default, made explicit so that it can start earlier
        end = today or utc_today()
        window = DateWindow(shift(end, -DEFAULT_WINDOW_DAYS, "today"), end)
        why = "the API default (the last 30 days)"
    extended = window_from_dates(
        shift(window.start, -lookback_days, "from"), window.end, today=today, max_days=max_days
    )
    return extended, f"{why}, started {lookback_days} days earlier (lookback_days) to re-read late numbers"


def _base_window(
    from_date: DateLike | None,
    to_date: DateLike | None,
    start: datetime.datetime | None,
    end: datetime.datetime | None,
    logical_date: datetime.datetime | None,
    max_days: int,
) -> tuple[DateWindow | None, str]:
    from_date = _given(from_date)
    to_date = _given(to_date)
    if from_date is not None or to_date is not None:
        return window_from_dates(from_date, to_date, max_days=max_days), "from the task's from_date / to_date"
    if start is not None and end is not None and end > start:
        first = to_utc_date(start, "data_interval_start")
        last = max(first, to_utc_date(end - datetime.timedelta(days=1), "data_interval_end"))
        return DateWindow(first, last), f"the run's data interval [{start.isoformat()}, {end.isoformat()})"
    if logical_date is not None:
        day = shift(to_utc_date(logical_date, "logical_date"), -1, "logical_date")
        return DateWindow(day, day), (
            f"the UTC day before the run's logical date {logical_date.isoformat()} (empty data interval)"
        )
    return None, "because the run has no logical date"


def _given(value: DateLike | None) -> DateLike | None:
    """A bound the user gave; a template that rendered to an empty string counts as not given."""
    if isinstance(value, str) and not value.strip():
        return None
    return value
