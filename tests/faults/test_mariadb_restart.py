"""
Fault c on MariaDB: the warehouse server restarted while the upsert (through the MySQL provider) is half-way.
The try fails cleanly, the table and its audit trail are exactly as before, the retry writes the exact rows.

The write is held by a trigger that sleeps, inside the writer's transaction, before one day's row.
"""

from __future__ import annotations

import datetime
import time
from typing import Any

from distributed.check_celery import wait_until
from faults.deployment import COUNTERS, FAULT_KEY, Deployment, expected_rows, figure, maria_sql
from mariadb_server import restart_mariadb

from airflow_provider_zendrive._outputs.tables import create_revisions_table_sql, create_table_sql

DAG_ID = "faults_table_mariadb"
FIRST, LAST = datetime.date(2026, 4, 1), datetime.date(2026, 5, 1)
HELD_DAY = datetime.date(2026, 4, 20)
SEEDED_DAYS = 25
HOLD = """CREATE TRIGGER fault_hold BEFORE INSERT ON usage_stats FOR EACH ROW
BEGIN
    WHILE (SELECT COUNT(*) FROM fault_hold WHERE day = NEW.date) > 0 DO
        DO SLEEP(0.2);
    END WHILE;
END"""


def rows(dep: Deployment) -> list[tuple[Any, ...]]:
    """The usage table's rows (fetched_at left out), by day."""
    found = maria_sql(
        dep.mariadb,
        f"SELECT service_id, date, {', '.join(COUNTERS)} FROM usage_stats ORDER BY service_id, date",  # noqa: S608
    )
    return [tuple(int(v) if i != 1 else v for i, v in enumerate(row)) for row in found]


def audit(dep: Deployment) -> list[tuple[Any, ...]]:
    """The audit trail's rows, in a stable order."""
    return maria_sql(dep.mariadb, "SELECT * FROM usage_revisions ORDER BY date, counter, revised_by")


def test_c_mariadb_restarted_mid_upsert_fails_the_try_cleanly_and_the_retry_writes_exact_rows(
    faults_deployment: Deployment,
) -> None:
    dep = faults_deployment
    maria_sql(dep.mariadb, "DROP TABLE IF EXISTS usage_stats, usage_revisions, fault_hold")
    maria_sql(dep.mariadb, create_table_sql("`usage_stats`", "`{}`"))
    maria_sql(dep.mariadb, create_revisions_table_sql("`usage_revisions`", "`{}`"))
    for row in expected_rows(dep.emulator, FIRST, FIRST + datetime.timedelta(days=SEEDED_DAYS - 1)):
        maria_sql(
            dep.mariadb,
            f"INSERT INTO usage_stats (service_id, date, {', '.join(COUNTERS)}, fetched_at)"  # noqa: S608
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, '2026-05-01 06:00')",
            (row[0], row[1], *(value + 1 for value in row[2:])),
        )
    maria_sql(
        dep.mariadb,
        "INSERT INTO usage_revisions VALUES (6100, '2026-03-31', 'bytes_sent', 1, 2, '2026-04-01', 'an older run')",
    )
    maria_sql(dep.mariadb, "CREATE TABLE fault_hold (day DATE PRIMARY KEY)")
    maria_sql(dep.mariadb, "INSERT INTO fault_hold VALUES (%s)", (HELD_DAY,))
    maria_sql(dep.mariadb, HOLD)
    before, before_audit = rows(dep), audit(dep)
    sent_before = len(dep.emulator.requests)
    run_id = dep.trigger(DAG_ID)
    held = wait_until(
        dep.unless_dead(
            lambda: bool(
                maria_sql(
                    dep.mariadb,
                    "SELECT id FROM information_schema.processlist WHERE state = 'User sleep' AND info LIKE '%%SLEEP%%'",
                )
            )
        ),
        120,
        0.2,
    )
    assert held, dep.tail()
    restarted = time.monotonic()
    restart_mariadb(dep.mariadb, down_seconds=5)
    figure(
        f"c (MariaDB): warehouse stopped (SIGTERM), down 5 s, up again after {time.monotonic() - restarted:.1f} s"
    )
    maria_sql(
        dep.mariadb, "DELETE FROM fault_hold"
    )  # committed before the restart: it would hold the retry too
    assert wait_until(
        dep.unless_dead(lambda: dep.tries(DAG_ID, run_id)["pull"][0] == "up_for_retry"), 60, 0.2
    ), dep.tries(DAG_ID, run_id)
    assert rows(dep) == before
    assert audit(dep) == before_audit
    state = dep.wait_run(DAG_ID, run_id, 180)
    assert state == "success", dep.tail()
    assert dep.tries(DAG_ID, run_id) == {"pull": ("success", 2)}
    assert rows(dep) == expected_rows(dep.emulator, FIRST, LAST)
    revisions = audit(dep)
    assert len(revisions) == 1 + SEEDED_DAYS * len(COUNTERS)
    requests = [r.status for r in dep.emulator.requests[sent_before:] if r.access_key == FAULT_KEY]
    assert requests == [200, 200]
    log = dep.task_log(DAG_ID, run_id, "pull")
    at = log.find("OperationalError")
    assert at >= 0, log[-3000:]  # the try failed on the lost connection, not on anything else
    error = log[at : at + 110]
    figure(
        f"c (MariaDB): run green in try 2, {time.monotonic() - restarted:.1f} s after the restart; requests "
        f"{requests}; 31 rows exact, {len(revisions) - 1} audit rows + 1 older; try 1's error: {error!r}"
    )
