"""
Shared pieces of the benchmark scripts: an isolated Airflow home, statistics, the result rows and the table.

Every figure is a ratio to a baseline measured in the same run, in interleaved repeats; the table shows the
median of the per-repeat ratios with its spread (min..max), and the medians of the raw measurements.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import statistics
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The throwaway database servers the table benchmark starts are the tests' (tests/postgres_server.py): the
# benchmarks share that folder as a second module search root, as mypy's mypy_path does.
sys.path.append(str(Path(__file__).resolve().parents[1] / "tests"))

__all__ = [
    "Result",
    "Series",
    "cli",
    "isolate_airflow_home",
    "markdown_table",
    "quiet_logs",
    "ratio_series",
]


def isolate_airflow_home() -> str:
    """
    Point Airflow at a throwaway home before anything imports it, so a benchmark never touches ~/airflow.

    Child interpreters inherit the variables. Idempotent: the first call wins.
    """
    home = os.environ.get("ZENDRIVE_BENCH_AIRFLOW_HOME")
    if home is None:
        home = tempfile.mkdtemp(prefix="zendrive-bench-airflow-")
        os.environ["ZENDRIVE_BENCH_AIRFLOW_HOME"] = home
    os.environ["AIRFLOW_HOME"] = home
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    # Hooks log every statement and retry at INFO / WARNING; Airflow's structlog writes to stdout, which must
    # hold only the table. (quiet_logs() also drops the ERROR lines HttpHook writes on every 429.)
    os.environ["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "ERROR"
    return home


@contextlib.contextmanager
def quiet_logs() -> Iterator[None]:
    """
    Silence log records below CRITICAL while a workload runs.

    Both the hook (one WARNING per retry) and ``HttpHook`` (the response body at ERROR on every 429) log a lot
    under a rate limit, and Airflow's structlog setup writes to stdout, which must hold only the table.
    Loggers bound meanwhile (the hooks of one run) stay filtered; the global configuration is restored.
    """
    previous = logging.root.manager.disable
    logging.disable(logging.ERROR)
    saved: dict[str, Any] | None = None
    try:
        import structlog
    except ImportError:  # pragma: no cover - Airflow always ships structlog
        structlog = None  # type: ignore[assignment]
    if structlog is not None:
        saved = {"wrapper_class": structlog.get_config()["wrapper_class"]}
        structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))
    try:
        yield
    finally:
        if structlog is not None and saved is not None:
            structlog.configure(**saved)
        logging.disable(previous)


@dataclass
class Series:
    """Repeated measurements of one quantity."""

    values: list[float] = field(default_factory=list)

    def add(self, value: float) -> None:
        """Record one measurement."""
        self.values.append(value)

    @property
    def median(self) -> float:
        """The median (NaN when empty)."""
        return statistics.median(self.values) if self.values else float("nan")

    def fmt(self, unit: str = "s", digits: int = 3) -> str:
        """``median unit [min..max]``."""
        if not self.values:
            return "n/a"
        if len(self.values) == 1:
            return f"{self.values[0]:.{digits}g} {unit}".strip()
        low, high = min(self.values), max(self.values)
        return f"{self.median:.{digits}g} {unit} [{low:.{digits}g}..{high:.{digits}g}]".replace("  ", " ")


def ratio_series(numerators: Sequence[float], denominators: Sequence[float]) -> Series:
    """Per-repeat ratios of two paired series (measured in the same repeat, back to back)."""
    return Series([a / b for a, b in zip(numerators, denominators, strict=True) if b > 0])


@dataclass
class Result:
    """
    One line of the table.

    :param benchmark: the benchmark's name (parse cost, rate limit, ...).
    :param case: the workload.
    :param ours: our measurement (median and spread, formatted).
    :param baseline: the baseline's measurement, formatted, with what the baseline is.
    :param ratio: the per-repeat ratios ours / baseline.
    :param target: the target as text, e.g. ``<= 1.05``.
    :param met: whether the target is met (None: no target on this line).
    :param note: anything the reader needs to interpret the line, and the reason when a target is missed.
    """

    benchmark: str
    case: str
    ours: str
    baseline: str
    ratio: Series
    target: str = ""
    met: bool | None = None
    note: str = ""

    def cells(self) -> list[str]:
        """The markdown cells of this line."""
        verdict = {True: "met", False: "**missed**", None: ""}[self.met]
        return [
            self.benchmark,
            self.case,
            self.ours,
            self.baseline,
            self.ratio.fmt(unit="x", digits=3),
            self.target,
            verdict,
            self.note,
        ]


HEADER = [
    "Benchmark",
    "Case",
    "Ours",
    "Baseline",
    "Ratio (median [min..max])",
    "Target",
    "Target met",
    "Notes",
]


def markdown_table(results: Sequence[Result]) -> str:
    """The results as one GitHub-flavoured markdown table."""

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(cell.replace("|", "\\|").replace("\n", " ") for cell in cells) + " |"

    lines = [line(HEADER), line(["---"] * len(HEADER))]
    lines.extend(line(result.cells()) for result in results)
    return "\n".join(lines)


def cli(description: str, run: Callable[[bool], list[Result]], argv: Sequence[str] | None = None) -> int:
    """Run one benchmark module on its own: ``--quick`` for small sizes; print its table."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="small sizes and few repeats (a smoke run)")
    args = parser.parse_args(argv)
    isolate_airflow_home()
    results = run(args.quick)
    print(markdown_table(results))
    return 0  # a missed target is reported in the table, not as a failure


def eprint(*parts: object) -> None:
    """Progress lines go to stderr, so stdout holds only the table."""
    print(*parts, file=sys.stderr, flush=True)
