# Two commands for a fresh machine: `make demo` (set up + run the main job) and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV := $(BIN)/uv
STAMP := $(VENV)/.installed
EDGE_STAMP := $(VENV)/.installed-edge
APT_PACKAGES := chromium mosquitto openssl postgresql

.PHONY: demo edge test lint typecheck setup system-deps clean

# The venv gets no pip of its own from venv (ensurepip): uv goes in with the machine's pip, and installs the rest
# (pip too, for hands-on use), several times faster than pip, and without byte-compiling what is never imported.
$(BIN)/python:
	$(PY) -m venv --without-pip $(VENV)

$(UV): | $(BIN)/python
	$(PY) -m pip --python $(BIN)/python install -q "uv>=0.5" || \
		{ $(BIN)/python -m ensurepip >/dev/null && $(BIN)/python -m pip install -q "uv>=0.5"; }

# uv reads none of pip's settings: it gets the indexes, find-links and constraints pip is set up with here, and
# picks the best version across them as pip does.
UV_INSTALL = $(UV) pip install -q --python $(BIN)/python --index-strategy unsafe-best-match \
	$(shell $(PY) scripts/pip_sources_for_uv.py)

# EasyOCR imports torchvision, which only imports beside the torch it was built for: pin the pair. Byte-compiled
# as pip does: the tests start many short `platepilot` processes.
$(STAMP): pyproject.toml | $(UV)
	$(UV_INSTALL) --compile-bytecode pip "torch==2.14.1" "torchvision==0.29.1" -e ".[train,ensemble,mlflow,web,fleet,dev]"
	touch $(STAMP)

setup: $(STAMP)

# The edge install: the core and the web extra only (no torch, torchvision, EasyOCR, mlflow or dev tools).
$(EDGE_STAMP): pyproject.toml | $(UV)
	$(UV_INSTALL) pip -e ".[web]"
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
