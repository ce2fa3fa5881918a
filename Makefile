# Quick start: `make demo` (the daily billing DAG end to end on the embedded emulator + SQLite)
# and `make test` (lint, types, the whole test suite). Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PKG := airflow_provider_zendrive

.PHONY: install test lint typecheck pytest demo docs bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip uv

# Reinstall only when the project's metadata changes; uv is a plain PyPI package and much faster than pip.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m uv pip install --python $(BIN)/python --quiet -e ".[test,docs]" \
	  || $(BIN)/python -m pip install --quiet -e ".[test,docs]"
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy --strict $(PKG)

pytest: $(STAMP)
	$(BIN)/python -m pytest

test: lint typecheck pytest

demo: $(STAMP)
	$(BIN)/python scripts/demo.py

docs: $(STAMP)
	$(BIN)/sphinx-build -E -W --keep-going -q -b html docs docs/_build/html

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) docs/_build .demo .mypy_cache .ruff_cache
