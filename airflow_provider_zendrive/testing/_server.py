"""
The wire side of the emulator: threaded HTTP/1.1 servers and their request handler.

The handler only moves bytes; what to answer is decided by :meth:`ZenDriveEmulator._answer`. TLS is wrapped
per connection with the handshake done in the connection's own thread, so a slow or failing client never
blocks the accept loop.
"""

from __future__ import annotations

import socket
import socketserver
import ssl
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_zendrive.testing._endpoint import Answer
    from airflow_provider_zendrive.testing.emulator import ZenDriveEmulator

__all__ = ["EmulatorServer", "Incoming"]

_MAX_LINE = 65537


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
    """A threaded server bound to one emulator; ``ssl_context`` None makes it the plain-HTTP listener."""

    daemon_threads = True
    block_on_close = False

    def __init__(
        self,
        address: tuple[str, int],
        *,
        emulator: ZenDriveEmulator,
        ssl_context: ssl.SSLContext | None,
    ) -> None:
        self.emulator = emulator
        self.ssl_context = ssl_context
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)

    @property
    def secure(self) -> bool:
        """Whether this is the HTTPS listener."""
        return self.ssl_context is not None

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
        emulator = self.server.emulator
        emulator._connection_opened(self.request)
        if isinstance(self.request, ssl.SSLSocket):
            try:
                self.request.do_handshake()
            except BaseException:
                emulator._connection_closed(self.request)  # finish() is not called when setup() fails
                raise
        self.connection_id = emulator._connection_ready(self.server.secure)
        super().setup()

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.emulator._connection_closed(self.request)

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: no line per request (and so never a secret) on stderr."""

    def _dispatch(self) -> None:
        started = time.perf_counter()
        emulator = self.server.emulator
        incoming = Incoming(
            method=self.command,
            path=self.path,
            headers=dict(self.headers.items()),
            body=self._read_body(),
            connection_id=self.connection_id,
        )
        answer = emulator._answer(incoming, secure=self.server.secure)
        handling = time.perf_counter() - started
        if answer.delay > 0 and emulator._stopping.wait(answer.delay):
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
            emulator._add_server_time(handling + time.perf_counter() - resumed)

    def _drip(self, answer: Answer) -> None:
        """Send the whole response one byte every ``answer.drip`` seconds, until done, stopped or cut off."""
        head = [f"HTTP/1.1 {answer.status} {self.responses.get(answer.status, ('',))[0]}"]
        head += [f"{name}: {value}" for name, value in answer.headers.items()]
        head += [f"Content-Length: {len(answer.body)}", "", ""]
        data = "\r\n".join(head).encode("latin-1") + answer.body
        self.close_connection = True
        stopping = self.server.emulator._stopping
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
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline(_MAX_LINE).split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(_MAX_LINE) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline(_MAX_LINE)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""
