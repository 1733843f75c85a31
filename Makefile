# Two entry points, each from a fresh machine: `make tour` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
OUT ?= tour-output

.PHONY: install-run install-test browser tour test lint bench
# apt-get needs root: CI runs as root, elsewhere sudo asks
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

install-run: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[torch,pictures]'

install-test: $(BIN)/python browser
	$(BIN)/pip install --quiet -e '.[test]'

# the explorer's tests drive Debian's chromium through Playwright (`playwright install` cannot download here)
browser:
	@command -v chromium >/dev/null || ($(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium >/dev/null)

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
	$(BIN)/python benchmarks/operators.py
	$(BIN)/python benchmarks/render.py
	$(BIN)/python benchmarks/verify_sweep.py
	$(BIN)/python benchmarks/analysis.py
	$(BIN)/python benchmarks/explorer.py
