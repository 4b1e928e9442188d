# Two commands do all the set-up on a fresh machine:
#   make run   — create .venv, install, run the default experiment (teacher → odd → even → LoRA → report)
#   make test  — create .venv, install with the test extras, run the whole test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
ARGS ?=

.PHONY: run test lint bench serve clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test,bench]'
	touch $@ $(VENV)/.installed $(VENV)/.installed-bench

$(VENV)/.installed-bench: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[bench]'
	touch $@ $(VENV)/.installed

run: $(VENV)/.installed
	$(BIN)/distilora run $(ARGS)

test: $(VENV)/.installed-test
	bash scripts/ensure_chromium.sh
	$(BIN)/ruff check src tests scripts benchmarks
	$(BIN)/lint-imports --no-logo
	$(BIN)/python -m pytest $(ARGS)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check src tests scripts benchmarks
	$(BIN)/lint-imports --no-logo

bench: $(VENV)/.installed-bench
	$(BIN)/python -m benchmarks $(ARGS)

serve: $(VENV)/.installed
	$(BIN)/distilora serve $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
