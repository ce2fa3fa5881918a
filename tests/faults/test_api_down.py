"""
Fault d on the deployment: the API unreachable for 60 s (the emulator stopped, then started again on the same
address) during a daily run. Try 1 fails after the connection's in-process retries, the task's retry (65 s
later) succeeds; the run ends green within the retry policy, and the table holds each day once, exact.
"""

from __future__ import annotations

import datetime
import threading
import time

from distributed.check_celery import wait_until
from faults.deployment import FAULT_KEY, Deployment, expected_rows, figure, table_rows

DAG_ID = "faults_daily"
LOGICAL_DATE = datetime.datetime(2026, 5, 8, tzinfo=datetime.UTC)
FIRST, LAST = datetime.date(2026, 5, 1), datetime.date(2026, 5, 7)  # the day before, and 6 days of lookback
DOWN_SECONDS = 60


def test_d_api_unreachable_for_60_s_the_run_ends_green_in_its_retry_with_no_duplicate_rows(
    faults_deployment: Deployment,
) -> None:
    dep = faults_deployment
    dep.sql("DROP TABLE IF EXISTS daily_usage")
    sent_before = len(dep.emulator.requests)
    dep.emulator.stop()  # connections are refused from now on
    down = time.monotonic()
    back = threading.Timer(DOWN_SECONDS, dep.emulator.start)
    back.start()
    try:
        run_id = dep.trigger(DAG_ID, LOGICAL_DATE)
        assert wait_until(
            dep.unless_dead(lambda: dep.tries(DAG_ID, run_id).get("pull", (None, 0))[0] == "up_for_retry"),
            DOWN_SECONDS,
            0.2,
        ), dep.tries(DAG_ID, run_id)
        failed = time.monotonic() - down
        state = dep.wait_run(DAG_ID, run_id, DOWN_SECONDS + 180)
    finally:
        back.join()
    up = down + DOWN_SECONDS
    assert state == "success", dep.tail()
    (task_state, try_number) = dep.tries(DAG_ID, run_id)["pull"]
    assert (task_state, try_number) == ("success", 2)
    log = dep.task_log(DAG_ID, run_id, "pull")
    in_process = log.count("; retry ")
    assert in_process == 3, log[-4000:]  # the connection's max_retries, then try 1 failed
    assert "Gave up after 4 attempts" in log
    requests = [r.status for r in dep.emulator.requests[sent_before:] if r.access_key == FAULT_KEY]
    assert requests == [200], requests  # nothing reached the stopped API; the retry's one request
    rows = table_rows(dep, "daily_usage")
    assert rows == expected_rows(dep.emulator, FIRST, LAST)
    assert len({(row[0], row[1]) for row in rows}) == len(rows) == 7
    ended = dep.query("SELECT end_date FROM dag_run WHERE dag_id = %s AND run_id = %s", (DAG_ID, run_id))[0][
        0
    ]
    green_after = ended.timestamp() - (time.time() - (time.monotonic() - up))
    figure(
        f"d (API down {DOWN_SECONDS} s): try 1 failed {failed:.1f} s into the outage after {in_process} in-process "
        f"retries; run green in try 2, {green_after:.1f} s after the API was back ({DOWN_SECONDS + green_after:.0f} s "
        f"after it went down); requests that reached the API {requests}; 7 rows, each day once, exact"
    )
