"""
The endpoint's rules that need no server state: answers, date windows, the token bucket, body parsing.

:meth:`ZenDriveEmulator._answer` strings these together in the documented order of checks.
"""

from __future__ import annotations

import datetime
import email.utils
import json
import math
import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from airflow_provider_zendrive.testing._data import (
    DEFAULT_WINDOW_DAYS,
    MAX_WINDOW_DAYS,
    MESSAGES,
    STATUS_MESSAGES,
)

if TYPE_CHECKING:
    from airflow_provider_zendrive.testing._types import Fault

__all__ = [
    "Answer",
    "RetryAfterStyle",
    "TokenBucket",
    "error_answer",
    "fault_answer",
    "parse_json",
    "parse_window",
    "retry_after_header",
]

#: How a 429 of the emulator's own rate limit says when to come back.
RetryAfterStyle = Literal["seconds", "http-date"]

_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
_JSON_HEADERS = {"Content-Type": "application/json"}


@dataclass
class Answer:
    """What to send back: status 0 with ``drop`` closes the connection without a response."""

    status: int
    headers: dict[str, str] = field(default_factory=lambda: dict(_JSON_HEADERS))
    body: bytes = b""
    delay: float = 0.0
    drop: bool = False
    drip: float = 0.0


def error_answer(status: int, message: str, headers: dict[str, str] | None = None) -> Answer:
    """
    Return ``{"status": "error", "message": ...}`` with a status.

    :param status: the HTTP status.
    :param message: the documented message.
    :param headers: extra response headers.
    """
    body = json.dumps({"status": "error", "message": message}).encode()
    return Answer(status, {**_JSON_HEADERS, **(headers or {})}, body)


def fault_answer(fault: Fault) -> Answer:
    """
    Return the answer an injected fault stands for.

    :param fault: the fault taken off the queue.
    """
    if fault.drop:
        return Answer(0, delay=fault.delay, drop=True)
    if fault.body is None:
        answer = error_answer(fault.status, STATUS_MESSAGES.get(fault.status) or _status_phrase(fault.status))
    else:
        answer = Answer(fault.status, body=fault.body)
    overridden = {name.lower() for name in fault.headers}
    answer.headers = {k: v for k, v in answer.headers.items() if k.lower() not in overridden}
    answer.headers.update(fault.headers)
    answer.delay = fault.delay
    answer.drip = fault.drip
    return answer


def parse_window(payload: dict[str, Any], today: datetime.date) -> tuple[datetime.date, datetime.date] | str:
    """
    Return the ``(from, to)`` window a request asks for, or the documented 400 message.

    :param payload: the request body.
    :param today: the server's today (the default ``to``).
    """
    dates: list[datetime.date | None] = []
    for name in ("from", "to"):
        value = payload.get(name)
        if value is None:
            dates.append(None)
            continue
        if not isinstance(value, str) or not _DATE_RE.fullmatch(value):
            return MESSAGES["bad_date"]
        try:
            dates.append(datetime.date.fromisoformat(value))
        except ValueError:
            return MESSAGES["bad_date"]
    from_date, to_date = dates
    if to_date is None:
        to_date = today
    if from_date is None:
        from_date = to_date - datetime.timedelta(days=DEFAULT_WINDOW_DAYS)
    if from_date > to_date:
        return MESSAGES["inverted"]
    if (to_date - from_date).days + 1 > MAX_WINDOW_DAYS:
        return MESSAGES["too_large"]
    return from_date, to_date


class TokenBucket:
    """
    A token bucket: ``rate`` tokens a second, at most ``capacity``, starting full.

    :param rate: tokens added per second.
    :param capacity: the most tokens the bucket holds (the burst).
    """

    def __init__(self, rate: float, capacity: int) -> None:
        self.rate = rate
        self.capacity = float(max(capacity, 1))
        self.tokens = self.capacity
        self.stamp = time.monotonic()

    def take(self) -> float | None:
        """Take a token; return None on success, else the seconds until the next token."""
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return None
        return (1 - self.tokens) / self.rate


def retry_after_header(style: RetryAfterStyle | None, wait: float) -> dict[str, str]:
    """
    Return the ``Retry-After`` header for a wait, rounded up to a whole second.

    :param style: ``"seconds"``, ``"http-date"`` or None (no header).
    :param wait: seconds until the next token.
    """
    if style == "seconds":
        return {"Retry-After": str(max(1, math.ceil(wait)))}
    if style == "http-date":
        return {"Retry-After": email.utils.formatdate(math.ceil(time.time() + wait), usegmt=True)}
    return {}


def parse_json(body: bytes) -> Any | None:
    """
    Return the parsed body, or None if it is empty or not JSON.

    :param body: the raw request body.
    """
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


def text(value: object) -> str | None:
    """
    Return a non-empty string as is, anything else as None.

    :param value: a body field.
    """
    return value if isinstance(value, str) and value else None


def raw_str(value: object) -> str | None:
    """
    Return a string as is, anything else as None.

    :param value: a body field.
    """
    return value if isinstance(value, str) else None


def _status_phrase(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
