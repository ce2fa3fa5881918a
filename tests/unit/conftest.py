"""The unit layer is pure: a test here that starts a process or opens a network connection fails."""

from __future__ import annotations

import socket
import subprocess
from typing import Any

import pytest


@pytest.fixture(autouse=True)
def _no_processes_and_no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(what: str) -> Any:
        def refuse(*args: object, **kwargs: object) -> None:
            raise AssertionError(f"tests/unit must stay pure: {what} (move the test out of the unit layer)")

        return refuse

    monkeypatch.setattr(subprocess.Popen, "__init__", refused("a subprocess was started"))
    monkeypatch.setattr(socket.socket, "connect", refused("a network connection was opened"))
    monkeypatch.setattr(socket.socket, "connect_ex", refused("a network connection was opened"))
