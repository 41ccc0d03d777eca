# The two commands a fresh machine needs: `make demo` and `make test` (see README.md).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DB ?= sqlite:///data/estateflow.db

.PHONY: demo test lint bench bench-rollback clean system-deps

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $@

$(BIN)/.installed-dev: pyproject.toml $(BIN)/.installed
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

# Generate the ladder files, run the whole ladder (verifying after each rung), verify once more.
demo: $(BIN)/.installed
	$(BIN)/estateflow generate --ladder
	$(BIN)/estateflow ladder --yes --db $(DB)
	$(BIN)/estateflow verify --db $(DB)

# What the tests need outside Python: the sqlite3 shell (tests load .sql files and .dump output with it).
system-deps:
	@command -v sqlite3 >/dev/null || { apt-get update -qq && apt-get install -y -qq sqlite3; }

test: $(BIN)/.installed-dev system-deps
	$(BIN)/ruff check estateflow_nb tests benchmarks
	$(BIN)/ruff format --check estateflow_nb tests benchmarks
	$(BIN)/pytest -q

lint: $(BIN)/.installed-dev
	$(BIN)/ruff check estateflow_nb tests benchmarks
	$(BIN)/ruff format --check estateflow_nb tests benchmarks

bench: $(BIN)/.installed-dev
	$(BIN)/python benchmarks/bench_import.py

# Backup, rollback and restore timings on a 500,000-row database (working files in benchmarks/work/).
bench-rollback: $(BIN)/.installed
	$(BIN)/python benchmarks/bench_rollback.py

clean:
	rm -rf $(VENV) data/*.db data/*.db-* data/*.sql data/rejects reports/*.html reports/*.ipynb
