"""
Moving bytes: one bounded HTTPS POST, the same for the sync hook and the async trigger.

Both send with an ``httpx.AsyncClient`` (``httpx`` comes with every Airflow 3 task SDK): the trigger from the
triggerer's event loop, the hook from a private loop (:func:`run_sync`). So there is one transport, and
:class:`~airflow_provider_zendrive._client.api.StatsCall` decides what each outcome means for both.

Every attempt is bounded:

* **time**: the whole attempt (connect, TLS, send, headers, every byte of the body) ends within the
  connection's ``timeout``; a server that drips one byte at a time is cut off at the deadline, not kept alive
  by each byte;
* **size**: a body larger than :data:`MAX_BODY_BYTES` is refused (a 366-day answer is about 70 KB), and so is
  one that would inflate beyond it: the provider asks for no compression, and decodes gzip or deflate from a
  non-conforming server with a bounded decompressor;
* **redirects** are never followed (they drop the request body).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import os
import zlib
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from ssl import CERT_NONE
from typing import TYPE_CHECKING, Any, TypeVar

from airflow_provider_zendrive._client.api import TransportFailure
from airflow_provider_zendrive._client.settings import default_ca_bundle

if TYPE_CHECKING:
    import ssl

    import httpx

    from airflow_provider_zendrive._client.api import StatsCall
    from airflow_provider_zendrive._client.models import UsageStats
    from airflow_provider_zendrive._client.retry import Wait
    from airflow_provider_zendrive._client.settings import ZenDriveSettings

__all__ = [
    "MAX_BODY_BYTES",
    "Failure",
    "Reply",
    "client_options",
    "decide",
    "exchange",
    "open_client",
    "quiet_httpcore",
    "run_sync",
    "send",
    "ssl_context",
]

#: The largest response body accepted, after decoding. A 366-day answer is about 70 KB.
MAX_BODY_BYTES = 4 * 1024 * 1024
_T = TypeVar("_T")
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reply:
    """
    An HTTP answer, read whole.

    :param status: the HTTP status.
    :param headers: the response headers (case-insensitive).
    :param body: the decoded body (at most :data:`MAX_BODY_BYTES`).
    """

    status: int
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True)
class Failure:
    """
    No usable answer.

    :param kind: what went wrong.
    :param detail: the transport's own words (the core redacts them before use).
    """

    kind: TransportFailure
    detail: str


def ssl_context(verify: bool | str) -> ssl.SSLContext:
    """
    The TLS context for the connection's ``verify``.

    True trusts what ``requests`` would (:func:`~airflow_provider_zendrive._client.settings.default_ca_bundle`: the
    ``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE`` variables, else certifi), False disables verification, a path is a
    CA bundle file or directory. Reads files: call it off the triggerer's event loop.
    """
    import ssl

    if verify is False:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    path = default_ca_bundle() if verify is True else verify
    if os.path.isdir(path):
        return ssl.create_default_context(capath=path)
    return ssl.create_default_context(cafile=path)


def open_client(settings: ZenDriveSettings, context: ssl.SSLContext) -> httpx.AsyncClient:
    """
    A client with the provider's headers, no redirects, no compression, proxies from the environment.

    httpcore's DEBUG trace logs raw response headers, which a hostile server can fill with an echo of the
    request: the ``httpcore`` logger is kept at INFO or above in a process that uses this transport.
    """
    import httpx

    quiet_httpcore()
    if context.verify_mode == CERT_NONE:
        _log.warning(
            "TLS verification is off for connection %r (its extra 'verify' is false): the secret key goes to "
            "whoever answers at %s.",
            settings.conn_id,
            settings.url,
        )

    return httpx.AsyncClient(**client_options(settings, context))


def client_options(settings: ZenDriveSettings, context: ssl.SSLContext) -> dict[str, Any]:
    """The ``httpx`` client options of every ZenDRIVE client, sync or async."""
    return {
        "headers": {**settings.headers, "Accept-Encoding": "identity"},
        "timeout": settings.timeout,
        "verify": context,
        "follow_redirects": False,
        "trust_env": True,  # proxies from the environment
    }


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
                decoded = _decode(bytes(raw), response.headers.get("Content-Encoding", ""))
                if isinstance(decoded, Failure):
                    return decoded
                return Reply(response.status_code, response.headers, decoded)
    except (TimeoutError, httpx.TimeoutException):
        return Failure("timeout", f"no complete answer within {settings.timeout:g} s")
    except httpx.TransportError as exc:
        kind: TransportFailure = "tls" if _is_tls_error(exc) else "connection error"
        return Failure(kind, f"{type(exc).__name__}: {exc}")


async def exchange(client: httpx.AsyncClient, call: StatsCall) -> UsageStats | Wait:
    """
    Send the call's request once and let the core decide: the stats, a
    :class:`~airflow_provider_zendrive._client.retry.Wait` before another attempt, or the final error (raised).
    """
    return decide(call, await send(client, call.settings, call.body))


def decide(call: StatsCall, answer: Reply | Failure) -> UsageStats | Wait:
    """
    What ``answer`` means for ``call`` (see :func:`exchange`): one answer can be decided for several calls,
    as the triggerer's shared poll does for every trigger waiting on it.
    """
    # Decided outside any except block: no final error chains a transport exception (it holds the body).
    if isinstance(answer, Failure):
        return call.failed(answer.kind, answer.detail)
    return call.received(answer.status, answer.headers, answer.body)


def quiet_httpcore() -> None:
    """Raise the ``httpcore`` logger to INFO if it would log DEBUG traces (response headers verbatim)."""
    logger = logging.getLogger("httpcore")
    if logger.getEffectiveLevel() < logging.INFO:
        logger.setLevel(logging.INFO)


def run_sync(work: Callable[[], Awaitable[_T]]) -> _T:
    """
    Run a coroutine to completion from sync code: on a private event loop, or in a helper thread when this
    thread already runs one (sync code called from async code).
    """

    async def main() -> _T:
        return await work()

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(main())
    context = contextvars.copy_context()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="zendrive-sync") as pool:
        return pool.submit(context.run, asyncio.run, main()).result()


def _too_large(what: str) -> Failure:
    return Failure("too large", f"the answer is larger than {MAX_BODY_BYTES:,} bytes ({what})")


def _decode(raw: bytes, encoding: str) -> bytes | Failure:
    """Undo a content encoding the server applied although none was asked for, never beyond the cap."""
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


def _is_tls_error(exc: BaseException) -> bool:
    """Whether a transport error was caused by TLS (a certificate that fails verification, a bad handshake)."""
    import ssl

    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ssl.SSLError):
            return True
        cause = cause.__cause__ or cause.__context__
    return False
