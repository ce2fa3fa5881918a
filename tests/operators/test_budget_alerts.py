"""
Budget alerts: a month of simulated daily loads (with late data and lookback re-reads), each followed by the
alert task, twice, against a real SMTP server: 50 %, 80 % and 100 % are each emailed exactly once.
"""

from __future__ import annotations

import datetime
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from warehouses import Warehouse

from airflow_provider_zendrive._outputs.budget import Crossing, check_thresholds, find_crossings
from airflow_provider_zendrive._outputs.rows import daily_rows
from airflow_provider_zendrive._outputs.tables import get_db_hook, upsert_rows
from airflow_provider_zendrive.exceptions import ZenDriveInputError
from airflow_provider_zendrive.operators.zendrive import ZenDriveBudgetAlertOperator
from airflow_provider_zendrive.testing import DEMO_SECRET_KEY
from airflow_provider_zendrive.testing._data import partly_counted, usage_for_day, window_stats

SERVICE = 1234
APRIL = [datetime.date(2026, 4, day) for day in range(1, 31)]
GB = 1_000_000_000


def final_april_bytes() -> int:
    return int(window_stats(SERVICE, APRIL[0], APRIL[-1])["summary"]["bytes_sent"])


def morning_total(day: datetime.date, through: datetime.date | None = None) -> int:
    """April's bytes sent through ``through`` (default: ``day``) as the table holds them the morning after
    ``day``: ``day`` itself half counted, the days before final."""
    total = 0
    for d in APRIL:
        usage = usage_for_day(SERVICE, d)
        if d > (through or day) or usage is None:
            continue
        total += int(partly_counted(usage, 0.5)["bytes_sent"]) if d == day else int(usage["bytes_sent"])
    return total


def load_day(conn_id: str, day: datetime.date, lookback: int = 3) -> None:
    """What the daily billing DAG does on the morning after ``day``: re-read the lookback, ``day`` half counted."""
    first = max(APRIL[0], day - datetime.timedelta(days=lookback))
    stats = window_stats(SERVICE, first, day, counted=lambda d: 0.5 if d == day else 1.0)
    upsert_rows(get_db_hook(conn_id), "zendrive_daily_usage", daily_rows(stats))


def test_a_month_of_daily_runs_sends_each_threshold_once_also_when_every_day_runs_twice(
    sqlite_conn: tuple[str, Path], set_connection: Callable[..., str]
) -> None:
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier
    from smtp_server import smtp_server

    conn_id, path = sqlite_conn
    budget_gb = final_april_bytes() / 1.15 / GB  # the month ends at 115 % of the budget
    with smtp_server() as mailbox:
        set_connection(mailbox.connection_json(), "smtp_budget")
        task = ZenDriveBudgetAlertOperator(
            task_id="budget",
            sql_conn_id=conn_id,
            budget_gb=budget_gb,
            thresholds=(100, 50, 80),
            notifiers=[
                SmtpNotifier(
                    to="billing@example.com",
                    from_email="zendrive@example.com",
                    subject="{{ zendrive_alert.splitlines()[0] }}",
                    html_content="<pre>{{ zendrive_alert }}</pre>",
                    smtp_conn_id="smtp_budget",
                )
            ],
        )
        sent_by_day: dict[str, list[str]] = {}
        for day in APRIL:
            load_day(conn_id, day)
            for _ in range(2):  # a rerun (or a retry, or a second asset event) the same day
                sent_by_day.setdefault(day.isoformat(), []).extend(task.execute({}))
        load_day(conn_id, APRIL[-1] + datetime.timedelta(days=1), lookback=30)  # May 1: April is final now...
        assert task.execute({}) == []  # ... and nothing is alerted again

    subjects = [message["Subject"] for _, message in mailbox.messages]
    assert len(subjects) == 3, subjects
    assert [subject.split(" reached ")[1].split(" %")[0] for subject in subjects] == ["50", "80", "100"]
    # Each alert went out on the first morning the table showed the crossing, and names the day the data
    # crossed (the day before, when that morning's re-read completed a day that had been half counted).
    budget = round(budget_gb * GB)
    for threshold in (50, 80, 100):
        morning = next(day for day in APRIL if 100 * morning_total(day) >= threshold * budget)
        crossed = next(d for d in APRIL if 100 * morning_total(morning, d) >= threshold * budget)
        (sent_on,) = [
            d for d, texts in sent_by_day.items() if any(f"reached {threshold} %" in t for t in texts)
        ]
        assert sent_on == morning.isoformat()
        assert subjects[(50, 80, 100).index(threshold)].endswith(f"on {crossed.isoformat()}")
    for _, message in mailbox.messages:
        assert DEMO_SECRET_KEY not in message.as_string()
    with sqlite3.connect(path) as conn:
        ledger = conn.execute(
            "SELECT month, threshold FROM zendrive_budget_alerts ORDER BY threshold"
        ).fetchall()
    assert ledger == [("2026-04", 50), ("2026-04", 80), ("2026-04", 100)]


def test_a_failing_notifier_leaves_the_alert_to_the_retry(warehouse: Warehouse) -> None:
    conn_id = warehouse.conn_id
    for day in APRIL:
        load_day(conn_id, day, lookback=0)
    calls: list[str] = []

    def broken(context: dict[str, Any]) -> None:
        calls.append(context["zendrive_alert"])
        raise ConnectionError("SMTP server down")

    task = ZenDriveBudgetAlertOperator(
        task_id="budget", sql_conn_id=conn_id, budget_gb=1.0, thresholds=(50,), notifiers=[broken]
    )
    with pytest.raises(ConnectionError):
        task.execute({})
    delivered: list[str] = []
    task.notifiers = [lambda context: delivered.append(context["zendrive_alert"])]
    assert len(task.execute({})) == 1  # the retry sends it: the claim was rolled back
    assert len(delivered) == 1
    assert task.execute({}) == []


def test_crossings_are_derived_from_the_data_per_service_and_month() -> None:
    rows = [
        (1, "2026-04-01", 40 * GB),
        (1, "2026-04-02", 45 * GB),  # 85 GB: crosses 50 and 80 on the same day
        (1, "2026-04-03", 20 * GB),  # 105 GB: crosses 100
        (1, "2026-05-01", 60 * GB),  # a new month starts from zero
        (2, "2026-04-01", 10 * GB),  # another service: its own budget
    ]
    budgets = {1: 100 * GB, 2: 20 * GB}
    found = find_crossings(rows, budgets.get, (50, 80, 100))
    assert [(c.service_id, c.month, c.threshold, c.day) for c in found] == [
        (1, "2026-04", 50, "2026-04-02"),
        (1, "2026-04", 80, "2026-04-02"),
        (1, "2026-04", 100, "2026-04-03"),
        (1, "2026-05", 50, "2026-05-01"),
        (2, "2026-04", 50, "2026-04-01"),
    ]
    text = Crossing(1, "2026-04", 80, "2026-04-02", 85 * GB, 100 * GB).text
    assert (
        text.splitlines()[0] == "ZenDRIVE service 1 reached 80 % of its 2026-04 egress budget on 2026-04-02"
    )
    assert "85.0 GB (85.0 % of the 100.0 GB budget)" in text


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"thresholds": ()}, "thresholds must be whole percentages"),
        ({"thresholds": (0, 50)}, "thresholds must be whole percentages"),
        ({"thresholds": (50.5,)}, "thresholds must be whole percentages"),
        ({"budget_gb": 0}, "a budget must be a positive number of GB"),
        ({"budget_gb": {"1234": -5}}, "a budget must be a positive number of GB"),
    ],
)
def test_bad_budgets_are_refused_when_the_dag_is_parsed(kwargs: dict[str, Any], problem: str) -> None:
    arguments: dict[str, Any] = {
        "task_id": "budget",
        "sql_conn_id": "x",
        "budget_gb": 100.0,
        "notifiers": [print],
        **kwargs,
    }
    with pytest.raises(ZenDriveInputError, match=problem):
        ZenDriveBudgetAlertOperator(**arguments)


def test_thresholds_are_sorted_and_deduplicated() -> None:
    assert check_thresholds([100, 50, 80, 50]) == (50, 80, 100)


def test_an_alert_task_without_a_notifier_is_refused() -> None:
    with pytest.raises(ValueError, match="needs at least one notifier"):
        ZenDriveBudgetAlertOperator(task_id="budget", sql_conn_id="x", budget_gb=100.0)


def test_an_smtp_server_refusing_one_alert_gets_each_threshold_exactly_once_across_try_retry_and_rerun(
    warehouse: Warehouse, set_connection: Callable[..., str]
) -> None:
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier
    from smtp_server import smtp_server

    upsert_rows(warehouse.hook(), "zendrive_daily_usage", daily_rows(window_stats(SERVICE, *APRIL[::29])))
    budget_gb = final_april_bytes() / 1.15 / GB  # April ends at 115 %: 50, 80 and 100 % crossed
    with smtp_server() as mailbox:
        set_connection(mailbox.connection_json(), "smtp_budget")
        task = ZenDriveBudgetAlertOperator(
            task_id="budget",
            sql_conn_id=warehouse.conn_id,
            budget_gb=budget_gb,
            thresholds=(50, 80, 100),
            notifiers=[
                SmtpNotifier(
                    to="billing@example.com",
                    from_email="zendrive@example.com",
                    subject="{{ zendrive_alert.splitlines()[0] }}",
                    html_content="<pre>{{ zendrive_alert }}</pre>",
                    custom_headers={"Message-ID": "{{ zendrive_alert_message_id }}"},
                    smtp_conn_id="smtp_budget",
                )
            ],
        )
        mailbox.refuse_subjects = {"reached 80 %"}
        with pytest.raises(Exception, match="451") as failed:  # try 1: 50 % goes out, 80 % is refused
            task.execute({})
        assert [str(m["Subject"]).split(" reached ")[1][:4] for _, m in mailbox.messages] == ["50 %"]
        note = " ".join(getattr(failed.value, "__notes__", []))
        assert f"zendrive-budget.{SERVICE}.2026-04.80" in note  # the failure names what was not delivered
        assert "zendrive-budget" in note.split("Delivered in this run: ")[1]
        assert len(mailbox.refused) >= 1
        mailbox.refuse_subjects = set()
        sent = task.execute({})  # try 2 (the retry): 80 % and then 100 %, and not 50 % again
        assert [text.split(" reached ")[1][:5] for text in sent] == ["80 % ", "100 %"]
        assert task.execute({}) == []  # a rerun: nothing
    thresholds = [int(str(m["Subject"]).split(" reached ")[1].split(" %")[0]) for _, m in mailbox.messages]
    assert thresholds == [50, 80, 100]
    message_ids = [str(m["Message-ID"]) for _, m in mailbox.messages]
    assert message_ids == [
        f"<zendrive-budget.{SERVICE}.2026-04.{t}@airflow-provider-zendrive>" for t in thresholds
    ]
    assert str(mailbox.refused[0]["Message-ID"]) == message_ids[1]  # the refused try and its retry: one id
    hook = warehouse.hook()
    assert sorted(hook.get_records("SELECT threshold FROM zendrive_budget_alerts")) == [(50,), (80,), (100,)]


def test_a_failed_threshold_holds_back_the_higher_ones_of_its_service_and_month_only(
    warehouse: Warehouse,
) -> None:
    conn_id = warehouse.conn_id
    april = daily_rows(window_stats(SERVICE, *APRIL[::29]))
    upsert_rows(
        get_db_hook(conn_id), "zendrive_daily_usage", april + [{**row, "service_id": 99} for row in april]
    )
    delivered: list[str] = []

    def refuse_50_of_1234(context: dict[str, Any]) -> None:
        if context["zendrive_alert_id"] == f"zendrive-budget.{SERVICE}.2026-04.50":
            raise ConnectionError("451 try later")
        delivered.append(context["zendrive_alert_id"])

    task = ZenDriveBudgetAlertOperator(
        task_id="budget",
        sql_conn_id=conn_id,
        budget_gb=final_april_bytes() / 1.15 / GB,
        thresholds=(50, 80),
        notifiers=[refuse_50_of_1234],
    )
    with pytest.raises(ConnectionError):
        task.execute({})
    assert delivered == ["zendrive-budget.99.2026-04.50", "zendrive-budget.99.2026-04.80"]


def test_alert_tasks_running_at_once_send_each_threshold_once(warehouse: Warehouse) -> None:
    """Two runs at the same moment (a rerun beside a retry): the second waits for the first's claim and skips."""
    import threading
    import time

    from airflow_provider_zendrive._outputs.budget import notify_new_crossings

    crossings = [
        Crossing(SERVICE, "2026-04", threshold, "2026-04-20", threshold * GB, 100 * GB)
        for threshold in (50, 80)
    ]
    sent: list[str] = []
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def slow(crossing: Crossing) -> None:
        time.sleep(0.3)  # the claim is held, uncommitted, while the alert goes out
        sent.append(crossing.alert_id)

    def run() -> None:
        hook = warehouse.hook()
        try:
            start.wait(timeout=30)
            notify_new_crossings(hook, "zendrive_budget_alerts", crossings, slow)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert sorted(sent) == sorted(crossing.alert_id for crossing in crossings)


def test_without_budget_gb_the_task_reads_the_zendrive_budget_setting_when_it_runs(
    sqlite_conn: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    conn_id, _ = sqlite_conn
    for day in APRIL:
        load_day(conn_id, day, lookback=0)
    monkeypatch.delenv("AIRFLOW__ZENDRIVE__BUDGET_GB", raising=False)
    sent: list[str] = []
    task = ZenDriveBudgetAlertOperator(
        task_id="budget",
        sql_conn_id=conn_id,
        thresholds=(50,),
        notifiers=[lambda c: sent.append(c["zendrive_alert"])],
    )  # parsing reads no setting
    with pytest.raises(ZenDriveInputError, match=r"set \[zendrive\] budget_gb"):
        task.execute({})
    monkeypatch.setenv("AIRFLOW__ZENDRIVE__BUDGET_GB", str(final_april_bytes() / 1.15 / GB))
    assert len(task.execute({})) == 1
    assert "of its 2026-04 egress budget" in sent[0]
