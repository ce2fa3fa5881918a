"""
Run DAGs for real in tests: ``airflow dags test`` in a subprocess, against a migrated SQLite metadata DB.

Use the ``airflow_runner`` fixture (session scope, from ``tests/conftest.py``)::

    def test_my_dag(airflow_runner, zendrive_emulator, tmp_path):
        result = airflow_runner.run(
            "my_dag",                                   # the dag_id
            "2026-05-02",                               # the logical date (None: no logical date given)
            dags_folder=DAGS / "my_dag.py",             # a folder or one file (copied alone into a folder)
            env={"AIRFLOW_CONN_ZENDRIVE_DEFAULT": zendrive_emulator.connection_uri()},
        )
        assert result.state == "success", result.output
        result.xcom("pull")                             # the task's return_value, JSON-decoded
        result.task_states()                            # {"pull": "success", ...}
        result.log("pull")                              # everything the run printed about that task
        result.output                                   # stdout + stderr of the whole command

``airflow db migrate`` runs once per session (a few seconds); every run then gets a fresh copy of that database
in its own ``AIRFLOW_HOME``, so runs never see each other's DAG runs, XComs or logs. Only services the test
process started (the emulator fixture, a database) are shared with the subprocess, through the ``env`` given.
A run takes a few seconds (``last_duration`` says how many).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["AirflowRunner", "DagRunResult"]

_BIN = Path(sys.executable).parent


@dataclass
class DagRunResult:
    """
    What one ``airflow dags test`` left behind.

    :param dag_id: the DAG run.
    :param returncode: the command's exit status.
    :param stdout: its standard output.
    :param stderr: its standard error.
    :param home: the run's own AIRFLOW_HOME (metadata DB ``airflow.db``, ``logs/``).
    :param duration: seconds the command took.
    """

    dag_id: str
    returncode: int
    stdout: str
    stderr: str
    home: Path
    duration: float

    @property
    def output(self) -> str:
        """stdout and stderr together, for assertion messages and secret scans."""
        return f"{self.stdout}\n{self.stderr}"

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.home / "airflow.db") as conn:
            return conn.execute(sql, params).fetchall()

    @property
    def state(self) -> str | None:
        """The state of the DAG run (``success``, ``failed``, ...), or None if none was created."""
        rows = self._query(
            "SELECT state FROM dag_run WHERE dag_id = ? ORDER BY id DESC LIMIT 1", (self.dag_id,)
        )
        return rows[0][0] if rows else None

    def task_states(self) -> dict[str, str | None]:
        """The state of each task instance of the run, by task_id."""
        rows = self._query("SELECT task_id, state FROM task_instance WHERE dag_id = ?", (self.dag_id,))
        return dict(rows)

    def task_instance(self, task_id: str) -> dict[str, Any]:
        """The task instance's row of the metadata DB, as a dict (``try_number``, ``max_tries``, ...)."""
        with sqlite3.connect(self.home / "airflow.db") as conn:
            conn.row_factory = sqlite3.Row
            row = conn.execute(
                "SELECT * FROM task_instance WHERE dag_id = ? AND task_id = ?", (self.dag_id, task_id)
            ).fetchone()
        if row is None:
            raise KeyError(f"No task instance {task_id!r} in the run of {self.dag_id!r}")
        return dict(row)

    def xcom(self, task_id: str, key: str = "return_value") -> Any:
        """
        The JSON-decoded XCom of a task.

        :raises KeyError: when the task pushed nothing under ``key``.
        """
        rows = self._query(
            "SELECT value FROM xcom WHERE dag_id = ? AND task_id = ? AND key = ?", (self.dag_id, task_id, key)
        )
        if not rows:
            raise KeyError(f"No XCom {key!r} for task {task_id!r} in the run of {self.dag_id!r}")
        value = rows[0][0]
        return json.loads(value) if isinstance(value, str | bytes) else value

    def rendered_fields(self, task_id: str) -> dict[str, Any]:
        """The task's rendered template fields, as stored in the metadata DB."""
        rows = self._query(
            "SELECT rendered_fields FROM rendered_task_instance_fields WHERE dag_id = ? AND task_id = ?",
            (self.dag_id, task_id),
        )
        return json.loads(rows[0][0]) if rows else {}

    def log(self, task_id: str | None = None) -> str:
        """
        The task's log files (all tries) plus the command's output; ``task_id=None``: every log file.

        ``airflow dags test`` runs tasks in-process, so most task log lines are in :attr:`output`.
        """
        pattern = f"**/task_id={task_id}/**/*.log" if task_id else "**/*.log"
        files = sorted((self.home / "logs").glob(pattern))
        return "\n".join([*(path.read_text(errors="replace") for path in files), self.output])

    def all_text(self) -> str:
        """Every piece of text the run produced: output, log files and the whole metadata DB dump."""
        with sqlite3.connect(self.home / "airflow.db") as conn:
            dump = "\n".join(conn.iterdump())
        return "\n".join([self.log(), dump])


class AirflowRunner:
    """
    A migrated Airflow home, and :meth:`run` to run a DAG in it with ``airflow dags test``.

    :param root: where to keep the template home and the per-run homes.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.template = root / "template"
        self.template.mkdir(parents=True, exist_ok=True)
        self._runs = 0
        self.last_duration = 0.0
        self.migrate_duration = 0.0

    def base_env(self, home: Path) -> dict[str, str]:
        """The environment of a subprocess whose AIRFLOW_HOME is ``home``."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW__", "AIRFLOW_CONN_"))}
        env.pop("AIRFLOW_HOME", None)
        env.update(
            {
                "AIRFLOW_HOME": str(home),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
                "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
                "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
                "PYTHONWARNINGS": "ignore",
                "PATH": f"{_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            }
        )
        return env

    def migrate(self) -> None:
        """Create the template metadata DB (once)."""
        if (self.template / "airflow.db").exists():
            return
        started = time.monotonic()
        done = subprocess.run(
            [str(_BIN / "airflow"), "db", "migrate"],
            env=self.base_env(self.template),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        self.migrate_duration = time.monotonic() - started
        if done.returncode != 0:
            raise RuntimeError(f"airflow db migrate failed:\n{done.stdout}\n{done.stderr}")

    def run(
        self,
        dag_id: str,
        logical_date: str | None = None,
        *,
        dags_folder: Path | str,
        env: dict[str, str] | None = None,
        conf: dict[str, Any] | None = None,
        timeout: float = 180,
    ) -> DagRunResult:
        """
        Run ``airflow dags test dag_id [logical_date]`` in a fresh copy of the migrated home.

        :param dag_id: the DAG to run.
        :param logical_date: ``YYYY-MM-DD`` or an ISO timestamp; None runs without one.
        :param dags_folder: a folder of DAG files, or a single DAG file.
        :param env: extra environment variables (``AIRFLOW_CONN_*``, paths the DAG reads, ...).
        :param conf: the run's conf (``--conf``), e.g. the params of a manual run.
        :param timeout: seconds before the command is killed.
        """
        self.migrate()
        self._runs += 1
        home = Path(tempfile.mkdtemp(prefix=f"run{self._runs}-", dir=self.root))
        shutil.copy2(self.template / "airflow.db", home / "airflow.db")
        source = Path(dags_folder)
        if source.is_dir():
            shutil.copytree(source, home / "dags", ignore=shutil.ignore_patterns("__pycache__"))
        else:
            (home / "dags").mkdir()
            shutil.copy2(source, home / "dags" / source.name)
        command = [str(_BIN / "airflow"), "dags", "test", dag_id]
        if logical_date is not None:
            command.append(logical_date)
        if conf is not None:
            command += ["--conf", json.dumps(conf)]
        started = time.monotonic()
        done = subprocess.run(
            command,
            env={**self.base_env(home), **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd=home,
        )
        self.last_duration = time.monotonic() - started
        return DagRunResult(dag_id, done.returncode, done.stdout, done.stderr, home, self.last_duration)
