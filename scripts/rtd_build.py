"""
Build the docs as Read the Docs does: the commands of ``.readthedocs.yaml``, in a fresh venv of the Python it
names, on a copy of the files git tracks (nothing untracked, no ``docs/_build`` left over from ``make docs``).

Usage: ``.venv/bin/python scripts/rtd_build.py`` (``make docs-rtd``). Exits non-zero if a command fails or no
``index.html`` comes out.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]


def commands(config: dict[str, Any]) -> list[str]:
    """The install and HTML build commands, in the order Read the Docs runs them."""
    jobs = config["build"]["jobs"]
    return [*jobs["install"], *jobs["build"]["html"]]


def copy_tracked(destination: Path) -> None:
    """Copy the working tree's tracked files (modified ones included), as a checkout would have them."""
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, check=True, capture_output=True, text=True
    ).stdout
    for name in filter(None, listed.split("\0")):
        source = REPO / name
        if source.is_file():  # a file deleted but not yet committed is not in the checkout either
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def main() -> int:
    """Run the build; print each command and how long it took."""
    config = yaml.safe_load((REPO / ".readthedocs.yaml").read_text())
    if config.get("version") != 2:
        print(".readthedocs.yaml: expected version: 2", file=sys.stderr)
        return 2
    wanted = str(config["build"]["tools"]["python"])
    python = shutil.which(f"python{wanted}")
    if python is None:
        print(f".readthedocs.yaml asks for Python {wanted}: python{wanted} is not on PATH", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="zendrive-rtd-") as temp:
        root = Path(temp)
        checkout, venv, output = root / "checkout", root / "venv", root / "_readthedocs"
        copy_tracked(checkout)
        subprocess.run([python, "-m", "venv", str(venv)], check=True)
        env = {
            **os.environ,
            "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}",
            "VIRTUAL_ENV": str(venv),
            "READTHEDOCS": "True",
            "READTHEDOCS_OUTPUT": str(output),
            "READTHEDOCS_VIRTUALENV_PATH": str(venv),
        }
        env.pop("AIRFLOW_HOME", None)  # as on Read the Docs: conf.py picks its own
        for command in commands(config):
            started = time.monotonic()
            print(f"$ {command}", flush=True)
            done = subprocess.run(["bash", "-c", command], cwd=checkout, env=env, check=False)
            print(f"  ({time.monotonic() - started:.0f} s, exit {done.returncode})", flush=True)
            if done.returncode != 0:
                return 1
        if not (output / "html" / "index.html").is_file():
            print("no html/index.html in READTHEDOCS_OUTPUT", file=sys.stderr)
            return 1
    print("Read the Docs build: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
