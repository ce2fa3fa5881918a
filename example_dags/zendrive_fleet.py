"""
Fleet billing: yesterday's usage of many ZenDRIVE services, one connection each, into one warehouse table.

Every day at 00:00 UTC this DAG splits a list of ZenDRIVE connection ids into batches (``batch_size`` per
batch, 100 by default) and maps one pull task over the batches (dynamic task mapping): each mapped task pulls
the UTC day before the run's logical date, and the three days before it, for every service of its batch, up
to 8 at once in threads, each service with its own keys and connection, and upserts each service's rows in a
transaction of its own into ``zendrive_daily_usage`` on ``zendrive_warehouse``. Rows are keyed by
``(service_id, date)``, so the services never overwrite each other, and the table is the one
``zendrive_daily_billing`` writes. Batches keep a fleet of thousands within Airflow's ``[core]
max_map_length`` (1,024 mapped tasks) and pay one task's start-up per batch instead of per service.

**A broken service** (bad keys, suspended) does not hold back the others: its batch writes every service it
can, then fails naming each service that failed, with its error. The retry of that task pulls only those (the
progress is kept in the table ``zendrive_fleet_progress``, next to the usage table). When every failure is
final (bad keys, a suspended service) the task fails at once: fix the keys or wait for the service, then clear
the task; it also pulls only those.

**Late data.** As in ``zendrive_daily_billing``: a day's counters are not final at midnight, so with
``lookback_days=3`` each day is read again by the next three runs (still one request per service and run).
A re-read that changes a day already in the table is logged (one WARNING line per day), counted in the asset
event's ``"revised"``, and each changed value is appended to the audit table ``zendrive_usage_revisions``, in
the same transaction.

**Triggering it by hand.** A manual run (the UI's Trigger button, ``airflow dags trigger`` or the REST API)
may have no logical date: it then pulls the UTC day before the moment it was triggered, plus the lookback,
for every service (never the API's default 30 days). To pull other days, give the params ``from`` / ``to``
(``YYYY-MM-DD``, UTC), e.g. ``{"conn_ids": ["zendrive_acme"], "from": "2026-11-01", "to": "2026-11-30"}``:
``to`` alone pulls that one day, ``from`` alone runs to the day before the run; the lookback starts that
window three days earlier too.

**What it needs**

* one ZenDRIVE connection per service (access key as login, secret key as password);
* the list of their ids (each once), from the first of: the ``conn_ids`` param of the run (e.g.
  ``{"conn_ids": ["zendrive_acme", "zendrive_globex"]}``), the Variable ``zendrive_fleet_conn_ids`` (a JSON
  list, e.g. ``AIRFLOW_VAR_ZENDRIVE_FLEET_CONN_IDS='["zendrive_acme", "zendrive_globex"]'``), or
  ``["zendrive_default"]``;
* the SQL connection ``zendrive_warehouse`` (any common-sql database);
* the pool ``zendrive_api``: all mapped tasks run in it, so its slots bound how many batches run at once,
  and slots times 8 how many services are pulled at once, however long the list grows.

Each mapped task is labelled in the UI with its batch: its first and last connection id and its size. Its log
has one line per service written, with the service's summary, and one ERROR line per service that failed; its
XCom ``summary`` has a headline and one line per service; the table's Asset gets one event per batch, with the
services of the batch in its extra. Retries, backoff and the Asset updated
(``x-zendrive-table://zendrive_warehouse/zendrive_daily_usage``) are as in ``zendrive_daily_billing``.
Environment variables read when the file is parsed: ``ZENDRIVE_WAREHOUSE_CONN_ID`` and ``ZENDRIVE_POOL``.
"""

from __future__ import annotations

import datetime
import os
from typing import Any

from airflow.sdk import DAG, Param, Variable, task

from airflow_provider_zendrive.operators.zendrive import (
    ZenDriveFleetStatsOperator,
    default_retry_policy,
    table_asset,
)

WAREHOUSE_CONN_ID = os.environ.get("ZENDRIVE_WAREHOUSE_CONN_ID", "zendrive_warehouse")
ZENDRIVE_POOL = os.environ.get("ZENDRIVE_POOL", "zendrive_api")
TABLE = "zendrive_daily_usage"
#: The audit trail of revised values, shared with zendrive_daily_billing (see docs/guides/operator.rst).
REVISIONS_TABLE = "zendrive_usage_revisions"
#: Days before the run's day that are read again, so that late-arriving numbers are corrected (see above).
LOOKBACK_DAYS = 3
FLEET_VARIABLE = "zendrive_fleet_conn_ids"
#: Services per mapped task (the ``batch_size`` param's default), measured in docs/guides/scaling.rst: large
#: enough that task start-up is a small share of a batch, small enough that a fleet spreads over the pool.
BATCH_SIZE = 100
#: Services one mapped task pulls at once (threads, each with its own connection).
MAX_CONCURRENCY = 8
ZENDRIVE_DAILY_USAGE = table_asset(WAREHOUSE_CONN_ID, TABLE)
DATE_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
#: The window of a run, as in zendrive_daily_billing: the params ``from`` / ``to`` when given; else, for a run
#: without a logical date, the UTC day before it was triggered; else nothing (the day before the logical
#: date).
FROM_DATE = (
    "{{ params['from'] or params['to'] "
    "or ('' if logical_date else macros.ds_add(dag_run.run_after | ds, -1)) }}"
)
TO_DATE = (
    "{{ params['to'] or ('' if logical_date and not params['from'] "
    "else macros.ds_add((logical_date or dag_run.run_after) | ds, -1)) }}"
)

with DAG(
    dag_id="zendrive_fleet",
    description="Yesterday's ZenDRIVE usage of every service in the fleet, into zendrive_daily_usage.",
    schedule="@daily",
    start_date=datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC),
    catchup=False,
    max_active_runs=2,
    params={
        "conn_ids": Param(
            None,
            type=["null", "array"],
            items={"type": "string", "minLength": 1},
            uniqueItems=True,
            description=f"ZenDRIVE connection ids; empty: the Variable {FLEET_VARIABLE}.",
        ),
        "batch_size": Param(
            BATCH_SIZE,
            type="integer",
            minimum=1,
            description="Services per mapped task (each pulls up to 8 at once).",
        ),
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
    },
    default_args={
        "retries": 4,
        "retry_delay": datetime.timedelta(minutes=1),
        "retry_exponential_backoff": True,  # doubling waits; Airflow 3.1 takes a bool only
        "max_retry_delay": datetime.timedelta(minutes=30),
        # Mapped tasks get retry_policy=None from Airflow, not the operator's default: name it (None before 3.3).
        "retry_policy": default_retry_policy(),
    },
    tags=["zendrive", "billing"],
    doc_md=__doc__,
) as dag:
    # [START zendrive_fleet_conn_ids]
    @task
    def fleet_batches(params: dict[str, Any]) -> list[list[str]]:
        """
        The ZenDRIVE connection ids to pull (the param, else the Variable, else ``zendrive_default``), in
        batches of ``batch_size``.
        """
        from airflow.providers.common.compat.sdk import AirflowFailException  # 3.1 and later

        conn_ids = params.get("conn_ids") or Variable.get(FLEET_VARIABLE, default=None, deserialize_json=True)
        conn_ids = conn_ids or ["zendrive_default"]
        if not isinstance(conn_ids, list) or not all(isinstance(c, str) and c for c in conn_ids):
            raise AirflowFailException(f"The fleet must be a JSON list of connection ids, got {conn_ids!r}.")
        if len(set(conn_ids)) != len(conn_ids):
            raise AirflowFailException(f"The fleet lists a connection id twice: {conn_ids!r}.")
        size = int(params.get("batch_size") or BATCH_SIZE)
        return [conn_ids[start : start + size] for start in range(0, len(conn_ids), size)]

    # [END zendrive_fleet_conn_ids]

    # [START zendrive_fleet_mapped_pull]
    ZenDriveFleetStatsOperator.partial(
        task_id="pull_daily_usage",
        from_date=FROM_DATE,  # empty for a scheduled run: the day before its logical date
        to_date=TO_DATE,
        sql_conn_id=WAREHOUSE_CONN_ID,
        table=TABLE,
        revisions_table=REVISIONS_TABLE,
        lookback_days=LOOKBACK_DAYS,  # late data: re-read the three days before (see the docstring)
        max_concurrency=MAX_CONCURRENCY,  # services pulled at once within one mapped task
        pool=ZENDRIVE_POOL,  # the pool's slots bound how many batches run at once
        outlets=[ZENDRIVE_DAILY_USAGE],
        map_index_template=(
            "{{ task.conn_ids[0] }}{{ '..' ~ task.conn_ids[-1] if task.conn_ids | length > 1 else '' }}"
            " ({{ task.conn_ids | length }})"
        ),
    ).expand(conn_ids=fleet_batches())
    # [END zendrive_fleet_mapped_pull]
