# Two commands for a fresh machine: `make demo` (set up + run the main job) and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck setup clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# torch==2.13.0 pins the CPU build that pip finds on local disk (a newer torch pulls GBs of CUDA).
$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install -q "torch==2.13.0" -e ".[train,dev]"
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(BIN)/platepilot demo

lint: setup
	$(BIN)/ruff check platepilot scripts tests benchmarks pilot.py
	$(BIN)/ruff format --check platepilot scripts tests benchmarks pilot.py

typecheck: setup
	$(BIN)/mypy platepilot

test: setup lint typecheck
	$(BIN)/pytest -q

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
