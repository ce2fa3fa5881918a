"""
When to retry a request, and how long to wait first.

One place answers "what happens on a 429": the sync hook and the async trigger both ask :class:`Backoff`.

* 429 waits the server's ``Retry-After`` (delta-seconds or an HTTP-date) when given, plus up to one ``base``
  of jitter (Retry-After is a minimum; without jitter, every worker throttled in the same second comes back in
  the same instant and most are throttled again), else backs off.
* 500, 502, 503, 504, timeouts and connection errors back off exponentially with full jitter:
  ``uniform(0, min(cap, base * 2 ** attempt))`` with a 1 s base and a 60 s cap.
* Everything else (400, 401, 403, 404, 405, other 5xx such as 501, redirects, bad bodies) is never retried.

The exception tree alone says what is worth waiting for (a
:class:`~airflow_provider_zendrive.exceptions.ZenDriveTransientError`), in-process, for pollers and for the
task's retry policy alike: :func:`~airflow_provider_zendrive._client.api.error_for_response` maps only the
statuses in :data:`RETRYABLE_STATUSES` to transient errors.
"""

from __future__ import annotations

import datetime
import email.utils
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeGuard

from airflow_provider_zendrive.exceptions import (
    ZenDriveError,
    ZenDriveServiceInactiveError,
    ZenDriveTransientError,
)

__all__ = [
    "RETRYABLE_STATUSES",
    "Backoff",
    "Wait",
    "parse_retry_after",
    "poll_again_after",
    "retry_delay",
    "worth_retrying",
]

#: HTTP statuses worth another try: the rate limit and transient server errors.
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})


def parse_retry_after(value: str | None, *, now: datetime.datetime | None = None) -> float | None:
    """
    Read a ``Retry-After`` header as seconds to wait.

    :param value: the header value: delta-seconds (``"120"``) or an HTTP-date
        (``"Wed, 21 Oct 2026 07:28:00 GMT"``).
    :param now: the current time (for HTTP-dates); defaults to the clock.
    :return: seconds (never negative), or None if the header is absent or unreadable.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=datetime.UTC)
        now = now or datetime.datetime.now(datetime.UTC)
        seconds = (when - now).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


@dataclass(frozen=True)
class Wait:
    """
    The core's answer when an attempt failed but another may succeed: send again after ``seconds``.

    :param seconds: how long to wait before the next attempt (jitter and ``Retry-After`` included).
    :param error: what the failed attempt met, for the log line and for the caller's own decision.
    """

    seconds: float
    error: ZenDriveTransientError


@dataclass(frozen=True)
class Backoff:
    """
    The wait before retry number ``attempt + 1``.

    :param base: seconds of the first backoff ceiling.
    :param cap: the largest backoff ceiling, in seconds.
    :param max_retry_after: the longest ``Retry-After`` the hook waits in-process; a longer one is raised at
        once as :class:`~airflow_provider_zendrive.exceptions.ZenDriveRateLimitError` so that the task's own
        retry (or retry policy) waits instead of holding a worker slot.
    :param rng: a source of uniform floats in [0, 1) (for tests).
    """

    base: float = 1.0
    cap: float = 60.0
    max_retry_after: float = 300.0
    rng: Callable[[], float] = field(default=random.random, repr=False, compare=False)

    def ceiling(self, attempt: int) -> float:
        """The upper bound of the jittered wait after failed attempt number ``attempt`` (0-based)."""
        return min(self.cap, self.base * 2.0 ** min(attempt, 62))

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """
        Seconds to wait after failed attempt ``attempt`` (0-based).

        :param retry_after: the server's ``Retry-After`` in seconds: when given, the wait is that plus a uniform
            jitter of up to ``base`` seconds.
        """
        if retry_after is not None:
            return retry_after + float(self.rng()) * self.base
        return float(self.rng()) * self.ceiling(attempt)


def worth_retrying(error: ZenDriveError, backoff: Backoff) -> TypeGuard[ZenDriveTransientError]:
    """
    Whether another attempt in-process may succeed: a
    :class:`~airflow_provider_zendrive.exceptions.ZenDriveTransientError` (the tree decides) with a
    ``Retry-After`` the hook is willing to wait (``backoff.max_retry_after``; a longer one is left to the task's
    retry, not a worker slot).
    """
    if not isinstance(error, ZenDriveTransientError):
        return False
    return error.retry_after is None or error.retry_after <= backoff.max_retry_after


def retry_delay(error: ZenDriveError, attempt: int, max_retries: int, backoff: Backoff) -> Wait | None:
    """
    The one answer to "raise, or wait how long before sending again?" after a failed attempt.

    :param error: the mapped error of the attempt.
    :param attempt: how many retries were already made (0 after the first attempt).
    :param max_retries: how many retries are allowed.
    :param backoff: the backoff rules.
    :return: how long to wait, or None to raise ``error`` (not :func:`worth_retrying`, or no retry left).
    """
    if not worth_retrying(error, backoff) or attempt >= max_retries:
        return None
    return Wait(float(backoff.delay(attempt, error.retry_after)), error)


def poll_again_after(error: ZenDriveError, poke_interval: float) -> float | None:
    """
    The one answer for a poller (the sensor's poke, the trigger's poll): after a poll that met ``error``, how
    long to wait before polling again, or None when waiting cannot help.

    * 403 (the service is not active): ``poke_interval``; that is what the poller waits for.
    * A :class:`~airflow_provider_zendrive.exceptions.ZenDriveTransientError` (429, 500/502/503/504, timeouts, connection
      errors): ``poke_interval``, or the server's ``Retry-After`` when that is longer (polling earlier would only
      be refused again).
    * Anything else is final (a future error class too, unless it derives from ``ZenDriveTransientError``).
    """
    if isinstance(error, ZenDriveServiceInactiveError):
        return poke_interval
    if isinstance(error, ZenDriveTransientError):
        return max(poke_interval, error.retry_after or 0.0)
    return None
