"""
Fault e: under the CeleryExecutor, Redis (the broker) restarted while tasks are queued in it; the runs complete.

Run with the Python of the distributed check's fresh venv (the wheel, Airflow, the Celery and PostgreSQL
providers): ``CHECK=tests/faults/celery_redis_restart.py scripts/distributed_check.sh`` (``make faults`` does).
It reuses that check's deployment (``tests/distributed/check_celery.py``: PostgreSQL, Redis, the API server,
scheduler, DAG processor, triggerer and a Celery worker as separate processes), then:

1. stops the Celery worker (warm shutdown), so that the fleet run's tasks wait in Redis;
2. triggers ``zendrive_fleet`` over 6 connections and ``zendrive_distributed_sensor`` (its service active)
   and waits until the first task of each is queued in the broker;
3. restarts Redis on the same port (it keeps no data: the queued messages are lost, as on a broker without
   persistence) and starts a worker again;
4. waits for the run: the scheduler finds the tasks stuck in ``queued`` (``[scheduler] task_queued_timeout``,
   shortened here to 30 s from 600 s) and queues them again; both runs succeed, each service's rows exact.

Prints one line per check and the figures, ending with ``redis-restart-check: N passed, N failed``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, cast

import psycopg
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the distributed check's machinery
from distributed.check_celery import (
    AIRFLOW_SERVICES,
    BIN,
    COUNTERS,
    DATABASES,
    FLEET_DAG,
    FLEET_DAY,
    FLEET_LOOKBACK_DAYS,
    FLEET_SIZE,
    LOGICAL_DATE,
    SENSOR_DAG,
    Checks,
    Deployment,
    Services,
    check_venv,
    deploy,
    free_port,
    postgres,
    redis_cli,
    say,
    wait_until,
)

from airflow_provider_zendrive.testing import ZenDriveEmulator

QUEUED_TIMEOUT = 30  # [scheduler] task_queued_timeout in this deployment (Airflow's default: 600 s)
CELERY_QUEUE = "default"  # the Celery provider's default queue, a Redis list of that name


def start_redis(services: Services, folder: Path, port: int, name: str) -> bool:
    """``redis-server`` on ``port`` without persistence; whether it answers within 30 s."""
    services.start(
        name,
        ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"],
        cwd=folder,
    )
    return wait_until(lambda: redis_cli(port, "PING").strip() == "PONG", 30)


def fleet_rows_exact(checks: Checks, dep: Deployment) -> None:
    """The warehouse holds each fleet service's day and lookback once, equal to the emulator's."""
    first = FLEET_DAY - datetime.timedelta(days=FLEET_LOOKBACK_DAYS)
    days = [first + datetime.timedelta(days=n) for n in range(FLEET_LOOKBACK_DAYS + 1)]
    want = []
    for conn_id in dep.fleet:
        stats = dep.emulator.expected_stats(first, FLEET_DAY, access_key=dep.accounts[conn_id][0])
        daily = {d["date"]: cast("dict[str, Any]", d) for d in stats["daily"]}
        for day in days:
            counts = daily.get(day.isoformat(), {})
            want.append((stats["service_id"], day.isoformat(), *(int(counts.get(c, 0)) for c in COUNTERS)))
    rows = dep.query(
        "SELECT service_id, date, total_requests, successful_requests, client_errors, auth_failures,"
        " bytes_sent, bytes_received, unique_ips FROM zendrive_daily_usage ORDER BY service_id, date",
        database="warehouse",
    )
    got = [(int(r[0]), str(r[1]), *(int(v) for v in r[2:])) for r in rows]
    checks.check(
        f"the warehouse holds {len(want)} rows, each service's day and lookback once, equal to the emulator's",
        got == sorted(want),
        f"{got}\n!=\n{sorted(want)}",
    )


def run(checks: Checks, root: Path) -> None:
    """Deploy, stop the worker, queue the fleet's tasks, restart Redis, start a worker, wait for the run."""
    outputs = root / "output"
    outputs.mkdir()
    services = Services(outputs)
    with contextlib.ExitStack() as stack:
        stack.callback(services.stop)
        pg_url = stack.enter_context(postgres(root, services))
        with psycopg.connect(f"{pg_url}/postgres", autocommit=True) as conn:
            for database in DATABASES:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
        folder, redis_port = root / "redis", free_port()
        folder.mkdir()
        if not checks.check("redis-server started", start_redis(services, folder, redis_port, "redis")):
            return
        emulator = stack.enter_context(ZenDriveEmulator())
        dep = Deployment(root, pg_url, redis_port, emulator)
        dep.env["AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT"] = str(QUEUED_TIMEOUT)
        dep.env["AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT_CHECK_INTERVAL"] = "5"
        services.start("airflow-db-migrate", [str(BIN / "airflow"), "db", "migrate"], dep.env, dep.root)
        if not deploy(checks, dep, services, cold_table=False):
            return
        services.stop("celery-worker")  # warm shutdown: the fleet's tasks will wait in Redis
        del services.procs["celery-worker"]  # stopped on purpose, not dead
        sent_before = len(emulator.requests)
        runs = {
            FLEET_DAG: {
                "logical_date": LOGICAL_DATE.isoformat(),
                "conf": {"conn_ids": dep.fleet, "batch_size": 1},
            },
            SENSOR_DAG: {"logical_date": None},
        }
        for dag_id, body in runs.items():
            status, answer = dep.api("POST", f"/api/v2/dags/{dag_id}/dagRuns", body)
            checks.check(f"POST /api/v2/dags/{dag_id}/dagRuns", status in (200, 201), str(answer))

        def queued_in_redis() -> int:
            text = redis_cli(redis_port, "LLEN", CELERY_QUEUE).strip()
            return int(text) if text.isdigit() else 0

        queued = wait_until(lambda: queued_in_redis() >= len(runs), 120) and queued_in_redis()
        states = dep.query("SELECT state, count(*) FROM task_instance GROUP BY state")
        if not checks.check(
            f"the runs' first tasks are queued in Redis ({queued} messages; tasks {states})", bool(queued)
        ):
            return
        services.stop("redis")
        del services.procs["redis"]
        restarted = time.monotonic()
        up = start_redis(services, folder, redis_port, "redis-2")
        left = queued_in_redis()
        checks.check(f"Redis restarted on the same port: {queued} queued messages before, {left} after", up)
        argv = AIRFLOW_SERVICES["celery-worker"]
        services.start("celery-worker-2", [str(BIN / "airflow"), *argv], dep.env, dep.root)

        def finished() -> bool:
            ended = dep.query("SELECT state FROM dag_run")
            return len(ended) == len(runs) and all(state in ("success", "failed") for (state,) in ended)

        wait_until(lambda: finished() or bool(services.dead()), 300, 1)
        elapsed = time.monotonic() - restarted
        ended = dict(dep.query("SELECT dag_id, state FROM dag_run"))
        tis = dep.query(
            "SELECT task_id, map_index, state, try_number FROM task_instance ORDER BY dag_id, task_id, map_index"
        )
        checks.check(
            f"both runs succeeded, {elapsed:.0f} s after Redis restarted",
            ended == dict.fromkeys(runs, "success") and not services.dead(),
            f"run {ended}, tasks {tis}, exited {services.dead()}\n"
            + "\n".join(f"== {n}\n{services.output(n)[-2000:]}" for n in ("scheduler", "celery-worker-2")),
        )
        checks.check(
            f"all {FLEET_SIZE + 3} task instances succeeded",
            len(tis) == FLEET_SIZE + 3 and all(ti[2] == "success" for ti in tis),
            str(tis),
        )
        requeued = dep.query("SELECT count(*) FROM log WHERE event LIKE 'stuck in queued%%'")
        statuses = [r.status for r in emulator.requests[sent_before:]]
        checks.check(
            f"one request per fleet service ({FLEET_SIZE}), the sensor's poke and its pull: each 200",
            statuses == [200] * (FLEET_SIZE + 2),
            str(statuses),
        )
        fleet_rows_exact(checks, dep)
        say(
            f"figure: e (Redis restarted, {queued} tasks queued in it, lost with it; 2 runs): the scheduler queued them "
            f"again after task_queued_timeout {QUEUED_TIMEOUT} s ({requeued[0][0] if requeued else '?'} stuck-in-"
            f"queued events); runs green {elapsed:.0f} s after the restart; {len(statuses)} API requests; tries "
            f"{[ti[3] for ti in tis]}"
        )


def main() -> int:
    """Run the check; exit 1 on any failure."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(143))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1] if __doc__ else None)
    parser.add_argument("--airflow", required=True, help="the Airflow version this venv must have")
    args = parser.parse_args()
    checks = Checks()
    check_venv(checks, args.airflow)
    with tempfile.TemporaryDirectory(prefix="zendrive-redis-restart-") as root:
        try:
            run(checks, Path(root))
        except Exception as exc:
            checks.check("the deployment ran", False, f"{type(exc).__name__}: {exc}")
    print(f"redis-restart-check: {checks.passed} passed, {checks.failed} failed", flush=True)
    return 0 if checks.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
