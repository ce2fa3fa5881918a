"""
ZenDriveFleetStatsOperator against the emulator over TLS, on every warehouse: a batch of services, each with
its own keys, written each in its own transaction; broken services fail the task by name without holding the
others back, and the next try pulls only them (the progress ledger). A real Airflow run is in
tests/dags/test_fleet_dag.py.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import pytest
from warehouses import Warehouse

from airflow_provider_zendrive.exceptions import ZenDriveFleetError, ZenDriveFleetRetryableError
from airflow_provider_zendrive.operators.zendrive import ZenDriveFleetStatsOperator, table_asset
from airflow_provider_zendrive.testing import Fault, ZenDriveEmulator

if TYPE_CHECKING:
    from airflow.sdk import Context

FROM, TO = datetime.date(2026, 5, 1), datetime.date(2026, 5, 3)


@dataclass
class FakeTI:
    """What the operator uses of a task instance: its identity and ``xcom_push``."""

    try_number: int = 1
    dag_id: str = "fleet"
    task_id: str = "pull"
    run_id: str = "manual__2026-05-04"
    map_index: int = 0
    xcoms: dict[str, Any] = field(default_factory=dict)

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcoms[key] = value


class _Event:
    def __init__(self) -> None:
        self.extra: dict[str, Any] = {}


@dataclass
class Fleet:
    """Services with their own keys on the emulator, a connection each."""

    emulator: ZenDriveEmulator
    set_connection: Callable[..., str]
    keys: dict[str, tuple[str, str, int]] = field(default_factory=dict)

    def add(self, count: int) -> list[str]:
        for n in range(len(self.keys), len(self.keys) + count):
            conn_id = f"zd_fleet_{n:02d}"
            self.keys[conn_id] = (f"AKFLEET{n:02d}", f"fleet-secret-{n:02d}-0123456789abcdef", 6000 + n)
            self.emulator.add_account(*self.keys[conn_id])
            self.connect(conn_id)
        return list(self.keys)

    def connect(self, conn_id: str, secret_key: str | None = None) -> None:
        access_key, secret, _ = self.keys[conn_id]
        uri = self.emulator.connection_uri(access_key, secret_key or secret, max_retries="0")
        self.set_connection(uri, conn_id)

    def requests_of(self, start: int = 0) -> dict[str, int]:
        by_key = {key: conn_id for conn_id, (key, _, _) in self.keys.items()}
        counts: dict[str, int] = {}
        for request in self.emulator.requests[start:]:
            conn_id = by_key[str(request.access_key)]
            counts[conn_id] = counts.get(conn_id, 0) + 1
        return counts


@pytest.fixture
def fleet(zendrive_emulator: ZenDriveEmulator, set_connection: Callable[..., str]) -> Fleet:
    return Fleet(zendrive_emulator, set_connection)


def operator(conn_ids: list[str], warehouse: Warehouse, **kwargs: Any) -> ZenDriveFleetStatsOperator:
    return ZenDriveFleetStatsOperator(
        task_id="pull",
        conn_ids=conn_ids,
        sql_conn_id=warehouse.conn_id,
        from_date=FROM,
        to_date=TO,
        revisions_table="zendrive_usage_revisions",
        **kwargs,
    )


def run(op: ZenDriveFleetStatsOperator, ti: FakeTI) -> tuple[Any, dict[Any, _Event]]:
    events: dict[Any, _Event] = {outlet: _Event() for outlet in op.outlets}
    context = cast("Context", {"ti": ti, "outlet_events": events})
    return op.execute(context), events


def services_in_table(warehouse: Warehouse) -> dict[int, int]:
    counts: dict[int, int] = {}
    for row in warehouse.rows():
        counts[row[0]] = counts.get(row[0], 0) + 1
    return counts


def ledger(warehouse: Warehouse) -> list[tuple[Any, ...]]:
    return warehouse.records(
        "SELECT conn_id, service_id, written_rows FROM zendrive_fleet_progress ORDER BY conn_id"
    )


def test_a_batch_writes_every_service_with_its_own_keys_and_reports_each(
    fleet: Fleet, warehouse: Warehouse
) -> None:
    conn_ids = fleet.add(6)
    op = operator(conn_ids, warehouse, max_concurrency=3)
    ti = FakeTI()

    result, events = run(op, ti)

    assert result == {c: {"service_id": fleet.keys[c][2], "rows": 3, "revised": 0} for c in conn_ids}
    assert services_in_table(warehouse) == {fleet.keys[c][2]: 3 for c in conn_ids}
    assert fleet.requests_of() == dict.fromkeys(conn_ids, 1)  # one request per service, each with its key
    for conn_id, (_, _, service_id) in fleet.keys.items():
        expected = fleet.emulator.expected_stats(FROM, TO, fleet.keys[conn_id][0])
        landed = [row for row in warehouse.rows() if row[0] == service_id]
        assert sum(row[2] for row in landed) == expected["summary"]["total_requests"]
    (event,) = events.values()
    assert (event.extra["from"], event.extra["to"]) == ("2026-05-01", "2026-05-03")
    assert (event.extra["rows"], event.extra["revised"]) == (18, 0)
    assert [s["conn_id"] for s in event.extra["services"]] == conn_ids
    assert {s["try"] for s in event.extra["services"]} == {1}
    summary = ti.xcoms["summary"].splitlines()
    assert summary[0] == "ZenDRIVE fleet batch of 6 services: 6 written, 18 rows, 0 revised"
    assert [line.split(":")[0] for line in summary[1:]] == conn_ids
    assert ledger(warehouse) == []  # a finished batch leaves no progress behind
    assert list(op.outlets) == [table_asset(warehouse.conn_id, "zendrive_daily_usage")]


def test_broken_services_fail_the_batch_by_name_and_the_next_try_pulls_only_them(
    fleet: Fleet, warehouse: Warehouse
) -> None:
    conn_ids = fleet.add(8)
    bad_keys, suspended, down = conn_ids[1], conn_ids[4], conn_ids[6]
    fleet.connect(bad_keys, secret_key="wrong-secret-0123456789")
    fleet.emulator.suspend(fleet.keys[suspended][0])
    fleet.emulator.inject(Fault(status=503, access_key=fleet.keys[down][0]))  # max_retries=0: one is enough
    op = operator(conn_ids, warehouse, max_concurrency=4)

    with pytest.raises(ZenDriveFleetRetryableError) as raised:
        run(op, FakeTI(try_number=1))

    error = raised.value
    assert sorted(error.failures) == sorted([bad_keys, suspended, down])
    assert "401" in error.failures[bad_keys] or "Invalid credentials" in error.failures[bad_keys]
    assert "ZenDriveServiceInactiveError" in error.failures[suspended]
    assert "ZenDriveUnavailableError" in error.failures[down]
    assert "3 of 8 services failed (5 written)" in error.message
    assert "wrong-secret" not in error.message
    assert all(key[1] not in str(error) for key in fleet.keys.values())
    good = [c for c in conn_ids if c not in error.failures]
    assert services_in_table(warehouse) == {fleet.keys[c][2]: 3 for c in good}
    assert [row[0] for row in ledger(warehouse)] == sorted(good)

    # The customer fixes the keys, the service is resumed, the API is back: the next try pulls only those 3.
    fleet.connect(bad_keys)
    fleet.emulator.resume(fleet.keys[suspended][0])
    assert not fleet.emulator.pending_faults
    sent = len(fleet.emulator.requests)
    retry_ti = FakeTI(try_number=2)

    result, events = run(op, retry_ti)

    assert fleet.requests_of(sent) == dict.fromkeys([bad_keys, suspended, down], 1)
    assert set(result) == set(conn_ids)
    assert services_in_table(warehouse) == {fleet.keys[c][2]: 3 for c in conn_ids}
    (event,) = events.values()
    tries = {s["conn_id"]: s["try"] for s in event.extra["services"]}
    assert tries == {c: (2 if c in error.failures else None) for c in conn_ids}
    assert "written by an earlier try" in retry_ti.xcoms["summary"]
    assert ledger(warehouse) == []


def test_a_batch_whose_failures_are_all_final_fails_without_a_retry(
    fleet: Fleet, warehouse: Warehouse
) -> None:
    conn_ids = fleet.add(4)
    fleet.connect(conn_ids[0], secret_key="wrong-secret-0123456789")
    fleet.emulator.suspend(fleet.keys[conn_ids[2]][0])

    with pytest.raises(ZenDriveFleetError) as raised:
        run(operator(conn_ids, warehouse), FakeTI())

    assert not isinstance(raised.value, ZenDriveFleetRetryableError)
    assert sorted(raised.value.failures) == [conn_ids[0], conn_ids[2]]
    assert "then clear the task; it pulls only these" in raised.value.message
    policy = pytest.importorskip("airflow_provider_zendrive.retry_policy").ZenDriveRetryPolicy()
    assert policy.evaluate(raised.value, 1, 5).action.value.lower() == "fail"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"output_path": "/tmp/x.csv"}, "remove output_path"),
        ({"zendrive_conn_id": "zd"}, "remove zendrive_conn_id"),
        ({"max_concurrency": 0}, "max_concurrency must be a positive"),
        ({"conn_ids": ["a", "b", "a"]}, "lists 'a' more than once"),
        ({"conn_ids": []}, "non-empty list"),
    ],
)
def test_bad_arguments_are_refused_when_the_dag_is_parsed(kwargs: dict[str, Any], message: str) -> None:
    arguments: dict[str, Any] = {"task_id": "pull", "conn_ids": ["a"], "sql_conn_id": "wh", **kwargs}
    with pytest.raises(ValueError, match=message):
        ZenDriveFleetStatsOperator(**arguments)


def test_the_return_value_and_summary_are_json(fleet: Fleet, warehouse: Warehouse) -> None:
    conn_ids = fleet.add(2)
    result, _ = run(operator(conn_ids, warehouse, progress_table=None), FakeTI())
    assert json.loads(json.dumps(result)) == result
