"""
The wire side of the emulator: threaded HTTP/1.1 servers and their request handler.

The server only moves bytes: it is given one callable that turns an :class:`Incoming` request into an
``Answer``, and it counts its own connections and time. TLS is wrapped per connection with the handshake done
in the connection's own thread, so a slow or failing client never blocks the accept loop.
"""

from __future__ import annotations

import contextlib
import itertools
import socket
import socketserver
import ssl
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_zendrive.testing._endpoint import Answer

__all__ = ["EmulatorServer", "Incoming"]

#: Connection ids, unique across every server of the process (an emulator's two listeners share the count).
_connection_ids = itertools.count(1)


class Incoming:
    """A request as read from the wire."""

    __slots__ = ("body", "connection_id", "headers", "method", "path")

    def __init__(
        self, method: str, path: str, headers: dict[str, str], body: bytes, connection_id: int
    ) -> None:
        self.method = method
        self.path = path
        self.headers = headers
        self.body = body
        self.connection_id = connection_id


class EmulatorServer(ThreadingHTTPServer):
    """
    A threaded HTTP/1.1 server that answers every request with ``answer``.

    :param address: host and port to bind (port 0: any free port).
    :param answer: what to send back for a request; called from the connection's thread.
    :param ssl_context: the server's TLS context; None makes it a plain-HTTP listener.
    """

    daemon_threads = True
    block_on_close = False
    #: socketserver's default backlog of 5 drops connections when a dozen workers connect at once, and each one
    #: dropped retries a second later: a stall a real server would not add to rate-limit measurements.
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        *,
        answer: Callable[[Incoming], Answer],
        ssl_context: ssl.SSLContext | None,
    ) -> None:
        self.answer = answer
        self.ssl_context = ssl_context
        #: Set by :meth:`close`: delayed and dripping answers stop waiting.
        self.stopping = threading.Event()
        #: Connections that completed the handshake since the last :meth:`reset_counters`.
        self.connections = 0
        #: Seconds spent deciding and writing answers (not waiting out delays) since :meth:`reset_counters`.
        self.server_time = 0.0
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)

    def reset_counters(self) -> None:
        """Start counting connections and server time from zero."""
        with self._lock:
            self.connections = 0
            self.server_time = 0.0

    def close(self) -> None:
        """Stop accepting, stop waiting answers and cut the open keep-alive connections."""
        self.stopping.set()
        self.shutdown()
        self.server_close()
        with self._lock:
            open_sockets = list(self._open)
        for sock in open_sockets:
            with contextlib.suppress(
                OSError
            ):  # the raw socket's shutdown wakes up a handler blocked in a read
                socket.socket.shutdown(sock, socket.SHUT_RDWR)

    def opened(self, sock: socket.socket) -> None:
        """A client connected on ``sock`` (before the TLS handshake)."""
        with self._lock:
            self._open.add(sock)

    def ready(self) -> int:
        """A connection completed its handshake: count it, and return its id."""
        with self._lock:
            self.connections += 1
        return next(_connection_ids)

    def closed(self, sock: socket.socket) -> None:
        """The connection on ``sock`` ended."""
        with self._lock:
            self._open.discard(sock)

    def spent(self, seconds: float) -> None:
        """Add ``seconds`` of work (deciding and writing an answer) to :attr:`server_time`."""
        with self._lock:
            self.server_time += seconds

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls socket.getfqdn(), a DNS lookup that can take seconds; skip it.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = self.socket.accept()
        if self.ssl_context is not None:
            sock = self.ssl_context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, address

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that go away, fail the TLS handshake or are cut off by stop() are business as usual.
        if isinstance(sys.exc_info()[1], OSError | ValueError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ZenDRIVE-emulator/1.0"
    sys_version = ""
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall
    server: EmulatorServer
    connection_id = 0

    def setup(self) -> None:
        self.server.opened(self.request)
        if isinstance(self.request, ssl.SSLSocket):
            try:
                self.request.do_handshake()
            except BaseException:
                self.server.closed(self.request)  # finish() is not called when setup() fails
                raise
        self.connection_id = self.server.ready()
        super().setup()

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.closed(self.request)

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: no line per request (and so never a secret) on stderr."""

    def _dispatch(self) -> None:
        started = time.perf_counter()
        incoming = Incoming(
            method=self.command,
            path=self.path,
            headers=dict(self.headers.items()),
            body=self._read_body(),
            connection_id=self.connection_id,
        )
        answer = self.server.answer(incoming)
        handling = time.perf_counter() - started
        if answer.delay > 0 and self.server.stopping.wait(answer.delay):
            self.close_connection = True
            return
        resumed = time.perf_counter()
        try:
            if answer.drop:
                self.close_connection = True
                return
            if answer.drip > 0:
                self._drip(answer)
                return
            self.send_response(answer.status)
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(answer.body)
            self.wfile.flush()
        finally:
            self.server.spent(handling + time.perf_counter() - resumed)

    def _drip(self, answer: Answer) -> None:
        """Send the whole response one byte every ``answer.drip`` seconds, until done, stopped or cut off."""
        head = [f"HTTP/1.1 {answer.status} {self.responses.get(answer.status, ('',))[0]}"]
        head += [f"{name}: {value}" for name, value in answer.headers.items()]
        head += [f"Content-Length: {len(answer.body)}", "", ""]
        data = "\r\n".join(head).encode("latin-1") + answer.body
        self.close_connection = True
        stopping = self.server.stopping
        try:
            for index in range(len(data)):
                self.wfile.write(data[index : index + 1])
                self.wfile.flush()
                if stopping.wait(answer.drip):
                    return
        except OSError:  # the client gave up: what a drip is for
            return

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _dispatch

    def _read_body(self) -> bytes:
        # Every client of the emulator sends a Content-Length (httpx does for a bytes body). A chunked body is
        # not read: the request fails validation as an empty one and the connection is closed after it.
        if "Transfer-Encoding" in self.headers:
            self.close_connection = True
            return b""
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""
