"""
``make demo``: the daily billing DAG end to end, offline, with no real keys.

1. starts the ZenDRIVE HTTPS emulator in this process (a throwaway CA, the public demo keys);
2. prepares an Airflow home under ``.demo/airflow`` (SQLite metadata DB, migrated once and reused);
3. defines the connections through environment variables, ``zendrive_default`` (the emulator) and
   ``zendrive_warehouse`` (SQLite file ``.demo/warehouse.db``), and the pool ``zendrive_api``;
4. runs ``airflow dags test zendrive_daily_billing`` for the last few logical dates (each run pulls the UTC day
   before its logical date, and re-reads the three days before that for late-arriving numbers);
5. prints the rows that landed in the warehouse table, and stops the emulator.

Airflow's own output goes to ``.demo/demo.log``; it is shown only when something fails. The exit status is
non-zero on any failure. The environment is hermetic: inherited ``AIRFLOW__*``, ``AIRFLOW_CONN_*`` and
``AIRFLOW_VAR_*`` variables are dropped, so the demo never touches another Airflow installation.

``python scripts/demo.py --days N`` pulls N days (default 3).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEMO_DIR = REPO / ".demo"
AIRFLOW_HOME = DEMO_DIR / "airflow"
WAREHOUSE = DEMO_DIR / "warehouse.db"
LOG = DEMO_DIR / "demo.log"
DAGS_FOLDER = REPO / "example_dags"
DAG_ID = "zendrive_daily_billing"
TABLE = "zendrive_daily_usage"
POOL = ("zendrive_api", "2", "ZenDRIVE API calls (bounds concurrent calls per key)")
_MIGRATED = AIRFLOW_HOME / ".migrated"
_GB = 1_000_000_000
_STARTED = time.monotonic()


def progress(message: str) -> None:
    """Print one progress line, with the seconds since the demo started."""
    print(f"[{time.monotonic() - _STARTED:5.1f}s] {message}", flush=True)


def airflow_env() -> dict[str, str]:
    """
    A hermetic environment for Airflow: its own home, the example DAGs, the warehouse connection.

    ``AIRFLOW_CONN_ZENDRIVE_DEFAULT`` is added by the child once the emulator is up (see :func:`airflow_steps`).
    """
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AIRFLOW__", "AIRFLOW_CONN_", "AIRFLOW_VAR_"))
    }
    env.update(
        {
            "AIRFLOW_HOME": str(AIRFLOW_HOME),
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{AIRFLOW_HOME / 'airflow.db'}",
            # The JSON form: a SQLite URI would need the absolute path percent-encoded as its host.
            "AIRFLOW_CONN_ZENDRIVE_WAREHOUSE": json.dumps({"conn_type": "sqlite", "host": str(WAREHOUSE)}),
            "PYTHONWARNINGS": "ignore",
        }
    )
    return env


def logical_dates(days: int) -> list[str]:
    """The logical dates of the last ``days`` daily runs; the last one pulls yesterday (UTC)."""
    today = datetime.datetime.now(datetime.UTC).date()
    return [(today - datetime.timedelta(days=offset)).isoformat() for offset in range(days - 1, -1, -1)]


def start_airflow(dates: Sequence[str]) -> subprocess.Popen[str]:
    """
    Start the child process that runs every Airflow step (one import of Airflow for all of them).

    It imports Airflow and migrates while the emulator starts; it then waits for the emulator's connection URI
    on its stdin. Its progress lines come on its stdout; everything else goes to the log file.
    """
    command = [sys.executable, str(Path(__file__).resolve()), "--airflow-steps", *dates]
    with open(LOG, "ab") as log:
        stamp = datetime.datetime.now().isoformat(timespec="seconds")
        log.write(f"\n===== make demo, {stamp} =====\n".encode())
        log.flush()
        return subprocess.Popen(  # noqa: S603 - our own script, with our own interpreter
            command,
            env=airflow_env(),
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )


def relay(child: subprocess.Popen[str]) -> bool:
    """Print the child's progress lines until it exits; True if it succeeded."""
    assert child.stdout is not None
    for line in child.stdout:
        progress(line.rstrip("\n"))
    return child.wait() == 0


def airflow_steps(dates: Sequence[str]) -> int:
    """
    The child process: migrate once, create the pool, run the DAG for each date.

    Airflow writes to stdout and stderr freely; both go to the log file. Progress lines go to the parent
    through a copy of the original stdout, taken before Airflow is imported.
    """
    out = os.fdopen(os.dup(1), "w", buffering=1)
    log_fd = os.open(LOG, os.O_WRONLY | os.O_APPEND)
    os.dup2(log_fd, 1)
    sys.stdout = os.fdopen(1, "w", buffering=1)

    def say(message: str) -> None:
        print(message, file=out, flush=True)

    from airflow.cli import cli_parser

    parser = cli_parser.get_parser()

    def airflow(*argv: str) -> bool:
        args = parser.parse_args(list(argv))
        try:
            args.func(args)
        except SystemExit as exc:  # the CLI exits non-zero on failure ("DagRun failed")
            return exc.code in (None, 0)
        except Exception:
            import traceback

            traceback.print_exc()
            return False
        return True

    import airflow as airflow_package

    version = airflow_package.__version__
    migrated = _MIGRATED.exists() and (AIRFLOW_HOME / "airflow.db").exists()
    if not (migrated and _MIGRATED.read_text() == version):
        say(f"Creating the Airflow {version} metadata DB (first run only) ...")
        if not airflow("db", "migrate"):
            say("FAILED: airflow db migrate")
            return 1
        if not airflow("pools", "set", *POOL):
            say(f"FAILED: airflow pools set {POOL[0]}")
            return 1
        _MIGRATED.write_text(version)
    else:
        say(f"Reusing the migrated metadata DB in {AIRFLOW_HOME.relative_to(REPO)}/")
    uri = sys.stdin.readline().strip()  # the emulator's connection URI, sent once it listens
    if not uri:
        say("FAILED: the emulator did not start")
        return 1
    os.environ["AIRFLOW_CONN_ZENDRIVE_DEFAULT"] = uri
    failed = 0
    for date in dates:
        started = time.monotonic()
        ok = airflow("dags", "test", DAG_ID, date)
        state = "success" if ok else "FAILED"
        say(f"airflow dags test {DAG_ID} {date}: {state} ({time.monotonic() - started:.1f}s)")
        failed += not ok
    return 1 if failed else 0


def print_rows(dates: Sequence[str]) -> bool:
    """Print the warehouse rows of the pulled days; False if any day is missing."""
    days = [(datetime.date.fromisoformat(d) - datetime.timedelta(days=1)).isoformat() for d in dates]
    with sqlite3.connect(WAREHOUSE) as conn:
        rows = conn.execute(
            "SELECT service_id, date, total_requests, successful_requests, bytes_sent "
            "FROM zendrive_daily_usage WHERE date BETWEEN ? AND ? ORDER BY date, service_id",
            (days[0], days[-1]),
        ).fetchall()
        total_rows = conn.execute("SELECT COUNT(*) FROM zendrive_daily_usage").fetchone()[0]
    print()
    print(f"Table {TABLE} (connection zendrive_warehouse), the days just pulled:")
    print()
    print(f"  {'service':>7}  {'date':10}  {'requests':>9}  {'success':>8}  {'GB sent':>8}")
    for service_id, date, total, successful, sent in rows:
        rate = f"{100 * successful / total:.2f} %" if total else "-"
        print(f"  {service_id:>7}  {date:10}  {total:>9,}  {rate:>8}  {sent / _GB:>8.1f}")
    print()
    print(f"{total_rows} rows in all. SQLite database: {WAREHOUSE}")
    query = "SELECT * FROM zendrive_daily_usage ORDER BY date"
    print(f"  sqlite3 {WAREHOUSE.relative_to(REPO)} '{query}'")
    print(f"Airflow home: {AIRFLOW_HOME}; Airflow's output: {LOG}")
    landed = {row[1] for row in rows}
    missing = [day for day in days if day not in landed]
    if missing:
        print(f"Missing days in the table: {', '.join(missing)}", file=sys.stderr)
    return not missing


def show_log_tail(lines: int = 80) -> None:
    """Print the end of the log file, after a failure."""
    text = LOG.read_text(errors="replace").splitlines() if LOG.exists() else []
    print(f"\n----- last {min(lines, len(text))} lines of {LOG} -----", file=sys.stderr)
    for line in text[-lines:]:
        print(line, file=sys.stderr)
    print(f"----- full log: {LOG} -----", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--days", type=int, default=3, help="how many days to pull (default: %(default)s)")
    parser.add_argument("--airflow-steps", nargs="+", metavar="DATE", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.airflow_steps:
        return airflow_steps(args.airflow_steps)
    if args.days < 1:
        parser.error("--days must be at least 1")

    from airflow_provider_zendrive.testing import ZenDriveEmulator

    DEMO_DIR.mkdir(exist_ok=True)
    AIRFLOW_HOME.mkdir(exist_ok=True)
    LOG.write_text("")
    dates = logical_dates(args.days)
    progress("Starting Airflow and the ZenDRIVE HTTPS emulator ...")
    child = start_airflow(dates)
    assert child.stdin is not None
    ok = False
    try:
        with ZenDriveEmulator() as emulator:
            progress(f"Emulator listening on {emulator.url} (demo keys, throwaway CA)")
            with contextlib.suppress(BrokenPipeError):  # the child failed early: relay() reports it
                child.stdin.write(emulator.connection_uri() + "\n")
                child.stdin.close()
            progress(f"Running {DAG_ID} for logical dates {dates[0]} .. {dates[-1]} (Airflow output: {LOG})")
            ok = relay(child)
            served = len(emulator.requests)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    progress(f"Emulator stopped ({served} API requests served).")
    if not ok:
        show_log_tail()
        print("\nmake demo FAILED (see the log above).", file=sys.stderr)
        return 1
    try:
        ok = print_rows(dates)
    except sqlite3.Error as exc:
        print(f"Cannot read {WAREHOUSE}: {exc}", file=sys.stderr)
        ok = False
    if not ok:
        show_log_tail()
        return 1
    progress("Done.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
