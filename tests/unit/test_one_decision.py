"""
One decision for both paths: the hook's blocking retry loop and the trigger's poll read the same answers the same way.

Both are driven here with the same sequences of answers (no socket, no event loop, no real sleep): the hook's loop
(:func:`send_with_retries`) through a fake ``send``, the trigger's verdict through the answers its shared poll
would hand it.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterator, Sequence

import pytest

from airflow_provider_zendrive._client.api import Failure, Reply, StatsCall, send_with_retries
from airflow_provider_zendrive._client.pacing import KeyPace
from airflow_provider_zendrive._client.polling import PollResult
from airflow_provider_zendrive._client.retry import Backoff
from airflow_provider_zendrive._client.settings import ZenDriveSettings
from airflow_provider_zendrive._client.windows import DateWindow
from airflow_provider_zendrive.exceptions import (
    ZenDriveAuthError,
    ZenDriveError,
    ZenDriveRequestError,
    ZenDriveResponseError,
    ZenDriveTLSError,
    ZenDriveUnavailableError,
)
from airflow_provider_zendrive.testing._data import window_stats
from airflow_provider_zendrive.triggers.zendrive import ZenDriveServiceActiveTrigger

SETTINGS = ZenDriveSettings(
    url="https://zendrive.test/zendrive-api/cdn-stats/", access_key="AK", secret_key="s3cr3t", max_retries=5
)
DAY = datetime.date(2026, 5, 1)
WINDOW = DateWindow(DAY, DAY)
OK = Reply(200, {}, json.dumps(window_stats(1, DAY, DAY)).encode())
SUSPENDED = Reply(403, {}, b'{"message": "service suspended"}')
THROTTLED = Reply(429, {"Retry-After": "2"}, b"")
THROTTLED_BARE = Reply(429, {}, b'{"message": "Too many requests, slow down"}')
UNAVAILABLE = Reply(503, {}, b"")
TIMEOUT = Failure("timeout", "no complete answer within 30 s")
BAD_KEYS = Reply(401, {}, b'{"message": "bad keys"}')
BAD_BODY = Reply(200, {}, b"<html>not json</html>")
BAD_CERT = Failure("tls", "CERTIFICATE_VERIFY_FAILED")
POKE_INTERVAL = 60.0


class Log:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def warning(self, msg: str, /, *args: object) -> None:
        self.lines.append(msg % args)


def hook_loop(
    answers: Sequence[Reply | Failure], *, log: Log | None = None, phase: float = 0.0
) -> tuple[object, list[float], int]:
    """
    The hook's path: the outcome (stats or the raised error), the waits, and how many answers it read.

    :param phase: the random phase of the key's releases, as a fraction of their ceiling.
    """
    remaining: Iterator[Reply | Failure] = iter(answers)
    sent: list[bytes] = []
    waits: list[float] = []

    def send(body: bytes) -> Reply | Failure:
        sent.append(body)
        return next(remaining)

    call = StatsCall(SETTINGS, WINDOW, backoff=Backoff(rng=lambda: 0.0), log=log or Log())
    with KeyPace(rng=lambda: phase).turn() as turn:
        try:
            outcome: object = send_with_retries(call, send, turn, sleep=waits.append)
        except ZenDriveError as exc:
            outcome = exc
    return outcome, waits, len(sent)


def trigger_path(answers: Sequence[Reply | Failure]) -> list[object]:
    """The trigger's path: its verdict on each answer its shared poll hands it, until one ends the wait."""
    trigger = ZenDriveServiceActiveTrigger(poke_interval=POKE_INTERVAL)
    verdicts: list[object] = []
    for answer in answers:
        event = trigger._event_for(SETTINGS, PollResult(WINDOW, answer, 0.0, 0.0, "waiting"))
        verdicts.append(None if event is None else event.payload)
        if event is not None:
            break
    return verdicts


def test_transient_answers_are_waited_out_by_both_then_the_stats_end_both() -> None:
    answers: list[Reply | Failure] = [TIMEOUT, UNAVAILABLE, THROTTLED, OK]

    outcome, waits, read = hook_loop(answers)
    verdicts = trigger_path(answers)

    assert outcome == window_stats(1, DAY, DAY)
    assert read == 4
    assert len(waits) == 3
    assert waits[-1] >= 2.0
    assert verdicts == [None, None, None, {"status": "active"}]


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (BAD_KEYS, ZenDriveAuthError),
        (BAD_BODY, ZenDriveResponseError),
        (BAD_CERT, ZenDriveTLSError),
        (Reply(501, {"Retry-After": "1"}, b""), ZenDriveRequestError),  # a 5xx that no retry can change
    ],
)
def test_a_final_answer_ends_both_at_once_with_the_same_message(
    answer: Reply | Failure, error: type[ZenDriveError]
) -> None:
    outcome, waits, read = hook_loop([answer, OK])
    verdicts = trigger_path([answer, OK])

    assert isinstance(outcome, error)
    assert (waits, read) == ([], 1)
    assert verdicts == [{"status": "error", "message": outcome.message}]


def test_403_is_final_for_a_pull_and_the_reason_to_keep_waiting_for_a_poller() -> None:
    outcome, waits, read = hook_loop([SUSPENDED, OK])
    verdicts = trigger_path([SUSPENDED, SUSPENDED, OK])

    assert type(outcome).__name__ == "ZenDriveServiceInactiveError"
    assert (waits, read) == ([], 1)
    assert verdicts == [None, None, {"status": "active"}]


def test_the_hook_gives_up_after_its_retries_where_the_poller_keeps_polling() -> None:
    outcome, waits, read = hook_loop([UNAVAILABLE] * 7)
    verdicts = trigger_path([UNAVAILABLE] * 7)

    assert isinstance(outcome, ZenDriveUnavailableError)
    assert "Gave up after 6 attempts." in outcome.message
    assert (len(waits), read) == (5, 6)
    assert verdicts == [None] * 7


def test_a_429_without_retry_after_is_waited_at_the_keys_pace_by_the_hook_and_a_poll_interval_by_the_poller() -> (
    None
):
    log = Log()
    outcome, waits, read = hook_loop([THROTTLED_BARE, THROTTLED_BARE, OK], log=log, phase=0.5)
    verdicts = trigger_path([THROTTLED_BARE, OK])

    assert outcome == window_stats(1, DAY, DAY)
    assert read == 3
    # A lone caller: half of a one-second base, then half of the doubled step, as its own backoff's full jitter
    # would have drawn them (the backoff's own draw is 0 here: the key's pace decided).
    assert waits == pytest.approx([0.5, 1.0], abs=0.05)
    assert log.lines == [
        "ZenDRIVE answered HTTP 429; retry 1/5 at the key's pace (no Retry-After).",
        "ZenDRIVE answered HTTP 429; retry 2/5 at the key's pace (no Retry-After).",
    ]
    assert verdicts == [None, {"status": "active"}]
