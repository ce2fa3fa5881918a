"""
Check the provider as users install it: run with the Python of a fresh venv that holds only the built wheel,
its declared dependencies (extras ``sql`` and ``parquet``) and one Airflow release (``scripts/install_check.sh`` builds it).

1. The package comes from that venv's site-packages (not this checkout), Airflow is the expected release, and
   ``aiohttp`` is absent (no Airflow 3 release brings it: the deferrable sensor must work without it), and the
   ``parquet`` extra brought pyarrow.
2. Every module imports (but the pytest plugin, which needs pytest, and the retry policy before Airflow 3.3).
3. Airflow lists the provider, its connection type and its extra link.
4. A real deployment, ``airflow standalone`` (API server, scheduler, DAG processor, triggerer, LocalExecutor),
   parses the example DAGs without import errors and runs ``zendrive_install_check`` against the HTTPS emulator:
   the sensor pokes a suspended service, defers, the triggerer polls until it is active, then the operator
   upserts into a SQLite table and writes a CSV. The rows must equal the emulator's, and no file the deployment
   wrote, nor its output, may contain the secret key in any common encoding.
5. ``airflow connections test zendrive_default`` (the README's one-line key test) succeeds on an active service
   and fails on a suspended one.
6. In headless Chromium (``tests/install/connection_form_in_chromium.py``, run with the development venv's
   Python, which has Playwright), connections created from the deployment's empty connection form, Port left
   untouched, are tested with the Test button: success for good keys, the hook's messages for a suspended
   service and a wrong secret. On Airflow 3.3.2 that Test answers 400 for any connection without a port
   (apache/airflow#73298, fixed after 3.3.2): the check pins that, and the documented way round it (the
   endpoint's port typed in Port).
7. The "ZenDRIVE usage" page (``tests/install/usage_page_in_chromium.py``, in Chromium too): refused without a
   session (401/403, page and data endpoint); signed in with the auth manager's login form and opened from the
   navigation, each service's month-to-date requests and GB equal the table's (the month of the DAG's rows, and
   the current month, which the check adds two services' rows to), each chart's bars are proportional to the
   table's daily totals (one scale, within 1 px), hostile text is shown as text, no script runs; the plugin is
   in ``airflow plugins`` and Admin > Plugins, with no plugin import error. ``ZENDRIVE_USAGE_SCREENSHOT=path``
   saves the page as a PNG (the docs' screenshot).

The deployment signs users in with the simple auth manager's generated password (not "all admins": then every
request, anonymous ones included, is an admin's).

Prints one line per check and ends with ``install-check: N passed, N failed``; exits non-zero on any failure.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime
import hashlib
import importlib
import importlib.util
import json
import os
import pkgutil
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
BIN = Path(sys.executable).parent
#: The development venv's Python: it has Playwright, which the venv under test must not need.
DEV_PYTHON = REPO / ".venv" / "bin" / "python"
#: Releases whose connection list sends "port": 0 for a portless connection and whose API then refuses the test
#: with 400 before any hook runs (apache/airflow#73298).
PORTLESS_TEST_REFUSED = ("3.3.2",)
DAG_ID = "zendrive_install_check"


def _window() -> tuple[datetime.date, datetime.date]:
    """The DAG's days: the first week of last month (UTC), inside the usage page's reach of 400 days."""
    last_month = datetime.datetime.now(datetime.UTC).date().replace(day=1) - datetime.timedelta(days=1)
    return last_month.replace(day=1), last_month.replace(day=7)


WINDOW = _window()
sys.path.insert(0, str(HERE.parent))  # the tests' own statement of the documented columns
from zendrive_expected import DAILY_KEYS  # noqa: E402

COUNTERS = DAILY_KEYS[1:]  # every column of a daily row after its date
_STARTED = time.monotonic()


class Checks:
    """Counts checks and prints one line per check."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.passed = 0
        self.failed = 0

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        """Record one check; ``detail`` is printed on failure."""
        if ok:
            self.passed += 1
        else:
            self.failed += 1
        stamp = f"[{time.monotonic() - _STARTED:6.1f}s]"
        print(f"{stamp} {'PASS' if ok else 'FAIL'} {self.label}: {name}", flush=True)
        if not ok and detail:
            print(_indent(detail), flush=True)
        return ok


def _indent(text: str, limit: int = 6000) -> str:
    text = text if len(text) <= limit else "...\n" + text[-limit:]
    return "\n".join("    " + line for line in text.splitlines())


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def secret_forms(secret: str) -> set[bytes]:
    """The secret as it could appear in a file: raw, URL-quoted, JSON-escaped, base64."""
    import base64

    forms = {
        secret,
        urllib.parse.quote(secret, safe=""),
        urllib.parse.quote_plus(secret),
        json.dumps(secret)[1:-1],
        base64.b64encode(secret.encode()).decode(),
    }
    return {form.encode() for form in forms}


def files_containing(root: Path, needles: set[bytes]) -> list[str]:
    """Every file under ``root`` that holds one of ``needles``."""
    found = []
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            if any(needle in data for needle in needles):
                found.append(str(path.relative_to(root)))
    return found


def check_package(checks: Checks, expected_airflow: str) -> None:
    """Where the package comes from, which Airflow, no aiohttp, every module imports."""
    import airflow

    import airflow_provider_zendrive

    location = Path(airflow_provider_zendrive.__file__).resolve()
    checks.check(
        "the package is the installed wheel, not the checkout",
        REPO not in location.parents and Path(sys.prefix).resolve() in location.parents,
        str(location),
    )
    checks.check(
        f"Airflow is {expected_airflow}", airflow.__version__ == expected_airflow, airflow.__version__
    )
    checks.check("aiohttp is not installed", importlib.util.find_spec("aiohttp") is None)
    checks.check("the parquet extra brings pyarrow", importlib.util.find_spec("pyarrow") is not None)
    major_minor = tuple(int(part) for part in expected_airflow.split(".")[:2])
    failures = []
    for module in pkgutil.walk_packages(airflow_provider_zendrive.__path__, "airflow_provider_zendrive."):
        try:
            importlib.import_module(module.name)
        except ImportError as exc:
            expected = (module.name.endswith(".pytest_plugin") and exc.name == "pytest") or (
                module.name.endswith(".retry_policy") and major_minor < (3, 3)
            )
            if not expected:
                failures.append(f"{module.name}: {type(exc).__name__}: {exc}")
    checks.check("every module imports", not failures, "\n".join(failures))


class Deployment:
    """An Airflow home, the emulator and ``airflow standalone``, torn down on exit."""

    def __init__(self, root: Path) -> None:
        from airflow_provider_zendrive.testing import ZenDriveEmulator

        self.root = root
        self.home = root / "airflow"
        self.dags = self.home / "dags"
        self.dags.mkdir(parents=True)
        for source in [*sorted((REPO / "example_dags").glob("*.py")), HERE / "dags" / f"{DAG_ID}.py"]:
            (self.dags / source.name).write_bytes(source.read_bytes())
        self.warehouse = root / "warehouse.db"
        self.csv = root / "out" / "usage.csv"
        self.access_key = "AKINSTALLCHECK"
        # A secret with characters that quote and escape differently, so each encoding is a distinct needle.
        self.secret = f"s3cr3t/{secrets.token_hex(8)}+Inst@ll"
        self.emulator = ZenDriveEmulator()
        self.process: subprocess.Popen[bytes] | None = None
        self.output = root / "standalone.log"

    def env(self) -> dict[str, str]:
        """The deployment's environment: hermetic, connections from variables, a free API port."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW__", "AIRFLOW_CONN_"))}
        env.update(
            {
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
                # The browser checks sign in as admin with the generated password (Deployment.password).
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
                # Connections made in the form leave Verify TLS empty (true): trust the emulator's CA then.
                "REQUESTS_CA_BUNDLE": self.emulator.ca_path,
                "AIRFLOW__API__PORT": str(self.api_port),
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{self.api_port}/execution/",
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
                "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
                "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "2",
                "AIRFLOW_CONN_ZENDRIVE_DEFAULT": self.emulator.connection_uri(self.access_key, self.secret),
                "AIRFLOW_CONN_ZENDRIVE_WAREHOUSE": json.dumps(
                    {"conn_type": "sqlite", "host": str(self.warehouse)}
                ),
                "ZENDRIVE_CHECK_CSV": str(self.csv),
                "ZENDRIVE_CHECK_FROM": WINDOW[0].isoformat(),
                "ZENDRIVE_CHECK_TO": WINDOW[1].isoformat(),
                # The usage page reads the check's table (these are the defaults, stated to be sure) and shows
                # the budget of one service.
                "AIRFLOW__ZENDRIVE__SQL_CONN_ID": "zendrive_warehouse",
                "AIRFLOW__ZENDRIVE__TABLE": "zendrive_daily_usage",
                "AIRFLOW__ZENDRIVE__REVISIONS_TABLE": "zendrive_usage_revisions",
                "AIRFLOW__ZENDRIVE__BUDGET_GB": json.dumps({str(USAGE_SERVICES[0]): USAGE_BUDGET_GB}),
                "PYTHONWARNINGS": "ignore",
                "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            }
        )
        return env

    def airflow(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        """Run an ``airflow`` CLI command in the deployment's environment."""
        return subprocess.run(
            [str(BIN / "airflow"), *args],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd=self.root,
        )

    def password(self) -> str:
        """The admin's password, which the simple auth manager generates at the API server's start."""
        path = self.home / "simple_auth_manager_passwords.json.generated"
        return str(json.loads(path.read_text())["admin"])

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Read the metadata DB (SQLite)."""
        conn = sqlite3.connect(self.home / "airflow.db", timeout=10)
        try:
            return conn.execute(sql, params).fetchall()
        except sqlite3.OperationalError:
            return []
        finally:
            conn.close()

    def __enter__(self) -> Deployment:
        self.emulator.start()
        self.emulator.add_account(self.access_key, self.secret, 4242)
        self.emulator.add_account("AKUIGOOD", "ui-good-secret-0123456789", 4343)
        self.emulator.add_account("AKUISUSPENDED", "ui-suspended-secret-0123", 4444, active=False)
        self.api_port = free_port()
        return self

    def start(self) -> None:
        """Start ``airflow standalone`` in its own process group."""
        with self.output.open("wb") as out:
            self.process = subprocess.Popen(
                [str(BIN / "airflow"), "standalone"],
                env=self.env(),
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.root,
                start_new_session=True,
            )

    def stop(self) -> None:
        """Stop ``airflow standalone`` (the whole process group); idempotent."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=30)
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):  # children that outlived the group leader
                os.killpg(self.process.pid, signal.SIGKILL)

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self.emulator.stop()

    def wait_for(self, what: str, ready: Callable[[], bool], timeout: float) -> bool:
        """Poll ``ready`` every second until it is true or ``timeout`` seconds pass."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                print(f"airflow standalone exited ({self.process.returncode}) while waiting for {what}")
                return False
            if ready():
                return True
            time.sleep(1)
        return False


def check_connection_form(checks: Checks, dep: Deployment, airflow_version: str) -> None:
    """Create connections from the empty form in Chromium and read what the Test button says."""
    good = {"access_key": "AKUIGOOD", "secret_key": "ui-good-secret-0123456789"}
    suspended = {"access_key": "AKUISUSPENDED", "secret_key": "ui-suspended-secret-0123"}
    wrong = {"access_key": "AKUIGOOD", "secret_key": "not-the-secret-0123456789"}
    refused = airflow_version in PORTLESS_TEST_REFUSED
    port = str(dep.emulator.port) if refused else ""  # the way round the 400: the endpoint's port in Port
    cases = [
        {"conn_id": "ui_good", **good, "port": port},
        {"conn_id": "ui_suspended", **suspended, "port": port},
        {"conn_id": "ui_wrong_secret", **wrong, "port": port},
    ]
    if refused:
        cases.insert(0, {"conn_id": "ui_portless", **good, "port": ""})
    if not checks.check(
        "the development venv has Playwright", DEV_PYTHON.is_file(), f"{DEV_PYTHON} is missing"
    ):
        return
    started = time.monotonic()
    done = subprocess.run(
        [
            str(DEV_PYTHON),
            str(HERE / "connection_form_in_chromium.py"),
            f"http://127.0.0.1:{dep.api_port}",
            dep.emulator.url,
            json.dumps(cases),
            "admin",
            dep.password(),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    results = {}
    for line in done.stdout.splitlines():
        with contextlib.suppress(ValueError):
            result = json.loads(line)
            results[result["conn_id"]] = result
    detail = done.stdout[-3000:] + done.stderr[-3000:]
    if not checks.check(
        f"Chromium filled the empty connection form {len(cases)} times ({time.monotonic() - started:.0f} s)",
        done.returncode == 0 and len(results) == len(cases),
        detail,
    ):
        return
    labels = results["ui_good"]["labels"]
    checks.check(
        "the form shows the provider's labels (Access key, Secret key, Endpoint URL)",
        {"Access key", "Secret key", "Endpoint URL (optional)"} <= set(labels),
        json.dumps(labels),
    )
    saved = [results[case["conn_id"]]["saved"] for case in cases if not case["port"]]
    checks.check("the form saved no port when Port was left untouched", all("port" not in s for s in saved))
    if refused:
        portless = results["ui_portless"]
        checks.check(
            f"Airflow {airflow_version}'s Test refuses a portless connection with 400 (apache/airflow#73298)",
            (portless["title"], portless["message"]) == ("Test Connection Failed", "Bad Request"),
            json.dumps(portless),
        )
    ok, inactive, rejected = results["ui_good"], results["ui_suspended"], results["ui_wrong_secret"]
    checks.check(
        "Test from the form: success for good keys",
        ok["title"] == "Test Connection Successful",
        json.dumps(ok),
    )
    checks.check(
        "Test from the form: a suspended service says so",
        inactive["title"] == "Test Connection Failed" and "service is not active" in inactive["message"],
        json.dumps(inactive),
    )
    checks.check(
        "Test from the form: a wrong secret says so, without the secret",
        rejected["title"] == "Test Connection Failed"
        and "rejected the credentials (401" in rejected["message"]
        and wrong["secret_key"] not in rejected["message"],
        json.dumps(rejected),
    )


def check_deployment(checks: Checks, root: Path, airflow_version: str) -> None:
    """Deploy, run the DAG, check what landed and that the secret is nowhere."""
    with Deployment(root) as dep:
        migrated = dep.airflow("db", "migrate", timeout=300)
        if not checks.check(
            "airflow db migrate", migrated.returncode == 0, migrated.stdout + migrated.stderr
        ):
            return
        listed = dep.airflow("providers", "list", "--output", "json")
        checks.check(
            "airflow providers list shows the provider", "airflow-provider-zendrive" in listed.stdout
        )
        links = dep.airflow("providers", "links", "--output", "json")
        checks.check(
            "the dashboard extra link is registered",
            "airflow_provider_zendrive.operators.zendrive.ZenDriveDashboardLink" in links.stdout,
            links.stdout + links.stderr,
        )
        plugins = dep.airflow("plugins", "--output", "json")
        checks.check(
            "airflow plugins lists the usage page's plugin (its app and its navigation entry)",
            plugins.returncode == 0
            and "airflow_provider_zendrive.plugins.zendrive" in plugins.stdout
            and "zendrive_usage" in plugins.stdout,
            plugins.stdout + plugins.stderr,
        )
        tested = dep.airflow("connections", "test", "zendrive_default")
        checks.check(
            "airflow connections test succeeds on an active service",
            tested.returncode == 0 and "Connection success" in tested.stdout,
            tested.stdout + tested.stderr,
        )
        dep.emulator.suspend(dep.access_key, requests=1)
        tested = dep.airflow("connections", "test", "zendrive_default")
        checks.check(
            "airflow connections test fails on a suspended service",
            "Connection failed!" in tested.stdout and "not active" in tested.stdout,
            tested.stdout + tested.stderr,
        )
        sent_before = len(dep.emulator.requests)

        started = time.monotonic()
        dep.start()
        parsed = dep.wait_for(
            "the DAGs to be parsed",
            lambda: bool(dep.query("SELECT 1 FROM dag WHERE dag_id = ?", (DAG_ID,))),
            240,
        )
        if not checks.check(
            f"standalone parsed the DAGs ({time.monotonic() - started:.0f} s)", parsed, dep.output.read_text()
        ):
            return
        errors = dep.airflow("dags", "list-import-errors", "--output", "json")
        checks.check(
            "the example DAGs parse without import errors",
            errors.returncode == 0 and "zendrive" not in errors.stdout,
            errors.stdout + errors.stderr,
        )
        dep.emulator.suspend(dep.access_key, requests=2)
        for command in (("dags", "unpause", DAG_ID), ("dags", "trigger", DAG_ID)):
            done = dep.airflow(*command)
            checks.check(f"airflow {' '.join(command)}", done.returncode == 0, done.stdout + done.stderr)
        states: set[str] = set()

        def finished() -> bool:
            rows = dep.query(
                "SELECT state FROM task_instance WHERE dag_id = ? AND task_id = 'wait_active'", (DAG_ID,)
            )
            states.update(row[0] for row in rows if row[0])
            run = dep.query("SELECT state FROM dag_run WHERE dag_id = ?", (DAG_ID,))
            return bool(run) and run[0][0] in ("success", "failed")

        ran = dep.wait_for("the DAG run", finished, 300)
        run_state = dep.query("SELECT state FROM dag_run WHERE dag_id = ?", (DAG_ID,))
        task_states = dict(dep.query("SELECT task_id, state FROM task_instance WHERE dag_id = ?", (DAG_ID,)))
        logs = "\n".join(p.read_text(errors="replace") for p in sorted((dep.home / "logs").rglob("*.log")))
        checks.check(
            f"the DAG run succeeded ({time.monotonic() - started:.0f} s after start)",
            ran and run_state == [("success",)],
            f"run {run_state}, tasks {task_states}\n{logs}\n{dep.output.read_text(errors='replace')}",
        )
        statuses = [request.status for request in dep.emulator.requests[sent_before:]]
        checks.check(
            "poke 403, deferred, trigger polls 403 then 200, the operator pulls 200",
            statuses == [403, 403, 200, 200] and "deferred" in states,
            f"statuses {statuses}, sensor states seen {sorted(states)}",
        )
        checks.check(
            "the trigger's polling is in the logs",
            "polling again" in logs,
            logs[-4000:],
        )
        check_outputs(checks, dep)
        check_connection_form(checks, dep, airflow_version)
        check_usage_page(checks, dep)
        dep.stop()  # every log is complete once the processes are gone
        leaks = files_containing(dep.home, secret_forms(dep.secret)) + files_containing(
            dep.root / "out", secret_forms(dep.secret)
        )
        output = dep.output.read_bytes()
        checks.check(
            "no file and no output of the deployment contains the secret key",
            not leaks and not any(form in output for form in secret_forms(dep.secret)),
            f"files: {leaks}",
        )


def check_outputs(checks: Checks, dep: Deployment) -> None:
    """The table and the CSV hold one row per day, equal to the emulator's numbers (zeros on quiet days)."""
    expected_stats = dep.emulator.expected_stats(*WINDOW, access_key=dep.access_key)
    by_day = {entry["date"]: cast("dict[str, Any]", entry) for entry in expected_stats["daily"]}
    days = [
        (WINDOW[0] + datetime.timedelta(days=n)).isoformat() for n in range((WINDOW[1] - WINDOW[0]).days + 1)
    ]
    expected = [(4242, day, *(int(by_day.get(day, {}).get(name, 0)) for name in COUNTERS)) for day in days]
    try:
        with sqlite3.connect(dep.warehouse) as conn:
            table = conn.execute(
                f"SELECT service_id, date, {', '.join(COUNTERS)} FROM zendrive_daily_usage ORDER BY date"  # noqa: S608
            ).fetchall()
    except sqlite3.Error as exc:
        table = [("error", str(exc))]
    checks.check("the SQLite table holds the emulator's rows", table == expected, f"{table}\n!=\n{expected}")
    try:
        with dep.csv.open(newline="") as handle:
            rows = [
                (int(r["service_id"]), r["date"], *(int(r[name]) for name in COUNTERS))
                for r in csv.DictReader(handle)
            ]
    except (OSError, KeyError, ValueError) as exc:
        rows = [("error", str(exc))]
    checks.check("the CSV holds the emulator's rows", rows == expected, f"{rows}\n!=\n{expected}")


#: The services whose rows the check adds to the table for the current month's view (next to the DAG's 4242).
USAGE_SERVICES = (5151, 6161)
#: The budget of the first of them (the other has none).
USAGE_BUDGET_GB = 2500
#: A revision whose text would run script if the page did not escape it.
HOSTILE = '<img src=x onerror="window.__zendrive_pwned=1"><script>window.__zendrive_pwned=1</script>'


def add_usage_rows(dep: Deployment, today: datetime.date) -> None:
    """Rows of :data:`USAGE_SERVICES` for the last 100 days (as another pull would write), and a hostile revision."""
    from airflow_provider_zendrive._outputs.tables import TABLE_COLUMNS, create_revisions_table_sql

    rows = []
    for service in USAGE_SERVICES:
        for n in range(100):
            day = today - datetime.timedelta(days=n)
            noise = int(hashlib.sha256(f"{service} {day}".encode()).hexdigest()[:12], 16)
            requests = (20_000 + noise % 180_000) * (2 if day.weekday() < 5 else 1)
            values: dict[str, object] = dict.fromkeys(TABLE_COLUMNS, 0)
            values.update(
                service_id=service,
                date=day.isoformat(),
                total_requests=requests,
                successful_requests=requests - noise % 97,
                bytes_sent=requests * (200_000 + noise % 800_000),
                bytes_received=requests * 900,
                unique_ips=noise % 5_000,
                fetched_at=f"{today} 05:00:00.000000",
            )
            rows.append(tuple(values[name] for name in TABLE_COLUMNS))
    with sqlite3.connect(dep.warehouse) as conn:
        marks = ", ".join("?" * len(TABLE_COLUMNS))
        conn.executemany(f"INSERT INTO zendrive_daily_usage VALUES ({marks})", rows)  # noqa: S608
        conn.execute(create_revisions_table_sql('"zendrive_usage_revisions"'))
        late = (today - datetime.timedelta(days=1)).isoformat()
        conn.executemany(
            "INSERT INTO zendrive_usage_revisions VALUES (?, ?, 'bytes_sent', ?, ?, ?, ?)",
            [
                (
                    USAGE_SERVICES[0],
                    late,
                    51_200_000_000,
                    53_900_000_000,
                    f"{today} 06:00:00",
                    f"zendrive_daily_billing.pull_daily_usage run scheduled__{late}T00:00:00+00:00 try 1",
                ),
                (USAGE_SERVICES[0], today.isoformat(), 1, 2, f"{today} 04:00:00", HOSTILE),
            ],
        )


def table_view(
    dep: Deployment, first: datetime.date, last: datetime.date, service: int | None
) -> tuple[dict[int, tuple[int, int]], dict[str, dict[str, int]]]:
    """The table's own answer: ``{service: (requests, bytes_sent)}`` of ``first``..``last``, and the daily totals
    ``{"bytes_sent" | "requests": {day: n}}`` of the 90 days up to ``last``."""
    chart_first = last - datetime.timedelta(days=89)
    where = "(? IS NULL OR service_id = ?)"
    with sqlite3.connect(dep.warehouse) as conn:
        month = conn.execute(
            "SELECT service_id, SUM(total_requests), SUM(bytes_sent) FROM zendrive_daily_usage "  # noqa: S608
            f"WHERE date BETWEEN ? AND ? AND {where} GROUP BY service_id",
            (first.isoformat(), last.isoformat(), service, service),
        ).fetchall()
        days = conn.execute(
            "SELECT date, SUM(total_requests), SUM(bytes_sent) FROM zendrive_daily_usage "  # noqa: S608
            f"WHERE date BETWEEN ? AND ? AND {where} GROUP BY date",
            (chart_first.isoformat(), last.isoformat(), service, service),
        ).fetchall()
    every_day = [(chart_first + datetime.timedelta(days=n)).isoformat() for n in range(90)]
    requests = {str(r[0]): int(r[1]) for r in days}
    sent = {str(r[0]): int(r[2]) for r in days}
    return (
        {int(r[0]): (int(r[1]), int(r[2])) for r in month},
        {
            "requests": {day: requests.get(day, 0) for day in every_day},
            "bytes_sent": {day: sent.get(day, 0) for day in every_day},
        },
    )


def bars_problems(drawn: dict[str, list[list[Any]]], truth: dict[str, dict[str, int]]) -> list[str]:
    """Why the bars are not the table's daily totals on one scale (within 1 px); empty: they are."""
    problems = []
    for chart, values in truth.items():
        bars = {str(day): float(height) for day, height in drawn.get(chart, [])}
        if list(bars) != list(values):
            problems.append(f"{chart}: bars for {list(bars)[:3]}... != days {list(values)[:3]}...")
            continue
        largest = max(values.values())
        scale = bars[max(values, key=lambda day: values[day])] / largest
        if bars[max(values, key=lambda day: values[day])] < 100:
            problems.append(
                f"{chart}: the tallest bar is {bars[max(values, key=lambda d: values[d])]:.1f} px"
            )
        off = [
            f"{day}: {bars[day]:.2f} px for {v}"
            for day, v in values.items()
            if abs(bars[day] - v * scale) > 1
        ]
        if off:
            problems.append(f"{chart}: not on one scale ({scale:.3e} px per unit): {off[:5]}")
    return problems


def check_usage_page(checks: Checks, dep: Deployment) -> None:
    """The usage page in Chromium: refused without a session, numbers and bars equal to the table's."""
    from airflow_provider_zendrive.reports import ReportMonth, format_volume

    today = datetime.datetime.now(datetime.UTC).date()
    add_usage_rows(dep, today)
    month = WINDOW[0].strftime("%Y-%m")  # the DAG's rows (the page offers the months of the last 400 days)
    views = [{"month": month, "service": ""}, {"month": month, "service": "4242"}]
    screenshot = os.environ.get("ZENDRIVE_USAGE_SCREENSHOT", "")
    started = time.monotonic()
    done = subprocess.run(
        [
            str(DEV_PYTHON),
            str(HERE / "usage_page_in_chromium.py"),
            f"http://127.0.0.1:{dep.api_port}",
            "admin",
            dep.password(),
            json.dumps(views),
            screenshot,
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    try:
        result = json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        result = None
    if not checks.check(
        f"Chromium signed in and opened the usage page from the navigation ({time.monotonic() - started:.0f} s)",
        done.returncode == 0 and result is not None,
        done.stdout[-3000:] + done.stderr[-3000:],
    ):
        return
    assert result is not None
    checks.check(
        "without a session the page and its data endpoint are refused (401/403), a forged token too",
        all(code in (401, 403) for code in (*result["anonymous"].values(), *result["forged"].values())),
        json.dumps({"anonymous": result["anonymous"], "forged": result["forged"]}),
    )
    checks.check(
        "the navigation's 'ZenDRIVE usage' opens the page inside the UI",
        result["nav_href"].endswith("/plugin/zendrive_usage")
        and result["iframe_src"].endswith("/zendrive/usage"),
        json.dumps({k: result[k] for k in ("nav_href", "ui_url", "iframe_src")}),
    )
    dag_month = ReportMonth.parse(month)
    expected_views = [
        (today.replace(day=1), today, None),
        (dag_month.first, dag_month.last, None),
        (dag_month.first, dag_month.last, 4242),
    ]
    for view, (first, last, service) in zip(result["views"], expected_views, strict=True):
        month_rows, daily = table_view(dep, first, last, service)
        shown = {row["service"]: row["cells"] for row in view["rows"]}
        wanted = {s: [str(s), f"{r:,}", format_volume(b)] for s, (r, b) in month_rows.items()}
        label = f"{first:%Y-%m}, {'every service' if service is None else f'service {service}'}"
        checks.check(
            f"usage page {label}: each service's month-to-date requests and GB equal the table's",
            bool(wanted) and {s: cells[:3] for s, cells in shown.items()} == wanted,
            f"{view['url']}\nshown {shown}\ntable {wanted}",
        )
        problems = bars_problems(view["bars"], daily)
        checks.check(
            f"usage page {label}: the bars are the table's daily totals, one scale within 1 px",
            not problems,
            "\n".join(problems),
        )
    current = result["views"][0]
    budget_cells = {row["service"]: row["cells"][3:] for row in current["rows"]}
    checks.check(
        "usage page: the [zendrive] budget_gb of a service is shown with its share",
        budget_cells.get(USAGE_SERVICES[0], [""])[0] == format_volume(USAGE_BUDGET_GB * 10**9)
        and budget_cells.get(USAGE_SERVICES[1]) == ["none", "—"],
        json.dumps(budget_cells),
    )
    checks.check(
        "usage page: a hostile revision is shown as text and no script runs",
        HOSTILE in current["revisions"] and not any(view["script_ran"] for view in result["views"]),
        current["revisions"][-500:],
    )
    data = result["signed_in_data"]
    checks.check(
        "the data endpoint answers a signed-in user with the page's numbers",
        data["status"] == 200
        and {
            r["service_id"]: [str(r["service_id"]), f"{r['requests']:,}", format_volume(r["bytes_sent"])]
            for r in data["body"]["rows"]
        }
        == {row["service"]: row["cells"][:3] for row in current["rows"]},
        json.dumps(data)[-2000:],
    )
    checks.check(
        "Admin > Plugins lists the plugin, and Airflow reports no plugin import error",
        "zendrive" in result["plugins_page"] and result["plugin_import_errors"].get("total_entries") == 0,
        json.dumps({"plugins_page": result["plugins_page"], "errors": result["plugin_import_errors"]}),
    )


def main() -> int:
    """Run every check; the exit status is the number of failures (capped)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1] if __doc__ else None)
    parser.add_argument("--airflow", required=True, help="the Airflow version this venv must have")
    parser.add_argument(
        "--keep", metavar="DIR", help="on failure, copy the deployment's files (logs, DBs) here"
    )
    args = parser.parse_args()
    checks = Checks(f"Airflow {args.airflow}")
    check_package(checks, args.airflow)
    with tempfile.TemporaryDirectory(prefix="zendrive-install-check-") as root:
        check_deployment(checks, Path(root), args.airflow)
        if checks.failed and args.keep:  # everything the deployment wrote, for a post-mortem
            shutil.copytree(root, args.keep, dirs_exist_ok=True)
            print(f"The deployment's files are in {args.keep}", flush=True)
    print(f"Airflow {args.airflow}, the installed wheel:", flush=True)
    print(f"install-check: {checks.passed} passed, {checks.failed} failed", flush=True)
    return 0 if checks.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
