"""
Fault b on the deployment: the triggerer SIGKILLed (its whole process group: the triggerer and its trigger
runner) while 20 deferred sensors wait on one suspended key, and a new triggerer started 10 s later. Once the
service turns active every sensor completes in its first try, none twice, and the API saw about one poll per
``poke_interval`` for the key (the key's triggers share one poll), plus the new triggerer's first poll.
"""

from __future__ import annotations

import math
import time
from itertools import pairwise

from distributed.check_celery import wait_until
from faults.deployment import SENSOR_KEY, TRIGGERER_HEALTH_THRESHOLD, Deployment, figure

DAG_ID = "faults_sensors"
SENSORS = 20
POKE_INTERVAL = 5.0
RESTART_AFTER = 10.0  # seconds between the kill and the new triggerer's start


def test_b_triggerer_killed_with_20_deferred_sensors_every_sensor_completes_once_with_bounded_polls(
    faults_deployment: Deployment,
) -> None:
    dep = faults_deployment
    dep.emulator.suspend(SENSOR_KEY)
    sent_before = len(dep.emulator.requests)
    run_id = dep.trigger(DAG_ID)

    def all_deferred() -> bool:
        tries = dep.tries(DAG_ID, run_id)
        return len(tries) == SENSORS and all(state == "deferred" for state, _ in tries.values())

    assert wait_until(dep.unless_dead(all_deferred), 300, 0.5), dep.tries(DAG_ID, run_id)
    deferred = time.monotonic()  # the emulator stamps requests with time.monotonic()

    def triggerers() -> set[int]:
        return {
            row[0] for row in dep.query("SELECT DISTINCT triggerer_id FROM trigger") if row[0] is not None
        }

    assert wait_until(
        lambda: len(dep.query("SELECT id FROM trigger WHERE triggerer_id IS NOT NULL")) == SENSORS, 60
    )
    (old,) = triggerers()
    time.sleep(2 * POKE_INTERVAL)  # the old triggerer polls a few times
    dep.kill("triggerer")
    killed = time.monotonic()
    time.sleep(RESTART_AFTER)
    dep.start("triggerer")
    assert wait_until(
        dep.unless_dead(
            lambda: (
                len(
                    dep.query(
                        "SELECT id FROM trigger WHERE triggerer_id IS NOT NULL AND triggerer_id <> %s", (old,)
                    )
                )
                == SENSORS
            )
        ),
        120,
        0.5,
    ), dep.query("SELECT id, triggerer_id FROM trigger")
    taken_over = time.monotonic() - killed
    time.sleep(2 * POKE_INTERVAL)  # the new triggerer polls a few times
    dep.emulator.resume(SENSOR_KEY)
    resumed = time.monotonic()
    state = dep.wait_run(DAG_ID, run_id, 120)
    done = time.monotonic() - resumed
    assert state == "success", dep.tail()
    tries = dep.tries(DAG_ID, run_id)
    assert all(entry == ("success", 1) for entry in tries.values()), tries
    requests = [r for r in dep.emulator.requests[sent_before:] if r.access_key == SENSOR_KEY]
    polls = len(requests) - SENSORS  # each sensor poked once itself before deferring; the rest are polls
    span = requests[-1].at - requests[0].at
    # One poll per interval while a triggerer runs, none while none does, plus the new triggerer's first poll.
    bound = math.ceil((span - RESTART_AFTER) / POKE_INTERVAL) + 2
    assert polls <= bound, [(round(r.at - requests[0].at, 1), r.status) for r in requests]
    assert requests[-1].status == 200
    assert all(r.status == 403 for r in requests[:-1])
    later = [r.at for r in requests if r.at > deferred]  # only the triggerers poll now
    gaps = [b - a for a, b in pairwise(later)]
    assert all(gap >= 0.9 * POKE_INTERVAL for gap in gaps), gaps  # one shared poll: never a burst
    figure(
        f"b (triggerer killed, {SENSORS} deferred sensors, new triggerer {RESTART_AFTER:.0f} s later, health "
        f"threshold {TRIGGERER_HEALTH_THRESHOLD} s): triggers moved {taken_over:.1f} s after the kill; all "
        f"{SENSORS} succeeded in try 1, {done:.1f} s after the service turned active; {polls} polls in "
        f"{span:.0f} s (bound {bound}), gaps {min(gaps):.1f}-{max(gaps):.1f} s, plus the {SENSORS} sensors' own pokes"
    )
