"""ZenDriveStatsOperator in-process: windows, outputs, validation, atomicity, retry policy, secrets."""

from __future__ import annotations

import csv
import datetime
import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import pendulum
import pytest
from zendrive_expected import COLUMNS, truth_rows

from airflow_provider_zendrive.exceptions import (
    ZenDriveAuthError,
    ZenDriveInputError,
    ZenDriveRateLimitError,
    ZenDriveServiceInactiveError,
    ZenDriveUnavailableError,
)
from airflow_provider_zendrive.operators.zendrive import ZenDriveStatsOperator
from airflow_provider_zendrive.testing import DEMO_ACCESS_KEY, DEMO_SERVICE_ID, Fault

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_zendrive.testing import ZenDriveEmulator

D = datetime.date
MAY1, MAY7 = D(2026, 5, 1), D(2026, 5, 7)  # May 1st has no traffic: a zero row


def run(op: ZenDriveStatsOperator, **context: Any) -> Any:
    """Render the templates and execute, as a worker would (without a DAG run)."""
    return op.execute(cast("Context", context))


def make(**kwargs: Any) -> ZenDriveStatsOperator:
    return ZenDriveStatsOperator(task_id="pull", zendrive_conn_id="zendrive_test", **kwargs)


# -- XCom and windows ---------------------------------------------------------------------------------------


def test_xcom_value_is_the_emulators_truth_and_json(
    zendrive_emulator: ZenDriveEmulator, zendrive_conn: str
) -> None:
    stats = run(make(from_date="2026-05-01", to_date=MAY7))
    assert stats == zendrive_emulator.expected_stats(MAY1, MAY7)
    assert json.loads(json.dumps(stats)) == stats
    assert [(r.from_date, r.to_date) for r in zendrive_emulator.requests] == [("2026-05-01", "2026-05-07")]


@pytest.mark.parametrize(
    ("context", "expected", "reason"),
    [
        pytest.param(  # CronDataIntervalTimetable: [May 2, May 3)
            {
                "data_interval_start": pendulum.datetime(2026, 5, 2),
                "data_interval_end": pendulum.datetime(2026, 5, 3),
            },
            (D(2026, 5, 2), D(2026, 5, 2)),
            "data interval",
            id="daily-interval",
        ),
        pytest.param(  # a weekly interval
            {
                "data_interval_start": pendulum.datetime(2026, 5, 4),
                "data_interval_end": pendulum.datetime(2026, 5, 11),
            },
            (D(2026, 5, 4), D(2026, 5, 10)),
            "data interval",
            id="weekly-interval",
        ),
        pytest.param(  # an hourly interval stays on its day
            {
                "data_interval_start": pendulum.datetime(2026, 5, 4, 10),
                "data_interval_end": pendulum.datetime(2026, 5, 4, 11),
            },
            (D(2026, 5, 4), D(2026, 5, 4)),
            "data interval",
            id="hourly-interval",
        ),
        pytest.param(  # Airflow 3 "@daily": CronTriggerTimetable, start == end == logical date
            {
                "data_interval_start": pendulum.datetime(2026, 5, 2),
                "data_interval_end": pendulum.datetime(2026, 5, 2),
                "logical_date": pendulum.datetime(2026, 5, 2),
            },
            (D(2026, 5, 1), D(2026, 5, 1)),
            "day before",
            id="empty-interval",
        ),
        pytest.param(  # a logical date in another time zone counts in UTC
            {"logical_date": pendulum.datetime(2026, 5, 2, 1, tz="Europe/Paris")},
            (D(2026, 4, 30), D(2026, 4, 30)),
            "day before",
            id="logical-date-not-utc",
        ),
    ],
)
def test_default_window_comes_from_the_run(
    zendrive_emulator: ZenDriveEmulator,
    zendrive_conn: str,
    capsys: pytest.CaptureFixture[str],
    context: dict[str, Any],
    expected: tuple[D, D],
    reason: str,
) -> None:
    stats = run(make(), **context)
    assert (stats["from"], stats["to"]) == (expected[0].isoformat(), expected[1].isoformat())
    assert [(r.from_date, r.to_date) for r in zendrive_emulator.requests] == [
        (expected[0].isoformat(), expected[1].isoformat())
    ]
    assert reason in capsys.readouterr().out


def test_no_logical_date_lets_the_api_default_apply(
    zendrive_emulator: ZenDriveEmulator, zendrive_conn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    stats = run(make(), logical_date=None)
    request = zendrive_emulator.requests[0]
    assert (request.from_date, request.to_date) == (None, None)
    assert "API default" in capsys.readouterr().out
    assert len(stats["daily"]) <= 31


def test_explicit_dates_win_over_the_run(zendrive_emulator: ZenDriveEmulator, zendrive_conn: str) -> None:
    stats = run(
        make(from_date=datetime.datetime(2026, 3, 1, 23, tzinfo=datetime.UTC), to_date="2026-03-02"),
        logical_date=pendulum.datetime(2026, 5, 2),
    )
    assert (stats["from"], stats["to"]) == ("2026-03-01", "2026-03-02")


def test_empty_rendered_dates_count_as_not_given(
    zendrive_emulator: ZenDriveEmulator, zendrive_conn: str
) -> None:
    stats = run(make(from_date="", to_date=" "), logical_date=pendulum.datetime(2026, 5, 2))
    assert (stats["from"], stats["to"]) == ("2026-05-01", "2026-05-01")


# -- files ----------------------------------------------------------------------------------------------------


def test_csv_holds_every_day_with_zero_rows(
    zendrive_emulator: ZenDriveEmulator, zendrive_conn: str, tmp_path: Path
) -> None:
    path = tmp_path / "deep" / "er" / "usage.csv"
    run(make(from_date=MAY1, to_date=MAY7, output_path=str(path)))
    text = path.read_text()
    records = list(csv.DictReader(io.StringIO(text)))
    assert text.splitlines()[0] == ",".join(COLUMNS)
    expected = truth_rows(DEMO_SERVICE_ID, MAY1, MAY7)
    assert [{k: int(v) if k != "date" else v for k, v in r.items()} for r in records] == expected
    assert records[0]["date"] == "2026-05-01"
    assert records[0]["total_requests"] == "0"
    assert sorted(p.name for p in path.parent.iterdir()) == ["usage.csv"]  # no temp file left


@pytest.mark.parametrize("suffix", [".jsonl", ".ndjson"])
def test_jsonl_one_object_per_day(
    zendrive_emulator: ZenDriveEmulator, zendrive_conn: str, tmp_path: Path, suffix: str
) -> None:
    path = tmp_path / f"usage{suffix}"
    run(make(from_date=MAY1, to_date=MAY7, output_path=str(path)))
    lines = path.read_text().splitlines()
    assert [json.loads(line) for line in lines] == truth_rows(DEMO_SERVICE_ID, MAY1, MAY7)
    assert list(json.loads(lines[0])) == list(COLUMNS)


def test_json_is_the_stats_dict(
    zendrive_emulator: ZenDriveEmulator, zendrive_conn: str, tmp_path: Path
) -> None:
    path = tmp_path / "usage.data"
    stats = run(make(from_date=MAY1, to_date=MAY7, output_path=f"file://{path}", output_format="json"))
    assert json.loads(path.read_text()) == stats == zendrive_emulator.expected_stats(MAY1, MAY7)


def test_without_fill_missing_days_only_days_with_traffic(
    zendrive_emulator: ZenDriveEmulator, zendrive_conn: str, tmp_path: Path
) -> None:
    path = tmp_path / "usage.jsonl"
    run(make(from_date=MAY1, to_date=MAY7, output_path=str(path), fill_missing_days=False))
    dates = [json.loads(line)["date"] for line in path.read_text().splitlines()]
    assert dates == [f"2026-05-0{day}" for day in range(2, 8)]


def test_object_storage_uri_is_written_through_object_storage_path(
    zendrive_emulator: ZenDriveEmulator, zendrive_conn: str
) -> None:
    from airflow.sdk import ObjectStoragePath
    from airflow.sdk.io import attach
    from fsspec.implementations.memory import MemoryFileSystem

    attach("memory", fs=MemoryFileSystem())  # an object store without credentials, for the test
    run(make(from_date=MAY1, to_date=MAY7, output_path="memory://bucket/zendrive/usage.csv"))
    written = ObjectStoragePath("memory://bucket/zendrive/usage.csv").read_text()
    records = list(csv.DictReader(io.StringIO(written)))
    assert [{k: int(v) if k != "date" else v for k, v in r.items()} for r in records] == truth_rows(
        DEMO_SERVICE_ID, MAY1, MAY7
    )


def test_a_failure_mid_write_leaves_the_old_file_and_no_temp_file(
    zendrive_emulator: ZenDriveEmulator, zendrive_conn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "usage.csv"
    path.write_text("old content\n")

    def broken_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="No space left"):
        run(make(from_date=MAY1, to_date=MAY7, output_path=str(path)))
    assert path.read_text() == "old content\n"
    assert [p.name for p in tmp_path.iterdir()] == ["usage.csv"]


# -- validation before any request ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"output_path": "/tmp/usage.xlsx"}, "suffix"),
        ({"output_path": "/tmp/usage"}, "suffix"),
        ({"from_date": "2026-13-01"}, "not a valid date"),
        ({"from_date": "2026-05-07", "to_date": "2026-05-01"}, "after to_date"),
        ({"sql_conn_id": "zendrive_test"}, "not a common-sql DbApiHook"),
        ({"sql_conn_id": "zd_sqlite", "table": "usage; DROP TABLE x"}, "not a valid table name"),
    ],
)
def test_bad_input_fails_before_any_request(
    zendrive_emulator: ZenDriveEmulator,
    zendrive_conn: str,
    sqlite_conn: tuple[str, Path],
    kwargs: dict[str, Any],
    match: str,
) -> None:
    with pytest.raises(ZenDriveInputError, match=match):
        run(make(**kwargs), logical_date=pendulum.datetime(2026, 5, 2))
    assert zendrive_emulator.requests == []


def test_outputs_that_cannot_work_fail_before_any_request(
    zendrive_emulator: ZenDriveEmulator,
    zendrive_conn: str,
    set_connection: Callable[..., str],
    tmp_path: Path,
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    (tmp_path / "a-folder.csv").mkdir()
    missing = set_connection(
        json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "no" / "w.db")}), "zd_gone"
    )
    good = set_connection(json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "w.db")}), "zd_good")
    cases: list[tuple[dict[str, Any], str]] = [
        ({"output_path": str(tmp_path / "a-folder.csv")}, "is a folder"),
        ({"output_path": str(blocker / "usage.csv")}, "which is a file"),
        ({"output_path": "nosuchfs://bucket/usage.csv"}, "cannot be written"),
        ({"output_path": "s3://bucket/usage.csv"}, "cannot be written"),  # s3fs is not installed
        ({"output_path": "{{ params.p }}", "params": {"p": "relative/usage.csv"}}, "relative"),
        ({"sql_conn_id": good, "table": "a.b.c"}, "SQLite knows the schemas"),
        ({"sql_conn_id": good, "table": "nosuchschema.usage"}, "SQLite knows the schemas"),
        ({"sql_conn_id": missing}, "cannot be opened"),
    ]
    for kwargs, match in cases:
        op = make(from_date=MAY1, to_date=MAY7, **kwargs)
        if "params" in kwargs:
            op.output_path = kwargs["params"]["p"]  # what the template renders to on a worker
        with pytest.raises(ZenDriveInputError, match=match):
            run(op)
        assert zendrive_emulator.requests == [], kwargs


def test_a_literal_relative_output_path_fails_at_parse_time() -> None:
    with pytest.raises(ZenDriveInputError, match="relative"):
        make(output_path="reports/usage.csv")


def test_bad_output_format_fails_at_parse_time_and_init_touches_nothing(
    zendrive_emulator: ZenDriveEmulator,
) -> None:
    with pytest.raises(ZenDriveInputError, match="output_format='xml'"):
        make(output_format="xml")
    op = make(output_path="/tmp/x.csv", sql_conn_id="nope", from_date="{{ ds }}")
    assert "hook" not in op.__dict__
    assert zendrive_emulator.requests == []


def test_import_is_cheap() -> None:
    code = (
        "import sys, airflow.sdk; before = set(sys.modules);"
        "import airflow_provider_zendrive.operators.zendrive;"
        "new = set(sys.modules) - before;"
        "print(sorted(m for m in new if not m.startswith('airflow_provider_zendrive')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "['airflow.sdk.bases.operatorlink']"


# -- errors, retry policy, secrets ----------------------------------------------------------------------------


def test_suspended_service_points_to_the_sensor(
    zendrive_emulator: ZenDriveEmulator, zendrive_conn: str, tmp_path: Path
) -> None:
    zendrive_emulator.suspend(DEMO_ACCESS_KEY)
    with pytest.raises(ZenDriveServiceInactiveError, match="ZenDriveServiceActiveSensor"):
        run(make(from_date=MAY1, to_date=MAY7, output_path=str(tmp_path / "u.csv")))
    assert list(tmp_path.iterdir()) == []


def test_retry_policy_fails_fast_and_waits_out_rate_limits() -> None:
    from airflow.sdk import RetryAction

    from airflow_provider_zendrive.retry_policy import ZenDriveRetryPolicy

    op = make()
    policy = op.retry_policy
    assert isinstance(policy, ZenDriveRetryPolicy)
    for error in (ZenDriveAuthError("x"), ZenDriveInputError("x"), ZenDriveServiceInactiveError("x")):
        assert policy.evaluate(error, 1, 5).action == RetryAction.FAIL
    decision = policy.evaluate(ZenDriveRateLimitError("x", retry_after=42.0), 1, 5)
    assert (decision.action, decision.retry_delay) == (RetryAction.RETRY, datetime.timedelta(seconds=42))
    assert policy.evaluate(ZenDriveUnavailableError("x"), 1, 5).action == RetryAction.DEFAULT
    assert policy.evaluate(RuntimeError("x"), 1, 5).action == RetryAction.DEFAULT
    assert make(retry_policy=None).retry_policy is None
    assert make(default_args={"retry_policy": None}).retry_policy is None


@pytest.mark.parametrize("retry_after", [99999.0, 3e11, float(2**63)])
def test_retry_policy_caps_retry_after_at_the_tasks_max_retry_delay(retry_after: float) -> None:
    from airflow.sdk import RetryAction

    from airflow_provider_zendrive.retry_policy import DEFAULT_RETRY_AFTER_CAP

    error = ZenDriveRateLimitError("x", retry_after=retry_after)
    capped = make(max_retry_delay=datetime.timedelta(minutes=30))
    assert capped.retry_policy is not None
    decision = capped.retry_policy.evaluate(error, 1, 5, {"task": capped})
    assert (decision.action, decision.retry_delay) == (RetryAction.RETRY, datetime.timedelta(minutes=30))
    uncapped = make()
    assert uncapped.retry_policy is not None
    decision = uncapped.retry_policy.evaluate(error, 1, 5, {"task": uncapped})
    assert decision.retry_delay == DEFAULT_RETRY_AFTER_CAP == datetime.timedelta(hours=1)
    assert uncapped.retry_policy.evaluate(error, 1, 5).retry_delay == DEFAULT_RETRY_AFTER_CAP  # no context
    # Airflow adds the delay to a datetime: it must stay representable.
    assert datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC) + decision.retry_delay


def test_outlets_and_extra_link() -> None:
    op = make(output_path="/data/usage.csv", sql_conn_id="warehouse", table="public.usage")
    assert [(a.name, a.uri) for a in op.outlets] == [
        ("file:///data/usage.csv", "file:///data/usage.csv"),
        ("x-zendrive-table://warehouse/public.usage", "x-zendrive-table://warehouse/public.usage"),
    ]
    assert make(output_path="/data/{{ ds }}.csv").outlets == []


def test_outputs_from_xcom_declare_no_outlets() -> None:
    from airflow.sdk import DAG, task

    with DAG("xcom_outputs", schedule=None):

        @task
        def where() -> str:
            return "/data/usage.csv"

        # The operator's parameters are typed as the rendered values, not as the XComArgs Airflow resolves into them.
        op = ZenDriveStatsOperator(
            task_id="pull",
            output_path=where(),  # type: ignore[arg-type]
            sql_conn_id=where(),  # type: ignore[arg-type]
            table=where(),  # type: ignore[arg-type]
        )

    assert op.outlets == []


def test_extra_link_and_template_fields() -> None:
    op = make(output_path="/data/usage.csv")
    assert [link.name for link in op.operator_extra_links] == ["ZenDRIVE dashboard"]
    assert op.template_fields == (
        "zendrive_conn_id",
        "from_date",
        "to_date",
        "output_path",
        "sql_conn_id",
        "table",
        "revisions_table",
        "lookback_days",
    )


def test_secret_never_leaves(
    zendrive_emulator: ZenDriveEmulator,
    set_connection: Callable[..., str],
    sqlite_conn: tuple[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret = "s3cr3t-op-unique-7f1e2d"
    zendrive_emulator.add_account("op-key", secret, 777)
    set_connection(zendrive_emulator.connection_uri("op-key", secret))
    outputs = [tmp_path / name for name in ("u.csv", "u.jsonl", "u.json")]
    with caplog.at_level(logging.DEBUG):
        for path in outputs:
            stats = run(make(from_date=MAY1, to_date=MAY7, output_path=str(path), sql_conn_id=sqlite_conn[0]))
        zendrive_emulator.inject(Fault(status=401))
        with pytest.raises(ZenDriveAuthError) as raised:
            run(make(from_date=MAY1, to_date=MAY7))
    captured = capsys.readouterr()
    assert "Upserted 7 rows" in captured.out  # the task log is there
    texts = [
        captured.out,
        captured.err,
        caplog.text,
        json.dumps(stats),
        str(raised.value),
        repr(raised.value),
        sqlite_conn[1].read_bytes().decode("latin-1"),
    ]
    texts += [path.read_text() for path in outputs]
    assert all(secret not in text for text in texts)
    assert stats["service_id"] == 777


@pytest.mark.parametrize("lookback", [-1, "x", 1.5, True, "-2"])
def test_a_bad_lookback_is_refused(
    lookback: Any, zendrive_emulator: ZenDriveEmulator, zendrive_conn: str
) -> None:
    op = make(from_date=MAY1, to_date=MAY7, lookback_days="{{ params.l }}")
    op.lookback_days = lookback  # what the template rendered to
    with pytest.raises(ZenDriveInputError, match="lookback_days"):
        run(op)
    assert zendrive_emulator.requests == []


def test_lookback_rereads_the_days_before_in_one_request(
    zendrive_emulator: ZenDriveEmulator, zendrive_conn: str
) -> None:
    stats = run(make(lookback_days="3"), logical_date=pendulum.datetime(2026, 5, 8))

    assert (stats["from"], stats["to"]) == ("2026-05-04", "2026-05-07")
    assert [(r.from_date, r.to_date) for r in zendrive_emulator.requests] == [("2026-05-04", "2026-05-07")]
    assert stats == zendrive_emulator.expected_stats(D(2026, 5, 4), D(2026, 5, 7))
