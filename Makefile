# Two commands for a fresh machine: `make demo` (set up + run the main job) and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
APT_PACKAGES := chromium

.PHONY: demo test lint typecheck setup system-deps clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# torch==2.13.0 pins the CPU build that pip finds on local disk (a newer torch pulls GBs of CUDA).
$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install -q "torch==2.13.0" -e ".[train,ensemble,mlflow,web,dev]"
	touch $(STAMP)

setup: $(STAMP)

# System packages the tests drive for real (headless Chromium for the web pages).
system-deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing system packages:$$missing"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

# Until the edge runtime lands, the demo is the reader's own life cycle: synthesise plates, read them.
demo: setup
	$(BIN)/platepilot synth plates --count 300 --out output/demo/plates --seed 7 --preview output/demo/plates.png
	$(BIN)/platepilot eval --labels output/demo/plates/labels.txt --report output/demo/report

lint: setup
	$(BIN)/ruff check platepilot scripts tests benchmarks
	$(BIN)/ruff format --check platepilot scripts tests benchmarks

typecheck: setup
	$(BIN)/mypy platepilot

test: setup system-deps lint typecheck
	$(BIN)/pytest -q

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
