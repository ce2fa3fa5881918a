"""
The emulator's deterministic usage data and the documented constants of the endpoint.

Every number depends only on ``(service_id, date)`` through SHA-256, so a test can compute the truth for any
window (:func:`window_stats`) without talking to the server, and two runs always agree.
"""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from airflow_provider_zendrive._client.models import DailyUsage, UsageStats, UsageSummary

__all__ = [
    "DEFAULT_WINDOW_DAYS",
    "DEMO_ACCESS_KEY",
    "DEMO_SECRET_KEY",
    "DEMO_SERVICE_ID",
    "ENDPOINT_PATH",
    "MAX_WINDOW_DAYS",
    "MESSAGES",
    "partly_counted",
    "usage_for_day",
    "window_stats",
]

#: The documented path, with its trailing slash.
ENDPOINT_PATH = "/zendrive-api/cdn-stats/"
#: The account every emulator starts with (and returns to on ``reset()``).
DEMO_ACCESS_KEY = "demo-access-key"
DEMO_SECRET_KEY = "demo-secret-key-0123456789"  # noqa: S105 - a public demo key of the emulator
DEMO_SERVICE_ID = 1234
#: The window the API uses when ``from`` is omitted is ``to - DEFAULT_WINDOW_DAYS``.
DEFAULT_WINDOW_DAYS = 30
#: The largest window (in days, both ends included) the API accepts.
MAX_WINDOW_DAYS = 366

#: The documented error messages, keyed by a short name.
MESSAGES: dict[str, str] = {
    "credentials_required": "access_key and secret_key are required",
    "bad_date": "'from' / 'to' must be a valid YYYY-MM-DD date",
    "inverted": "'from' must be on or before 'to'",
    "too_large": f"date range too large (max {MAX_WINDOW_DAYS} days)",
    "https_required": "HTTPS is required",
    "invalid_credentials": "Invalid credentials",
    "not_active": "Service is not active",
    "not_found": "Not found",
    "post_required": "POST is required",
    "rate_limited": "Too many requests, slow down",
    "internal": "Internal server error",
    "unavailable": "Service temporarily unavailable",
}

#: The message sent for a status when nothing more specific applies (e.g. an injected fault without a body).
STATUS_MESSAGES: dict[int, str] = {
    400: MESSAGES["credentials_required"],
    401: MESSAGES["invalid_credentials"],
    403: MESSAGES["not_active"],
    404: MESSAGES["not_found"],
    405: MESSAGES["post_required"],
    429: MESSAGES["rate_limited"],
    500: MESSAGES["internal"],
    503: MESSAGES["unavailable"],
}


def usage_for_day(service_id: int, day: datetime.date) -> DailyUsage | None:
    """
    Return the emulated usage of one service on one day, or None for a day without traffic.

    About one day in seven has no traffic. A day with traffic has tens of thousands of requests, of the order of
    1e11 bytes sent (always more than ``2**31``, so 32-bit integers overflow) and 1 to 20 unique IPs;
    ``successful_requests + client_errors + auth_failures == total_requests``.

    :param service_id: the service the usage belongs to.
    :param day: the UTC day.
    """
    digest = hashlib.sha256(f"zendrive-emulator:{service_id}:{day.isoformat()}".encode()).digest()
    if digest[0] % 7 == 0:
        return None

    def number(start: int, size: int) -> int:
        return int.from_bytes(digest[start : start + size], "big")

    total = 8_000 + number(1, 3) % 90_000
    client_errors = total * (1 + digest[4] % 30) // 1000
    auth_failures = digest[6] % 40 if digest[5] % 4 == 0 else 0
    received = 0 if digest[12] % 3 else number(13, 5) % 5_000_000_000
    return {
        "date": day.isoformat(),
        "total_requests": total,
        "successful_requests": total - client_errors - auth_failures,
        "client_errors": client_errors,
        "auth_failures": auth_failures,
        "bytes_sent": 20_000_000_000 + number(7, 5) % 200_000_000_000,
        "bytes_received": received,
        "unique_ips": 1 + digest[18] % 20,
    }


def partly_counted(usage: DailyUsage, fraction: float) -> DailyUsage:
    """
    Return a day's usage as it looks while its logs are still arriving: every counter at ``fraction`` of its
    final value (rounded down), still consistent (``successful + client errors + auth failures == total``).

    :param usage: the day's final usage (see :func:`usage_for_day`).
    :param fraction: how much of the day is counted, in [0, 1].
    """

    def part(value: int) -> int:
        return int(value * fraction)

    total, errors, failures = (
        part(usage["total_requests"]),
        part(usage["client_errors"]),
        part(usage["auth_failures"]),
    )
    return {
        **usage,
        "total_requests": total,
        "successful_requests": total - errors - failures,
        "client_errors": errors,
        "auth_failures": failures,
        "bytes_sent": part(usage["bytes_sent"]),
        "bytes_received": part(usage["bytes_received"]),
        "unique_ips": max(1, part(usage["unique_ips"])) if usage["unique_ips"] else 0,
    }


def window_stats(
    service_id: int,
    from_date: datetime.date,
    to_date: datetime.date,
    *,
    new: bool = False,
    counted: Callable[[datetime.date], float] | None = None,
) -> UsageStats:
    """
    Return the successful response for a window, exactly as the emulator sends it (any length of window).

    ``summary.unique_ips`` is the largest daily count of the window (0 without traffic): the same addresses
    come back day after day, so the distinct count of a window is at least its busiest day's.

    :param service_id: the service the usage belongs to.
    :param from_date: the first day of the window.
    :param to_date: the last day of the window (inclusive).
    :param new: a brand-new service: zeroed totals and an empty ``daily`` list.
    :param counted: for late data, the fraction of a day's final numbers counted so far (1.0: final); None:
        every day is final.
    """
    from airflow_provider_zendrive._client.models import success_rate

    daily: list[DailyUsage] = []
    if not new:
        day = from_date
        while day <= to_date:
            usage = usage_for_day(service_id, day)
            if usage is not None:
                fraction = 1.0 if counted is None else counted(day)
                daily.append(usage if fraction >= 1.0 else partly_counted(usage, fraction))
            day += datetime.timedelta(days=1)
    total = sum(d["total_requests"] for d in daily)
    successful = sum(d["successful_requests"] for d in daily)
    summary: UsageSummary = {
        "total_requests": total,
        "successful_requests": successful,
        "client_errors": sum(d["client_errors"] for d in daily),
        "auth_failures": sum(d["auth_failures"] for d in daily),
        "bytes_sent": sum(d["bytes_sent"] for d in daily),
        "bytes_received": sum(d["bytes_received"] for d in daily),
        "unique_ips": max((d["unique_ips"] for d in daily), default=0),
        "success_rate": success_rate(successful, total),
    }
    return {
        "status": "ok",
        "service_id": service_id,
        "from": from_date.isoformat(),
        "to": to_date.isoformat(),
        "summary": summary,
        "daily": daily,
    }
