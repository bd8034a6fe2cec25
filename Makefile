# Two commands for a fresh machine: `make demo` (set up + run the main job) and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EDGE_STAMP := $(VENV)/.installed-edge
APT_PACKAGES := chromium mosquitto openssl postgresql

.PHONY: demo edge test lint typecheck setup system-deps clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# EasyOCR imports torchvision, which only imports beside the torch it was built for: pin the pair.
$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install -q "torch==2.14.1" "torchvision==0.29.1" -e ".[train,ensemble,mlflow,web,fleet,dev]"
	touch $(STAMP)

setup: $(STAMP)

# The edge install: the core and the web extra only (no torch, torchvision, EasyOCR, mlflow or dev tools).
$(EDGE_STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e ".[web]"
	touch $(EDGE_STAMP)

edge: $(EDGE_STAMP)

# System packages the tests drive for real (headless Chromium for the web pages, the MQTT broker, PostgreSQL
# for the fleet collector).
system-deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing system packages:$$missing"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

# The main job on its built-in demo camera: detect, track, keep best crops, read, print the score.
demo: edge
	$(BIN)/platepilot run --duration 60 --stats

lint: setup
	$(BIN)/ruff check platepilot scripts tests benchmarks
	$(BIN)/ruff format --check platepilot scripts tests benchmarks

typecheck: setup
	$(BIN)/mypy platepilot

test: setup system-deps lint typecheck
	$(BIN)/pytest -q

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
