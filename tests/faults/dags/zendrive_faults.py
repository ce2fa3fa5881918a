"""The fault suite's DAGs (tests/faults/): what each fault interrupts, with the retry policy it must end within."""

from __future__ import annotations

import datetime
import os
import time
from typing import Any

from airflow.providers.smtp.notifications.smtp import SmtpNotifier
from airflow.sdk import DAG

from airflow_provider_zendrive.operators.zendrive import ZenDriveBudgetAlertOperator, ZenDriveStatsOperator
from airflow_provider_zendrive.sensors.zendrive import ZenDriveServiceActiveSensor

START = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
#: How many deferred sensors wait on the one suspended key of ``faults_sensors``.
SENSORS = 20

# Faults a and c: a 31-day upsert into PostgreSQL with an audit trail, one retry 20 s later (time for the test
# to look at the warehouse between the failed try and the retry).
with DAG("faults_table", schedule=None, start_date=START, catchup=False, tags=["faults"]):
    ZenDriveStatsOperator(
        task_id="pull",
        zendrive_conn_id="zendrive_faults",
        from_date="2026-04-01",
        to_date="2026-05-01",
        sql_conn_id="faults_warehouse",
        table="usage",
        revisions_table="usage_revisions",
        retries=1,
        retry_delay=datetime.timedelta(seconds=20),
    )

# Fault c on MariaDB: the same write, through the MySQL provider.
with DAG("faults_table_mariadb", schedule=None, start_date=START, catchup=False, tags=["faults"]):
    ZenDriveStatsOperator(
        task_id="pull",
        zendrive_conn_id="zendrive_faults",
        from_date="2026-04-01",
        to_date="2026-05-01",
        sql_conn_id="faults_mariadb",
        table="usage_stats",
        revisions_table="usage_revisions",
        retries=1,
        retry_delay=datetime.timedelta(seconds=20),
    )

# Fault d: a daily run (the day before the logical date and 6 days of lookback) while the API is unreachable
# for 60 s: the connection retries in-process for a few seconds, the task's retry comes 65 s later.
with DAG("faults_daily", schedule="@daily", start_date=START, catchup=False, tags=["faults"]):
    ZenDriveStatsOperator(
        task_id="pull",
        zendrive_conn_id="zendrive_faults",
        lookback_days=6,
        sql_conn_id="faults_warehouse",
        table="daily_usage",
        retries=2,
        retry_delay=datetime.timedelta(seconds=65),
    )

# Fault b: 20 deferrable sensors on one suspended key, while the triggerer is killed and replaced.
with DAG("faults_sensors", schedule=None, start_date=START, catchup=False, tags=["faults"]):
    for n in range(SENSORS):
        ZenDriveServiceActiveSensor(
            task_id=f"wait_{n:02d}",
            zendrive_conn_id="zendrive_faults_sensor",
            deferrable=True,
            poke_interval=5,
            timeout=600,
        )


class HeldFileWrite(ZenDriveStatsOperator):
    """
    The stats operator, its file write held half-way in try 1: once the temporary file's data is on disk
    (``os.fsync``) and before the rename, say so (the process id, in ``FAULTS_HOLD_MARKER``) and wait.
    """

    def execute(self, context: Any) -> Any:
        """Hold try 1's write after its fsync, then run as the operator does."""
        if context["ti"].try_number == 1:
            real_fsync = os.fsync

            def held_fsync(fd: Any) -> None:
                real_fsync(fd)
                with open(os.environ["FAULTS_HOLD_MARKER"], "w") as marker:
                    marker.write(str(os.getpid()))
                time.sleep(600)

            os.fsync = held_fsync
        return super().execute(context)


# Fault a for a file output: the task process killed half-way through its CSV write; the retry comes after
# the package's stale-leftover age (10 s), so its write sweeps the dead try's temporary file.
with DAG("faults_file", schedule=None, start_date=START, catchup=False, tags=["faults"]):
    HeldFileWrite(
        task_id="pull",
        zendrive_conn_id="zendrive_faults",
        from_date="2026-04-01",
        to_date="2026-05-01",
        output_path=os.environ.get("FAULTS_CSV", "/tmp/faults.csv"),  # set by the deployment
        retries=1,
        retry_delay=datetime.timedelta(seconds=15),
    )


def hold_after_delivery(context: dict[str, Any]) -> None:
    """
    The at-least-once window, held open: in try 1, once the 80 % alert was delivered (the notifier before this
    one returned) and before its claim commits, say so (the process id, in ``FAULTS_HOLD_MARKER``) and wait.
    """
    if context["zendrive_alert_id"].endswith(".80") and context["ti"].try_number == 1:
        with open(os.environ["FAULTS_HOLD_MARKER"], "w") as marker:
            marker.write(str(os.getpid()))
        time.sleep(600)


# The at-least-once window of budget alerts: the task process killed between a notifier returning and its
# claim's commit.
with DAG("faults_budget", schedule=None, start_date=START, catchup=False, tags=["faults"]):
    ZenDriveBudgetAlertOperator(
        task_id="budget",
        sql_conn_id="faults_warehouse",
        table="budget_usage",
        alerts_table="budget_alerts",
        budget_gb=float(os.environ.get("FAULTS_BUDGET_GB", "1")),
        thresholds=(50, 80, 100),
        notifiers=[
            SmtpNotifier(
                to="billing@example.com",
                from_email="zendrive@example.com",
                subject="{{ zendrive_alert.splitlines()[0] }}",
                html_content="<pre>{{ zendrive_alert }}</pre>",
                custom_headers={"Message-ID": "{{ zendrive_alert_message_id }}"},
                smtp_conn_id="faults_smtp",
            ),
            hold_after_delivery,
        ],
        retries=1,
        retry_delay=datetime.timedelta(seconds=3),
    )
