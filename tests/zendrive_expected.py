"""
What the tests expect, stated independently of the package: the documented columns, the emulator's per-day truth
of a window (zero rows on quiet days), the documented success rate, and readers of what landed.

Only :func:`usage_for_day` (the emulator's deterministic data) comes from the package: it is the ground truth the
emulator serves. Column lists and formulas are spelled out here, so a change in the package cannot silently
change what a test expects.
"""

from __future__ import annotations

import contextlib
import datetime
import sqlite3
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

#: The keys of one ``daily`` entry of the API, in the documented order.
DAILY_KEYS = (
    "date",
    "total_requests",
    "successful_requests",
    "client_errors",
    "auth_failures",
    "bytes_sent",
    "bytes_received",
    "unique_ips",
)
#: The columns of CSV / JSONL rows and of the table (the table adds ``fetched_at``).
COLUMNS = ("service_id", *DAILY_KEYS)
#: The summary fields that are sums of the daily ones (``unique_ips`` is a distinct count, not a sum).
ADDITIVE = DAILY_KEYS[1:-1]


def percent(successful: int, total: int) -> float:
    """``success_rate`` as documented: successful / total as a percentage, one decimal (half up), 0.0 if no traffic."""
    if total == 0:
        return 0.0
    return float(
        (Decimal(successful) * 100 / Decimal(total)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
    )


def days(first: datetime.date, last: datetime.date) -> list[datetime.date]:
    """Every day from ``first`` to ``last``, both included."""
    return [first + datetime.timedelta(days=n) for n in range((last - first).days + 1)]


def truth_rows(service_id: int, first: datetime.date, last: datetime.date) -> list[dict[str, Any]]:
    """The rows every output must hold for a window: the emulator's numbers, zero rows on quiet days."""
    from airflow_provider_zendrive.testing import usage_for_day

    rows = []
    for day in days(first, last):
        usage = usage_for_day(service_id, day)
        values: dict[str, Any] = dict(usage) if usage is not None else dict.fromkeys(DAILY_KEYS, 0)
        values.update(service_id=service_id, date=day.isoformat())
        rows.append({name: values[name] for name in COLUMNS})
    return rows


def truth_tuples(service_id: int, first: datetime.date, last: datetime.date) -> list[tuple[Any, ...]]:
    """:func:`truth_rows` as tuples in :data:`COLUMNS` order, as a ``SELECT`` of those columns returns them."""
    return [tuple(row.values()) for row in truth_rows(service_id, first, last)]


def sqlite_rows(path: Path, table: str = "zendrive_daily_usage") -> list[tuple[Any, ...]]:
    """Every row of the table in :data:`COLUMNS` order (without ``fetched_at``), by service and day."""
    columns = ", ".join(f'"{name}"' for name in COLUMNS)
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return conn.execute(
            f'SELECT {columns} FROM "{table}" ORDER BY "service_id", "date"'  # noqa: S608
        ).fetchall()


def warnings_of(logs: list[dict[str, Any]]) -> list[str]:
    """The events logged at WARNING, from the ``logs`` fixture (structlog's captured entries)."""
    return [str(entry["event"]) for entry in logs if entry["log_level"] == "warning"]
