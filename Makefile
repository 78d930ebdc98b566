PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PREFIX ?= /usr/local
DESTDIR ?=

.PHONY: venv test lint demo install clean bench

$(BIN)/musiqued: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

venv: $(BIN)/musiqued

lint: venv
	$(BIN)/ruff check musiqued musiquectl tests
	$(BIN)/ruff format --check musiqued musiquectl tests
	$(BIN)/mypy

test: lint
	$(BIN)/pytest -q

demo: venv
	$(BIN)/python -m musiqued.demo

bench: venv
	for b in tests/bench/*_bench.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .pytest_cache .ruff_cache
