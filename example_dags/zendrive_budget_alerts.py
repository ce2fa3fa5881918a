"""
Budget alerts: email once when a service's month-to-date egress crosses 50, 80 and 100 % of its budget.

Scheduled on the warehouse table's Asset, so it runs after every load of ``zendrive_daily_usage`` (by
``zendrive_daily_billing``, ``zendrive_fleet`` or ``zendrive_history``). It reads month-to-date ``bytes_sent``
from the table (no API request), finds the thresholds crossed in the newest month and the month before, and
emails each crossing not alerted before. A crossing is derived from the data: threshold ``t`` is crossed on
the first day whose month-to-date reaches ``t %`` of the budget.

**Once per crossing.** The ledger table ``zendrive_budget_alerts`` (next to the usage table) holds one row per
service, month and threshold, claimed in the transaction that sends the email and committed only once it was
sent. Reruns, retries, backfills and late-data re-reads find the claim and stay quiet; a failed email rolls
the claim back, so the task's retry sends it.

**What it needs**: the SQL connection ``zendrive_warehouse`` holding the table, and an SMTP connection
(``smtp_default``, the official SMTP provider's). Each alert is one email with a text and an HTML part, its
``Message-ID`` derived from the crossing, so a repeat is recognisably the same alert.

**The budget** is the provider's setting ``[zendrive] budget_gb`` (or ``AIRFLOW__ZENDRIVE__BUDGET_GB``), read
when the task runs: one number of decimal GB for every service, or ``{"<service_id>": GB}``. The "ZenDRIVE
usage" page in the Airflow UI shows the same budget. Other settings, from environment variables read when the
file is parsed:

* ``ZENDRIVE_BUDGET_THRESHOLDS``: percentages, comma-separated (default ``50,80,100``);
* ``ZENDRIVE_ALERT_TO``: the recipients, comma-separated (default: ``ZENDRIVE_SUMMARY_TO``, else
  ``billing@localhost``); ``ZENDRIVE_SUMMARY_FROM`` and ``ZENDRIVE_SMTP_CONN_ID`` as in
  ``zendrive_daily_billing``;
* ``ZENDRIVE_WAREHOUSE_CONN_ID`` (default ``zendrive_warehouse``).
"""

from __future__ import annotations

import datetime
import os

from airflow.sdk import DAG

from airflow_provider_zendrive.notifications.zendrive import ZenDriveEmailNotifier
from airflow_provider_zendrive.operators.zendrive import ZenDriveBudgetAlertOperator, table_asset

WAREHOUSE_CONN_ID = os.environ.get("ZENDRIVE_WAREHOUSE_CONN_ID", "zendrive_warehouse")
TABLE = "zendrive_daily_usage"
THRESHOLDS = [int(value) for value in os.environ.get("ZENDRIVE_BUDGET_THRESHOLDS", "50,80,100").split(",")]
ALERT_TO = [
    address.strip()
    for address in (
        os.environ.get("ZENDRIVE_ALERT_TO") or os.environ.get("ZENDRIVE_SUMMARY_TO") or "billing@localhost"
    ).split(",")
    if address.strip()
]

# [START zendrive_budget_alerts]
with DAG(
    dag_id="zendrive_budget_alerts",
    description="Email once when month-to-date ZenDRIVE egress crosses a threshold of the monthly budget.",
    schedule=[table_asset(WAREHOUSE_CONN_ID, TABLE)],  # after every load of the warehouse table
    start_date=datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 3, "retry_delay": datetime.timedelta(minutes=2)},
    tags=["zendrive", "billing", "alerts"],
    doc_md=__doc__,
) as dag:
    ZenDriveBudgetAlertOperator(
        task_id="check_budget",
        sql_conn_id=WAREHOUSE_CONN_ID,
        table=TABLE,
        # No budget_gb: the task reads [zendrive] budget_gb when it runs, as the usage page does.
        thresholds=THRESHOLDS,
        notifiers=[
            ZenDriveEmailNotifier(
                to=ALERT_TO,
                from_email=os.environ.get("ZENDRIVE_SUMMARY_FROM", "zendrive-billing@localhost"),
                text="{{ zendrive_alert }}",  # the subject is its first line
                message_id="{{ zendrive_alert_message_id }}",  # a repeat of an alert is recognisably one
                smtp_conn_id=os.environ.get("ZENDRIVE_SMTP_CONN_ID", "smtp_default"),
            )
        ],
    )
# [END zendrive_budget_alerts]
