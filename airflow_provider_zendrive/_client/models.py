"""
The usage-statistics response: typed shapes, validation and the merge of chunked windows.

A response is validated field by field against the documented schema, and against the window asked for,
before anyone sees it. Fields the documentation does not name are tolerated and dropped, so what the hook
returns always has exactly the documented shape and is JSON-serialisable (it goes to XCom as is).
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any, TypedDict

from airflow_provider_zendrive._client.windows import ISO_DATE, MAX_WINDOW_DAYS
from airflow_provider_zendrive.exceptions import ZenDriveError, ZenDriveResponseError

if TYPE_CHECKING:
    from airflow_provider_zendrive._client.windows import DateWindow

__all__ = [
    "ADDITIVE_FIELDS",
    "DAILY_FIELDS",
    "DailyUsage",
    "UsageStats",
    "UsageSummary",
    "check_window",
    "merge_stats",
    "parse_stats",
    "success_rate",
]

#: Counters that add up across days and windows.
ADDITIVE_FIELDS: tuple[str, ...] = (
    "total_requests",
    "successful_requests",
    "client_errors",
    "auth_failures",
    "bytes_sent",
    "bytes_received",
)
#: The fields of one ``daily`` entry after ``date``, in the documented order.
DAILY_FIELDS: tuple[str, ...] = (*ADDITIVE_FIELDS, "unique_ips")
#: The largest counter a response may carry: what a signed 64-bit (BIGINT) column holds.
MAX_COUNT = 2**63 - 1


class DailyUsage(TypedDict):
    """One day that had traffic (days without traffic are omitted by the API)."""

    date: str
    total_requests: int
    successful_requests: int
    client_errors: int
    auth_failures: int
    bytes_sent: int
    bytes_received: int
    unique_ips: int


class UsageSummary(TypedDict):
    """Totals over the window. ``unique_ips`` is None when several chunks were merged."""

    total_requests: int
    successful_requests: int
    client_errors: int
    auth_failures: int
    bytes_sent: int
    bytes_received: int
    unique_ips: int | None
    success_rate: float


UsageStats = TypedDict(
    "UsageStats",
    {
        "status": str,
        "service_id": int,
        "from": str,
        "to": str,
        "summary": UsageSummary,
        "daily": list[DailyUsage],
    },
)
UsageStats.__doc__ = "The API's JSON response: ``status, service_id, from, to, summary{...}, daily[...]``."


def success_rate(successful: int, total: int) -> float:
    """Return ``successful / total`` as a percentage rounded half-up to one decimal (0.0 when total is 0)."""
    if total <= 0:
        return 0.0
    rate = Decimal(successful) * 100 / Decimal(total)
    return float(rate.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def parse_stats(raw: bytes | str) -> UsageStats:
    """
    Decode and validate a 200 response body.

    :param raw: the response body as received.
    :raises ZenDriveResponseError: if the body is not JSON, is truncated, misses a field, has a field of the
        wrong type or says ``status`` is not ``"ok"``.
    """
    try:
        payload = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ZenDriveResponseError(
            f"The server answered 200 but the body is not valid JSON ({type(exc).__name__} at "
            f"{_describe_json_error(exc)}); the response may be truncated."
        ) from None
    return _validate(payload)


def _describe_json_error(exc: Exception) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"line {exc.lineno} column {exc.colno}"
    return "decode"


def _validate(payload: object) -> UsageStats:
    root = _mapping(payload, "response")
    status = root.get("status")
    if status != "ok":
        raise ZenDriveResponseError(f"The server answered 200 with status {_short(status)} instead of 'ok'.")
    summary = _mapping(root.get("summary"), "summary")
    daily_raw = root.get("daily")
    if not isinstance(daily_raw, list):
        raise ZenDriveResponseError(f"Field 'daily' must be a list, got {_type_name(daily_raw)}.")
    daily: list[DailyUsage] = []
    for index, item in enumerate(daily_raw):
        entry = _mapping(item, f"daily[{index}]")
        day: dict[str, Any] = {"date": _date_str(entry, "date", f"daily[{index}]")}
        for name in DAILY_FIELDS:
            day[name] = _count(entry, name, f"daily[{index}]")
        daily.append(day)  # type: ignore[arg-type]
    parsed_summary: dict[str, Any] = {name: _count(summary, name, "summary") for name in ADDITIVE_FIELDS}
    parsed_summary["unique_ips"] = _count(summary, "unique_ips", "summary")
    parsed_summary["success_rate"] = _rate(summary)
    return {
        "status": "ok",
        "service_id": _count(root, "service_id", "response"),
        "from": _date_str(root, "from", "response"),
        "to": _date_str(root, "to", "response"),
        "summary": parsed_summary,  # type: ignore[typeddict-item]
        "daily": daily,
    }


def check_window(stats: UsageStats, window: DateWindow | None) -> UsageStats:
    """
    Check that a response covers the window asked for and that ``daily`` is in it, oldest first, once per day.

    A server that answered for another window (clamped, or its default because the dates were lost) would
    otherwise be reported as the window asked for, and the days it did not cover would look like days without
    traffic.

    :param stats: a response from :func:`parse_stats`.
    :param window: the window sent, or None when the API default was asked for.
    :raises ZenDriveResponseError: if ``from`` / ``to`` differ from the window sent, or a ``daily`` date is
        outside ``from .. to``, repeated or out of order.
    """
    first, last = stats["from"], stats["to"]
    if window is not None and (first, last) != (window.start.isoformat(), window.end.isoformat()):
        raise ZenDriveResponseError(
            f"The server answered for {first}..{last} but {window} was asked for; nothing was used."
        )
    if first > last:
        raise ZenDriveResponseError(f"The server answered for an inverted window {first}..{last}.")
    days = (datetime.date.fromisoformat(last) - datetime.date.fromisoformat(first)).days + 1
    if days > MAX_WINDOW_DAYS:
        raise ZenDriveResponseError(
            f"The server answered for {first}..{last} ({days:,} days), but one answer covers at most "
            f"{MAX_WINDOW_DAYS} days; nothing was used."
        )
    previous = ""
    for day in stats["daily"]:
        date = day["date"]
        if not first <= date <= last:
            raise ZenDriveResponseError(f"The response lists day {date} outside its window {first}..{last}.")
        if date <= previous:
            raise ZenDriveResponseError(
                f"The response lists day {date} after {previous}: 'daily' must be oldest first, one entry a day."
            )
        previous = date
    return stats


def merge_stats(chunks: Sequence[UsageStats], from_date: datetime.date, to_date: datetime.date) -> UsageStats:
    """
    Merge the responses for consecutive windows into one response for ``from_date .. to_date``.

    ``daily`` lists are concatenated in order, additive summary fields are summed, ``success_rate`` is
    recomputed, and ``unique_ips`` becomes None when more than one chunk is merged: a count of distinct
    addresses per window cannot be added up across windows.

    :raises ZenDriveResponseError: if the chunks name different services.
    """
    if not chunks:
        raise ZenDriveError("merge_stats needs at least one chunk")
    if len(chunks) == 1:
        return {**chunks[0], "from": from_date.isoformat(), "to": to_date.isoformat()}
    service_ids = {chunk["service_id"] for chunk in chunks}
    if len(service_ids) != 1:
        raise ZenDriveResponseError(
            f"The chunks of one window came back for different services {sorted(service_ids)}; "
            "the key pair may have been reassigned mid-pull. Nothing was merged."
        )
    totals = {name: sum(chunk["summary"][name] for chunk in chunks) for name in ADDITIVE_FIELDS}  # type: ignore[literal-required]
    summary: UsageSummary = {
        "total_requests": totals["total_requests"],
        "successful_requests": totals["successful_requests"],
        "client_errors": totals["client_errors"],
        "auth_failures": totals["auth_failures"],
        "bytes_sent": totals["bytes_sent"],
        "bytes_received": totals["bytes_received"],
        "unique_ips": None,
        "success_rate": success_rate(totals["successful_requests"], totals["total_requests"]),
    }
    return {
        "status": "ok",
        "service_id": chunks[0]["service_id"],
        "from": from_date.isoformat(),
        "to": to_date.isoformat(),
        "summary": summary,
        "daily": [day for chunk in chunks for day in chunk["daily"]],
    }


def _mapping(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ZenDriveResponseError(f"Field '{where}' must be a JSON object, got {_type_name(value)}.")
    return value


def _count(container: Mapping[str, Any], name: str, where: str) -> int:
    if name not in container:
        raise ZenDriveResponseError(f"Field '{where}.{name}' is missing from the response.")
    value = container[name]
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ZenDriveResponseError(
            f"Field '{where}.{name}' must be a non-negative integer, got {_type_name(value)} {_short(value)}."
        )
    if value > MAX_COUNT:
        raise ZenDriveResponseError(
            f"Field '{where}.{name}' is {_short(value)}, more than a 64-bit counter (a BIGINT column) can hold."
        )
    return value


def _rate(summary: Mapping[str, Any]) -> float:
    if "success_rate" not in summary:
        raise ZenDriveResponseError("Field 'summary.success_rate' is missing from the response.")
    value = summary["success_rate"]
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 100:
        raise ZenDriveResponseError(
            f"Field 'summary.success_rate' must be a number from 0 to 100, got {_type_name(value)} {_short(value)}."
        )
    return float(value)


def _date_str(container: Mapping[str, Any], name: str, where: str) -> str:
    if name not in container:
        raise ZenDriveResponseError(f"Field '{where}.{name}' is missing from the response.")
    value = container[name]
    try:
        if not isinstance(value, str) or not ISO_DATE.fullmatch(value):
            raise ValueError(value)
        datetime.date.fromisoformat(value)
    except ValueError:
        raise ZenDriveResponseError(
            f"Field '{where}.{name}' must be a YYYY-MM-DD date, got {_type_name(value)} {_short(value)}."
        ) from None
    return value


def _type_name(value: object) -> str:
    return "null" if value is None else type(value).__name__


def _short(value: object) -> str:
    """A value for a message; a long one is described, never cut (a cut secret would escape redaction)."""
    text = repr(value)
    return text if len(text) <= 40 else f"<{_type_name(value)} of {len(text)} characters>"
