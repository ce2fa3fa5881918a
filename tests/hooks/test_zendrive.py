"""ZenDriveStatsHook against the HTTPS emulator: every rule of the API contract, over real TLS."""

from __future__ import annotations

import datetime
import email.utils
import json
import pathlib
import re
import socket
import time
import urllib.parse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pendulum
import pytest
from zendrive_expected import ADDITIVE, percent

from airflow_provider_zendrive import __version__
from airflow_provider_zendrive.exceptions import (
    ZenDriveAuthError,
    ZenDriveError,
    ZenDriveInputError,
    ZenDriveRateLimitError,
    ZenDriveRequestError,
    ZenDriveResponseError,
    ZenDriveServiceInactiveError,
    ZenDriveTLSError,
    ZenDriveUnavailableError,
)
from airflow_provider_zendrive.hooks.zendrive import ZenDriveStatsHook
from airflow_provider_zendrive.testing import (
    DEMO_ACCESS_KEY,
    DEMO_SECRET_KEY,
    DEMO_SERVICE_ID,
    Fault,
    ZenDriveEmulator,
    usage_for_day,
)

if TYPE_CHECKING:
    from conftest import RecordingHook

    from airflow_provider_zendrive.testing._types import MalformedKind

MakeHook = Callable[..., "RecordingHook"]
TODAY = datetime.datetime.now(datetime.UTC).date()


def bodies(emulator: ZenDriveEmulator) -> list[Any]:
    """The parsed request bodies (None for a body that is not JSON)."""
    return [r.json for r in emulator.requests]


def windows_sent(emulator: ZenDriveEmulator) -> list[tuple[str | None, str | None]]:
    windows = []
    for r in emulator.requests:
        assert isinstance(r.json, dict), r  # every request the hook sends is a JSON object
        windows.append((r.json.get("from"), r.json.get("to")))
    return windows


def hook_for_url(
    set_connection: Callable[..., str], url: str, verify: str | None = None
) -> ZenDriveStatsHook:
    """A hook on a connection whose host is the full ``url``, with the demo keys."""
    conn: dict[str, object] = {
        "conn_type": "zendrive",
        "login": DEMO_ACCESS_KEY,
        "password": DEMO_SECRET_KEY,
        "host": url,
    }
    if verify is not None:
        conn["extra"] = {"verify": verify}
    return ZenDriveStatsHook(zendrive_conn_id=set_connection(json.dumps(conn)))


# --- dates and windows -----------------------------------------------------------------------------------


def test_no_dates_sends_no_dates_and_returns_the_api_shape(
    make_hook: MakeHook, zendrive_emulator: ZenDriveEmulator
) -> None:
    stats = make_hook().get_stats()

    assert windows_sent(zendrive_emulator) == [(None, None)]
    start = TODAY - datetime.timedelta(days=30)
    assert stats == zendrive_emulator.expected_stats(start, TODAY)
    assert list(stats) == ["status", "service_id", "from", "to", "summary", "daily"]
    assert stats["service_id"] == DEMO_SERVICE_ID
    json.dumps(stats)  # XCom-ready


@pytest.mark.parametrize(
    ("from_date", "to_date", "expected"),
    [
        (datetime.date(2026, 5, 1), datetime.date(2026, 5, 31), ("2026-05-01", "2026-05-31")),
        ("2026-05-01", "2026-05-31", ("2026-05-01", "2026-05-31")),
        (pendulum.date(2026, 5, 1), pendulum.datetime(2026, 5, 31, 23, 59), ("2026-05-01", "2026-05-31")),
        # An aware datetime counts by its UTC date: 01:00 at +05:00 is the previous day in UTC.
        (
            datetime.datetime(2026, 5, 2, 1, 0, tzinfo=datetime.timezone(datetime.timedelta(hours=5))),
            pendulum.datetime(2026, 6, 1, 2, 0, tz="Asia/Tokyo"),
            ("2026-05-01", "2026-05-31"),
        ),
        ("2026-05-01T00:00:00+00:00", "2026-05-31T12:00:00Z", ("2026-05-01", "2026-05-31")),
        ("2026-05-01", "2026-05-01", ("2026-05-01", "2026-05-01")),
    ],
)
def test_dates_are_sent_as_utc_days(
    make_hook: MakeHook,
    zendrive_emulator: ZenDriveEmulator,
    from_date: datetime.date | str,
    to_date: datetime.date | str,
    expected: tuple[str, str],
) -> None:
    stats = make_hook().get_stats(from_date, to_date)

    assert windows_sent(zendrive_emulator) == [expected]
    assert (stats["from"], stats["to"]) == expected
    first, last = (datetime.date.fromisoformat(d) for d in expected)
    assert stats == zendrive_emulator.expected_stats(first, last)


def test_one_bound_fills_the_other_like_the_server(
    make_hook: MakeHook, zendrive_emulator: ZenDriveEmulator
) -> None:
    hook = make_hook()
    hook.get_stats(to_date="2026-03-31")
    hook.get_stats(from_date=TODAY - datetime.timedelta(days=3))

    assert windows_sent(zendrive_emulator) == [
        ("2026-03-01", "2026-03-31"),
        ((TODAY - datetime.timedelta(days=3)).isoformat(), TODAY.isoformat()),
    ]


@pytest.mark.parametrize(
    ("from_date", "to_date", "named"),
    [
        ("2026-13-01", "2026-12-31", "2026-13-01"),
        ("yesterday", None, "yesterday"),
        ("2026-02-30", "2026-03-01", "2026-02-30"),
        (20260101, None, "20260101"),
        ("2026-05-02", "2026-05-01", "2026-05-02"),
        ("2026-01-01", "2025/12/31", "2025/12/31"),
        ("2026-W01-1", "2026-01-31", "2026-W01-1"),  # ISO week dates are ISO 8601, not YYYY-MM-DD
        ("20260101", "2026-01-31", "20260101"),
        ("2026-01-01", "2026-W05-1T00:00", "2026-W05-1T00:00"),
    ],
)
def test_bad_dates_fail_before_any_request(
    make_hook: MakeHook, zendrive_emulator: ZenDriveEmulator, from_date: Any, to_date: Any, named: str
) -> None:
    with pytest.raises(ValueError, match=named) as info:
        make_hook().get_stats(from_date, to_date)

    assert isinstance(info.value, ZenDriveInputError)
    assert zendrive_emulator.requests == []
    assert zendrive_emulator.connections == 0


def test_three_year_window_is_three_chunks_merged_to_the_per_day_truth(
    make_hook: MakeHook, zendrive_emulator: ZenDriveEmulator
) -> None:
    start, end = datetime.date(2023, 1, 1), datetime.date(2025, 12, 31)  # 1096 days

    stats = make_hook().get_stats(start, end)

    assert windows_sent(zendrive_emulator) == [
        ("2023-01-01", "2024-01-01"),
        ("2024-01-02", "2025-01-01"),
        ("2025-01-02", "2025-12-31"),
    ]
    assert zendrive_emulator.connections == 1  # one HTTP session, one TLS connection
    truth = [
        usage
        for offset in range((end - start).days + 1)
        if (usage := usage_for_day(DEMO_SERVICE_ID, start + datetime.timedelta(days=offset))) is not None
    ]
    assert stats["daily"] == truth
    assert len(truth) < 1096  # zero-traffic days are omitted, not zero-filled
    assert (stats["from"], stats["to"]) == ("2023-01-01", "2025-12-31")
    for name in ADDITIVE:
        assert stats["summary"][name] == sum(day[name] for day in truth)  # type: ignore[literal-required]
    assert stats["summary"]["unique_ips"] is None
    total = stats["summary"]["total_requests"]
    assert stats["summary"]["success_rate"] == percent(stats["summary"]["successful_requests"], total)


@pytest.mark.parametrize(("days", "requests"), [(366, 1), (367, 2), (732, 2), (733, 3)])
def test_chunk_boundaries(
    make_hook: MakeHook, zendrive_emulator: ZenDriveEmulator, days: int, requests: int
) -> None:
    start = datetime.date(2024, 1, 1)
    stats = make_hook().get_stats(start, start + datetime.timedelta(days=days - 1))

    assert len(zendrive_emulator.requests) == requests
    for first, last in windows_sent(zendrive_emulator):
        assert first is not None
        assert last is not None
        assert (datetime.date.fromisoformat(last) - datetime.date.fromisoformat(first)).days + 1 <= 366
    assert (stats["summary"]["unique_ips"] is None) == (requests > 1)


def test_single_window_keeps_unique_ips(make_hook: MakeHook, zendrive_emulator: ZenDriveEmulator) -> None:
    stats = make_hook().get_stats("2026-01-01", "2026-01-31")
    assert (
        stats["summary"]["unique_ips"]
        == zendrive_emulator.expected_stats(datetime.date(2026, 1, 1), datetime.date(2026, 1, 31))["summary"][
            "unique_ips"
        ]
    )


def test_chunks_of_different_services_are_an_error(
    make_hook: MakeHook, zendrive_emulator: ZenDriveEmulator
) -> None:
    first = zendrive_emulator.expected_stats(datetime.date(2024, 1, 1), datetime.date(2024, 12, 31))
    second = zendrive_emulator.expected_stats(datetime.date(2025, 1, 1), datetime.date(2025, 1, 31))
    second["service_id"] = 9999
    zendrive_emulator.inject(
        Fault(status=200, body=json.dumps(first).encode()),
        Fault(status=200, body=json.dumps(second).encode()),
    )

    with pytest.raises(ZenDriveResponseError, match="different services"):
        make_hook().get_stats("2024-01-01", "2025-01-31")


def test_new_service_is_empty(make_hook: MakeHook, zendrive_emulator: ZenDriveEmulator) -> None:
    zendrive_emulator.add_account("fresh-key", "fresh-secret-123", 77, new=True)
    stats = make_hook("fresh-key", "fresh-secret-123").get_stats("2026-01-01", "2026-01-31")
    assert stats["daily"] == []
    assert stats["summary"]["total_requests"] == 0
    assert stats["service_id"] == 77


# --- the request itself ----------------------------------------------------------------------------------


def test_request_is_a_json_post_with_our_user_agent(
    make_hook: MakeHook, zendrive_emulator: ZenDriveEmulator
) -> None:
    make_hook().get_stats("2026-01-01", "2026-01-02")

    (request,) = zendrive_emulator.requests
    assert request.method == "POST"
    assert request.path == "/zendrive-api/cdn-stats/"
    headers = {k.lower(): v for k, v in request.headers.items()}
    assert headers["user-agent"] == f"airflow-provider-zendrive/{__version__}"
    assert headers["content-type"] == "application/json"
    assert request.json == {
        "access_key": DEMO_ACCESS_KEY,
        "secret_key": DEMO_SECRET_KEY,
        "from": "2026-01-01",
        "to": "2026-01-02",
    }


def test_full_url_host_without_trailing_slash_gets_one(
    zendrive_emulator: ZenDriveEmulator, set_connection: Callable[..., str]
) -> None:
    hook = hook_for_url(set_connection, zendrive_emulator.url.rstrip("/"), zendrive_emulator.ca_path)

    hook.get_stats("2026-01-01", "2026-01-01")

    assert hook.settings.url == zendrive_emulator.url
    assert [r.status for r in zendrive_emulator.requests] == [200]


def test_bare_host_and_port_imply_https_and_the_documented_path(
    make_hook: MakeHook, zendrive_emulator: ZenDriveEmulator
) -> None:
    hook = make_hook()
    assert hook.settings.url == f"https://127.0.0.1:{zendrive_emulator.port}/zendrive-api/cdn-stats/"
    hook.get_stats("2026-01-01", "2026-01-01")
    assert [r.status for r in zendrive_emulator.requests] == [200]


@pytest.mark.parametrize("scheme", ["http", "HTTP"])
def test_plain_http_is_refused_before_any_socket(
    zendrive_emulator: ZenDriveEmulator, set_connection: Callable[..., str], scheme: str
) -> None:
    hook = hook_for_url(set_connection, zendrive_emulator.http_url.replace("http", scheme, 1))

    with pytest.raises(ZenDriveInputError, match="HTTPS"):
        hook.get_stats()

    assert zendrive_emulator.http_requests == []
    assert zendrive_emulator.requests == []


def test_redirects_are_never_followed(make_hook: MakeHook, zendrive_emulator: ZenDriveEmulator) -> None:
    zendrive_emulator.inject(Fault(status=301, headers={"Location": zendrive_emulator.url + "moved/"}))

    with pytest.raises(ZenDriveRequestError, match="trailing slash") as info:
        make_hook().get_stats()

    assert info.value.status_code == 301
    assert len(zendrive_emulator.requests) == 1


def test_the_servers_own_redirect_for_a_missing_slash_is_reported(
    zendrive_emulator: ZenDriveEmulator, set_connection: Callable[..., str]
) -> None:
    # A path the hook does not normalise (it only appends the slash when the path is bare) still cannot
    # lose the body silently: the emulator's 301 becomes an error.
    hook = hook_for_url(set_connection, zendrive_emulator.url.rstrip("/"), zendrive_emulator.ca_path)
    # Force the slash-less URL past normalisation to prove the 3xx handling end to end.
    hook.settings = type(hook.settings)(
        **{**hook.settings.__dict__, "url": zendrive_emulator.url.rstrip("/")}
    )

    with pytest.raises(ZenDriveRequestError, match="301") as info:
        hook.get_stats()

    assert info.value.status_code == 301
    assert [r.status for r in zendrive_emulator.requests] == [301]


# --- errors and retries ----------------------------------------------------------------------------------


def test_wrong_secret_is_401_and_not_retried(
    make_hook: MakeHook, zendrive_emulator: ZenDriveEmulator
) -> None:
    with pytest.raises(ZenDriveAuthError, match="credentials") as info:
        make_hook(secret_key="wrong-secret").get_stats()
    assert info.value.status_code == 401
    assert len(zendrive_emulator.requests) == 1


def test_suspended_service_is_403_and_not_retried(
    make_hook: MakeHook, zendrive_emulator: ZenDriveEmulator
) -> None:
    zendrive_emulator.suspend(DEMO_ACCESS_KEY)
    with pytest.raises(ZenDriveServiceInactiveError, match="ZenDriveServiceActiveSensor") as info:
        make_hook().get_stats()
    assert info.value.status_code == 403
    assert len(zendrive_emulator.requests) == 1


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (400, "date range too large (max 366 days)"),
        (400, "access_key and secret_key are required"),
        (404, "Not found"),
        (405, "POST is required"),
        (409, "Conflict"),
    ],
)
def test_client_errors_carry_the_server_message_and_are_not_retried(
    make_hook: MakeHook, zendrive_emulator: ZenDriveEmulator, status: int, message: str
) -> None:
    body = json.dumps({"status": "error", "message": message}).encode()
    zendrive_emulator.inject(Fault(status=status, body=body))

    hook = make_hook()
    with pytest.raises(ZenDriveRequestError) as info:
        hook.get_stats()

    assert info.value.status_code == status
    assert info.value.server_message == message
    assert message in str(info.value)
    assert len(zendrive_emulator.requests) == 1
    assert hook.waits == []


def test_unknown_path_is_a_404_from_the_server(
    zendrive_emulator: ZenDriveEmulator, set_connection: Callable[..., str]
) -> None:
    url = f"https://127.0.0.1:{zendrive_emulator.port}/other-api/"
    with pytest.raises(ZenDriveRequestError, match="404") as info:
        hook_for_url(set_connection, url, zendrive_emulator.ca_path).get_stats()
    assert info.value.status_code == 404
    assert len(zendrive_emulator.requests) == 1


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_transient_server_errors_are_retried_with_backoff(
    make_hook: MakeHook, zendrive_emulator: ZenDriveEmulator, status: int, capfd: pytest.CaptureFixture[str]
) -> None:
    body = json.dumps({"status": "error", "message": "upstream-body-7d3f"}).encode()
    zendrive_emulator.inject(Fault(status=status, body=body), Fault(status=status, body=body))
    hook = make_hook()

    stats = hook.get_stats("2026-01-01", "2026-01-31")

    assert stats["from"] == "2026-01-01"
    assert [r.status for r in zendrive_emulator.requests] == [status, status, 200]
    assert len(hook.waits) == 2
    assert 0 <= hook.waits[0] <= 1.0
    assert 0 <= hook.waits[1] <= 2.0
    # Hook logs go through Airflow's structured logger, which writes to the task log (here: stdout).
    out = capfd.readouterr().out
    retry_lines = [line for line in out.splitlines() if "retry" in line]
    assert len(retry_lines) == 2
    assert all("warning" in line.lower() for line in retry_lines)
    # One line per retry, with the status and the wait actually taken; never the response body.
    for number, (line, wait) in enumerate(zip(retry_lines, hook.waits, strict=True), start=1):
        assert f"HTTP {status}; retry {number}/6" in line
        assert f"{wait:.1f} s" in line
    assert "upstream-body-7d3f" not in out


def test_retries_are_bounded_by_max_retries(make_hook: MakeHook, zendrive_emulator: ZenDriveEmulator) -> None:
    zendrive_emulator.inject(*[Fault(status=503)] * 10)
    hook = make_hook(max_retries="3")

    with pytest.raises(ZenDriveUnavailableError, match="4 attempts") as info:
        hook.get_stats()

    assert info.value.status_code == 503
    assert len(zendrive_emulator.requests) == 4
    assert len(hook.waits) == 3


def test_max_retries_zero_means_one_attempt(make_hook: MakeHook, zendrive_emulator: ZenDriveEmulator) -> None:
    zendrive_emulator.inject(Fault(status=503))
    with pytest.raises(ZenDriveUnavailableError):
        make_hook(max_retries="0").get_stats()
    assert len(zendrive_emulator.requests) == 1


def test_backoff_grows_exponentially_with_full_jitter_and_a_cap(
    make_hook: MakeHook, zendrive_emulator: ZenDriveEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    zendrive_emulator.inject(*[Fault(status=503)] * 9)
    hook = make_hook(max_retries="8")
    top_of_each_jitter_range = type(hook.backoff)(rng=lambda: 0.999999)
    monkeypatch.setattr(hook, "backoff", top_of_each_jitter_range)

    with pytest.raises(ZenDriveUnavailableError):
        hook.get_stats()

    expected = [1, 2, 4, 8, 16, 32, 60, 60]
    assert hook.waits == pytest.approx([c * 0.999999 for c in expected])


def test_429_waits_retry_after_in_seconds(make_hook: MakeHook, zendrive_emulator: ZenDriveEmulator) -> None:
    zendrive_emulator.inject(Fault.rate_limited("7"), Fault.rate_limited("7"))
    hook = make_hook()

    hook.get_stats()

    # Retry-After is a minimum: the key is closed until then (for every caller in the process), and its release
    # adds a random phase of up to 1 s, so processes throttled in the same instant come back apart.
    assert hook.waits[0] == pytest.approx(7.0, abs=0.1)
    assert 14.0 <= sum(hook.waits) <= 15.1  # two retries
    assert [r.status for r in zendrive_emulator.requests] == [429, 429, 200]


def test_429_waits_retry_after_as_http_date(make_hook: MakeHook, zendrive_emulator: ZenDriveEmulator) -> None:
    when = email.utils.formatdate(time.time() + 20, usegmt=True)
    zendrive_emulator.inject(Fault.rate_limited(when))
    hook = make_hook()

    hook.get_stats()

    wait = sum(hook.waits)  # until the date, then the release's phase
    # The date is 19-20 s ahead when sent (whole seconds), plus up to 1 s of phase; the low end leaves a few
    # seconds for a loaded machine. A fallback to backoff would wait at most 1 s.
    assert 15 <= wait <= 21


def test_429_without_retry_after_backs_off(make_hook: MakeHook, zendrive_emulator: ZenDriveEmulator) -> None:
    zendrive_emulator.inject(Fault.rate_limited(None), Fault.rate_limited(None))
    hook = make_hook()

    hook.get_stats()

    assert len(hook.waits) == 2
    assert 0 <= hook.waits[0] <= 1
    assert 0 <= hook.waits[1] <= 2


def test_429_after_all_retries_carries_retry_after(
    make_hook: MakeHook, zendrive_emulator: ZenDriveEmulator
) -> None:
    zendrive_emulator.inject(*[Fault.rate_limited("5")] * 3)
    with pytest.raises(ZenDriveRateLimitError) as info:
        make_hook(max_retries="2").get_stats()
    assert info.value.retry_after == 5.0
    assert info.value.status_code == 429
    assert len(zendrive_emulator.requests) == 3


def test_429_with_a_very_long_retry_after_raises_at_once(
    make_hook: MakeHook, zendrive_emulator: ZenDriveEmulator
) -> None:
    zendrive_emulator.inject(Fault.rate_limited("3600"))
    hook = make_hook()
    with pytest.raises(ZenDriveRateLimitError) as info:
        hook.get_stats()
    assert info.value.retry_after == 3600.0
    assert hook.waits == []


def test_real_rate_limit_is_waited_out(
    zendrive_emulator: ZenDriveEmulator, set_connection: Callable[..., str]
) -> None:
    # A dedicated emulator with a real token bucket: 2 requests/s, burst 1, Retry-After in seconds.
    with ZenDriveEmulator(rate_limit=2, burst=1) as limited:
        conn_id = set_connection(limited.connection_uri())
        hook = ZenDriveStatsHook(zendrive_conn_id=conn_id)
        started = time.monotonic()
        for _ in range(3):
            hook.get_stats("2026-01-01", "2026-01-01")
        elapsed = time.monotonic() - started
        statuses = [r.status for r in limited.requests]
    assert statuses.count(200) == 3
    assert 429 in statuses
    assert elapsed >= 0.9  # the waits really happened


def test_timeouts_are_retried_then_reported(make_hook: MakeHook, zendrive_emulator: ZenDriveEmulator) -> None:
    zendrive_emulator.inject(*[Fault(status=200, delay=1.0)] * 2)
    hook = make_hook(timeout="0.3", max_retries="1")

    with pytest.raises(ZenDriveUnavailableError, match="timeout") as info:
        hook.get_stats()

    assert info.value.status_code is None
    assert len(zendrive_emulator.requests) == 2
    assert len(hook.waits) == 1


def test_a_timeout_then_success(make_hook: MakeHook, zendrive_emulator: ZenDriveEmulator) -> None:
    zendrive_emulator.inject(Fault(status=200, delay=1.0))
    stats = make_hook(timeout="0.3").get_stats("2026-01-01", "2026-01-02")
    assert stats["to"] == "2026-01-02"


def test_dropped_connections_are_retried(make_hook: MakeHook, zendrive_emulator: ZenDriveEmulator) -> None:
    zendrive_emulator.inject(Fault(drop=True))
    hook = make_hook()
    assert hook.get_stats("2026-01-01", "2026-01-02")["from"] == "2026-01-01"
    assert len(hook.waits) == 1


def test_connection_refused_is_unavailable(
    set_connection: Callable[..., str], zendrive_emulator: ZenDriveEmulator
) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    uri = zendrive_emulator.connection_uri(max_retries="1").replace(
        f":{zendrive_emulator.port}", f":{port}", 1
    )
    hook = ZenDriveStatsHook(zendrive_conn_id=set_connection(uri))
    waits: list[float] = []
    hook._sleep = waits.append
    with pytest.raises(ZenDriveUnavailableError, match="connection error"):
        hook.get_stats()
    assert len(waits) == 1


@pytest.mark.parametrize("kind", ["not-json", "truncated", "missing-field", "wrong-type", "status-error"])
def test_malformed_bodies_are_response_errors(
    make_hook: MakeHook, zendrive_emulator: ZenDriveEmulator, kind: MalformedKind
) -> None:
    zendrive_emulator.inject(Fault.malformed(kind))
    hook = make_hook()
    with pytest.raises(ZenDriveResponseError):
        hook.get_stats()
    assert len(zendrive_emulator.requests) == 1
    assert hook.waits == []


def test_extra_fields_are_tolerated_and_dropped(
    make_hook: MakeHook, zendrive_emulator: ZenDriveEmulator
) -> None:
    payload = zendrive_emulator.expected_stats(datetime.date(2026, 1, 1), datetime.date(2026, 1, 3))
    extended = {**payload, "currency": "EUR", "summary": {**payload["summary"], "peak_rps": 12}}
    extended["daily"] = [{**day, "region": "eu"} for day in payload["daily"]]
    zendrive_emulator.inject(Fault(status=200, body=json.dumps(extended).encode()))

    assert make_hook().get_stats("2026-01-01", "2026-01-03") == payload


# --- TLS verification --------------------------------------------------------------------------------------


def test_verify_ca_bundle_wins_over_requests_ca_bundle(
    make_hook: MakeHook, zendrive_emulator: ZenDriveEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    monkeypatch.setenv("CURL_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    assert make_hook().get_stats("2026-01-01", "2026-01-01")["from"] == "2026-01-01"


def test_system_trust_rejects_the_emulator_and_is_not_retried(
    zendrive_emulator: ZenDriveEmulator, set_connection: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The environment trusts the emulator's CA, but the connection says to use the system bundle: it wins.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", zendrive_emulator.ca_path)
    uri = zendrive_emulator.connection_uri()
    uri = uri.split("?", 1)[0] + "?verify=%2Fetc%2Fssl%2Fcerts%2Fca-certificates.crt"
    hook = ZenDriveStatsHook(zendrive_conn_id=set_connection(uri))
    hook._sleep = lambda _: pytest.fail("a TLS failure must not be retried")

    with pytest.raises(ZenDriveTLSError, match="verify"):
        hook.get_stats()


def test_verify_false_skips_verification(
    make_hook: MakeHook, zendrive_emulator: ZenDriveEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    hook = make_hook(verify="false")
    hook.get_stats("2026-01-01", "2026-01-01")  # the emulator's CA is not trusted: only no verification works

    (warning,) = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert "TLS verification is off" in warning


def test_a_ca_bundle_that_is_not_a_certificate_fails_before_any_request(
    zendrive_emulator: ZenDriveEmulator, set_connection: Callable[..., str], tmp_path: pathlib.Path
) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("these are not the certificates you are looking for\n")
    uri = (
        zendrive_emulator.connection_uri().split("?", 1)[0] + "?verify=" + urllib.parse.quote(str(notes), "")
    )
    hook = ZenDriveStatsHook(zendrive_conn_id=set_connection(uri))

    with pytest.raises(ZenDriveTLSError, match="holds no CA certificate"):
        hook.get_stats()
    ok, message = hook.test_connection()
    assert not ok
    assert "PEM" in message
    assert "this connection" in message.lower()
    assert zendrive_emulator.requests == zendrive_emulator.http_requests == []
    assert zendrive_emulator.connections == 0


# --- connection settings -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({"timeout": "soon"}, "timeout"),
        ({"timeout": "0"}, "timeout"),
        ({"max_retries": "-1"}, "max_retries"),
        ({"max_retries": "two"}, "max_retries"),
        ({"verify": "/no/such/bundle.pem"}, "verify"),
    ],
)
def test_bad_extras_fail_before_any_request(
    zendrive_emulator: ZenDriveEmulator, set_connection: Callable[..., str], extra: dict[str, str], named: str
) -> None:
    conn = {"conn_type": "zendrive", "login": "a", "password": "b", "host": "127.0.0.1", "extra": extra}
    with pytest.raises(ZenDriveInputError, match=named):
        ZenDriveStatsHook(zendrive_conn_id=set_connection(json.dumps(conn))).get_stats()
    assert zendrive_emulator.requests == []


@pytest.mark.parametrize(("login", "password", "named"), [("", "s", "access key"), ("a", "", "secret key")])
def test_missing_keys_fail_before_any_request(
    set_connection: Callable[..., str], login: str, password: str, named: str
) -> None:
    conn = {"conn_type": "zendrive", "login": login, "password": password}
    with pytest.raises(ZenDriveInputError, match=named):
        ZenDriveStatsHook(zendrive_conn_id=set_connection(json.dumps(conn))).get_stats()


def test_defaults_and_documented_endpoint(set_connection: Callable[..., str]) -> None:
    conn = {"conn_type": "zendrive", "login": "a", "password": "b"}
    settings = ZenDriveStatsHook(zendrive_conn_id=set_connection(json.dumps(conn))).settings
    assert settings.url == "https://dashboard.clearstreamer.com/zendrive-api/cdn-stats/"
    assert (settings.timeout, settings.verify, settings.max_retries) == (30.0, True, 6)


def test_hook_attributes() -> None:
    assert ZenDriveStatsHook.conn_name_attr == "zendrive_conn_id"
    assert ZenDriveStatsHook.default_conn_name == "zendrive_default"
    assert ZenDriveStatsHook.conn_type == "zendrive"
    assert ZenDriveStatsHook.hook_name == "ZenDRIVE"
    assert ZenDriveStatsHook().zendrive_conn_id == "zendrive_default"


# --- is_service_active and test_connection ----------------------------------------------------------------


def test_is_service_active(make_hook: MakeHook, zendrive_emulator: ZenDriveEmulator) -> None:
    hook = make_hook()
    assert hook.is_service_active() is True
    zendrive_emulator.suspend(DEMO_ACCESS_KEY)
    assert hook.is_service_active() is False
    assert windows_sent(zendrive_emulator)[0] == (TODAY.isoformat(), TODAY.isoformat())


def test_is_service_active_raises_on_anything_else(
    make_hook: MakeHook, zendrive_emulator: ZenDriveEmulator
) -> None:
    with pytest.raises(ZenDriveAuthError):
        make_hook(secret_key="nope").is_service_active()
    zendrive_emulator.inject(Fault(status=400))
    with pytest.raises(ZenDriveRequestError):
        make_hook().is_service_active()


def test_test_connection_messages(make_hook: MakeHook, zendrive_emulator: ZenDriveEmulator) -> None:
    assert make_hook().test_connection() == (
        True,
        f"Connection works: the keys were accepted at {zendrive_emulator.url} and the service is active.",
    )
    ok, message = make_hook(secret_key="nope").test_connection()
    assert not ok
    assert "401" in message
    assert "secret key" in message
    assert "this connection" in message
    assert "zendrive_test" not in message  # Airflow tests a connection under a temporary id: never name it
    zendrive_emulator.suspend(DEMO_ACCESS_KEY)
    ok, message = make_hook().test_connection()
    assert not ok  # every pull would fail with 403: the Test button must not show green
    assert "keys were accepted" in message
    assert "not active" in message


def test_all_errors_are_zendrive_errors() -> None:
    for cls in (
        ZenDriveAuthError,
        ZenDriveInputError,
        ZenDriveRateLimitError,
        ZenDriveRequestError,
        ZenDriveResponseError,
        ZenDriveServiceInactiveError,
        ZenDriveTLSError,
        ZenDriveUnavailableError,
    ):
        assert issubclass(cls, ZenDriveError)


# --- the answer must be for the window asked for ------------------------------------------------------------


def test_an_answer_for_another_window_is_refused(
    make_hook: MakeHook, zendrive_emulator: ZenDriveEmulator
) -> None:
    # A server that clamps the window would otherwise make the missing day look like a day without traffic.
    clamped = zendrive_emulator.expected_stats(datetime.date(2026, 1, 2), datetime.date(2026, 1, 31))
    zendrive_emulator.inject(Fault(status=200, body=json.dumps(clamped).encode()))
    hook = make_hook()

    with pytest.raises(ZenDriveResponseError, match=re.escape("answered for 2026-01-02..2026-01-31")) as info:
        hook.get_stats("2026-01-01", "2026-01-31")

    assert info.value.status_code == 200
    assert len(zendrive_emulator.requests) == 1
    assert hook.waits == []


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda daily: daily[::-1], "oldest first"),
        (lambda daily: [daily[0], *daily], "oldest first"),
        (lambda daily: [{**daily[0], "date": "2025-12-31"}, *daily[1:]], "outside its window"),
    ],
    ids=["reversed", "repeated day", "day outside the window"],
)
def test_daily_entries_must_be_in_the_window_oldest_first_once(
    make_hook: MakeHook,
    zendrive_emulator: ZenDriveEmulator,
    change: Callable[[list[Any]], list[Any]],
    words: str,
) -> None:
    stats = zendrive_emulator.expected_stats(datetime.date(2026, 1, 1), datetime.date(2026, 1, 5))
    assert len(stats["daily"]) >= 2  # the changes below need two days with traffic
    broken = {**stats, "daily": change(stats["daily"])}
    zendrive_emulator.inject(Fault(status=200, body=json.dumps(broken).encode()))

    with pytest.raises(ZenDriveResponseError, match=words):
        make_hook().get_stats("2026-01-01", "2026-01-05")


# --- endpoint URLs that must never be used -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "port", "words"),
    [
        ("http:/127.0.0.1/zendrive-api/cdn-stats/", None, "malformed"),
        ("https:/127.0.0.1/zendrive-api/cdn-stats/", None, "malformed"),
        ("127.0.0.1", 99999, "between 1 and 65535"),
        ("127.0.0.1", "0", "between 1 and 65535"),  # JSON 0 as a number never reaches us: Airflow drops it
        ("https://127.0.0.1:0/zendrive-api/cdn-stats/", None, "between 1 and 65535"),
        ("a..b", None, "no valid hostname"),
        ("exa mple.com", None, "whitespace or control characters"),
        ("https://ak:sk@127.0.0.1/", None, "must not contain credentials"),
        ("https://127.0.0.1/zendrive-api/cdn-stats/?x=1", None, "query string"),
        ("ftp://127.0.0.1/", None, "not supported"),
    ],
)
def test_bad_endpoint_urls_fail_before_any_request(
    zendrive_emulator: ZenDriveEmulator,
    set_connection: Callable[..., str],
    host: str,
    port: int | str | None,
    words: str,
) -> None:
    conn = {"conn_type": "zendrive", "login": "a", "password": "b", "host": host, "port": port}
    with pytest.raises(ZenDriveInputError, match=words):
        ZenDriveStatsHook(zendrive_conn_id=set_connection(json.dumps(conn))).get_stats()
    assert zendrive_emulator.requests == zendrive_emulator.http_requests == []
    assert zendrive_emulator.connections == 0


def test_a_port_field_of_0_in_a_connection_uri_fails_before_any_request(
    zendrive_emulator: ZenDriveEmulator, set_connection: Callable[..., str]
) -> None:
    hook = ZenDriveStatsHook(zendrive_conn_id=set_connection("zendrive://a:bbbbbb@127.0.0.1:0"))
    with pytest.raises(ZenDriveInputError, match="port 0 is not between 1 and 65535"):
        hook.get_stats()
    assert zendrive_emulator.requests == zendrive_emulator.http_requests == []
    assert zendrive_emulator.connections == 0


@pytest.mark.parametrize(
    ("host", "port", "url"),
    [
        ("h.example", 8443, "https://h.example:8443/zendrive-api/cdn-stats/"),
        ("h.example:8443", None, "https://h.example:8443/zendrive-api/cdn-stats/"),
        ("HTTPS://H.example/custom/path", None, "https://H.example/custom/path/"),
        ("https://[::1]:8443/", None, "https://[::1]:8443/zendrive-api/cdn-stats/"),
        ("h.example.", None, "https://h.example./zendrive-api/cdn-stats/"),
    ],
)
def test_endpoint_url_forms(
    set_connection: Callable[..., str], host: str, port: int | None, url: str
) -> None:
    conn = {"conn_type": "zendrive", "login": "a", "password": "b", "host": host, "port": port}
    assert ZenDriveStatsHook(zendrive_conn_id=set_connection(json.dumps(conn))).settings.url == url


def test_get_conn_is_a_client_configured_like_the_hooks_own(
    make_hook: MakeHook, zendrive_emulator: ZenDriveEmulator
) -> None:
    hook = make_hook()
    with hook.get_conn() as client:
        response = client.post(hook.settings.url, content=hook.settings.encode_body(None))
        redirect = client.post(hook.settings.url.rstrip("/"), content=b"{}")

    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert redirect.status_code == 301  # never followed: it would drop the body
    (sent, _) = zendrive_emulator.requests
    assert sent.headers["User-Agent"].startswith("airflow-provider-zendrive/")
    assert sent.headers["Accept-Encoding"] == "identity"
