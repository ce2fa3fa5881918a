"""
A task killed (SIGKILL) in the middle of a local file write: the target is the old file or the complete new
one, and the temporary file the killed writer left is removed by the next write, never one a live writer holds.

Each writer is a real process running the package's own ``write_atomically``, held half-way (after its data
is on disk, before the rename) by a hook on ``os.fsync`` that only the test installs in that process.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from airflow_provider_zendrive._outputs import files
from airflow_provider_zendrive._outputs.files import write_atomically

HELD_WRITER = """
import os, sys, time
from airflow_provider_zendrive._outputs.files import write_atomically
real_fsync = os.fsync
def held_fsync(fd):
    real_fsync(fd)
    print("held", flush=True)
    time.sleep(600)
os.fsync = held_fsync
write_atomically(sys.argv[1], b"new content " * 10_000)
"""


def start_held_writer(target: Path) -> subprocess.Popen[str]:
    writer = subprocess.Popen(
        [sys.executable, "-c", HELD_WRITER, str(target)], stdout=subprocess.PIPE, text=True
    )
    assert writer.stdout is not None
    assert writer.stdout.readline().strip() == "held"  # half-way: the temporary file is written and locked
    return writer


def stop(writer: subprocess.Popen[str]) -> None:
    writer.wait(10)
    assert writer.stdout is not None
    writer.stdout.close()


def temp_files(target: Path) -> list[Path]:
    return sorted(target.parent.glob(f".{target.name}.*.tmp"))


def test_a_killed_writer_leaves_the_old_file_and_its_leftover_is_swept_by_the_next_write(
    tmp_path: Path,
) -> None:
    target = tmp_path / "usage.csv"
    write_atomically(str(target), b"old content\n")
    writer = start_held_writer(target)
    os.kill(writer.pid, signal.SIGKILL)
    stop(writer)
    assert target.read_bytes() == b"old content\n"  # the old file, intact
    (leftover,) = temp_files(target)
    assert leftover.stat().st_size == len(b"new content " * 10_000)

    write_atomically(str(target), b"next run\n")  # too soon: the leftover may be a writer not locked yet
    assert temp_files(target) == [leftover]
    stale = time.time() - files.STALE_TEMP_SECONDS - 1
    os.utime(leftover, (stale, stale))
    write_atomically(str(target), b"next run\n")
    assert target.read_bytes() == b"next run\n"
    assert temp_files(target) == []


def test_a_live_writers_temporary_file_is_never_swept(tmp_path: Path) -> None:
    target = tmp_path / "usage.csv"
    writer = start_held_writer(target)
    try:
        (held,) = temp_files(target)
        stale = time.time() - files.STALE_TEMP_SECONDS - 1
        os.utime(held, (stale, stale))  # old, but locked
        write_atomically(str(target), b"another writer\n")
        assert temp_files(target) == [held]
        assert target.read_bytes() == b"another writer\n"
    finally:
        writer.kill()
        stop(writer)
