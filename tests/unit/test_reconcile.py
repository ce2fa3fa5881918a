"""The monthly reconciliation (``reports.reconcile_month`` and ``ReportMonth``): pure, on the emulator's data."""

from __future__ import annotations

import copy
import datetime
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_zendrive.reports import ReportMonth, reconcile_month
from airflow_provider_zendrive.testing._data import DEMO_SERVICE_ID, window_stats

D = datetime.date
APRIL = ReportMonth(D(2026, 4, 1), D(2026, 4, 30))
#: The counters that add up over days, spelled out here (not imported) so a change in the package shows.
COUNTERS = (
    "total_requests",
    "successful_requests",
    "client_errors",
    "auth_failures",
    "bytes_sent",
    "bytes_received",
)


def april() -> Any:
    return window_stats(DEMO_SERVICE_ID, APRIL.first, APRIL.last)


def table_of(stats: Any) -> dict[str, dict[str, int]]:
    """What zendrive_daily_billing leaves in the table: one row per day, zeros on quiet days."""
    listed = {row["date"]: {name: row[name] for name in COUNTERS} for row in stats["daily"]}
    return {day: listed.get(day, dict.fromkeys(COUNTERS, 0)) for day in APRIL.days}


@pytest.mark.parametrize(
    ("month", "first", "last"),
    [
        ("2026-04", D(2026, 4, 1), D(2026, 4, 30)),
        ("2028-02", D(2028, 2, 1), D(2028, 2, 29)),
        ("2026-12", D(2026, 12, 1), D(2026, 12, 31)),
    ],
)
def test_a_month_is_its_calendar_days(month: str, first: datetime.date, last: datetime.date) -> None:
    parsed = ReportMonth.parse(month)
    assert (parsed.first, parsed.last, parsed.name) == (first, last, month)
    assert len(parsed.days) == (last - first).days + 1
    assert parsed.days[0] == first.isoformat()
    assert parsed.days[-1] == last.isoformat()


@pytest.mark.parametrize("bad", ["2026-4", "2026-13", "2026-00", "26-04", "2026-04-01", "", None])
def test_a_month_that_is_not_yyyy_mm_is_refused(bad: Any) -> None:
    with pytest.raises(ValueError, match="YYYY-MM"):
        ReportMonth.parse(bad)


@pytest.mark.parametrize(
    ("day", "month"), [(D(2026, 5, 1), "2026-04"), (D(2026, 5, 31), "2026-04"), (D(2026, 1, 1), "2025-12")]
)
def test_a_run_reports_the_month_before_its_day(day: datetime.date, month: str) -> None:
    assert ReportMonth.before(day).name == month


def test_a_run_reports_its_param_or_the_month_before_its_logical_date() -> None:
    logical = datetime.datetime(2026, 5, 1, tzinfo=datetime.UTC)
    assert ReportMonth.of_run("2025-02", logical).name == "2025-02"
    assert ReportMonth.of_run(None, logical).name == "2026-04"
    assert ReportMonth.of_run("", logical).name == "2026-04"
    today = datetime.datetime.now(datetime.UTC).date()
    assert ReportMonth.of_run(None, None) == ReportMonth.before(today)  # triggered without a logical date


def test_report_uris_are_absolute(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.chdir(tmp_path)
    assert APRIL.report_uri("s3://bucket/zd/") == "s3://bucket/zd/zendrive-usage-2026-04.csv"
    assert APRIL.report_uri("reports", ".html") == f"file://{tmp_path}/reports/zendrive-usage-2026-04.html"
    monkeypatch.setenv("HOME", str(tmp_path))
    assert APRIL.report_uri("~/r") == f"file://{tmp_path}/r/zendrive-usage-2026-04.csv"


def test_agreeing_sources_reconcile_with_the_totals_of_the_days() -> None:
    stats = april()
    result = reconcile_month(stats, table_of(stats), table="usage")
    assert result.ok
    assert result.problems == ()
    assert result.checked == "30 daily rows == API summary == warehouse table"
    assert dict(result.totals) == {name: stats["summary"][name] for name in COUNTERS}
    assert result.warehouse_rows == 30
    assert result.as_dict()["days"] == 30
    assert result.success_rate == stats["summary"]["successful_requests"] / stats["summary"]["total_requests"]
    result.raise_for_problems()  # nothing to raise


def test_without_the_warehouse_only_the_api_is_compared() -> None:
    result = reconcile_month(april())
    assert result.ok
    assert result.checked == "30 daily rows == API summary"
    assert result.warehouse_rows == 0


def test_a_summary_that_disagrees_with_its_days_is_a_problem() -> None:
    stats = april()
    stats["summary"]["bytes_sent"] += 1
    result = reconcile_month(stats)
    total = stats["summary"]["bytes_sent"]
    assert result.problems == (
        f"bytes_sent: the daily rows add up to {total - 1}, the API summary says {total}",
    )


def test_missing_and_differing_warehouse_days_are_named() -> None:
    stats = april()
    table = copy.deepcopy(table_of(stats))
    del table["2026-04-30"]
    table["2026-04-17"]["bytes_sent"] += 1
    for day in ("2026-04-01", "2026-04-02", "2026-04-03", "2026-04-04", "2026-04-05", "2026-04-06"):
        table[day]["client_errors"] += 1
    result = reconcile_month(stats, table, table="zendrive_daily_usage")
    assert not result.ok
    assert result.problems == (
        "the table zendrive_daily_usage has no row for 1 day(s) of the month (2026-04-30); backfill "
        "zendrive_daily_billing for them",
        "the table zendrive_daily_usage differs from the API on 7 day(s) (2026-04-01, 2026-04-02, 2026-04-03, "
        "2026-04-04, 2026-04-05, ...); rerun zendrive_daily_billing for them",
    )
    assert result.warehouse_rows == 29
    with pytest.raises(AirflowFailException) as raised:  # not retried: retrying cannot change the numbers
        result.raise_for_problems()
    assert "no row for 1 day(s) of the month (2026-04-30)" in str(raised.value)


def test_a_day_outside_the_month_is_a_problem_and_a_partial_month_is_refused() -> None:
    stats = april()
    stats["daily"].append({**stats["daily"][0], "date": "2026-05-01"})
    assert (
        reconcile_month(stats).problems[0] == "the API sent days outside 2026-04-01..2026-04-30: 2026-05-01"
    )
    with pytest.raises(ValueError, match="not one calendar month"):
        reconcile_month(window_stats(DEMO_SERVICE_ID, D(2026, 4, 1), D(2026, 4, 29)))


def test_the_summary_line_states_gb_and_gib() -> None:
    stats = april()
    sent = stats["summary"]["bytes_sent"]
    line = reconcile_month(stats).summary()
    assert line.startswith(f"ZenDRIVE usage of service {DEMO_SERVICE_ID} in April 2026: ")
    assert f"{sent / 1e9:,.1f} GB ({sent / 2**30:,.1f} GiB) sent" in line
    assert line.endswith("Reconciled: 30 daily rows == API summary.")


def test_the_warehouse_month_is_read_and_a_missing_table_fails_at_once(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the connection's common-sql hook (SQLite, a file): the month's rows of one service only."""
    import json
    import sqlite3

    from airflow_provider_zendrive._outputs.tables import create_table_sql
    from airflow_provider_zendrive.reports import read_warehouse_month

    path = tmp_path / "warehouse.db"
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE_UNIT", json.dumps({"conn_type": "sqlite", "host": str(path)}))
    with pytest.raises(AirflowFailException, match="Cannot read the table zendrive_daily_usage"):
        read_warehouse_month("warehouse_unit", "zendrive_daily_usage", DEMO_SERVICE_ID, APRIL)
    stats = april()
    table = table_of(stats)
    with sqlite3.connect(path) as conn:
        conn.execute(create_table_sql('"zendrive_daily_usage"'))
        rows = [(DEMO_SERVICE_ID, day, *counts.values(), 0, "t") for day, counts in table.items()]
        rows += [(DEMO_SERVICE_ID, "2026-05-01", *[1] * 7, "t"), (9, "2026-04-02", *[1] * 7, "t")]
        conn.executemany("INSERT INTO zendrive_daily_usage VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    read = read_warehouse_month("warehouse_unit", "zendrive_daily_usage", DEMO_SERVICE_ID, APRIL)
    assert read == table
    assert reconcile_month(stats, read).ok
