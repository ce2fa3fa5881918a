"""
The budget alerts' documented at-least-once window, on the deployment: the task process killed after a
notifier delivered the 80 % alert (real SMTP) and before that alert's claim committed. The retry repeats that
one alert, with the same Message-ID; the 50 % alert (claimed before) is not repeated, the 100 % one goes out once.
"""

from __future__ import annotations

import os
import signal
import time

from distributed.check_celery import wait_until
from faults.deployment import APRIL, COUNTERS, Deployment, describe_process, expected_rows, figure

DAG_ID = "faults_budget"


def test_the_alert_whose_claim_did_not_commit_is_repeated_with_its_message_id_and_no_other(
    faults_deployment: Deployment,
) -> None:
    dep = faults_deployment
    dep.sql("DROP TABLE IF EXISTS budget_usage, budget_alerts")
    dep.sql(
        f"CREATE TABLE budget_usage (service_id BIGINT, date DATE, {' BIGINT, '.join(COUNTERS)} BIGINT,"
        " fetched_at TIMESTAMP, PRIMARY KEY (service_id, date))"
    )
    for row in expected_rows(dep.emulator, *APRIL):
        dep.sql(
            "INSERT INTO budget_usage VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, '2026-05-01 06:00')", row
        )
    dep.hold_marker.unlink(missing_ok=True)
    before = len(dep.mailbox.messages)
    run_id = dep.trigger(DAG_ID)
    assert wait_until(dep.unless_dead(lambda: dep.held_pid() > 0), 120, 0.2), dep.tail()
    pid = dep.held_pid()
    delivered = [str(m["Subject"]) for _, m in dep.mailbox.messages[before:]]
    assert [s.split(" reached ")[1].split(" %")[0] for s in delivered] == ["50", "80"]
    assert dep.sql("SELECT threshold FROM budget_alerts") == [
        (50,)
    ]  # 80 % delivered, its claim not committed
    command, _ = describe_process(pid)
    os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()
    state = dep.wait_run(DAG_ID, run_id, 120)
    assert state == "success", dep.tail()
    assert dep.tries(DAG_ID, run_id) == {"budget": ("success", 2)}
    messages = dep.mailbox.messages[before:]
    thresholds = [int(str(m["Subject"]).split(" reached ")[1].split(" %")[0]) for _, m in messages]
    assert thresholds == [50, 80, 80, 100]
    ids = [str(m["Message-ID"]) for _, m in messages]
    assert ids[1] == ids[2] == "<zendrive-budget.6100.2026-04.80@airflow-provider-zendrive>"
    assert len(set(ids)) == 3
    assert sorted(dep.sql("SELECT threshold FROM budget_alerts")) == [(50,), (80,), (100,)]
    figure(
        f"alert window: SIGKILL to the task process ({command[:40]!r}) after the 80 % email was delivered, "
        f"before its claim committed; try 2 green {time.monotonic() - killed:.1f} s later; emails "
        f"{thresholds} (the 80 % one twice, one Message-ID), ledger 50/80/100"
    )
