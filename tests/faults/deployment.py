"""
The fault suite's deployment: Airflow's components as separate processes from the development venv, the HTTPS
emulator, a real SMTP server, and throwaway database servers: PostgreSQL for Airflow's metadata DB, and the
warehouses the DAGs write to (a second PostgreSQL and a MariaDB), so a warehouse can be restarted without
touching Airflow's own database.

``airflow api-server``, ``scheduler`` (LocalExecutor), ``dag-processor`` and ``triggerer`` each run in a
process group of their own, so one of them can be killed and started again. The DAGs are
``tests/faults/dags/zendrive_faults.py``; the connections come from ``AIRFLOW_CONN_*`` variables. Health
thresholds and heartbeats are shortened (a dead triggerer's triggers move after 6 s, not Airflow's 30 s).
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import json
import os
import secrets
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, LiteralString, cast

import psycopg
from distributed.check_celery import Services, free_port, wait_until
from mariadb_server import mariadb_server
from postgres_server import postgres_server
from smtp_server import Mailbox, smtp_server

from airflow_provider_zendrive.testing import ZenDriveEmulator

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
FAULT_KEY, FAULT_SERVICE = "AKFAULTS", 6100
SENSOR_KEY, SENSOR_SERVICE = "AKFAULTSENSOR", 6200
#: The triggerer is considered dead this many seconds after its last heartbeat (Airflow's default: 30).
TRIGGERER_HEALTH_THRESHOLD = 6
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
#: How many DAGs tests/faults/dags/zendrive_faults.py defines (the deployment is up once all are parsed).
DAGS = 6
#: The MariaDB warehouse's database.
MARIADB_DATABASE = "faults"
#: The month the budget alerts look at.
APRIL = (datetime.date(2026, 4, 1), datetime.date(2026, 4, 30))


#: Every figure measured in this session, printed at its end (conftest's ``pytest_terminal_summary``).
FIGURES: list[str] = []


def figure(line: str) -> None:
    """Record one measured figure, for the reliability guide's table."""
    FIGURES.append(line)


class Deployment:
    """A running deployment: the emulator, the warehouse, Airflow's processes, and ways to drive them."""

    def __init__(
        self,
        root: Path,
        metadata: dict[str, object],
        warehouse: dict[str, object],
        mariadb: dict[str, object],
        emulator: ZenDriveEmulator,
        mailbox: Mailbox,
    ) -> None:
        self.root = root
        self.home = root / "airflow"
        (self.home / "dags").mkdir(parents=True)
        (self.home / "dags" / "zendrive_faults.py").write_bytes(
            (HERE / "dags" / "zendrive_faults.py").read_bytes()
        )
        self.outputs = root / "outputs"
        self.outputs.mkdir()
        self.services = Services(self.outputs)
        self.warehouse = warehouse
        self.mariadb = mariadb
        self.emulator = emulator
        self.mailbox = mailbox
        self.hold_marker = root / "held.pid"
        self.csv = root / "out" / "usage.csv"
        self.api_port = free_port()
        self._token: str | None = None
        self._starts = 0
        self.secret = f"f4ult/{secrets.token_hex(8)}+s3cret"
        emulator.add_account(FAULT_KEY, self.secret, FAULT_SERVICE)
        emulator.add_account(SENSOR_KEY, self.secret, SENSOR_SERVICE)
        api = f"http://127.0.0.1:{self.api_port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW__", "AIRFLOW_CONN_"))}
        env.update(
            {
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.home / "dags"),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
                "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",  # manual runs only
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": (
                    f"postgresql+psycopg2://postgres@127.0.0.1:{metadata['port']}/postgres"
                ),
                "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
                "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
                "AIRFLOW__CORE__FERNET_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(self.api_port),
                "AIRFLOW__API__WORKERS": "1",
                "AIRFLOW__API__BASE_URL": api,
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{api}/execution/",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
                "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
                "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
                "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "2",
                "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": str(TRIGGERER_HEALTH_THRESHOLD),
                "AIRFLOW_CONN_ZENDRIVE_FAULTS": emulator.connection_uri(
                    FAULT_KEY, self.secret, timeout="10", max_retries="3"
                ),
                "AIRFLOW_CONN_ZENDRIVE_FAULTS_SENSOR": emulator.connection_uri(
                    SENSOR_KEY, self.secret, timeout="10", max_retries="3"
                ),
                "AIRFLOW_CONN_FAULTS_WAREHOUSE": json.dumps(
                    {
                        "conn_type": "postgres",
                        "host": "127.0.0.1",
                        "port": warehouse["port"],
                        "login": "postgres",
                        "schema": "postgres",
                    }
                ),
                "AIRFLOW_CONN_FAULTS_MARIADB": f"mysql://root@127.0.0.1:{mariadb['port']}/{MARIADB_DATABASE}",
                "AIRFLOW_CONN_FAULTS_SMTP": mailbox.connection_json(),
                "FAULTS_HOLD_MARKER": str(self.hold_marker),
                "FAULTS_CSV": str(self.csv),
                # April of the alerts' service ends at 115 % of its budget: 50, 80 and 100 % are crossed.
                "FAULTS_BUDGET_GB": repr(sum(row[6] for row in expected_rows(emulator, *APRIL)) / 1.15 / 1e9),
                "PYTHONWARNINGS": "ignore",
                "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            }
        )
        self.env = env

    # -- processes ---------------------------------------------------------------------------------------------

    def migrate(self) -> None:
        """``airflow db migrate`` of the metadata DB."""
        self.services.start("migrate", [str(BIN / "airflow"), "db", "migrate"], env=self.env, cwd=self.root)
        if self.services.wait("migrate", 300) != 0:
            raise RuntimeError(f"airflow db migrate failed:\n{self.services.output('migrate')[-3000:]}")

    def start(self, component: str) -> str:
        """Start one Airflow component in its own process group; the name its output is kept under."""
        self._starts += 1
        name = component if self._starts <= len(COMPONENTS) else f"{component}-{self._starts}"
        self.services.start(name, [str(BIN / "airflow"), component], env=self.env, cwd=self.root)
        return name

    def kill(self, name: str) -> None:
        """SIGKILL a component's whole process group (the process and every child it started)."""
        import signal

        self.services.stop(name, sig=signal.SIGKILL, timeout=10)
        del self.services.procs[name]  # killed on purpose: not a component that died

    def held_pid(self) -> int:
        """The pid a test DAG's held task wrote to ``FAULTS_HOLD_MARKER`` (0 while there is none yet)."""
        with contextlib.suppress(OSError):
            text = self.hold_marker.read_text().strip()
            if text.isdigit():
                return int(text)
        return 0

    def dead(self) -> list[str]:
        """The components that exited."""
        return self.services.dead()

    # -- the REST API and the metadata DB ---------------------------------------------------------------------

    def api(self, method: str, path: str, body: object = None) -> tuple[int, Any]:
        """Call the REST API; the status and the decoded JSON answer."""
        headers = {"Content-Type": "application/json"}
        if not path.startswith("/auth/"):
            if self._token is None:
                self._token = str(self.api("GET", "/auth/token")[1]["access_token"])
            headers["Authorization"] = f"Bearer {self._token}"
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.api_port}{path}", data=data, headers=headers, method=method
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310
                status, text = answer.status, answer.read().decode()
        except urllib.error.HTTPError as exc:
            status, text = exc.code, exc.read().decode(errors="replace")
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text

    def api_up(self) -> bool:
        """Whether the REST API answers."""
        try:
            return self.api("GET", "/api/v2/monitor/health")[0] == 200
        except OSError:
            return False

    def query(self, statement: LiteralString, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Read the metadata DB; [] while a table does not exist yet."""
        url = self.env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].replace("postgresql+psycopg2", "postgresql")
        try:
            with psycopg.connect(url, connect_timeout=5) as conn:
                return conn.execute(statement, params).fetchall()
        except psycopg.errors.UndefinedTable:
            return []

    def trigger(self, dag_id: str, logical_date: datetime.datetime | None = None) -> str:
        """Trigger a run through the REST API; its run id."""
        body = {"logical_date": None if logical_date is None else logical_date.isoformat()}
        status, answer = self.api("POST", f"/api/v2/dags/{dag_id}/dagRuns", body)
        if status not in (200, 201):
            raise RuntimeError(f"triggering {dag_id}: {status} {answer}")
        return str(answer["dag_run_id"])

    def run_state(self, dag_id: str, run_id: str) -> str | None:
        """The state of a DAG run."""
        rows = self.query("SELECT state FROM dag_run WHERE dag_id = %s AND run_id = %s", (dag_id, run_id))
        return rows[0][0] if rows else None

    def tries(self, dag_id: str, run_id: str) -> dict[str, tuple[str | None, int]]:
        """Each task instance's state and try number, by task id."""
        rows = self.query(
            "SELECT task_id, state, try_number FROM task_instance WHERE dag_id = %s AND run_id = %s",
            (dag_id, run_id),
        )
        return {task_id: (state, try_number) for task_id, state, try_number in rows}

    def wait_run(self, dag_id: str, run_id: str, timeout: float) -> str | None:
        """Wait until the run ends (success or failed); its state then."""
        wait_until(self.unless_dead(lambda: self.run_state(dag_id, run_id) in ("success", "failed")), timeout)
        return self.run_state(dag_id, run_id)

    def unless_dead(self, ready: Callable[[], bool]) -> Callable[[], bool]:
        """``ready``, but raise as soon as a component has exited."""

        def check() -> bool:
            if self.dead():
                raise RuntimeError(f"components exited: {self.dead()}\n{self.tail()}")
            return ready()

        return check

    def tail(self) -> str:
        """The end of every component's output and of every task log, for failure messages."""
        parts = [
            f"--- {p.name}\n{p.read_text(errors='replace')[-1500:]}" for p in sorted(self.outputs.iterdir())
        ]
        logs = sorted((self.home / "logs").rglob("*.log")) if (self.home / "logs").exists() else []
        parts += [f"--- {p}\n{p.read_text(errors='replace')[-1500:]}" for p in logs[-6:]]
        return "\n".join(parts)

    def task_log(self, dag_id: str, run_id: str, task_id: str) -> str:
        """Every try's log of a task."""
        folder = self.home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
        return "\n".join(p.read_text(errors="replace") for p in sorted(folder.rglob("*.log")))

    # -- the warehouse ----------------------------------------------------------------------------------------

    def warehouse_url(self) -> str:
        """The libpq URL of the warehouse database."""
        return f"postgresql://postgres@127.0.0.1:{self.warehouse['port']}/postgres"

    def sql(self, statement: LiteralString, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run one statement on the warehouse (autocommit); the rows it returns, if any."""
        with psycopg.connect(self.warehouse_url(), autocommit=True, connect_timeout=5) as conn:
            cursor = conn.execute(statement, params)
            return cursor.fetchall() if cursor.description else []


@contextlib.contextmanager
def deployment() -> Iterator[Deployment]:
    """Start everything, wait until the API answers and the DAGs are parsed; stop everything on exit."""
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="zendrive-faults-")))
        root.chmod(0o755)
        metadata = stack.enter_context(postgres_server())
        warehouse = stack.enter_context(postgres_server())
        mariadb = stack.enter_context(mariadb_server())
        maria_sql(mariadb, f"CREATE DATABASE {MARIADB_DATABASE}", database=None)
        # A fixed port and certificate folder: fault d stops the emulator and starts it again at the same address.
        emulator = ZenDriveEmulator(port=free_port(), cert_dir=root / "emulator")
        stack.enter_context(emulator)
        mailbox = stack.enter_context(smtp_server())
        dep = Deployment(root, metadata, warehouse, mariadb, emulator, mailbox)
        stack.callback(dep.services.stop)
        dep.migrate()
        for component in COMPONENTS:
            dep.start(component)
        parsed = wait_until(
            dep.unless_dead(
                lambda: (
                    dep.api_up()
                    and len(dep.query("SELECT dag_id FROM dag WHERE dag_id LIKE 'faults_%%'")) == DAGS
                )
            ),
            300,
            1,
        )
        if not parsed:
            raise RuntimeError(f"the deployment did not come up:\n{dep.tail()}")
        figure(
            f"deployment up (2 PostgreSQL, MariaDB, migrate, 4 components, DAGs parsed) in "
            f"{time.monotonic() - started:.0f} s"
        )
        yield dep


# -- the warehouse's usage table, and a write held half-way ------------------------------------------------------

COUNTERS = (
    "total_requests",
    "successful_requests",
    "client_errors",
    "auth_failures",
    "bytes_sent",
    "bytes_received",
    "unique_ips",
)
#: A trigger on the usage table that waits, inside the writer's transaction, on any row whose day is in
#: ``fault_hold``: the upsert is held half-way (the rows before it written, uncommitted) until the day is removed.
HOLD_SQL: tuple[LiteralString, ...] = (
    "CREATE TABLE IF NOT EXISTS fault_hold (day DATE PRIMARY KEY)",
    """CREATE OR REPLACE FUNCTION fault_hold_row() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        WHILE EXISTS (SELECT 1 FROM fault_hold WHERE day = NEW.date) LOOP
            PERFORM pg_sleep(0.2);
        END LOOP;
        RETURN NEW;
    END $$""",
)


def expected_rows(
    emulator: ZenDriveEmulator, first: datetime.date, last: datetime.date, access_key: str = FAULT_KEY
) -> list[tuple[Any, ...]]:
    """The rows the table must hold for the window: the emulator's numbers, zeros on days without traffic."""
    stats = emulator.expected_stats(first, last, access_key=access_key)
    daily = {entry["date"]: cast("dict[str, Any]", entry) for entry in stats["daily"]}
    days = [first + datetime.timedelta(days=n) for n in range((last - first).days + 1)]
    return [
        (int(stats["service_id"]), day, *(int(daily.get(day.isoformat(), {}).get(c, 0)) for c in COUNTERS))
        for day in days
    ]


def table_rows(dep: Deployment, table: LiteralString) -> list[tuple[Any, ...]]:
    """A usage table's rows (fetched_at left out), by day."""
    return dep.sql(
        f"SELECT service_id, date, {', '.join(COUNTERS)} FROM {table} ORDER BY service_id, date"  # noqa: S608
    )


def install_hold(dep: Deployment, table: LiteralString) -> None:
    """Put the holding trigger on ``table`` (created beforehand)."""
    for statement in HOLD_SQL:
        dep.sql(statement)
    dep.sql(f"DROP TRIGGER IF EXISTS fault_hold ON {table}")
    dep.sql(
        f"CREATE TRIGGER fault_hold BEFORE INSERT OR UPDATE ON {table} FOR EACH ROW EXECUTE FUNCTION fault_hold_row()"
    )


def held_backend(dep: Deployment, timeout: float) -> tuple[int, int] | None:
    """The (backend pid, client port) of the session whose write the trigger holds, once it is held."""
    found: list[tuple[int, int]] = []

    def held() -> bool:
        found[:] = dep.sql(
            "SELECT pid, client_port FROM pg_stat_activity WHERE wait_event = 'PgSleep' AND query ILIKE '%%INSERT%%'"
        )
        return bool(found)

    return found[0] if wait_until(dep.unless_dead(held), timeout, 0.2) else None


def process_with_port(port: int) -> int | None:
    """The pid of the local process that owns the TCP connection from ``port`` (the warehouse's client)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as lines:
            for line in list(lines)[1:]:
                fields = line.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(f"socket:[{fields[9]}]")
    for fd in Path("/proc").glob("[0-9]*/fd/*"):
        with contextlib.suppress(OSError):
            if os.readlink(fd) in inodes:
                return int(fd.parts[2])
    return None


def describe_process(pid: int) -> tuple[str, int]:
    """A process's command line and its parent's pid."""
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    stat = Path(f"/proc/{pid}/stat").read_text()
    return cmdline, int(stat.rsplit(")", 1)[1].split()[1])


def maria_sql(
    server: dict[str, object],
    statement: str,
    params: tuple[Any, ...] = (),
    *,
    database: str | None = MARIADB_DATABASE,
) -> list[tuple[Any, ...]]:
    """Run one statement on the MariaDB warehouse (autocommit); the rows it returns, if any."""
    import MySQLdb

    options: dict[str, Any] = {"host": "127.0.0.1", "port": int(str(server["port"])), "user": "root"}
    conn = MySQLdb.connect(**options, **({"database": database} if database else {}), autocommit=True)
    try:
        cursor = conn.cursor()
        cursor.execute(statement, params or None)
        return list(cursor.fetchall()) if cursor.description else []
    finally:
        conn.close()
