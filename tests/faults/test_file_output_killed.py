"""
Fault a for a file output, on the deployment: the task process SIGKILLed half-way through its CSV write (its
temporary file written and flushed, not yet renamed). The old file stays intact, the dead try's temporary
file is left, and the retry's write replaces the file with the complete new one and sweeps that leftover.
"""

from __future__ import annotations

import csv
import datetime
import os
import signal
import time

from distributed.check_celery import wait_until
from faults.deployment import COUNTERS, FAULT_KEY, Deployment, describe_process, expected_rows, figure

DAG_ID = "faults_file"
OLD = b"service_id,date\nan older file\n"


def test_a_task_killed_mid_file_write_leaves_the_old_file_and_the_retry_sweeps_the_leftover(
    faults_deployment: Deployment,
) -> None:
    dep = faults_deployment
    dep.csv.parent.mkdir(exist_ok=True)
    dep.csv.write_bytes(OLD)
    dep.hold_marker.unlink(missing_ok=True)
    sent_before = len(dep.emulator.requests)
    run_id = dep.trigger(DAG_ID)
    assert wait_until(dep.unless_dead(lambda: dep.held_pid() > 0), 120, 0.2), dep.tail()
    pid = dep.held_pid()
    command, _ = describe_process(pid)
    os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()
    assert wait_until(
        dep.unless_dead(lambda: dep.tries(DAG_ID, run_id)["pull"][0] == "up_for_retry"), 60, 0.2
    ), dep.tries(DAG_ID, run_id)
    assert dep.csv.read_bytes() == OLD  # the old file, intact
    leftovers = sorted(dep.csv.parent.glob(f".{dep.csv.name}.*.tmp"))
    assert len(leftovers) == 1, leftovers  # the dead try's complete temporary file, never renamed
    size = leftovers[0].stat().st_size
    state = dep.wait_run(DAG_ID, run_id, 120)
    assert state == "success", dep.tail()
    assert dep.tries(DAG_ID, run_id) == {"pull": ("success", 2)}
    with dep.csv.open() as written:
        got = [
            (int(r["service_id"]), r["date"], *(int(r[c]) for c in COUNTERS)) for r in csv.DictReader(written)
        ]
    want = expected_rows(dep.emulator, datetime.date(2026, 4, 1), datetime.date(2026, 5, 1))
    assert got == [(row[0], row[1].isoformat(), *row[2:]) for row in want]
    assert sorted(dep.csv.parent.glob(f".{dep.csv.name}.*.tmp")) == []  # swept by the retry's write
    requests = [r.status for r in dep.emulator.requests[sent_before:] if r.access_key == FAULT_KEY]
    assert requests == [200, 200]  # one per try
    figure(
        f"a (file): SIGKILL to the task process ({command[:40]!r}) after its temporary file was flushed "
        f"({size} bytes), before the rename; the old file intact, one leftover; try 2 green "
        f"{time.monotonic() - killed:.1f} s later with the complete file (31 rows), the leftover swept; "
        f"requests {requests}"
    )
