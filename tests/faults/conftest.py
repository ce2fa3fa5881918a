"""
The fault suite (``make faults``): every test here is marked ``faults``, which plain ``pytest`` (and so
``make pytest``) deselects; ``pytest -m faults`` runs them (``make test`` ends with ``make faults``). The tests that need the deployment share one
(:mod:`deployment`), started once. The figures they measured are printed at the end of the session.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from faults.deployment import FIGURES, Deployment, deployment

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test of this folder ``faults``."""
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.faults)


@pytest.fixture(scope="session")
def faults_deployment() -> Iterator[Deployment]:
    """The running deployment of :mod:`deployment`, for the whole session."""
    with deployment() as dep:
        yield dep


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the figures the fault tests measured (for docs/guides/reliability.rst's table)."""
    if FIGURES:
        terminalreporter.section("fault figures")
        for line in FIGURES:
            terminalreporter.write_line(f"figure: {line}")
