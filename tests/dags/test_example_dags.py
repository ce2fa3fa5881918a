"""
The example DAGs, imported in a DagBag and run for real with ``airflow dags test`` against the emulator.

Every run asserts on what landed (warehouse rows, the CSV file, XComs, Asset events), compared with the
emulator's deterministic truth (:func:`usage_for_day`, :meth:`ZenDriveEmulator.expected_stats`).
"""

from __future__ import annotations

import csv
import datetime
import html.parser
import io
import json
import re
import sqlite3
import warnings
from collections.abc import Mapping
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from zendrive_expected import ADDITIVE, COLUMNS, sqlite_rows, truth_tuples

from airflow_provider_zendrive.testing import DEMO_ACCESS_KEY, DEMO_SECRET_KEY, DEMO_SERVICE_ID

if TYPE_CHECKING:
    from airflow_runner import AirflowRunner, DagRunResult

    from airflow_provider_zendrive.testing import ZenDriveEmulator

EXAMPLE_DAGS = Path(__file__).resolve().parents[2] / "example_dags"
TABLE = "zendrive_daily_usage"
ASSET_URI = "x-zendrive-table://zendrive_warehouse/zendrive_daily_usage"
#: zendrive_daily_billing's lookback_days (tests/dags checks the DAG's task has it).
LOOKBACK_DAYS = 3


def truth_row(service_id: int, day: datetime.date) -> tuple[Any, ...]:
    """The row the table or the CSV must hold for a day: the emulator's numbers, zeros on a quiet day."""
    (row,) = truth_tuples(service_id, day, day)
    return row


def asset_events(result: DagRunResult) -> list[tuple[str, dict[str, Any]]]:
    with sqlite3.connect(result.home / "airflow.db") as conn:
        rows = conn.execute(
            "SELECT a.uri, e.extra FROM asset_event e JOIN asset a ON a.id = e.asset_id ORDER BY e.id"
        ).fetchall()
    return [(uri, json.loads(extra) if isinstance(extra, str) else extra) for uri, extra in rows]


def mapped_tasks(result: DagRunResult, task_id: str) -> dict[str, str]:
    """``{rendered_map_index: state}`` of a mapped task."""
    with sqlite3.connect(result.home / "airflow.db") as conn:
        rows = conn.execute(
            "SELECT rendered_map_index, state FROM task_instance WHERE dag_id = ? AND task_id = ? AND map_index >= 0",
            (result.dag_id, task_id),
        ).fetchall()
    return dict(rows)


@pytest.fixture
def warehouse(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A SQLite warehouse file and the environment defining the ``zendrive_warehouse`` connection."""
    path = tmp_path / "warehouse.db"
    return path, {"AIRFLOW_CONN_ZENDRIVE_WAREHOUSE": json.dumps({"conn_type": "sqlite", "host": str(path)})}


def fill_warehouse(path: Path, service_id: int, first: datetime.date, last: datetime.date) -> None:
    """What zendrive_daily_billing leaves after a backfill of the window, in the package's own schema."""
    from airflow_provider_zendrive._outputs.tables import create_table_sql

    with sqlite3.connect(path) as conn:
        conn.execute(create_table_sql(f'"{TABLE}"'))
        conn.executemany(
            f"INSERT INTO {TABLE} VALUES ({', '.join('?' * (len(COLUMNS) + 1))})",  # noqa: S608
            [(*row, "2026-01-01 00:00:00") for row in truth_tuples(service_id, first, last)],
        )


class _Text(html.parser.HTMLParser):
    """The text a reader sees in an HTML part (what is outside tags, ``<title>``/``<style>`` left out)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._hidden += tag in ("title", "style", "head")

    def handle_endtag(self, tag: str) -> None:
        self._hidden -= tag in ("title", "style", "head")

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.chunks.append(data)


def mail_parts(message: EmailMessage) -> tuple[str, str]:
    """
    The text part and the HTML part's visible text, as a mail client finds them: the message must be
    ``multipart/alternative`` of exactly ``text/plain`` then ``text/html``.
    """
    assert message.get_content_type() == "multipart/alternative"
    parts = list(message.iter_parts())
    assert [part.get_content_type() for part in parts] == ["text/plain", "text/html"]
    assert "\n" not in str(message["Subject"])
    plain, html_part = (message.get_body((kind,)) for kind in ("plain", "html"))
    assert plain is not None
    assert html_part is not None
    reader = _Text()
    reader.feed(html_part.get_content())
    return plain.get_content().replace("\r\n", "\n"), "".join(reader.chunks)  # CRLF: SMTP's line breaks


def numbers(text: str) -> list[str]:
    """Every number in a text, in order (``1,234.5`` stays one)."""
    return re.findall(r"[0-9][0-9,.]*[0-9]|[0-9]", text)


def assert_success(result: DagRunResult) -> None:
    assert result.state == "success", result.output[-5000:]
    assert result.returncode == 0, result.output[-5000:]


# -- parsing ----------------------------------------------------------------------------------------------------


def test_example_dags_import_without_errors_or_warnings() -> None:
    from airflow.dag_processing.dagbag import DagBag

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bag = DagBag(dag_folder=str(EXAMPLE_DAGS))
    assert bag.import_errors == {}
    assert bag.captured_warnings == {}
    assert set(bag.dag_ids) == {
        "zendrive_daily_billing",
        "zendrive_monthly_report",
        "zendrive_fleet",
        "zendrive_history",
        "zendrive_budget_alerts",
        "zendrive_warehouse_load",
    }
    for dag_id in bag.dag_ids:
        dag = bag.dags[dag_id]
        assert dag is not None
        assert "needs" in (dag.doc_md or ""), f"{dag_id} must say what it does and what it needs"
        for task in dag.tasks:
            if task.task_type in ("ZenDriveStatsOperator", "ZenDriveServiceActiveSensor"):
                assert task.pool == "zendrive_api", f"{dag_id}.{task.task_id} must run in the pool"


#: reStructuredText that CommonMark shows literally: a ``::`` literal-block marker, roles, directives,
#: ``link`_`` references.
RST_MARKUP = re.compile(r"::|:(?:class|func|meth|mod|ref|attr|doc):`|^\.\. [\w-]+::|`_|^\.\. _", re.MULTILINE)
#: Lines that are SQL statements or shell commands: they must be in a fenced code block.
SQL_OR_SHELL = re.compile(
    r"^\s*(?:SELECT|INSERT|UPDATE|DELETE|CREATE|WITH)\s.+|^\s*\$ |(?:^|\s)(?:airflow|pip|make|curl)(?: [\w.\-=\"']+){3,}",
    re.MULTILINE,
)


def test_every_example_dags_doc_md_is_markdown() -> None:
    """
    Airflow renders ``doc_md`` as Markdown: parsed as CommonMark, no reST markup shows literally, and every
    SQL or shell example is a fenced code block. Every file in example_dags/ is checked, new ones too.
    """
    from airflow.dag_processing.dagbag import DagBag
    from markdown_it import MarkdownIt

    bag = DagBag(dag_folder=str(EXAMPLE_DAGS))
    docs: dict[str, list[str]] = {}
    for dag in bag.dags.values():
        docs.setdefault(Path(dag.fileloc).name, []).append(dag.doc_md or "")
    files = sorted(path.name for path in EXAMPLE_DAGS.glob("*.py") if not path.name.startswith("_"))
    assert sorted(docs) == files, "every example file defines a DAG"
    parser = MarkdownIt("commonmark")
    fences = 0
    for name, texts in docs.items():
        for text in texts:
            assert text.strip(), f"{name}: a DAG without doc_md"
            tokens = parser.parse(text)
            assert "code_block" not in {t.type for t in tokens}, f"{name}: an indented code block; fence it"
            fences += sum(t.type == "fence" for t in tokens)
            for token in tokens:
                if token.type != "inline":
                    continue
                for child in token.children or []:
                    if child.type not in ("text", "code_inline"):
                        continue
                    found = RST_MARKUP.search(child.content) if child.type == "text" else None
                    assert found is None, f"{name}: reST markup {found.group()!r} in {child.content!r}"
                    example = SQL_OR_SHELL.search(child.content)
                    assert example is None, f"{name}: {example.group()!r} is not in a code block"
    assert fences >= 2, "the SQL and shell examples of zendrive_daily_billing are fenced"


def test_daily_billing_is_backfill_friendly() -> None:
    from airflow.dag_processing.dagbag import DagBag

    from airflow_provider_zendrive.operators.zendrive import ZenDriveStatsOperator

    dag = DagBag(dag_folder=str(EXAMPLE_DAGS / "zendrive_daily_billing.py")).dags["zendrive_daily_billing"]
    assert dag is not None
    task = dag.get_task("pull_daily_usage")
    assert isinstance(task, ZenDriveStatsOperator)
    assert task.retries is not None
    assert task.retries >= 3
    assert task.retry_exponential_backoff in (
        True,
        2.0,
    )  # doubling waits; 3.1 takes a bool, 3.3 stores it as is
    assert task.max_retry_delay is not None
    assert [(outlet.name, outlet.uri) for outlet in task.outlets] == [(ASSET_URI, ASSET_URI)]
    assert dag.max_active_runs > 1
    assert task.lookback_days == LOOKBACK_DAYS  # late data is corrected by the next runs


def test_warehouse_load_lands_a_daily_parquet_partition_then_merges_on_the_key() -> None:
    """Parsed and wired only: the cloud load is not run here (the Parquet route is, in tests/operators)."""
    from airflow.dag_processing.dagbag import DagBag
    from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator

    from airflow_provider_zendrive.operators.zendrive import ZenDriveStatsOperator

    path = EXAMPLE_DAGS / "zendrive_warehouse_load.py"
    dag = DagBag(dag_folder=str(path)).dags["zendrive_warehouse_load"]
    assert dag is not None
    land, load = dag.get_task("land_parquet"), dag.get_task("merge_into_warehouse")
    assert isinstance(land, ZenDriveStatsOperator)
    assert isinstance(load, SQLExecuteQueryOperator)  # Snowflake, the default
    assert (
        land.output_path == "s3://zendrive-lake/zendrive_usage/date={{ macros.ds_add(ds, -1) }}/usage.parquet"
    )
    assert land.output_conn_id == "aws_default"
    assert load.conn_id == "snowflake_default"
    assert dag.task_dict["land_parquet"].downstream_task_ids == {"merge_into_warehouse"}
    statements = [" ".join(str(statement).split()) for statement in load.sql]
    assert statements[2].startswith(
        "COPY INTO zendrive_usage_load FROM @zendrive_lake/date={{ macros.ds_add(ds, -1) }}/"
    )
    assert "TYPE = PARQUET" in statements[2]
    assert statements[3].startswith(
        "MERGE INTO zendrive_daily_usage AS t USING zendrive_usage_load AS s "
        "ON t.service_id = s.service_id AND t.date = s.date"
    )
    # The BigQuery variant needs the Google provider to parse; its script is checked as text.
    source = path.read_text()
    assert "LOAD DATA INTO TEMP TABLE zendrive_usage_load" in source
    assert "MERGE `{BQ_DATASET}.zendrive_daily_usage` AS t USING zendrive_usage_load AS s" in source
    assert (
        source.count("ON t.service_id = s.service_id AND t.date = s.date") == 2
    )  # Snowflake's and BigQuery's
    # doc_md is Markdown: no reStructuredText-only markup.
    doc = dag.doc_md or ""
    assert not re.search(r"::\s*$|^\.\. |:(doc|ref|class|func|mod):`", doc, re.M), doc


# -- real runs --------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_daily_billing_upserts_the_day_before_the_logical_date_and_its_lookback(
    airflow_runner: AirflowRunner, zendrive_emulator: ZenDriveEmulator, warehouse: tuple[Path, dict[str, str]]
) -> None:
    path, env = warehouse
    env = {**env, "AIRFLOW_CONN_ZENDRIVE_DEFAULT": zendrive_emulator.connection_uri()}
    day = datetime.date(2026, 5, 1)
    first = day - datetime.timedelta(days=LOOKBACK_DAYS)

    result = airflow_runner.run("zendrive_daily_billing", "2026-05-02", dags_folder=EXAMPLE_DAGS, env=env)
    assert_success(result)
    assert sqlite_rows(path) == truth_tuples(DEMO_SERVICE_ID, first, day)
    # One request for the day before the logical date and the lookback before it.
    assert [(r.from_date, r.to_date) for r in zendrive_emulator.requests] == [("2026-04-28", "2026-05-01")]
    assert result.xcom("pull_daily_usage") == zendrive_emulator.expected_stats(first, day)
    assert asset_events(result) == [
        (ASSET_URI, {"from": "2026-04-28", "to": "2026-05-01", "rows": LOOKBACK_DAYS + 1, "revised": 0})
    ]
    assert result.task_instance("pull_daily_usage")["pool"] == "zendrive_api"
    assert DEMO_SECRET_KEY not in result.all_text()

    # A rerun repairs the days in place (an upsert on (service_id, date)), never duplicating them, and says so.
    with sqlite3.connect(path) as conn:
        conn.execute(f"UPDATE {TABLE} SET total_requests = 0, bytes_sent = 0 WHERE date = '2026-04-30'")  # noqa: S608
    rerun = airflow_runner.run("zendrive_daily_billing", "2026-05-02", dags_folder=EXAMPLE_DAGS, env=env)
    assert_success(rerun)
    assert sqlite_rows(path) == truth_tuples(DEMO_SERVICE_ID, first, day)
    assert truth_row(DEMO_SERVICE_ID, datetime.date(2026, 4, 30))[2] > 0  # a day with traffic was damaged
    assert asset_events(rerun)[-1][1]["revised"] == 1


@pytest.mark.slow
def test_daily_billing_emails_its_summary_through_a_real_smtp_server(
    airflow_runner: AirflowRunner, zendrive_emulator: ZenDriveEmulator, warehouse: tuple[Path, dict[str, str]]
) -> None:
    from smtp_server import smtp_server

    env = warehouse[1]
    first, last = datetime.date(2026, 4, 28), datetime.date(2026, 5, 1)  # the run's day and its lookback
    with smtp_server() as mailbox:
        env = {
            **env,
            "AIRFLOW_CONN_ZENDRIVE_DEFAULT": zendrive_emulator.connection_uri(),
            "AIRFLOW_CONN_SMTP_DEFAULT": mailbox.connection_json(),
            "ZENDRIVE_SUMMARY_TO": "billing@example.com, ops@example.com",
            "ZENDRIVE_SUMMARY_FROM": "zendrive@example.com",
        }
        result = airflow_runner.run("zendrive_daily_billing", "2026-05-02", dags_folder=EXAMPLE_DAGS, env=env)
        assert_success(result)

    ((recipients, message),) = mailbox.messages
    assert recipients == ["billing@example.com", "ops@example.com"]
    assert message["From"] == "zendrive@example.com"
    summary = zendrive_emulator.expected_stats(first, last)["summary"]
    rate = 100 * summary["successful_requests"] / summary["total_requests"]
    assert message["Subject"] == (
        f"ZenDRIVE service {DEMO_SERVICE_ID}, 2026-04-28 to 2026-05-01: {summary['total_requests']:,} requests, "
        f"{rate:.2f} % successful, {summary['bytes_sent'] / 1e9:,.1f} GB sent"
    )
    text, html_text = mail_parts(message)
    assert numbers(html_text) == numbers(text)  # the same numbers in both parts
    assert text.strip() == result.xcom("pull_daily_usage", key="summary")
    assert f"{summary['successful_requests']:,} successful" in text
    assert f"{summary['bytes_received'] / 1e9:,.1f} GB received" in text
    assert "Revised rows: 0" in text
    assert result.xcom("pull_daily_usage", key="summary").splitlines()[0] == message["Subject"]
    assert DEMO_SECRET_KEY not in message.as_string()
    assert DEMO_SECRET_KEY not in result.all_text()


@pytest.mark.slow
def test_daily_billing_lookback_corrects_late_data_and_reports_the_revision(
    airflow_runner: AirflowRunner, zendrive_emulator: ZenDriveEmulator, warehouse: tuple[Path, dict[str, str]]
) -> None:
    """Two consecutive daily runs against late data: every day but the newest ends up final."""
    path, env = warehouse
    env = {**env, "AIRFLOW_CONN_ZENDRIVE_DEFAULT": zendrive_emulator.connection_uri()}
    # Yesterday is only partly counted on the day each run happens (the run for logical date D runs on D).
    zendrive_emulator.late_days = 1
    day1, day2 = (
        datetime.date(2026, 5, 4),
        datetime.date(2026, 5, 5),
    )  # days with traffic in the emulator's data
    assert truth_row(DEMO_SERVICE_ID, day1)[2] > 0

    zendrive_emulator.today = day1 + datetime.timedelta(days=1)
    first = airflow_runner.run("zendrive_daily_billing", "2026-05-05", dags_folder=EXAMPLE_DAGS, env=env)
    assert_success(first)
    partial = {row[1]: row for row in sqlite_rows(path)}
    assert partial[day1.isoformat()] != truth_row(DEMO_SERVICE_ID, day1)  # the newest day is still partial
    assert asset_events(first)[-1][1]["revised"] == 0

    zendrive_emulator.today = day2 + datetime.timedelta(days=1)
    second = airflow_runner.run("zendrive_daily_billing", "2026-05-06", dags_folder=EXAMPLE_DAGS, env=env)
    assert_success(second)
    landed = sqlite_rows(path)
    start = day1 - datetime.timedelta(days=LOOKBACK_DAYS)
    assert [row for row in landed if row[1] != day2.isoformat()] == truth_tuples(DEMO_SERVICE_ID, start, day1)
    assert [row for row in landed if row[1] == day2.isoformat()] != truth_tuples(DEMO_SERVICE_ID, day2, day2)
    # The revision of day1 is told: one WARNING line with the old and new counters, and the asset event.
    assert asset_events(second)[-1] == (
        ASSET_URI,
        {"from": "2026-05-02", "to": day2.isoformat(), "rows": LOOKBACK_DAYS + 1, "revised": 1},
    )
    log = second.log("pull_daily_usage")
    final = dict(zip(COLUMNS, truth_row(DEMO_SERVICE_ID, day1), strict=True))
    old = dict(zip(COLUMNS, partial[day1.isoformat()], strict=True))
    revised = [line for line in log.splitlines() if day1.isoformat() in line and "revised" in line.lower()]
    assert len(revised) == 1, log[-3000:]
    assert f"{old['total_requests']}" in revised[0].replace(",", "")
    assert f"{final['total_requests']}" in revised[0].replace(",", "")
    # ... and the audit trail holds each changed value, with the run that changed it.
    with sqlite3.connect(path) as conn:
        trail = conn.execute(
            "SELECT date, counter, old_value, new_value, revised_by FROM zendrive_usage_revisions ORDER BY counter"
        ).fetchall()
    changed = [name for name in COLUMNS[2:] if old[name] != final[name]]
    assert [row[1] for row in trail] == sorted(changed)
    assert {(row[0], row[2], row[3]) for row in trail} == {
        (day1.isoformat(), old[n], final[n]) for n in changed
    }
    assert all(row[4].startswith("zendrive_daily_billing.pull_daily_usage run ") for row in trail)
    assert DEMO_SECRET_KEY not in second.all_text()


@pytest.mark.slow
def test_history_loads_three_years_in_three_requests_and_a_rerun_changes_nothing(
    airflow_runner: AirflowRunner, zendrive_emulator: ZenDriveEmulator, warehouse: tuple[Path, dict[str, str]]
) -> None:
    path, env = warehouse
    env = {**env, "AIRFLOW_CONN_ZENDRIVE_DEFAULT": zendrive_emulator.connection_uri()}
    first, last = datetime.date(2023, 1, 1), datetime.date(2025, 12, 31)  # 1,096 days
    conf = {"from": first.isoformat(), "to": last.isoformat()}

    result = airflow_runner.run("zendrive_history", dags_folder=EXAMPLE_DAGS, env=env, conf=conf, timeout=300)
    assert_success(result)
    assert len(zendrive_emulator.requests) == 3  # ceil(1096 / 366)
    assert [(r.from_date, r.to_date) for r in zendrive_emulator.requests] == [
        ("2023-01-01", "2024-01-01"),
        ("2024-01-02", "2025-01-01"),
        ("2025-01-02", "2025-12-31"),
    ]
    assert sqlite_rows(path) == truth_tuples(DEMO_SERVICE_ID, first, last)  # one row per day, quiet days too
    assert asset_events(result) == [
        (ASSET_URI, {"from": "2023-01-01", "to": "2025-12-31", "rows": 1096, "revised": 0})
    ]

    rerun = airflow_runner.run("zendrive_history", dags_folder=EXAMPLE_DAGS, env=env, conf=conf, timeout=300)
    assert_success(rerun)
    assert len(zendrive_emulator.requests) == 6
    assert sqlite_rows(path) == truth_tuples(DEMO_SERVICE_ID, first, last)
    assert asset_events(rerun)[-1][1]["revised"] == 0
    assert DEMO_SECRET_KEY not in result.all_text() + rerun.all_text()


@pytest.mark.slow
def test_history_refuses_a_bad_range_before_any_request(
    airflow_runner: AirflowRunner, zendrive_emulator: ZenDriveEmulator, warehouse: tuple[Path, dict[str, str]]
) -> None:
    path, env = warehouse
    env = {**env, "AIRFLOW_CONN_ZENDRIVE_DEFAULT": zendrive_emulator.connection_uri()}
    result = airflow_runner.run(
        "zendrive_history", dags_folder=EXAMPLE_DAGS, env=env, conf={"from": "2026-03-01", "to": "2026-02-01"}
    )
    assert result.state == "failed", result.output[-3000:]
    assert zendrive_emulator.requests == []
    assert "2026-03-01" in result.log("load_history")
    if path.exists():  # nothing was written
        with sqlite3.connect(path) as conn:
            found = conn.execute("SELECT COUNT(*) FROM sqlite_master WHERE name = ?", (TABLE,)).fetchone()
        assert found == (0,)


@pytest.mark.slow
def test_budget_alerts_email_each_crossing_once(
    airflow_runner: AirflowRunner, warehouse: tuple[Path, dict[str, str]]
) -> None:
    from smtp_server import smtp_server

    path, env = warehouse
    first, last = datetime.date(2026, 4, 1), datetime.date(2026, 4, 30)
    fill_warehouse(path, DEMO_SERVICE_ID, first, last)
    sent = sum(row[COLUMNS.index("bytes_sent")] for row in truth_tuples(DEMO_SERVICE_ID, first, last))
    with smtp_server() as mailbox:
        env = {
            **env,
            "AIRFLOW_CONN_SMTP_DEFAULT": mailbox.connection_json(),
            "ZENDRIVE_ALERT_TO": "billing@example.com",
            "AIRFLOW__ZENDRIVE__BUDGET_GB": str(sent / 1.15 / 1e9),  # April ends at 115 % of the budget
        }
        result = airflow_runner.run("zendrive_budget_alerts", dags_folder=EXAMPLE_DAGS, env=env)
        assert_success(result)
        again = airflow_runner.run("zendrive_budget_alerts", dags_folder=EXAMPLE_DAGS, env=env)
        assert_success(again)

    subjects = [message["Subject"] for _, message in mailbox.messages]
    assert [s.split(" reached ")[1].split(" of ")[0] for s in subjects] == ["50 %", "80 %", "100 %"], subjects
    assert all(s.startswith(f"ZenDRIVE service {DEMO_SERVICE_ID} reached ") for s in subjects)
    for (_, message), threshold, alert in zip(
        mailbox.messages, (50, 80, 100), result.xcom("check_budget"), strict=True
    ):
        text, html_text = mail_parts(message)
        assert text.strip() == alert
        assert numbers(html_text) == numbers(text)  # the same numbers in both parts
        alert_id = f"zendrive-budget.{DEMO_SERVICE_ID}.2026-04.{threshold}"
        assert message["Message-ID"] == f"<{alert_id}@airflow-provider-zendrive>"
        assert f"Alert id: {alert_id}" in text
    assert [recipients for recipients, _ in mailbox.messages] == [["billing@example.com"]] * 3
    assert len(result.xcom("check_budget")) == 3
    assert again.xcom("check_budget") == []  # the second run finds every crossing claimed


@pytest.mark.slow
def test_monthly_report_writes_and_reconciles_the_previous_month(
    airflow_runner: AirflowRunner,
    zendrive_emulator: ZenDriveEmulator,
    warehouse: tuple[Path, dict[str, str]],
    tmp_path: Path,
) -> None:
    path, env = warehouse
    first, last = datetime.date(2026, 4, 1), datetime.date(2026, 4, 30)
    fill_warehouse(path, DEMO_SERVICE_ID, first, last)
    # Suspended for the first two checks: the sensor defers, the trigger polls until the service is back.
    zendrive_emulator.suspend(DEMO_ACCESS_KEY, requests=2)
    from smtp_server import smtp_server

    with smtp_server() as mailbox:
        env = {
            **env,
            "AIRFLOW_CONN_ZENDRIVE_DEFAULT": zendrive_emulator.connection_uri(),
            "AIRFLOW_CONN_SMTP_DEFAULT": mailbox.connection_json(),
            "ZENDRIVE_REPORT_BASE": str(tmp_path / "reports"),
            "ZENDRIVE_REPORT_TO": "billing@example.com",
            "ZENDRIVE_POKE_INTERVAL": "0.5",
        }
        result = airflow_runner.run(
            "zendrive_monthly_report", "2026-05-01", dags_folder=EXAMPLE_DAGS, env=env
        )
    assert_success(result)
    assert [r.status for r in zendrive_emulator.requests] == [403, 403, 200, 200]
    assert (zendrive_emulator.requests[-1].from_date, zendrive_emulator.requests[-1].to_date) == (
        "2026-04-01",
        "2026-04-30",
    )

    report = tmp_path / "reports" / "zendrive-usage-2026-04.csv"
    lines = list(csv.reader(io.StringIO(report.read_text())))
    assert tuple(lines[0]) == COLUMNS
    assert [
        tuple(int(v) if n != "date" else v for n, v in zip(COLUMNS, line, strict=True)) for line in lines[1:]
    ] == truth_tuples(DEMO_SERVICE_ID, first, last)

    summary: Mapping[str, Any] = zendrive_emulator.expected_stats(first, last)["summary"]  # indexed by name
    totals = result.xcom("reconcile")
    assert {name: totals[name] for name in ADDITIVE} == {name: summary[name] for name in ADDITIVE}
    assert totals["days"] == totals["warehouse_rows"] == 30
    assert totals["report"] == report.as_uri()
    assert totals["success_rate"] == pytest.approx(summary["successful_requests"] / summary["total_requests"])
    gib = f"{summary['bytes_sent'] / 2**30:,.1f} GiB"
    assert gib in result.log("reconcile"), "the human summary gives the volume in GiB"

    # The HTML report next to the CSV, and the same page by email.
    page = tmp_path / "reports" / "zendrive-usage-2026-04.html"
    assert totals["html_report"] == page.as_uri()
    html = page.read_text()
    assert "<svg" in html
    assert "<script" not in html
    assert f"{summary['total_requests']:,}" in html
    ((recipients, message),) = mailbox.messages
    assert recipients == ["billing@example.com"]
    assert message["Subject"] == f"ZenDRIVE usage report, service {DEMO_SERVICE_ID}, 2026-04: reconciled"
    # The email: a text part with the totals and the result, an HTML part without SVG (see tests/report/).
    text, html_text = mail_parts(message)
    assert "Reconciled: 30 daily rows == API summary == warehouse table" in text
    assert (
        f"Requests:             {summary['total_requests']:,} ({summary['successful_requests']:,} successful"
        in text
    )
    assert f"{summary['bytes_sent'] / 1e9:,.1f} GB ({gib})" in text
    assert f"{summary['total_requests']:,}" in html_text
    assert DEMO_SECRET_KEY not in message.as_string() + html


@pytest.mark.slow
def test_monthly_report_fails_when_the_warehouse_disagrees(
    airflow_runner: AirflowRunner,
    zendrive_emulator: ZenDriveEmulator,
    warehouse: tuple[Path, dict[str, str]],
    tmp_path: Path,
) -> None:
    path, env = warehouse
    fill_warehouse(path, DEMO_SERVICE_ID, datetime.date(2026, 4, 1), datetime.date(2026, 4, 30))
    with sqlite3.connect(path) as conn:
        conn.execute(f"UPDATE {TABLE} SET bytes_sent = bytes_sent + 1 WHERE date = '2026-04-17'")  # noqa: S608
        conn.execute(f"DELETE FROM {TABLE} WHERE date = '2026-04-30'")  # noqa: S608
    env = {
        **env,
        "AIRFLOW_CONN_ZENDRIVE_DEFAULT": zendrive_emulator.connection_uri(),
        "ZENDRIVE_REPORT_BASE": str(tmp_path / "reports"),
    }

    result = airflow_runner.run("zendrive_monthly_report", "2026-05-01", dags_folder=EXAMPLE_DAGS, env=env)
    assert result.state == "failed", result.output[-5000:]
    assert result.task_states()["reconcile"] == "failed"
    assert result.task_states()["pull_month"] == "success"
    log = result.log("reconcile")
    assert "no row for 1 day(s) of the month (2026-04-30)" in log
    assert "differs from the API on 1 day(s) (2026-04-17)" in log
    assert result.task_instance("reconcile")["try_number"] == 1, "a mismatch is not retried"
    # The HTML report is written anyway, and says what failed.
    html = (tmp_path / "reports" / "zendrive-usage-2026-04.html").read_text()
    assert "no row for 1 day(s) of the month (2026-04-30)" in html


@pytest.mark.slow
def test_fleet_pulls_every_service_into_one_table(
    airflow_runner: AirflowRunner, zendrive_emulator: ZenDriveEmulator, warehouse: tuple[Path, dict[str, str]]
) -> None:
    path, env = warehouse
    fleet = {"zd_fleet_acme": ("acme-key", "acme-secret-0123456789", 2001)}
    fleet["zd_fleet_globex"] = ("globex-key", "globex-secret-0123456789", 2002)
    for access_key, secret_key, service_id in fleet.values():
        zendrive_emulator.add_account(access_key, secret_key, service_id)
    env = {**env, "AIRFLOW_CONN_ZENDRIVE_DEFAULT": zendrive_emulator.connection_uri()}
    for conn_id, (access_key, secret_key, _) in fleet.items():
        env[f"AIRFLOW_CONN_{conn_id.upper()}"] = zendrive_emulator.connection_uri(access_key, secret_key)
    conn_ids = ["zendrive_default", *fleet]
    env["AIRFLOW_VAR_ZENDRIVE_FLEET_CONN_IDS"] = json.dumps(conn_ids)

    result = airflow_runner.run(
        "zendrive_fleet", "2026-05-02", dags_folder=EXAMPLE_DAGS, env=env, conf={"batch_size": 2}
    )
    assert_success(result)
    assert mapped_tasks(result, "pull_daily_usage") == {
        "zendrive_default..zd_fleet_acme (2)": "success",
        "zd_fleet_globex (1)": "success",
    }
    day = datetime.date(2026, 5, 1)
    first = day - datetime.timedelta(days=LOOKBACK_DAYS)
    assert sqlite_rows(path) == [
        row for service_id in (DEMO_SERVICE_ID, 2001, 2002) for row in truth_tuples(service_id, first, day)
    ]
    assert {(r.from_date, r.to_date) for r in zendrive_emulator.requests} == {("2026-04-28", "2026-05-01")}
    assert sorted(r.access_key or "" for r in zendrive_emulator.requests) == sorted(
        [DEMO_ACCESS_KEY, "acme-key", "globex-key"]
    )
    events = asset_events(result)
    assert {uri for uri, _ in events} == {ASSET_URI}
    assert [[s["conn_id"] for s in extra["services"]] for _, extra in events] == [conn_ids[:2], conn_ids[2:]]
    log = result.log("pull_daily_usage")
    assert all(f"{conn_id}: ZenDRIVE service" in log for conn_id in conn_ids)  # one summary per service


@pytest.mark.slow
def test_fleet_lookback_corrects_late_data_with_an_audit_trail(
    airflow_runner: AirflowRunner, zendrive_emulator: ZenDriveEmulator, warehouse: tuple[Path, dict[str, str]]
) -> None:
    """Two consecutive fleet runs against late data: every day but the newest ends final, for each service."""
    path, env = warehouse
    zendrive_emulator.add_account("acme-key", "acme-secret-0123456789", 2003)
    env = {
        **env,
        "AIRFLOW_CONN_ZENDRIVE_DEFAULT": zendrive_emulator.connection_uri(),
        "AIRFLOW_CONN_ZD_FLEET_ACME": zendrive_emulator.connection_uri("acme-key", "acme-secret-0123456789"),
        "AIRFLOW_VAR_ZENDRIVE_FLEET_CONN_IDS": json.dumps(["zendrive_default", "zd_fleet_acme"]),
    }
    services = (DEMO_SERVICE_ID, 2003)  # both have traffic on day1 and day2
    zendrive_emulator.late_days = 1  # the day before each run's day is only partly counted when it runs
    day1, day2 = datetime.date(2026, 5, 4), datetime.date(2026, 5, 5)
    assert all(truth_row(service_id, day1)[2] > 0 for service_id in services)

    zendrive_emulator.today = day2
    first = airflow_runner.run("zendrive_fleet", "2026-05-05", dags_folder=EXAMPLE_DAGS, env=env)
    assert_success(first)
    partial = {(row[0], row[1]): row for row in sqlite_rows(path)}
    assert all(partial[(s, day1.isoformat())] != truth_row(s, day1) for s in services)

    zendrive_emulator.today = day2 + datetime.timedelta(days=1)
    second = airflow_runner.run("zendrive_fleet", "2026-05-06", dags_folder=EXAMPLE_DAGS, env=env)
    assert_success(second)
    start = day1 - datetime.timedelta(days=LOOKBACK_DAYS)
    landed = sqlite_rows(path)
    for service_id in services:
        mine = [row for row in landed if row[0] == service_id]
        assert [row for row in mine if row[1] != day2.isoformat()] == truth_tuples(service_id, start, day1)
        assert [row for row in mine if row[1] == day2.isoformat()] != truth_tuples(service_id, day2, day2)
    ((_, extra),) = asset_events(second)  # one batch: one event, the services in its extra
    assert sorted(service["revised"] for service in extra["services"]) == [1, 1]
    # The audit trail holds each changed value of day1, per service, with the mapped run that changed it.
    with sqlite3.connect(path) as conn:
        trail = conn.execute(
            "SELECT service_id, date, counter, old_value, new_value, revised_by FROM zendrive_usage_revisions"
        ).fetchall()
    expected = set()
    for service_id in services:
        old = dict(zip(COLUMNS, partial[(service_id, day1.isoformat())], strict=True))
        final = dict(zip(COLUMNS, truth_row(service_id, day1), strict=True))
        expected |= {
            (service_id, day1.isoformat(), name, old[name], final[name])
            for name in COLUMNS[2:]
            if old[name] != final[name]
        }
    assert {row[:5] for row in trail} == expected
    assert len(trail) == len(expected)
    labels = {row[0]: row[5].split(" run ")[0] for row in trail}  # the mapped task that wrote each service
    assert sorted(labels.values()) == ["zendrive_fleet.pull_daily_usage[0]"] * 2  # both in the one batch
    assert DEMO_SECRET_KEY not in first.all_text() + second.all_text()


@pytest.mark.slow
@pytest.mark.parametrize("dag_id", ["zendrive_fleet", "zendrive_daily_billing"])
def test_a_manual_run_pulls_the_day_before_it_or_the_window_in_its_conf(
    airflow_runner: AirflowRunner,
    zendrive_emulator: ZenDriveEmulator,
    warehouse: tuple[Path, dict[str, str]],
    dag_id: str,
) -> None:
    _, env = warehouse
    env = {**env, "AIRFLOW_CONN_ZENDRIVE_DEFAULT": zendrive_emulator.connection_uri()}
    before = datetime.datetime.now(datetime.UTC).date() - datetime.timedelta(days=1)
    manual = airflow_runner.run(dag_id, dags_folder=EXAMPLE_DAGS, env=env)  # no logical date
    after = datetime.datetime.now(datetime.UTC).date() - datetime.timedelta(days=1)
    assert_success(manual)
    ((sent_from, sent_to),) = [(r.from_date, r.to_date) for r in zendrive_emulator.requests]
    assert sent_to in {before.isoformat(), after.isoformat()}  # the day before the run, not the API's 30 days
    yesterday = datetime.date.fromisoformat(sent_to)
    assert sent_from == (yesterday - datetime.timedelta(days=LOOKBACK_DAYS)).isoformat()

    zendrive_emulator.reset()
    window = airflow_runner.run(
        dag_id, dags_folder=EXAMPLE_DAGS, env=env, conf={"from": "2026-05-10", "to": "2026-05-20"}
    )
    assert_success(window)
    # The lookback starts the conf's window three days earlier too.
    assert [(r.from_date, r.to_date) for r in zendrive_emulator.requests] == [("2026-05-07", "2026-05-20")]
