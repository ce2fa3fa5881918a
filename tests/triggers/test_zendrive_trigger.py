"""ZenDriveServiceActiveTrigger against the HTTPS emulator, run with plain ``asyncio.run``."""

from __future__ import annotations

import asyncio
import datetime
import itertools
import json
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import pytest
from zendrive_expected import warnings_of

from airflow_provider_zendrive.testing import DEMO_ACCESS_KEY, Fault, ZenDriveEmulator
from airflow_provider_zendrive.triggers.zendrive import ZenDriveServiceActiveTrigger

CLASSPATH = "airflow_provider_zendrive.triggers.zendrive.ZenDriveServiceActiveTrigger"
#: A secret that appears nowhere else, so finding it anywhere is a leak.
UNIQUE_SECRET = "s3cr3t-Trigger-7f1c9e-Qz"
T = TypeVar("T")


def run_loop(main: Coroutine[Any, Any, T], grace: float = 0.1) -> T:
    """
    ``asyncio.run``, then ``grace`` seconds more for closed TLS transports to finish closing, as they do in a
    triggerer's long-lived loop (a timed-out TLS connection waits for the server's close_notify).
    """

    async def wrapper() -> T:
        try:
            return await main
        finally:
            await asyncio.sleep(grace)

    return asyncio.run(wrapper())


def run_trigger(
    trigger: ZenDriveServiceActiveTrigger, limit: float = 15.0, grace: float = 0.1
) -> list[dict[str, Any]]:
    """Run the trigger to completion (or until ``limit`` seconds) and return every event's payload."""

    async def collect() -> list[dict[str, Any]]:
        return [event.payload async for event in trigger.run()]

    return run_loop(asyncio.wait_for(collect(), limit), grace)


def run_for(trigger: ZenDriveServiceActiveTrigger, seconds: float) -> list[dict[str, Any]]:
    """Run the trigger for ``seconds``, then cancel it as the triggerer would; return events seen so far."""
    events: list[dict[str, Any]] = []

    async def collect() -> None:
        async for event in trigger.run():
            events.append(event.payload)

    async def main() -> None:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(collect(), seconds)

    run_loop(main())
    return events


def gaps(emulator: ZenDriveEmulator) -> list[float]:
    times = [request.at for request in emulator.requests]
    return [later - earlier for earlier, later in itertools.pairwise(times)]


@pytest.fixture
def trigger_for(
    zendrive_emulator: ZenDriveEmulator, set_connection: Callable[..., str]
) -> Callable[..., ZenDriveServiceActiveTrigger]:
    """``trigger_for(poke_interval, secret_key=..., **extra)``: a trigger on a fresh emulator connection."""

    def _make(
        poke_interval: float = 0.2,
        *,
        access_key: str = DEMO_ACCESS_KEY,
        secret_key: str | None = None,
        **extra: str,
    ) -> ZenDriveServiceActiveTrigger:
        if secret_key is None:
            secret_key = zendrive_emulator.account(access_key).secret_key
        conn_id = set_connection(
            zendrive_emulator.connection_uri(access_key, secret_key, bare_host=True, **extra)
        )
        return ZenDriveServiceActiveTrigger(zendrive_conn_id=conn_id, poke_interval=poke_interval)

    return _make


def test_suspended_for_n_polls_gives_one_active_event_after_n_plus_1_requests(
    zendrive_emulator: ZenDriveEmulator, trigger_for: Callable[..., ZenDriveServiceActiveTrigger]
) -> None:
    zendrive_emulator.suspend(DEMO_ACCESS_KEY, requests=3)

    events = run_trigger(trigger_for(0.2))

    assert events == [{"status": "active"}]
    assert [r.status for r in zendrive_emulator.requests] == [403, 403, 403, 200]
    assert all(gap >= 0.19 for gap in gaps(zendrive_emulator)), gaps(zendrive_emulator)


def test_each_poll_asks_for_today_utc_over_https_without_following_redirects(
    zendrive_emulator: ZenDriveEmulator, trigger_for: Callable[..., ZenDriveServiceActiveTrigger]
) -> None:
    today = datetime.datetime.now(datetime.UTC).date().isoformat()

    assert run_trigger(trigger_for()) == [{"status": "active"}]

    (request,) = zendrive_emulator.requests
    assert (request.method, request.from_date, request.to_date) == ("POST", today, today)
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["User-Agent"].startswith("airflow-provider-zendrive/")


def test_redirect_is_a_final_error_not_followed(
    zendrive_emulator: ZenDriveEmulator, trigger_for: Callable[..., ZenDriveServiceActiveTrigger]
) -> None:
    zendrive_emulator.inject(Fault(status=302, headers={"Location": zendrive_emulator.url}))

    events = run_trigger(trigger_for())

    assert len(events) == 1
    assert events[0]["status"] == "error"
    assert "302" in events[0]["message"]
    assert len(zendrive_emulator.requests) == 1


def test_bad_credentials_give_one_error_event_at_once(
    zendrive_emulator: ZenDriveEmulator,
    trigger_for: Callable[..., ZenDriveServiceActiveTrigger],
    logs: list[dict[str, Any]],
    capfd: pytest.CaptureFixture[str],
) -> None:
    # A poke_interval far beyond run_trigger's 15 s limit: sleeping even once before failing is a TimeoutError.
    events = run_trigger(trigger_for(3600.0, secret_key=UNIQUE_SECRET))

    assert len(events) == 1
    assert events[0]["status"] == "error"
    assert "401" in events[0]["message"]
    assert [r.status for r in zendrive_emulator.requests] == [401]
    out, err = capfd.readouterr()
    assert UNIQUE_SECRET not in json.dumps(events) + out + err + json.dumps(logs, default=str)


def test_bad_request_gives_one_error_event(
    zendrive_emulator: ZenDriveEmulator, trigger_for: Callable[..., ZenDriveServiceActiveTrigger]
) -> None:
    zendrive_emulator.inject(Fault(status=400))

    events = run_trigger(trigger_for())

    assert [e["status"] for e in events] == ["error"]
    assert "400" in events[0]["message"]
    assert len(zendrive_emulator.requests) == 1


def test_malformed_200_gives_one_error_event(
    zendrive_emulator: ZenDriveEmulator, trigger_for: Callable[..., ZenDriveServiceActiveTrigger]
) -> None:
    zendrive_emulator.inject(Fault.malformed("truncated"))

    events = run_trigger(trigger_for())

    assert [e["status"] for e in events] == ["error"]
    assert "not valid JSON" in events[0]["message"]


def test_rate_limit_waits_out_retry_after_then_reports_active(
    zendrive_emulator: ZenDriveEmulator,
    trigger_for: Callable[..., ZenDriveServiceActiveTrigger],
    logs: list[dict[str, Any]],
) -> None:
    zendrive_emulator.inject(Fault.rate_limited("2"))

    events = run_trigger(trigger_for(0.1))

    assert events == [{"status": "active"}]
    assert [r.status for r in zendrive_emulator.requests] == [429, 200]
    assert gaps(zendrive_emulator)[0] >= 1.95  # Retry-After, not the 0.1 s poke_interval
    (warning,) = warnings_of(logs)
    assert "429" in warning


def test_poke_interval_wins_over_a_shorter_retry_after(
    zendrive_emulator: ZenDriveEmulator, trigger_for: Callable[..., ZenDriveServiceActiveTrigger]
) -> None:
    zendrive_emulator.inject(Fault.rate_limited("0"))

    assert run_trigger(trigger_for(0.5)) == [{"status": "active"}]

    assert gaps(zendrive_emulator)[0] >= 0.45


def test_unavailable_and_timeouts_keep_polling_with_one_warning_each(
    zendrive_emulator: ZenDriveEmulator,
    trigger_for: Callable[..., ZenDriveServiceActiveTrigger],
    logs: list[dict[str, Any]],
) -> None:
    zendrive_emulator.inject(Fault(status=503), Fault.slow(1.0), Fault(drop=True))

    events = run_trigger(trigger_for(0.2, timeout="0.5"), grace=1.0)

    assert events == [{"status": "active"}]
    assert [r.status for r in zendrive_emulator.requests] == [503, 200, 0, 200]  # the slow 200 timed out
    found = warnings_of(logs)
    assert len(found) == 3, found
    assert "503" in found[0]
    assert "timeout" in found[1]
    assert "connection error" in found[2]
    assert all(gap >= 0.19 for gap in gaps(zendrive_emulator)), gaps(zendrive_emulator)


@pytest.mark.parametrize(
    "outcome",
    [
        pytest.param("suspended", id="403 forever"),
        pytest.param(Fault(status=503), id="503 forever"),
        pytest.param(Fault.rate_limited("0"), id="429 Retry-After 0 forever"),
        pytest.param(Fault(drop=True), id="connection dropped forever"),
    ],
)
def test_request_count_is_bounded_by_time_over_poke_interval(
    outcome: str | Fault,
    zendrive_emulator: ZenDriveEmulator,
    trigger_for: Callable[..., ZenDriveServiceActiveTrigger],
) -> None:
    if isinstance(outcome, Fault):
        zendrive_emulator.inject(*[outcome] * 100)
    else:
        zendrive_emulator.suspend(DEMO_ACCESS_KEY)
    duration, poke_interval = 1.2, 0.3

    events = run_for(trigger_for(poke_interval), duration)

    assert events == []
    count = len(zendrive_emulator.requests)
    assert 2 <= count <= duration / poke_interval + 1, count


def test_run_does_not_block_the_event_loop(
    zendrive_emulator: ZenDriveEmulator, trigger_for: Callable[..., ZenDriveServiceActiveTrigger]
) -> None:
    zendrive_emulator.inject(Fault.slow(1.0))
    trigger = trigger_for(0.1)
    ticks: list[float] = []

    async def ticker(stop: asyncio.Event) -> None:
        while not stop.is_set():
            ticks.append(time.monotonic())
            await asyncio.sleep(0.02)

    async def main() -> list[dict[str, Any]]:
        stop = asyncio.Event()
        ticking = asyncio.create_task(ticker(stop))
        events = [event.payload async for event in trigger.run()]
        stop.set()
        await ticking
        return events

    assert run_loop(main()) == [{"status": "active"}]
    assert ticks[-1] - ticks[0] >= 0.9  # the slow answer took a second...
    # ...and the loop kept ticking (every 0.02 s; a blocking call would stall it for the whole second).
    assert max(b - a for a, b in itertools.pairwise(ticks)) < 0.5


def test_serialize_then_construct_then_run(
    zendrive_emulator: ZenDriveEmulator, set_connection: Callable[..., str]
) -> None:
    from airflow.sdk.module_loading import import_string  # type: ignore[attr-defined]  # re-exported, not in __all__

    conn_id = set_connection(zendrive_emulator.connection_uri(), conn_id="zendrive_roundtrip")
    zendrive_emulator.suspend(DEMO_ACCESS_KEY, requests=1)

    classpath, kwargs = ZenDriveServiceActiveTrigger(zendrive_conn_id=conn_id, poke_interval=0.2).serialize()
    rebuilt = import_string(classpath)(**json.loads(json.dumps(kwargs)))

    assert classpath == CLASSPATH
    assert kwargs == {"zendrive_conn_id": "zendrive_roundtrip", "poke_interval": 0.2, "first_poll_after": 0.0}
    assert rebuilt.serialize() == (classpath, kwargs)
    assert run_trigger(rebuilt) == [{"status": "active"}]
    assert [r.status for r in zendrive_emulator.requests] == [403, 200]


def test_serialization_survives_airflow_serde(zendrive_emulator: ZenDriveEmulator) -> None:
    from airflow.sdk.serde import deserialize, serialize

    classpath, kwargs = ZenDriveServiceActiveTrigger("zendrive_default", 60).serialize()

    assert deserialize(serialize(kwargs)) == {
        "zendrive_conn_id": "zendrive_default",
        "poke_interval": 60.0,
        "first_poll_after": 0.0,
    }
    assert classpath == CLASSPATH


def test_undefined_connection_gives_an_error_event(zendrive_emulator: ZenDriveEmulator) -> None:
    events = run_trigger(ZenDriveServiceActiveTrigger(zendrive_conn_id="zendrive_nowhere", poke_interval=0.1))

    assert [e["status"] for e in events] == ["error"]
    assert "zendrive_nowhere" in events[0]["message"]
    assert zendrive_emulator.requests == []


def test_plain_http_endpoint_is_refused_before_sending(
    zendrive_emulator: ZenDriveEmulator, set_connection: Callable[..., str]
) -> None:
    conn_id = set_connection(
        json.dumps(
            {
                "conn_type": "zendrive",
                "host": zendrive_emulator.http_url,
                "login": DEMO_ACCESS_KEY,
                "password": UNIQUE_SECRET,
            }
        )
    )

    events = run_trigger(ZenDriveServiceActiveTrigger(zendrive_conn_id=conn_id, poke_interval=0.1))

    assert [e["status"] for e in events] == ["error"]
    assert "HTTPS" in events[0]["message"]
    assert UNIQUE_SECRET not in events[0]["message"]
    assert zendrive_emulator.requests == zendrive_emulator.http_requests == []


def test_verify_true_trusts_what_the_hook_trusts(
    zendrive_emulator: ZenDriveEmulator,
    trigger_for: Callable[..., ZenDriveServiceActiveTrigger],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # verify=true means REQUESTS_CA_BUNDLE for the hook's requests; the trigger's aiohttp must agree, or a
    # service behind a corporate CA would be "active" to a poking sensor and a TLS error to a deferred one.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", zendrive_emulator.ca_path)

    events = run_trigger(trigger_for(3600.0, verify="true"))

    assert events == [{"status": "active"}]


def test_tls_verification_failure_is_final(
    zendrive_emulator: ZenDriveEmulator, trigger_for: Callable[..., ZenDriveServiceActiveTrigger]
) -> None:
    # The default trust store lacks the emulator's CA. A poke_interval far beyond run_trigger's 15 s limit:
    # waiting to try again instead of failing at once is a TimeoutError.
    events = run_trigger(trigger_for(3600.0, verify="true"))

    assert [e["status"] for e in events] == ["error"]
    assert "failed verification" in events[0]["message"]
    assert "verify" in events[0]["message"]
    assert zendrive_emulator.requests == []


def test_verify_false_skips_tls_verification(
    zendrive_emulator: ZenDriveEmulator, trigger_for: Callable[..., ZenDriveServiceActiveTrigger]
) -> None:
    assert run_trigger(trigger_for(verify="false")) == [{"status": "active"}]
    assert len(zendrive_emulator.requests) == 1


def test_secret_in_server_text_is_redacted_from_events_and_logs(
    zendrive_emulator: ZenDriveEmulator,
    trigger_for: Callable[..., ZenDriveServiceActiveTrigger],
    logs: list[dict[str, Any]],
    capfd: pytest.CaptureFixture[str],
) -> None:
    zendrive_emulator.add_account("AKLEAKTEST", UNIQUE_SECRET, 777)
    echo = json.dumps({"status": "error", "message": f"backend said {UNIQUE_SECRET}"}).encode()
    zendrive_emulator.inject(
        Fault(status=503, body=echo), Fault(status=429, body=echo, headers={"Retry-After": "0"})
    )
    zendrive_emulator.inject(Fault(status=400, body=echo))

    events = run_trigger(trigger_for(0.1, access_key="AKLEAKTEST"))

    assert [e["status"] for e in events] == ["error"]
    assert "backend said ***" in events[0]["message"]
    assert len(warnings_of(logs)) == 2
    out, err = capfd.readouterr()
    assert UNIQUE_SECRET not in json.dumps(events) + out + err + json.dumps(logs, default=str)


@pytest.mark.parametrize("poke_interval", [0, -1.0])
def test_poke_interval_must_be_positive(poke_interval: float) -> None:
    with pytest.raises(ValueError, match="poke_interval"):
        ZenDriveServiceActiveTrigger("zendrive_default", poke_interval)
