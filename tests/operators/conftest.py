"""Fixtures of the operator tests: connections to the emulator and to SQL databases."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

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
