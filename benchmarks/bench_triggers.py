"""
Deferred sensors in one triggerer: N ``ZenDriveServiceActiveTrigger`` on one event loop, in-process, against the
emulator, as the triggerer runs them (every trigger's ``run()`` a task of one loop).

Each trigger is created as the deferrable sensor creates it (``poke_interval`` and ``first_poll_after`` both the
sensor's interval); their deferrals are spread evenly over the first interval, as sensors that poked at
different moments, while the service is suspended (``emulator.suspend``: 403 to every request). Requests are
counted over the first ``suspended`` seconds; the service is resumed half an interval later, half an interval
after the first trigger's polls: in the middle of the range a trigger may wait after a resume (zero to one
interval). The figures, with and without coalescing in the same run:

* **one key**: 50 triggers on one connection (a mapped sensor, or several DAGs gated on one account):
  the requests made while the service is suspended, and the time from the resume until the last trigger fired;
* **50 keys**: 50 triggers on 50 accounts, one each: the same two figures, to show that triggers of different
  keys do not wait for each other.

Without coalescing ("before") is the same code with every trigger given a poll of its own (``shared_poll``
patched for that run): one request per trigger per interval, as in 0.1.0.

Run alone: ``python benchmarks/bench_triggers.py [--quick]``.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from _common import Result, Series, cli, eprint, isolate_airflow_home, quiet_logs, ratio_series


@dataclass(frozen=True)
class Case:
    """``triggers`` on ``keys`` accounts, polling every ``interval`` s, the service suspended ``suspended`` s."""

    name: str
    triggers: int
    keys: int
    interval: float
    suspended: float

    @property
    def polls_per_key(self) -> int:
        """Polls one key needs while suspended: one per interval, the first one interval after the deferral."""
        return math.floor(self.suspended / self.interval)


@dataclass
class Outcome:
    """What one run gave."""

    requests: int  # in the first ``suspended`` seconds
    fired_after: float  # from the resume until the last trigger fired
    failed: int  # triggers that did not fire "active"


@contextlib.contextmanager
def no_coalescing() -> Iterator[None]:
    """Give every trigger a poll of its own: the triggers as they were before coalescing."""
    import ssl

    from airflow_provider_zendrive._client import pacing, polling
    from airflow_provider_zendrive._client.settings import ZenDriveSettings

    shared = polling.shared_poll

    def own_poll(settings: ZenDriveSettings, context: ssl.SSLContext) -> polling.SharedPoll:
        key = (pacing.KeyId.of(settings), settings.timeout)
        return polling.SharedPoll(key, settings, context, {})

    polling.shared_poll = own_poll
    try:
        yield
    finally:
        polling.shared_poll = shared


def run_case(emulator: Any, case: Case, coalescing: bool) -> Outcome:
    """Run the case once on a fresh emulator state."""
    from airflow_provider_zendrive.triggers.zendrive import ZenDriveServiceActiveTrigger

    emulator.reset()
    keys = [f"AKBENCH{n:03d}" for n in range(case.keys)]
    for n, key in enumerate(keys):
        emulator.add_account(key, f"bench-secret-{n:03d}", 5000 + n)
        os.environ[f"AIRFLOW_CONN_ZENDRIVE_TRIGGERS_{n}"] = emulator.connection_uri(
            key, f"bench-secret-{n:03d}"
        )
        emulator.suspend(key)
    triggers = [
        ZenDriveServiceActiveTrigger(
            f"zendrive_triggers_{n % case.keys}", poke_interval=case.interval, first_poll_after=case.interval
        )
        for n in range(case.triggers)
    ]

    async def fire(
        trigger: ZenDriveServiceActiveTrigger, deferred: float
    ) -> tuple[list[dict[str, Any]], float]:
        await asyncio.sleep(deferred)
        events = [event.payload async for event in trigger.run()]
        return events, time.monotonic()

    async def main() -> Outcome:
        spread = case.interval / case.triggers
        tasks = [asyncio.create_task(fire(trigger, n * spread)) for n, trigger in enumerate(triggers)]
        await asyncio.sleep(case.suspended)
        requests = len(emulator.requests)
        await asyncio.sleep(case.interval / 2)
        resumed = time.monotonic()
        for key in keys:
            emulator.resume(key)
        fired = await asyncio.wait_for(asyncio.gather(*tasks), case.interval * 3 + 30)
        await asyncio.sleep(0.2)  # closed TLS connections finish closing
        failed = sum(1 for events, _ in fired if events != [{"status": "active"}])
        return Outcome(requests, max(at for _, at in fired) - resumed, failed)

    with quiet_logs(), contextlib.nullcontext() if coalescing else no_coalescing():
        return asyncio.run(main())


def cases(quick: bool) -> list[Case]:
    """The issue's workloads (``--quick``: shorter, fewer triggers)."""
    if quick:
        return [Case("one key", 10, 1, 1.0, 6.0), Case("many keys", 10, 10, 1.0, 3.0)]
    return [Case("one key", 50, 1, 5.0, 30.0), Case("many keys", 50, 50, 5.0, 15.0)]


def run(quick: bool) -> list[Result]:
    """Each case with and without coalescing, alternating which goes first; return the table lines."""
    isolate_airflow_home()
    from airflow_provider_zendrive.testing import ZenDriveEmulator

    results: list[Result] = []
    with ZenDriveEmulator(plain_http=False) as emulator:
        run_case(emulator, Case("warm-up", 2, 1, 0.2, 0.3), True)  # imports, TLS contexts
        for number, case in enumerate(cases(quick)):
            runs: dict[bool, Outcome] = {}
            for coalescing in (True, False) if number % 2 == 0 else (False, True):
                runs[coalescing] = run_case(emulator, case, coalescing)
                outcome = runs[coalescing]
                eprint(
                    f"triggers: {case.name}: coalescing {'on' if coalescing else 'off'}: {outcome.requests} "
                    f"requests, all fired {outcome.fired_after:.2f} s after the resume, {outcome.failed} failed"
                )
            results.extend(_lines(case, runs[True], runs[False]))
    return results


def _lines(case: Case, ours: Outcome, before: Outcome) -> list[Result]:
    label = (
        f"{case.triggers} triggers on {'one key' if case.keys == 1 else f'{case.keys} keys'}, "
        f"poke_interval={case.interval:g}, suspended {case.suspended:g} s"
    )
    expected = case.keys * case.polls_per_key
    failed = f"; **{ours.failed} did not fire**" if ours.failed else ""
    lines = []
    if case.keys == 1:
        limit = math.floor(case.suspended / case.interval) + 1  # one per interval, and one: 7 for 30 s at 5 s
        lines.append(
            Result(
                "Triggers: requests while suspended",
                label,
                f"{ours.requests} requests{failed}",
                f"without coalescing: {before.requests} requests",
                ratio_series([ours.requests], [before.requests]),
                f"<= {limit} requests",
                ours.requests <= limit and not ours.failed,
                f"one poll per interval for the key: at most {case.polls_per_key} in {case.suspended:g} s (the first "
                "one interval after the first deferral); without coalescing one per trigger per interval",
            )
        )
    else:
        lines.append(
            Result(
                "Triggers: requests while suspended",
                label,
                f"{ours.requests} requests{failed}",
                f"without coalescing: {before.requests} requests",
                ratio_series([ours.requests], [before.requests]),
                f"<= {expected} (one poll per key per interval)",
                ours.requests <= expected and not ours.failed,
                "nothing to share between keys: every key polls on its own schedule",
            )
        )
    lines.append(
        Result(
            "Triggers: time to fire after the resume",
            label,
            f"all fired in {Series([ours.fired_after]).fmt()}",
            f"without coalescing: {Series([before.fired_after]).fmt()}",
            ratio_series([ours.fired_after], [before.fired_after]),
            f"<= {case.interval:g} s (one interval)"
            + ("" if case.keys == 1 else ", no slower than without coalescing"),
            ours.fired_after <= case.interval + 0.5
            and not ours.failed
            and (case.keys == 1 or ours.fired_after <= before.fired_after + 0.5),
            "every trigger fires on the first poll after the service turned active"
            + (
                "; each key's poll runs on its own trigger's schedule, so the wait after the resume is "
                "up to one interval either way"
                if case.keys > 1
                else ""
            ),
        )
    )
    return lines


if __name__ == "__main__":
    raise SystemExit(cli(__doc__ or "", run))
