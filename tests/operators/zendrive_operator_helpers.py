"""Helpers of the operator tests: the expected rows of a window, and reading a SQLite table back."""

from __future__ import annotations

import datetime
import sqlite3
from pathlib import Path
from typing import Any

COLUMNS = (
    "service_id",
    "date",
    "total_requests",
    "successful_requests",
    "client_errors",
    "auth_failures",
    "bytes_sent",
    "bytes_received",
    "unique_ips",
)


def truth_rows(service_id: int, start: datetime.date, end: datetime.date) -> list[dict[str, Any]]:
    """The rows every output must hold for a window: the emulator's numbers, zero rows on quiet days."""
    from airflow_provider_zendrive.testing import usage_for_day

    rows = []
    for offset in range((end - start).days + 1):
        day = start + datetime.timedelta(days=offset)
        usage = usage_for_day(service_id, day)
        values = dict(usage) if usage is not None else dict.fromkeys(COLUMNS[2:], 0)
        rows.append({"service_id": service_id, **values, "date": day.isoformat()})
    return [{name: row[name] for name in COLUMNS} for row in rows]


def sqlite_rows(path: Path, table: str = "zendrive_daily_usage") -> list[tuple[Any, ...]]:
    """Every row of the table, without ``fetched_at``, ordered by day."""
    with sqlite3.connect(path) as conn:
        columns = ", ".join(f'"{name}"' for name in COLUMNS)
        return conn.execute(f'SELECT {columns} FROM "{table}" ORDER BY "date"').fetchall()  # noqa: S608
