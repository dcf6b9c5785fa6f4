# The two commands a newcomer needs: `make demo` and `make test`.
# Both create .venv and install chainml into it on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test test-all bench bench-ci lint docs-cli clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

demo: $(BIN)/.installed     ## the whole story on the embedded SQLite default
	PATH="$(abspath $(BIN)):$$PATH" bash examples/demo.sh

test: $(BIN)/.installed     ## the test suite on SQLite and PostgreSQL (and MariaDB)
	$(BIN)/pytest

test-all: $(BIN)/.installed ## including the slow stress and crash variants
	$(BIN)/pytest -m ""

bench: $(BIN)/.installed    ## the scale benchmark (see docs/performance.md)
	$(BIN)/python -m bench

docs-cli: $(BIN)/.installed ## regenerate docs/cli-reference.md from --help
	$(BIN)/python docs/gen_cli_reference.py

lint: $(BIN)/.installed
	$(BIN)/ruff check chainml cli tests
	$(BIN)/mypy

clean:
	rm -rf $(VENV) demo-out build dist *.egg-info
