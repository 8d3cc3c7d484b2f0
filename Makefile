# make run | make test | make bench | make lint
# Each target first builds .venv with the project and every plugin folder installed editable.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PLUGIN_DIRS := $(patsubst %/pyproject.toml,%,$(wildcard plugins/*/pyproject.toml))
PIP := $(BIN)/python -m pip --disable-pip-version-check

.PHONY: install run test bench lint clean

$(STAMP): pyproject.toml $(wildcard plugins/*/pyproject.toml)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet -e '.[test,lint]' $(addprefix -e ,$(PLUGIN_DIRS))
	touch $@

install: $(STAMP)

run: install
	$(BIN)/orrery daemon --plugins-dir examples/plugins

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: install
	$(PIP) install --quiet -e '.[bench]'
	$(BIN)/python bench/run.py

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy sdk/orrery/sdk kernel/orrery/kernel sandbox/orrery/sandbox

clean:
	rm -rf $(VENV) .orrery .pytest_cache .mypy_cache .hypothesis
