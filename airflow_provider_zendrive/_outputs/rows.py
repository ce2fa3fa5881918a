"""
Usage statistics as rows: one per day of the window, and their CSV / JSON Lines / JSON / Parquet encodings.

The API omits days without traffic. With ``fill_missing_days`` those days come back as zero rows, so a file or
a table covers every day of the window and a missing day is never mistaken for a missing pull.
"""

from __future__ import annotations

import csv
import datetime
import io
import json
from typing import TYPE_CHECKING, Literal

from airflow_provider_zendrive._client.models import DAILY_FIELDS
from airflow_provider_zendrive._client.windows import DateWindow
from airflow_provider_zendrive.exceptions import ZenDriveInputError

if TYPE_CHECKING:
    from airflow_provider_zendrive._client.models import UsageStats

__all__ = [
    "COLUMNS",
    "FORMATS",
    "OutputFormat",
    "Row",
    "daily_rows",
    "encode",
    "resolve_format",
]

#: The columns of a CSV / JSON Lines file and of the table (which adds ``fetched_at``), in order.
COLUMNS: tuple[str, ...] = ("service_id", "date", *DAILY_FIELDS)

OutputFormat = Literal["csv", "json", "jsonl", "parquet"]
#: Accepted ``output_format`` values and file suffixes, mapped to the format they mean.
FORMATS: dict[str, OutputFormat] = {
    "csv": "csv",
    "json": "json",
    "jsonl": "jsonl",
    "ndjson": "jsonl",
    "parquet": "parquet",
}

#: One day: ``service_id`` and the daily counters are ints, ``date`` is ``YYYY-MM-DD``.
Row = dict[str, "int | str"]


def resolve_format(output_path: str, output_format: str | None) -> OutputFormat:
    """
    Pick the file format from ``output_format``, else from the path's suffix.

    :param output_path: a local path or a URI; only its last suffix is looked at.
    :param output_format: ``csv``, ``json``, ``jsonl``, ``ndjson`` or ``parquet`` (case-insensitive), or None.
    :raises ZenDriveInputError: if neither names a known format.
    """
    known = ", ".join(sorted(FORMATS))
    if output_format is not None:
        fmt = FORMATS.get(str(output_format).strip().lower().lstrip("."))
        if fmt is None:
            raise ZenDriveInputError(f"output_format={output_format!r} is not supported; use one of {known}.")
        return fmt
    name = output_path.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    suffix = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    fmt = FORMATS.get(suffix)
    if fmt is None:
        raise ZenDriveInputError(
            f"Cannot tell the file format of output_path {output_path!r} from its suffix "
            f"({'.' + suffix if suffix else 'none'}); end it with .csv, .json, .jsonl, .ndjson or .parquet, or set "
            f"output_format to one of {known}."
        )
    return fmt


def daily_rows(stats: UsageStats, *, fill_missing_days: bool = True) -> list[Row]:
    """
    Flatten the ``daily`` list of a response into rows, oldest first.

    :param stats: the hook's result, whose ``daily`` the hook has checked to lie in ``from .. to``, oldest
        first and once per day (:func:`~airflow_provider_zendrive._client.models.check_window`).
    :param fill_missing_days: add a zero row for each day of ``from .. to`` that ``daily`` omits.
    """
    service_id = stats["service_id"]
    by_date: dict[str, Row] = {
        day["date"]: {"service_id": service_id, **day}  # type: ignore[dict-item]
        for day in stats["daily"]
    }
    if fill_missing_days:
        window = DateWindow(
            datetime.date.fromisoformat(stats["from"]), datetime.date.fromisoformat(stats["to"])
        )
        for date in (day.isoformat() for day in window.dates()):
            by_date.setdefault(
                date, {"service_id": service_id, "date": date, **dict.fromkeys(DAILY_FIELDS, 0)}
            )
    return [by_date[date] for date in sorted(by_date)]


def encode(fmt: OutputFormat, stats: UsageStats, rows: list[Row]) -> bytes:
    """
    Encode the output file.

    CSV has a header line and ``\\n`` line ends; JSON Lines has one object per row with the keys in
    :data:`COLUMNS` order; JSON is the stats dict itself, indented (all three UTF-8). Parquet holds the rows
    typed, plus ``fetched_at`` (now), see :mod:`airflow_provider_zendrive._outputs.parquet` (pyarrow is
    imported only here).

    :param fmt: the format from :func:`resolve_format`.
    :param stats: the hook's result (for JSON).
    :param rows: the rows from :func:`daily_rows` (for CSV and JSON Lines).
    """
    if fmt == "parquet":
        from airflow_provider_zendrive._outputs.parquet import encode_parquet

        return encode_parquet(rows, fetched_at=datetime.datetime.now(datetime.UTC))
    if fmt == "json":
        return (json.dumps(stats, indent=2) + "\n").encode()
    if fmt == "jsonl":
        return "".join(json.dumps({name: row[name] for name in COLUMNS}) + "\n" for row in rows).encode()
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows([row[name] for name in COLUMNS] for row in rows)
    return buffer.getvalue().encode()
