"""Shared fixtures: real SQLite files in a temporary folder and small generated sources."""

from __future__ import annotations

import csv
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

from estateflow_nb import connect, generate_records, import_file, write_records
from estateflow_nb.reports import ReportResult, run_report
from estateflow_nb.schema import RECORD_COLUMNS
from estateflow_nb.targets import Sql, SQLiteTarget

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "estateflow_nb.cli"]


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'estateflow.db'}"


@pytest.fixture
def target(db_url: str) -> Iterable[SQLiteTarget]:
    t = connect(db_url)
    assert isinstance(t, SQLiteTarget)
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


# --- notebooks and reports: small databases built once per session, and the browser ------------------


@pytest.fixture(scope="session")
def explore_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Two clean imports (200 and 150 records, a few of the second rejected): every check passes."""
    folder = tmp_path_factory.mktemp("explore")
    url = f"sqlite:///{folder / 'explore.db'}"
    with connect(url) as target:
        import_file(target, write_records(folder / "a.csv", 200))
        import_file(target, write_records(folder / "b.csv", 150, start=200, invalid_share=0.05))
    return url


@pytest.fixture(scope="session")
def broken_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One clean import of 300 records, plus a row no import accounts for, with a bad email:
    the total count and email format checks fail, with that row in their samples."""
    folder = tmp_path_factory.mktemp("broken")
    url = f"sqlite:///{folder / 'broken.db'}"
    with connect(url) as target:
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
