"""
Moving bytes: one bounded HTTPS POST, blocking for the hook, on asyncio for the triggerer's shared poll.

The two differ only in how bytes move: the hook sends through a :class:`SyncSession` (an ``httpx.Client``), the
shared poll with :func:`send` on an ``httpx.AsyncClient`` (``httpx`` comes with every Airflow 3 task SDK), both
built from :func:`client_options`, and both return the same :class:`~airflow_provider_zendrive._client.api.Reply`
or :class:`~airflow_provider_zendrive._client.api.Failure` for :mod:`~airflow_provider_zendrive._client.api` to
decide.

Every attempt is bounded:

* **time**: the whole attempt (connect, TLS, send, headers, every byte of the body) ends within the
  connection's ``timeout``; a server that drips one byte at a time is cut off at the deadline, not kept alive
  by each byte. The async path cancels at the deadline (``asyncio.timeout``); the blocking path shuts the
  connection's socket down from a timer at the deadline, which ends the read in progress;
* **size**: a body larger than :data:`MAX_BODY_BYTES` is refused (a 366-day answer is about 70 KB), and so is
  one that would inflate beyond it: the provider asks for no compression, and decodes gzip or deflate from a
  non-conforming server with a bounded decompressor (:func:`decode_body`);
* **redirects** are never followed (they drop the request body).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import ssl
import threading
import zlib
from types import TracebackType
from typing import TYPE_CHECKING, Any

from airflow_provider_zendrive._client.api import Failure, Reply, TransportFailure
from airflow_provider_zendrive._client.settings import default_ca_bundle

if TYPE_CHECKING:
    from collections.abc import Mapping

    import httpx

    from airflow_provider_zendrive._client.settings import ZenDriveSettings

__all__ = [
    "MAX_BODY_BYTES",
    "SyncSession",
    "client_options",
    "decode_body",
    "open_client",
    "open_sync_client",
    "quiet_httpcore",
    "send",
    "ssl_context",
]

#: The largest response body accepted, after decoding. A 366-day answer is about 70 KB.
MAX_BODY_BYTES = 4 * 1024 * 1024
_log = logging.getLogger(__name__)


def ssl_context(verify: bool | str) -> ssl.SSLContext:
    """
    The TLS context for the connection's ``verify``.

    True trusts what ``requests`` would (:func:`~airflow_provider_zendrive._client.settings.default_ca_bundle`: the
    ``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE`` variables, else certifi), False disables verification, a path is a
    CA bundle file or directory. Reads files: call it off the triggerer's event loop.
    """
    if verify is False:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    path = default_ca_bundle() if verify is True else verify
    if os.path.isdir(path):
        return ssl.create_default_context(capath=path)
    return ssl.create_default_context(cafile=path)


def client_options(settings: ZenDriveSettings, context: ssl.SSLContext) -> dict[str, Any]:
    """
    The ``httpx`` client options of every ZenDRIVE client, sync or async: the provider's headers, no redirects,
    no compression, proxies from the environment.

    httpcore's DEBUG trace logs raw response headers, which a hostile server can fill with an echo of the
    request: the ``httpcore`` logger is kept at INFO or above in a process that builds these options.
    """
    quiet_httpcore()
    if context.verify_mode == ssl.CERT_NONE:
        _log.warning(
            "TLS verification is off for connection %r (its extra 'verify' is false): the secret key goes to "
            "whoever answers at %s.",
            settings.conn_id,
            settings.url,
        )
    return {
        "headers": {**settings.headers, "Accept-Encoding": "identity"},
        "timeout": settings.timeout,
        "verify": context,
        "follow_redirects": False,
        "trust_env": True,  # proxies from the environment
    }


def open_client(settings: ZenDriveSettings, context: ssl.SSLContext) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` with :func:`client_options`, for :func:`send`."""
    import httpx

    return httpx.AsyncClient(**client_options(settings, context))


def open_sync_client(settings: ZenDriveSettings, context: ssl.SSLContext) -> httpx.Client:
    """An ``httpx.Client`` with :func:`client_options`, for a :class:`SyncSession` or ad-hoc calls."""
    import httpx

    return httpx.Client(**client_options(settings, context))


async def send(client: httpx.AsyncClient, settings: ZenDriveSettings, body: bytes) -> Reply | Failure:
    """POST ``body`` once; the whole attempt ends within ``settings.timeout`` seconds."""
    import httpx

    try:
        async with asyncio.timeout(settings.timeout):
            async with client.stream("POST", settings.url, content=body) as response:
                raw = bytearray()
                async for chunk in response.aiter_raw():
                    raw += chunk
                    if len(raw) > MAX_BODY_BYTES:
                        return _too_large(f"more than {MAX_BODY_BYTES:,} bytes on the wire")
                return _reply(response.status_code, response.headers, bytes(raw))
    except (TimeoutError, httpx.TimeoutException):
        return _timed_out(settings)
    except httpx.TransportError as exc:
        return _failed(exc)


class SyncSession:
    """
    The blocking side of the transport: one ``httpx.Client`` (one TLS connection for every request of a pull)
    and the socket it uses, so that each attempt can be cut off at its deadline. Use it as a context manager;
    it closes the client.

    A blocking read cannot be cancelled as a coroutine is: at the deadline a timer thread shuts the socket down
    (``shutdown``, which ends a read in progress; tested on Linux), and the attempt reports a timeout.

    :param client: from :func:`open_sync_client`.
    :param settings: the connection's settings (URL, timeout).
    """

    def __init__(self, client: httpx.Client, settings: ZenDriveSettings) -> None:
        self.client = client
        self.settings = settings
        self._lock = threading.Lock()
        self._socket: socket.socket | None = None  # the socket of the latest connection the client opened
        self._expired = False  # the current attempt passed its deadline

    def __enter__(self) -> SyncSession:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.client.close()

    def send(self, body: bytes) -> Reply | Failure:
        """POST ``body`` once; the whole attempt ends within ``settings.timeout`` seconds."""
        import httpx

        with self._lock:
            self._expired = False
        timer = threading.Timer(self.settings.timeout, self._expire)
        timer.daemon = True
        timer.start()
        try:
            with self.client.stream(
                "POST", self.settings.url, content=body, extensions={"trace": self._trace}
            ) as response:
                raw = bytearray()
                for chunk in response.iter_raw():
                    raw += chunk
                    if len(raw) > MAX_BODY_BYTES:
                        return _too_large(f"more than {MAX_BODY_BYTES:,} bytes on the wire")
                if self._expired:  # a read the shutdown ended early would look like a short body
                    return _timed_out(self.settings)
                return _reply(response.status_code, response.headers, bytes(raw))
        except httpx.TimeoutException:
            return _timed_out(self.settings)
        except httpx.TransportError as exc:
            return _timed_out(self.settings) if self._expired else _failed(exc)
        finally:
            timer.cancel()

    def _trace(self, event: str, info: Mapping[str, Any]) -> None:
        """
        httpcore's trace hook: remember the socket of each new connection, and again once TLS wraps it (the
        wrapper takes the file descriptor over); shut it at once if the attempt is already late.
        """
        if not event.endswith(("connect_tcp.complete", "start_tls.complete")):
            return
        stream = info.get("return_value")
        sock = stream.get_extra_info("socket") if stream is not None else None
        if not isinstance(sock, socket.socket):
            return
        with self._lock:
            self._socket = sock
            late = self._expired
        if late:
            _shut(sock)

    def _expire(self) -> None:
        with self._lock:
            self._expired = True
            sock = self._socket
        if sock is not None:
            _shut(sock)


def quiet_httpcore() -> None:
    """Raise the ``httpcore`` logger to INFO if it would log DEBUG traces (response headers verbatim)."""
    logger = logging.getLogger("httpcore")
    if logger.getEffectiveLevel() < logging.INFO:
        logger.setLevel(logging.INFO)


def decode_body(raw: bytes, encoding: str) -> bytes | Failure:
    """
    Undo a content encoding the server applied although none was asked for, never beyond the cap.

    :param raw: the body as it came over the wire.
    :param encoding: the ``Content-Encoding`` header (empty or ``identity``: as it is; ``gzip``, ``x-gzip`` and
        ``deflate``, raw or zlib-wrapped, are decoded; anything else is refused).
    :return: the decoded body, or the failure: an unknown encoding, a body that does not decode, or one that
        inflates beyond :data:`MAX_BODY_BYTES`.
    """
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return raw
    if encoding not in ("gzip", "x-gzip", "deflate"):
        return Failure("connection error", f"unsupported Content-Encoding {encoding[:40]!r}")
    wbits = 16 + zlib.MAX_WBITS if "gzip" in encoding else zlib.MAX_WBITS
    decompressor = zlib.decompressobj(wbits)
    try:
        decoded = decompressor.decompress(raw, MAX_BODY_BYTES + 1)
    except zlib.error as exc:
        if encoding != "deflate":
            return Failure("connection error", f"the gzip body does not decode: {exc}")
        try:  # "deflate" is often sent raw, without the zlib header
            decompressor = zlib.decompressobj(-zlib.MAX_WBITS)
            decoded = decompressor.decompress(raw, MAX_BODY_BYTES + 1)
        except zlib.error as raw_exc:
            return Failure("connection error", f"the deflate body does not decode: {raw_exc}")
    if len(decoded) > MAX_BODY_BYTES or decompressor.unconsumed_tail:
        return _too_large(f"{len(raw):,} bytes that inflate beyond it")
    return decoded


def _reply(status: int, headers: httpx.Headers, raw: bytes) -> Reply | Failure:
    decoded = decode_body(raw, headers.get("Content-Encoding", ""))
    return decoded if isinstance(decoded, Failure) else Reply(status, headers, decoded)


def _timed_out(settings: ZenDriveSettings) -> Failure:
    return Failure("timeout", f"no complete answer within {settings.timeout:g} s")


def _failed(exc: httpx.TransportError) -> Failure:
    kind: TransportFailure = "tls" if _is_tls_error(exc) else "connection error"
    return Failure(kind, f"{type(exc).__name__}: {exc}")


def _shut(sock: socket.socket) -> None:
    """End every read and write on ``sock`` now (from any thread); the connection is then unusable."""
    with contextlib.suppress(OSError):  # already closed
        socket.socket.shutdown(sock, socket.SHUT_RDWR)  # the plain socket's, below any TLS wrapper


def _too_large(what: str) -> Failure:
    return Failure("too large", f"the answer is larger than {MAX_BODY_BYTES:,} bytes ({what})")


def _is_tls_error(exc: BaseException) -> bool:
    """Whether a transport error was caused by TLS (a certificate that fails verification, a bad handshake)."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ssl.SSLError):
            return True
        cause = cause.__cause__ or cause.__context__
    return False
