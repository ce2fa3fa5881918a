"""
The transport-free core of the ZenDRIVE client, shared by the sync hook and the async trigger.

:func:`single_attempt` maps every answer to a result or a
:class:`~airflow_provider_zendrive.exceptions.ZenDriveError`; :class:`StatsCall` decides retries on top of it
(:mod:`~airflow_provider_zendrive._client.retry`), and :func:`send_with_retries` is the hook's blocking loop
around it. The pollers (the trigger, the shared poll) make one attempt per poll and use :func:`single_attempt`
alone. Moving bytes is left to :mod:`airflow_provider_zendrive._client.transport` (a blocking client for the
hook, an asyncio one for the poll). Nothing here imports an HTTP library.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
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
    from airflow_provider_zendrive._client.pacing import Turn
    from airflow_provider_zendrive._client.settings import ZenDriveSettings
    from airflow_provider_zendrive._client.windows import DateWindow

__all__ = [
    "Failure",
    "Reply",
    "StatsCall",
    "TransportFailure",
    "WarningLogger",
    "describe_request",
    "error_for_response",
    "send_with_retries",
    "server_message",
    "single_attempt",
]

#: What kind of failure left a request without an HTTP answer (see :class:`Failure`).
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
    if status in RETRYABLE_STATUSES:  # 500, 502, 503, 504: the only server errors worth another try
        return ZenDriveUnavailableError(
            f"ZenDRIVE is unavailable ({status}{said}) for {where}. It is usually transient; try again later.",
            status_code=status,
            retry_after=parse_retry_after(headers.get("Retry-After")),
        )
    if status >= 500:  # 501, 505, 507, 511...: the server cannot serve this request, however often it comes
        return ZenDriveRequestError(
            f"ZenDRIVE cannot serve the request ({status}{said}) for {where}. Not retried: the same request "
            "meets the same answer; check the endpoint URL and proxies of the connection.",
            status_code=status,
            server_message=message,
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


@dataclass(frozen=True)
class Reply:
    """
    An HTTP answer, read whole.

    :param status: the HTTP status.
    :param headers: the response headers (case-insensitive).
    :param body: the decoded body (at most the transport's cap).
    """

    status: int
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True)
class Failure:
    """
    No usable answer.

    :param kind: what went wrong: ``"timeout"`` and ``"connection error"`` may pass, ``"tls"`` (certificate
        verification failed) and ``"too large"`` (a body over the cap) are final.
    :param detail: the transport's own words (redacted before use).
    """

    kind: TransportFailure
    detail: str


def single_attempt(
    settings: ZenDriveSettings, window: DateWindow | None, answer: Reply | Failure
) -> UsageStats | ZenDriveError:
    """
    What one answer means, retries aside: the stats, or the error it stands for (returned, not raised).

    The one decision behind every caller: :class:`StatsCall` adds the in-process retries on top of it, and the
    pollers (the trigger and the shared poll, which make one attempt per poll and wait on their own schedule)
    use it as it is, with :func:`~airflow_provider_zendrive._client.retry.poll_again_after`.
    """
    where = describe_request(settings, window)
    if isinstance(answer, Failure):
        detail = settings.redact(answer.detail)
        if answer.kind == "too large":
            return ZenDriveResponseError(
                f"ZenDRIVE's answer was refused: {detail}, for {where}. A 366-day answer is about 70 KB; "
                "not retried."
            )
        if answer.kind == "tls":
            return ZenDriveTLSError(
                f"The TLS certificate of the endpoint failed verification ({detail}) for {where}. Not "
                "retried: set the connection's extra 'verify' to the path of the CA bundle that signed the "
                "server's certificate."
            )
        return ZenDriveUnavailableError(
            f"ZenDRIVE could not be reached ({answer.kind}: {detail}) for {where}."
        )
    if answer.status != 200:
        return error_for_response(answer.status, answer.headers, answer.body, settings, window)
    try:
        return check_window(parse_stats(answer.body), window)
    except ZenDriveResponseError as bad:
        problem = bad.message
    # Built outside the except block, so the unredacted original is not even its __context__. The message
    # may quote the body: scrub it as any other server text, and say what was sent.
    return ZenDriveResponseError(f"{settings.redact(problem)} Request: {where}.", status_code=200)


class StatsCall:
    """
    One logical POST with in-process retries, independent of the transport.

    The caller sends :attr:`body` and hands each answer to :meth:`decide`, which returns the stats, or a
    :class:`~airflow_provider_zendrive._client.retry.Wait` (send again after that long), or raises the final
    error. :func:`send_with_retries` is the blocking loop around it.

    :param settings: the validated settings (``settings.max_retries`` retries at most).
    :param window: the window asked for (None: the API default).
    :param backoff: the backoff rules.
    :param log: where to write the one WARNING line per retry.
    """

    def __init__(
        self,
        settings: ZenDriveSettings,
        window: DateWindow | None,
        *,
        backoff: Backoff,
        log: WarningLogger,
    ) -> None:
        self.settings = settings
        self.window = window
        self.backoff = backoff
        self.log = log
        self.attempt = 0

    @property
    def body(self) -> bytes:
        """The encoded request body."""
        return self.settings.encode_body(self.window)

    def decide(self, answer: Reply | Failure) -> UsageStats | Wait:
        """
        Handle one attempt's answer: the stats, a :class:`~airflow_provider_zendrive._client.retry.Wait` before
        a retry, or raise.

        :raises ZenDriveError: the answer's error (see :func:`single_attempt`) when it is final or no retry is
            left.
        """
        outcome = single_attempt(self.settings, self.window, answer)
        if not isinstance(outcome, ZenDriveError):
            return outcome
        what = answer.kind if isinstance(answer, Failure) else f"HTTP {answer.status}"
        wait = retry_delay(outcome, self.attempt, self.settings.max_retries, self.backoff)
        if wait is None:
            if self.attempt and worth_retrying(outcome, self.backoff):  # out of retries, not a final error
                outcome.message += f" Gave up after {self.attempt + 1} attempts."
                outcome.args = (outcome.message,)
            raise outcome
        self.attempt += 1
        if isinstance(wait.error, ZenDriveRateLimitError) and wait.error.retry_after is None:
            # The key's pace decides when (see send_with_retries), at most the backoff's cap from now.
            self.log.warning(
                "ZenDRIVE answered %s; retry %d/%d at the key's pace (no Retry-After).",
                what,
                self.attempt,
                self.settings.max_retries,
            )
            return wait
        source = "Retry-After" if wait.error.retry_after is not None else "backoff"
        self.log.warning(
            "ZenDRIVE answered %s; retry %d/%d in %.1f s (%s).",
            what,
            self.attempt,
            self.settings.max_retries,
            wait.seconds,
            source,
        )
        return wait


def send_with_retries(
    call: StatsCall,
    send: Callable[[bytes], Reply | Failure],
    turn: Turn,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> UsageStats:
    """
    The blocking retry loop: the key's pace says when to send, ``send`` sends, ``call`` decides, this waits.

    :param call: the request and its retry state.
    :param send: one attempt: POST the body, return the answer (the sync transport's
        :meth:`~airflow_provider_zendrive._client.transport.SyncSession.send`).
    :param turn: the request's place in its key's pace (a 429's ``Retry-After`` holds every caller of the key;
        without it, the key's callers are released at the pace its answers teach).
    :param sleep: how to wait (``time.sleep``; a recorder in tests).
    :raises ZenDriveError: the final error.
    """
    clock = time.monotonic()  # the time as this loop knows it: a recorded (not slept) wait still counts
    while True:
        while (delay := turn.delay(clock)) > 0:
            sleep(delay)
            clock = max(time.monotonic(), clock + delay)
        outcome = call.decide(send(call.body))
        clock = max(time.monotonic(), clock)
        if not isinstance(outcome, Wait):
            turn.succeeded(clock)
            return outcome
        # A 429 leaves the wait to the key's pace (at most the backoff's cap without Retry-After); else back off.
        if not turn.throttled(clock, outcome.error, longest=call.backoff.cap):
            sleep(outcome.seconds)
            clock = max(time.monotonic(), clock + outcome.seconds)
