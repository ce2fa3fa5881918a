"""
A key's pace learned from 429s without Retry-After: the releases, the step's changes and its bounds (fake clock, no
I/O), and a token bucket followed closely in a simulation of the benchmark's workloads.
"""

from __future__ import annotations

import dataclasses
import heapq
import math
import random
from dataclasses import dataclass, field

import pytest
from pacing_driver import release, turns

from airflow_provider_zendrive._client.pacing import (
    BACK_AFTER_SUCCESS,
    FASTER_AFTER_SUCCESS,
    LONG_RUN,
    SLOWER_AFTER_REFUSAL,
    KeyPace,
    Turn,
    forget_paces,
    pace_for,
)
from airflow_provider_zendrive._client.settings import ZenDriveSettings
from airflow_provider_zendrive.exceptions import ZenDriveRateLimitError

NO_HEADER = ZenDriveRateLimitError("429")


def crowd(pace: KeyPace, waiting: list[Turn]) -> None:
    """The first of ``waiting`` meets a 429 without Retry-After at 0.0, and every one of them queues."""
    first = waiting[0]
    assert first.delay(0.0) == 0
    assert first.throttled(0.0, NO_HEADER)  # the key's pace decides, not the caller's own backoff
    for turn in [*waiting[1:], first]:
        assert turn.delay(0.0) > 0


def next_release(pace: KeyPace, at: float) -> float:
    """How long a caller asking at ``at`` is held (it then leaves)."""
    with pace.turn() as probe:
        return probe.delay(at)


def test_the_queue_is_released_one_at_a_time_the_backoffs_base_spread_over_it() -> None:
    pace = KeyPace(rng=lambda: 0.5)
    with turns(pace, 5) as waiting:
        crowd(pace, waiting)

        assert release(waiting, 0.0) == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0])
        assert {turn.release_episode for turn in waiting} == {1}


def test_a_lone_caller_goes_after_a_random_phase_then_backs_off_with_jitter_as_its_own_backoff_would() -> (
    None
):
    pace = KeyPace(rng=lambda: 0.5)
    with pace.turn() as lone:
        assert lone.delay(0.0) == 0
        lone.throttled(0.01, NO_HEADER)
        assert release([lone], 0.01) == pytest.approx([0.51])  # half of a one-second base, as uniform(0, 1)

        lone.throttled(0.52, NO_HEADER)  # refused again, nothing let through since: the step doubles to 2 s
        assert lone.delay(0.52) == pytest.approx(0.51 + 2 * 0.5 - 0.52)  # half of it, as uniform(0, 2)


def test_releases_let_through_shorten_the_step_and_a_refused_one_lengthens_it() -> None:
    pace = KeyPace(rng=lambda: 0.5)
    with turns(pace, 5) as waiting:
        crowd(pace, waiting)
        first, second, third, *_ = waiting
        assert release([first], 0.0) == pytest.approx([0.2])  # the step: 1 s over 5 callers
        first.succeeded(0.21)  # let through: back fast towards a faster pace
        assert release([second], 0.21) == pytest.approx([0.4])  # (that release was already set)
        assert next_release(pace, 0.4) == pytest.approx(0.2 * BACK_AFTER_SUCCESS)

        second.throttled(0.41, NO_HEADER)  # refused after one went through: a little slower...
        assert release([third], 0.41) == pytest.approx([0.4 + 0.2 * BACK_AFTER_SUCCESS])  # (already set)
        # ...but never faster than proved: empty at 0.0 and at 0.4 with one let through between, so the key
        # refills more slowly than one per 0.4 / 2 s.
        assert 0.2 * BACK_AFTER_SUCCESS * SLOWER_AFTER_REFUSAL < 0.2
        assert next_release(pace, 0.54) == pytest.approx(0.2)
        third.succeeded(0.56)
        assert next_release(pace, 0.54) == pytest.approx(0.2)  # the proof holds: no faster


def test_a_refusal_of_a_request_sent_at_the_old_pace_teaches_nothing() -> None:
    pace = KeyPace(rng=lambda: 0.5)
    with turns(pace, 5) as waiting:
        crowd(pace, waiting)
        first, second, *_ = waiting
        assert release([first, second], 0.0) == pytest.approx([0.2, 0.4])
        second.throttled(0.45, NO_HEADER)  # nothing let through since 0.0: the step doubles, from 0.4 on
        assert next_release(pace, 0.45) == pytest.approx(0.4 + 0.4 - 0.45)

        first.throttled(
            0.46, NO_HEADER
        )  # sent at 0.2, before the refusal above was known: no second doubling
        assert next_release(pace, 0.45) == pytest.approx(0.4 + 0.4 - 0.45)


def test_a_long_run_let_through_lifts_the_proof_so_that_a_key_that_got_faster_is_followed() -> None:
    pace = KeyPace(rng=lambda: 0.5)
    with turns(pace, 5) as waiting:
        crowd(pace, waiting)
        first, second = waiting[:2]
        assert release([first, second], 0.0) == pytest.approx([0.2, 0.4])
        first.succeeded(0.2)
        second.throttled(0.4, NO_HEADER)  # proves a step of at least 0.4 / 2 = 0.2
        now, steps = 0.4, []
        for _ in range(LONG_RUN + 4):
            with pace.turn() as caller:
                (now,) = release([caller], now)
                caller.succeeded(now)
            steps.append(next_release(pace, now))
        assert steps[: LONG_RUN - 1] == pytest.approx([0.2] * (LONG_RUN - 1))
        assert steps[-1] < 0.2 * FASTER_AFTER_SUCCESS**4


def test_no_caller_is_held_longer_than_its_longest() -> None:
    pace = KeyPace(rng=lambda: 0.5)
    with turns(pace, 20) as waiting:
        first, *others = waiting
        assert first.delay(0.0) == 0
        first.throttled(0.0, NO_HEADER, longest=0.3)
        for turn in others:
            turn.delay(0.0)

        # The releases come 1/20 s apart, but the caller that met the 429 goes at its bound all the same.
        assert first.delay(0.0) == pytest.approx(0.05)
        assert release([first], 0.051) == [0.051]


def test_a_retry_after_replaces_what_was_learned() -> None:
    pace = KeyPace(rng=lambda: 0.0)
    with turns(pace, 3) as (first, second, third):
        assert first.delay(0.0) == 0
        first.throttled(0.0, NO_HEADER)
        assert release([second], 0.0) == [0.0]  # a lone caller with no phase: at once
        second.throttled(0.1, ZenDriveRateLimitError("429", retry_after=2.0))

        assert third.delay(0.2) == pytest.approx(1.9)  # the key is closed until then for everyone


def test_the_key_opens_after_a_quiet_step_and_second_and_may_then_be_forgotten() -> None:
    pace = KeyPace(rng=lambda: 0.0)
    with pace.turn() as lone:
        assert lone.delay(0.0) == 0
        lone.throttled(0.0, NO_HEADER)
        assert release([lone], 0.01) == [0.01]
        lone.succeeded(0.02)  # the step shrinks (for the release after next) to 0.7 s
    assert next_release(pace, 0.5) == pytest.approx(0.51)  # still paced: a step (1 s) after the last release
    with pace.turn() as paced:
        assert paced.delay(2.6) == 0
        assert paced.release_episode == 1  # within a step (0.7 s) and a base of the release due (1.01)
    with pace.turn() as later:
        assert later.delay(5.1) == 0
        # Nobody queued for a step and a base after the release due next (3.3): open again.
        assert later.release_episode is None


def test_a_pace_that_was_left_quiet_is_idle() -> None:
    pace = KeyPace(rng=lambda: 0.0)
    with pace.turn() as lone:
        assert lone.delay(-10.0) == 0  # monotonic clocks: long ago
        lone.throttled(-10.0, NO_HEADER)
    assert pace.idle  # nobody took a turn since, and the closing is more than a base and a step ago


def test_the_registry_forgets_a_key_paced_long_ago_when_another_key_comes() -> None:
    settings = ZenDriveSettings(
        url="https://zendrive.test/zendrive-api/cdn-stats/", access_key="AK", secret_key="s"
    )
    forget_paces()
    try:
        paced = pace_for(settings)
        with paced.turn() as lone:
            assert lone.delay(-10.0) == 0
            lone.throttled(-10.0, NO_HEADER)  # paced, then nobody came for far longer than a step and a base
        pace_for(dataclasses.replace(settings, access_key="AK2"))
        assert pace_for(settings) is not paced  # memory stays bounded by the keys in use
    finally:
        forget_paces()


@dataclass
class Bucket:
    """The emulator's token bucket, on the simulated clock."""

    rate: float
    burst: int
    tokens: float = field(init=False)
    stamp: float = 0.0

    def __post_init__(self) -> None:
        self.tokens = float(self.burst)

    def take(self, now: float, rate: float) -> bool:
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


def simulate(
    workers: int,
    calls: int,
    rate: float,
    burst: int,
    *,
    faster_at: tuple[float, float] | None = None,
    seed: int = 0,
) -> tuple[float, int]:
    """
    ``workers`` callers of one key make ``calls`` calls each, one after another, against a token bucket without
    Retry-After; each answer comes 20 ms after the request. ``faster_at=(t, rate)``: the key refills at ``rate``
    from ``t`` on. Return (when the last call was answered, how many 429s).
    """
    jitter = random.Random(seed)
    pace, bucket = KeyPace(rng=jitter.random), Bucket(rate, burst)
    left = dict.fromkeys(range(workers), calls)
    open_turns: dict[int, Turn] = {}
    events: list[tuple[float, int, int, str]] = [(0.0, n, n, "ask") for n in range(workers)]
    order, throttled, last = workers, 0, 0.0
    while events:
        now, _, worker, what = heapq.heappop(events)
        turn = open_turns.get(worker)
        if what == "ask":
            if turn is None:
                turn = open_turns[worker] = pace.turn()
                pace.enter(turn)
            delay = turn.delay(now)
            if delay > 0:
                heapq.heappush(events, (now + delay, order, worker, "ask"))
            else:
                arrives = now + 0.005 + 0.01 * jitter.random()
                current = rate if faster_at is None or arrives < faster_at[0] else faster_at[1]
                answer = "ok" if bucket.take(arrives, current) else "429"
                heapq.heappush(events, (now + 0.02, order, worker, answer))
        elif what == "ok":
            assert turn is not None
            turn.succeeded(now)
            pace.leave(turn)
            del open_turns[worker]
            left[worker] -= 1
            last = now
            if left[worker]:
                heapq.heappush(events, (now, order, worker, "ask"))
        else:
            assert turn is not None
            throttled += 1
            assert turn.throttled(now, NO_HEADER)
            heapq.heappush(events, (now, order, worker, "ask"))
        order += 1
    return last, throttled


@pytest.mark.parametrize(
    ("burst", "most", "most_throttled"), [(1, 1.5, 16), (4, 1.25, 16)], ids=["burst 1", "burst 4"]
)
@pytest.mark.parametrize("seed", range(4))
def test_eight_callers_follow_a_bucket_of_4_a_second_closely(
    burst: int, most: float, most_throttled: int, seed: int
) -> None:
    # The benchmark's workload (8 x 2 at 4/s) on a simulated clock: what the pacing logic alone achieves; the
    # real figures, threads and TLS included, come from make bench.
    last, throttled = simulate(8, 2, 4.0, burst, seed=seed)
    floor = (16 - burst) / 4.0
    assert last <= most * floor
    assert throttled <= most_throttled


def test_a_key_that_gets_faster_is_followed() -> None:
    # 128 calls, 4/s for the first 6 s then 12/s: at the old pace it would take 32 s.
    last, _ = simulate(16, 8, 4.0, 1, faster_at=(6.0, 12.0))
    assert last < 6.0 + (128 - 24) / 12.0 * 2
    assert last < 128 / 4.0 * 0.8


def test_more_callers_than_the_bucket_holds_are_paced_too() -> None:
    last, throttled = simulate(32, 4, 4.0, 1)
    assert last <= 1.3 * 127 / 4.0
    assert throttled <= 31 + 32  # the first wave, then fewer than one more per caller
    assert math.isfinite(last)
