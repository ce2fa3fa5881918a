"""
History: loading N past days into the warehouse table, ``zendrive_history`` against the backfill path.

Ours is one run of the example DAG ``zendrive_history`` with ``from`` / ``to`` spanning the N days: one task,
``ceil(N / 366)`` requests. The baseline is what ``airflow backfill create`` over ``zendrive_daily_billing``
amounts to: one run of that DAG per logical date, N task runs and N requests. Both run the real example DAGs
with ``airflow dags test`` against the HTTPS emulator, into SQLite, in one child interpreter per path that
imports Airflow and migrates its metadata DB off the clock; the timed part is the DAG runs alone. A real
backfill adds the scheduler's own loop latency between runs on top, so the baseline is its lower bound.

Run alone: ``python benchmarks/bench_history.py [--quick]``.
"""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import Result, Series, cli, eprint

ROOT = Path(__file__).resolve().parent.parent
LAST = datetime.date(2026, 10, 31)


def _child(mode: str, first: str, last: str) -> int:
    """
    In a fresh interpreter: migrate, then run the DAG(s) and print the seconds the runs took.

    Airflow's own output goes to stderr's log file; stdout carries only the figure.
    """
    from airflow.cli import cli_parser

    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    parser = cli_parser.get_parser()

    def airflow(*argv: str) -> None:
        args = parser.parse_args(list(argv))
        try:
            args.func(args)
        except SystemExit as exc:
            if exc.code not in (None, 0):
                raise RuntimeError(f"airflow {' '.join(argv)} failed") from None

    airflow("db", "migrate")
    start, end = datetime.date.fromisoformat(first), datetime.date.fromisoformat(last)
    started = time.perf_counter()
    if mode == "history":
        airflow("dags", "test", "zendrive_history", "--conf", json.dumps({"from": first, "to": last}))
    else:  # one daily run per day: the run for logical date D pulls D - 1
        day = start
        while day <= end:
            airflow("dags", "test", "zendrive_daily_billing", (day + datetime.timedelta(days=1)).isoformat())
            day += datetime.timedelta(days=1)
    print(f"{time.perf_counter() - started:.6f}", file=out, flush=True)
    return 0


def _measure(mode: str, first: datetime.date, last: datetime.date, uri: str) -> float:
    home = tempfile.mkdtemp(prefix=f"zendrive-bench-{mode}-")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW__", "AIRFLOW_CONN_"))}
    env.update(
        {
            "AIRFLOW_HOME": home,
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "example_dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
            "AIRFLOW_CONN_ZENDRIVE_DEFAULT": uri,
            "AIRFLOW_CONN_ZENDRIVE_WAREHOUSE": json.dumps(
                {"conn_type": "sqlite", "host": f"{home}/warehouse.db"}
            ),
            "PYTHONWARNINGS": "ignore",
        }
    )
    with open(f"{home}/airflow.log", "w") as log:
        done = subprocess.run(
            [sys.executable, __file__, "--child", mode, first.isoformat(), last.isoformat()],
            env=env,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            timeout=1800,
            check=False,
        )
    if done.returncode != 0:
        raise RuntimeError(f"bench_history: the {mode} path failed; see {home}/airflow.log")
    return float(done.stdout.strip().splitlines()[-1])


def run(quick: bool) -> list[Result]:
    """Load the same range both ways; compare API requests and wall time."""
    from airflow_provider_zendrive.testing import ZenDriveEmulator

    days = 7 if quick else 30
    first = LAST - datetime.timedelta(days=days - 1)
    with ZenDriveEmulator() as emulator:
        uri = emulator.connection_uri()
        seconds: dict[str, float] = {}
        requests: dict[str, int] = {}
        for mode in ("history", "backfill"):
            emulator.reset()
            seconds[mode] = _measure(mode, first, LAST, uri)
            requests[mode] = len(emulator.requests)
            eprint(f"history: {mode} {days} days: {seconds[mode]:.1f} s, {requests[mode]} requests")
    ratio = Series([seconds["history"] / seconds["backfill"]])
    case = f"{days} days ({first}..{LAST}) into SQLite"
    return [
        Result(
            "History: zendrive_history / one daily run per day",
            f"{case}: wall time of the DAG runs",
            f"{seconds['history']:.1f} s",
            f"{seconds['backfill']:.1f} s",
            ratio,
            "< 1",
            ratio.median < 1,
            "one run each (a DAG run per day is the expensive part, not noise); the baseline excludes a "
            "scheduler's latency between backfill runs, so a real backfill is slower still",
        ),
        Result(
            "History: zendrive_history / one daily run per day",
            f"{case}: API requests",
            f"{requests['history']} request(s), 1 task run",
            f"{requests['backfill']} requests, {days} task runs",
            Series([requests["history"] / requests["backfill"]]),
            "ceil(days / 366)",
            requests["history"] == -(-days // 366),
            "a year is 1 request against 365; three years are 3 against 1,096",
        ),
    ]


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        raise SystemExit(_child(*sys.argv[2:]))
    raise SystemExit(cli(__doc__ or "", run))
