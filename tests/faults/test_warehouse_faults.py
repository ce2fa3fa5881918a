"""
Faults a and c on the deployment: the task process SIGKILLed while its PostgreSQL upsert is half-way, and the
warehouse server restarted while the upsert is half-way. Either way the table and its audit trail are exactly
as before the run, no session of the dead write stays, and the task's retry writes the exact rows.

The write is held half-way by a trigger on the usage table that waits on one day's row inside the writer's
transaction (``deployment.HOLD_SQL``): the upsert's rows before it are written, not committed.
"""

from __future__ import annotations

import datetime
import os
import signal
import time
from typing import Any

from distributed.check_celery import wait_until
from faults.deployment import (
    COUNTERS,
    FAULT_KEY,
    Deployment,
    describe_process,
    expected_rows,
    figure,
    held_backend,
    install_hold,
    process_with_port,
    table_rows,
)
from postgres_server import restart_postgres

from airflow_provider_zendrive._outputs.tables import create_revisions_table_sql, create_table_sql

DAG_ID = "faults_table"
FIRST, LAST = datetime.date(2026, 4, 1), datetime.date(2026, 5, 1)  # 31 rows
HELD_DAY = datetime.date(2026, 4, 20)
SEEDED_DAYS = 25  # rows already there, each counter one off: the retry revises 25 x 7 counters


def prepare(dep: Deployment) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """A usage table with 25 older rows and an audit trail with one revision; the hold set on HELD_DAY."""
    dep.sql("DROP TABLE IF EXISTS usage, usage_revisions")
    dep.sql(create_table_sql('"usage"'))  # the package's own DDL
    dep.sql(create_revisions_table_sql('"usage_revisions"'))
    for row in expected_rows(dep.emulator, FIRST, FIRST + datetime.timedelta(days=SEEDED_DAYS - 1)):
        values = (row[0], row[1], *(value + 1 for value in row[2:]))
        dep.sql(
            f"INSERT INTO usage (service_id, date, {', '.join(COUNTERS)}, fetched_at)"  # noqa: S608
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, '2026-05-01 06:00')",
            values,
        )
    dep.sql(
        "INSERT INTO usage_revisions VALUES (6100, '2026-03-31', 'bytes_sent', 1, 2, '2026-04-01', 'an older run')"
    )
    install_hold(dep, "usage")
    dep.sql("DELETE FROM fault_hold")
    dep.sql("INSERT INTO fault_hold VALUES (%s)", (HELD_DAY,))
    return table_rows(dep, "usage"), audit(dep)


def audit(dep: Deployment) -> list[tuple[Any, ...]]:
    """The audit trail's rows, in a stable order."""
    return dep.sql("SELECT * FROM usage_revisions ORDER BY date, counter, revised_by")


def sessions_of(dep: Deployment, pid: int) -> list[tuple[Any, ...]]:
    """The warehouse session with that backend pid and the locks it holds (none once it is gone)."""
    return dep.sql(
        "SELECT a.pid, a.state, l.locktype, l.mode FROM pg_stat_activity a"
        " LEFT JOIN pg_locks l ON l.pid = a.pid WHERE a.pid = %s",
        (pid,),
    )


def check_retry(dep: Deployment, run_id: str, started: float, sent_before: int, what: str) -> None:
    """The run ends green in its second try, with the exact rows and one audit row per revised counter."""
    state = dep.wait_run(DAG_ID, run_id, 180)
    assert state == "success", dep.tail()
    assert dep.tries(DAG_ID, run_id) == {"pull": ("success", 2)}
    assert table_rows(dep, "usage") == expected_rows(dep.emulator, FIRST, LAST)
    revisions = audit(dep)
    assert len(revisions) == 1 + SEEDED_DAYS * len(COUNTERS), revisions
    assert all(new == old - 1 for (_, _, _, old, new, _, _) in revisions[1:])
    requests = [r.status for r in dep.emulator.requests[sent_before:] if r.access_key == FAULT_KEY]
    assert requests == [200, 200], requests
    figure(
        f"{what}: run green in try 2, {time.monotonic() - started:.1f} s after the fault; requests {requests}; "
        f"31 rows exact, {len(revisions) - 1} audit rows (25 revised days x 7 counters) + 1 older"
    )


def test_a_task_process_killed_mid_upsert_leaves_the_table_as_before_and_the_retry_writes_exact_rows(
    faults_deployment: Deployment,
) -> None:
    dep = faults_deployment
    before, before_audit = prepare(dep)
    sent_before = len(dep.emulator.requests)
    run_id = dep.trigger(DAG_ID)
    backend = held_backend(dep, 120)
    assert backend is not None, dep.tail()
    backend_pid, client_port = backend
    pid = process_with_port(client_port)
    assert pid is not None
    task, parent = describe_process(pid)
    parent_cmdline = describe_process(parent)[0]
    os.kill(pid, signal.SIGKILL)  # the task process itself: the one holding the warehouse connection
    killed = time.monotonic()
    figure(
        f"a (table): SIGKILL to pid {pid} ({task[:60]!r}), the task process holding the warehouse "
        f"connection; its parent {parent} ({parent_cmdline[:60]!r}, the task's supervisor) lives on"
    )
    assert wait_until(
        dep.unless_dead(lambda: dep.tries(DAG_ID, run_id)["pull"][0] == "up_for_retry"), 60, 0.2
    ), dep.tries(DAG_ID, run_id)
    figure(f"a (table): try 1 up_for_retry {time.monotonic() - killed:.1f} s after the kill")
    orphan = sessions_of(dep, backend_pid)
    # PostgreSQL notices a vanished client at its next read or write: the held statement's session is still
    # there, in its own transaction, until the statement ends. Release it: it must roll back, not commit.
    figure(f"a (table): the dead client's session still running before release: {bool(orphan)}")
    dep.sql("DELETE FROM fault_hold")
    released = time.monotonic()
    assert wait_until(lambda: not sessions_of(dep, backend_pid), 30, 0.1), sessions_of(dep, backend_pid)
    figure(
        f"a (table): that session ended {time.monotonic() - released:.2f} s after its statement could finish"
    )
    assert dep.tries(DAG_ID, run_id)["pull"][0] == "up_for_retry"  # the retry has not written yet
    assert table_rows(dep, "usage") == before
    assert audit(dep) == before_audit
    assert not dep.sql(
        "SELECT pid FROM pg_stat_activity WHERE backend_xid IS NOT NULL AND pid <> pg_backend_pid()"
    )
    check_retry(dep, run_id, killed, sent_before, "a (table)")


def test_c_warehouse_restarted_mid_upsert_fails_the_try_cleanly_and_the_retry_writes_exact_rows(
    faults_deployment: Deployment,
) -> None:
    dep = faults_deployment
    before, before_audit = prepare(dep)
    sent_before = len(dep.emulator.requests)
    run_id = dep.trigger(DAG_ID)
    assert held_backend(dep, 120) is not None, dep.tail()
    restarted = time.monotonic()
    restart_postgres(
        dep.warehouse, down_seconds=5
    )  # fast shutdown: every session ends, open transactions roll back
    figure(
        f"c (PostgreSQL): warehouse stopped (fast), down 5 s, up again after {time.monotonic() - restarted:.1f} s"
    )
    dep.sql("DELETE FROM fault_hold")  # committed before the restart: it would hold the retry too
    assert wait_until(
        dep.unless_dead(lambda: dep.tries(DAG_ID, run_id)["pull"][0] == "up_for_retry"), 60, 0.2
    ), dep.tries(DAG_ID, run_id)
    assert table_rows(dep, "usage") == before
    assert audit(dep) == before_audit
    log = dep.task_log(DAG_ID, run_id, "pull")
    ended = ("terminating connection due to administrator command", "server closed the connection")
    marker = next((text for text in ended if text in log), None)
    assert marker is not None, log[-3000:]  # the try failed on the ended session, not on anything else
    figure(f"c (PostgreSQL): try 1's error: {log[log.find(marker) :][:90]!r}")
    check_retry(dep, run_id, restarted, sent_before, "c (PostgreSQL)")
