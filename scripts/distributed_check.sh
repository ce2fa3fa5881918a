#!/usr/bin/env bash
# A real distributed deployment of what users install: a fresh venv gets the built wheel (dist/*.whl, [sql]),
# Airflow, the Celery provider with the Redis client and the PostgreSQL provider, pinned by Airflow's pins for the
# release (constraints/airflow-VERSION.txt) plus the Celery stack's (constraints/airflow-VERSION-celery.txt), then
# tests/distributed/check_celery.py starts PostgreSQL, Redis, the HTTPS emulator and each Airflow component as
# its own process (CeleryExecutor) and runs the fleet and deferrable-sensor DAGs through them.
# Needs redis-server and PostgreSQL's server binaries (.ci/run installs both).
# Usage: scripts/distributed_check.sh [--keep DIR] [--cold-table]   (after `make dist`; `make distributed` does both)
# CHECK=tests/faults/celery_redis_restart.py runs that script in the same venv instead (`make faults` does).
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
version=${AIRFLOW_VERSION:-3.3.2}
uv=(.venv/bin/python -m uv)
wheels=(dist/*.whl)
[ ${#wheels[@]} -eq 1 ] || { echo "expected exactly one wheel in dist/, found: ${wheels[*]}" >&2; exit 2; }
command -v redis-server >/dev/null || { echo "redis-server is not installed (apt-get install redis-server)" >&2; exit 2; }
venv=$(mktemp -d "${TMPDIR:-/tmp}/zendrive-distributed-$version-XXXXXX")
trap 'rm -rf "$venv"' EXIT
started=$SECONDS
"${uv[@]}" venv --quiet --python "$python" "$venv"
"${uv[@]}" pip install --quiet --python "$venv/bin/python" \
  --constraint "constraints/airflow-$version.txt" --constraint "constraints/airflow-$version-celery.txt" \
  "${wheels[0]}[sql]" "apache-airflow==$version" apache-airflow-providers-celery redis \
  apache-airflow-providers-postgres
echo "Airflow $version + Celery: fresh venv with the wheel installed in $((SECONDS - started)) s ($venv)"
"$venv/bin/python" "${CHECK:-tests/distributed/check_celery.py}" --airflow "$version" "$@"
