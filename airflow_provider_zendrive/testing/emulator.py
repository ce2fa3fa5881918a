"""
An HTTPS emulator of the ZenDRIVE usage-statistics endpoint, for tests and local DAG runs.

It follows the vendor contract (``POST /zendrive-api/cdn-stats/`` with a JSON body, the documented messages)
and serves deterministic usage data, so a test knows the right answer for any window
(:meth:`ZenDriveEmulator.expected_stats`). Faults, suspensions and a per-key rate limit can be switched on.

Use it as a context manager::

    with ZenDriveEmulator() as emulator:
        httpx.post(emulator.url, json={...}, verify=ssl.create_default_context(cafile=emulator.ca_path))

or through the pytest fixtures ``zendrive_emulator`` / ``zendrive_emulator_session``.
"""

from __future__ import annotations

import datetime
import hmac
import json
import os
import shutil
import ssl
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from airflow_provider_zendrive.testing._data import (
    DEMO_ACCESS_KEY,
    DEMO_SECRET_KEY,
    DEMO_SERVICE_ID,
    ENDPOINT_PATH,
    MESSAGES,
    window_stats,
)
from airflow_provider_zendrive.testing._endpoint import (
    Answer,
    RetryAfterStyle,
    TokenBucket,
    error_answer,
    fault_answer,
    parse_json,
    parse_window,
    raw_str,
    retry_after_header,
    text,
)
from airflow_provider_zendrive.testing._types import Account, Fault, RecordedRequest

if TYPE_CHECKING:
    from types import TracebackType

    from airflow_provider_zendrive._client.models import UsageStats
    from airflow_provider_zendrive.testing._server import EmulatorServer, Incoming

__all__ = ["RetryAfterStyle", "ZenDriveEmulator"]


class ZenDriveEmulator:
    """
    The usage-statistics endpoint over real HTTPS on 127.0.0.1, with a throwaway CA.

    :param host: the address to listen on.
    :param port: the HTTPS port; 0 picks a free one.
    :param today: the date the server takes as today (default: the real UTC date at request time).
    :param rate_limit: per-key requests per second (token bucket); None: no limit.
    :param burst: the bucket's capacity, i.e. how many requests may come back to back.
    :param retry_after: the ``Retry-After`` style of a 429: ``"seconds"`` (rounded up), ``"http-date"`` or
        None (no header).
    :param plain_http: also listen on a second port over plain HTTP, answering 400 "HTTPS is required".
    :param late_days: late-arriving data: for this many days after a day ends, its numbers are still being
        counted, and the API answers ``late_fraction`` of its final counters (so the last ``late_days`` days
        before ``today``, and today, are partial). 0 (default): every day is final at once.
    :param late_fraction: how much of a still-counted day the API reports, in (0, 1].
    :param cert_dir: where to write the CA and server certificate (default: a temporary directory removed on
        :meth:`stop`).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        today: datetime.date | None = None,
        rate_limit: float | None = None,
        burst: int = 1,
        retry_after: RetryAfterStyle | None = "seconds",
        plain_http: bool = True,
        cert_dir: str | os.PathLike[str] | None = None,
        late_days: int = 0,
        late_fraction: float = 0.5,
    ) -> None:
        if rate_limit is not None and rate_limit <= 0:
            raise ValueError(f"rate_limit must be positive or None, got {rate_limit!r}")
        if late_days < 0:
            raise ValueError(f"late_days must be >= 0, got {late_days!r}")
        if not 0 < late_fraction <= 1:
            raise ValueError(f"late_fraction must be in (0, 1], got {late_fraction!r}")
        self.host = host
        self.today = today
        self.rate_limit = rate_limit
        self.burst = burst
        self.retry_after: RetryAfterStyle | None = retry_after
        self.plain_http = plain_http
        self.late_days = late_days
        self.late_fraction = late_fraction
        # What reset() restores: the conditions the emulator was built with.
        self._initial_conditions: dict[str, object] = {
            "today": today,
            "rate_limit": rate_limit,
            "burst": burst,
            "retry_after": retry_after,
            "late_days": late_days,
            "late_fraction": late_fraction,
        }
        self._wanted_port = port
        self._cert_dir = None if cert_dir is None else os.fspath(cert_dir)
        self._lock = threading.Lock()
        self._accounts: dict[str, Account] = {}
        self._faults: deque[Fault] = deque()
        self._buckets: dict[str, TokenBucket] = {}
        self._stopped_counts = (0, 0.0)
        self._servers: list[tuple[EmulatorServer, threading.Thread]] = []
        self._ca_path: str | None = None
        self._temp_dir: str | None = None
        self.requests: list[RecordedRequest] = []
        self.http_requests: list[RecordedRequest] = []
        self.reset()

    # -- lifecycle -------------------------------------------------------------------------------------------

    def start(self) -> ZenDriveEmulator:
        """Generate the certificates, bind and serve in daemon threads; a second call does nothing."""
        if self._servers:
            return self
        from airflow_provider_zendrive.testing._server import EmulatorServer
        from airflow_provider_zendrive.testing._tls import make_tls_files

        window_stats(
            DEMO_SERVICE_ID, datetime.date(2026, 1, 1), datetime.date(2026, 1, 1)
        )  # warm the imports
        if self._cert_dir is None:
            self._temp_dir = tempfile.mkdtemp(prefix="zendrive-emulator-")
        tls = make_tls_files(self._cert_dir or str(self._temp_dir), hosts=(self.host,))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(tls.cert_path, tls.key_path)
        self._ca_path = tls.ca_path
        listeners = [
            EmulatorServer((self.host, self._wanted_port), answer=self._answer_https, ssl_context=context)
        ]
        if self.plain_http:
            listeners.append(EmulatorServer((self.host, 0), answer=self._answer_http, ssl_context=None))
        for server in listeners:
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name="zendrive-emulator",
                daemon=True,
            )
            thread.start()
            self._servers.append((server, thread))
        return self

    def stop(self) -> None:
        """Stop serving, cut open keep-alive connections and remove the temporary certificates."""
        if not self._servers:
            return
        self._stopped_counts = (self.connections, self.server_time)  # still readable after stop()
        for server, _ in self._servers:
            server.close()
        for _, thread in self._servers:
            thread.join(timeout=1)
        self._servers.clear()
        if self._temp_dir is not None:
            shutil.rmtree(self._temp_dir, ignore_errors=True)
            self._temp_dir = None

    def __enter__(self) -> ZenDriveEmulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -- addresses -------------------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The HTTPS port."""
        return self._server(0).server_port

    @property
    def http_port(self) -> int:
        """The plain-HTTP port (only with ``plain_http=True``)."""
        if not self.plain_http:
            raise RuntimeError("This emulator was created with plain_http=False")
        return self._server(1).server_port

    @property
    def url(self) -> str:
        """The endpoint over HTTPS, e.g. ``https://127.0.0.1:PORT/zendrive-api/cdn-stats/``."""
        return f"https://{self._netloc(self.port)}{ENDPOINT_PATH}"

    @property
    def http_url(self) -> str:
        """The endpoint over plain HTTP (always answers 400 "HTTPS is required")."""
        return f"http://{self._netloc(self.http_port)}{ENDPOINT_PATH}"

    @property
    def ca_path(self) -> str:
        """The PEM file of the generated CA, for ``verify=`` or ``REQUESTS_CA_BUNDLE``."""
        if self._ca_path is None or not self._servers:
            raise RuntimeError("The emulator is not running; call start() first")
        return self._ca_path

    @property
    def connections(self) -> int:
        """TLS connections that completed the handshake since the start or the last :meth:`reset`."""
        return self._server(0).connections if self._servers else self._stopped_counts[0]

    @property
    def server_time(self) -> float:
        """
        Seconds the emulator spent deciding and writing answers (delays and drips excluded) since the start or
        the last :meth:`reset`, over both listeners: what benchmarks subtract to measure the client alone.
        """
        if not self._servers:
            return self._stopped_counts[1]
        return sum(server.server_time for server, _ in self._servers)

    def connection_uri(
        self,
        access_key: str = DEMO_ACCESS_KEY,
        secret_key: str = DEMO_SECRET_KEY,
        *,
        bare_host: bool = True,
        **extra: str,
    ) -> str:
        """
        Return an Airflow connection URI (conn type ``zendrive``) for this emulator, for ``AIRFLOW_CONN_*``.

        The extra always holds ``verify`` (the CA path). ``bare_host=True`` gives ``host=127.0.0.1`` and
        ``port=PORT``; ``bare_host=False`` gives ``host=https://127.0.0.1:PORT/zendrive-api/cdn-stats/`` and no
        port, in the form Airflow's own ``Connection.get_uri()`` writes.

        :param access_key: the connection's login.
        :param secret_key: the connection's password.
        :param bare_host: host and port only (True) or the full URL as the host (False).
        :param extra: more string extras.
        """
        auth = f"{quote(access_key, safe='')}:{quote(secret_key, safe='')}@"
        query = urlencode({"verify": self.ca_path, **extra})
        if bare_host:
            return f"zendrive://{auth}{self._netloc(self.port)}/?{query}"
        return f"zendrive://https://{auth}{quote(self._netloc(self.port) + ENDPOINT_PATH, safe='')}/?{query}"

    def connection_json(
        self, access_key: str = DEMO_ACCESS_KEY, secret_key: str = DEMO_SECRET_KEY, **extra: str
    ) -> str:
        """
        Return the JSON form of an Airflow connection for this emulator, for ``AIRFLOW_CONN_*``.

        :param access_key: the connection's login.
        :param secret_key: the connection's password.
        :param extra: more string extras besides ``verify``.
        """
        return json.dumps(
            {
                "conn_type": "zendrive",
                "login": access_key,
                "password": secret_key,
                "host": self._client_host(),
                "port": self.port,
                "extra": {"verify": self.ca_path, **extra},
            }
        )

    # -- state -----------------------------------------------------------------------------------------------

    def add_account(
        self, access_key: str, secret_key: str, service_id: int, *, active: bool = True, new: bool = False
    ) -> Account:
        """
        Add (or replace) a key pair the emulator accepts.

        :param access_key: the S3 access key.
        :param secret_key: the S3 secret key.
        :param service_id: the service id; drives the deterministic usage data.
        :param active: False answers 403 until :meth:`resume`.
        :param new: a brand-new service: zeroed totals and an empty ``daily`` list.
        """
        account = Account(access_key, secret_key, service_id, active=active, new=new)
        with self._lock:
            self._accounts[access_key] = account
        return account

    def account(self, access_key: str) -> Account:
        """
        Return the (mutable) account of a key.

        :param access_key: the S3 access key.
        :raises KeyError: for an unknown key.
        """
        with self._lock:
            try:
                return self._accounts[access_key]
            except KeyError:
                raise KeyError(f"The emulator has no account with access key {access_key!r}") from None

    def suspend(self, access_key: str, *, requests: int | None = None) -> None:
        """
        Answer 403 "Service is not active" to a key.

        :param access_key: the S3 access key.
        :param requests: None: until :meth:`resume`; N: for the next N authenticated requests only.
        """
        account = self.account(access_key)
        with self._lock:
            if requests is None:
                account.active = False
            else:
                account.active, account.suspended_for = True, requests

    def resume(self, access_key: str) -> None:
        """
        Make a suspended key active again.

        :param access_key: the S3 access key.
        """
        account = self.account(access_key)
        with self._lock:
            account.active, account.suspended_for = True, 0

    def inject(self, *faults: Fault) -> None:
        """
        Queue faults; each is consumed by the next matching request on the HTTPS listener.

        :param faults: the faults, in the order they are to be served.
        """
        with self._lock:
            self._faults.extend(faults)

    @property
    def pending_faults(self) -> tuple[Fault, ...]:
        """The injected faults no request has consumed yet."""
        with self._lock:
            return tuple(self._faults)

    def reset(self) -> None:
        """
        Go back to a fresh emulator without restarting it.

        Clears the faults, the recorded requests, the rate-limit buckets, the connection counter and
        ``server_time``; the accounts go back to the demo account alone; ``today``, ``rate_limit``, ``burst``
        and ``retry_after`` go back to the constructor's values. Connection ids keep counting up.
        """
        with self._lock:
            self._faults.clear()
            self._buckets.clear()
            self.requests.clear()
            self.http_requests.clear()
            for server, _ in self._servers:
                server.reset_counters()
            self._stopped_counts = (0, 0.0)
            self._accounts = {DEMO_ACCESS_KEY: Account(DEMO_ACCESS_KEY, DEMO_SECRET_KEY, DEMO_SERVICE_ID)}
            for name, value in self._initial_conditions.items():
                setattr(self, name, value)

    def expected_stats(
        self,
        from_date: datetime.date,
        to_date: datetime.date,
        access_key: str = DEMO_ACCESS_KEY,
        *,
        final: bool = False,
    ) -> UsageStats:
        """
        Return what one request for the window would get now (for any window, even over 366 days).

        :param from_date: the first day.
        :param to_date: the last day (inclusive).
        :param access_key: whose usage.
        :param final: the final numbers, as if every day were counted in full (see ``late_days``).
        """
        account = self.account(access_key)
        counted = None if final else self._counted()
        return window_stats(account.service_id, from_date, to_date, new=account.new, counted=counted)

    def _counted(self) -> Callable[[datetime.date], float] | None:
        """How much of each day is counted at this moment (None: all of every day)."""
        late_days, fraction = self.late_days, self.late_fraction
        if late_days <= 0:
            return None
        today = self.today or datetime.datetime.now(datetime.UTC).date()
        return lambda day: fraction if (today - day).days <= late_days else 1.0

    # -- called by the handler threads -----------------------------------------------------------------------

    def _answer_https(self, request: Incoming) -> Answer:
        return self._answer(request, secure=True)

    def _answer_http(self, request: Incoming) -> Answer:
        return self._answer(request, secure=False)

    def _answer(self, request: Incoming, *, secure: bool) -> Answer:
        payload = parse_json(request.body)
        fields = payload if isinstance(payload, dict) else {}
        access_key = text(fields.get("access_key"))
        with self._lock:
            if secure:
                answer = self._decide(request, fields if isinstance(payload, dict) else None, access_key)
            else:
                answer = error_answer(400, MESSAGES["https_required"])
            record = RecordedRequest(
                method=request.method,
                path=request.path,
                headers=request.headers,
                body=request.body,
                json=payload,
                status=0 if answer.drop else answer.status,
                access_key=access_key,
                from_date=raw_str(fields.get("from")),
                to_date=raw_str(fields.get("to")),
                connection_id=request.connection_id,
                at=time.monotonic(),
            )
            (self.requests if secure else self.http_requests).append(record)
        return answer

    def _decide(self, request: Incoming, payload: dict[str, Any] | None, access_key: str | None) -> Answer:
        path, _, query = request.path.partition("?")
        if path == ENDPOINT_PATH.rstrip("/"):
            location = self.url + (f"?{query}" if query else "")
            return Answer(301, {"Location": location})
        if path != ENDPOINT_PATH:
            return error_answer(404, MESSAGES["not_found"])
        if request.method != "POST":
            return error_answer(405, MESSAGES["post_required"])
        fault = next((f for f in self._faults if f.access_key in (None, access_key)), None)
        delay = drip = 0.0
        if fault is not None:
            self._faults.remove(fault)
            if fault.drop or fault.status != 200 or fault.body is not None:
                return fault_answer(fault)
            delay, drip = fault.delay, fault.drip
        answer = self._serve(payload, access_key)
        answer.delay = delay
        answer.drip = drip
        return answer

    def _serve(self, payload: dict[str, Any] | None, access_key: str | None) -> Answer:
        secret_key = text(payload.get("secret_key")) if payload is not None else None
        if access_key is None or secret_key is None:
            return error_answer(400, MESSAGES["credentials_required"])
        if self.rate_limit is not None:
            bucket = self._buckets.setdefault(access_key, TokenBucket(self.rate_limit, self.burst))
            wait = bucket.take()
            if wait is not None:
                return error_answer(429, MESSAGES["rate_limited"], retry_after_header(self.retry_after, wait))
        account = self._accounts.get(access_key)
        if account is None or not hmac.compare_digest(account.secret_key.encode(), secret_key.encode()):
            return error_answer(401, MESSAGES["invalid_credentials"])
        if not account.active:
            return error_answer(403, MESSAGES["not_active"])
        if account.suspended_for > 0:
            account.suspended_for -= 1
            return error_answer(403, MESSAGES["not_active"])
        today = self.today or datetime.datetime.now(datetime.UTC).date()
        window = parse_window(payload or {}, today)
        if isinstance(window, str):
            return error_answer(400, window)
        stats = window_stats(account.service_id, *window, new=account.new, counted=self._counted())
        return Answer(200, body=json.dumps(stats).encode())

    # -- helpers ---------------------------------------------------------------------------------------------

    def _server(self, index: int) -> EmulatorServer:
        if not self._servers:
            raise RuntimeError("The emulator is not running; call start() first")
        return self._servers[index][0]

    def _client_host(self) -> str:
        return {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(self.host, self.host)  # noqa: S104

    def _netloc(self, port: int) -> str:
        host = self._client_host()
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
