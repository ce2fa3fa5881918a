"""The ZenDRIVE emulator itself, driven with stdlib clients only (http.client, ssl, urllib)."""

from __future__ import annotations

import datetime
import email.utils
import http.client
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from zendrive_expected import ADDITIVE, DAILY_KEYS, percent

from airflow_provider_zendrive._client.models import parse_stats
from airflow_provider_zendrive.testing import (
    DEMO_ACCESS_KEY,
    DEMO_SECRET_KEY,
    DEMO_SERVICE_ID,
    ENDPOINT_PATH,
    Fault,
    ZenDriveEmulator,
    usage_for_day,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
CREDENTIALS = {"access_key": DEMO_ACCESS_KEY, "secret_key": DEMO_SECRET_KEY}
SUMMARY_KEYS = [*DAILY_KEYS[1:], "success_rate"]


def _context(emulator: ZenDriveEmulator) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=emulator.ca_path)


def _connect(emulator: ZenDriveEmulator, timeout: float = 5) -> http.client.HTTPSConnection:
    return http.client.HTTPSConnection(
        emulator.host, emulator.port, context=_context(emulator), timeout=timeout
    )


def _call(
    emulator: ZenDriveEmulator,
    body: Any = None,
    *,
    method: str = "POST",
    path: str = ENDPOINT_PATH,
    connection: http.client.HTTPConnection | None = None,
    timeout: float = 5,
) -> tuple[int, http.client.HTTPMessage, Any]:
    """Send one request; return the status, the headers and the JSON body (or the raw bytes if not JSON)."""
    conn = connection or _connect(emulator, timeout)
    raw = body if isinstance(body, bytes) else (b"" if body is None else json.dumps(body).encode())
    try:
        conn.request(method, path, body=raw, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        data = response.read()
    finally:
        if connection is None:
            conn.close()
    try:
        return response.status, response.headers, json.loads(data)
    except ValueError:
        return response.status, response.headers, data


def _window(first: str, last: str) -> dict[str, str]:
    return {**CREDENTIALS, "from": first, "to": last}


# -- the data model -----------------------------------------------------------------------------------------


def test_usage_for_day_is_deterministic_and_realistic() -> None:
    start = datetime.date(2025, 1, 1)
    days = [start + datetime.timedelta(days=n) for n in range(730)]
    usage = [usage_for_day(DEMO_SERVICE_ID, day) for day in days]
    assert usage == [usage_for_day(DEMO_SERVICE_ID, day) for day in days]
    assert usage != [usage_for_day(DEMO_SERVICE_ID + 1, day) for day in days]
    quiet = sum(entry is None for entry in usage)
    assert 730 / 7 * 0.6 < quiet < 730 / 7 * 1.4
    busy = [entry for entry in usage if entry is not None]
    for entry in busy:
        assert list(entry) == list(DAILY_KEYS)
        parts = entry["successful_requests"] + entry["client_errors"] + entry["auth_failures"]
        assert parts == entry["total_requests"]
        assert 1_000 <= entry["total_requests"] < 1_000_000
        assert 2**31 < entry["bytes_sent"] < 10**12
        assert 1 <= entry["unique_ips"] <= 20
    assert any(entry["auth_failures"] for entry in busy)
    assert any(entry["bytes_received"] > 2**31 for entry in busy)


# -- 200 ----------------------------------------------------------------------------------------------------


def test_ok_response_has_the_documented_shape(zendrive_emulator: ZenDriveEmulator) -> None:
    status, headers, body = _call(zendrive_emulator, _window("2026-01-01", "2026-03-01"))

    assert status == 200
    assert headers["Content-Type"] == "application/json"
    assert list(body) == ["status", "service_id", "from", "to", "summary", "daily"]
    assert body["status"] == "ok"
    assert (body["service_id"], body["from"], body["to"]) == (DEMO_SERVICE_ID, "2026-01-01", "2026-03-01")
    assert list(body["summary"]) == SUMMARY_KEYS
    days = [datetime.date(2026, 1, 1) + datetime.timedelta(days=n) for n in range(60)]
    busy = [day.isoformat() for day in days if usage_for_day(DEMO_SERVICE_ID, day) is not None]
    assert len(busy) < len(days)
    assert [entry["date"] for entry in body["daily"]] == busy
    for name in ADDITIVE:
        assert body["summary"][name] == sum(entry[name] for entry in body["daily"])
    summary = body["summary"]
    assert summary["success_rate"] == percent(summary["successful_requests"], summary["total_requests"])
    assert summary["unique_ips"] == max(entry["unique_ips"] for entry in body["daily"])
    assert parse_stats(json.dumps(body)) == body


def test_default_window_is_the_last_30_days(zendrive_emulator: ZenDriveEmulator) -> None:
    zendrive_emulator.today = datetime.date(2026, 6, 24)

    assert _call(zendrive_emulator, CREDENTIALS)[2]["from"] == "2026-05-25"
    assert _call(zendrive_emulator, CREDENTIALS)[2]["to"] == "2026-06-24"
    only_from = _call(zendrive_emulator, {**CREDENTIALS, "from": "2026-06-01"})[2]
    assert (only_from["from"], only_from["to"]) == ("2026-06-01", "2026-06-24")
    only_to = _call(zendrive_emulator, {**CREDENTIALS, "to": "2026-03-31"})[2]
    assert (only_to["from"], only_to["to"]) == ("2026-03-01", "2026-03-31")


def test_new_account_has_zeroed_totals_and_no_days(zendrive_emulator: ZenDriveEmulator) -> None:
    zendrive_emulator.add_account("fresh", "fresh-secret", 77, new=True)

    status, _, body = _call(zendrive_emulator, {"access_key": "fresh", "secret_key": "fresh-secret"})

    assert status == 200
    assert body["service_id"] == 77
    assert body["daily"] == []
    assert set(body["summary"].values()) == {0}
    assert body == zendrive_emulator.expected_stats(
        datetime.date.fromisoformat(body["from"]), datetime.date.fromisoformat(body["to"]), "fresh"
    )


def test_expected_stats_is_what_the_server_answers(zendrive_emulator: ZenDriveEmulator) -> None:
    zendrive_emulator.add_account("other", "other-secret", 98765)
    first, last = datetime.date(2025, 3, 1), datetime.date(2026, 3, 1)  # 366 days: the largest window
    body = {"access_key": "other", "secret_key": "other-secret", "from": "2025-03-01", "to": "2026-03-01"}

    status, _, answer = _call(zendrive_emulator, body)

    assert status == 200
    assert answer == zendrive_emulator.expected_stats(first, last, "other")
    longer = zendrive_emulator.expected_stats(first, last + datetime.timedelta(days=400), "other")
    assert longer["summary"]["total_requests"] > answer["summary"]["total_requests"]


# -- errors -------------------------------------------------------------------------------------------------

REQUIRED = "access_key and secret_key are required"
BAD_DATE = "'from' / 'to' must be a valid YYYY-MM-DD date"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param(None, REQUIRED, id="no-body"),
        pytest.param(b"access_key=a&secret_key=b", REQUIRED, id="not-json"),
        pytest.param(["a", "b"], REQUIRED, id="not-an-object"),
        pytest.param({"access_key": DEMO_ACCESS_KEY}, REQUIRED, id="no-secret"),
        pytest.param({"access_key": "", "secret_key": DEMO_SECRET_KEY}, REQUIRED, id="empty-key"),
        pytest.param({"access_key": 1, "secret_key": DEMO_SECRET_KEY}, REQUIRED, id="key-not-a-string"),
        pytest.param({**CREDENTIALS, "from": "2026-5-1"}, BAD_DATE, id="short-date"),
        pytest.param({**CREDENTIALS, "from": "20260501"}, BAD_DATE, id="basic-format"),
        pytest.param({**CREDENTIALS, "to": "2026-02-30"}, BAD_DATE, id="no-such-day"),
        pytest.param({**CREDENTIALS, "to": 20260501}, BAD_DATE, id="number"),
        pytest.param(_window("2026-05-02", "2026-05-01"), "'from' must be on or before 'to'", id="inverted"),
        pytest.param(
            _window("2025-01-01", "2026-01-02"), "date range too large (max 366 days)", id="367-days"
        ),
    ],
)
def test_bad_requests_get_400(zendrive_emulator: ZenDriveEmulator, body: Any, message: str) -> None:
    status, _, answer = _call(zendrive_emulator, body)

    assert (status, answer) == (400, {"status": "error", "message": message})


def test_plain_http_is_rejected(zendrive_emulator: ZenDriveEmulator) -> None:
    body = json.dumps(CREDENTIALS).encode()
    request = urllib.request.Request(zendrive_emulator.http_url, data=body)  # noqa: S310 - http on purpose
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=5)  # noqa: S310

    with caught.value as response:
        assert response.code == 400
        assert json.loads(response.read()) == {"status": "error", "message": "HTTPS is required"}
    assert [r.status for r in zendrive_emulator.http_requests] == [400]
    assert zendrive_emulator.requests == []


@pytest.mark.parametrize(
    ("credentials", "status", "message"),
    [
        pytest.param(
            {"access_key": "nobody", "secret_key": "x"}, 401, "Invalid credentials", id="unknown-key"
        ),
        pytest.param(
            {"access_key": DEMO_ACCESS_KEY, "secret_key": "wrong"}, 401, "Invalid credentials", id="bad"
        ),
    ],
)
def test_bad_credentials_get_401(
    zendrive_emulator: ZenDriveEmulator, credentials: dict[str, str], status: int, message: str
) -> None:
    assert _call(zendrive_emulator, credentials)[::2] == (status, {"status": "error", "message": message})


def test_suspended_service_gets_403_until_resumed(zendrive_emulator: ZenDriveEmulator) -> None:
    inactive = (403, {"status": "error", "message": "Service is not active"})
    zendrive_emulator.suspend(DEMO_ACCESS_KEY)

    assert _call(zendrive_emulator, CREDENTIALS)[::2] == inactive
    assert _call(zendrive_emulator, CREDENTIALS)[::2] == inactive
    zendrive_emulator.resume(DEMO_ACCESS_KEY)
    assert _call(zendrive_emulator, CREDENTIALS)[0] == 200


def test_suspended_for_n_requests_then_active(zendrive_emulator: ZenDriveEmulator) -> None:
    zendrive_emulator.suspend(DEMO_ACCESS_KEY, requests=2)

    statuses = [_call(zendrive_emulator, CREDENTIALS)[0] for _ in range(3)]

    assert statuses == [403, 403, 200]
    assert zendrive_emulator.account(DEMO_ACCESS_KEY).suspended_for == 0


def test_wrong_method_gets_405(zendrive_emulator: ZenDriveEmulator) -> None:
    for method in ("GET", "PUT", "DELETE"):
        answer = _call(zendrive_emulator, CREDENTIALS, method=method)[::2]
        assert answer == (405, {"status": "error", "message": "POST is required"})


def test_missing_trailing_slash_redirects(zendrive_emulator: ZenDriveEmulator) -> None:
    for method in ("POST", "GET"):
        status, headers, _ = _call(
            zendrive_emulator, CREDENTIALS, method=method, path="/zendrive-api/cdn-stats"
        )
        assert status == 301
        assert headers["Location"] == zendrive_emulator.url


def test_unknown_path_gets_404(zendrive_emulator: ZenDriveEmulator) -> None:
    answer = _call(zendrive_emulator, CREDENTIALS, path="/zendrive-api/other/")[::2]

    assert answer == (404, {"status": "error", "message": "Not found"})


# -- rate limit ---------------------------------------------------------------------------------------------


def test_rate_limit_answers_429_with_retry_after_seconds(zendrive_emulator: ZenDriveEmulator) -> None:
    zendrive_emulator.rate_limit, zendrive_emulator.burst = 0.5, 2

    statuses = [_call(zendrive_emulator, CREDENTIALS)[0] for _ in range(2)]
    status, headers, body = _call(zendrive_emulator, CREDENTIALS)

    assert statuses == [200, 200]
    assert (status, body) == (429, {"status": "error", "message": "Too many requests, slow down"})
    assert headers["Retry-After"] == "2"
    other = {"access_key": "nobody", "secret_key": "x"}
    assert _call(zendrive_emulator, other)[0] == 401  # the bucket is per key


def test_rate_limit_refills(zendrive_emulator: ZenDriveEmulator) -> None:
    # 2 tokens a second: the second request must come within 0.5 s of the first to be refused, so both go
    # over one kept-alive connection (no second TLS handshake), which is fast even on a loaded machine.
    zendrive_emulator.rate_limit = 2
    conn = _connect(zendrive_emulator)
    try:
        first, second = (_call(zendrive_emulator, CREDENTIALS, connection=conn)[0] for _ in range(2))
        time.sleep(0.55)
        third = _call(zendrive_emulator, CREDENTIALS, connection=conn)[0]
    finally:
        conn.close()

    assert (first, second, third) == (200, 429, 200)


def test_rate_limit_retry_after_http_date(zendrive_emulator: ZenDriveEmulator) -> None:
    zendrive_emulator.rate_limit, zendrive_emulator.retry_after = 0.5, "http-date"
    _call(zendrive_emulator, CREDENTIALS)

    status, headers, _ = _call(zendrive_emulator, CREDENTIALS)

    assert status == 429
    when = email.utils.parsedate_to_datetime(headers["Retry-After"])
    assert headers["Retry-After"].endswith(" GMT")
    wait = (when - datetime.datetime.now(datetime.UTC)).total_seconds()
    assert 0.5 < wait <= 3


def test_rate_limit_without_retry_after(zendrive_emulator: ZenDriveEmulator) -> None:
    zendrive_emulator.rate_limit, zendrive_emulator.retry_after = 0.5, None
    _call(zendrive_emulator, CREDENTIALS)

    status, headers, _ = _call(zendrive_emulator, CREDENTIALS)

    assert status == 429
    assert "Retry-After" not in headers


# -- faults -------------------------------------------------------------------------------------------------


def test_faults_are_served_in_order_then_normal_answers(zendrive_emulator: ZenDriveEmulator) -> None:
    zendrive_emulator.inject(Fault(), Fault(500), Fault.rate_limited("7"), Fault(418, body=b"teapot"))

    answers = [_call(zendrive_emulator, CREDENTIALS) for _ in range(5)]

    assert [(status, body) for status, _, body in answers[:3]] == [
        (503, {"status": "error", "message": "Service temporarily unavailable"}),
        (500, {"status": "error", "message": "Internal server error"}),
        (429, {"status": "error", "message": "Too many requests, slow down"}),
    ]
    assert answers[2][1]["Retry-After"] == "7"
    assert answers[3][::2] == (418, b"teapot")
    assert answers[4][0] == 200
    assert zendrive_emulator.pending_faults == ()
    assert [r.status for r in zendrive_emulator.requests] == [503, 500, 429, 418, 200]


def test_fault_for_one_key_skips_other_keys(zendrive_emulator: ZenDriveEmulator) -> None:
    zendrive_emulator.add_account("other", "other-secret", 5)
    other = {"access_key": "other", "secret_key": "other-secret"}
    zendrive_emulator.inject(Fault(503, access_key="other"), Fault(500))

    assert _call(zendrive_emulator, CREDENTIALS)[0] == 500
    assert _call(zendrive_emulator, CREDENTIALS)[0] == 200
    assert _call(zendrive_emulator, other)[0] == 503
    assert _call(zendrive_emulator, other)[0] == 200


def test_fault_comes_after_path_and_method_checks(zendrive_emulator: ZenDriveEmulator) -> None:
    zendrive_emulator.inject(Fault(503))

    assert _call(zendrive_emulator, CREDENTIALS, method="GET")[0] == 405
    assert _call(zendrive_emulator, {})[0] == 503  # before the body check


def test_dropped_connection_gets_no_response(zendrive_emulator: ZenDriveEmulator) -> None:
    zendrive_emulator.inject(Fault(drop=True))

    with pytest.raises(http.client.RemoteDisconnected):
        _call(zendrive_emulator, CREDENTIALS)
    assert _call(zendrive_emulator, CREDENTIALS)[0] == 200
    assert [r.status for r in zendrive_emulator.requests] == [0, 200]


def test_delay_triggers_client_timeouts(zendrive_emulator: ZenDriveEmulator) -> None:
    zendrive_emulator.inject(Fault(503, delay=0.5), Fault.slow(0.2))

    with pytest.raises(TimeoutError):
        _call(zendrive_emulator, CREDENTIALS, timeout=0.1)
    started = time.monotonic()
    status, _, body = _call(zendrive_emulator, CREDENTIALS)

    assert time.monotonic() - started >= 0.2
    assert status == 200
    assert body["status"] == "ok"
    assert zendrive_emulator.server_time < 0.2  # injected delays are not server time


@pytest.mark.parametrize("kind", ["not-json", "truncated", "missing-field", "wrong-type", "status-error"])
def test_malformed_bodies_fail_validation(zendrive_emulator: ZenDriveEmulator, kind: Any) -> None:
    from airflow_provider_zendrive.exceptions import ZenDriveResponseError

    zendrive_emulator.inject(Fault.malformed(kind))
    conn = _connect(zendrive_emulator)
    conn.request("POST", ENDPOINT_PATH, body=json.dumps(CREDENTIALS))
    response = conn.getresponse()
    raw = response.read()
    conn.close()

    assert response.status == 200
    with pytest.raises(ZenDriveResponseError):
        parse_stats(raw)


# -- connections, TLS, lifecycle ----------------------------------------------------------------------------


def test_keep_alive_reuses_one_tls_connection(zendrive_emulator: ZenDriveEmulator) -> None:
    conn = _connect(zendrive_emulator)
    try:
        statuses = [_call(zendrive_emulator, CREDENTIALS, connection=conn)[0] for _ in range(3)]
    finally:
        conn.close()

    assert statuses == [200, 200, 200]
    assert zendrive_emulator.connections == 1
    assert len({r.connection_id for r in zendrive_emulator.requests}) == 1


def test_certificate_is_valid_for_localhost_too(zendrive_emulator: ZenDriveEmulator) -> None:
    conn = http.client.HTTPSConnection(
        "localhost", zendrive_emulator.port, context=_context(zendrive_emulator)
    )
    try:
        assert _call(zendrive_emulator, CREDENTIALS, connection=conn)[0] == 200
    finally:
        conn.close()
    with pytest.raises(ssl.SSLCertVerificationError):
        _call(
            zendrive_emulator,
            CREDENTIALS,
            connection=http.client.HTTPSConnection("127.0.0.1", zendrive_emulator.port, timeout=5),
        )


def test_requests_are_recorded_without_leaking_the_secret(zendrive_emulator: ZenDriveEmulator) -> None:
    _call(zendrive_emulator, _window("2026-01-01", "2026-01-31"))

    (recorded,) = zendrive_emulator.requests
    assert (recorded.method, recorded.path, recorded.status) == ("POST", ENDPOINT_PATH, 200)
    assert (recorded.access_key, recorded.from_date, recorded.to_date) == (
        DEMO_ACCESS_KEY,
        "2026-01-01",
        "2026-01-31",
    )
    assert recorded.json == _window("2026-01-01", "2026-01-31")
    assert DEMO_SECRET_KEY not in repr(recorded)
    assert DEMO_SECRET_KEY not in repr(zendrive_emulator.account(DEMO_ACCESS_KEY))


def test_server_is_quiet(zendrive_emulator: ZenDriveEmulator, capfd: pytest.CaptureFixture[str]) -> None:
    _call(zendrive_emulator, CREDENTIALS)
    _call(zendrive_emulator, {}, method="GET")
    with socket.create_connection((zendrive_emulator.host, zendrive_emulator.port)) as sock:
        sock.sendall(b"not TLS at all\r\n\r\n")
        sock.recv(100)
    time.sleep(0.05)

    assert capfd.readouterr() == ("", "")


def test_reset_restores_defaults(zendrive_emulator: ZenDriveEmulator) -> None:
    zendrive_emulator.add_account("x", "y", 1)
    zendrive_emulator.suspend(DEMO_ACCESS_KEY)
    zendrive_emulator.inject(Fault())
    zendrive_emulator.rate_limit = 1
    _call(zendrive_emulator, CREDENTIALS)

    zendrive_emulator.reset()

    assert (zendrive_emulator.requests, zendrive_emulator.connections, zendrive_emulator.pending_faults) == (
        [],
        0,
        (),
    )
    assert zendrive_emulator.account(DEMO_ACCESS_KEY).active
    with pytest.raises(KeyError):
        zendrive_emulator.account("x")
    assert [_call(zendrive_emulator, CREDENTIALS)[0] for _ in range(2)] == [
        200,
        200,
    ]  # no rate limit any more


def test_stop_is_prompt_with_open_keep_alive_connections(tmp_path: Path) -> None:
    emulator = ZenDriveEmulator(cert_dir=tmp_path, plain_http=False).start()
    conn = _connect(emulator)
    try:
        assert _call(emulator, CREDENTIALS, connection=conn)[0] == 200
        emulator.inject(Fault.slow(30))
        conn.sock.settimeout(10)
        conn.request("POST", ENDPOINT_PATH, body=json.dumps(CREDENTIALS))
        time.sleep(0.05)
        started = time.monotonic()
        emulator.stop()
        assert time.monotonic() - started < 5  # not the 30 s the open request would take
    finally:
        conn.close()
    assert (tmp_path / "ca.pem").exists()  # a given cert_dir is kept
    with pytest.raises(RuntimeError):
        emulator.ca_path  # noqa: B018


# -- Airflow connections ------------------------------------------------------------------------------------


@pytest.mark.parametrize("bare_host", [True, False])
def test_connection_uri_round_trips_through_airflow(
    zendrive_emulator: ZenDriveEmulator, bare_host: bool
) -> None:
    from airflow.sdk import Connection

    uri = zendrive_emulator.connection_uri("key with space", "s3cr:t/@?&", bare_host=bare_host, timeout="7")
    conn = Connection.from_uri(uri, conn_id="zendrive_default")

    assert conn.conn_type == "zendrive"
    assert (conn.login, conn.password) == ("key with space", "s3cr:t/@?&")
    assert conn.extra_dejson == {"verify": zendrive_emulator.ca_path, "timeout": "7"}
    if bare_host:
        assert (conn.host, conn.port) == ("127.0.0.1", zendrive_emulator.port)
    else:
        assert (conn.host, conn.port) == (zendrive_emulator.url, None)


def test_connection_json_round_trips_through_airflow(zendrive_emulator: ZenDriveEmulator) -> None:
    from airflow.sdk import Connection

    conn = Connection.from_json(zendrive_emulator.connection_json(timeout="7"), conn_id="zendrive_default")

    assert (conn.conn_type, conn.host, conn.port) == ("zendrive", "127.0.0.1", zendrive_emulator.port)
    assert (conn.login, conn.password) == (DEMO_ACCESS_KEY, DEMO_SECRET_KEY)
    assert conn.extra_dejson == {"verify": zendrive_emulator.ca_path, "timeout": "7"}


# -- the command line ---------------------------------------------------------------------------------------


class CommandLine:
    """``python -m airflow_provider_zendrive.testing ARGS`` as a subprocess, read up to its export line."""

    def __init__(self, *args: str) -> None:
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "airflow_provider_zendrive.testing", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert self.process.stdout is not None
        self.lines: list[str] = []
        while not any(line.startswith("export AIRFLOW_CONN_ZENDRIVE_DEFAULT=") for line in self.lines):
            line = self.process.stdout.readline()
            assert line, (
                f"the emulator exited early: {self.process.stderr.read() if self.process.stderr else ''}"
            )
            self.lines.append(line.strip())
        self.url = self._value("ZenDRIVE usage-stats emulator")
        self.ca_path = self._value("CA bundle")

    def _value(self, label: str) -> str:
        return next(line.split(": ", 1)[1] for line in self.lines if line.startswith(label))

    def post(self, body: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """POST ``body`` as JSON; the status and the decoded answer."""
        request = urllib.request.Request(self.url, data=json.dumps(body).encode())  # noqa: S310
        context = ssl.create_default_context(cafile=self.ca_path)
        try:
            with urllib.request.urlopen(request, context=context, timeout=5) as response:  # noqa: S310
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            with error:
                return error.code, json.loads(error.read())

    def stop(self) -> int:
        """SIGTERM, then the exit status (killed if it does not stop)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=5)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
            for stream in (self.process.stdout, self.process.stderr):
                if stream is not None:
                    stream.close()


def test_command_line_serves_until_sigterm() -> None:
    emulator = CommandLine("--today", "2026-06-24", "--rate-limit", "5")
    try:
        status, answer = emulator.post(CREDENTIALS)
        assert (status, answer["to"]) == (200, "2026-06-24")
    finally:
        assert emulator.stop() == 0
    assert emulator.url.startswith("https://127.0.0.1:")
    assert emulator.url.endswith(ENDPOINT_PATH)
    assert not Path(emulator.ca_path).exists()  # the temporary certificates are removed on exit


def test_command_line_suspends_the_demo_key() -> None:
    emulator = CommandLine("--suspended")
    try:
        assert emulator.post(CREDENTIALS) == (403, {"status": "error", "message": "Service is not active"})
        assert emulator.post(CREDENTIALS)[0] == 403  # until stopped
    finally:
        assert emulator.stop() == 0
    assert "Fault: the demo service is suspended (403 'Service is not active')" in emulator.lines


def test_command_line_queues_failures_then_answers() -> None:
    emulator = CommandLine("--fail", "503x2", "--fail", "500", "--suspended-for", "1", "--late-days", "1")
    try:
        statuses = [emulator.post(CREDENTIALS)[0] for _ in range(5)]
    finally:
        emulator.stop()
    assert statuses == [503, 503, 500, 403, 200]


def test_command_line_help_lists_the_faults() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "airflow_provider_zendrive.testing", "--help"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    for option in (
        "--suspended",
        "--suspended-for",
        "--rate-limit",
        "--late-days",
        "--fail",
        "--new-service",
    ):
        assert option in result.stdout


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--fail", "200"], "400-599"),
        (["--fail", "503x0"], "1 or more"),
        (["--fail", "oops"], "STATUS[xN]"),
        (["--suspended", "--suspended-for", "2"], "not allowed with"),
        (["--late-fraction", "0"], "late_fraction"),
    ],
)
def test_command_line_refuses_nonsense(args: list[str], words: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "airflow_provider_zendrive.testing", *args],
        check=False,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        timeout=30,
    )
    assert result.returncode == 2
    assert words in result.stderr
