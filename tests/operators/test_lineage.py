"""
OpenLineage: real DAG runs with the OpenLineage provider's listener writing its events to a file.

The operator reports the ZenDRIVE usage API of the service as its input and the files and tables it wrote as
outputs, named per OpenLineage's conventions, with ``dataSource``, ``schema`` and ``outputStatistics`` facets;
a failed run lists only what it finished writing. Every event validates against the specification's JSON
schemas (``tests/data/openlineage``), and no event carries the secret key.
"""

from __future__ import annotations

import datetime
import json
import sqlite3
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from openlineage_spec import read_events, spec_errors
from zendrive_expected import COLUMNS, truth_rows

from airflow_provider_zendrive._outputs.lineage import file_dataset

if TYPE_CHECKING:
    from airflow_runner import AirflowRunner

    from airflow_provider_zendrive.testing import ZenDriveEmulator

pytest.importorskip(
    "airflow.providers.openlineage", reason="the test extra installs the OpenLineage provider"
)

DAGS = Path(__file__).parent.parent / "dags_for_tests" / "zendrive_stats_dags.py"
SECRET = "lineage-secret-5e1d0c9b3a"
#: The column types each output declares, spelled out here: the table's DDL and the Parquet file's Arrow types.
TABLE_TYPES = [
    *((name, "DATE" if name == "date" else "BIGINT") for name in COLUMNS),
    ("fetched_at", "TIMESTAMP"),
]
PARQUET_TYPES = [
    *((name, "date32[day]" if name == "date" else "int64") for name in COLUMNS),
    ("fetched_at", "timestamp[us, tz=UTC]"),
]
REVISION_TYPES = [
    ("service_id", "BIGINT"),
    ("date", "DATE"),
    ("counter", "VARCHAR(32)"),
    ("old_value", "BIGINT"),
    ("new_value", "BIGINT"),
    ("revised_at", "TIMESTAMP"),
    ("revised_by", "VARCHAR(500)"),
]


def lineage_env(emulator: ZenDriveEmulator, events: Path, secret: str = SECRET) -> dict[str, str]:
    emulator.add_account("lineage-key", SECRET, 4321)
    return {
        "AIRFLOW_CONN_ZENDRIVE_TEST": emulator.connection_uri("lineage-key", secret),
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(
            {"type": "file", "log_file_path": str(events), "append": True}
        ),
        "AIRFLOW__OPENLINEAGE__NAMESPACE": "zendrive-tests",
    }


def task_events(events: Path, event_type: str) -> dict[str, dict[str, Any]]:
    """The events of one type of task runs, by task id; every event of the file checked against the spec."""
    found = {}
    all_events = read_events(events)
    assert all_events
    for event in all_events:
        assert spec_errors(event) == [], event
        name = event["job"]["name"]
        if event["eventType"] == event_type and name.count(".") == 1:  # dag_id.task_id: a task, not the DAG
            found[name.split(".")[1]] = event
    return found


def datasets(event: dict[str, Any], kind: str) -> list[tuple[str, str]]:
    return [(d["namespace"], d["name"]) for d in event[kind]]


def columns(dataset: dict[str, Any]) -> list[tuple[str, str]]:
    """The ``schema`` facet's fields as ``(name, type)``, checking their ordinal positions."""
    fields = dataset["facets"]["schema"]["fields"]
    assert [f["ordinal_position"] for f in fields] == list(range(1, len(fields) + 1))
    return [(f["name"], f["type"]) for f in fields]


def statistics(dataset: dict[str, Any]) -> dict[str, int]:
    facet = dataset["outputFacets"]["outputStatistics"]
    return {key: value for key, value in facet.items() if not key.startswith("_")}


def data_source(dataset: dict[str, Any]) -> tuple[str, str]:
    facet = dataset["facets"]["dataSource"]
    return facet["name"], facet["uri"]


def api(emulator: ZenDriveEmulator, service: str = "4321") -> tuple[str, str]:
    return (f"https://127.0.0.1:{emulator.port}", f"/zendrive-api/cdn-stats/{service}")


# -- real runs ----------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_lineage_names_the_api_and_the_tables_written(
    airflow_runner: AirflowRunner,
    zendrive_emulator: ZenDriveEmulator,
    postgresql_db: dict[str, Any],
    tmp_path: Path,
) -> None:
    db = tmp_path / "usage.db"
    events = tmp_path / "events.jsonl"
    env = {
        **lineage_env(zendrive_emulator, events),
        "AIRFLOW_CONN_ZD_SQLITE": json.dumps({"conn_type": "sqlite", "host": str(db)}),
        "AIRFLOW_CONN_ZD_PG": postgresql_db["uri"],
        "ZD_TEST_FROM_DATE": "2026-05-01",
        "ZD_TEST_TO_DATE": "2026-05-03",
    }
    result = airflow_runner.run("zendrive_stats_tables", None, dags_folder=DAGS, env=env)
    assert result.state == "success", result.output[-3000:]

    by_task = task_events(events, "COMPLETE")
    pg_namespace = f"postgres://{postgresql_db['host']}:{postgresql_db['port']}"
    for task, (namespace, name) in {
        "pull_zd_sqlite": (f"sqlite://{db}", "main.zendrive_daily_usage"),
        "pull_zd_pg": (pg_namespace, f"{postgresql_db['dbname']}.public.zendrive_daily_usage"),
    }.items():
        event = by_task[task]
        assert datasets(event, "inputs") == [api(zendrive_emulator)]
        assert data_source(event["inputs"][0]) == (
            api(zendrive_emulator)[0],
            f"https://127.0.0.1:{zendrive_emulator.port}/zendrive-api/cdn-stats/",
        )
        assert datasets(event, "outputs") == [(namespace, name)]
        (output,) = event["outputs"]
        assert columns(output) == TABLE_TYPES
        assert statistics(output) == {"rowCount": 3}
        assert data_source(output) == (namespace, namespace)
    assert SECRET not in events.read_text()


DAY_COLUMNS = [(name, "date" if name == "date" else "integer") for name in COLUMNS[1:]]
JSON_COLUMNS = [
    ("status", "string"),
    ("service_id", "integer"),
    ("from", "date"),
    ("to", "date"),
    ("summary", "struct"),
    ("daily", "array"),
]


@pytest.mark.slow
@pytest.mark.parametrize("suffix", ["csv", "json"])
def test_lineage_names_a_local_file_as_airflow_does(
    airflow_runner: AirflowRunner, zendrive_emulator: ZenDriveEmulator, tmp_path: Path, suffix: str
) -> None:
    events = tmp_path / "events.jsonl"
    path = tmp_path / "out" / f"usage.{suffix}"
    env = {**lineage_env(zendrive_emulator, events), "ZD_TEST_OUTPUT_PATH": str(path)}
    result = airflow_runner.run("zendrive_stats_daily", "2026-05-04", dags_folder=DAGS, env=env)
    assert result.state == "success", result.output[-3000:]

    event = task_events(events, "COMPLETE")["pull"]
    assert datasets(event, "outputs") == [("file", str(path))]
    (output,) = event["outputs"]
    if suffix == "csv":
        assert columns(output) == [("service_id", "integer"), *DAY_COLUMNS]
    else:  # the stats dict: its summary and the fields of each day nested
        assert columns(output) == JSON_COLUMNS
        nested = {
            f["name"]: [(n["name"], n["type"]) for n in f["fields"]]
            for f in output["facets"]["schema"]["fields"]
        }
        assert nested["daily"] == DAY_COLUMNS
        assert [name for name, _ in nested["summary"]] == [*COLUMNS[2:], "success_rate"]
    assert statistics(output) == {"rowCount": 1, "size": path.stat().st_size}
    assert data_source(output) == ("file", "file://")
    assert datasets(event, "inputs") == [api(zendrive_emulator)]
    assert SECRET not in events.read_text()


@pytest.mark.slow
def test_lineage_of_a_parquet_file_a_table_and_its_audit_trail(
    airflow_runner: AirflowRunner, zendrive_emulator: ZenDriveEmulator, tmp_path: Path
) -> None:
    pytest.importorskip("pyarrow", reason="the parquet extra installs pyarrow")
    events = tmp_path / "events.jsonl"
    path = tmp_path / "lake" / "date=2026-05-03" / "usage.parquet"
    db = tmp_path / "usage.db"
    # The day already holds other numbers: every counter that differs is one row of the audit trail.
    (day,) = truth_rows(4321, datetime.date(2026, 5, 3), datetime.date(2026, 5, 3))
    stale = {**day, "total_requests": day["total_requests"] + 1, "bytes_sent": day["bytes_sent"] + 1}
    with sqlite3.connect(db) as conn:
        conn.execute(
            f"CREATE TABLE zendrive_daily_usage ({', '.join(f'{n} {t} NOT NULL' for n, t in TABLE_TYPES)}, "
            "PRIMARY KEY (service_id, date))"
        )
        conn.execute(
            f"INSERT INTO zendrive_daily_usage VALUES ({', '.join('?' * len(TABLE_TYPES))})",  # noqa: S608
            [*(stale[name] for name in COLUMNS), "2026-05-04 00:00:00"],
        )
    env = {
        **lineage_env(zendrive_emulator, events),
        "AIRFLOW_CONN_ZD_SQLITE": json.dumps({"conn_type": "sqlite", "host": str(db)}),
        "ZD_TEST_OUTPUT_PATH": str(path),
        "ZD_TEST_SQL_CONN_ID": "zd_sqlite",
        "ZD_TEST_REVISIONS_TABLE": "zendrive_revisions",
    }
    result = airflow_runner.run("zendrive_stats_daily", "2026-05-04", dags_folder=DAGS, env=env)
    assert result.state == "success", result.output[-3000:]

    event = task_events(events, "COMPLETE")["pull"]
    assert datasets(event, "outputs") == [
        ("file", str(path)),
        (f"sqlite://{db}", "main.zendrive_daily_usage"),
        (f"sqlite://{db}", "main.zendrive_revisions"),
    ]
    parquet, table, revisions = event["outputs"]
    assert columns(parquet) == PARQUET_TYPES
    assert statistics(parquet) == {"rowCount": 1, "size": path.stat().st_size}
    assert columns(table) == TABLE_TYPES
    assert statistics(table) == {"rowCount": 1}
    assert columns(revisions) == REVISION_TYPES
    with sqlite3.connect(db) as conn:
        appended = conn.execute("SELECT counter FROM zendrive_revisions ORDER BY counter").fetchall()
    assert appended == [("bytes_sent",), ("total_requests",)]
    assert statistics(revisions) == {"rowCount": 2}
    assert SECRET not in events.read_text()


@pytest.mark.slow
def test_a_run_that_fails_before_writing_lists_no_output(
    airflow_runner: AirflowRunner, zendrive_emulator: ZenDriveEmulator, tmp_path: Path
) -> None:
    events = tmp_path / "events.jsonl"
    path = tmp_path / "out" / "usage.csv"
    env = {
        **lineage_env(zendrive_emulator, events, secret="not-the-secret"),
        "ZD_TEST_OUTPUT_PATH": str(path),
    }
    result = airflow_runner.run("zendrive_stats_daily", "2026-05-04", dags_folder=DAGS, env=env)
    assert result.state == "failed", result.output[-3000:]
    assert not path.exists()

    event = task_events(events, "FAIL")["pull"]
    assert datasets(event, "outputs") == []
    # The service is known only from the API's answer: the input is the endpoint the run called.
    assert datasets(event, "inputs") == [api(zendrive_emulator, service="")]
    assert "errorMessage" in event["run"]["facets"]


@pytest.mark.slow
def test_a_run_that_fails_after_its_file_lists_the_file_only(
    airflow_runner: AirflowRunner, zendrive_emulator: ZenDriveEmulator, tmp_path: Path
) -> None:
    events = tmp_path / "events.jsonl"
    path = tmp_path / "out" / "usage.csv"
    db = tmp_path / "usage.db"
    with sqlite3.connect(db) as conn:  # a table the upsert cannot write: its columns are missing
        conn.execute("CREATE TABLE zendrive_daily_usage (service_id BIGINT)")
    env = {
        **lineage_env(zendrive_emulator, events),
        "AIRFLOW_CONN_ZD_SQLITE": json.dumps({"conn_type": "sqlite", "host": str(db)}),
        "ZD_TEST_OUTPUT_PATH": str(path),
        "ZD_TEST_SQL_CONN_ID": "zd_sqlite",
    }
    result = airflow_runner.run("zendrive_stats_daily", "2026-05-04", dags_folder=DAGS, env=env)
    assert result.state == "failed", result.output[-3000:]
    assert path.exists()

    event = task_events(events, "FAIL")["pull"]
    assert datasets(event, "outputs") == [("file", str(path))]
    assert statistics(event["outputs"][0]) == {"rowCount": 1, "size": path.stat().st_size}
    assert datasets(event, "inputs") == [api(zendrive_emulator)]


# -- naming and the validator, without a run ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("gcs://billing/zendrive/usage.parquet", ("gs://billing", "zendrive/usage.parquet")),
        ("gs://billing/zendrive/usage.parquet", ("gs://billing", "zendrive/usage.parquet")),
        ("s3://billing/zendrive/usage.csv", ("s3://billing", "zendrive/usage.csv")),
        ("file:///data/usage%20may.csv", ("file", "/data/usage may.csv")),
    ],
)
def test_object_storage_names_follow_the_spec(uri: str, expected: tuple[str, str]) -> None:
    assert file_dataset(uri) == expected


def _event(**output_facets: Any) -> dict[str, Any]:
    return {
        "eventTime": "2026-05-04T00:00:00Z",
        "producer": "https://example.com/producer",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "eventType": "COMPLETE",
        "run": {"runId": str(uuid.uuid4())},
        "job": {"namespace": "zendrive-tests", "name": "dag.task"},
        "outputs": [{"namespace": "file", "name": "/x.csv", "outputFacets": output_facets}],
    }


def test_the_validator_refuses_what_the_spec_refuses() -> None:
    statistics_url = (
        "https://openlineage.io/spec/facets/1-0-2/OutputStatisticsOutputDatasetFacet.json"
        "#/$defs/OutputStatisticsOutputDatasetFacet"
    )
    good = {"_producer": "p", "_schemaURL": statistics_url, "rowCount": 3}
    assert spec_errors(_event(outputStatistics=good)) == []
    assert spec_errors(_event(outputStatistics={**good, "rowCount": "3"})) != []
    without_time = _event()
    del without_time["eventTime"]
    assert spec_errors(without_time) != []
    unknown = {**good, "_schemaURL": "https://openlineage.io/spec/facets/9-9-9/NoSuchFacet.json#/$defs/X"}
    assert any("is not vendored" in error for error in spec_errors(_event(outputStatistics=unknown)))
