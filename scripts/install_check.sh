#!/usr/bin/env bash
# Test what users install: for each Airflow version given, a fresh venv gets the built wheel (dist/*.whl) with
# only its declared dependencies and extras [sql,parquet] (plus the SQLite provider the check's table needs) and Airflow's pins for that
# release (constraints/airflow-VERSION.txt), then tests/install/check_install.py runs in it.
# Usage: scripts/install_check.sh 3.1.8 3.3.2   (after `make dist`)
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
uv=(.venv/bin/python -m uv)
wheels=(dist/*.whl)
[ ${#wheels[@]} -eq 1 ] || { echo "expected exactly one wheel in dist/, found: ${wheels[*]}" >&2; exit 2; }
status=0
for version in "$@"; do
  venv=$(mktemp -d "${TMPDIR:-/tmp}/zendrive-wheel-$version-XXXXXX")
  started=$SECONDS
  "${uv[@]}" venv --quiet --python "$python" "$venv"
  "${uv[@]}" pip install --quiet --python "$venv/bin/python" \
    --constraint "constraints/airflow-$version.txt" \
    "${wheels[0]}[sql,parquet]" "apache-airflow==$version" apache-airflow-providers-sqlite
  echo "Airflow $version: fresh venv with the wheel installed in $((SECONDS - started)) s ($venv)"
  "$venv/bin/python" tests/install/check_install.py --airflow "$version" || status=1
  rm -rf "$venv"
done
exit $status
