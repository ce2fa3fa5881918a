"""
Check the provider in a real distributed deployment: run with the Python of a fresh venv that holds only the
built wheel (``[sql]``), Airflow, the Celery and PostgreSQL providers (``scripts/distributed_check.sh`` builds it).

The deployment is what several machines would run, here as separate processes on one:

* PostgreSQL (throwaway, ``initdb`` + ``postgres``): Airflow's metadata DB, the Celery result backend
  (``db+postgresql``) and the warehouse the DAGs write to, three databases on one server;
* Redis (``redis-server``, no persistence) as the Celery broker;
* ``airflow api-server`` (REST API and the Task Execution API the workers report to), ``airflow scheduler``
  with the CeleryExecutor, ``airflow dag-processor``, ``airflow triggerer`` and ``airflow celery worker``,
  each a process of its own sharing only the environment (the JWT secret included) and the DAG files;
* the package's HTTPS emulator (in this process) with one account per service, each with its own secret key;
  the connections are created through the REST API, so they live in the metadata DB (encrypted) and workers
  and the triggerer read them from there, as they would on other machines.

Through the REST API it creates the ``zendrive_api`` pool and the connections, and triggers two DAGs at once:
the example ``zendrive_fleet`` over several connections (mapped tasks in the pool, each request answered after
``REQUEST_TIME`` seconds, upserting into PostgreSQL) and ``zendrive_distributed_sensor``, whose deferrable
sensor finds the service suspended, defers, and is released by the triggerer's polls before a pull writes a
report to "shared storage". It checks that every task succeeded in its first try, that the sensor was deferred
and the triggerer polled at its interval, what the emulator received, what landed, and that no secret key (nor
any 8-character piece of one, in any common encoding) is in any file under AIRFLOW_HOME, in any process's
output, in Redis (every command it received, its keys after the runs, its final data) or in the databases (the
result backend included). It prints the figures it measured.

The warehouse table is created up front with the DDL that docs/guides/operator.rst documents: mapped tasks
that each run ``CREATE TABLE IF NOT EXISTS`` on a PostgreSQL table that does not exist yet race (one fails
with ``UniqueViolation`` on ``pg_type_typname_nsp_index`` and succeeds only in its retry, a minute later).
``--cold-table`` skips that step to show it.

Prints one line per check and ends with ``distributed-check: N passed, N failed``; exits non-zero on any failure.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime
import glob
import html
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from itertools import pairwise
from pathlib import Path
from typing import Any, LiteralString, cast

import psycopg
from psycopg import sql

from airflow_provider_zendrive.testing import Fault, ZenDriveEmulator

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
BIN = Path(sys.executable).parent
FLEET_DAG = "zendrive_fleet"
SENSOR_DAG = "zendrive_distributed_sensor"
FLEET_SIZE = 6
POOL = "zendrive_api"
POOL_SLOTS = 3
WORKER_CONCURRENCY = 4
POKE_INTERVAL = 5.0  # the sensor DAG's poke_interval
SENSOR_KEY = "AKSENSOR"
SENSOR_SERVICE = 5200
REQUEST_TIME = 2.0  # each fleet request is answered after this many seconds, as a slow API would
SUSPENDED_FOR = 3  # 403 answers: the sensor's own poke, then two trigger polls; the third poll gets 200
LOGICAL_DATE = datetime.datetime(2026, 5, 8, tzinfo=datetime.UTC)  # the fleet pulls the day before
FLEET_DAY = datetime.date(2026, 5, 7)
#: zendrive_fleet's LOOKBACK_DAYS: each run also re-reads the three days before, for late data.
FLEET_LOOKBACK_DAYS = 3
SENSOR_WINDOW = (datetime.date(2026, 5, 1), datetime.date(2026, 5, 7))
COUNTERS = (
    "total_requests",
    "successful_requests",
    "client_errors",
    "auth_failures",
    "bytes_sent",
    "bytes_received",
    "unique_ips",
)
FRAGMENT = 8  # the shortest run of a secret's characters that counts as a leak
#: Databases on the one PostgreSQL server: Airflow's metadata DB, the Celery result backend, the DAGs' warehouse.
DATABASES = ("airflow", "celery_results", "warehouse")
#: The Airflow components, each a process of its own as on separate machines.
AIRFLOW_SERVICES = {
    "api-server": ["api-server"],  # with the Task Execution API the Celery worker's tasks report to
    "scheduler": ["scheduler"],
    "dag-processor": ["dag-processor"],
    "triggerer": ["triggerer"],
    "celery-worker": [
        "celery",
        "worker",
        "--concurrency",
        str(WORKER_CONCURRENCY),
        "--celery-hostname",
        "zendrive-worker@%h",
        "--without-mingle",
        "--without-gossip",
    ],
}
_STARTED = time.monotonic()


class Checks:
    """Counts checks and prints one line per check."""

    def __init__(self) -> None:
        self.passed = 0
        self.failed = 0

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        """Record one check; ``detail`` is printed on failure."""
        if ok:
            self.passed += 1
        else:
            self.failed += 1
        say(f"{'PASS' if ok else 'FAIL'} distributed: {name}")
        if not ok and detail:
            text = detail if len(detail) <= 6000 else "...\n" + detail[-6000:]
            print("\n".join("    " + line for line in text.splitlines()), flush=True)
        return ok


def say(line: str) -> None:
    """Print one line, stamped with the seconds since the start."""
    print(f"[{time.monotonic() - _STARTED:6.1f}s] {line}", flush=True)


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(ready: Callable[[], bool], timeout: float, interval: float = 0.5) -> bool:
    """Poll ``ready`` until it is true or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return True
        time.sleep(interval)
    return ready()


# -- leaks -------------------------------------------------------------------------------------------------------
# A small copy of the package's own rule (its redaction module is internal and may move): a leak is any
# FRAGMENT-character piece of a secret, in any letter case, in the text as written or decoded once from URL
# quoting, backslash escapes (JSON, Python, redis-cli) or HTML entities, or the secret's base64 at any alignment.

_ESCAPE = re.compile(r"\\(?:x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|.)", re.DOTALL)
_BASE64 = re.compile(r"[A-Za-z0-9+/_-]{16,}={0,2}")


def _unescape(text: str) -> str:
    def one(match: re.Match[str]) -> str:
        escape = match.group()[1:]
        return chr(int(escape[1:], 16)) if escape[0] in "xu" and len(escape) > 1 else escape

    return _ESCAPE.sub(one, text)


def _base64_decoded(text: str) -> str:
    """Every run of the text that looks like base64 (Celery's message bodies are), decoded."""
    decoded = []
    for blob in _BASE64.findall(text):
        padded = blob + "=" * (-len(blob) % 4)
        for decode in (base64.b64decode, base64.urlsafe_b64decode):
            with contextlib.suppress(ValueError):
                decoded.append(decode(padded).decode("latin-1"))
    return "\n".join(decoded)


class SecretScanner:
    """Finds pieces of any of the secrets in texts."""

    def __init__(self, secrets_: list[str]) -> None:
        self.fragments = {
            secret[i : i + FRAGMENT].casefold()
            for secret in secrets_
            for i in range(len(secret) - FRAGMENT + 1)
        }
        self.cores = set()  # base64 (standard and URL-safe) of each secret from each of the 3 alignments
        for secret in secrets_:
            for offset in range(3):
                for encode in (base64.b64encode, base64.urlsafe_b64encode):
                    encoded = encode(secret.encode()[offset:]).decode()
                    self.cores.add(encoded[: len(encoded) - 4])

    def leaks(self, text: str, *, nested: bool = False) -> bool:
        """Whether ``text`` holds a piece of a secret (also inside its base64 runs, one level deep)."""
        if any(core in text for core in self.cores):
            return True
        views = {text}
        for decode, marker in ((urllib.parse.unquote, "%"), (_unescape, "\\"), (html.unescape, "&")):
            if marker in text:
                views.add(decode(text))
        for view in views:
            folded = view.casefold()
            if any(fragment in folded for fragment in self.fragments):
                return True
        return not nested and self.leaks(_base64_decoded(text), nested=True)

    def files(self, root: Path) -> list[str]:
        """Every file under ``root`` that holds a piece of a secret."""
        return [
            str(path)
            for path in sorted(root.rglob("*"))
            if path.is_file() and self.leaks(path.read_bytes().decode("latin-1"))
        ]


# -- services ----------------------------------------------------------------------------------------------------


class Services:
    """Background processes, each in its own session with its output in a file; all stopped on exit."""

    def __init__(self, output_dir: Path) -> None:
        self.output_dir = output_dir
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(
        self, name: str, argv: list[str], env: dict[str, str] | None = None, cwd: Path | None = None
    ) -> None:
        """Start ``argv`` in a new session (in ``cwd``, else beside the outputs); its output goes to ``NAME.log``."""
        with (self.output_dir / f"{name}.log").open("wb") as out:
            self.procs[name] = subprocess.Popen(
                argv,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=cwd or self.output_dir.parent,
                start_new_session=True,
            )

    def output(self, name: str) -> str:
        """What the process printed so far."""
        return (self.output_dir / f"{name}.log").read_text(errors="replace")

    def wait(self, name: str, timeout: float) -> int | None:
        """Wait for a one-off command to exit: its exit status (and it is forgotten), or None on timeout."""
        try:
            code = self.procs[name].wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        del self.procs[name]
        return code

    def dead(self) -> list[str]:
        """The processes that exited."""
        return [f"{name} (exit {p.returncode})" for name, p in self.procs.items() if p.poll() is not None]

    def stop(self, *names: str, timeout: float = 30, sig: signal.Signals = signal.SIGTERM) -> None:
        """Signal the process groups (SIGTERM), then SIGKILL what is left after ``timeout`` seconds; idempotent."""
        chosen = (
            [self.procs[name] for name in names if name in self.procs] if names else list(self.procs.values())
        )
        for proc in chosen:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, sig)
        deadline = time.monotonic() + timeout
        for proc in chosen:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            with contextlib.suppress(ProcessLookupError):  # the group's leftovers, leader dead or not
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)


def pg_bindir() -> str:
    """The folder of PostgreSQL's server binaries (initdb, postgres, pg_dump)."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    bindir = next((d for d in candidates if os.path.exists(f"{d}/initdb")), None)
    if bindir is None:
        found = shutil.which("initdb")
        if found is None:
            raise RuntimeError("no initdb found (install postgresql)")
        bindir = os.path.dirname(found)
    return bindir


@contextlib.contextmanager
def postgres(root: Path, services: Services) -> Iterator[str]:
    """A throwaway PostgreSQL on a free port (trust auth, no fsync); yields the libpq URL of its server."""
    bindir = pg_bindir()
    folder = root / "postgres"
    folder.mkdir()
    prefix: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root
        import pwd

        owner = pwd.getpwnam("postgres")
        os.chown(folder, owner.pw_uid, owner.pw_gid)
        root.chmod(0o711)  # the postgres user must reach its folder inside the (root-only) temporary folder
        prefix = ["runuser", "-u", "postgres", "--"]
    data, port = folder / "data", free_port()
    argv = ["initdb", "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"]
    init = subprocess.run(
        [*prefix, f"{bindir}/{argv[0]}", *argv[1:]], capture_output=True, timeout=120, check=False
    )
    if init.returncode != 0:
        raise RuntimeError(f"initdb failed: {init.stderr.decode(errors='replace')[-1000:]}")
    options = [
        f"-p{port}",
        f"-k{folder}",
        "-clisten_addresses=127.0.0.1",
        "-cfsync=off",
        "-cfull_page_writes=off",
    ]
    services.start("postgres", [*prefix, f"{bindir}/postgres", "-D", str(data), *options])
    url = f"postgresql://postgres@127.0.0.1:{port}"
    try:
        if not wait_until(lambda: _pg_ready(url), 60):
            raise RuntimeError(f"PostgreSQL did not start:\n{services.output('postgres')[-2000:]}")
        yield url
    finally:
        services.stop("postgres", sig=signal.SIGINT)  # PostgreSQL's fast shutdown


def _pg_ready(url: str) -> bool:
    try:
        with psycopg.connect(f"{url}/postgres", connect_timeout=2):
            return True
    except psycopg.OperationalError:
        return False


@contextlib.contextmanager
def redis(root: Path, services: Services) -> Iterator[int]:
    """``redis-server`` on a free port without persistence, and ``redis-cli MONITOR`` recording every command."""
    folder, port = root / "redis", free_port()
    folder.mkdir()
    services.start(
        "redis",
        [
            "redis-server",
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(folder),
            "--rdbcompression",
            "no",  # a final SAVE (below) writes the values as they are, for the leak scan
        ],
    )
    try:
        if not wait_until(lambda: redis_cli(port, "PING").strip() == "PONG", 30):
            raise RuntimeError(f"redis-server did not start:\n{services.output('redis')[-2000:]}")
        services.start("redis-monitor", ["redis-cli", "-p", str(port), "MONITOR"])
        yield port
    finally:
        services.stop("redis-monitor", "redis")


def redis_cli(port: int, *args: str) -> str:
    """Run one ``redis-cli`` command; its output, or "" on failure."""
    try:
        done = subprocess.run(
            ["redis-cli", "-p", str(port), *args], capture_output=True, timeout=30, check=False
        )
    except subprocess.TimeoutExpired:
        return ""
    return done.stdout.decode("latin-1")


def redis_dump(port: int) -> str:
    """Every key of Redis with its value, read by type."""
    readers = {
        "string": ["GET"],
        "list": ["LRANGE", "0", "-1"],
        "hash": ["HGETALL"],
        "set": ["SMEMBERS"],
        "zset": ["ZRANGE", "0", "-1", "WITHSCORES"],
        "stream": ["XRANGE", "-", "+"],
    }
    lines = []
    for key in redis_cli(port, "--scan").splitlines():
        kind = redis_cli(port, "TYPE", key).strip()
        reader = readers.get(kind)
        value = redis_cli(port, reader[0], key, *reader[1:]) if reader else ""
        lines.append(f"{key} ({kind}): {value}")
    return "\n".join(lines)


# -- the deployment --------------------------------------------------------------------------------------------

#: The warehouse table as docs/guides/operator.rst documents it, created before the mapped pulls run.
TABLE_DDL = """
CREATE TABLE IF NOT EXISTS "zendrive_daily_usage" (
    "service_id" BIGINT NOT NULL,
    "date" DATE NOT NULL,
    "total_requests" BIGINT NOT NULL,
    "successful_requests" BIGINT NOT NULL,
    "client_errors" BIGINT NOT NULL,
    "auth_failures" BIGINT NOT NULL,
    "bytes_sent" BIGINT NOT NULL,
    "bytes_received" BIGINT NOT NULL,
    "unique_ips" BIGINT NOT NULL,
    "fetched_at" TIMESTAMP NOT NULL,
    PRIMARY KEY ("service_id", "date"))
"""


class Deployment:
    """The emulator's accounts, the Airflow home, the environment every Airflow process shares, the REST API."""

    def __init__(self, root: Path, pg_url: str, redis_port: int, emulator: ZenDriveEmulator) -> None:
        self.root = root
        self.home = root / "airflow"
        self.dags = self.home / "dags"
        self.dags.mkdir(parents=True)
        for source in (REPO / "example_dags" / f"{FLEET_DAG}.py", HERE / "dags" / f"{SENSOR_DAG}.py"):
            (self.dags / source.name).write_bytes(source.read_bytes())
        self.shared = root / "shared"  # "shared storage": where every worker writes reports
        self.shared.mkdir()
        self.report = self.shared / "sensor_usage.jsonl"
        self.pg_url = pg_url
        self.redis_port = redis_port
        self.api_port = free_port()
        self.emulator = emulator
        # One account per service, each secret with characters that quote and escape differently.
        self.accounts: dict[str, tuple[str, str, int]] = {}  # conn id -> access key, secret key, service id
        for n in range(1, FLEET_SIZE + 1):
            self.accounts[f"zendrive_fleet_{n:02d}"] = (f"AKFLEET{n:02d}", _secret(), 5100 + n)
        self.accounts["zendrive_sensor"] = (SENSOR_KEY, _secret(), SENSOR_SERVICE)
        for access_key, secret, service_id in self.accounts.values():
            emulator.add_account(access_key, secret, service_id)
        self.fleet = [conn_id for conn_id in self.accounts if conn_id.startswith("zendrive_fleet_")]
        self.env = self._environment()
        self._token: str | None = None

    def _environment(self) -> dict[str, str]:
        prefixes = ("AIRFLOW__", "AIRFLOW_CONN_", "AIRFLOW_VAR_")
        env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
        api = f"http://127.0.0.1:{self.api_port}"
        pg_port = int(self.pg_url.rsplit(":", 1)[1])
        env.update(
            {
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
                "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",  # manual runs only: no @daily run of the fleet
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"postgresql+psycopg2://postgres@127.0.0.1:{pg_port}/airflow",
                "AIRFLOW__CELERY__BROKER_URL": f"redis://127.0.0.1:{self.redis_port}/0",
                "AIRFLOW__CELERY__RESULT_BACKEND": f"db+postgresql://postgres@127.0.0.1:{pg_port}/celery_results",
                "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(WORKER_CONCURRENCY),
                # The same on every machine: the API server checks the tokens the scheduler signs for workers.
                "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
                "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
                "AIRFLOW__CORE__FERNET_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(self.api_port),
                "AIRFLOW__API__WORKERS": "1",
                "AIRFLOW__API__BASE_URL": api,
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{api}/execution/",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",  # REST calls below without a password
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
                "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
                "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
                "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "2",
                "AIRFLOW_CONN_ZENDRIVE_WAREHOUSE": json.dumps(
                    {
                        "conn_type": "postgres",
                        "host": "127.0.0.1",
                        "port": pg_port,
                        "login": "postgres",
                        "schema": "warehouse",
                    }
                ),
                "ZENDRIVE_DISTRIBUTED_OUTPUT": str(self.report),
                "PYTHONWARNINGS": "ignore",
                "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            }
        )
        return env  # the ZenDRIVE connections are in the metadata DB (see deploy): no key in any environment

    @property
    def secret_keys(self) -> list[str]:
        """Every account's secret key."""
        return [secret for _, secret, _ in self.accounts.values()]

    def api(self, method: str, path: str, body: object = None) -> tuple[int, Any]:
        """Call the API server's REST API; the status and the decoded JSON (or text) answer."""
        url = f"http://127.0.0.1:{self.api_port}{path}"
        headers = {"Content-Type": "application/json"}
        if not path.startswith("/auth/"):
            if self._token is None:
                self._token = str(self.api("GET", "/auth/token")[1]["access_token"])
            headers["Authorization"] = f"Bearer {self._token}"
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310
                status, text = answer.status, answer.read().decode()
        except urllib.error.HTTPError as exc:
            status, text = exc.code, exc.read().decode(errors="replace")
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text

    def query(
        self, statement: LiteralString, params: tuple[Any, ...] = (), database: str = "airflow"
    ) -> list[tuple[Any, ...]]:
        """Read one of the databases; [] while a table does not exist yet."""
        try:
            with psycopg.connect(f"{self.pg_url}/{database}", connect_timeout=5) as conn:
                return conn.execute(statement, params).fetchall()
        except psycopg.Error:
            return []


def _secret() -> str:
    return f"{secrets.token_urlsafe(9)}/{secrets.token_urlsafe(9)}+D@{secrets.token_urlsafe(6)}"


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/monitor/health", timeout=5) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


def _unless_dead(condition: Callable[[], bool], services: Services) -> Callable[[], bool]:
    """``condition``, or True as soon as a service has exited (no point waiting any longer)."""
    return lambda: condition() or bool(services.dead())


# -- the run -----------------------------------------------------------------------------------------------------


def run(checks: Checks, root: Path, *, cold_table: bool) -> None:
    """Start the services, deploy, run both DAGs, check, measure, look for leaks; stop everything."""
    outputs = root / "output"  # every process's stdout and stderr
    outputs.mkdir()
    services = Services(outputs)
    with contextlib.ExitStack() as stack:
        stack.callback(services.stop)  # whatever happens below, no process outlives the check
        pg_url = stack.enter_context(postgres(root, services))
        with psycopg.connect(f"{pg_url}/postgres", autocommit=True) as conn:
            for database in DATABASES:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
        redis_port = stack.enter_context(redis(root, services))
        emulator = ZenDriveEmulator()
        dep = Deployment(root, pg_url, redis_port, emulator)
        services.start("airflow-db-migrate", [str(BIN / "airflow"), "db", "migrate"], dep.env, dep.root)
        stack.enter_context(emulator)  # starting it imports Airflow (seconds): overlapped with the migration
        say(f"PostgreSQL {pg_url}, Redis 127.0.0.1:{redis_port}, emulator {emulator.url}")
        if not deploy(checks, dep, services, cold_table=cold_table):
            return
        sent_before = len(emulator.requests)
        states = run_dags(checks, dep, services)
        redis_keys = redis_dump(redis_port)  # what is left in Redis once the runs are over
        logs = {p: p.read_text(errors="replace") for p in sorted((dep.home / "logs").rglob("*.log"))}
        check_sensor(checks, dep, states, logs, sent_before)
        check_fleet(checks, dep, sent_before)
        measure(checks, dep)
        services.stop(*AIRFLOW_SERVICES)  # every log is complete once the processes are gone
        redis_cli(redis_port, "SAVE")  # the final data, uncompressed (rdbcompression no), into root/redis
        dumps = root / "dumps"
        dumps.mkdir()
        for database in DATABASES:
            dump = subprocess.run(
                [f"{pg_bindir()}/pg_dump", f"{pg_url}/{database}"],
                capture_output=True,
                check=False,
                timeout=120,
            )
            (dumps / f"{database}.sql").write_bytes(dump.stdout + dump.stderr)
        check_leaks(checks, dep, outputs, redis_keys)


def deploy(checks: Checks, dep: Deployment, services: Services, *, cold_table: bool) -> bool:
    """Migrate, start each component as its own process, wait until they are ready, create the pool."""
    code = services.wait("airflow-db-migrate", 300)
    if not checks.check(
        f"airflow db migrate on PostgreSQL (done {time.monotonic() - _STARTED:.0f} s after the check's start)",
        code == 0,
        f"exit status {code}\n{services.output('airflow-db-migrate')}",
    ):
        return False
    if not cold_table:  # see the module docstring: concurrent first CREATE TABLEs race on PostgreSQL
        with psycopg.connect(f"{dep.pg_url}/warehouse", autocommit=True) as conn:
            conn.execute(TABLE_DDL)
    started = time.monotonic()
    for name, argv in AIRFLOW_SERVICES.items():
        services.start(name, [str(BIN / "airflow"), *argv], dep.env, dep.root)
    ready: dict[str, Callable[[], bool]] = {
        "the API server answers /api/v2/monitor/health": lambda: _healthy(dep.api_port),
        "the Celery worker is ready": lambda: " ready." in services.output("celery-worker"),
        "the DAG processor parsed both DAGs": lambda: (
            len(dep.query("SELECT dag_id FROM dag WHERE dag_id IN (%s, %s)", (FLEET_DAG, SENSOR_DAG))) == 2
        ),
    }
    for what, condition in ready.items():
        ok = wait_until(_unless_dead(condition, services), 180) and not services.dead()
        if not checks.check(
            f"{what} ({time.monotonic() - started:.0f} s after the start)",
            ok,
            "\n".join(f"== {name}\n{services.output(name)[-3000:]}" for name in services.procs),
        ):
            return False
    errors = dep.query("SELECT filename, stacktrace FROM import_error")
    checks.check("the DAGs parse without import errors", not errors, str(errors))
    pool = {"name": POOL, "slots": POOL_SLOTS, "description": "ZenDRIVE API calls", "include_deferred": False}
    status, answer = dep.api("POST", "/api/v2/pools", pool)
    created = checks.check(
        f"POST /api/v2/pools: {POOL} with {POOL_SLOTS} slots", status in (200, 201), str(answer)
    )
    # The connections go where a distributed deployment keeps them: the metadata DB (encrypted with the Fernet
    # key), read by workers through the Task Execution API and by the triggerer, the CA bundle as `verify`.
    refused = []
    for conn_id, (access_key, secret, _) in dep.accounts.items():
        conn = json.loads(dep.emulator.connection_json(access_key, secret))
        body = {**conn, "connection_id": conn_id, "extra": json.dumps(conn["extra"])}
        status, answer = dep.api("POST", "/api/v2/connections", body)
        if status not in (200, 201):
            refused.append(f"{conn_id}: {status} {answer}")
    return created and checks.check(
        f"POST /api/v2/connections: {len(dep.accounts)} ZenDRIVE connections, one per key",
        not refused,
        "\n".join(refused),
    )


def run_dags(checks: Checks, dep: Deployment, services: Services) -> list[str]:
    """Trigger both DAGs through the REST API and wait for both runs to end; the sensor's states seen."""
    dep.emulator.suspend(SENSOR_KEY, requests=SUSPENDED_FOR)
    dep.emulator.inject(
        *(Fault(status=200, delay=REQUEST_TIME, access_key=dep.accounts[c][0]) for c in dep.fleet)
    )
    runs = {
        # batch_size 1: one mapped task per service, so the pool's bound on concurrent tasks shows.
        FLEET_DAG: {
            "logical_date": LOGICAL_DATE.isoformat(),
            "conf": {"conn_ids": dep.fleet, "batch_size": 1},
        },
        SENSOR_DAG: {"logical_date": None},
    }
    triggered = time.monotonic()
    for dag_id, body in runs.items():
        status, answer = dep.api("POST", f"/api/v2/dags/{dag_id}/dagRuns", body)
        checks.check(f"POST /api/v2/dags/{dag_id}/dagRuns", status in (200, 201), str(answer))
    states: list[str] = []

    def finished() -> bool:
        rows = dep.query(
            "SELECT state FROM task_instance WHERE dag_id = %s AND task_id = 'wait_active'", (SENSOR_DAG,)
        )
        for (state,) in rows:
            if state and (not states or states[-1] != state):
                states.append(state)
        ended = dep.query("SELECT state FROM dag_run")
        return len(ended) == 2 and all(state in ("success", "failed") for (state,) in ended)

    done = wait_until(_unless_dead(finished, services), 300) and not services.dead()
    elapsed = time.monotonic() - triggered
    ended = dict(dep.query("SELECT dag_id, state FROM dag_run"))
    tis = dep.query(
        "SELECT dag_id, task_id, map_index, state, try_number FROM task_instance"
        " ORDER BY dag_id, task_id, map_index"
    )
    logs = "\n".join(
        p.read_text(errors="replace")[-2000:] for p in sorted((dep.home / "logs").rglob("*.log"))
    )
    checks.check(
        f"both DAG runs succeeded ({elapsed:.0f} s after they were triggered)",
        done and ended == {FLEET_DAG: "success", SENSOR_DAG: "success"},
        f"runs {ended}\ntasks {tis}\nprocesses that exited: {services.dead()}\n{logs}",
    )
    checks.check(
        f"all {FLEET_SIZE + 3} task instances succeeded, each in its first try",
        len(tis) == FLEET_SIZE + 3 and all(ti[3] == "success" and ti[4] == 1 for ti in tis),
        "\n".join(map(str, tis)),
    )
    return states


def check_sensor(
    checks: Checks, dep: Deployment, states: list[str], logs: dict[Path, str], sent_before: int
) -> None:
    """The sensor poked, deferred, the triggerer polled every poke_interval, the pull wrote the shared report."""
    requests = [r for r in dep.emulator.requests[sent_before:] if r.access_key == SENSOR_KEY]
    statuses = [r.status for r in requests]
    expected = [403] * SUSPENDED_FOR + [200, 200]
    checks.check(
        "sensor's account: poke 403, trigger polls 403, 403, 200, then the pull 200",
        statuses == expected,
        f"statuses {statuses}, expected {expected}",
    )
    checks.check(
        "the sensor's task instance went through 'deferred'", "deferred" in states, f"seen: {states}"
    )
    polling = "The ZenDRIVE service is not active (403); polling again in"
    by_triggerer = sum(text.count(polling) for path, text in logs.items() if ".trigger." in path.name)
    checks.check(
        "the triggerer's log of the trigger shows its 2 polls of a suspended service",
        by_triggerer == SUSPENDED_FOR - 1,
        f"{by_triggerer} in {[str(p) for p in logs if '.trigger.' in p.name]}",
    )
    if len(requests) > SUSPENDED_FOR:
        gaps = [b.at - a.at for a, b in pairwise(requests[: SUSPENDED_FOR + 1])]
        say(
            f"figure: sensor poke -> first trigger poll {gaps[0]:.2f} s (deferral + poke_interval "
            f"{POKE_INTERVAL:.0f} s); trigger poll intervals {', '.join(f'{g:.2f}' for g in gaps[1:])} s"
        )
        started = _trigger_started(text for path, text in logs.items() if ".trigger." in path.name)
        if started is not None:
            to_wall = time.time() - time.monotonic()  # the emulator stamps requests with time.monotonic()
            poke, first_poll = requests[0].at + to_wall, requests[1].at + to_wall
            say(
                f"figure: sensor poke -> trigger started in the triggerer {started - poke:.2f} s; trigger "
                f"started -> first poll {first_poll - started:.2f} s (reading the connection, then "
                f"first_poll_after = poke_interval)"
            )
        checks.check(
            f"the triggerer polled every poke_interval ({POKE_INTERVAL:.0f} s, -5 % to +20 %)",
            all(0.95 * POKE_INTERVAL <= g <= 1.2 * POKE_INTERVAL for g in gaps[1:]),
            f"{gaps}",
        )
    expected_stats = dep.emulator.expected_stats(*SENSOR_WINDOW, access_key=SENSOR_KEY)
    by_day = {entry["date"]: cast(dict[str, Any], entry) for entry in expected_stats["daily"]}
    days = [(SENSOR_WINDOW[0] + datetime.timedelta(days=n)).isoformat() for n in range(7)]
    want = [[SENSOR_SERVICE, day, *(int(by_day.get(day, {}).get(c, 0)) for c in COUNTERS)] for day in days]
    try:
        lines = [json.loads(line) for line in dep.report.read_text().splitlines()]
        got = [[row["service_id"], row["date"], *(row[c] for c in COUNTERS)] for row in lines]
    except (OSError, ValueError, KeyError) as exc:
        got = [[f"error: {exc}"]]
    checks.check(
        "a worker wrote the report on shared storage, equal to the emulator's",
        got == want,
        f"{got}\n!=\n{want}",
    )


def _trigger_started(logs: Iterator[str]) -> float | None:
    """The wall-clock time of the triggerer's "trigger ... starting" line, from the trigger's JSON log."""
    for text in logs:
        for line in text.splitlines():
            with contextlib.suppress(ValueError, KeyError, TypeError):
                entry = json.loads(line)
                if str(entry["event"]).endswith("starting"):
                    return datetime.datetime.fromisoformat(entry["timestamp"]).timestamp()
    return None


def check_fleet(checks: Checks, dep: Deployment, sent_before: int) -> None:
    """One 200 per service; the day and its lookback per service in the PostgreSQL warehouse, equal to the emulator's."""
    keys = [dep.accounts[conn_id][0] for conn_id in dep.fleet]
    sent = [(r.access_key, r.status) for r in dep.emulator.requests[sent_before:]]
    checks.check(
        f"the emulator got {FLEET_SIZE + SUSPENDED_FOR + 2} requests in all, each from a known key",
        len(sent) == FLEET_SIZE + SUSPENDED_FOR + 2 and all(key in (*keys, SENSOR_KEY) for key, _ in sent),
        str(sent),
    )
    seen = {
        key: [r.status for r in dep.emulator.requests[sent_before:] if r.access_key == key] for key in keys
    }
    checks.check(
        f"the emulator got exactly one request per fleet service, each 200 ({FLEET_SIZE} in all)",
        all(statuses == [200] for statuses in seen.values()),
        str(seen),
    )
    first = FLEET_DAY - datetime.timedelta(days=FLEET_LOOKBACK_DAYS)
    days = [first + datetime.timedelta(days=n) for n in range(FLEET_LOOKBACK_DAYS + 1)]
    want = []
    for key in keys:
        stats = dep.emulator.expected_stats(first, FLEET_DAY, access_key=key)
        daily = {d["date"]: cast(dict[str, Any], d) for d in stats["daily"]}
        for day in days:  # a day without traffic is a row of zeros
            counts = daily.get(day.isoformat(), {})
            want.append((stats["service_id"], day.isoformat(), *(int(counts.get(c, 0)) for c in COUNTERS)))
    rows = dep.query(
        "SELECT service_id, date, total_requests, successful_requests, client_errors, auth_failures,"
        " bytes_sent, bytes_received, unique_ips FROM zendrive_daily_usage ORDER BY service_id, date",
        database="warehouse",
    )
    got = [(int(r[0]), str(r[1]), *(int(v) for v in r[2:])) for r in rows]
    checks.check(
        f"the PostgreSQL warehouse holds {FLEET_LOOKBACK_DAYS + 1} rows per service (the day and its lookback), "
        "equal to the emulator's",
        got == sorted(want),
        f"{got}\n!=\n{sorted(want)}",
    )


def measure(checks: Checks, dep: Deployment) -> None:
    """Print the figures: each run's wall time, the fleet's concurrency, per-task durations and queueing."""
    for dag_id, queued, start, end in dep.query(
        "SELECT dag_id, queued_at, start_date, end_date FROM dag_run"
    ):
        if None not in (queued, start, end):
            say(
                f"figure: {dag_id} run: {(end - queued).total_seconds():.1f} s from trigger to success "
                f"({(end - start).total_seconds():.1f} s from the run's start)"
            )
    tis = dep.query(
        "SELECT queued_dttm, start_date, end_date FROM task_instance"
        " WHERE dag_id = %s AND task_id = 'pull_daily_usage' ORDER BY start_date",
        (FLEET_DAG,),
    )
    if len(tis) != FLEET_SIZE or any(None in ti for ti in tis):
        checks.check("the fleet's task instances have their times", False, str(tis))
        return
    durations = sorted((end - start).total_seconds() for _, start, end in tis)
    waits = sorted((start - queued).total_seconds() for queued, start, _ in tis)
    say(
        f"figure: pull_daily_usage durations {', '.join(f'{d:.2f}' for d in durations)} s (median "
        f"{durations[len(durations) // 2]:.2f} s, of which {REQUEST_TIME:.1f} s is the API's answer time)"
    )
    say(f"figure: pull_daily_usage queued -> running {', '.join(f'{w:.2f}' for w in waits)} s")
    events = sorted([(start, 1) for _, start, _ in tis] + [(end, -1) for _, _, end in tis])  # ends first
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    span = (max(end for _, _, end in tis) - min(start for _, start, _ in tis)).total_seconds()
    say(
        f"figure: at most {peak} of the {FLEET_SIZE} mapped pulls ran at once (pool {POOL}: {POOL_SLOTS} "
        f"slots; worker concurrency {WORKER_CONCURRENCY}); first start to last end {span:.1f} s for "
        f"{sum(durations):.1f} s of task time"
    )
    checks.check(
        f"the mapped pulls ran concurrently, bounded by the pool (2 <= {peak} <= {POOL_SLOTS})",
        2 <= peak <= POOL_SLOTS,
    )


def check_leaks(checks: Checks, dep: Deployment, outputs: Path, redis_keys: str) -> None:
    """No piece of any secret in AIRFLOW_HOME, the processes' output, Redis, the databases or the report."""
    scanner = SecretScanner(dep.secret_keys)
    planted = base64.b64encode(
        json.dumps({"x": urllib.parse.quote(dep.secret_keys[0][3:13])}).encode()
    ).decode()
    checks.check(
        "the leak scanner finds a 10-character piece of a secret, URL-quoted in JSON in base64 (self-test)",
        scanner.leaks(planted) and not scanner.leaks(dep.secret_keys[0][3:10]),
    )

    def scan(folder: Path) -> tuple[list[str], int]:
        size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
        return scanner.files(folder), size

    found, size = scan(dep.home)
    checks.check(f"no secret in any file under AIRFLOW_HOME ({size // 1024} KiB)", not found, str(found))
    found, size = scan(outputs)
    names = ", ".join(sorted(p.stem for p in outputs.iterdir()))
    checks.check(f"no secret in any process's output ({names}: {size // 1024} KiB)", not found, str(found))
    monitor = outputs / "redis-monitor.log"  # every command Redis received, with its arguments
    found, size = scan(dep.root / "redis")  # the final SAVE
    found += [str(monitor)] if scanner.leaks(monitor.read_bytes().decode("latin-1")) else []
    found += ["the keys and values left in Redis after the runs"] if scanner.leaks(redis_keys) else []
    checks.check(
        "no secret in Redis: every command it received (MONITOR, "
        f"{monitor.stat().st_size // 1024} KiB), its keys after the runs, its final SAVE",
        not found,
        str(found),
    )
    found, size = scan(dep.root / "dumps")
    checks.check(
        f"no secret in pg_dump of the metadata DB, the Celery result backend and the warehouse ({size // 1024} KiB)",
        not found,
        str(found),
    )
    found, size = scan(dep.shared)
    checks.check("no secret in the report on shared storage", not found, str(found))


def check_venv(checks: Checks, expected_airflow: str) -> None:
    """The package is the installed wheel (not this checkout) and Airflow the expected release."""
    import importlib.metadata

    import airflow_provider_zendrive

    location = Path(airflow_provider_zendrive.__file__).resolve()
    checks.check(
        "the package is the installed wheel, not the checkout",
        REPO not in location.parents and Path(sys.prefix).resolve() in location.parents,
        str(location),
    )
    installed = {name: importlib.metadata.version(name) for name in ("apache-airflow", "celery", "redis")}
    checks.check(
        f"Airflow {expected_airflow} with Celery {installed['celery']} and redis-py {installed['redis']}",
        installed["apache-airflow"] == expected_airflow,
        str(installed),
    )


def main() -> int:
    """Run every check; exit 1 on any failure."""
    signal.signal(
        signal.SIGTERM, lambda signum, frame: sys.exit(143)
    )  # clean up (stop every process) on SIGTERM
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1] if __doc__ else None)
    parser.add_argument("--airflow", required=True, help="the Airflow version this venv must have")
    parser.add_argument(
        "--keep", metavar="DIR", help="copy the deployment's files (logs, outputs, dumps) here"
    )
    parser.add_argument(
        "--cold-table",
        action="store_true",
        help="let the mapped pulls create the warehouse table themselves (shows the CREATE TABLE race)",
    )
    args = parser.parse_args()
    checks = Checks()
    started = time.monotonic()
    check_venv(checks, args.airflow)
    with tempfile.TemporaryDirectory(prefix="zendrive-distributed-") as root:
        try:
            run(checks, Path(root), cold_table=args.cold_table)
        except Exception as exc:  # a service that did not start: one failure, with the reason
            checks.check("the deployment ran", False, f"{type(exc).__name__}: {exc}")
        if args.keep:
            ignore = shutil.ignore_patterns("data", "*.sock", ".s.PGSQL.*")
            shutil.copytree(root, args.keep, dirs_exist_ok=True, ignore=ignore)
            print(f"The deployment's files are in {args.keep}", flush=True)
    say(f"figure: the whole check took {time.monotonic() - started:.0f} s")
    print(f"distributed-check: {checks.passed} passed, {checks.failed} failed", flush=True)
    return 0 if checks.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
