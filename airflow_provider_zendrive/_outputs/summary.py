"""
The human summary of one pull: what a person reads in a chat message, an email, or the task log.

The first line is a headline that fits an email subject; the lines after it are the body. Volumes are in
decimal GB (10**9 bytes), as the vendor bills, or GiB on request; counts carry thousands separators; no raw
byte count appears without its unit. The summary is built from the stats alone, so it can never hold a key.
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Literal, TypeAlias

if TYPE_CHECKING:
    from airflow_provider_zendrive._client.models import UsageStats

__all__ = ["VOLUME_UNITS", "VolumeUnit", "format_volume", "usage_summary"]

#: The units a summary can state volumes in, and their size in bytes.
VOLUME_UNITS = {"GB": 1_000_000_000, "GiB": 2**30}
VolumeUnit: TypeAlias = Literal["GB", "GiB"]


def format_volume(size: int, unit: VolumeUnit = "GB") -> str:
    """
    ``size`` bytes in ``unit``, with thousands separators: ``"1,234.5 GB"``; a small non-zero volume keeps
    three decimals (``"0.004 GB"``) rather than showing as nothing.
    """
    value = size / VOLUME_UNITS[unit]
    text = f"{value:,.1f}"
    if size and text == "0.0":
        text = f"{value:,.3f}"
    return f"{text} {unit}"


def usage_summary(stats: UsageStats, *, revised: int | None = None, unit: VolumeUnit = "GB") -> str:
    """
    The summary of one pull: a headline line, then the details.

    :param stats: the stats the hook returned (the API's answer for the window).
    :param revised: how many rows already in the table this pull changed (None: no table was written).
    :param unit: ``"GB"`` (decimal, as the vendor bills) or ``"GiB"``.
    """
    if unit not in VOLUME_UNITS:
        raise ValueError(f"unit must be one of {sorted(VOLUME_UNITS)}, got {unit!r}")
    summary = stats["summary"]
    first = datetime.date.fromisoformat(stats["from"])
    last = datetime.date.fromisoformat(stats["to"])
    days = (last - first).days + 1
    busy = {day["date"] for day in stats["daily"] if day["total_requests"] > 0}
    quiet = [
        (first + datetime.timedelta(days=n)).isoformat()
        for n in range(days)
        if (first + datetime.timedelta(days=n)).isoformat() not in busy
    ]
    total = summary["total_requests"]
    rate = f", {100 * summary['successful_requests'] / total:.2f} % successful" if total else ""
    window = stats["from"] if first == last else f"{stats['from']} to {stats['to']}"
    lines = [
        f"ZenDRIVE service {stats['service_id']}, {window}: {total:,} requests{rate}, "
        f"{format_volume(summary['bytes_sent'], unit)} sent",
        f"Requests: {total:,} ({summary['successful_requests']:,} successful, "
        f"{summary['client_errors']:,} client errors, {summary['auth_failures']:,} auth failures)",
        f"Volume: {format_volume(summary['bytes_sent'], unit)} sent, "
        f"{format_volume(summary['bytes_received'], unit)} received",
        f"Days without traffic: {len(quiet)} of {days}" + (f" ({_days(quiet)})" if quiet else ""),
    ]
    if revised is not None:
        lines.append(
            f"Revised rows: {revised:,}" + (" (numbers changed since an earlier pull)" if revised else "")
        )
    return "\n".join(lines)


def _days(days: list[str], most: int = 5) -> str:
    shown = ", ".join(days[:most])
    return shown + (f" and {len(days) - most} more" if len(days) > most else "")
