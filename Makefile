# The two commands a fresh machine needs: `make demo` and `make test` (see README.md).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DB ?= sqlite:///data/estateflow.db
D1_ENGINE := tests/d1_engine

.PHONY: demo test lint bench bench-d1 bench-rollback clean system-deps

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

# The local D1 engine the D1 tests and benchmarks run: Miniflare (Cloudflare's workerd and D1), pinned
# in its package-lock.json; reinstalled only when that file changes.
$(D1_ENGINE)/node_modules/.installed: $(D1_ENGINE)/package-lock.json
	@command -v node >/dev/null || { echo "the local D1 engine needs Node.js 20 or newer: install node and npm" >&2; exit 1; }
	cd $(D1_ENGINE) && npm ci
	touch $@

test: $(BIN)/.installed-dev system-deps $(D1_ENGINE)/node_modules/.installed
	$(BIN)/ruff check estateflow_nb tests benchmarks
	$(BIN)/ruff format --check estateflow_nb tests benchmarks
	$(BIN)/pytest -q

lint: $(BIN)/.installed-dev
	$(BIN)/ruff check estateflow_nb tests benchmarks
	$(BIN)/ruff format --check estateflow_nb tests benchmarks

bench: $(BIN)/.installed-dev
	$(BIN)/python benchmarks/bench_import.py

# The D1 path against the local engine, beside a minimal reference client (see benchmarks/bench_d1.py).
bench-d1: $(BIN)/.installed-dev $(D1_ENGINE)/node_modules/.installed
	$(BIN)/python benchmarks/bench_d1.py

# Backup, rollback and restore timings on a 500,000-row database (working files in benchmarks/work/).
bench-rollback: $(BIN)/.installed
	$(BIN)/python benchmarks/bench_rollback.py

clean:
	rm -rf $(VENV) data/*.db data/*.db-* data/*.sql data/rejects reports/*.html reports/*.ipynb
