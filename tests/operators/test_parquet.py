"""
Parquet output: typed files read back by pyarrow and by DuckDB (a real consumer), locally, on object storage and
in a date-partitioned layout written by real DAG runs; refused before any request without pyarrow.
"""

from __future__ import annotations

import datetime
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import pytest
from zendrive_expected import COLUMNS, truth_rows, truth_tuples

from airflow_provider_zendrive.exceptions import ZenDriveInputError
from airflow_provider_zendrive.operators.zendrive import ZenDriveStatsOperator
from airflow_provider_zendrive.testing import DEMO_SERVICE_ID

if TYPE_CHECKING:
    from airflow.sdk import Context
    from airflow_runner import AirflowRunner

    from airflow_provider_zendrive.testing import ZenDriveEmulator

pa = pytest.importorskip("pyarrow", reason="the parquet extra installs pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
duckdb = pytest.importorskip("duckdb", reason="the test extra installs DuckDB")

D = datetime.date
MAY1, MAY7 = D(2026, 5, 1), D(2026, 5, 7)  # May 1st has no traffic: a zero row
DAGS = Path(__file__).parent.parent / "dags_for_tests" / "zendrive_stats_dags.py"
#: The declared types, spelled out independently of the package: (pyarrow, DuckDB).
TYPES = {
    **dict.fromkeys(COLUMNS, ("int64", "BIGINT")),
    "date": ("date32[day]", "DATE"),
    "fetched_at": ("timestamp[us, tz=UTC]", "TIMESTAMP WITH TIME ZONE"),
}


def run(op: ZenDriveStatsOperator) -> Any:
    return op.execute(cast("Context", {}))


def make(**kwargs: Any) -> ZenDriveStatsOperator:
    return ZenDriveStatsOperator(task_id="pull", zendrive_conn_id="zendrive_test", **kwargs)


def duckdb_read(source: str) -> tuple[list[tuple[str, str]], list[tuple[Any, ...]]]:
    """DuckDB's column types of ``source`` (a file or a glob) and its rows by service and day."""
    with duckdb.connect() as db:
        relation = db.sql(f"SELECT * FROM read_parquet('{source}') ORDER BY service_id, date")  # noqa: S608
        return [(name, str(kind)) for name, kind in zip(relation.columns, relation.types, strict=True)], (
            relation.fetchall()
        )


def test_parquet_is_typed_and_exact_for_pyarrow_and_duckdb(
    zendrive_emulator: ZenDriveEmulator, zendrive_conn: str, tmp_path: Path
) -> None:
    path = tmp_path / "deep" / "usage.parquet"
    before = datetime.datetime.now(datetime.UTC)
    run(make(from_date=MAY1, to_date=MAY7, output_path=str(path)))
    after = datetime.datetime.now(datetime.UTC)

    table = pq.read_table(path)
    assert [(f.name, str(f.type)) for f in table.schema] == [(name, TYPES[name][0]) for name in TYPES]
    assert not any(f.nullable for f in table.schema)
    records = table.drop_columns(["fetched_at"]).to_pylist()
    expected = truth_rows(DEMO_SERVICE_ID, MAY1, MAY7)
    assert [{**r, "date": r["date"].isoformat()} for r in records] == expected
    stamps = set(table.column("fetched_at").to_pylist())
    assert len(stamps) == 1
    stamp = stamps.pop()
    assert stamp.utcoffset() == datetime.timedelta(0)
    assert before - datetime.timedelta(microseconds=1) <= stamp <= after

    types, rows = duckdb_read(str(path))
    assert types == [(name, TYPES[name][1]) for name in TYPES]
    assert [row[:-1] for row in rows] == [
        (service, D.fromisoformat(day), *counters)
        for service, day, *counters in truth_tuples(DEMO_SERVICE_ID, MAY1, MAY7)
    ]
    assert rows[0][2] == 0  # May 1st: the zero row the API omits
    assert max(row[COLUMNS.index("bytes_sent")] for row in rows) > 2**31  # int64, not int32
    assert sorted(p.name for p in path.parent.iterdir()) == ["usage.parquet"]  # no temp file left


def test_parquet_on_object_storage_and_by_output_format(
    zendrive_emulator: ZenDriveEmulator, zendrive_conn: str
) -> None:
    from airflow.sdk import ObjectStoragePath
    from airflow.sdk.io import attach
    from fsspec.implementations.memory import MemoryFileSystem

    attach("memory", fs=MemoryFileSystem())  # an object store without credentials, for the test
    uri = "memory://bucket/zendrive/date=2026-05-07/usage.data"
    run(make(from_date=MAY1, to_date=MAY7, output_path=uri, output_format="parquet"))
    table = pq.read_table(pa.BufferReader(ObjectStoragePath(uri).read_bytes()))
    assert table.drop_columns(["fetched_at"]).to_pylist() == [
        {**r, "date": D.fromisoformat(r["date"])} for r in truth_rows(DEMO_SERVICE_ID, MAY1, MAY7)
    ]


def test_a_failed_parquet_write_leaves_the_old_file(
    zendrive_emulator: ZenDriveEmulator, zendrive_conn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    path = tmp_path / "usage.parquet"
    run(make(from_date=MAY1, to_date=MAY1, output_path=str(path)))
    old = path.read_bytes()

    def broken_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="No space left"):
        run(make(from_date=MAY1, to_date=MAY7, output_path=str(path)))
    assert path.read_bytes() == old
    assert [p.name for p in tmp_path.iterdir()] == ["usage.parquet"]


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"output_path": "/tmp/zendrive-never/usage.parquet"}, id="suffix"),
        pytest.param(
            {"output_path": "/tmp/zendrive-never/usage.bin", "output_format": "parquet"}, id="format"
        ),
    ],
)
def test_without_pyarrow_the_task_fails_before_any_request_naming_the_extra(
    zendrive_emulator: ZenDriveEmulator,
    zendrive_conn: str,
    monkeypatch: pytest.MonkeyPatch,
    kwargs: dict[str, str],
) -> None:
    for name in [name for name in sys.modules if name == "pyarrow" or name.startswith("pyarrow.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # `import pyarrow` now raises ImportError
    op = make(from_date=MAY1, to_date=MAY7, **kwargs)  # parsing does not need pyarrow
    with pytest.raises(ZenDriveInputError, match=r"pip install 'airflow-provider-zendrive\[parquet\]'"):
        run(op)
    assert zendrive_emulator.requests == []
    assert not Path("/tmp/zendrive-never").exists()


def test_import_does_not_load_pyarrow() -> None:
    import subprocess

    code = (
        "import sys, airflow_provider_zendrive.operators.zendrive, airflow_provider_zendrive._outputs.rows;"
        "print('pyarrow' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "False"


@pytest.mark.slow
def test_a_partitioned_layout_of_daily_runs_reads_as_one_table(
    airflow_runner: AirflowRunner, zendrive_emulator: ZenDriveEmulator, tmp_path: Path
) -> None:
    zendrive_emulator.add_account("parquet-key", "parquet-secret-0b7e", 4321)
    root = tmp_path / "lake" / "zendrive_usage"
    env = {
        "AIRFLOW_CONN_ZENDRIVE_TEST": zendrive_emulator.connection_uri("parquet-key", "parquet-secret-0b7e"),
        # "@daily" pulls the UTC day before the logical date: the partition is that day.
        "ZD_TEST_OUTPUT_PATH": f"{root}/date={{{{ macros.ds_add(ds, -1) }}}}/usage.parquet",
    }
    for logical_date in ("2026-05-03", "2026-05-04", "2026-05-05"):
        result = airflow_runner.run("zendrive_stats_daily", logical_date, dags_folder=DAGS, env=env)
        assert result.state == "success", result.output[-3000:]
    assert sorted(str(p.relative_to(root)) for p in root.rglob("*")) == [
        "date=2026-05-02",
        "date=2026-05-02/usage.parquet",
        "date=2026-05-03",
        "date=2026-05-03/usage.parquet",
        "date=2026-05-04",
        "date=2026-05-04/usage.parquet",
    ]
    expected = [
        (service, D.fromisoformat(day), *counters)
        for service, day, *counters in truth_tuples(4321, D(2026, 5, 2), D(2026, 5, 4))
    ]
    types, rows = duckdb_read(f"{root}/date=*/usage.parquet")
    assert types == [(name, TYPES[name][1]) for name in TYPES]
    assert [row[:-1] for row in rows] == expected
    # pyarrow's dataset reader over the same folder, the partition typed as the day it is.
    import pyarrow.dataset as ds

    dataset = ds.dataset(
        root,
        format="parquet",
        partitioning=ds.partitioning(pa.schema([("date", pa.date32())]), flavor="hive"),
    )
    table = dataset.to_table().sort_by([("date", "ascending")])
    assert [tuple(r.values())[:-1] for r in table.to_pylist()] == expected
