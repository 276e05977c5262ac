# Two entry points: `make run` (the main job) and `make test` (everything CI checks).
# Both create .venv and install what they need on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test system-packages lint typecheck unit bench fuzz clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/xenmem serve

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

# Debian packages the tests need (node, npm, chromium, its driver): installed when missing.
system-packages:
	scripts/system-packages

unit: $(STAMP) system-packages
	$(BIN)/pytest

test: lint typecheck unit

bench: $(STAMP)
	$(BIN)/python -m bench

# The long hostile-input run (BENCHMARKS.md, "Fuzzing"); the test suite runs its first cases.
fuzz: $(STAMP)
	$(BIN)/python -m bench.fuzz --cases 100000 --http

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
