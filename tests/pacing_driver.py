"""Drive a key's turns as their callers would, for the pacing unit tests (no clock, no threads)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from airflow_provider_zendrive._client.pacing import KeyPace, Turn


@contextlib.contextmanager
def turns(pace: KeyPace, count: int) -> Iterator[list[Turn]]:
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(pace.turn()) for _ in range(count)]


def release(waiting: list[Turn], now: float) -> list[float]:
    """Drive the turns as their callers would, each asking again when told to; return when each one sent."""
    wake = dict.fromkeys(waiting, now)
    sent: list[float] = []
    while wake:
        turn = min(wake, key=lambda t: wake[t])
        at = wake.pop(turn)
        delay = turn.delay(at)
        if delay > 0:
            wake[turn] = at + delay
        else:
            sent.append(at)
    return sent
