# `make run`: the checkbox search on the built-in data. `make test`: the whole test suite (with the image
# built first where podman is installed: its tests run it). `make image`: the container image.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
PODMAN := $(shell command -v podman)
IMAGE_INPUTS := pyproject.toml README.md .dockerignore $(wildcard deploy/container/*) \
	$(shell find search spaces trainers -name '*.py' 2>/dev/null)

.PHONY: run test install install-dev image benchmark clean

run: install
	$(BIN)/hpsearch run --space checkbox --trials 50

test: install-dev $(if $(PODMAN),image)
	$(BIN)/pytest

# rebuilt when what goes into it changes (a change of code rebuilds its last layer only)
image: build/image
build/image: $(IMAGE_INPUTS)
	deploy/container/build
	@mkdir -p build && touch $@

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
	rm -rf $(VENV) studies.db artifacts .pytest_cache build
