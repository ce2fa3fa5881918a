"""
The transport-free core of the ZenDRIVE client, shared by the sync hook and the async trigger.

It turns a Connection into validated :class:`ZenDriveSettings` (endpoint URL, keys, timeout, TLS
verification, retries), builds request bodies, maps every response to a result or a
:class:`~airflow_provider_zendrive.exceptions.ZenDriveError`, and decides retries through :class:`StatsCall`.
Moving bytes is left to the caller (``requests`` in the hook, ``aiohttp`` in the trigger), so the two
cannot drift apart. Nothing here imports an HTTP library.
"""

from __future__ import annotations

import json
import os
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from airflow_provider_zendrive import __version__
from airflow_provider_zendrive.exceptions import (
    ZenDriveAuthError,
    ZenDriveError,
    ZenDriveInputError,
    ZenDriveRateLimitError,
    ZenDriveRequestError,
    ZenDriveServiceInactiveError,
    ZenDriveUnavailableError,
)
from airflow_provider_zendrive.models import UsageStats, parse_stats
from airflow_provider_zendrive.retry import RETRYABLE_STATUSES, Backoff, parse_retry_after

if TYPE_CHECKING:
    from airflow.sdk import Connection

    from airflow_provider_zendrive.windows import DateWindow

__all__ = [
    "DEFAULT_ENDPOINT",
    "ENDPOINT_PATH",
    "USER_AGENT",
    "StatsCall",
    "ZenDriveSettings",
    "build_endpoint_url",
    "error_for_response",
]

ENDPOINT_PATH = "/zendrive-api/cdn-stats/"
#: The documented endpoint, used when a connection leaves the host empty.
DEFAULT_ENDPOINT = f"https://dashboard.clearstreamer.com{ENDPOINT_PATH}"
USER_AGENT = f"airflow-provider-zendrive/{__version__}"
DEFAULT_TIMEOUT = 30.0
DEFAULT_MAX_RETRIES = 6
KNOWN_EXTRAS = frozenset({"timeout", "verify", "max_retries"})
_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})
#: The longest piece of a server's error text copied into an exception message.
_MAX_SERVER_TEXT = 200
REDACTED = "***"


def build_endpoint_url(host: str | None, port: int | None = None, path: str | None = None) -> str:
    """
    Build the endpoint URL from a connection's host, port and (optional) path.

    ``host`` may be empty (the documented endpoint), a bare hostname (``https`` and the documented path are
    implied), or a full ``https://host[:port]/path/`` URL. A missing trailing slash is added, because the
    server answers the slash-less URL with a redirect that drops the request body.

    :raises ZenDriveInputError: for ``http://`` or any other scheme, credentials or a query in the URL.
    """
    text = (host or "").strip()
    if not text:
        return DEFAULT_ENDPOINT
    if "://" not in text:
        text = "https://" + text
    parts = urllib.parse.urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme == "http":
        raise ZenDriveInputError(
            f"Refusing plain HTTP endpoint {_without_userinfo(parts)!r}: the ZenDRIVE API requires HTTPS and "
            "every request carries the secret key. Use an https:// URL (or a bare hostname)."
        )
    if scheme != "https":
        raise ZenDriveInputError(f"Endpoint scheme {parts.scheme!r} is not supported; use an https:// URL.")
    if parts.username is not None or parts.password is not None:
        raise ZenDriveInputError(
            "The endpoint URL must not contain credentials; put the access key in login and the secret key "
            "in password."
        )
    if parts.query or parts.fragment:
        raise ZenDriveInputError("The endpoint URL must not contain a query string or fragment.")
    if not parts.hostname:
        raise ZenDriveInputError(f"The endpoint URL {text!r} has no hostname.")
    try:
        url_port = parts.port
    except ValueError:
        raise ZenDriveInputError(f"The endpoint URL {text!r} has an invalid port.") from None
    netloc = parts.netloc
    if url_port is None and port:
        netloc = f"{netloc}:{int(port)}"
    url_path = parts.path
    if url_path in ("", "/"):
        url_path = "/" + path.strip("/") + "/" if path and path.strip("/") else ENDPOINT_PATH
    if not url_path.endswith("/"):
        url_path += "/"
    return urllib.parse.urlunsplit(("https", netloc, url_path, "", ""))


def _without_userinfo(parts: urllib.parse.SplitResult) -> str:
    netloc = parts.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))


@dataclass(frozen=True)
class ZenDriveSettings:
    """
    Everything needed to call the API, validated. The secret key is kept out of ``repr()``.

    :param url: the endpoint URL (HTTPS, trailing slash).
    :param access_key: the S3 access key (connection login).
    :param secret_key: the S3 secret key (connection password).
    :param timeout: connect and read timeout of each request, in seconds.
    :param verify: True, False, or the path of a CA bundle.
    :param max_retries: retries on 429, 5xx, timeouts and connection errors.
    :param conn_id: the Airflow connection id, for messages.
    """

    url: str
    access_key: str
    secret_key: str = field(repr=False)
    timeout: float = DEFAULT_TIMEOUT
    verify: bool | str = True
    max_retries: int = DEFAULT_MAX_RETRIES
    conn_id: str = "zendrive_default"

    @classmethod
    def from_connection(cls, conn: Connection) -> ZenDriveSettings:
        """
        Read and validate an Airflow Connection of type ``zendrive``.

        :raises ZenDriveInputError: on a missing key, a non-HTTPS host or an invalid extra.
        """
        conn_id = conn.conn_id or "zendrive"
        if not conn.login:
            raise ZenDriveInputError(f"Connection {conn_id!r} has no access key: set its login field.")
        if not conn.password:
            raise ZenDriveInputError(f"Connection {conn_id!r} has no secret key: set its password field.")
        extra = conn.extra_dejson
        return cls(
            url=build_endpoint_url(conn.host, conn.port, conn.schema),
            access_key=conn.login,
            secret_key=conn.password,
            timeout=_timeout(extra.get("timeout"), conn_id),
            verify=_verify(extra.get("verify"), conn_id),
            max_retries=_max_retries(extra.get("max_retries"), conn_id),
            conn_id=conn_id,
        )

    def request_body(self, window: DateWindow | None) -> dict[str, str]:
        """The JSON body of one request: the keys, plus ``from`` / ``to`` when a window is given."""
        body = {"access_key": self.access_key, "secret_key": self.secret_key}
        if window is not None:
            body.update(window.as_params())
        return body

    def encode_body(self, window: DateWindow | None) -> bytes:
        """:meth:`request_body` serialised as UTF-8 JSON."""
        return json.dumps(self.request_body(window)).encode()

    def redact(self, text: str) -> str:
        """Replace every occurrence of the secret key (raw or URL-quoted) in ``text``."""
        for form in {
            self.secret_key,
            urllib.parse.quote(self.secret_key, safe=""),
            json.dumps(self.secret_key)[1:-1],
        }:
            if form:
                text = text.replace(form, REDACTED)
        return text

    @property
    def headers(self) -> dict[str, str]:
        """Headers sent with every request."""
        return {"User-Agent": USER_AGENT, "Content-Type": "application/json", "Accept": "application/json"}


def _timeout(value: Any, conn_id: str) -> float:
    if value is None or value == "":
        return DEFAULT_TIMEOUT
    try:
        timeout = float(value)
    except (TypeError, ValueError):
        timeout = -1.0
    if isinstance(value, bool) or not timeout > 0 or timeout == float("inf"):
        raise ZenDriveInputError(
            f"Connection {conn_id!r}: extra 'timeout' must be a positive number of seconds."
        )
    return timeout


def _max_retries(value: Any, conn_id: str) -> int:
    if value is None or value == "":
        return DEFAULT_MAX_RETRIES
    try:
        retries = int(str(value).strip())
    except ValueError:
        retries = -1
    if isinstance(value, bool | float) or retries < 0:
        raise ZenDriveInputError(f"Connection {conn_id!r}: extra 'max_retries' must be an integer >= 0.")
    return retries


def _verify(value: Any, conn_id: str) -> bool | str:
    if value is None or value == "":
        return True
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        path = os.path.expanduser(value.strip())
        if os.path.isfile(path) or os.path.isdir(path):
            return path
        raise ZenDriveInputError(
            f"Connection {conn_id!r}: extra 'verify' is neither true/false nor an existing CA bundle "
            f"path ({value!r})."
        )
    raise ZenDriveInputError(
        f"Connection {conn_id!r}: extra 'verify' must be true, false or a CA bundle path."
    )


def server_message(body: bytes, settings: ZenDriveSettings) -> str:
    """The server's error text: the JSON ``message`` when there is one, else the start of the body."""
    text = body[:4096].decode("utf-8", errors="replace")
    try:
        payload = json.loads(text)
    except ValueError:
        payload = None
    if isinstance(payload, Mapping):
        for key in ("message", "error", "detail"):
            if isinstance(payload.get(key), str):
                text = payload[key]
                break
    text = " ".join(text.split())
    if len(text) > _MAX_SERVER_TEXT:
        text = text[: _MAX_SERVER_TEXT - 3] + "..."
    return settings.redact(text)


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
    where = f"POST {settings.url} (connection {settings.conn_id!r}, window {window or 'API default'})"
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
    each returns the parsed stats, or the seconds to wait before sending again, or raises the final error.

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

    def received(self, status: int, headers: Mapping[str, str], body: bytes) -> UsageStats | float:
        """
        Handle a response: return the stats on 200, the seconds to wait before a retry, or raise.

        :raises ZenDriveError: the mapped error when it is final.
        """
        if status == 200:
            return parse_stats(body)
        error = error_for_response(status, headers, body, self.settings, self.window)
        retry_after = None
        if status in RETRYABLE_STATUSES:
            retry_after = parse_retry_after(headers.get("Retry-After"))
        return self._retry_or_raise(error, f"HTTP {status}", retry_after, status in RETRYABLE_STATUSES)

    def failed(self, kind: str, detail: str, *, retryable: bool = True) -> float:
        """
        Handle a timeout or connection error: return the seconds to wait before a retry, or raise.

        :param kind: a short description such as ``"timeout"`` or ``"connection error"``.
        :param detail: the transport's own message (redacted here before use).
        :param retryable: False for failures that another try cannot fix, such as TLS verification.
        :raises ZenDriveUnavailableError: when no retry is left.
        """
        detail = self.settings.redact(detail)
        where = f"POST {self.settings.url} (connection {self.settings.conn_id!r}, window {self.window or 'API default'})"
        error = ZenDriveUnavailableError(f"ZenDRIVE could not be reached ({kind}: {detail}) for {where}.")
        wait = self._retry_or_raise(error, kind, None, retryable)
        assert isinstance(wait, float)
        return wait

    def _retry_or_raise(
        self, error: ZenDriveError, what: str, retry_after: float | None, retryable: bool
    ) -> float:
        if not retryable:
            raise error
        if retry_after is not None and retry_after > self.backoff.max_retry_after:
            raise error
        if self.attempt >= self.max_retries:
            if self.attempt:
                error.message += f" Gave up after {self.attempt + 1} attempts."
                error.args = (error.message,)
            raise error
        wait = float(self.backoff.delay(self.attempt, retry_after))
        self.attempt += 1
        source = "Retry-After" if retry_after is not None else "backoff"
        self.log.warning(
            "ZenDRIVE answered %s; retry %d/%d in %.1f s (%s).",
            what,
            self.attempt,
            self.max_retries,
            wait,
            source,
        )
        return wait
