"""A key's shared 429 knowledge: who waits, when each caller is released, and what a key is (fake clock, no I/O)."""

from __future__ import annotations

import dataclasses

import pytest
from pacing_driver import release, turns

from airflow_provider_zendrive._client.pacing import (
    STEP_OF_REFILL,
    KeyId,
    KeyPace,
    forget_paces,
    pace_for,
)
from airflow_provider_zendrive._client.settings import ZenDriveSettings
from airflow_provider_zendrive.exceptions import ZenDriveRateLimitError, ZenDriveUnavailableError

SETTINGS = ZenDriveSettings(
    url="https://zendrive.test/zendrive-api/cdn-stats/", access_key="AK", secret_key="s3cr3t"
)


def rate_limited(retry_after: float | None) -> ZenDriveRateLimitError:
    return ZenDriveRateLimitError("429", retry_after=retry_after)


def closed(pace: KeyPace, at: float, retry_after: float) -> None:
    """A caller of the key met a 429 with ``retry_after`` at ``at``."""
    with pace.turn() as turn:
        assert turn.delay(at) == 0
        assert turn.throttled(at, rate_limited(retry_after))


def test_an_open_key_sends_at_once() -> None:
    with KeyPace().turn() as turn:
        assert turn.delay(0.0) == 0
        assert turn.release_episode is None


def test_a_429_with_retry_after_holds_every_caller_of_the_key_until_then() -> None:
    pace = KeyPace(rng=lambda: 0.0)
    with turns(pace, 2) as (first, other):
        assert first.delay(10.0) == 0
        assert first.throttled(10.0, rate_limited(2.0))

        assert first.delay(10.5) == pytest.approx(1.5)  # the one that got it
        assert other.delay(10.5) == pytest.approx(1.5)  # and one that never sent


@pytest.mark.parametrize(
    "error",
    [
        ZenDriveUnavailableError("503", status_code=503, retry_after=5.0),
        ZenDriveUnavailableError("503", status_code=503),
    ],
    ids=["503 with Retry-After", "503 without"],
)
def test_other_failures_teach_nothing(error: ZenDriveUnavailableError) -> None:
    pace = KeyPace()
    with turns(pace, 2) as (first, other):
        assert first.delay(0.0) == 0
        assert not first.throttled(0.0, error)  # the caller's own backoff decides
        assert other.delay(0.0) == 0


def test_the_queue_is_released_spread_over_the_retry_after_not_all_at_once() -> None:
    pace = KeyPace(rng=lambda: 0.0)
    closed(pace, 0.0, 1.0)
    with turns(pace, 4) as waiting:
        for turn in waiting:
            assert turn.delay(0.1) == pytest.approx(0.9)

        assert release(waiting, 0.1) == pytest.approx([1.0, 1.25, 1.5, 1.75])
        assert {turn.release_episode for turn in waiting} == {1}


def test_as_many_go_at_once_as_the_key_took_before_it_closed() -> None:
    pace = KeyPace(rng=lambda: 0.0)
    for _ in range(2):
        with pace.turn() as turn:
            assert turn.delay(-0.5) == 0
            turn.succeeded(-0.5)
    closed(pace, 0.0, 1.0)
    with turns(pace, 4) as waiting:
        for turn in waiting:
            turn.delay(0.0)
        # Two at once, then the other two spread over the Retry-After.
        assert release(waiting, 0.0) == pytest.approx([1.0, 1.0, 1.5, 2.0])


def test_when_the_whole_queue_went_at_once_later_callers_follow_at_the_pace_the_key_took() -> None:
    pace = KeyPace(rng=lambda: 0.0)
    for _ in range(4):
        with pace.turn() as turn:
            assert turn.delay(-0.5) == 0
            turn.succeeded(-0.5)
    closed(pace, 0.0, 1.0)
    with turns(pace, 2) as waiting:
        for turn in waiting:
            turn.delay(0.0)
        assert release(waiting, 0.0) == pytest.approx([1.0, 1.0])
        with pace.turn() as later:  # four in the last second: one every quarter, not one a Retry-After
            assert release([later], 1.0) == pytest.approx([1.25])


def test_successes_long_before_the_closing_do_not_count_as_its_burst() -> None:
    pace = KeyPace(rng=lambda: 0.0)
    with pace.turn() as turn:
        assert turn.delay(-5.0) == 0
        turn.succeeded(-5.0)
    closed(pace, 0.0, 1.0)
    with turns(pace, 2) as waiting:
        assert release(waiting, 0.0) == pytest.approx([1.0, 1.5])


def test_a_random_phase_of_up_to_one_step_delays_the_release() -> None:
    pace = KeyPace(rng=lambda: 0.5)
    closed(pace, 0.0, 2.0)
    with pace.turn() as lone:
        # One caller: the step is the whole Retry-After, the phase at most one second of it.
        assert release([lone], 0.0) == pytest.approx([2.5])


def test_callers_that_leave_the_queue_are_not_counted_in_the_release() -> None:
    pace = KeyPace(rng=lambda: 0.0)
    closed(pace, 0.0, 1.0)
    with turns(pace, 2) as staying:
        with turns(pace, 2) as leaving:  # e.g. cancelled tasks
            for turn in staying + leaving:
                turn.delay(0.1)
        assert release(staying, 0.1) == pytest.approx([1.0, 1.5])


def test_a_released_request_refused_waits_its_own_retry_after_without_closing_the_key_again() -> None:
    pace = KeyPace(rng=lambda: 0.0)
    closed(pace, 0.0, 1.0)
    with turns(pace, 4) as (early, *others):
        for turn in (early, *others):
            turn.delay(0.0)
        assert early.delay(1.0) == 0
        assert early.throttled(1.01, rate_limited(1.0))

        assert early.delay(1.02) == pytest.approx(0.99)  # its own Retry-After
        assert release(others, 1.02) == pytest.approx([1.25, 1.5, 1.75])  # the others are not held


def test_after_a_released_refusal_the_pace_is_the_measured_refill_a_little_faster() -> None:
    pace = KeyPace(rng=lambda: 0.0)
    closed(pace, 0.0, 1.0)
    with turns(pace, 10) as waiting:
        for turn in waiting:
            turn.delay(0.0)
        first, second, through, *rest = waiting
        assert release([first, second, through], 0.0) == pytest.approx([1.0, 1.1, 1.2])  # a step of 1/10
        first.throttled(1.0, rate_limited(1.0))  # the key is empty at 1.0...
        second.throttled(1.1, rate_limited(1.0))
        through.succeeded(1.2)  # ...and refilled once in 0.2 s

        assert release(rest[:2], 1.2) == pytest.approx([1.3, 1.3 + 0.2 * STEP_OF_REFILL])


def test_the_measured_pace_is_never_faster_than_the_spread_that_was_refused() -> None:
    pace = KeyPace(rng=lambda: 0.0)
    closed(pace, 0.0, 1.0)
    with turns(pace, 10) as waiting:
        for turn in waiting:
            turn.delay(0.0)
        refused, through, *rest = waiting
        assert release([refused, through], 0.0) == pytest.approx([1.0, 1.1])
        refused.throttled(1.0, rate_limited(1.0))
        through.succeeded(1.1)  # one refill in a step: the spread stays

        assert release(rest[:2], 1.1) == pytest.approx([1.2, 1.3])


def test_a_later_429_of_an_unreleased_request_holds_the_waiting_callers_again() -> None:
    pace = KeyPace(rng=lambda: 0.0)
    with pace.turn() as in_flight:
        assert in_flight.delay(0.0) == 0  # sent before the key closed
        closed(pace, 0.0, 1.0)
        with turns(pace, 2) as waiting:
            for turn in waiting:
                turn.delay(0.1)
            in_flight.throttled(0.5, rate_limited(3.0))  # its answer comes later, with a longer Retry-After

            assert release(waiting, 0.5)[0] == pytest.approx(3.5)


def test_the_key_opens_again_after_a_whole_quiet_retry_after() -> None:
    pace = KeyPace(rng=lambda: 0.0)
    closed(pace, 0.0, 1.0)
    with pace.turn() as late:
        assert release([late], 0.0) == pytest.approx([1.0])
        assert late.release_episode is not None
    with pace.turn() as later:
        assert later.delay(3.1) == 0
        assert later.release_episode is None


def test_a_key_is_its_url_access_key_secret_and_tls_setting() -> None:
    same = KeyId.of(dataclasses.replace(SETTINGS, conn_id="another_connection", timeout=5.0, max_retries=0))
    assert same == KeyId.of(SETTINGS)
    for change in (
        {"secret_key": "other-secret"},
        {"verify": False},
        {"access_key": "AK2"},
        {"url": "https://other.test/zendrive-api/cdn-stats/"},
    ):
        assert KeyId.of(dataclasses.replace(SETTINGS, **change)) != KeyId.of(SETTINGS), change


def test_a_key_never_shows_the_secret() -> None:
    key = KeyId.of(SETTINGS)
    assert "s3cr3t" not in repr(key) + key.fingerprint
    assert key.fingerprint not in repr(key)


def test_the_registry_shares_a_pace_per_key_and_forgets_on_request() -> None:
    forget_paces()
    try:
        pace = pace_for(SETTINGS)
        assert pace_for(dataclasses.replace(SETTINGS, conn_id="other")) is pace
        assert pace_for(dataclasses.replace(SETTINGS, secret_key="other")) is not pace
        forget_paces()
        assert pace_for(SETTINGS) is not pace
    finally:
        forget_paces()
