"""
Daily billing: pull the ZenDRIVE usage of the day that just completed into a warehouse table.

Every day at 00:00 UTC this DAG asks the ZenDRIVE usage-statistics API for the previous UTC day, and the three
days before it, and upserts one row per day (requests, errors, bytes sent and received, unique IPs) into the
table ``zendrive_daily_usage`` on the SQL connection ``zendrive_warehouse``, keyed by ``(service_id, date)``.

**Why three days of lookback.** A day's counters are not final at midnight: CDN and storage logs arrive late,
and the API does not promise when a day is complete. With ``lookback_days=3`` every day is read again by the
next three runs, so numbers that arrive up to three days late still reach the table; measured logs usually
settle within one or two days, and three leaves a margin. It costs nothing in requests (still one request per
run; a window may hold 366 days) and four small upserts instead of one. When a re-read changes a day that was
already in the table, the task log has one WARNING line per revised day (old and new values), the asset
event's extra says ``"revised": N``, and each changed value is appended to the audit table
``zendrive_usage_revisions`` (day, counter, old and new value, when, which run), in the same transaction. To
see what changed after an invoice went out:

```sql
SELECT date, counter, old_value, new_value, revised_at, revised_by
FROM zendrive_usage_revisions
WHERE service_id = 1234 AND date BETWEEN '2026-11-01' AND '2026-11-30'
  AND revised_at > '2026-12-03 09:00:00'  -- when the invoice was sent (UTC)
ORDER BY date, counter;
```

**What it needs**

* a ZenDRIVE connection, ``zendrive_default`` (access key as login, secret key as password);
* a SQL connection ``zendrive_warehouse``: any database with a common-sql hook (SQLite in the demo,
  PostgreSQL, MySQL, ... in production; the table is created on first use);
* a pool ``zendrive_api``: every task that calls the API with these keys runs in it, so a backfill cannot
  flood the API. A task whose pool does not exist is never scheduled. Create it once:

  ```shell
  airflow pools set zendrive_api 2 "ZenDRIVE API calls"
  ```

The connection ids and the pool can be changed with the ``ZENDRIVE_CONN_ID``, ``ZENDRIVE_WAREHOUSE_CONN_ID``
and ``ZENDRIVE_POOL`` environment variables, read when the DAG file is parsed.

**History.** Each run's window is derived from its logical date (``@daily`` runs at midnight UTC and pulls
the day before, plus the lookback), and the upsert replaces those days' rows: reruns and overlapping runs are
harmless. For months or years of history, trigger ``zendrive_history`` instead of a backfill: it loads any
range into this same table from one task, in one request per 366 days, where a backfill makes one task run and
one request per day.

**Triggering it by hand.** A manual run (the UI's Trigger button, ``airflow dags trigger`` or the REST API)
may have no logical date: it then pulls the UTC day before the moment it was triggered, plus the lookback,
as that day's scheduled run does (never the API's default 30 days). To pull other days, trigger it with the
params ``from`` / ``to`` (``YYYY-MM-DD``, UTC), e.g. ``{"from": "2026-11-01", "to": "2026-11-30"}``: ``to``
alone pulls that one day, ``from`` alone runs to the day before the run; the lookback starts that window three
days earlier too. A manual run with a logical date and no params pulls the day before its logical date.

**Failures.** The operator retries rate limits (429, after ``Retry-After``) and server errors in-process.
What still fails a try is retried with exponential backoff (waits of at least 1, 2, 4 and 8 minutes, plus
jitter, at most 30); bad keys, a suspended service and bad input fail at once, because retrying cannot fix
them.

**The daily summary.** Every run pushes the XCom ``summary`` (requests, success rate, GB sent and received,
days without traffic, revised rows; its first line is a subject). With ``ZENDRIVE_SUMMARY_TO`` set (comma-
separated addresses), a successful run emails it with the package's ``ZenDriveEmailNotifier`` (a text part and an
HTML part), on the SMTP connection ``smtp_default`` (``ZENDRIVE_SMTP_CONN_ID``), from ``ZENDRIVE_SUMMARY_FROM``. Any notifier
takes the same template, e.g. Slack's
``SlackWebhookNotifier(text="{{ ti.xcom_pull(task_ids='pull_daily_usage', key='summary') }}")``.

**Downstream.** The task updates the Asset ``ZENDRIVE_DAILY_USAGE``
(``x-zendrive-table://zendrive_warehouse/zendrive_daily_usage``); schedule a DAG on it with
``schedule=[ZENDRIVE_DAILY_USAGE]``. Each event's extra holds the ``from`` / ``to`` days, the number of
``rows`` written and of days ``revised``.
"""

from __future__ import annotations

import datetime
import os

from airflow.sdk import DAG, Param

from airflow_provider_zendrive.notifications.zendrive import ZenDriveEmailNotifier
from airflow_provider_zendrive.operators.zendrive import ZenDriveStatsOperator, table_asset

ZENDRIVE_CONN_ID = os.environ.get("ZENDRIVE_CONN_ID", "zendrive_default")
WAREHOUSE_CONN_ID = os.environ.get("ZENDRIVE_WAREHOUSE_CONN_ID", "zendrive_warehouse")
ZENDRIVE_POOL = os.environ.get("ZENDRIVE_POOL", "zendrive_api")
TABLE = "zendrive_daily_usage"
#: The audit trail: one row per counter value a later pull changed (see docs/guides/operator.rst).
REVISIONS_TABLE = "zendrive_usage_revisions"
SUMMARY_TO = [
    address.strip() for address in os.environ.get("ZENDRIVE_SUMMARY_TO", "").split(",") if address.strip()
]
SUMMARY_FROM = os.environ.get("ZENDRIVE_SUMMARY_FROM", "zendrive-billing@localhost")
SMTP_CONN_ID = os.environ.get("ZENDRIVE_SMTP_CONN_ID", "smtp_default")
#: Days before the run's day that are read again, so that late-arriving numbers are corrected (see above).
LOOKBACK_DAYS = 3
DATE_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"

# [START zendrive_manual_run_window]
#: The window of a run (see "Triggering it by hand"): the params ``from`` / ``to`` when given; else, for a run
#: without a logical date, the UTC day before it was triggered (``run_after``); else nothing, so the operator
#: pulls the day before the logical date (as its data interval says, whatever the timetable).
FROM_DATE = (
    "{{ params['from'] or params['to'] "
    "or ('' if logical_date else macros.ds_add(dag_run.run_after | ds, -1)) }}"
)
TO_DATE = (
    "{{ params['to'] or ('' if logical_date and not params['from'] "
    "else macros.ds_add((logical_date or dag_run.run_after) | ds, -1)) }}"
)
WINDOW_PARAMS = {
    "from": Param(
        None,
        type=["null", "string"],
        pattern=DATE_PATTERN,
        description="First day to pull, YYYY-MM-DD (UTC). Empty: the day before the run.",
    ),
    "to": Param(
        None,
        type=["null", "string"],
        pattern=DATE_PATTERN,
        description="Last day to pull, YYYY-MM-DD (UTC). Empty: the day before the run.",
    ),
}
# [END zendrive_manual_run_window]

# [START zendrive_daily_usage_asset]
#: The warehouse table, as an Asset: downstream DAGs can use ``schedule=[ZENDRIVE_DAILY_USAGE]``.
ZENDRIVE_DAILY_USAGE = table_asset(WAREHOUSE_CONN_ID, TABLE)
# [END zendrive_daily_usage_asset]

# [START zendrive_daily_summary_email]
#: The run's summary, by email (text and HTML parts): the operator pushes it as the XCom "summary"; its first
#: line is the subject.
daily_summary_email = ZenDriveEmailNotifier(
    to=SUMMARY_TO,
    from_email=SUMMARY_FROM,
    text="{{ ti.xcom_pull(task_ids='pull_daily_usage', key='summary') }}",
    smtp_conn_id=SMTP_CONN_ID,
)
# [END zendrive_daily_summary_email]

# [START zendrive_daily_billing]
with DAG(
    dag_id="zendrive_daily_billing",
    description="Pull yesterday's ZenDRIVE usage into the warehouse table zendrive_daily_usage.",
    schedule="@daily",  # 00:00 UTC; each run pulls the UTC day before its logical date
    start_date=datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC),
    catchup=False,  # history comes from the zendrive_history DAG (see the docstring)
    max_active_runs=4,  # a backfill runs a few days at a time; the pool bounds the API calls
    params=WINDOW_PARAMS,  # a manual run's window (see the docstring)
    default_args={
        "retries": 4,
        "retry_delay": datetime.timedelta(minutes=1),
        "retry_exponential_backoff": True,  # waits of 1, 2, 4, 8 minutes (plus jitter)
        "max_retry_delay": datetime.timedelta(minutes=30),
    },
    tags=["zendrive", "billing"],
    doc_md=__doc__,
) as dag:
    ZenDriveStatsOperator(
        task_id="pull_daily_usage",
        zendrive_conn_id=ZENDRIVE_CONN_ID,
        from_date=FROM_DATE,  # empty for a scheduled run: the day before its logical date
        to_date=TO_DATE,
        sql_conn_id=WAREHOUSE_CONN_ID,
        table=TABLE,
        revisions_table=REVISIONS_TABLE,
        lookback_days=LOOKBACK_DAYS,  # late data: re-read the three days before (see the docstring)
        pool=ZENDRIVE_POOL,
        outlets=[ZENDRIVE_DAILY_USAGE],
        on_success_callback=[daily_summary_email] if SUMMARY_TO else [],
    )
# [END zendrive_daily_billing]
