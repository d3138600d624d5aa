PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint bench chaos clean

$(BIN)/ordersync: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.test-deps: $(BIN)/ordersync
	$(BIN)/pip install -q -e '.[test]'
	touch $@

demo: $(BIN)/ordersync
	$(BIN)/ordersync demo

test: $(VENV)/.test-deps
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
	rm -rf $(VENV) ordersync-demo.db .ordersync-demo
