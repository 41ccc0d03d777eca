"""The schema's version: new databases get the current schema, earlier ones the migrations after
theirs, readers never write, and nothing is created where nothing was asked for."""

from __future__ import annotations

import shutil
import sqlite3
import threading
from pathlib import Path

import pytest

from estateflow_nb import NoDatabaseError, TargetError, connect, import_file, rollback, verify, write_records
from estateflow_nb._migrations import MIGRATIONS, SCHEMA_VERSION, ensure_schema
from estateflow_nb.schema import SCHEMA_STATEMENTS
from estateflow_nb.targets import Sql, SQLiteTarget
from estateflow_nb.targets._sqlite import PAGE_SIZE

from .conftest import invoke, ledger_balances

FIXTURES = Path(__file__).parent / "fixtures" / "schemas"
# Databases and backups made by earlier commits of this project, one per schema they had (see
# fixtures/schemas/README.md): each must open, verify and take new imports after connect().
EARLIER = sorted(FIXTURES.glob("*.db")) + sorted(FIXTURES.glob("*.sqlite"))


def objects(path: Path) -> dict[tuple[str, str], object]:
    """Every index of a database file with its SQL, and every table with its columns (name, type, not
    null, default, key), in any order: a column added by a migration comes last, as ALTER TABLE puts it."""
    conn = sqlite3.connect(path)
    try:
        found: dict[tuple[str, str], object] = {}
        for kind, name, sql in conn.execute("SELECT type, name, sql FROM sqlite_master"):
            columns = sorted(tuple(r[1:]) for r in conn.execute(f"PRAGMA table_info({name})"))
            found[(kind, name)] = columns if kind == "table" else sql
        return found
    finally:
        conn.close()


def page_size(path: Path) -> tuple[int]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("PRAGMA page_size").fetchone()
    finally:
        conn.close()


def fresh_objects(tmp_path: Path) -> dict[tuple[str, str], object]:
    path = tmp_path / "fresh.db"
    conn = sqlite3.connect(path)
    for statement in SCHEMA_STATEMENTS:
        conn.execute(statement)
    conn.close()
    return objects(path)


def test_versions_are_numbered_one_to_the_current_one() -> None:
    assert [m.version for m in MIGRATIONS] == list(range(1, SCHEMA_VERSION + 1))


def test_a_new_database_gets_the_current_schema_and_its_version(tmp_path: Path) -> None:
    with connect(f"sqlite:///{tmp_path / 'new.db'}", create=True) as target:
        assert target.schema_version() == SCHEMA_VERSION
        assert target.scalar("PRAGMA journal_mode") == "wal"
    assert objects(tmp_path / "new.db") == fresh_objects(tmp_path)
    # Pages of 8 KiB in a database we create (a big import loads faster); any other keeps its own.
    assert page_size(tmp_path / "new.db") == (PAGE_SIZE,)
    assert PAGE_SIZE != 4096


@pytest.mark.parametrize("earlier", EARLIER, ids=lambda p: p.stem)
def test_a_database_of_every_earlier_schema_is_migrated_and_works(earlier: Path, tmp_path: Path) -> None:
    path = tmp_path / earlier.name
    shutil.copy(earlier, path)
    before = sqlite3.connect(path).execute("SELECT * FROM professionals ORDER BY id").fetchall()
    with connect(f"sqlite:///{path}") as target:
        assert target.schema_version() == SCHEMA_VERSION
        assert target.query("SELECT * FROM professionals ORDER BY id") != []
        assert [tuple(r.values()) for r in target.query("SELECT * FROM professionals ORDER BY id")] == before
        assert all(check.passed for check in verify(target, benchmarks=False).checks)
        new = import_file(target, write_records(tmp_path / "more.csv", 30, start=10_000))
        assert new.inserted == 30 and ledger_balances(target)
        undone = rollback(target, import_id=new.import_id, yes=True, backups_dir=tmp_path / "backups")
        assert undone.rows_removed == 30 and ledger_balances(target)
    assert objects(path) == fresh_objects(tmp_path)
    assert page_size(path) == page_size(earlier)


def test_a_database_at_the_current_version_is_only_read(tmp_path: Path) -> None:
    """Opening takes no write lock: a reader opens and answers while another process holds one."""
    url = f"sqlite:///{tmp_path / 'busy.db'}"
    with connect(url, create=True) as target:
        import_file(target, write_records(tmp_path / "a.csv", 20))
    writer = sqlite3.connect(tmp_path / "busy.db", isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("UPDATE ef_imports SET error = 'writing'")
    try:
        answered: list[int] = []
        reader = threading.Thread(target=lambda: answered.append(_count_with_a_short_timeout(url)))
        reader.start()
        reader.join()
        assert answered == [20]
        done = invoke("status", "--db", url, cwd=tmp_path)
        assert done.returncode == 0 and "20 rows" in done.stdout.replace(",", "")
    finally:
        writer.execute("ROLLBACK")
        writer.close()


def _count_with_a_short_timeout(url: str) -> int:
    with connect(url) as target:
        target.query("PRAGMA busy_timeout = 100")
        return int(target.scalar("SELECT COUNT(*) FROM professionals"))


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    connect(f"sqlite:///{path}", create=True).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(TargetError, match=f"schema version {SCHEMA_VERSION + 1}, newer than"):
        connect(f"sqlite:///{path}")


def test_a_migration_that_lost_the_race_does_nothing(tmp_path: Path) -> None:
    """Two processes open one earlier database at once: the second finds the work done."""
    path = tmp_path / "raced.db"
    shutil.copy(FIXTURES / "v1-51fb539.db", path)
    first, second = SQLiteTarget(path), SQLiteTarget(path)
    try:
        assert first.schema_version() == second.schema_version() == 0
        ensure_schema(first, create=False)
        ensure_schema(second, create=False)  # planned from version 0, finds SCHEMA_VERSION inside its transaction
        assert second.schema_version() == SCHEMA_VERSION
    finally:
        first.close()
        second.close()
    assert objects(path) == fresh_objects(tmp_path)


READING = [
    ["verify"],
    ["status"],
    ["backup"],
    ["rollback", "last", "--yes"],
    ["rollback", "reset", "--yes"],
    ["restore", "backup-x.sqlite", "--yes"],
    ["report", "verification"],
]


@pytest.mark.parametrize("command", READING, ids=lambda c: " ".join(c[:2]))
def test_reading_commands_never_create_a_database(command: list[str], tmp_path: Path) -> None:
    missing = tmp_path / "typo" / "estateflow.db"
    done = invoke(*command, "--db", f"sqlite:///{missing}", cwd=tmp_path)
    assert done.returncode == 1, done.stdout
    assert done.stderr == f"Error: no database at {missing}\n"
    assert not missing.parent.exists()
    # A relative path is shown as the absolute path it meant.
    done = invoke(*command, "--db", "sqlite:///typo.db", cwd=tmp_path)
    assert done.stderr == f"Error: no database at {tmp_path / 'typo.db'}\n" and not (tmp_path / "typo.db").exists()


def test_import_creates_the_database_and_its_folder(tmp_path: Path, make_csv: object) -> None:
    source = write_records(tmp_path / "a.csv", 10)
    done = invoke("import", str(source), "--db", f"sqlite:///{tmp_path / 'new' / 'x.db'}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "new" / "x.db").is_file()


@pytest.mark.parametrize("where", ["a-file/x.db", "/proc/self/x.db", "/proc/estateflow/x.db"])
def test_paths_that_cannot_hold_a_database_give_one_line(where: str, tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    path = where if where.startswith("/") else str(tmp_path / where)
    for command in (["status"], ["import", str(write_records(tmp_path / "a.csv", 10))]):
        done = invoke(*command, "--db", f"sqlite:///{path}", cwd=tmp_path)
        assert done.returncode == 1 and done.stderr.startswith("Error: ") and path in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_no_database_from_python_is_an_error_of_its_own(tmp_path: Path) -> None:
    with pytest.raises(NoDatabaseError, match="no database at"):
        connect(f"sqlite:///{tmp_path / 'nothing.db'}")
    assert list(tmp_path.iterdir()) == []


def test_d1_keeps_its_version_in_a_table_and_reading_writes_nothing(d1_url: str) -> None:
    with pytest.raises(NoDatabaseError, match=f"no EstateFlow database at {d1_url}"):
        connect(d1_url)
    with connect(d1_url, create=True) as target:
        assert target.schema_version() == SCHEMA_VERSION
        assert target.scalar("SELECT version FROM ef_schema") == SCHEMA_VERSION
        before = target.bookmark()
    with connect(d1_url) as target:
        assert target.bookmark() == before  # opening an up-to-date database wrote nothing
        # A database made before versions were kept: the tables, no ef_schema.
        target.execute([Sql("DROP TABLE ef_schema"), Sql("ALTER TABLE ef_rollbacks DROP COLUMN bookmark")])
        assert target.schema_version() == 0
    with connect(d1_url) as target:
        assert target.schema_version() == SCHEMA_VERSION
        assert "bookmark" in [c["name"] for c in target.query("PRAGMA table_info(ef_rollbacks)")]
