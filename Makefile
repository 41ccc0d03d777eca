# The two commands a fresh machine needs: `make demo` and `make test` (see README.md).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DB ?= sqlite:///data/estateflow.db
D1_ENGINE := tests/d1_engine
# The Jupyter kernel that notebooks name and reports run on (estateflow_nb/reports.py pins it).
KERNEL := estateflow

.PHONY: demo test lint mutation bench bench-d1 bench-rollback bench-reports clean system-deps hooks

# The package (editable: notebooks and reports run this checkout) and its named Jupyter kernel.
$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name $(KERNEL) --display-name "Python ($(KERNEL))"
	touch $@

$(BIN)/.installed-dev: pyproject.toml $(BIN)/.installed
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

$(BIN)/.installed-mutation: pyproject.toml $(BIN)/.installed-dev
	$(BIN)/pip install --quiet -e ".[dev,mutation]"
	touch $@

$(BIN)/.installed-bench: pyproject.toml $(BIN)/.installed-dev
	$(BIN)/pip install --quiet -e ".[dev,bench]"
	touch $@

# Generate the ladder files, run the whole ladder (verifying after each rung), verify once more, and
# write the verification report (its path is the last line printed).
demo: $(BIN)/.installed
	$(BIN)/estateflow generate --ladder
	$(BIN)/estateflow ladder --yes --db $(DB)
	$(BIN)/estateflow verify --db $(DB)
	$(BIN)/estateflow report verification --db $(DB)

# What the tests need outside Python: the sqlite3 shell (tests load .sql files and .dump output with
# it) and Debian's Chromium (the report and JupyterLab browser tests drive /usr/bin/chromium; no
# browser is ever downloaded). Installed with apt-get where we are root; otherwise say what is missing.
system-deps:
	@missing=""; \
	command -v sqlite3 >/dev/null || missing="$$missing sqlite3"; \
	test -x /usr/bin/chromium || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else \
	    echo "missing system packages:$$missing (install them: sudo apt-get install$$missing)" >&2; \
	  fi; \
	fi

# The local D1 engine the D1 tests and benchmarks run: Miniflare (Cloudflare's workerd and D1), pinned
# in its package-lock.json; reinstalled only when that file changes.
$(D1_ENGINE)/node_modules/.installed: $(D1_ENGINE)/package-lock.json
	@command -v node >/dev/null || { echo "the local D1 engine needs Node.js 20 or newer: install node and npm" >&2; exit 1; }
	cd $(D1_ENGINE) && npm ci
	touch $@

test: lint system-deps $(D1_ENGINE)/node_modules/.installed
	$(BIN)/pytest -q -n 2

# Style and types: ruff on everything, mypy on the package (settings in pyproject.toml).
lint: $(BIN)/.installed-dev
	$(BIN)/ruff check estateflow_nb tests benchmarks
	$(BIN)/ruff format --check estateflow_nb tests benchmarks
	$(BIN)/mypy

# Mutation testing (issue 14), not part of `make test`: `make mutation MODULE=verify` for one module
# (several: MODULE="verify rungs"), all of them without MODULE; the table and how to read it are
# printed by tests/mutation.py (its docstring says what to do with a survivor).
MODULE ?=
mutation: $(BIN)/.installed-mutation
	$(BIN)/python tests/mutation.py run $(MODULE)

# For contributors: strip outputs, execution counts and papermill/widget metadata from notebooks as
# they are staged (the filter is named in .gitattributes; this puts it into your git config).
hooks: $(BIN)/.installed-dev
	$(BIN)/nbstripout --install
	git config filter.nbstripout.extrakeys "metadata.papermill cell.metadata.papermill"

bench: $(BIN)/.installed-bench
	$(BIN)/python benchmarks/bench_import.py

# The D1 path against the local engine, beside a minimal reference client (see benchmarks/bench_d1.py).
bench-d1: $(BIN)/.installed-bench $(D1_ENGINE)/node_modules/.installed
	$(BIN)/python benchmarks/bench_d1.py

# Backup, rollback and restore timings on a 500,000-row database (working files in benchmarks/work/).
bench-rollback: $(BIN)/.installed-bench
	$(BIN)/python benchmarks/bench_rollback.py

# How long each report takes to render on 500,000 rows.
bench-reports: $(BIN)/.installed-bench
	$(BIN)/python benchmarks/bench_reports.py

clean:
	rm -rf $(VENV) data/*.db data/*.db-* data/*.sql data/rejects reports/*.html reports/*.ipynb
