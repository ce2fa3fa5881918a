"""The report module stays stdlib only, checked in a fresh interpreter (a subprocess: not in the unit layer)."""

from __future__ import annotations

import subprocess
import sys


def test_importing_it_is_cheap() -> None:
    """The module is stdlib only: importing it loads neither Airflow nor httpx."""
    code = (
        "import sys; import airflow_provider_zendrive._outputs.report_html; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('airflow', 'httpx', 'pendulum')))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
