"""Deferred sensors on one key share one poll in the triggerer's event loop; different keys never do."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import pytest

from airflow_provider_zendrive.testing import DEMO_ACCESS_KEY, Fault, ZenDriveEmulator
from airflow_provider_zendrive.triggers.zendrive import ZenDriveServiceActiveTrigger

T = TypeVar("T")
Fired = tuple[list[dict[str, Any]], float]


def run_loop(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run``, with a moment for closed TLS transports to finish closing (as in a long-lived loop)."""

    async def wrapper() -> T:
        try:
            return await main
        finally:
            await asyncio.sleep(0.1)

    return asyncio.run(wrapper())


async def fire(trigger: ZenDriveServiceActiveTrigger) -> Fired:
    """Run a trigger to the end, as the triggerer does: its events, and when it finished."""
    events = [event.payload async for event in trigger.run()]
    return events, time.monotonic()


def polls(emulator: ZenDriveEmulator, access_key: str = DEMO_ACCESS_KEY) -> int:
    return sum(1 for request in emulator.requests if request.access_key == access_key)


@pytest.fixture
def trigger_for(
    zendrive_emulator: ZenDriveEmulator, set_connection: Callable[..., str]
) -> Callable[..., ZenDriveServiceActiveTrigger]:
    """``trigger_for(conn_id, poke_interval, first_poll_after, access_key=..., secret_key=..., **extra)``."""

    def _make(
        conn_id: str = "zendrive_shared",
        poke_interval: float = 0.3,
        first_poll_after: float = 0.0,
        *,
        access_key: str = DEMO_ACCESS_KEY,
        secret_key: str | None = None,
        **extra: str,
    ) -> ZenDriveServiceActiveTrigger:
        if secret_key is None:
            secret_key = zendrive_emulator.account(access_key).secret_key
        uri = zendrive_emulator.connection_uri(access_key, secret_key, bare_host=True, **extra)
        set_connection(uri, conn_id=conn_id)
        return ZenDriveServiceActiveTrigger(
            conn_id, poke_interval=poke_interval, first_poll_after=first_poll_after
        )

    return _make


def test_triggers_on_one_key_share_one_poll_and_all_fire_on_the_next_one_after_it_turns_active(
    zendrive_emulator: ZenDriveEmulator, trigger_for: Callable[..., ZenDriveServiceActiveTrigger]
) -> None:
    zendrive_emulator.suspend(DEMO_ACCESS_KEY)
    # A mapped sensor (one connection) and two more DAGs gated on the same account (their own connections).
    triggers = [trigger_for(poke_interval=0.3, first_poll_after=0.3) for _ in range(20)]
    triggers += [trigger_for(f"zendrive_dag_{n}", poke_interval=0.5, first_poll_after=0.5) for n in range(2)]

    async def main() -> tuple[list[Fired], int, float]:
        tasks = [asyncio.create_task(fire(trigger)) for trigger in triggers]
        await asyncio.sleep(1.5)
        suspended_polls = polls(zendrive_emulator)
        resumed = time.monotonic()
        zendrive_emulator.resume(DEMO_ACCESS_KEY)
        return await asyncio.gather(*tasks), suspended_polls, resumed

    fired, suspended_polls, resumed = run_loop(main())

    assert all(events == [{"status": "active"}] for events, _ in fired)
    # One poll at a time at the shortest interval: about 1.5 / 0.3 + 1, not 20 x 5 + 2 x 3.
    assert 4 <= suspended_polls <= 7, suspended_polls
    assert max(at for _, at in fired) - resumed <= 0.3 + 0.25  # all on the first poll after it turned active
    assert polls(zendrive_emulator) == suspended_polls + 1
    times = [request.at for request in zendrive_emulator.requests]
    assert min(b - a for a, b in itertools.pairwise(times)) >= 0.28  # paced, never a burst


def test_each_waiter_keeps_its_own_first_poll_after_and_interval(
    zendrive_emulator: ZenDriveEmulator,
    trigger_for: Callable[..., ZenDriveServiceActiveTrigger],
    logs: list[dict[str, Any]],
) -> None:
    zendrive_emulator.suspend(DEMO_ACCESS_KEY, requests=3)
    eager = trigger_for(poke_interval=0.2)
    patient = trigger_for(poke_interval=5.0, first_poll_after=1.2)  # a sensor that just poked itself

    async def main() -> tuple[Fired, Fired, float]:
        started = time.monotonic()
        first, second = await asyncio.gather(fire(eager), fire(patient))
        return first, second, started

    (eager_events, eager_at), (patient_events, patient_at), started = run_loop(main())

    assert eager_events == patient_events == [{"status": "active"}]
    assert eager_at - started < 1.0  # 403, 403, 403, 200 at the eager interval
    # The active answer came before the patient one's first poll: it fires then, on that answer, without a
    # request of its own (and never within a second or two of its deferral, see apache/airflow#71580).
    assert 1.2 <= patient_at - started < 1.5
    assert [request.status for request in zendrive_emulator.requests] == [403, 403, 403, 200]
    # The patient waiter took no suspended answer (its first one was due after the service turned active).
    not_active = [event for event in logs if "not active" in str(event.get("event"))]
    assert len(not_active) == 3


def test_a_final_error_reaches_every_waiter_with_its_own_connection_in_the_message(
    zendrive_emulator: ZenDriveEmulator, trigger_for: Callable[..., ZenDriveServiceActiveTrigger]
) -> None:
    zendrive_emulator.inject(Fault(status=400))
    # As the sensor defers: the first poll one interval after the deferral (here every trigger has joined by then).
    triggers = [
        trigger_for(f"zendrive_dag_{n}", poke_interval=3600.0, first_poll_after=0.3) for n in range(5)
    ]

    async def main() -> list[Fired]:
        return await asyncio.gather(*(fire(trigger) for trigger in triggers))

    fired = run_loop(asyncio.wait_for(main(), 15))

    assert len(zendrive_emulator.requests) == 1
    for n, (events, _) in enumerate(fired):
        assert [event["status"] for event in events] == ["error"]
        assert "400" in events[0]["message"]
        assert f"connection 'zendrive_dag_{n}'" in events[0]["message"]


def test_a_cancelled_waiter_leaves_and_the_others_keep_polling(
    zendrive_emulator: ZenDriveEmulator, trigger_for: Callable[..., ZenDriveServiceActiveTrigger]
) -> None:
    zendrive_emulator.suspend(DEMO_ACCESS_KEY)
    staying = [trigger_for(poke_interval=0.3) for _ in range(2)]
    cleared = trigger_for(poke_interval=0.1)  # the shortest interval leaves with it

    async def main() -> tuple[list[Fired], int, int]:
        tasks = [asyncio.create_task(fire(trigger)) for trigger in staying]
        leaving = asyncio.create_task(fire(cleared))
        await asyncio.sleep(0.55)
        leaving.cancel()  # the task was cleared, or its deferral timed out
        with pytest.raises(asyncio.CancelledError):
            await leaving
        before = polls(zendrive_emulator)
        await asyncio.sleep(0.9)
        after = polls(zendrive_emulator)
        zendrive_emulator.resume(DEMO_ACCESS_KEY)
        return await asyncio.gather(*tasks), before, after

    fired, before, after = run_loop(main())

    assert all(events == [{"status": "active"}] for events, _ in fired)
    assert before >= 4  # every 0.1 s while the short interval was there
    assert 2 <= after - before <= 4  # then every 0.3 s


def test_when_the_last_waiter_leaves_the_poll_stops_and_leaves_no_task(
    zendrive_emulator: ZenDriveEmulator, trigger_for: Callable[..., ZenDriveServiceActiveTrigger]
) -> None:
    zendrive_emulator.suspend(DEMO_ACCESS_KEY)
    triggers = [trigger_for(poke_interval=0.2) for _ in range(3)]

    async def main() -> tuple[int, int, list[asyncio.Task[Any]]]:
        tasks = [asyncio.create_task(fire(trigger)) for trigger in triggers]
        await asyncio.sleep(0.5)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        stopped = polls(zendrive_emulator)
        for _ in range(20):  # the poll's own task was cancelled: it ends once its TLS connection is closed
            left = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
            if not left:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.6)
        return stopped, polls(zendrive_emulator), left

    stopped, later, left = run_loop(main())

    assert left == []
    assert stopped == later  # nothing polls any more


def test_a_new_waiter_after_the_poll_stopped_starts_a_new_one(
    zendrive_emulator: ZenDriveEmulator, trigger_for: Callable[..., ZenDriveServiceActiveTrigger]
) -> None:
    async def main() -> tuple[Fired, Fired]:
        first = await fire(trigger_for())
        return first, await fire(trigger_for())

    first, second = run_loop(main())

    assert first[0] == second[0] == [{"status": "active"}]
    assert len(zendrive_emulator.requests) == 2


def test_different_keys_never_share_a_poll(
    zendrive_emulator: ZenDriveEmulator, trigger_for: Callable[..., ZenDriveServiceActiveTrigger]
) -> None:
    zendrive_emulator.add_account("AKOTHER", "other-secret-1", 4321)
    zendrive_emulator.suspend(DEMO_ACCESS_KEY)
    waiting = trigger_for(poke_interval=0.2)
    active = trigger_for("zendrive_other", poke_interval=0.2, first_poll_after=0.5, access_key="AKOTHER")

    async def main() -> tuple[Fired, int, float]:
        started = time.monotonic()
        task = asyncio.create_task(fire(waiting))
        other = await fire(active)
        await asyncio.sleep(0.3)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return other, polls(zendrive_emulator), started

    (events, at), demo_polls, started = run_loop(main())

    assert events == [{"status": "active"}]
    assert 0.5 <= at - started < 0.9  # its own first poll, not the other key's schedule
    assert polls(zendrive_emulator, "AKOTHER") == 1
    assert demo_polls >= 4


@pytest.mark.parametrize(
    ("other", "expected"),
    [
        pytest.param({"secret_key": "not-the-secret"}, "401", id="another secret"),
        pytest.param({"verify": "true"}, "failed verification", id="another TLS trust"),
    ],
)
def test_one_access_key_with_another_secret_or_tls_setting_never_shares_a_poll(
    other: dict[str, str],
    expected: str,
    zendrive_emulator: ZenDriveEmulator,
    trigger_for: Callable[..., ZenDriveServiceActiveTrigger],
) -> None:
    right = trigger_for("zendrive_right", poke_interval=3600.0)
    wrong = trigger_for("zendrive_wrong", poke_interval=3600.0, **other)

    async def main() -> tuple[Fired, Fired]:
        return await asyncio.gather(fire(right), fire(wrong))

    (right_events, _), (wrong_events, _) = run_loop(asyncio.wait_for(main(), 15))

    assert right_events == [{"status": "active"}]
    assert [event["status"] for event in wrong_events] == ["error"]
    assert expected in wrong_events[0]["message"]


def test_a_429_holds_the_shared_poll_for_its_retry_after(
    zendrive_emulator: ZenDriveEmulator, trigger_for: Callable[..., ZenDriveServiceActiveTrigger]
) -> None:
    zendrive_emulator.inject(Fault.rate_limited("1"))
    triggers = [trigger_for(poke_interval=0.1) for _ in range(10)]

    async def main() -> list[Fired]:
        return await asyncio.gather(*(fire(trigger) for trigger in triggers))

    fired = run_loop(asyncio.wait_for(main(), 15))

    assert all(events == [{"status": "active"}] for events, _ in fired)
    first, second = zendrive_emulator.requests
    assert (first.status, second.status) == (429, 200)
    assert second.at - first.at >= 0.95  # one request, then the Retry-After, then one more: not ten of each
