# Quick start: `make demo` (the daily billing DAG end to end on the embedded emulator + SQLite)
# and `make test` (lint, types, the whole test suite, then the built wheel on each Airflow we claim).
# Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.installed-bench
UV := $(BIN)/python -m uv
# The Airflow releases CI proves: the floor minor's latest patch and the latest 3.x. pyproject.toml's
# `apache-airflow>=X.Y` must be the floor's minor (tests/test_packaging.py checks it).
AIRFLOW_FLOOR := 3.1.8
AIRFLOW_LATEST := 3.3.2
# `make install-check INSTALL_CHECK_AIRFLOW="3.1.8 3.2.2 3.3.2"` checks any releases with pins in constraints/.
INSTALL_CHECK_AIRFLOW ?= $(AIRFLOW_FLOOR) $(AIRFLOW_LATEST)
# The CPython minors CI proves; pyproject.toml's classifiers list exactly these and requires-python is the
# lowest (tests/test_packaging.py checks both). $(PYTHON) (the first) runs everything; each other one runs the
# install check (the wheel under airflow standalone, the browser check included) on the latest Airflow.
CI_PYTHONS := 3.11 3.12 3.13
# Airflow's pins for a release, as its own constraint files do (see constraints/README.md).
CONSTRAINTS := constraints/airflow-$(AIRFLOW_LATEST).txt

.PHONY: install test lint typecheck pytest unit dist install-check install-check-pythons distributed faults demo docs docs-rtd bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip uv

# Reinstall only when the project's metadata or the pins change; uv is a plain PyPI package, much faster than pip.
$(STAMP): pyproject.toml $(CONSTRAINTS) | $(BIN)/python
	$(UV) pip install --python $(BIN)/python --quiet --constraint $(CONSTRAINTS) \
	  -e ".[test,docs,parquet]" "apache-airflow==$(AIRFLOW_LATEST)"
	touch $(STAMP)

$(BENCH_STAMP): $(STAMP)
	$(UV) pip install --python $(BIN)/python --quiet --constraint $(CONSTRAINTS) -e ".[test,docs,parquet,bench]"
	touch $(BENCH_STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The package, the tests, the benchmarks and the scripts: what to check, and where the tests' and benchmarks'
# top-level helper modules live, is in pyproject.toml's [tool.mypy].
typecheck: $(STAMP)
	$(BIN)/mypy --strict

pytest: $(STAMP)
	$(BIN)/python -m pytest

# The pure logic alone (windows, validation, redaction, settings, retries, status mapping, decoding, merging,
# formats, table names, the exception tree): seconds; tests/unit/conftest.py refuses any subprocess or socket.
unit: $(STAMP)
	$(BIN)/python -m pytest -q tests/unit

test: lint typecheck pytest install-check install-check-pythons docs-rtd distributed faults

# The artefacts users install, checked as PyPI would render them.
dist: $(STAMP)
	rm -rf dist
	$(UV) build --quiet --out-dir dist
	$(BIN)/twine check --strict dist/*

# The wheel with only its declared dependencies, in a fresh venv per Airflow release, under a real deployment.
install-check: dist
	PYTHON=$(PYTHON) scripts/install_check.sh $(INSTALL_CHECK_AIRFLOW)

# The install check on every other Python of CI_PYTHONS, with the latest Airflow; a Python the machine lacks
# fails the target: the classifiers must not claim what this run did not prove.
install-check-pythons: dist
	set -e; for version in $(wordlist 2,99,$(CI_PYTHONS)); do \
	  python=$$(scripts/find_python.sh $$version); \
	  echo "Python $$version: $$python"; \
	  PYTHON=$$python scripts/install_check.sh $(AIRFLOW_LATEST); \
	done

# The wheel in a distributed deployment: PostgreSQL, Redis, and the API server, scheduler, DAG processor,
# triggerer and a Celery worker as separate processes (needs redis-server and PostgreSQL's server binaries).
distributed: dist
	PYTHON=$(PYTHON) AIRFLOW_VERSION=$(AIRFLOW_LATEST) scripts/distributed_check.sh $(DISTRIBUTED_ARGS)

# The fault suite (tests/faults/, marked `faults`, which plain pytest deselects): processes killed, servers
# restarted, the API unreachable, on a real deployment from the dev venv; then Redis restarted under the
# CeleryExecutor, in the distributed check's venv. Prints the figures docs/guides/reliability.rst shows.
faults: dist
	$(BIN)/python -m pytest -m faults tests/faults
	CHECK=tests/faults/celery_redis_restart.py PYTHON=$(PYTHON) AIRFLOW_VERSION=$(AIRFLOW_LATEST) \
	  scripts/distributed_check.sh

demo: $(STAMP)
	$(BIN)/python scripts/demo.py

docs: $(STAMP)
	$(BIN)/sphinx-build -E -W --keep-going -q -b html docs docs/_build/html

# What Read the Docs runs: .readthedocs.yaml's commands in a fresh venv, on a copy of the tracked files.
docs-rtd: $(STAMP)
	$(BIN)/python scripts/rtd_build.py

bench: $(BENCH_STAMP)
	$(BIN)/python benchmarks/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) dist docs/_build .demo .mypy_cache .ruff_cache
