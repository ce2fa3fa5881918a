"""
Rate-limit efficiency: K workers x M calls each, all on the same access key, against the emulator's token bucket.

Each worker is a thread with its own hook on its own connection (``AIRFLOW_CONN_*``), all started together by a
barrier. A call is a one-day ``get_stats``. The figures:

* wall / floor, where the floor is ``(K*M - burst) / R``: the time the bucket needs to hand out K*M tokens;
* wall / baseline, where the baseline runs the same workload through the official HTTP provider:
  ``HttpHook(method="POST").run_with_advanced_retry`` with tenacity exponential backoff
  (``wait_exponential(multiplier=1, max=60)``) and a retry predicate on the exception ``HttpHook`` raises on a
  429 (a bare ``AirflowException``, see ``HttpHook.check_response``).

Retry-After variants: ``seconds`` (the emulator rounds up to whole seconds, as many real servers do),
``http-date`` (whole seconds too, as an absolute time) and none (the API contract promises no header: the key's
callers are then released at a step learned from its 429s and successes), at burst 1 and at burst 4.

Shared 429 knowledge (``_client/pacing.py``): for the 8 x 2 workloads with Retry-After in seconds and without
it, the same hooks also run with it off, in the same repeats: ``Turn.throttled`` patched for that run to leave
every 429 to the caller that got it, so each thread waits its own Retry-After plus jitter (without the header,
its own full-jitter backoff) and the others learn nothing, exactly as in 0.1.0.

Run alone: ``python benchmarks/bench_rate_limit.py [--quick]``.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from _common import Result, Series, cli, eprint, isolate_airflow_home, quiet_logs, ratio_series

#: The day every call asks for: a fixed past date, so the answer never depends on the clock.
DAY = "2026-03-01"
#: Retries allowed per call, ours (connection extra ``max_retries``) and the baseline (attempts - 1) alike: enough
#: for the whole workload to get through a saturated bucket.
MAX_RETRIES = 40
#: Hard bound on one workload's wall time; calls still retrying then give up and are counted as failed.
WORKLOAD_DEADLINE = 120.0
#: The baseline's own bound (tenacity ``stop_before_delay``): its exponential waits grow to a minute under a
#: saturated bucket. A call cut short makes the baseline look faster than it is, so a ratio measured against a
#: baseline that gave up is an upper bound, and is reported as such.
BASELINE_DEADLINE = 20.0


@dataclass(frozen=True)
class Case:
    """One workload: ``workers`` x ``calls`` at ``rate`` requests/s, bucket of ``burst``."""

    workers: int
    calls: int
    rate: float
    burst: int
    retry_after: str | None = "seconds"
    baseline: bool = True
    #: The wall / floor target, and the most 429s allowed (None: no bound).
    target: float = 1.25
    max_throttled: int | None = None
    #: Also run with the shared 429 knowledge off ("before").
    before: bool = False

    @property
    def floor(self) -> float:
        """Seconds the bucket needs to hand out every token of the workload."""
        return max(0, self.workers * self.calls - self.burst) / self.rate

    @property
    def label(self) -> str:
        """A short description for the table."""
        retry_after = {
            "seconds": "Retry-After seconds",
            "http-date": "Retry-After HTTP-date",
            None: "no Retry-After",
        }
        return f"{self.workers} x {self.calls} at {self.rate:g}/s, burst {self.burst}, {retry_after[self.retry_after]}"


@dataclass
class Outcome:
    """What one workload run gave."""

    wall: float
    requests: int
    throttled: int
    failed: int
    connections: int
    #: The most requests one call needed; ours only (each get_stats call has its own TLS connection, so requests
    #: per connection are attempts per call); HttpHook pools one connection per hook across calls.
    max_attempts: int | None = None


def _run_workers(workers: list[Callable[[], None]], calls: int, deadline: float) -> tuple[float, int]:
    """Start every worker together; each makes ``calls`` calls. Return (wall seconds, failed calls)."""
    barrier = threading.Barrier(len(workers) + 1)
    failures: list[BaseException] = []
    lock = threading.Lock()
    stop_at = [math.inf]

    def work(call: Callable[[], None]) -> None:
        barrier.wait()
        for _ in range(calls):
            if time.monotonic() > stop_at[0]:
                with lock:
                    failures.append(TimeoutError("workload deadline"))
                continue
            try:
                call()
            except Exception as exc:
                with lock:
                    failures.append(exc)

    threads = [threading.Thread(target=work, args=(call,), daemon=True) for call in workers]
    for thread in threads:
        thread.start()
    started = time.monotonic()
    stop_at[0] = started + deadline
    barrier.wait()
    for thread in threads:
        thread.join(timeout=max(0.0, started + deadline + 90 - time.monotonic()))
    wall = time.monotonic() - started
    if any(thread.is_alive() for thread in threads):
        failures.append(TimeoutError("a worker did not finish"))
    return wall, len(failures)


def _ours(emulator: Any, case: Case) -> list[Callable[[], None]]:
    from airflow_provider_zendrive.hooks.zendrive import ZenDriveStatsHook

    calls: list[Callable[[], None]] = []
    for index in range(case.workers):
        conn_id = f"zendrive_bench_{index}"
        os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"] = emulator.connection_uri(max_retries=str(MAX_RETRIES))
        hook = ZenDriveStatsHook(zendrive_conn_id=conn_id)
        calls.append(functools.partial(_fetch, hook))
    return calls


def _fetch(hook: Any) -> None:
    _check(hook.get_stats(DAY, DAY))


def _check(stats: Any) -> None:
    if stats["from"] != DAY or stats["to"] != DAY:
        raise AssertionError(f"unexpected window {stats['from']}..{stats['to']}")


def _baseline(emulator: Any, case: Case) -> list[Callable[[], None]]:
    # AirflowException is what HttpHook.check_response raises on any status >= 400, a 429 included, without the
    # response: a predicate on requests.HTTPError (or on the status) never fires, so a user retries on this type.
    import requests
    import tenacity
    from airflow.providers.common.compat.sdk import AirflowException
    from airflow.providers.http.hooks.http import HttpHook

    from airflow_provider_zendrive.testing import DEMO_ACCESS_KEY, DEMO_SECRET_KEY

    body = {"access_key": DEMO_ACCESS_KEY, "secret_key": DEMO_SECRET_KEY, "from": DAY, "to": DAY}
    retry_args = {
        "wait": tenacity.wait_exponential(multiplier=1, max=60),
        "stop": tenacity.stop_after_attempt(MAX_RETRIES + 1) | tenacity.stop_before_delay(BASELINE_DEADLINE),
        "retry": tenacity.retry_if_exception_type(
            (AirflowException, requests.exceptions.ConnectionError, requests.exceptions.Timeout)
        ),
        "reraise": True,
    }
    calls: list[Callable[[], None]] = []
    for index in range(case.workers):
        conn_id = f"http_bench_{index}"
        os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"] = json.dumps(
            {"conn_type": "http", "schema": "https", "host": "127.0.0.1", "port": emulator.port}
        )
        hook = HttpHook(method="POST", http_conn_id=conn_id)

        def call(hook: HttpHook = hook) -> None:
            response = hook.run_with_advanced_retry(
                _retry_args=retry_args,
                endpoint="/zendrive-api/cdn-stats/",
                json=body,
                extra_options={"verify": emulator.ca_path, "timeout": 30},
            )
            _check(response.json())

        calls.append(call)
    return calls


@contextlib.contextmanager
def unshared() -> Iterator[None]:
    """Every 429 left to the caller that got it: the hooks as they were before the shared 429 knowledge."""
    from airflow_provider_zendrive._client.pacing import Turn

    def alone(self: Turn, now: float, error: Exception, *, longest: float = 0.0) -> bool:
        return False

    throttled = Turn.throttled
    Turn.throttled = alone  # type: ignore[method-assign]
    try:
        yield
    finally:
        Turn.throttled = throttled  # type: ignore[method-assign]


def run_case(emulator: Any, case: Case, which: str) -> Outcome:
    """Run the workload once through ``which`` (``ours``, ``unshared`` or ``baseline``) on a fresh bucket."""
    from airflow_provider_zendrive._client.pacing import forget_paces

    emulator.reset()
    forget_paces()  # a fresh bucket: nothing known about it
    emulator.rate_limit, emulator.burst, emulator.retry_after = case.rate, case.burst, case.retry_after
    calls = _baseline(emulator, case) if which == "baseline" else _ours(emulator, case)
    with quiet_logs(), unshared() if which == "unshared" else contextlib.nullcontext():
        wall, failed = _run_workers(calls, case.calls, WORKLOAD_DEADLINE)
    recorded = list(emulator.requests)
    statuses = [request.status for request in recorded]
    per_connection = Counter(request.connection_id for request in recorded)
    return Outcome(  # the emulator's counters are reset at the start of each run
        wall=wall,
        requests=len(statuses),
        throttled=statuses.count(429),
        failed=failed,
        connections=emulator.connections,
        max_attempts=max(per_connection.values(), default=0) if which != "baseline" else None,
    )


def cases(quick: bool) -> list[Case]:
    """The workloads: the spec's 8 x 2 at 4/s, a larger one, and Retry-After variants of the first."""
    if quick:
        return [
            Case(4, 2, 4.0, 4, before=True),
            Case(4, 2, 4.0, 1, before=True),
            Case(8, 2, 8.0, 4),
            Case(4, 2, 4.0, 1, retry_after=None, baseline=False),
        ]
    return [
        Case(8, 2, 4.0, 4, target=1.15, max_throttled=8, before=True),
        Case(8, 2, 4.0, 1, target=1.5, before=True),
        Case(16, 4, 8.0, 8),
        Case(8, 2, 4.0, 1, retry_after="http-date", baseline=False),
        Case(8, 2, 4.0, 1, retry_after=None, baseline=False, target=1.5, max_throttled=16, before=True),
        Case(8, 2, 4.0, 4, retry_after=None, baseline=False, before=True),
    ]


def run(quick: bool) -> list[Result]:
    """Run every case, ours and the baseline interleaved in each repeat; return the table lines."""
    isolate_airflow_home()
    from airflow_provider_zendrive.testing import ZenDriveEmulator

    repeats = 1 if quick else 3
    results: list[Result] = []
    with ZenDriveEmulator(plain_http=False) as emulator:
        _warm_up(emulator)
        for case in cases(quick):
            runs: dict[str, list[Outcome]] = {"ours": [], "unshared": [], "baseline": []}
            for repeat in range(repeats):
                order = ["ours"] + ["unshared"] * case.before + ["baseline"] * case.baseline
                if repeat % 2:
                    order.reverse()
                for which in order:
                    outcome = run_case(emulator, case, which)
                    runs[which].append(outcome)
                    eprint(
                        f"rate limit: {case.label}: {which} {outcome.wall:.2f} s, {outcome.requests} requests, "
                        f"{outcome.throttled} x 429, {outcome.failed} failed"
                    )
            results.extend(_lines(case, runs["ours"], runs["baseline"], runs["unshared"]))
    return results


def _warm_up(emulator: Any) -> None:
    """One call each way outside the clock: imports, TLS context, connection parsing."""
    warm = Case(1, 1, 100.0, 1)
    run_case(emulator, warm, "ours")
    run_case(emulator, warm, "baseline")


def _summary(outcomes: list[Outcome]) -> str:
    walls = Series([outcome.wall for outcome in outcomes])
    throttled = Series([float(outcome.throttled) for outcome in outcomes])
    failed = sum(outcome.failed for outcome in outcomes)
    connections = Series([float(outcome.connections) for outcome in outcomes])
    text = (
        f"{walls.fmt()}; 429s: {throttled.fmt(unit='', digits=4)}; "
        f"TLS connections: {connections.fmt(unit='', digits=4)}"
    )
    attempts = [outcome.max_attempts for outcome in outcomes if outcome.max_attempts is not None]
    if attempts:
        text += f"; most attempts by one call: {max(attempts)}"
    if failed:
        text += f"; **{failed} calls failed**"
    return text


def _throttled(outcomes: list[Outcome]) -> float:
    return Series([float(outcome.throttled) for outcome in outcomes]).median


def _lines(case: Case, ours: list[Outcome], baseline: list[Outcome], unshared: list[Outcome]) -> list[Result]:
    walls = [outcome.wall for outcome in ours]
    vs_floor = ratio_series(walls, [case.floor] * len(walls))
    failed = sum(outcome.failed for outcome in ours)
    throttled_ok = case.max_throttled is None or _throttled(ours) <= case.max_throttled
    met_floor = vs_floor.median <= case.target and throttled_ok and not failed
    achieved = (case.workers * case.calls - case.burst) / Series(walls).median
    note = f"floor (K*M - burst)/R = {case.floor:.2f} s; achieved {achieved:.2f} req/s of {case.rate:g}/s"
    if failed:
        note += f"; {failed} calls failed"
    if not met_floor:
        note += "; " + _miss_reason(case)
    target = f"<= {case.target:g}" + ("" if case.max_throttled is None else f", <= {case.max_throttled} 429s")
    lines = [
        Result(
            "Rate limit: wall / floor",
            case.label,
            _summary(ours),
            f"floor {case.floor:.2f} s",
            vs_floor,
            target,
            met_floor,
            note,
        )
    ]
    if case.before and unshared:
        lines.extend(_before_lines(case, ours, unshared))
    if not (case.baseline and baseline):
        return lines
    vs_base = ratio_series(walls, [outcome.wall for outcome in baseline])
    base_failed = sum(outcome.failed for outcome in baseline)
    met = vs_base.median < 1 and not failed
    note = "HttpHook.run_with_advanced_retry with tenacity wait_exponential(multiplier=1, max=60)"
    if base_failed:
        note += (
            f"; the baseline gave up on {base_failed} calls at its {BASELINE_DEADLINE:g} s stop_before_delay, "
            "so its wall is a lower bound and the ratio an upper bound"
        )
    if not met and 0.9 <= vs_base.median <= 1.1:
        note += (
            f"; a tie: with the bucket refilled to {case.burst} tokens every second, tenacity's first 1 s wait "
            "lands where Retry-After: 1 does, and few calls are throttled often enough for its exponential growth "
            "to matter"
        )
    lines.append(
        Result(
            "Rate limit: wall / HttpHook",
            case.label,
            _summary(ours),
            _summary(baseline),
            vs_base,
            "< 1",
            met,
            note,
        )
    )
    return lines


def _before_lines(case: Case, ours: list[Outcome], unshared: list[Outcome]) -> list[Result]:
    """The same workload with the shared 429 knowledge off (as in 0.1.0), and the two side by side."""
    walls = [outcome.wall for outcome in unshared]
    failed = sum(outcome.failed for outcome in ours)
    vs_before = ratio_series([outcome.wall for outcome in ours], walls)
    fewer = _throttled(ours) < _throttled(unshared)
    return [
        Result(
            "Rate limit: wall / floor, shared 429 knowledge off",
            case.label,
            _summary(unshared),
            f"floor {case.floor:.2f} s",
            ratio_series(walls, [case.floor] * len(walls)),
            "",
            None,
            "before: each thread learns only from its own 429s and waits "
            + (
                "its own full-jitter backoff"
                if case.retry_after is None
                else "its Retry-After plus up to 1 s of jitter"
            )
            + ", as in 0.1.0 (Turn.throttled patched for this run)",
        ),
        Result(
            "Rate limit: shared 429 knowledge on / off",
            case.label,
            _summary(ours),
            _summary(unshared),
            vs_before,
            "< 1, fewer 429s",
            vs_before.median < 1 and fewer and not failed,
            f"median 429s {_throttled(ours):g} on, {_throttled(unshared):g} off; on: "
            + (
                "the threads of the key queue and are released one at a time at the step its 429s and successes "
                "teach"
                if case.retry_after is None
                else "one 429 holds every thread of the key until its Retry-After, then the queue is released at "
                "the key's pace"
            ),
        ),
    ]


def _miss_reason(case: Case) -> str:
    if case.retry_after is None:
        return (
            "without Retry-After the key's pace is learned from its answers: the first wave is refused before "
            "anything is known, the first step is a guess (1 s over the queue), and the step keeps probing a "
            "little faster than the refill, so some releases are refused"
        )
    return (
        f"Retry-After has whole-second granularity while the key refills every {1 / case.rate:g} s: the first "
        "wave (every worker at once, before any 429 is known) is refused before anything can be shared, and each "
        "released request the key still refuses (while its pace is measured) costs its caller a whole "
        "Retry-After; the floor assumes perfect scheduling"
    )


if __name__ == "__main__":
    raise SystemExit(cli(__doc__ or "", run))
