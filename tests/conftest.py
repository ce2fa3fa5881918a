"""
Shared fixtures: an isolated Airflow home, ZenDRIVE connections pointing at the emulator.

The emulator fixtures (``zendrive_emulator``, ``zendrive_emulator_session``) come from the package's own pytest
plugin, :mod:`airflow_provider_zendrive.testing.pytest_plugin`, exactly as users get them.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, cast

import pytest

# Airflow reads its configuration on first import: isolate it before anything imports airflow.
_HOME = tempfile.mkdtemp(prefix="zendrive-tests-airflow-")
os.environ["AIRFLOW_HOME"] = _HOME
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")

if TYPE_CHECKING:
    from airflow_runner import AirflowRunner

    from airflow_provider_zendrive.hooks.zendrive import ZenDriveStatsHook
    from airflow_provider_zendrive.testing import ZenDriveEmulator

    class RecordingHook(ZenDriveStatsHook):
        """For the type checker: a hook from :func:`make_hook`, its waits between retries in ``waits``."""

        waits: list[float]


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
) -> Callable[..., RecordingHook]:
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
    ) -> RecordingHook:
        conn_id = set_connection(
            zendrive_emulator.connection_uri(access_key, secret_key, bare_host=True, **extra)
        )
        hook = cast("RecordingHook", ZenDriveStatsHook(zendrive_conn_id=conn_id))
        waits: list[float] = []
        hook.waits = waits
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
        yield cast("list[dict[str, Any]]", captured)  # structlog's event dicts are plain dicts


# -- a throwaway PostgreSQL server, and real DAG runs -----------------------------------------------------------


@pytest.fixture(scope="session")
def postgresql_server() -> Iterator[dict[str, object]]:
    """
    A throwaway PostgreSQL server for the session: ``{"host", "port", "user", "version", "start_seconds"}``.

    Started by ``postgres_server.postgres_server`` (``tests/postgres_server.py``) (as the ``postgres`` user when running as root) and stopped at
    session end. If it cannot start, the tests that need it are skipped, except when the ``CI`` variable is
    set: then they fail.
    """
    import contextlib
    import time

    from postgres_server import PostgresUnavailable, postgres_server

    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        try:
            info = stack.enter_context(postgres_server())
        except PostgresUnavailable as exc:
            if os.environ.get("CI"):
                pytest.fail(f"PostgreSQL is required in CI: {exc}")
            pytest.skip(f"PostgreSQL unavailable: {exc}")
        yield {**info, "start_seconds": time.monotonic() - started}


@pytest.fixture
def postgresql_db(postgresql_server: dict[str, object]) -> Iterator[dict[str, object]]:
    """
    A fresh, empty database on :func:`postgresql_server` for one test, dropped afterwards.

    Yields ``{"host", "port", "user", "dbname", "uri"}``; ``uri`` is an Airflow ``postgres://`` connection URI.
    """
    import uuid

    import psycopg

    dbname = f"test_{uuid.uuid4().hex[:12]}"
    admin: dict[str, Any] = {
        "host": postgresql_server["host"],
        "port": postgresql_server["port"],
        "user": "postgres",
    }
    with psycopg.connect(dbname="postgres", autocommit=True, **admin) as conn:
        conn.execute(f'CREATE DATABASE "{dbname}"')
    uri = f"postgres://postgres@{admin['host']}:{admin['port']}/{dbname}"
    yield {**admin, "dbname": dbname, "uri": uri}
    with psycopg.connect(dbname="postgres", autocommit=True, **admin) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')


@pytest.fixture(scope="session")
def mariadb_server() -> Iterator[dict[str, object]]:
    """
    A throwaway MariaDB server for the session: ``{"host", "port", "user", "socket", "version"}``.

    Started by :func:`mariadb_server.mariadb_server` and stopped at session end. If it cannot start, the tests
    that need it are skipped, except when the ``CI`` variable is set: then they fail.
    """
    import contextlib

    from mariadb_server import MariaDBUnavailable, mariadb_server

    with contextlib.ExitStack() as stack:
        try:
            info = stack.enter_context(mariadb_server())
        except MariaDBUnavailable as exc:
            if os.environ.get("CI"):
                pytest.fail(f"MariaDB is required in CI: {exc}")
            pytest.skip(f"MariaDB unavailable: {exc}")
        yield info


@pytest.fixture
def mariadb_db(mariadb_server: dict[str, object]) -> Iterator[dict[str, object]]:
    """
    A fresh, empty database on :func:`mariadb_server` for one test, dropped afterwards.

    Yields ``{"host", "port", "user", "dbname", "uri"}``; ``uri`` is an Airflow ``mysql://`` connection URI
    (the official MySQL provider's hook, on mysqlclient).
    """
    import uuid

    import MySQLdb

    dbname = f"test_{uuid.uuid4().hex[:12]}"
    admin: dict[str, Any] = {
        "host": mariadb_server["host"],
        "port": mariadb_server["port"],
        "user": mariadb_server["user"],
    }

    def run(statement: str) -> None:
        conn = MySQLdb.connect(**admin)
        try:
            conn.cursor().execute(statement)
        finally:
            conn.close()

    run(f"CREATE DATABASE `{dbname}`")
    uri = f"mysql://{admin['user']}@{admin['host']}:{admin['port']}/{dbname}"
    yield {**admin, "dbname": dbname, "uri": uri}
    run(f"DROP DATABASE IF EXISTS `{dbname}`")


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
