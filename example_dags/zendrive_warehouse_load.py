"""
Warehouse load: land each day's usage as Parquet in object storage, then MERGE it into Snowflake or BigQuery.

The route for cloud warehouses, whose Airflow hooks are built for loads and queries rather than a row-by-row
upsert. Every day at 00:00 UTC the first task pulls the previous UTC day and writes it as one typed Parquet file
under a date partition of the lake, ``<lake>/date=YYYY-MM-DD/usage.parquet`` (``int64`` ids and counters,
``date32`` days, ``fetched_at`` in UTC). The second task has the warehouse load that file with its own loader
and MERGE it into ``zendrive_daily_usage`` on ``(service_id, date)``: a rerun, a backfill or a late-data re-read
updates the day in place instead of adding it twice.

**Snowflake** (the default): ``SQLExecuteQueryOperator`` on the Snowflake connection creates the table if it
is missing, then, in one session, runs a ``COPY INTO`` a temporary table from the external stage
``zendrive_lake`` (``MATCH_BY_COLUMN_NAME``), then the ``MERGE``. **BigQuery** (``ZENDRIVE_WAREHOUSE=bigquery``):
``BigQueryInsertJobOperator`` runs one script: the table created if missing (partitioned by day),
``LOAD DATA INTO TEMP TABLE`` from the GCS file, then the ``MERGE``.

Not run in this project's CI: no cloud account. The tests parse this DAG and check its wiring; the Parquet file
and its partitioned layout are tested with pyarrow and DuckDB, and the table route (``sql_conn_id``) on SQLite,
PostgreSQL and MariaDB.

**What it needs**

* a ZenDRIVE connection, ``zendrive_default``, and the pool ``zendrive_api`` (see ``zendrive_daily_billing``);
* the ``[parquet]`` extra (pyarrow) on the workers, and the provider of the lake's store:
  ``apache-airflow-providers-amazon`` for ``s3://`` (connection ``aws_default``) or
  ``apache-airflow-providers-google`` for ``gs://`` (``google_cloud_default``), set as
  ``ZENDRIVE_LAKE_CONN_ID``;
* Snowflake: ``apache-airflow-providers-snowflake``, the connection ``snowflake_default`` and an external stage
  ``zendrive_lake`` on the lake's URL:

  ```sql
  CREATE STAGE zendrive_lake URL = 's3://...' STORAGE_INTEGRATION = ...;
  ```

* BigQuery: ``apache-airflow-providers-google``, a dataset (``ZENDRIVE_BQ_DATASET``, default ``billing``) and
  the lake on GCS.

``ZENDRIVE_LAKE`` sets the lake's root (default ``s3://zendrive-lake/zendrive_usage``, or
``gs://zendrive-lake/zendrive_usage`` for BigQuery); these settings are read when the DAG file is parsed.
"""

from __future__ import annotations

import datetime
import os

from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator
from airflow.sdk import DAG

from airflow_provider_zendrive.operators.zendrive import ZenDriveStatsOperator

WAREHOUSE = os.environ.get("ZENDRIVE_WAREHOUSE", "snowflake")
LAKE = os.environ.get(
    "ZENDRIVE_LAKE", f"{'gs' if WAREHOUSE == 'bigquery' else 's3'}://zendrive-lake/zendrive_usage"
).rstrip("/")
LAKE_CONN_ID = os.environ.get(
    "ZENDRIVE_LAKE_CONN_ID", "google_cloud_default" if WAREHOUSE == "bigquery" else "aws_default"
)
ZENDRIVE_CONN_ID = os.environ.get("ZENDRIVE_CONN_ID", "zendrive_default")
ZENDRIVE_POOL = os.environ.get("ZENDRIVE_POOL", "zendrive_api")
BQ_DATASET = os.environ.get("ZENDRIVE_BQ_DATASET", "billing")
#: The day a run pulls: ``@daily`` runs at midnight UTC and pull the UTC day before their logical date.
DAY = "{{ macros.ds_add(ds, -1) }}"
#: The day's file, one partition per day.
PARQUET_PATH = f"{LAKE}/date={DAY}/usage.parquet"

# [START zendrive_warehouse_snowflake_sql]
SNOWFLAKE_LOAD_AND_MERGE = [
    """CREATE TABLE IF NOT EXISTS zendrive_daily_usage (
        service_id BIGINT NOT NULL, date DATE NOT NULL,
        total_requests BIGINT NOT NULL, successful_requests BIGINT NOT NULL, client_errors BIGINT NOT NULL,
        auth_failures BIGINT NOT NULL, bytes_sent BIGINT NOT NULL, bytes_received BIGINT NOT NULL,
        unique_ips BIGINT NOT NULL, fetched_at TIMESTAMP_TZ NOT NULL,
        PRIMARY KEY (service_id, date))""",
    "CREATE TEMPORARY TABLE zendrive_usage_load LIKE zendrive_daily_usage",
    f"""COPY INTO zendrive_usage_load FROM @zendrive_lake/date={DAY}/
        FILE_FORMAT = (TYPE = PARQUET) MATCH_BY_COLUMN_NAME = CASE_INSENSITIVE""",
    """MERGE INTO zendrive_daily_usage AS t USING zendrive_usage_load AS s
        ON t.service_id = s.service_id AND t.date = s.date
    WHEN MATCHED THEN UPDATE SET
        total_requests = s.total_requests, successful_requests = s.successful_requests,
        client_errors = s.client_errors, auth_failures = s.auth_failures, bytes_sent = s.bytes_sent,
        bytes_received = s.bytes_received, unique_ips = s.unique_ips, fetched_at = s.fetched_at
    WHEN NOT MATCHED THEN INSERT (service_id, date, total_requests, successful_requests, client_errors,
        auth_failures, bytes_sent, bytes_received, unique_ips, fetched_at)
    VALUES (s.service_id, s.date, s.total_requests, s.successful_requests, s.client_errors,
        s.auth_failures, s.bytes_sent, s.bytes_received, s.unique_ips, s.fetched_at)""",
]
# [END zendrive_warehouse_snowflake_sql]

# [START zendrive_warehouse_bigquery_sql]
BIGQUERY_LOAD_AND_MERGE = f"""
CREATE TABLE IF NOT EXISTS `{BQ_DATASET}.zendrive_daily_usage` (
    service_id INT64 NOT NULL, date DATE NOT NULL,
    total_requests INT64 NOT NULL, successful_requests INT64 NOT NULL, client_errors INT64 NOT NULL,
    auth_failures INT64 NOT NULL, bytes_sent INT64 NOT NULL, bytes_received INT64 NOT NULL,
    unique_ips INT64 NOT NULL, fetched_at TIMESTAMP NOT NULL)
PARTITION BY date CLUSTER BY service_id;

LOAD DATA INTO TEMP TABLE zendrive_usage_load
FROM FILES (format = 'PARQUET', uris = ['{PARQUET_PATH}']);

MERGE `{BQ_DATASET}.zendrive_daily_usage` AS t USING zendrive_usage_load AS s
    ON t.service_id = s.service_id AND t.date = s.date
WHEN MATCHED THEN UPDATE SET
    total_requests = s.total_requests, successful_requests = s.successful_requests,
    client_errors = s.client_errors, auth_failures = s.auth_failures, bytes_sent = s.bytes_sent,
    bytes_received = s.bytes_received, unique_ips = s.unique_ips, fetched_at = s.fetched_at
WHEN NOT MATCHED THEN INSERT ROW;
"""
# [END zendrive_warehouse_bigquery_sql]

# [START zendrive_warehouse_load]
with DAG(
    dag_id="zendrive_warehouse_load",
    description="Land yesterday's ZenDRIVE usage as Parquet in the lake, then MERGE it into the warehouse.",
    schedule="@daily",
    start_date=datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC),
    catchup=False,
    default_args={"retries": 3, "retry_delay": datetime.timedelta(minutes=2)},
    tags=["zendrive", "billing", "warehouse"],
    doc_md=__doc__,
) as dag:
    land = ZenDriveStatsOperator(
        task_id="land_parquet",
        zendrive_conn_id=ZENDRIVE_CONN_ID,
        output_path=PARQUET_PATH,  # templated: one partition per day; .parquet writes a typed file
        output_conn_id=LAKE_CONN_ID,
        pool=ZENDRIVE_POOL,
    )
    if WAREHOUSE == "bigquery":
        from airflow.providers.google.cloud.operators.bigquery import BigQueryInsertJobOperator

        load = BigQueryInsertJobOperator(
            task_id="merge_into_warehouse",
            configuration={"query": {"query": BIGQUERY_LOAD_AND_MERGE, "useLegacySql": False}},
        )
    else:
        load = SQLExecuteQueryOperator(
            task_id="merge_into_warehouse", conn_id="snowflake_default", sql=SNOWFLAKE_LOAD_AND_MERGE
        )
    land >> load
# [END zendrive_warehouse_load]
