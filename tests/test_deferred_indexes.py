"""A big import drops the secondary indexes, loads, and builds them at the end; killed in between, the
next connect() builds them, and the resumed import ends exactly as an import that was never killed."""

from __future__ import annotations

import csv
import json
import os
import signal
import sqlite3
import subprocess
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from estateflow_nb import (
    ImportFailedError,
    TransientError,
    _deferred_indexes,
    _retry,
    connect,
    generate_records,
    import_file,
    importer,
)
from estateflow_nb._deferred_indexes import DEFER_MIN_RECORDS
from estateflow_nb._forwarding import Forwarding
from estateflow_nb._testing import KILL_HOOK_ENV
from estateflow_nb.importer import BatchMetrics
from estateflow_nb.schema import INDEX_STATEMENTS
from estateflow_nb.targets import ExecuteResult, InsertRows, SQLiteTarget, Statement

from .conftest import CLI, ROOT, count, ledger_balances, snapshot, write_csv


def indexes(path: Path) -> set[str]:
    """The secondary indexes of professionals in the file, read past our connect()."""
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'professionals'")
        return {name for (name,) in rows} & set(INDEX_STATEMENTS)
    finally:
        conn.close()


def without_ids(target: Any) -> dict[str, tuple[Any, ...]]:
    """The table by license, without row ids and provenance: what two imports of one file share."""
    return {license: row[1:-2] for license, row in snapshot(target).items()}


def test_a_big_import_into_a_small_table_loads_without_the_secondary_indexes(
    target: SQLiteTarget, make_csv: Callable[..., Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(_deferred_indexes, "DEFER_MIN_RECORDS", 100)
    seen: list[tuple[set[str], str | None, int]] = []

    def look(metrics: BatchMetrics) -> None:
        (row,) = target.query("SELECT deferred_indexes FROM ef_imports")
        with connect(target.url) as reader:  # another command meanwhile: the run is live, nothing is built
            answer = count(reader, "SELECT COUNT(*) FROM professionals WHERE state = 'TX'")
            assert answer == count(reader, "SELECT COUNT(*) FROM professionals NOT INDEXED WHERE state = 'TX'")
        seen.append((indexes(target.path), row["deferred_indexes"], answer))

    source = make_csv(300, mutate={7: {"email": "broken"}})
    result = import_file(target, source, batch_size=100, progress=look)
    assert [(found, json.loads(note) if note else None) for found, note, _ in seen] == [
        (set(), list(INDEX_STATEMENTS))
    ] * 3
    assert indexes(target.path) == set(INDEX_STATEMENTS)
    assert target.scalar("SELECT deferred_indexes FROM ef_imports") is None
    assert (result.status, result.inserted, result.rejected) == ("completed", 299, 1)
    with connect(f"sqlite:///{tmp_path / 'plain.db'}", create=True) as plain:
        monkeypatch.setattr(_deferred_indexes, "DEFER_MIN_RECORDS", 10**9)
        import_file(plain, source, batch_size=100)
        assert without_ids(plain) == without_ids(target)
        assert target.query("PRAGMA integrity_check") == [{"integrity_check": "ok"}]


def test_the_builds_give_the_connection_its_page_cache_back(
    target: SQLiteTarget, make_csv: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The builds sort in small runs (a small page cache); the import's connection then has its own
    cache again, for whatever the same process does next."""
    monkeypatch.setattr(_deferred_indexes, "DEFER_MIN_RECORDS", 100)
    own = target.scalar("PRAGMA cache_size")
    seen: list[int] = []
    target.connection.set_trace_callback(
        lambda sql: seen.append(int(sql.split("=")[1])) if sql.startswith("PRAGMA cache_size") else None
    )
    import_file(target, make_csv(300), batch_size=100)
    assert indexes(target.path) == set(INDEX_STATEMENTS)
    assert seen == [-2000, own] and target.scalar("PRAGMA cache_size") == own


def test_an_import_smaller_than_the_table_keeps_the_indexes(
    target: SQLiteTarget, make_csv: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_deferred_indexes, "DEFER_MIN_RECORDS", 100)
    import_file(target, make_csv(300), batch_size=100)
    seen: list[set[str]] = []
    import_file(
        target,
        make_csv(200, name="more.csv", start=1000),
        batch_size=100,
        progress=lambda _: seen.append(indexes(target.path)),
    )
    assert seen == [set(INDEX_STATEMENTS)] * 2


def test_an_import_that_keeps_the_indexes_writes_with_a_larger_page_cache_and_gives_it_back(
    target: SQLiteTarget, make_csv: Callable[..., Path]
) -> None:
    """Keeping the indexes up writes all over them: such an import writes with a larger page cache, and
    the connection has its own again after it, completed or stopped, even by a closed connection."""
    own, kept = target.scalar("PRAGMA cache_size"), int(_deferred_indexes.KEPT_CACHE_PRAGMA.split("=")[1])
    assert kept < own  # negative: KiB, so larger
    import_file(target, make_csv(300), batch_size=100)
    during: list[int] = []
    more = make_csv(200, name="more.csv", start=1000)
    import_file(target, more, batch_size=100, progress=lambda _: during.append(target.scalar("PRAGMA cache_size")))
    assert during == [kept, kept] and target.scalar("PRAGMA cache_size") == own

    def interrupt(_: BatchMetrics) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        import_file(target, make_csv(200, name="stopped.csv", start=2000), batch_size=100, progress=interrupt)
    assert target.scalar("PRAGMA cache_size") == own

    def close(_: BatchMetrics) -> None:
        target.connection.close()

    with pytest.raises(sqlite3.ProgrammingError, match="closed"):  # not an error from giving the cache back
        import_file(target, make_csv(200, name="closed.csv", start=3000), batch_size=100, progress=close)


def test_connect_builds_the_indexes_a_dead_run_deferred(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    with connect(f"sqlite:///{path}", create=True) as target:
        import_file(target, write_csv(tmp_path / "a.csv", generate_records(50)), batch_size=10)
        # As a run killed mid-load leaves it: indexes dropped, the note in its row, its process gone.
        target.connection.execute("UPDATE ef_imports SET status = 'running', claim = 'gone', claim_owner = NULL")
        target.execute(_deferred_indexes.defer(str(target.scalar("SELECT id FROM ef_imports")), "gone"))
    assert indexes(path) == set()
    with connect(f"sqlite:///{path}") as target:
        assert indexes(path) == set(INDEX_STATEMENTS)
        assert target.scalar("SELECT deferred_indexes FROM ef_imports") is None


RECORDS = DEFER_MIN_RECORDS + 5_000


@pytest.mark.parametrize(
    ("how", "kill_at", "checkpoint"),
    [
        (["--batch-size", "10000"], "3:before", 20_000),
        (["--batch-size", "10000"], "3:after", 30_000),
        (["--batch-size", "10000"], "finish:before", RECORDS),
        # The rung's own batch size: all 55,000 records in one commit (up to 100,000 a commit), its
        # six batches streamed into it.
        (["--yes"], "1:before", 0),
        (["--yes"], "1:after", RECORDS),
    ],
)
def test_resume_after_sigkill_of_a_deferred_import_gives_exactly_the_clean_result(
    tmp_path: Path, how: list[str], kill_at: str, checkpoint: int
) -> None:
    records = RECORDS
    rows = list(generate_records(records, seed=5))
    for bad in (7, 25_003, records - 2):  # rejects in the first batch, the killed one and the last
        rows[bad]["email"] = "broken"
    source = write_csv(tmp_path / "big.csv", rows)
    path = tmp_path / "killed.db"
    env = {**os.environ, KILL_HOOK_ENV: kill_at, "PYTHONPATH": str(ROOT)}
    command = [*CLI, "import", str(source), "--db", f"sqlite:///{path}", *how, "--json"]
    killed = subprocess.run(command, env=env, capture_output=True, text=True, cwd=tmp_path)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    conn = sqlite3.connect(path)
    ((status, note, reached),) = conn.execute("SELECT status, deferred_indexes, checkpoint FROM ef_imports")
    conn.close()
    assert (status, json.loads(note), reached) == ("running", list(INDEX_STATEMENTS), checkpoint)
    assert indexes(path) == set()
    with connect(f"sqlite:///{path}") as target:  # any command: the dead run's indexes are built first
        assert indexes(path) == set(INDEX_STATEMENTS)
        assert ledger_balances(target)
    del env[KILL_HOOK_ENV]
    resumed = subprocess.run(command, env=env, capture_output=True, text=True, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads(resumed.stdout)
    assert summary["resumed_from"] == checkpoint and summary["status"] == "completed"
    assert summary["batches"] == (1 if how == ["--yes"] else 6)
    assert (summary["inserted"], summary["rejected"]) == (records - 3, 3)
    assert indexes(path) == set(INDEX_STATEMENTS)
    with connect(f"sqlite:///{tmp_path / 'clean.db'}", create=True) as clean, connect(f"sqlite:///{path}") as target:
        import_file(clean, source, batch_size=10_000)
        assert without_ids(target) == without_ids(clean)
        assert ledger_balances(target) and target.scalar("SELECT deferred_indexes FROM ef_imports") is None
        assert target.query("PRAGMA integrity_check") == [{"integrity_check": "ok"}]
    with open(summary["rejects_path"], newline="", encoding="utf-8") as f:
        assert [r["record"] for r in csv.DictReader(f)] == ["8", "25004", str(records - 1)]


class BusyMidStream(Forwarding):
    """SQLite that reports itself busy half way through the rows of the second commit, as a lock that
    lasted past the busy timeout would: the transaction is rolled back, and the rows read from the
    reader for it are gone."""

    def __init__(self, inner: SQLiteTarget) -> None:
        super().__init__(inner)
        self.commits = 0

    def execute(self, statements: Sequence[Statement], *, before_commit: Any = None) -> ExecuteResult:
        if not any(isinstance(s, InsertRows) for s in statements):
            return self.inner.execute(statements, before_commit=before_commit)
        self.commits += 1
        if self.commits != 2:
            return self.inner.execute(statements, before_commit=before_commit)

        def busy_half_way(rows: Iterable[Any]) -> Iterator[Any]:
            for n, row in enumerate(rows):
                if n == 150:
                    raise TransientError("SQLite: database is locked")
                yield row

        statements = [replace(s, rows=busy_half_way(s.rows)) if isinstance(s, InsertRows) else s for s in statements]
        return self.inner.execute(statements, before_commit=before_commit)


def test_a_commit_of_several_batches_that_fails_part_way_stops_and_resumes_exactly(
    target: SQLiteTarget, make_csv: Callable[..., Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(_retry, "SLEEP", lambda seconds: None)
    monkeypatch.setattr(importer, "COMMIT_RECORDS", 200)  # two of the small rung's 100-record batches
    source = make_csv(500, mutate={20: {"email": "broken"}, 250: {"email": "broken"}, 450: {"email": "broken"}})
    with pytest.raises(ImportFailedError, match="failed part way") as stopped:
        import_file(BusyMidStream(target), source)
    assert stopped.value.result.records_read == 200
    (row,) = target.query("SELECT checkpoint, rejected, batches FROM ef_imports")
    assert (row["checkpoint"], row["rejected"], row["batches"]) == (200, 1, 1)
    assert count(target) == 199 and ledger_balances(target)
    resumed = import_file(target, source)
    assert (resumed.status, resumed.resumed_from, resumed.inserted, resumed.rejected) == ("completed", 200, 497, 3)
    with connect(f"sqlite:///{tmp_path / 'clean.db'}", create=True) as clean:
        import_file(clean, source, batch_size=100)
        assert without_ids(target) == without_ids(clean)
    with open(str(resumed.rejects_path), newline="", encoding="utf-8") as f:
        assert [r["record"] for r in csv.DictReader(f)] == ["21", "251", "451"]


@pytest.mark.parametrize(("records", "commits"), [(149, [100, 149]), (150, [150]), (450, [300, 450])])
def test_a_big_import_commits_several_batches_at_once_from_half_a_commit_on(
    records: int,
    commits: list[int],
    target: SQLiteTarget,
    make_csv: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Records per commit: a batch at a time below half of COMMIT_RECORDS, then up to COMMIT_RECORDS."""
    monkeypatch.setattr(importer, "COMMIT_RECORDS", 300)  # three of the small rung's 100-record batches
    seen: list[int] = []
    result = import_file(target, make_csv(records), progress=lambda metrics: seen.append(metrics.done))
    assert seen == commits and result.batches == len(commits) and count(target) == records
