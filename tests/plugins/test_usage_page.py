"""
The usage page's fast layer: what it reads from a real SQLite warehouse, how it draws it, and who may see it
(through the plugin's own mount, with Airflow's auth dependency). The real deployment (``airflow standalone``
on each Airflow minor, driven in Chromium) is ``tests/install/usage_page_in_chromium.py``.
"""

from __future__ import annotations

import datetime
import json
import re
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from warehouses import KINDS, Warehouse

from airflow_provider_zendrive._config import configured_budget_gb, usage_settings
from airflow_provider_zendrive._outputs.summary import format_volume
from airflow_provider_zendrive._outputs.tables import (
    REVISION_COLUMNS,
    TABLE_COLUMNS,
    create_revisions_table_sql,
    create_table_sql,
)
from airflow_provider_zendrive._usage.data import CHART_DAYS, MAX_DAYS, UsageQuery, read_usage
from airflow_provider_zendrive._usage.page import CHART_HEIGHT, render_page
from airflow_provider_zendrive.exceptions import ZenDriveInputError

TODAY = datetime.date(2026, 5, 20)
SERVICES = (4242, 77, 9)
HOSTILE = '<script>alert("x")</script>&"\''


def value(service: int, day: datetime.date, salt: int) -> int:
    """A deterministic, uneven counter value."""
    return (service * 7919 + day.toordinal() * 104_729 * salt) % 9_000_000_007 + salt


@pytest.fixture
def warehouse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A SQLite warehouse with 130 days of three services, configured as the page's ``[zendrive]`` table."""
    path = tmp_path / "warehouse.db"
    with sqlite3.connect(path) as conn:
        conn.execute(create_table_sql('"zendrive_daily_usage"'))
        conn.execute(create_revisions_table_sql('"zendrive_usage_revisions"'))
        rows = []
        for service in SERVICES:
            for n in range(130):
                day = TODAY - datetime.timedelta(days=n)
                if service == 9 and day.month == 5:  # one service without rows this month
                    continue
                counters: dict[str, object] = {
                    name: value(service, day, i + 1) for i, name in enumerate(TABLE_COLUMNS)
                }
                counters.update(
                    service_id=service,
                    date=day.isoformat(),
                    fetched_at=f"2026-05-{1 + n % 19:02d} 06:00:00.000000",
                )
                rows.append(tuple(counters[name] for name in TABLE_COLUMNS))
        marks = ", ".join("?" * len(TABLE_COLUMNS))
        conn.executemany(f"INSERT INTO zendrive_daily_usage VALUES ({marks})", rows)  # noqa: S608
        marks = ", ".join("?" * len(REVISION_COLUMNS))
        conn.executemany(
            f"INSERT INTO zendrive_usage_revisions VALUES ({marks})",  # noqa: S608
            [
                (4242, "2026-05-10", "bytes_sent", 10, 20, "2026-05-11 06:00:00", HOSTILE),
                (77, "2026-05-01", "total_requests", 1, 2, "2026-04-01 06:00:00", "too old"),
            ],
        )
    monkeypatch.setenv("AIRFLOW_CONN_ZD_PAGE", json.dumps({"conn_type": "sqlite", "host": str(path)}))
    monkeypatch.setenv("AIRFLOW__ZENDRIVE__SQL_CONN_ID", "zd_page")
    return path


def table_month(path: Path, first: str, last: str, service: int | None = None) -> dict[int, tuple[int, int]]:
    """The table's own answer: ``{service: (requests, bytes_sent)}`` of the days ``first``..``last``."""
    with sqlite3.connect(path) as conn:
        rows = conn.execute(
            "SELECT service_id, SUM(total_requests), SUM(bytes_sent) FROM zendrive_daily_usage "
            "WHERE date BETWEEN ? AND ? AND (? IS NULL OR service_id = ?) GROUP BY service_id",
            (first, last, service, service),
        ).fetchall()
    return {int(r[0]): (int(r[1]), int(r[2])) for r in rows}


def bars(page: str, chart: str) -> list[tuple[str, float, int]]:
    """``(day, height, value)`` of each bar of one chart."""
    (svg,) = re.findall(rf'<svg[^>]*data-chart="{chart}".*?</svg>', page)
    return [
        (day, float(height), int(count))
        for height, day, count in re.findall(
            r'height="([0-9.]+)"[^>]*data-day="([^"]+)" data-value="(\d+)"', svg
        )
    ]


def test_month_to_date_per_service_equals_the_table(warehouse: Path) -> None:
    view = read_usage(usage_settings(), UsageQuery.parse(None, None, TODAY))
    expected = table_month(warehouse, "2026-05-01", "2026-05-20")
    assert {row.service_id: (row.requests, row.bytes_sent) for row in view.rows} == expected
    assert set(expected) == {4242, 77}  # service 9 has no row in May: not listed with zeros
    assert view.services == sorted(SERVICES)
    assert view.last_pull == "2026-05-19 06:00:00"
    assert view.problem is None
    page = render_page(view, "/zendrive/usage")
    for service, (requests, sent) in expected.items():
        (row,) = re.findall(rf'<tr data-service="{service}">.*?</tr>', page)
        assert f">{requests:,}<" in row
        assert f">{format_volume(sent)}<" in row


def test_a_past_month_and_one_service(warehouse: Path) -> None:
    view = read_usage(usage_settings(), UsageQuery.parse("2026-03", "77", TODAY))
    assert {r.service_id: (r.requests, r.bytes_sent) for r in view.rows} == table_month(
        warehouse, "2026-03-01", "2026-03-31", 77
    )
    assert view.through == "2026-03-31"
    assert view.daily[-1].date == "2026-03-31"
    assert view.services == sorted(SERVICES)  # the selector still offers every service
    assert [r.service_id for r in view.revisions] == []  # the revisions shown are service 77's: none recent


def test_the_charts_have_90_days_on_one_scale(warehouse: Path) -> None:
    view = read_usage(usage_settings(), UsageQuery.parse(None, None, TODAY))
    page = render_page(view, "/zendrive/usage")
    first = TODAY - datetime.timedelta(days=CHART_DAYS - 1)
    for chart, column in (("bytes_sent", "bytes_sent"), ("requests", "total_requests")):
        drawn = bars(page, chart)
        assert [day for day, _, _ in drawn] == [
            (first + datetime.timedelta(days=n)).isoformat() for n in range(CHART_DAYS)
        ]
        with sqlite3.connect(warehouse) as conn:
            truth = dict(
                conn.execute(
                    f"SELECT date, SUM({column}) FROM zendrive_daily_usage WHERE date >= ? GROUP BY date",  # noqa: S608
                    (first.isoformat(),),
                ).fetchall()
            )
        largest = max(truth.values())
        for day, height, shown in drawn:
            assert shown == truth[day]
            assert abs(height - truth[day] / largest * CHART_HEIGHT) < 0.01


def test_budget_progress_uses_the_configured_budget(warehouse: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__ZENDRIVE__BUDGET_GB", '{"4242": 50}')
    view = read_usage(usage_settings(), UsageQuery.parse(None, None, TODAY))
    by_service = {row.service_id: row for row in view.rows}
    assert by_service[4242].budget == 50_000_000_000
    assert by_service[4242].budget_share == by_service[4242].bytes_sent / 50e9
    assert by_service[77].budget is None
    page = render_page(view, "/zendrive/usage")
    assert f'data-budget-share="{by_service[4242].budget_share:.6f}"' in page
    assert "50.0 GB" in page


@pytest.mark.parametrize(
    ("text", "budget"),
    [("", None), ("50000", 50000.0), ("12.5", 12.5), ('{"4242": 100, "7": 2.5}', {4242: 100, 7: 2.5})],
)
def test_the_budget_setting(monkeypatch: pytest.MonkeyPatch, text: str, budget: object) -> None:
    monkeypatch.setenv("AIRFLOW__ZENDRIVE__BUDGET_GB", text)
    assert configured_budget_gb() == budget


@pytest.mark.parametrize("text", ["lots", "-5", "0", '{"abc": 5}', '{"1": -1}', "[1, 2]", "true"])
def test_a_budget_setting_that_is_not_one_is_refused_naming_the_option(
    monkeypatch: pytest.MonkeyPatch, text: str
) -> None:
    monkeypatch.setenv("AIRFLOW__ZENDRIVE__BUDGET_GB", text)
    with pytest.raises(ZenDriveInputError, match=r"\[zendrive\] budget_gb"):
        configured_budget_gb()


@pytest.mark.parametrize("table", ["x; DROP TABLE y", "a.b.c.d", "usage--", ""])
def test_table_names_follow_the_operators_rules(monkeypatch: pytest.MonkeyPatch, table: str) -> None:
    monkeypatch.setenv("AIRFLOW__ZENDRIVE__TABLE", table)
    with pytest.raises(ZenDriveInputError, match=r"\[zendrive\] table"):
        usage_settings()


def test_hostile_text_is_escaped_and_no_script_is_served(warehouse: Path) -> None:
    view = read_usage(usage_settings(), UsageQuery.parse(None, None, TODAY))
    assert [r.revised_by for r in view.revisions] == [HOSTILE]  # the last 30 days only
    page = render_page(view, '/zendrive/usage"><script>x</script>')
    assert "<script" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&quot;&#x27;" in page


@pytest.mark.parametrize(
    ("month", "service"),
    [
        ("2026-13", None),
        ("2024-01", None),
        ("2026-06", None),
        ("May", None),
        (None, "4242 OR 1=1"),
        (None, "-1"),
    ],
)
def test_a_month_outside_the_window_or_a_bad_service_is_refused(
    month: str | None, service: str | None
) -> None:
    with pytest.raises(ValueError, match=r"month|service"):
        UsageQuery.parse(month, service, TODAY)


def test_the_month_selector_reaches_back_about_400_days() -> None:
    query = UsageQuery.parse("2025-05", None, TODAY)  # 2025-05-31 is within the last 400 days
    assert query.month.name == "2025-05"
    assert (TODAY - query.month.first).days <= MAX_DAYS + 31


def test_no_table_yet_says_which_dag_fills_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "empty.db"
    monkeypatch.setenv("AIRFLOW_CONN_ZD_PAGE", json.dumps({"conn_type": "sqlite", "host": str(path)}))
    monkeypatch.setenv("AIRFLOW__ZENDRIVE__SQL_CONN_ID", "zd_page")
    view = read_usage(usage_settings(), UsageQuery.parse(None, None, TODAY))
    assert view.problem is not None
    assert "zendrive_daily_usage does not exist yet" in view.problem
    assert "trigger zendrive_daily_billing" in view.problem
    page = render_page(view, "/zendrive/usage")
    assert "data-empty" in page
    assert "<svg" not in page
    with sqlite3.connect(path) as conn:  # the page reads only: it created nothing
        assert conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone() == (0,)


def test_an_empty_table_says_which_dag_fills_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "empty.db"
    with sqlite3.connect(path) as conn:
        conn.execute(create_table_sql('"zendrive_daily_usage"'))
    monkeypatch.setenv("AIRFLOW_CONN_ZD_PAGE", json.dumps({"conn_type": "sqlite", "host": str(path)}))
    monkeypatch.setenv("AIRFLOW__ZENDRIVE__SQL_CONN_ID", "zd_page")
    monkeypatch.setenv("AIRFLOW__ZENDRIVE__REVISIONS_TABLE", "")
    view = read_usage(usage_settings(), UsageQuery.parse(None, None, TODAY))
    assert view.problem is not None
    assert "has no rows in the last 400 days" in view.problem
    assert "zendrive_daily_billing" in view.problem
    assert "Revisions" not in render_page(view, "/zendrive/usage")


def test_a_missing_connection_is_named_without_details(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__ZENDRIVE__SQL_CONN_ID", "no_such_connection")
    view = read_usage(usage_settings(), UsageQuery.parse(None, None, TODAY))
    assert view.problem is not None
    assert view.problem.startswith("The connection 'no_such_connection' cannot be opened")


def test_the_page_never_shows_the_connections_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "pa55-w0rd-never-shown"
    monkeypatch.setenv(
        "AIRFLOW_CONN_ZD_PG",
        json.dumps(
            {
                "conn_type": "postgres",
                "host": "127.0.0.1",
                "port": 1,
                "login": "u",
                "password": secret,
                "schema": "d",
            }
        ),
    )
    monkeypatch.setenv("AIRFLOW__ZENDRIVE__SQL_CONN_ID", "zd_pg")
    view = read_usage(usage_settings(), UsageQuery.parse(None, None, TODAY))
    assert view.problem is not None  # nothing listens on port 1
    assert secret not in render_page(view, "/zendrive/usage")
    assert secret not in json.dumps(view.as_dict())


# -- who may see it: the plugin's app, mounted as Airflow mounts it --------------------------------------------


@pytest.fixture
def client(warehouse: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The plugin's app mounted under its prefix on a bare FastAPI app, with Airflow's auth manager set up."""
    from airflow.api_fastapi.app import init_auth_manager, purge_cached_app
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from airflow_provider_zendrive.plugins.zendrive import ZenDriveUsagePlugin

    monkeypatch.setenv("AIRFLOW__API_AUTH__JWT_SECRET", "usage-page-test-secret-" + "0123456789abcdef" * 4)
    init_auth_manager()
    # Airflow 3.3 checks each token against its revoked tokens: that one table of the metadata DB suffices here.
    from airflow import settings
    from airflow.models.revoked_token import RevokedToken

    RevokedToken.__table__.create(settings.engine, checkfirst=True)
    root = FastAPI()
    (mount,) = ZenDriveUsagePlugin.fastapi_apps
    root.mount(mount["url_prefix"], mount["app"])
    with TestClient(root) as test_client:
        yield test_client
    purge_cached_app()


def request(client: Any, path: str, token: str | None = None, method: str = "GET", **kwargs: Any) -> Any:
    """One request with the session cookie ``_token`` set to ``token`` (None: no cookie)."""
    client.cookies.clear()
    if token is not None:
        client.cookies.set("_token", token)
    return client.request(method, path, **kwargs)


def signed_in_token() -> str:
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    return get_auth_manager().generate_jwt(SimpleAuthManagerUser(username="viewer", role="viewer"))


@pytest.mark.parametrize("path", ["/zendrive/usage", "/zendrive/usage/data", "/zendrive/usage?month=2026-05"])
def test_anonymous_requests_are_refused(client: Any, path: str) -> None:
    assert request(client, path).status_code == 401
    assert request(client, path, "forged").status_code == 403
    assert request(client, path, headers={"Authorization": "Bearer forged"}).status_code == 403


def test_signed_in_users_get_the_page_and_its_data(client: Any, warehouse: Path) -> None:
    token = signed_in_token()
    page = request(client, "/zendrive/usage", token)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "script-src" not in page.headers["content-security-policy"]  # default-src 'none': no script at all
    assert page.headers["cache-control"] == "no-store"
    assert 'action="/zendrive/usage"' in page.text
    data = request(client, "/zendrive/usage/data?service=4242", headers={"Authorization": f"Bearer {token}"})
    assert data.status_code == 200
    body = data.json()
    today = datetime.datetime.now(datetime.UTC).date()
    assert body["month"] == today.strftime("%Y-%m")
    assert body["sql_conn_id"] == "zd_page"
    assert "host" not in json.dumps(body)  # names only, never the connection
    bad = request(client, "/zendrive/usage?month=1999-01", token)
    assert bad.status_code == 400
    assert "month must be" in bad.text
    assert request(client, "/zendrive/usage", token, "POST").status_code == 405  # read-only


def test_importing_the_plugin_imports_neither_fastapi_nor_sql() -> None:
    """What a task runner pays: it loads plugins with the Task SDK, where FastAPI is not imported."""
    code = (
        "import sys, airflow.sdk.plugins_manager; before = set(sys.modules);"
        "import airflow_provider_zendrive.plugins.zendrive;"
        "print(' '.join(sorted(set(sys.modules) - before)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    loaded = done.stdout.split()
    assert "airflow_provider_zendrive.plugins.zendrive" in loaded
    heavy = [
        m
        for m in loaded
        if m.startswith(
            ("fastapi", "starlette", "airflow.providers.common.sql", "airflow_provider_zendrive._")
        )
    ]
    assert heavy == []


# -- the same numbers on every warehouse the operator writes ----------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_every_warehouse_gives_the_tables_numbers(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows and revisions written by the operator's own upsert, read back by the page on SQLite, PostgreSQL, MariaDB."""
    from airflow_provider_zendrive._outputs.rows import daily_rows
    from airflow_provider_zendrive._outputs.tables import upsert_rows
    from airflow_provider_zendrive.testing._data import window_stats

    if kind == "sqlite":
        uri = json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "warehouse.db")})
    else:
        uri = str(request.getfixturevalue(f"{kind}_db")["uri"])
    monkeypatch.setenv("AIRFLOW_CONN_ZD_PAGE", uri)
    monkeypatch.setenv("AIRFLOW__ZENDRIVE__SQL_CONN_ID", "zd_page")
    warehouse = Warehouse(kind, "zd_page")
    first = TODAY - datetime.timedelta(days=99)
    for service in (4242, 77):
        stats = window_stats(service, first, TODAY, counted=lambda d: 0.5 if d == TODAY else 1.0)
        upsert_rows(
            warehouse.hook(),
            "zendrive_daily_usage",
            daily_rows(stats),
            revisions_table="zendrive_usage_revisions",
        )
    upsert_rows(  # today counted in full now: revisions
        warehouse.hook(),
        "zendrive_daily_usage",
        daily_rows(window_stats(4242, TODAY, TODAY)),
        revisions_table="zendrive_usage_revisions",
        fetched_at=datetime.datetime.combine(TODAY, datetime.time(6), tzinfo=datetime.UTC),
    )
    view = read_usage(usage_settings(), UsageQuery.parse(None, None, TODAY))
    sums = warehouse.records(
        "SELECT service_id, SUM(total_requests), SUM(bytes_sent) FROM zendrive_daily_usage "
        "WHERE date >= {mark} AND date <= {mark} GROUP BY service_id",
        ("2026-05-01", TODAY.isoformat()),
    )
    assert {r.service_id: (r.requests, r.bytes_sent) for r in view.rows} == {
        int(s): (int(q), int(b)) for s, q, b in sums
    }
    assert view.problem is None
    assert view.revisions_problem is None
    assert {r.counter for r in view.revisions} >= {"bytes_sent", "total_requests"}
    assert {r.date for r in view.revisions} == {TODAY.isoformat()}
    daily = {d.date: d.bytes_sent for d in view.daily}
    assert daily[TODAY.isoformat()] == sum(
        int(r[0])
        for r in warehouse.records(
            "SELECT bytes_sent FROM zendrive_daily_usage WHERE date = {mark}", (TODAY.isoformat(),)
        )
    )
