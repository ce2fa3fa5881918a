"""
Run every benchmark, print one markdown table and write it, with the machine, to ``docs/benchmarks.md``.

Usage (``make bench`` runs the first)::

    python benchmarks/run.py                 # full sizes; writes docs/benchmarks.md
    python benchmarks/run.py --quick         # small sizes, few repeats; writes nothing unless --output
    python benchmarks/run.py --only parse,table --output /tmp/bench.md

Each figure is a ratio to a baseline measured in the same run, in interleaved repeats: the median of the
per-repeat ratios with its spread [min..max]. Nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import importlib.metadata
import os
import platform
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path

from _common import Result, eprint, isolate_airflow_home, markdown_table

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = {
    "history": "bench_history",
    "parse": "bench_parse",
    "rate_limit": "bench_rate_limit",
    "requests": "bench_requests",
    "table": "bench_table",
    "triggers": "bench_triggers",
    "usage_page": "bench_usage_page",
}
TARGETS = """\
- Parse cost: importing our operator + sensor adds <= 5 % to `import airflow.sdk` (fresh interpreter wall).
- Rate limit: wall <= 1.25 x the floor `(K*M - burst) / R` (8 x 2 at 4/s: burst 4 <= 1.15 x and <= 8 429s;
  burst 1 <= 1.5 x and fewer 429s than without shared 429 knowledge; without Retry-After, burst 1 <= 1.5 x and
  <= 16 429s, burst 4 <= 1.25 x), and faster than `HttpHook.run_with_advanced_retry` with tenacity exponential
  backoff.
- Requests: `ceil(days / 366)` requests over 1 TLS connection.
- Table sink: `upsert_rows` (revisions detected) at least as fast as `DbApiHook.insert_rows(..., replace=True)` on
  SQLite, PostgreSQL and MariaDB; on PostgreSQL 36,600 rows (100 services x a year) in <= 0.6 x.
- History: `zendrive_history` loads a range in `ceil(days / 366)` requests from one task, faster than one daily run
  per day (the backfill path).
- Triggers: 50 deferred sensors on one suspended key for 30 s at `poke_interval=5` make <= 7 requests (about 300
  without coalescing) and all fire within one interval of the resume; 50 triggers on 50 keys are no slower than
  without coalescing.
- Usage page: one answer (read + HTML with both charts) for a year of 100 services on SQLite in <= 0.25 s, and no
  slower than a plain `SELECT *` of the same 400-day window."""


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def machine() -> list[str]:
    """Lines describing the machine and the software measured."""
    load = " / ".join(f"{value:.2f}" for value in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    return [
        f"- CPUs: {os.cpu_count()} ({platform.machine()}, {platform.processor() or 'unknown processor'})",
        f"- OS: {platform.platform()}",
        f"- Python: {platform.python_version()} ({platform.python_implementation()})",
        f"- apache-airflow {_version('apache-airflow')}, apache-airflow-task-sdk {_version('apache-airflow-task-sdk')}, "
        f"airflow-provider-zendrive {_version('airflow-provider-zendrive')}",
        f"- apache-airflow-providers-http {_version('apache-airflow-providers-http')}, "
        f"common-sql {_version('apache-airflow-providers-common-sql')}, "
        f"sqlite {_version('apache-airflow-providers-sqlite')}, postgres {_version('apache-airflow-providers-postgres')}, "
        f"mysql {_version('apache-airflow-providers-mysql')}",
        f"- requests {_version('requests')}, tenacity {_version('tenacity')}, psycopg {_version('psycopg')}, "
        f"mysqlclient {_version('mysqlclient')}, "
        f"SQLite library {sqlite3.sqlite_version}",
        f"- Load average (1/5/15 min) at start: {load}",
    ]


def document(results: Sequence[Result], machine_lines: list[str], seconds: float, quick: bool) -> str:
    """The whole ``docs/benchmarks.md``."""
    missed = [result for result in results if result.met is False]
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`python benchmarks/run.py`); do not edit by hand. Each figure is a ratio to a "
        "baseline measured in the same run, in interleaved repeats: the median of the per-repeat ratios, with "
        "its spread [min..max]; the Ours and Baseline columns show medians [min..max] of the raw measurements.",
        "",
        f"Run: {when}, {seconds:.0f} s{' (--quick: small sizes, few repeats)' if quick else ''}.",
        "",
        "## Machine",
        "",
        *machine_lines,
        "",
        "## Targets",
        "",
        TARGETS,
        "",
        "## Results",
        "",
        markdown_table(results),
        "",
        "## Missed targets",
        "",
    ]
    if missed:
        parts.extend(f"- {result.benchmark}, {result.case}: {result.note}" for result in missed)
    else:
        parts.append("None.")
    parts.extend(["", "## How each figure is measured", ""])
    for name in BENCHMARKS.values():
        module = importlib.import_module(name)
        doc = (module.__doc__ or "").strip().split("\n\nRun alone:")[0]
        parts.extend([f"### `benchmarks/{name}.py`", "", doc, ""])
    return "\n".join(parts).rstrip() + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmarks; print the table; write the document."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes and few repeats (a smoke run)")
    parser.add_argument("--only", default="", help=f"comma-separated subset of {', '.join(BENCHMARKS)}")
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help="where to write the markdown document (default: docs/benchmarks.md, except with --quick: nowhere)",
    )
    args = parser.parse_args(argv)
    selected = [name.strip() for name in args.only.split(",") if name.strip()] or list(BENCHMARKS)
    unknown = sorted(set(selected) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}")
    output = (
        args.output if args.output is not None else (None if args.quick else ROOT / "docs" / "benchmarks.md")
    )

    isolate_airflow_home()
    machine_lines = machine()
    started = time.monotonic()
    results: list[Result] = []
    for name in selected:
        module = importlib.import_module(BENCHMARKS[name])
        eprint(f"== {name} ==")
        part_started = time.monotonic()
        results.extend(module.run(args.quick))
        eprint(f"== {name}: {time.monotonic() - part_started:.0f} s ==")
    seconds = time.monotonic() - started

    print(markdown_table(results))
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(document(results, machine_lines, seconds, args.quick))
        eprint(f"wrote {output} ({seconds:.0f} s in all)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
