"""
The transport-free core of the ZenDRIVE client, shared by the sync hook and the async trigger.

It maps every response to a result or a :class:`~airflow_provider_zendrive.exceptions.ZenDriveError` and
decides retries through :class:`StatsCall`. Moving bytes is left to :mod:`airflow_provider_zendrive._client.transport`,
the same for the hook and the trigger. Nothing here imports an HTTP library.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeAlias

from airflow_provider_zendrive._client.models import UsageStats, check_window, parse_stats
from airflow_provider_zendrive._client.retry import (
    RETRYABLE_STATUSES,
    Backoff,
    Wait,
    parse_retry_after,
    retry_delay,
    worth_retrying,
)
from airflow_provider_zendrive._client.settings import DEFAULT_ENDPOINT
from airflow_provider_zendrive.exceptions import (
    ZenDriveAuthError,
    ZenDriveError,
    ZenDriveRateLimitError,
    ZenDriveRequestError,
    ZenDriveResponseError,
    ZenDriveServiceInactiveError,
    ZenDriveTLSError,
    ZenDriveUnavailableError,
)

if TYPE_CHECKING:
    from airflow_provider_zendrive._client.settings import ZenDriveSettings
    from airflow_provider_zendrive._client.windows import DateWindow

__all__ = [
    "StatsCall",
    "TransportFailure",
    "WarningLogger",
    "describe_request",
    "error_for_response",
    "server_message",
]

#: What kind of failure left a request without an HTTP answer (see :meth:`StatsCall.failed`).
TransportFailure: TypeAlias = Literal["timeout", "connection error", "tls", "too large"]
#: The longest piece of a server's error text copied into an exception message.
_MAX_SERVER_TEXT = 200
#: How much of an error body is read for that text (the documented errors are a few dozen bytes).
_MAX_SERVER_BODY = 16 * 1024


def describe_request(settings: ZenDriveSettings, window: DateWindow | None) -> str:
    """What was sent, for messages: the URL, the connection and the window (never the keys)."""
    return f"POST {settings.url} (connection {settings.conn_id!r}, window {window or 'API default'})"


def server_message(body: bytes, settings: ZenDriveSettings) -> str:
    """
    The server's error text: the JSON ``message`` when there is one, else the start of the body.

    The text is redacted first and cut last (a secret straddling a cut would no longer be recognised), and only
    the first 16 KiB of the body are read at all.
    """
    text = body[:_MAX_SERVER_BODY].decode("utf-8", errors="replace")
    try:
        payload = json.loads(text)
    except ValueError:
        payload = None
    if isinstance(payload, Mapping):
        for key in ("message", "error", "detail"):
            if isinstance(payload.get(key), str):
                text = payload[key]
                break
    # Redact before cutting: a secret cut in half would no longer match.
    text = " ".join(settings.redact(text).split())
    if len(text) > _MAX_SERVER_TEXT:
        text = text[: _MAX_SERVER_TEXT - 3] + "..."
    return text


def error_for_response(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    settings: ZenDriveSettings,
    window: DateWindow | None = None,
) -> ZenDriveError:
    """
    Map a non-200 response to the matching exception, with a message that says what to do next.

    :param headers: the response headers (case-insensitive lookups are done by the caller's mapping).
    """
    message = server_message(body, settings)
    where = describe_request(settings, window)
    said = f": {message}" if message else ""
    if status == 401:
        return ZenDriveAuthError(
            f"ZenDRIVE rejected the credentials (401{said}) for {where}. Check the access key (login) and "
            "secret key (password) of the connection; retrying will not help.",
            status_code=status,
        )
    if status == 403:
        return ZenDriveServiceInactiveError(
            f"The ZenDRIVE service is not active (403{said}) for {where}: it is suspended or cancelled. "
            "Use ZenDriveServiceActiveSensor to wait for it to become active.",
            status_code=status,
        )
    if status == 429:
        retry_after = parse_retry_after(headers.get("Retry-After"))
        hint = f"; the server asks to wait {retry_after:.0f} s" if retry_after is not None else ""
        return ZenDriveRateLimitError(
            f"ZenDRIVE rate limit hit (429{said}) for {where}{hint}. Space out calls per key, e.g. with a pool.",
            retry_after=retry_after,
        )
    if 300 <= status < 400:
        location = settings.redact(headers.get("Location", "?"))
        return ZenDriveRequestError(
            f"The server answered {status} redirecting to {location} for {where}. Redirects are never "
            "followed because they drop the request body; the endpoint URL must be the exact documented "
            f"URL with its trailing slash ({DEFAULT_ENDPOINT}).",
            status_code=status,
            server_message=message,
        )
    if status >= 500:
        return ZenDriveUnavailableError(
            f"ZenDRIVE is unavailable ({status}{said}) for {where}. It is usually transient; try again later.",
            status_code=status,
            retry_after=parse_retry_after(headers.get("Retry-After"))
            if status in RETRYABLE_STATUSES
            else None,
        )
    hints = {
        400: "The request was refused; fix the input named in the server's message.",
        404: "Check the endpoint URL (host field) of the connection.",
        405: "The endpoint only accepts POST.",
    }
    return ZenDriveRequestError(
        f"ZenDRIVE refused the request ({status}{said}) for {where}. "
        f"{hints.get(status, 'Check the request and the connection.')}",
        status_code=status,
        server_message=message,
    )


class WarningLogger(Protocol):
    """Anything with a stdlib-style ``warning`` method (a logger, an adapter, Airflow's task logger)."""

    def warning(self, msg: Any, /, *args: Any) -> Any:
        """Log ``msg % args`` at WARNING."""


class StatsCall:
    """
    One logical POST with in-process retries, independent of the transport.

    The caller sends the request and reports what happened with :meth:`received` or :meth:`failed`;
    each returns the parsed stats, or a :class:`~airflow_provider_zendrive._client.retry.Wait` (send again after
    that long), or raises the final error.

    :param settings: the validated settings.
    :param window: the window asked for (None: the API default).
    :param backoff: the backoff rules.
    :param log: where to write the one WARNING line per retry.
    :param max_retries: overrides ``settings.max_retries``.
    """

    def __init__(
        self,
        settings: ZenDriveSettings,
        window: DateWindow | None,
        *,
        backoff: Backoff,
        log: WarningLogger,
        max_retries: int | None = None,
    ) -> None:
        self.settings = settings
        self.window = window
        self.backoff = backoff
        self.log = log
        self.max_retries = settings.max_retries if max_retries is None else max_retries
        self.attempt = 0

    @property
    def body(self) -> bytes:
        """The encoded request body."""
        return self.settings.encode_body(self.window)

    def received(self, status: int, headers: Mapping[str, str], body: bytes) -> UsageStats | Wait:
        """
        Handle a response: return the stats on 200, a :class:`~airflow_provider_zendrive._client.retry.Wait` before a retry, or raise.

        :raises ZenDriveError: the mapped error when it is final.
        """
        if status == 200:
            try:
                return check_window(parse_stats(body), self.window)
            except ZenDriveResponseError as bad:
                problem = bad.message
            # Raised outside the except block, so the unredacted original is not even its __context__. The
            # message may quote the body: scrub it as any other server text, and say what was sent.
            raise ZenDriveResponseError(
                f"{self.settings.redact(problem)} Request: {self.where}.", status_code=status
            )
        return self._retry_or_raise(
            error_for_response(status, headers, body, self.settings, self.window), f"HTTP {status}"
        )

    def failed(self, kind: TransportFailure, detail: str) -> Wait:
        """
        Handle a request that got no HTTP answer: return a :class:`~airflow_provider_zendrive._client.retry.Wait` before a retry, or raise.

        :param kind: ``"timeout"`` and ``"connection error"`` are retried; ``"tls"`` (certificate verification
            failed) and ``"too large"`` (a body over the cap) are final.
        :param detail: the transport's own message (redacted here before use).
        :raises ZenDriveTLSError: for ``"tls"``.
        :raises ZenDriveResponseError: for ``"too large"``.
        :raises ZenDriveUnavailableError: when no retry is left.
        """
        detail = self.settings.redact(detail)
        if kind == "too large":
            raise ZenDriveResponseError(
                f"ZenDRIVE's answer was refused: {detail}, for {self.where}. A 366-day answer is about 70 KB; "
                "not retried."
            )
        if kind == "tls":
            raise ZenDriveTLSError(
                f"The TLS certificate of the endpoint failed verification ({detail}) for {self.where}. Not "
                "retried: set the connection's extra 'verify' to the path of the CA bundle that signed the "
                "server's certificate."
            )
        error = ZenDriveUnavailableError(
            f"ZenDRIVE could not be reached ({kind}: {detail}) for {self.where}."
        )
        return self._retry_or_raise(error, kind)

    @property
    def where(self) -> str:
        """What was sent, for messages (see :func:`describe_request`)."""
        return describe_request(self.settings, self.window)

    def _retry_or_raise(self, error: ZenDriveError, what: str) -> Wait:
        """Ask :func:`~airflow_provider_zendrive._client.retry.retry_delay`; log the retry, or raise ``error``."""
        wait = retry_delay(error, self.attempt, self.max_retries, self.backoff)
        if wait is None:
            if self.attempt and worth_retrying(error, self.backoff):  # out of retries, not a final error
                error.message += f" Gave up after {self.attempt + 1} attempts."
                error.args = (error.message,)
            raise error
        self.attempt += 1
        source = "Retry-After" if getattr(error, "retry_after", None) is not None else "backoff"
        self.log.warning(
            "ZenDRIVE answered %s; retry %d/%d in %.1f s (%s).",
            what,
            self.attempt,
            self.max_retries,
            wait.seconds,
            source,
        )
        return wait
