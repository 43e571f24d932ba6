# `make run`: the checkbox search on the built-in data. `make test`: the whole test suite.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: run test install install-dev benchmark clean

run: install
	$(BIN)/hpsearch run --space checkbox --trials 50

test: install-dev
	$(BIN)/pytest

benchmark: install-dev
	$(BIN)/python benchmarks/pipeline.py
	$(BIN)/python benchmarks/artifacts.py
	$(BIN)/python benchmarks/dashboard.py
	$(BIN)/python benchmarks/search_quality.py checkbox
	$(BIN)/python benchmarks/search_quality.py digits

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(VENV)/bin/python
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(VENV)/bin/python
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@ $(VENV)/.installed

clean:
	rm -rf $(VENV) studies.db artifacts .pytest_cache
