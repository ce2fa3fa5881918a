"""Every attempt is bounded: in time (a slow drip cannot hold it) and in size (no huge or inflating body)."""

from __future__ import annotations

import asyncio
import time
import tracemalloc
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

from airflow_provider_zendrive._client.transport import MAX_BODY_BYTES
from airflow_provider_zendrive.exceptions import (
    ZenDriveRequestError,
    ZenDriveResponseError,
    ZenDriveUnavailableError,
)
from airflow_provider_zendrive.testing import Fault, ZenDriveEmulator
from airflow_provider_zendrive.triggers.zendrive import ZenDriveServiceActiveTrigger

if TYPE_CHECKING:
    from conftest import RecordingHook

MakeHook = Callable[..., "RecordingHook"]


@pytest.mark.parametrize("interval", [0.05, 0.5])
def test_a_slow_drip_is_cut_off_at_the_attempts_deadline(
    make_hook: MakeHook, zendrive_emulator: ZenDriveEmulator, interval: float
) -> None:
    zendrive_emulator.inject(Fault.dripping(interval))
    hook = make_hook(timeout="2", max_retries="0")

    started = time.monotonic()
    with pytest.raises(ZenDriveUnavailableError, match="timeout"):
        hook.get_stats("2026-05-01", "2026-05-02")

    assert 1.9 <= time.monotonic() - started < 3.0  # every byte arrived within the read timeout, yet it ends


def test_retries_of_a_dripping_server_are_each_bounded(
    make_hook: MakeHook, zendrive_emulator: ZenDriveEmulator
) -> None:
    zendrive_emulator.inject(Fault.dripping(0.1), Fault.dripping(0.1))
    hook = make_hook(timeout="1", max_retries="2")

    started = time.monotonic()
    stats = hook.get_stats("2026-05-01", "2026-05-02")

    assert stats["from"] == "2026-05-01"
    assert hook.waits
    assert time.monotonic() - started < 4.0
    assert [r.status for r in zendrive_emulator.requests] == [200, 200, 200]


def test_a_decompression_bomb_is_refused_without_inflating_it(
    make_hook: MakeHook, zendrive_emulator: ZenDriveEmulator
) -> None:
    bomb = Fault.gzip_bomb()
    assert bomb.body is not None
    assert len(bomb.body) < 300_000  # 200 MB of zeros on the wire
    zendrive_emulator.inject(bomb)
    hook = make_hook(max_retries="2")

    tracemalloc.start()
    try:
        with pytest.raises(ZenDriveResponseError, match="larger than") as refused:
            hook.get_stats("2026-05-01", "2026-05-02")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert peak < 32 * 1024 * 1024, f"{peak:,} bytes at the peak"
    assert "not retried" in str(refused.value)
    assert len(zendrive_emulator.requests) == 1


def test_a_huge_body_is_refused_after_the_cap(
    make_hook: MakeHook, zendrive_emulator: ZenDriveEmulator
) -> None:
    zendrive_emulator.inject(Fault(status=200, body=b" " * (MAX_BODY_BYTES * 12)))

    with pytest.raises(ZenDriveResponseError, match="larger than"):
        make_hook().get_stats("2026-05-01", "2026-05-02")


def test_a_large_error_page_gives_a_short_message(
    make_hook: MakeHook, zendrive_emulator: ZenDriveEmulator
) -> None:
    zendrive_emulator.inject(Fault(status=400, body=b"<html>" + b"x" * 1_000_000))

    with pytest.raises(ZenDriveRequestError, match="refused the request") as refused:
        make_hook().get_stats("2026-05-01", "2026-05-02")

    assert len(str(refused.value)) < 1000


def test_the_trigger_cuts_off_a_drip_and_polls_again(
    zendrive_emulator: ZenDriveEmulator, set_connection: Callable[..., str]
) -> None:
    zendrive_emulator.inject(Fault.dripping(0.2))
    conn_id = set_connection(zendrive_emulator.connection_uri(timeout="1"), conn_id="zendrive_drip")
    trigger = ZenDriveServiceActiveTrigger(zendrive_conn_id=conn_id, poke_interval=0.1)

    async def first_event() -> dict[str, object]:
        async for event in trigger.run():
            return dict(event.payload)
        raise AssertionError("no event")

    started = time.monotonic()
    assert asyncio.run(asyncio.wait_for(first_event(), 10)) == {"status": "active"}
    assert time.monotonic() - started < 3.0
    assert len(zendrive_emulator.requests) == 2
