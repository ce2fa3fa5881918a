"""Fixtures of the operator tests: connections to the emulator and to SQL databases (``warehouse``: each kind)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from warehouses import KINDS, Warehouse

if TYPE_CHECKING:
    from airflow_provider_zendrive.testing import ZenDriveEmulator


@pytest.fixture
def zendrive_conn(zendrive_emulator: ZenDriveEmulator, set_connection: Callable[..., str]) -> str:
    """The connection id ``zendrive_test``, pointing at the emulator with the demo keys."""
    return set_connection(zendrive_emulator.connection_uri())


@pytest.fixture
def sqlite_conn(tmp_path: Path, set_connection: Callable[..., str]) -> tuple[str, Path]:
    """An Airflow SQLite connection ``zd_sqlite`` to a fresh database file, and that file."""
    path = tmp_path / "usage.db"
    return set_connection(json.dumps({"conn_type": "sqlite", "host": str(path)}), "zd_sqlite"), path


@pytest.fixture(params=KINDS)
def warehouse(
    request: pytest.FixtureRequest, set_connection: Callable[..., str], tmp_path: Path
) -> Warehouse:
    """
    An empty warehouse, once of each kind (:data:`warehouses.KINDS`): a SQLite file, a database on the
    session's PostgreSQL server, one on its MariaDB server. The connection id is ``zd_wh``.
    """
    if request.param == "sqlite":
        uri = json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "warehouse.db")})
    else:
        database: dict[str, object] = request.getfixturevalue(f"{request.param}_db")
        uri = str(database["uri"])
    return Warehouse(request.param, set_connection(uri, "zd_wh"))
