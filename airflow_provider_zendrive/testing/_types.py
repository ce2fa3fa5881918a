"""The emulator's value types: accounts, injected faults and recorded requests."""

from __future__ import annotations

import functools
import json
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["Account", "Fault", "MalformedKind", "RecordedRequest"]

#: The broken 200 bodies :meth:`Fault.malformed` can produce.
MalformedKind = Literal["not-json", "truncated", "missing-field", "wrong-type", "status-error"]

# The documented example response, the base of the malformed bodies.
_EXAMPLE: dict[str, Any] = {
    "status": "ok",
    "service_id": 1234,
    "from": "2026-05-25",
    "to": "2026-06-24",
    "summary": {
        "total_requests": 41201,
        "successful_requests": 41000,
        "client_errors": 201,
        "auth_failures": 0,
        "bytes_sent": 402954112000,
        "bytes_received": 0,
        "unique_ips": 2,
        "success_rate": 99.5,
    },
    "daily": [
        {
            "date": "2026-05-25",
            "total_requests": 41201,
            "successful_requests": 41000,
            "client_errors": 201,
            "auth_failures": 0,
            "bytes_sent": 402954112000,
            "bytes_received": 0,
            "unique_ips": 2,
        }
    ],
}


def _malformed_body(kind: MalformedKind) -> bytes:
    if kind == "not-json":
        return b"<html><body><h1>502 Bad Gateway</h1></body></html>"
    if kind == "truncated":
        whole = json.dumps(_EXAMPLE).encode()
        return whole[: len(whole) // 2]
    if kind == "missing-field":
        return json.dumps({key: value for key, value in _EXAMPLE.items() if key != "summary"}).encode()
    if kind == "wrong-type":
        summary = {**_EXAMPLE["summary"], "total_requests": "41201"}
        return json.dumps({**_EXAMPLE, "summary": summary}).encode()
    if kind == "status-error":
        return json.dumps({"status": "error", "message": "Internal server error"}).encode()
    raise ValueError(f"unknown malformed body kind {kind!r}")


@dataclass
class Account:
    """
    One key pair the emulator accepts.

    :param access_key: the S3 access key.
    :param secret_key: the S3 secret key (never shown in ``repr``).
    :param service_id: the service the key pair belongs to; drives the deterministic usage data.
    :param active: False answers 403 "Service is not active" until the account is resumed.
    :param suspended_for: answer 403 to the next N authenticated requests of this key, then be active.
    :param new: a brand-new service: zeroed totals and an empty ``daily`` list.
    """

    access_key: str
    secret_key: str = field(repr=False)
    service_id: int
    active: bool = True
    suspended_for: int = 0
    new: bool = False


@dataclass(frozen=True)
class Fault:
    """
    One injected response, consumed by the next matching request on the HTTPS listener (first in, first out).

    Faults are looked at after the path and method checks and before anything else. A fault with status 200
    and no body means "answer normally, but after ``delay``".

    :param status: the HTTP status to answer.
    :param body: the raw body; None sends ``{"status": "error", "message": ...}`` with the documented message.
    :param headers: extra response headers, e.g. ``{"Retry-After": "2"}``.
    :param delay: seconds to wait before answering (to trigger client read timeouts).
    :param drop: close the connection without any response.
    :param access_key: only requests with this access key consume the fault (None: any request).
    :param drip: send the whole response (status line, headers, body) one byte every ``drip`` seconds: each
        read a client makes succeeds, so only a deadline on the whole attempt ends it.
    """

    status: int = 503
    body: bytes | None = None
    headers: Mapping[str, str] = field(default_factory=dict, hash=False)
    delay: float = 0.0
    drop: bool = False
    access_key: str | None = None
    drip: float = 0.0

    @classmethod
    def malformed(cls, kind: MalformedKind, *, access_key: str | None = None) -> Fault:
        """
        Return a 200 whose body is broken.

        :param kind: ``"not-json"`` (an HTML page), ``"truncated"`` (half of a valid body),
            ``"missing-field"`` (no ``summary``), ``"wrong-type"`` (``summary.total_requests`` is a string) or
            ``"status-error"`` (``{"status": "error", ...}`` with a 200).
        :param access_key: only for requests with this access key.
        """
        return cls(status=200, body=_malformed_body(kind), access_key=access_key)

    @classmethod
    def rate_limited(cls, retry_after: str | None = "1", *, access_key: str | None = None) -> Fault:
        """
        Return a 429 "Too many requests, slow down".

        :param retry_after: the ``Retry-After`` header (seconds or an HTTP date); None sends no header.
        :param access_key: only for requests with this access key.
        """
        headers = {} if retry_after is None else {"Retry-After": retry_after}
        return cls(status=429, headers=headers, access_key=access_key)

    @classmethod
    def dripping(cls, interval: float = 0.5, *, access_key: str | None = None) -> Fault:
        """
        Return a fault that answers normally, one byte every ``interval`` seconds (a slow-drip server).

        :param interval: seconds between two bytes.
        :param access_key: only for requests with this access key.
        """
        return cls(status=200, drip=interval, access_key=access_key)

    @classmethod
    def gzip_bomb(cls, inflated_bytes: int = 200 * 1024 * 1024, *, access_key: str | None = None) -> Fault:
        """
        Return a 200 whose gzip body (sent although no compression was asked for) inflates to
        ``inflated_bytes`` of zeros: 200 MB by default, from about 0.2 MB on the wire.

        :param inflated_bytes: the size after decompression.
        :param access_key: only for requests with this access key.
        """
        return cls(
            status=200,
            body=_gzip_of_zeros(inflated_bytes),
            headers={"Content-Encoding": "gzip"},
            access_key=access_key,
        )

    @classmethod
    def slow(cls, delay: float, *, access_key: str | None = None) -> Fault:
        """
        Return a fault that answers normally, but only after ``delay`` seconds.

        :param delay: seconds to wait before answering.
        :param access_key: only for requests with this access key.
        """
        return cls(status=200, delay=delay, access_key=access_key)


@dataclass(frozen=True)
class RecordedRequest:
    """
    One request as the emulator saw it, recorded before the answer is written.

    :param method: the HTTP method.
    :param path: the request target, query string included.
    :param headers: the request headers (the last value wins for repeated names).
    :param body: the raw body (not shown in ``repr``: it holds the secret key).
    :param json: the parsed body, or None if it is not JSON (not shown in ``repr``).
    :param status: the status answered; 0 when an injected fault dropped the connection.
    :param access_key: the body's ``access_key`` if it is a non-empty string.
    :param from_date: the body's ``from`` as sent, if it is a string.
    :param to_date: the body's ``to`` as sent, if it is a string.
    :param connection_id: the connection the request came on (unique for the emulator's lifetime).
    :param at: ``time.monotonic()`` when the request was answered (before any injected delay).
    """

    method: str
    path: str
    headers: dict[str, str]
    body: bytes = field(repr=False)
    json: Any | None = field(repr=False)
    status: int
    access_key: str | None
    from_date: str | None
    to_date: str | None
    connection_id: int
    at: float


@functools.lru_cache(maxsize=4)
def _gzip_of_zeros(size: int) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(1024 * 1024)
    parts = [compressor.compress(block) for _ in range(size // len(block))]
    parts += [compressor.compress(bytes(size % len(block))), compressor.flush()]
    return b"".join(parts)
