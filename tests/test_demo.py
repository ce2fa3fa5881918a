"""``make demo`` (``scripts/demo.py``) from a fresh state: a green run that prints the rows that really landed."""

from __future__ import annotations

import datetime
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from zendrive_expected import sqlite_rows, truth_tuples

from airflow_provider_zendrive.testing import DEMO_SERVICE_ID

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_demo_runs_the_billing_dag_and_prints_the_rows_that_landed(tmp_path: Path) -> None:
    # The script keeps its state in <its repo>/.demo: run a copy, so the test starts from nothing (no Airflow
    # home, no warehouse) and never touches the developer's own .demo folder.
    (tmp_path / "scripts").mkdir()
    shutil.copy2(ROOT / "scripts" / "demo.py", tmp_path / "scripts" / "demo.py")
    shutil.copytree(
        ROOT / "example_dags", tmp_path / "example_dags", ignore=shutil.ignore_patterns("__pycache__")
    )

    done = subprocess.run(
        [sys.executable, str(tmp_path / "scripts" / "demo.py"), "--days", "2"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=tmp_path,
    )

    output = f"{done.stdout}\n{done.stderr}"
    assert done.returncode == 0, output[-5000:]
    found = re.search(r"for logical dates (\d{4}-\d\d-\d\d) \.\. (\d{4}-\d\d-\d\d)", done.stdout)
    assert found, output[-5000:]
    # Each daily run pulls the UTC day before its logical date.
    first, last = (datetime.date.fromisoformat(d) - datetime.timedelta(days=1) for d in found.groups())
    assert (last - first).days == 1
    warehouse = tmp_path / ".demo" / "warehouse.db"
    # ... and the DAG's lookback re-reads the days before it.
    lookback = datetime.timedelta(days=daily_billing_lookback())
    assert sqlite_rows(warehouse) == truth_tuples(DEMO_SERVICE_ID, first - lookback, last)
    # The printed table shows the days of the runs: service, date, requests (with thousands separators), ...
    expected = truth_tuples(DEMO_SERVICE_ID, first, last)
    for row in expected:
        assert re.search(rf"\b{row[0]}\s+{row[1]}\s+{row[2]:,}\s", done.stdout), done.stdout
    assert str(warehouse) in done.stdout
    assert "Emulator stopped (2 API requests served)" in done.stdout


def daily_billing_lookback() -> int:
    """The example DAG's ``LOOKBACK_DAYS``, read from the file the demo runs."""
    import ast

    tree = ast.parse((ROOT / "example_dags" / "zendrive_daily_billing.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == [
            "LOOKBACK_DAYS"
        ]:
            return int(ast.literal_eval(node.value))
    raise AssertionError("zendrive_daily_billing.py defines no LOOKBACK_DAYS")
