"""
A throwaway PostgreSQL server, for this project's tests (the ``postgresql_server`` fixture) and its table
benchmark; not part of the package. Needs the PostgreSQL server binaries (``initdb``, ``pg_ctl``).

``initdb`` refuses to run as root, so as root the data folder belongs to the ``postgres`` user and the server
runs through ``runuser -u postgres --``. It listens on 127.0.0.1 (a free port) with ``trust`` auth, fsync off,
and its unix socket inside the temporary folder, which is removed when the server stops.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator

__all__ = ["PostgresUnavailable", "postgres_server", "restart_postgres"]


class PostgresUnavailable(RuntimeError):
    """The server could not be started; the message says why."""


def _options(port: int, root: str) -> str:
    return f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off"


def _prefix() -> list[str]:
    """``runuser -u postgres --`` as root (initdb and postgres refuse to run as root), else nothing."""
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


def _bindir() -> str | None:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    if shutil.which("pg_config"):
        found = subprocess.run(
            ["pg_config", "--bindir"], capture_output=True, text=True, check=False, timeout=30
        )
        candidates.append(found.stdout.strip())
    for folder in candidates:
        if folder and os.path.exists(os.path.join(folder, "initdb")):
            return folder
    return None


@contextlib.contextmanager
def postgres_server() -> Iterator[dict[str, object]]:
    """
    Start a server for the duration of the block: yields ``{"host", "port", "user", "version", "data_dir"}``.

    :func:`restart_postgres` stops and starts it again on the same data folder and port.

    :raises PostgresUnavailable: if there is no PostgreSQL installation or it does not start.
    """
    bindir = _bindir()
    if bindir is None:
        raise PostgresUnavailable("no initdb found (install postgresql)")
    root = tempfile.mkdtemp(prefix="zendrive-pg-")
    prefix: list[str] = []
    if os.geteuid() == 0:
        import pwd

        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            shutil.rmtree(root, ignore_errors=True)
            raise PostgresUnavailable("running as root and there is no 'postgres' user") from None
        os.chown(root, owner.pw_uid, owner.pw_gid)
        prefix = _prefix()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    data = os.path.join(root, "data")
    started = False
    try:
        init = subprocess.run(
            [
                *prefix,
                f"{bindir}/initdb",
                "-D",
                data,
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-sync",
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        if init.returncode != 0:
            raise PostgresUnavailable(f"initdb failed: {init.stderr.strip()[-500:]}")
        options = _options(port, root)
        start = subprocess.run(
            [
                *prefix,
                f"{bindir}/pg_ctl",
                "-D",
                data,
                "-o",
                options,
                "-l",
                f"{root}/server.log",
                "-w",
                "start",
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        if start.returncode != 0:
            with open(f"{root}/server.log", errors="replace") as log:
                server_log = log.read()[-500:]
            raise PostgresUnavailable(f"pg_ctl start failed: {start.stderr.strip()} {server_log}")
        started = True
        version = subprocess.run(
            [f"{bindir}/postgres", "--version"], capture_output=True, text=True, check=False, timeout=30
        ).stdout.strip()
        yield {"host": "127.0.0.1", "port": port, "user": "postgres", "version": version, "data_dir": data}
    finally:
        if started:
            subprocess.run(
                [*prefix, f"{bindir}/pg_ctl", "-D", data, "-m", "immediate", "-w", "stop"],
                capture_output=True,
                check=False,
                timeout=120,
            )
        shutil.rmtree(root, ignore_errors=True)


def restart_postgres(server: dict[str, object], down_seconds: float = 0.0) -> None:
    """
    Stop a server of :func:`postgres_server` (fast shutdown: every session is ended, open transactions roll
    back), keep it down ``down_seconds``, then start it again on the same data folder and port.

    :param server: what :func:`postgres_server` yielded.
    :param down_seconds: how long the server stays down.
    :raises PostgresUnavailable: if it does not stop or start again.
    """
    import time

    bindir, data = _bindir(), str(server["data_dir"])
    root = os.path.dirname(data)
    pg_ctl = [*_prefix(), f"{bindir}/pg_ctl", "-D", data]
    stop = subprocess.run(
        [*pg_ctl, "-m", "fast", "-w", "stop"], capture_output=True, text=True, check=False, timeout=120
    )
    if stop.returncode != 0:
        raise PostgresUnavailable(f"pg_ctl stop failed: {stop.stderr.strip()}")
    time.sleep(down_seconds)
    options = _options(int(str(server["port"])), root)
    start = subprocess.run(
        [*pg_ctl, "-o", options, "-l", f"{root}/server.log", "-w", "start"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if start.returncode != 0:
        raise PostgresUnavailable(f"pg_ctl start failed: {start.stderr.strip()}")
