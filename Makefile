# Two entry points, each from a fresh machine: `make tour` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
OUT ?= tour-output

.PHONY: install-run install-test tour test lint bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

install-run: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[torch,pictures]'

install-test: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'

tour: install-run
	$(BIN)/convarith tour --out $(OUT)

lint:
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

test: install-test lint
	HYPOTHESIS_PROFILE=ci $(BIN)/python -m pytest -n 2 -q
	$(BIN)/convarith verify --cases 1000

bench: install-test
	$(BIN)/python benchmarks/cli_latency.py
	$(BIN)/python benchmarks/matrix_build.py
	$(BIN)/python benchmarks/reference_ops.py
	$(BIN)/python benchmarks/render.py
	$(BIN)/python benchmarks/verify_sweep.py
	$(BIN)/python benchmarks/analysis.py
