"""Shared fixtures: real SQLite files in a temporary folder, small generated sources, and the local D1
engine (see d1_fixtures.py) for the D1 tests.

Tests that need the local D1 engine (Node.js) are marked `d1`, and those that drive Chromium are
marked `browser`, here, as they are collected: `pytest -m "not d1 and not browser"` runs the rest.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import resource
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

from estateflow_nb import connect, generate_records, import_file, write_records
from estateflow_nb.reports import ReportResult, run_report
from estateflow_nb.schema import RECORD_COLUMNS, STORED_COLUMNS
from estateflow_nb.targets import Sql, SQLiteTarget, Target

from .d1_fixtures import d1_engine, d1_env, d1_target, d1_url  # noqa: F401 (fixtures, found by name)
from .d1_modes import engine_modes  # noqa: F401 (a fixture, found by name)

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "estateflow_nb.cli"]

D1_FIXTURES = frozenset({"d1_engine", "d1_env", "d1_url", "d1_target"})
# Where what drives Chromium comes from: our helpers (browser.py) and Playwright itself.
BROWSER_MODULES = (f"{__package__}.browser", "playwright")


def pytest_configure(config: pytest.Config) -> None:
    """Under `make mutation`: while mutmut maps which tests reach which function ("stats"), a child
    process of a test (the reader process, a CLI run) would inherit that mode and look for mutmut's
    settings in its own working folder, and fail. mutmut keeps the mode in its process as well, so
    the children run the plain code: what they run is invisible to mutmut in any case."""
    if os.environ.get("MUTANT_UNDER_TEST") == "stats":
        del os.environ["MUTANT_UNDER_TEST"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    mutant = os.environ.get("MUTANT_UNDER_TEST", "")
    if "__mutmut_" in mutant:
        _only_the_judges(config, items, mutant)
    for item in items:
        if _uses_d1(item):
            item.add_marker(pytest.mark.d1)
        if _uses_the_browser(item):
            item.add_marker(pytest.mark.browser)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Under `make mutation`: the CPU time of this mutant's tests (its forked process's own, from the
    fork on), one line in mutants/mutant-cpu.jsonl, from which the time of a whole run on an idle
    machine can be reckoned whatever else the machine was doing meanwhile."""
    mutant = os.environ.get("MUTANT_UNDER_TEST", "")
    if "__mutmut_" in mutant:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        with open("mutant-cpu.jsonl", "a", encoding="utf-8") as f:  # in mutants/, where mutmut runs tests
            f.write(json.dumps({"mutant": mutant, "cpu": usage.ru_utime + usage.ru_stime}) + "\n")


def _only_the_judges(config: pytest.Config, items: list[pytest.Item], mutant: str) -> None:
    """Under `make mutation`, a mutant of a module with JUDGES in tests/mutation.py is tried against the
    tests of those files only (of those that reach the mutated function); the module is known from the
    mutant's name, so one mutmut run serves every module. The tests then run quickest first (their times
    from mutmut's own stats): mutmut stops at the first that fails, so a mutant is killed sooner, and a
    survivor runs the same tests as in any order. A mutant listed as equivalent runs no test at all.

    mutmut stops a mutant that loops after a time reckoned from every test that reaches its function,
    which for the record rules is nearly the whole suite: a looping mutant held a worker for minutes.
    Here it is stopped (as mutmut stops one: SIGXCPU, a timeout) after 6x the CPU time of the tests
    that judge it, plus 6 s. CPU time, not wall time: on a busy machine a mutant that only waits for
    its turn at a core is not a mutant that loops, and must not count as killed."""
    from .mutation import judges_of, known_equivalent

    if known_equivalent(mutant):  # listed in tests/mutation_equivalents.toml: no test can kill it
        config.hook.pytest_deselected(items=list(items))
        items[:] = []
        return
    files = judges_of(mutant)
    if files is not None:
        prefixes = tuple(f"tests/{name}.py::" for name in files)
        config.hook.pytest_deselected(items=[item for item in items if not item.nodeid.startswith(prefixes)])
        items[:] = [item for item in items if item.nodeid.startswith(prefixes)]
    stats = Path("mutmut-stats.json")  # mutmut runs the tests in mutants/, beside its stats
    seconds: dict[str, float] = json.loads(stats.read_text())["duration_by_test"] if stats.exists() else {}
    items.sort(key=lambda item: seconds.get(item.nodeid, 0.0))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    limit = math.ceil(usage.ru_utime + usage.ru_stime + (sum(seconds.get(item.nodeid, 0.0) for item in items) + 1) * 6)
    soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
    if limit < soft or soft == resource.RLIM_INFINITY:
        resource.setrlimit(resource.RLIMIT_CPU, (limit if hard == resource.RLIM_INFINITY else min(limit, hard), hard))


def _uses_d1(item: pytest.Item) -> bool:
    """A D1 fixture, or `each_target` in its D1 turn (which asks for the engine only when it runs)."""
    callspec = getattr(item, "callspec", None)
    each = callspec.params.get("each_target") if callspec is not None else None
    return bool(D1_FIXTURES & set(getattr(item, "fixturenames", ()))) or each == "d1"


def _uses_the_browser(item: pytest.Item) -> bool:
    """A test in a module that imports the browser helpers or Playwright."""
    module = getattr(item, "module", None)
    names = vars(module).values() if module is not None else ()
    return any(str(getattr(value, "__module__", "") or "").startswith(BROWSER_MODULES) for value in names)


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'estateflow.db'}"


@pytest.fixture
def target(db_url: str) -> Iterable[SQLiteTarget]:
    t = connect(db_url, create=True)
    assert isinstance(t, SQLiteTarget)
    yield t
    t.close()


@pytest.fixture(params=["sqlite", "d1"])
def each_target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterable[Target]:
    """A SQLite file, then a database of the local D1 engine: for what both targets must do alike."""
    url = f"sqlite:///{tmp_path / 'each.db'}" if request.param == "sqlite" else request.getfixturevalue("d1_url")
    t = connect(url, create=True)
    yield t
    t.close()


def write_csv(path: Path, rows: Iterable[dict[str, Any]], columns: Iterable[str] = RECORD_COLUMNS) -> Path:
    columns = list(columns)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({c: "" if row.get(c) is None else row.get(c) for c in columns})
    return path


@pytest.fixture
def make_csv(tmp_path: Path) -> Callable[..., Path]:
    """make_csv(n, name=..., start=..., mutate={index: {column: value}}) -> a CSV of generated records."""

    def make(n: int, name: str = "pros.csv", start: int = 0, mutate: dict[int, dict[str, Any]] | None = None) -> Path:
        rows = list(generate_records(n, seed=7, start=start))
        for index, changes in (mutate or {}).items():
            rows[index].update(changes)
        return write_csv(tmp_path / name, rows)

    return make


def count(target: Any, sql: str = "SELECT COUNT(*) FROM professionals", params: tuple[Any, ...] = ()) -> int:
    return int(target.scalar(sql, params))


@pytest.fixture(autouse=True)
def _backups_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Backups that a test does not place itself go to its own folder, never into the checkout."""
    monkeypatch.setenv("ESTATEFLOW_BACKUPS", str(tmp_path / "backups"))


def snapshot(target: Any) -> dict[str, tuple[Any, ...]]:
    """The whole professionals table, license number -> (id, every stored column)."""
    rows = target.query(f"SELECT id, {', '.join(STORED_COLUMNS)} FROM professionals")
    return {row["license_number"]: tuple(row.values()) for row in rows}


def ledger_balances(target: Any) -> bool:
    """What verify's first check relies on: every row is counted once by the ledger."""
    return count(target) == int(target.scalar("SELECT COALESCE(SUM(inserted - removed), 0) FROM ef_imports"))


def run_cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The real command in a child process in `cwd`, not at a terminal, with no database or backups
    folder from the environment: backups go to `cwd`/backups. For what only a real process shows
    (the entry point, signals, kills); everything else uses `invoke`, which is ten times faster."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    for name in ("ESTATEFLOW_DB", "ESTATEFLOW_BACKUPS"):
        env.pop(name, None)
    return subprocess.run([*CLI, *args], capture_output=True, text=True, cwd=cwd, env=env, stdin=subprocess.DEVNULL)


def invoke(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The `estateflow` command run in this process (click's CliRunner) in `cwd`, as `run_cli` runs it
    in a child: no terminal, no database or backups folder from the environment. Same result shape:
    `returncode`, `stdout`, `stderr`."""
    from click.testing import CliRunner

    from estateflow_nb.cli import cli

    unset: dict[str, str | None] = {"ESTATEFLOW_DB": None, "ESTATEFLOW_BACKUPS": None}
    with contextlib.chdir(cwd):
        result = CliRunner().invoke(cli, list(args), env={**unset, **(env or {})}, catch_exceptions=False)
    return subprocess.CompletedProcess(["estateflow", *args], result.exit_code, result.stdout, result.stderr)


@pytest.fixture
def two_imports(tmp_path: Path) -> tuple[str, str, str]:
    """(database URL, first import, second import): 40 records, then 20 new ones and 10 of the first
    moved to Key West (on_conflict update), so that undoing the second removes 20 and restores 10."""
    url = f"sqlite:///{tmp_path / 'two.db'}"
    records = list(generate_records(60, seed=3))
    with connect(url, create=True) as target:
        first = import_file(target, write_csv(tmp_path / "a.csv", records[:40]))
        moved = [{**r, "city": "Key West"} for r in records[:10]] + records[40:]
        second = import_file(target, write_csv(tmp_path / "b.csv", moved), on_conflict="update")
    return url, str(first.import_id), str(second.import_id)


# --- notebooks and reports: small databases built once per session, and the browser ------------------


@pytest.fixture(scope="session")
def explore_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Two clean imports (200 and 150 records, one of the second rejected, under the 1% limit): every
    check passes, and the verdict warns of the rejected record."""
    folder = tmp_path_factory.mktemp("explore")
    url = f"sqlite:///{folder / 'explore.db'}"
    with connect(url, create=True) as target:
        import_file(target, write_records(folder / "a.csv", 200))
        import_file(target, write_records(folder / "b.csv", 150, start=200, invalid_share=0.005))
    return url


@pytest.fixture(scope="session")
def broken_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One clean import of 300 records, plus a row no import accounts for, with a bad email:
    the total count and email format checks fail, with that row in their samples."""
    folder = tmp_path_factory.mktemp("broken")
    url = f"sqlite:///{folder / 'broken.db'}"
    with connect(url, create=True) as target:
        import_file(target, write_records(folder / "a.csv", 300))
        target.execute(
            [
                Sql(
                    "INSERT INTO professionals (first_name, last_name, email, license_number, industry, state, city,"
                    " created_at, updated_at) VALUES ('Ada', 'Hand', 'ada.hand-at-example', 'HAND-1', 'legal', 'TX',"
                    " 'Austin', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')"
                )
            ]
        )
    return url


@pytest.fixture(scope="session")
def verification_report(broken_db: str, tmp_path_factory: pytest.TempPathFactory) -> ReportResult:
    """The verification report of `broken_db`, run once by papermill for every test that reads it."""
    return run_report("verification", db=broken_db, out_dir=tmp_path_factory.mktemp("reports"))
