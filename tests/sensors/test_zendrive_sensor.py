"""ZenDriveServiceActiveSensor against the HTTPS emulator: poke, reschedule and deferrable paths."""

from __future__ import annotations

import datetime
import itertools
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

import pytest
from airflow.sdk.exceptions import (
    AirflowException,
    AirflowFailException,
    AirflowRescheduleException,
    AirflowSensorTimeout,
    AirflowSkipException,
    TaskDeferred,
)
from zendrive_expected import warnings_of

from airflow_provider_zendrive.sensors.zendrive import ZenDriveServiceActiveSensor
from airflow_provider_zendrive.testing import DEMO_ACCESS_KEY, Fault, ZenDriveEmulator
from airflow_provider_zendrive.triggers.zendrive import ZenDriveServiceActiveTrigger

if TYPE_CHECKING:
    from airflow.sdk.types import RuntimeTaskInstanceProtocol
    from conftest import RecordingHook

UNIQUE_SECRET = "s3cr3t-Sensor-4b2d8a-Wy"


@pytest.fixture
def make_sensor(
    zendrive_emulator: ZenDriveEmulator, set_connection: Callable[..., str]
) -> Callable[..., ZenDriveServiceActiveSensor]:
    """
    ``make_sensor(secret_key=..., extra={...}, **sensor_kwargs)``: a sensor on a fresh emulator connection.

    The hook's in-process retry waits are recorded in ``sensor.hook.waits`` instead of slept.
    """

    def _make(
        *,
        access_key: str = DEMO_ACCESS_KEY,
        secret_key: str | None = None,
        extra: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> ZenDriveServiceActiveSensor:
        secret = secret_key or zendrive_emulator.account(access_key).secret_key
        conn_id = set_connection(
            zendrive_emulator.connection_uri(access_key, secret, bare_host=True, **(extra or {}))
        )
        kwargs.setdefault("task_id", "wait_active")
        kwargs.setdefault("poke_interval", 0.1)
        sensor = ZenDriveServiceActiveSensor(zendrive_conn_id=conn_id, **kwargs)
        waits: list[float] = []
        cast("RecordingHook", sensor.hook).waits = waits
        sensor.hook._sleep = waits.append
        return sensor

    return _make


class FakeTaskInstance:
    """The one thing reschedule mode asks of the task instance: when the first reschedule happened."""

    def get_first_reschedule_date(self, context: Any) -> datetime.datetime | None:
        return None


def statuses(emulator: ZenDriveEmulator) -> list[int]:
    return [request.status for request in emulator.requests]


def hook_waits(sensor: ZenDriveServiceActiveSensor) -> list[float]:
    """The in-process retry waits of a sensor from ``make_sensor``, recorded instead of slept."""
    return cast("RecordingHook", sensor.hook).waits


# -- poke ------------------------------------------------------------------------------------------------------


def test_poke_is_false_while_suspended_then_true(
    zendrive_emulator: ZenDriveEmulator, make_sensor: Callable[..., ZenDriveServiceActiveSensor]
) -> None:
    zendrive_emulator.suspend(DEMO_ACCESS_KEY, requests=3)
    sensor = make_sensor()

    assert [sensor.poke({}) for _ in range(4)] == [False, False, False, True]
    assert statuses(zendrive_emulator) == [403, 403, 403, 200]
    today = datetime.datetime.now(datetime.UTC).date().isoformat()
    assert {(r.from_date, r.to_date) for r in zendrive_emulator.requests} == {(today, today)}


@pytest.mark.parametrize(
    ("fault", "status", "words"),
    [
        pytest.param(None, 401, "credentials", id="401"),
        pytest.param(Fault(status=400), 400, "refused", id="400"),
        pytest.param(Fault(status=404), 404, "endpoint URL", id="404"),
        pytest.param(Fault.malformed("missing-field"), 200, "summary", id="bad 200 body"),
    ],
)
def test_poke_fails_at_once_on_what_waiting_cannot_fix(
    fault: Fault | None,
    status: int,
    words: str,
    zendrive_emulator: ZenDriveEmulator,
    make_sensor: Callable[..., ZenDriveServiceActiveSensor],
) -> None:
    if fault is not None:
        zendrive_emulator.inject(fault)
    sensor = make_sensor(secret_key=UNIQUE_SECRET if fault is None else None)

    with pytest.raises(AirflowFailException, match=words) as caught:
        sensor.poke({})

    assert statuses(zendrive_emulator) == [status]
    assert UNIQUE_SECRET not in str(caught.value) + repr(caught.value)


def test_invalid_connection_fails_at_once_without_a_request(
    zendrive_emulator: ZenDriveEmulator, set_connection: Callable[..., str]
) -> None:
    conn_id = set_connection(json.dumps({"conn_type": "zendrive", "host": "127.0.0.1", "login": "AK"}))
    sensor = ZenDriveServiceActiveSensor(task_id="s", zendrive_conn_id=conn_id)

    with pytest.raises(AirflowFailException, match="no secret key"):
        sensor.poke({})

    assert zendrive_emulator.requests == []


def test_untrusted_certificate_fails_at_once_instead_of_waiting(
    zendrive_emulator: ZenDriveEmulator, make_sensor: Callable[..., ZenDriveServiceActiveSensor]
) -> None:
    # verify=true: the default trust store does not know the emulator's CA. Waiting cannot fix that.
    sensor = make_sensor(extra={"verify": "true"}, timeout=30)

    with pytest.raises(AirflowFailException, match="failed verification"):
        sensor.poke({})

    assert hook_waits(sensor) == []


def test_poke_waits_out_retry_after_through_the_hook(
    zendrive_emulator: ZenDriveEmulator, make_sensor: Callable[..., ZenDriveServiceActiveSensor]
) -> None:
    zendrive_emulator.inject(Fault.rate_limited("2"))
    sensor = make_sensor()

    assert sensor.poke({}) is True

    assert statuses(zendrive_emulator) == [429, 200]
    wait = sum(hook_waits(sensor))  # until the Retry-After, then the release's phase
    assert 2.0 <= wait <= 3.0


def test_poke_mode_sends_nothing_until_a_long_retry_after_has_passed(
    zendrive_emulator: ZenDriveEmulator, make_sensor: Callable[..., ZenDriveServiceActiveSensor]
) -> None:
    # Retry-After 600 is beyond what the hook waits in-process (300 s): the 429 reaches the sensor.
    zendrive_emulator.inject(*[Fault.rate_limited("600")] * 10)
    sensor = make_sensor(poke_interval=0.05, timeout=2, extra={"max_retries": "0"})

    with pytest.raises(AirflowSensorTimeout):
        sensor.execute({})

    assert statuses(zendrive_emulator) == [429]  # one request, then silence until the timeout


def test_reschedule_mode_reschedules_for_a_long_retry_after(
    zendrive_emulator: ZenDriveEmulator, make_sensor: Callable[..., ZenDriveServiceActiveSensor]
) -> None:
    zendrive_emulator.inject(Fault.rate_limited("600"))
    sensor = make_sensor(mode="reschedule", poke_interval=5, timeout=3600, extra={"max_retries": "0"})
    before = datetime.datetime.now(datetime.UTC)

    with pytest.raises(AirflowRescheduleException) as rescheduled:
        sensor.execute({"ti": cast("RuntimeTaskInstanceProtocol", FakeTaskInstance())})

    assert rescheduled.value.reschedule_date >= before + datetime.timedelta(seconds=599)
    assert statuses(zendrive_emulator) == [429]


@pytest.mark.parametrize(
    ("fault", "words"),
    [
        # Retry-After 0: a longer one is waited out without sending (the tests above), so the next poke waits.
        pytest.param(Fault.rate_limited("0"), "429", id="429"),
        pytest.param(Fault(status=503), "503", id="503"),
        pytest.param(Fault(drop=True), "connection error", id="dropped"),
        pytest.param(Fault.slow(1.0), "timeout", id="timeout"),
    ],
)
def test_transient_errors_make_poke_false_with_one_warning(
    fault: Fault,
    words: str,
    zendrive_emulator: ZenDriveEmulator,
    make_sensor: Callable[..., ZenDriveServiceActiveSensor],
    logs: list[dict[str, Any]],
) -> None:
    zendrive_emulator.inject(fault)
    sensor = make_sensor(extra={"max_retries": "0", "timeout": "0.4"})

    assert sensor.poke({}) is False
    (warning,) = warnings_of(logs)
    assert words in warning

    assert sensor.poke({}) is True
    assert len(zendrive_emulator.requests) == 2


def test_secret_is_never_logged_or_raised(
    zendrive_emulator: ZenDriveEmulator,
    make_sensor: Callable[..., ZenDriveServiceActiveSensor],
    logs: list[dict[str, Any]],
) -> None:
    zendrive_emulator.add_account("AKLEAK", UNIQUE_SECRET, 4321)
    echo = json.dumps({"status": "error", "message": f"echo {UNIQUE_SECRET}"}).encode()
    zendrive_emulator.inject(Fault(status=503, body=echo), Fault(status=400, body=echo))
    sensor = make_sensor(access_key="AKLEAK", secret_key=UNIQUE_SECRET, extra={"max_retries": "0"})

    assert sensor.poke({}) is False
    with pytest.raises(AirflowFailException) as caught:
        sensor.poke({})

    assert "echo ***" in str(caught.value)
    assert len(warnings_of(logs)) == 1
    assert UNIQUE_SECRET not in str(caught.value) + json.dumps(logs, default=str)


# -- execute: poke and reschedule modes ------------------------------------------------------------------------


def test_execute_in_poke_mode_waits_poke_interval_between_pokes(
    zendrive_emulator: ZenDriveEmulator, make_sensor: Callable[..., ZenDriveServiceActiveSensor]
) -> None:
    zendrive_emulator.suspend(DEMO_ACCESS_KEY, requests=2)
    sensor = make_sensor(poke_interval=0.2, timeout=30)

    sensor.execute({})

    assert statuses(zendrive_emulator) == [403, 403, 200]
    times = [r.at for r in zendrive_emulator.requests]
    assert all(later - earlier >= 0.19 for earlier, later in itertools.pairwise(times))


def test_execute_times_out_while_suspended(
    zendrive_emulator: ZenDriveEmulator, make_sensor: Callable[..., ZenDriveServiceActiveSensor]
) -> None:
    zendrive_emulator.suspend(DEMO_ACCESS_KEY)
    sensor = make_sensor(poke_interval=0.2, timeout=1.0)

    with pytest.raises(AirflowSensorTimeout):
        sensor.execute({})

    # It poked more than once, and no more often than every poke_interval (timeout / poke_interval + 1).
    assert 2 <= len(zendrive_emulator.requests) <= 6
    assert set(statuses(zendrive_emulator)) == {403}


def test_soft_fail_skips_on_timeout_and_on_bad_keys(
    zendrive_emulator: ZenDriveEmulator, make_sensor: Callable[..., ZenDriveServiceActiveSensor]
) -> None:
    zendrive_emulator.suspend(DEMO_ACCESS_KEY)
    with pytest.raises(AirflowSkipException):
        make_sensor(timeout=0.2, soft_fail=True).execute({})

    with pytest.raises(AirflowSkipException):
        make_sensor(secret_key=UNIQUE_SECRET, soft_fail=True).execute({})
    assert statuses(zendrive_emulator)[-1] == 401


def test_bad_keys_fail_execute_at_once_instead_of_waiting_for_the_timeout(
    zendrive_emulator: ZenDriveEmulator, make_sensor: Callable[..., ZenDriveServiceActiveSensor]
) -> None:
    started = time.monotonic()
    with pytest.raises(AirflowFailException, match="401"):
        make_sensor(secret_key=UNIQUE_SECRET, timeout=30).execute({})

    assert time.monotonic() - started < 20  # not the 30 s timeout; the single request below is the real proof
    assert statuses(zendrive_emulator) == [401]


def test_reschedule_mode_frees_the_worker_until_active(
    zendrive_emulator: ZenDriveEmulator, make_sensor: Callable[..., ZenDriveServiceActiveSensor]
) -> None:
    zendrive_emulator.suspend(DEMO_ACCESS_KEY, requests=1)
    sensor = make_sensor(mode="reschedule", poke_interval=30, timeout=600)
    context: Any = {"ti": FakeTaskInstance()}
    before = datetime.datetime.now(datetime.UTC)

    with pytest.raises(AirflowRescheduleException) as rescheduled:
        sensor.execute(context)
    sensor.execute(context)  # the rescheduled try finds the service active

    assert rescheduled.value.reschedule_date >= before + datetime.timedelta(seconds=29)
    assert statuses(zendrive_emulator) == [403, 200]


# -- deferrable ------------------------------------------------------------------------------------------------


def test_deferrable_defers_to_the_trigger_when_not_active(
    zendrive_emulator: ZenDriveEmulator, make_sensor: Callable[..., ZenDriveServiceActiveSensor]
) -> None:
    zendrive_emulator.suspend(DEMO_ACCESS_KEY)
    sensor = make_sensor(deferrable=True, poke_interval=45, timeout=3600)

    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute({})

    trigger = deferred.value.trigger
    assert isinstance(trigger, ZenDriveServiceActiveTrigger)
    assert trigger.serialize()[1] == {
        "zendrive_conn_id": sensor.zendrive_conn_id,
        "poke_interval": 45.0,
        "first_poll_after": 45.0,  # the sensor just poked: the trigger polls one interval later
    }
    assert deferred.value.method_name == "execute_complete"
    assert deferred.value.timeout == datetime.timedelta(hours=1)
    assert statuses(zendrive_emulator) == [403]  # one synchronous poke first


@pytest.mark.parametrize("fault", [Fault(status=503), Fault.rate_limited("30")], ids=["503", "429"])
def test_deferrable_defers_after_one_transient_error_without_in_process_retries(
    fault: Fault,
    zendrive_emulator: ZenDriveEmulator,
    make_sensor: Callable[..., ZenDriveServiceActiveSensor],
) -> None:
    zendrive_emulator.inject(fault)
    sensor = make_sensor(deferrable=True)  # the connection allows the default 6 retries

    with pytest.raises(TaskDeferred):
        sensor.execute({})

    assert len(zendrive_emulator.requests) == 1
    assert hook_waits(sensor) == []


def test_deferrable_fails_at_once_on_an_invalid_connection(
    zendrive_emulator: ZenDriveEmulator, set_connection: Callable[..., str]
) -> None:
    conn_id = set_connection(
        json.dumps({"conn_type": "zendrive", "host": "http://127.0.0.1", "login": "AK", "password": "x"})
    )
    sensor = ZenDriveServiceActiveSensor(task_id="s", zendrive_conn_id=conn_id, deferrable=True)

    with pytest.raises(AirflowFailException, match="HTTPS"):
        sensor.execute({})
    assert zendrive_emulator.requests == zendrive_emulator.http_requests == []


def test_deferrable_skips_the_triggerer_when_already_active(
    zendrive_emulator: ZenDriveEmulator, make_sensor: Callable[..., ZenDriveServiceActiveSensor]
) -> None:
    sensor = make_sensor(deferrable=True)

    assert sensor.execute({}) is None
    assert statuses(zendrive_emulator) == [200]


def test_deferrable_fails_at_once_on_bad_keys_or_skips_with_soft_fail(
    zendrive_emulator: ZenDriveEmulator, make_sensor: Callable[..., ZenDriveServiceActiveSensor]
) -> None:
    with pytest.raises(AirflowFailException, match="401"):
        make_sensor(secret_key=UNIQUE_SECRET, deferrable=True).execute({})
    with pytest.raises(AirflowSkipException):
        make_sensor(secret_key=UNIQUE_SECRET, deferrable=True, soft_fail=True).execute({})

    assert statuses(zendrive_emulator) == [401, 401]


def test_execute_complete_accepts_only_an_active_event() -> None:
    sensor = ZenDriveServiceActiveSensor(task_id="s")
    # Typed as returning something, so that the test may assert that it returns nothing.
    complete: Callable[..., object] = sensor.execute_complete

    assert complete({}, {"status": "active"}) is None
    with pytest.raises(AirflowFailException, match="ZenDRIVE rejected the credentials"):
        sensor.execute_complete({}, {"status": "error", "message": "ZenDRIVE rejected the credentials"})


@pytest.mark.parametrize(
    "event",
    [
        None,
        {},
        {"status": "ACTIVE"},
        {"status": "success"},
        {"status": "active", "but": "unexpected"},
        {"status": "error"},
        {"status": "error", "message": 42},
        ["status", "active"],
        "active",
    ],
)
def test_execute_complete_fails_closed_on_unknown_events(event: Any) -> None:
    sensor = ZenDriveServiceActiveSensor(task_id="s")

    with pytest.raises(AirflowException, match="Unexpected event"):
        sensor.execute_complete({}, event)


def test_the_trigger_the_sensor_defers_to_finds_the_service_active(
    zendrive_emulator: ZenDriveEmulator, make_sensor: Callable[..., ZenDriveServiceActiveSensor]
) -> None:
    import asyncio

    zendrive_emulator.suspend(DEMO_ACCESS_KEY, requests=2)
    sensor = make_sensor(deferrable=True, poke_interval=0.2)
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute({})

    async def first_event() -> Any:
        async for event in deferred.value.trigger.run():
            await asyncio.sleep(0.1)  # let the TLS transport close before the loop ends
            return event.payload
        return None

    event = asyncio.run(first_event())

    assert event == {"status": "active"}
    # Typed as returning something, so that the test may assert that it returns nothing.
    complete: Callable[..., object] = sensor.execute_complete
    assert complete({}, event) is None
    assert statuses(zendrive_emulator) == [403, 403, 200]


def test_deferrable_first_poke_says_it_defers_not_that_it_pokes_again(
    zendrive_emulator: ZenDriveEmulator,
    make_sensor: Callable[..., ZenDriveServiceActiveSensor],
    logs: list[dict[str, Any]],
) -> None:
    zendrive_emulator.suspend(DEMO_ACCESS_KEY)
    sensor = make_sensor(deferrable=True, poke_interval=5, timeout=3600)

    with pytest.raises(TaskDeferred):
        sensor.execute({})

    text = json.dumps(logs, default=str)
    assert "deferring to the triggerer, which polls every 5.0 s" in text
    assert "oking again" not in text


# -- construction ----------------------------------------------------------------------------------------------


def test_construction_is_offline_and_reads_no_connection(zendrive_emulator: ZenDriveEmulator) -> None:
    sensor = ZenDriveServiceActiveSensor(task_id="s", zendrive_conn_id="zendrive_not_defined_anywhere")

    assert "hook" not in sensor.__dict__
    assert zendrive_emulator.requests == []
    assert sensor.zendrive_conn_id == "zendrive_not_defined_anywhere"
    assert sensor.deferrable is False
    assert sensor.poke_interval == 60


def test_deferrable_needs_a_positive_poke_interval() -> None:
    with pytest.raises(ValueError, match="poke_interval"):
        ZenDriveServiceActiveSensor(task_id="s", deferrable=True, poke_interval=0)


def _python(code: str, **env: str) -> str:
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **env},
        timeout=120,
    )
    return result.stdout + "\n" + result.stderr


@pytest.mark.parametrize("setting", ["True", "False"])
def test_deferrable_defaults_to_operators_default_deferrable(setting: str) -> None:
    code = (
        "from airflow_provider_zendrive.sensors.zendrive import ZenDriveServiceActiveSensor as S\n"
        "print('deferrable=%s' % S(task_id='s').deferrable)"
    )

    output = _python(code, AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE=setting)

    assert f"deferrable={setting}" in output


@pytest.mark.parametrize("module", ["sensors", "triggers"])
def test_importing_loads_no_http_library(module: str) -> None:
    output = _python(f"import airflow_provider_zendrive.{module}.zendrive")

    imported = {line.rsplit("|", 1)[-1].strip() for line in output.splitlines() if "|" in line}
    assert f"airflow_provider_zendrive.{module}.zendrive" in imported
    # httpx comes with airflow.sdk's own sensor base; the provider's transport must not load at parse time.
    assert not {name for name in imported if name.split(".")[0] in {"aiohttp", "requests"}}
    assert "airflow_provider_zendrive._client.transport" not in imported
    assert "airflow_provider_zendrive.hooks.zendrive" not in imported
