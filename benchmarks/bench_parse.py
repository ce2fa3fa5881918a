"""
Parse cost: what importing our operator and sensor modules adds to a DAG file's parse.

Each measurement is a fresh interpreter (``python -c``) importing one of:

* ``airflow.sdk`` alone (the baseline: every DAG file imports it);
* ``airflow.sdk`` + ``airflow_provider_zendrive.operators.zendrive`` + ``airflow_provider_zendrive.sensors.zendrive``;
* ``airflow.sdk`` + ``airflow.providers.http.operators.http`` + ``airflow.providers.http.sensors.http``.

The variants run round-robin (so drift hits all of them alike), after one unmeasured warm-up each (bytecode
caches, page cache). The figure is the process wall time; the import time measured inside the interpreter
(which leaves out interpreter start-up) is in the notes. ``python -X importtime`` then names the modules each
variant adds on top of ``airflow.sdk``, heaviest first.

Run alone: ``python benchmarks/bench_parse.py [--quick]``.
"""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass

from _common import Result, Series, cli, eprint, isolate_airflow_home, ratio_series

SDK = ("airflow.sdk",)
VARIANTS: dict[str, tuple[str, ...]] = {
    "airflow.sdk": SDK,
    "ours": (
        *SDK,
        "airflow_provider_zendrive.operators.zendrive",
        "airflow_provider_zendrive.sensors.zendrive",
    ),
    "http": (*SDK, "airflow.providers.http.operators.http", "airflow.providers.http.sensors.http"),
}
#: One interpreter may not take longer than this (seconds).
TIMEOUT = 120


def _code(modules: tuple[str, ...]) -> str:
    imports = "; ".join(f"import {name}" for name in modules)
    return f"import time; t = time.perf_counter(); {imports}; print(time.perf_counter() - t)"


def measure(modules: tuple[str, ...]) -> tuple[float, float]:
    """Import ``modules`` in a fresh interpreter: (process wall seconds, import seconds inside it)."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", _code(modules)], capture_output=True, text=True, check=True, timeout=TIMEOUT
    )
    wall = time.perf_counter() - started
    return wall, float(done.stdout.strip().splitlines()[-1])


@dataclass
class Imported:
    """One line of ``-X importtime``: a module, its own and cumulative time (us), and its importer."""

    name: str
    self_us: int
    cumulative_us: int
    depth: int
    parent: Imported | None = None


def import_tree(modules: tuple[str, ...]) -> list[Imported]:
    """Run ``python -X importtime`` on ``modules``; return every import with its parent (the importer)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "; ".join(f"import {name}" for name in modules)],
        capture_output=True,
        text=True,
        check=True,
        timeout=TIMEOUT,
    )
    entries: list[Imported] = []
    stack: list[Imported] = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, cumulative_us, name = line.split(":", 1)[1].split("|")
        entry = Imported(
            name.strip(), int(self_us), int(cumulative_us), (len(name) - len(name.lstrip()) - 1) // 2
        )
        # -X importtime prints a module after everything it imported (post-order), one level deeper each.
        while stack and stack[-1].depth > entry.depth:
            stack.pop().parent = entry
        stack.append(entry)
        entries.append(entry)
    return entries


def added_modules(variant: tuple[str, ...], base: set[str]) -> tuple[int, float, list[Imported]]:
    """(count of modules added to ``base``, their own time in ms, the heaviest added subtrees)."""
    tree = import_tree(variant)
    added = [entry for entry in tree if entry.name not in base]
    # What the requested modules themselves pull in: their direct (new) imports, heaviest first.
    top = set(variant) | base
    roots = [
        entry
        for entry in added
        if entry.name not in variant and (entry.parent is None or entry.parent.name in top)
    ]
    roots.sort(key=lambda entry: entry.cumulative_us, reverse=True)
    return len(added), sum(entry.self_us for entry in added) / 1000, roots


def _heavy(roots: list[Imported], count: int = 4) -> str:
    names = [f"`{entry.name}` {entry.cumulative_us / 1000:.1f} ms" for entry in roots[:count]]
    return ", ".join(names) if names else "none"


def run(quick: bool) -> list[Result]:
    """Time the three variants round-robin; return the table lines."""
    isolate_airflow_home()
    repeats = 3 if quick else 9
    walls: dict[str, list[float]] = {name: [] for name in VARIANTS}
    imports: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for modules in VARIANTS.values():  # warm-up, not measured
        measure(modules)
    for repeat in range(repeats):
        names = list(VARIANTS)
        names = names[repeat % len(names) :] + names[: repeat % len(names)]  # rotate the order
        for name in names:
            wall, imported = measure(VARIANTS[name])
            walls[name].append(wall)
            imports[name].append(imported)
        eprint(
            f"parse: repeat {repeat + 1}/{repeats}: " + ", ".join(f"{n} {walls[n][-1]:.2f} s" for n in names)
        )
    base = {entry.name for entry in import_tree(SDK)}
    added = {name: added_modules(VARIANTS[name], base) for name in ("ours", "http")}

    def line(name: str, label: str, target: str, met: bool | None) -> Result:
        count, own_ms, roots = added[name]
        import_ratio = ratio_series(imports[name], imports["airflow.sdk"])
        note = (
            f"import time only (no interpreter start-up): {import_ratio.fmt(unit='x')}; "
            f"{count} modules added ({own_ms:.1f} ms own time under -X importtime), heaviest direct imports: {_heavy(roots)}"
        )
        if met is False:
            note += "; the added modules above are the cost"
        return Result(
            "Parse cost: fresh interpreter wall",
            label,
            Series(walls[name]).fmt(),
            f"`import airflow.sdk` {Series(walls['airflow.sdk']).fmt()}",
            ratio_series(walls[name], walls["airflow.sdk"]),
            target,
            met,
            note,
        )

    ours_ratio = ratio_series(walls["ours"], walls["airflow.sdk"]).median
    return [
        line("ours", "airflow.sdk + our operator + sensor", "<= 1.05", ours_ratio <= 1.05),
        line("http", "airflow.sdk + HTTP provider operator + sensor (reference)", "", None),
        Result(
            "Parse cost: fresh interpreter wall",
            "ours vs HTTP provider operator + sensor",
            Series(walls["ours"]).fmt(),
            f"HTTP {Series(walls['http']).fmt()}",
            ratio_series(walls["ours"], walls["http"]),
            "",
            None,
            "both on top of airflow.sdk",
        ),
    ]


if __name__ == "__main__":
    raise SystemExit(cli(__doc__ or "", run))
