"""
Shared fixtures: an isolated Airflow home, ZenDRIVE connections pointing at the emulator.

The emulator fixtures (``zendrive_emulator``, ``zendrive_emulator_session``) come from the package's own pytest
plugin, :mod:`airflow_provider_zendrive.testing.pytest_plugin`, exactly as users get them.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

# Airflow reads its configuration on first import: isolate it before anything imports airflow.
_HOME = tempfile.mkdtemp(prefix="zendrive-tests-airflow-")
os.environ["AIRFLOW_HOME"] = _HOME
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")

if TYPE_CHECKING:
    from airflow_runner import AirflowRunner

    from airflow_provider_zendrive.hooks.zendrive import ZenDriveStatsHook
    from airflow_provider_zendrive.testing import ZenDriveEmulator

CONN_ID = "zendrive_test"


@pytest.fixture
def set_connection(monkeypatch: pytest.MonkeyPatch) -> Callable[..., str]:
    """Define an Airflow connection through an ``AIRFLOW_CONN_<ID>`` variable (URI or JSON)."""

    def _set(value: str, conn_id: str = CONN_ID) -> str:
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", value)
        return conn_id

    return _set


@pytest.fixture
def make_hook(
    zendrive_emulator: ZenDriveEmulator, set_connection: Callable[..., str]
) -> Callable[..., ZenDriveStatsHook]:
    """
    Build a hook on a fresh connection to the emulator; waits between retries are recorded, not slept.

    ``make_hook(secret_key=..., max_retries="2", ...)``: keyword arguments become connection extras, except
    ``access_key`` / ``secret_key``. The recorded waits are in ``hook.waits``.
    """
    from airflow_provider_zendrive.hooks.zendrive import ZenDriveStatsHook
    from airflow_provider_zendrive.testing import DEMO_ACCESS_KEY, DEMO_SECRET_KEY

    def _make(
        access_key: str = DEMO_ACCESS_KEY,
        secret_key: str = DEMO_SECRET_KEY,
        *,
        sleep: bool = False,
        **extra: str,
    ) -> ZenDriveStatsHook:
        conn_id = set_connection(zendrive_emulator.connection_uri(access_key, secret_key, **extra))
        hook = ZenDriveStatsHook(zendrive_conn_id=conn_id)
        waits: list[float] = []
        hook.waits = waits  # type: ignore[attr-defined]
        if not sleep:
            hook._sleep = waits.append
        return hook

    return _make


@pytest.fixture
def logs() -> Iterator[list[dict[str, Any]]]:
    """
    Every structlog event while the test runs (Airflow's loggers are structlog), before any masking.

    ``zendrive_expected.warnings_of(logs)`` picks the WARNING events.
    """
    from structlog.testing import capture_logs

    with capture_logs() as captured:
        yield captured


# -- a throwaway PostgreSQL server, and real DAG runs -----------------------------------------------------------


def _pg_bindir() -> str | None:
    import glob
    import shutil
    import subprocess

    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    if shutil.which("pg_config"):
        bindir = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=False)
        candidates.append(bindir.stdout.strip())
    for folder in candidates:
        if folder and os.path.exists(os.path.join(folder, "initdb")):
            return folder
    return None


@pytest.fixture(scope="session")
def postgresql_server() -> Iterator[dict[str, object]]:
    """
    A throwaway PostgreSQL server for the session: ``{"host", "port", "user", "start_seconds"}``.

    ``initdb`` refuses to run as root, so as root the data folder belongs to the ``postgres`` user and the
    server runs through ``runuser -u postgres --``. It listens on 127.0.0.1 (a free port) with ``trust`` auth
    and its unix socket inside the temp folder, and is stopped at session end. If it cannot start, the tests
    that need it are skipped, except when the ``CI`` variable is set: then they fail.
    """
    import shutil
    import socket
    import subprocess
    import time

    def unavailable(reason: str) -> None:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is required in CI: {reason}")
        pytest.skip(f"PostgreSQL unavailable: {reason}")

    bindir = _pg_bindir()
    if bindir is None:
        unavailable("no initdb found (install postgresql)")
    assert bindir is not None
    root = tempfile.mkdtemp(prefix="zendrive-pg-")
    prefix: list[str] = []
    if os.geteuid() == 0:
        import pwd

        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            unavailable("running as root and there is no 'postgres' user to run the server")
        os.chown(root, owner.pw_uid, owner.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    data = os.path.join(root, "data")
    started = time.monotonic()
    init = subprocess.run(
        [*prefix, f"{bindir}/initdb", "-D", data, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"],
        capture_output=True,
        text=True,
        check=False,
    )
    if init.returncode != 0:
        unavailable(f"initdb failed: {init.stderr.strip()[-500:]}")
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off"
    start = subprocess.run(
        [*prefix, f"{bindir}/pg_ctl", "-D", data, "-o", options, "-l", f"{root}/server.log", "-w", "start"],
        capture_output=True,
        text=True,
        check=False,
    )
    if start.returncode != 0:
        with open(f"{root}/server.log", errors="replace") as log:
            unavailable(f"pg_ctl start failed: {start.stderr.strip()} {log.read()[-500:]}")
    info: dict[str, object] = {
        "host": "127.0.0.1",
        "port": port,
        "user": "postgres",
        "start_seconds": time.monotonic() - started,
    }
    try:
        yield info
    finally:
        subprocess.run(
            [*prefix, f"{bindir}/pg_ctl", "-D", data, "-m", "immediate", "-w", "stop"],
            capture_output=True,
            check=False,
        )
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postgresql_db(postgresql_server: dict[str, object]) -> Iterator[dict[str, object]]:
    """
    A fresh, empty database on :func:`postgresql_server` for one test, dropped afterwards.

    Yields ``{"host", "port", "user", "dbname", "uri"}``; ``uri`` is an Airflow ``postgres://`` connection URI.
    """
    import uuid

    import psycopg

    dbname = f"test_{uuid.uuid4().hex[:12]}"
    admin = {"host": postgresql_server["host"], "port": postgresql_server["port"], "user": "postgres"}
    with psycopg.connect(dbname="postgres", autocommit=True, **admin) as conn:  # type: ignore[arg-type]
        conn.execute(f'CREATE DATABASE "{dbname}"')
    uri = f"postgres://postgres@{admin['host']}:{admin['port']}/{dbname}"
    yield {**admin, "dbname": dbname, "uri": uri}
    with psycopg.connect(dbname="postgres", autocommit=True, **admin) as conn:  # type: ignore[arg-type]
        conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')


@pytest.fixture(scope="session")
def airflow_runner(tmp_path_factory: pytest.TempPathFactory) -> AirflowRunner:
    """
    Runs DAGs for real with ``airflow dags test`` (see :mod:`tests.airflow_runner` for the API).

    The metadata DB is migrated once per session; each run gets a fresh copy of it.
    """
    from airflow_runner import AirflowRunner  # tests/ is on sys.path (rootdir conftest, prepend mode)

    runner = AirflowRunner(tmp_path_factory.mktemp("airflow-runs"))
    runner.migrate()
    return runner
