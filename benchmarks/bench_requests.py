"""
Request economy: a 1-year and a 3-year pull through ``ZenDriveStatsHook.get_stats``.

Counted on the emulator's side: requests (must be ``ceil(days / 366)``) and TLS connections accepted (target 1).
Timed: the pull's wall time against the emulator's own time spent handling those requests (``server_time``),
so the ratio is the client's overhead, and against the same pull hand-rolled with the official HTTP provider
(``HttpHook.run`` per 366-day window, results merged by the caller).

Run alone: ``python benchmarks/bench_requests.py [--quick]``.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import time
from dataclasses import dataclass
from typing import Any

from _common import Result, Series, cli, eprint, isolate_airflow_home, quiet_logs, ratio_series

MAX_WINDOW_DAYS = 366


@dataclass(frozen=True)
class Pull:
    """One pull: an inclusive window of UTC days."""

    name: str
    start: datetime.date
    end: datetime.date

    @property
    def days(self) -> int:
        """Days in the window, both ends included."""
        return (self.end - self.start).days + 1

    @property
    def expected_requests(self) -> int:
        """``ceil(days / 366)``: the fewest requests the API allows."""
        return math.ceil(self.days / MAX_WINDOW_DAYS)


PULLS = (
    Pull("1-year pull", datetime.date(2025, 1, 1), datetime.date(2025, 12, 31)),
    Pull("3-year pull", datetime.date(2023, 1, 1), datetime.date(2025, 12, 31)),
)


@dataclass
class Measure:
    """One pull's wall time and what the emulator saw."""

    wall: float
    server: float
    requests: int
    connections: int
    daily: int


def _ours(emulator: Any, pull: Pull) -> Measure:
    from airflow_provider_zendrive.hooks.zendrive import ZenDriveStatsHook

    os.environ["AIRFLOW_CONN_ZENDRIVE_BENCH_PULL"] = emulator.connection_uri()
    emulator.reset()
    hook = ZenDriveStatsHook(zendrive_conn_id="zendrive_bench_pull")
    started = time.perf_counter()
    stats = hook.get_stats(pull.start, pull.end)
    wall = time.perf_counter() - started
    return _measure(emulator, wall, stats["daily"])


def _baseline(emulator: Any, pull: Pull) -> Measure:
    """The same pull hand-rolled with HttpHook: one ``run`` per 366-day window, the daily lists concatenated."""
    from airflow.providers.http.hooks.http import HttpHook

    from airflow_provider_zendrive.testing import DEMO_ACCESS_KEY, DEMO_SECRET_KEY

    os.environ["AIRFLOW_CONN_HTTP_BENCH_PULL"] = json.dumps(
        {"conn_type": "http", "schema": "https", "host": "127.0.0.1", "port": emulator.port}
    )
    emulator.reset()
    hook = HttpHook(method="POST", http_conn_id="http_bench_pull")
    started = time.perf_counter()
    daily: list[Any] = []
    start = pull.start
    while start <= pull.end:  # bounded: the window shrinks by up to 366 days a turn
        end = min(pull.end, start + datetime.timedelta(days=MAX_WINDOW_DAYS - 1))
        body = {
            "access_key": DEMO_ACCESS_KEY,
            "secret_key": DEMO_SECRET_KEY,
            "from": start.isoformat(),
            "to": end.isoformat(),
        }
        response = hook.run(
            endpoint="/zendrive-api/cdn-stats/",
            json=body,
            extra_options={"verify": emulator.ca_path, "timeout": 30},
        )
        daily.extend(response.json()["daily"])
        start = end + datetime.timedelta(days=1)
    wall = time.perf_counter() - started
    return _measure(emulator, wall, daily)


def _measure(emulator: Any, wall: float, daily: list[Any]) -> Measure:
    # The emulator adds a request's handling time just after flushing the response, so the client can be
    # done a few microseconds before the last addition: give the handler thread a moment, off the clock.
    time.sleep(0.02)
    return Measure(
        wall=wall,
        server=emulator.server_time,
        requests=len(emulator.requests),
        connections=emulator.connections,
        daily=len(daily),
    )


def run(quick: bool) -> list[Result]:
    """Pull each window ``repeats`` times each way, interleaved; return the table lines."""
    isolate_airflow_home()
    from airflow_provider_zendrive.testing import ZenDriveEmulator

    repeats = 3 if quick else 9
    results: list[Result] = []
    with ZenDriveEmulator(plain_http=False) as emulator, quiet_logs():
        for pull in PULLS:  # warm up: imports, TLS contexts, the emulator's data generator
            _ours(emulator, pull)
            _baseline(emulator, pull)
        for pull in PULLS:
            ours: list[Measure] = []
            base: list[Measure] = []
            for repeat in range(repeats):
                pair = (_ours, _baseline) if repeat % 2 == 0 else (_baseline, _ours)
                for fn in pair:
                    (ours if fn is _ours else base).append(fn(emulator, pull))
            eprint(
                f"requests: {pull.name}: ours {Series([m.wall for m in ours]).median:.3f} s, "
                f"baseline {Series([m.wall for m in base]).median:.3f} s"
            )
            results.extend(_lines(pull, ours, base))
    return results


def _lines(pull: Pull, ours: list[Measure], base: list[Measure]) -> list[Result]:
    requests = sorted({m.requests for m in ours})
    connections = sorted({m.connections for m in ours})
    base_requests = sorted({m.requests for m in base})
    base_connections = sorted({m.connections for m in base})
    case = f"{pull.name}: {pull.start}..{pull.end} ({pull.days} days)"
    walls = Series([m.wall for m in ours])
    servers = Series([m.server for m in ours])
    economy_met = requests == [pull.expected_requests] and connections == [1]
    overhead = ratio_series([m.wall for m in ours], [m.server for m in ours])
    return [
        Result(
            "Requests: requests / ceil(days/366); TLS connections",
            case,
            f"{_one(requests)} requests, {_one(connections)} TLS connection(s)",
            f"{pull.expected_requests} request(s), 1 connection",
            ratio_series([float(max(requests))] * len(ours), [float(pull.expected_requests)] * len(ours)),
            "1 x, 1 connection",
            economy_met,
            f"HttpHook hand-rolled per 366-day window: {_one(base_requests)} requests, "
            f"{_one(base_connections)} TLS connection(s)",
        ),
        Result(
            "Requests: wall / emulator server time",
            case,
            f"wall {walls.fmt()}",
            f"server time {servers.fmt()}",
            overhead,
            "",
            None,
            "the client's overhead over the emulator's request handling (which excludes the TLS handshake): "
            "handshake, JSON encode/decode, validation and merging of chunks; no target set",
        ),
        Result(
            "Requests: wall / HttpHook hand-rolled",
            case,
            f"wall {walls.fmt()}",
            f"wall {Series([m.wall for m in base]).fmt()}",
            ratio_series([m.wall for m in ours], [m.wall for m in base]),
            "",
            None,
            "HttpHook.run per 366-day window; the baseline does not merge summaries or validate the body",
        ),
    ]


def _one(values: list[int]) -> str:
    return str(values[0]) if len(values) == 1 else f"{min(values)}..{max(values)}"


if __name__ == "__main__":
    raise SystemExit(cli(__doc__ or "", run))
