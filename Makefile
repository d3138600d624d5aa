PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint bench chaos clean postgresql chromium

$(BIN)/ordersync: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.test-deps: $(BIN)/ordersync
	$(BIN)/pip install -q -e '.[test]'
	touch $@

# The demo runs the sandboxes (the sandbox extra) and ends by pointing to the dashboard (the dashboard extra).
$(VENV)/.demo-deps: $(BIN)/ordersync
	$(BIN)/pip install -q -e '.[sandbox,dashboard]'
	touch $@

demo: $(VENV)/.demo-deps
	$(BIN)/ordersync demo

# The tests start a real PostgreSQL server of their own (tests/pg_server.py): install Debian's server where missing.
postgresql:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || \
		{ apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql; }

# The dashboard's browser tests drive Debian's chromium with Playwright (never `playwright install`).
chromium:
	@test -x /usr/bin/chromium || { SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q chromium; }

test: $(VENV)/.test-deps postgresql chromium
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/pytest -q

# make bench [ARGS=--full] [ARGS="--apis frontcore --profile"]: see benchmarks/run.py --help
bench: $(VENV)/.test-deps
	$(BIN)/pip install -q -e '.[bench]'
	$(BIN)/python benchmarks/run.py $(ARGS)

# make chaos [ARGS=--quick] [ARGS=--postgres]: see benchmarks/chaos.py --help
chaos: $(VENV)/.test-deps
	$(BIN)/python benchmarks/chaos.py $(ARGS)

clean:
	rm -rf $(VENV) ordersync-demo.db ordersync-demo.db.locks .ordersync-demo
