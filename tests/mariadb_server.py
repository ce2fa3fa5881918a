"""
A throwaway MariaDB server, for the tests (the ``mariadb_server`` fixture) and the table benchmark. Needs
Debian's ``mariadb-server`` (``mariadb-install-db``, ``mariadbd``; ``.ci/run`` installs it).

Its own data folder in a temporary folder (``mariadb-install-db``), listening on 127.0.0.1 (a free port) with
its unix socket in that folder, ``root`` without a password, durability off (no flush at commit, no doublewrite).
``mariadbd`` refuses to run as root unless told to: as root it runs with ``--user=root``. The folder is removed
when the server stops.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator

__all__ = ["MariaDBUnavailable", "mariadb_server", "restart_mariadb"]

#: The servers :func:`restart_mariadb` started, by port, stopped with the block of :func:`mariadb_server`.
_RESTARTED: dict[int, subprocess.Popen[bytes]] = {}


class MariaDBUnavailable(RuntimeError):
    """The server could not be started; the message says why."""


def _binary(*names: str) -> str | None:
    for name in names:
        for folder in (None, "/usr/sbin", "/usr/bin"):
            found = shutil.which(name, path=folder)
            if found:
                return found
    return None


def _read(path: str) -> str:
    with contextlib.suppress(OSError), open(path, errors="replace") as log:
        return log.read()
    return ""


def _server_argv(server: str, root: str, port: int) -> list[str]:
    user = ["--user=root"] if os.geteuid() == 0 else []
    return [
        server,
        "--no-defaults",
        f"--datadir={root}/data",
        *user,
        "--bind-address=127.0.0.1",
        f"--port={port}",
        f"--socket={root}/mysqld.sock",
        f"--pid-file={root}/mysqld.pid",
        f"--log-error={root}/server.log",
        "--innodb-flush-log-at-trx-commit=0",
        "--innodb-doublewrite=0",
        "--innodb-buffer-pool-size=64M",
        "--skip-name-resolve",
    ]


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()  # a clean shutdown: mariadbd flushes and exits on SIGTERM
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=30)


def _wait_ready(process: subprocess.Popen[bytes], log: str, seen: int) -> None:
    """Wait until the log says "ready for connections" more than ``seen`` times."""
    deadline = time.monotonic() + 60
    while _read(log).count("ready for connections") <= seen:
        if process.poll() is not None or time.monotonic() > deadline:
            raise MariaDBUnavailable(f"mariadbd did not start: {_read(log)[-800:]}")
        time.sleep(0.1)


@contextlib.contextmanager
def mariadb_server() -> Iterator[dict[str, object]]:
    """
    Start a server for the duration of the block: yields ``{"host", "port", "user", "socket", "version",
    "data_dir"}``. :func:`restart_mariadb` stops and starts it again on the same data folder and port.

    :raises MariaDBUnavailable: if MariaDB is not installed or does not start within a minute.
    """
    install_db = _binary("mariadb-install-db", "mysql_install_db")
    server = _binary("mariadbd", "mysqld")
    if install_db is None or server is None:
        raise MariaDBUnavailable("no mariadb-install-db / mariadbd found (install mariadb-server)")
    root = tempfile.mkdtemp(prefix="zendrive-mariadb-")
    data, sock, log = f"{root}/data", f"{root}/mysqld.sock", f"{root}/server.log"
    user = ["--user=root"] if os.geteuid() == 0 else []
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process: subprocess.Popen[bytes] | None = None
    try:
        init = subprocess.run(
            [
                install_db,
                "--no-defaults",
                f"--datadir={data}",
                *user,
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        if init.returncode != 0:
            raise MariaDBUnavailable(
                f"mariadb-install-db failed: {(init.stderr or init.stdout).strip()[-500:]}"
            )
        process = subprocess.Popen(
            _server_argv(server, root, port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        _wait_ready(process, log, 0)
        banner = (
            subprocess.run(  # "/usr/sbin/mariadbd  Ver 10.11.19-MariaDB-0+deb12u1 for debian-linux-gnu ..."
                [server, "--version"], capture_output=True, text=True, check=False, timeout=30
            ).stdout
        )
        version = "MariaDB " + banner.partition(" Ver ")[2].split(" for ")[0].split("-MariaDB")[0]
        yield {
            "host": "127.0.0.1",
            "port": port,
            "user": "root",
            "socket": sock,
            "version": version,
            "data_dir": data,
        }
    finally:
        if process is not None:
            _stop(process)
        if port in _RESTARTED:
            _stop(_RESTARTED.pop(port))
        shutil.rmtree(root, ignore_errors=True)


def restart_mariadb(server: dict[str, object], down_seconds: float = 0.0) -> None:
    """
    Stop a server of :func:`mariadb_server` (SIGTERM: a clean shutdown; every session is ended, open
    transactions roll back), keep it down ``down_seconds``, then start it again on the same data folder and port.

    :param server: what :func:`mariadb_server` yielded.
    :param down_seconds: how long the server stays down.
    :raises MariaDBUnavailable: if it does not start again.
    """
    root, port = os.path.dirname(str(server["data_dir"])), int(str(server["port"]))
    if port in _RESTARTED:
        _stop(_RESTARTED.pop(port))
    else:  # the first server, whose process belongs to mariadb_server's block (it reaps it there)
        with open(f"{root}/mysqld.pid") as pid_file:
            pid = int(pid_file.read().strip())
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 60
        while os.path.exists(f"{root}/mysqld.pid") and time.monotonic() < deadline:  # removed at exit
            time.sleep(0.1)
    time.sleep(down_seconds)
    log = f"{root}/server.log"
    seen = _read(log).count("ready for connections")
    binary = _binary("mariadbd", "mysqld")
    assert binary is not None  # it ran before
    process = subprocess.Popen(
        _server_argv(binary, root, port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    _RESTARTED[port] = process
    _wait_ready(process, log, seen)
