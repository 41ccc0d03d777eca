"""Restore and the backup listing trust nothing: a file must hold exactly our objects, checked from
sqlite_master before any row is read; every read of it runs under a budget; backups of earlier
schemas restore and then work."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from estateflow_nb import (
    UnsafeBackupError,
    backup,
    connect,
    database_key,
    import_file,
    list_backups,
    restore,
    rollback,
    status,
    verify,
    write_records,
)
from estateflow_nb import _backup_checks as checks
from estateflow_nb._migrations import SCHEMA_VERSION
from estateflow_nb.schema import STORED_COLUMNS
from estateflow_nb.targets._sqlite import PAGE_SIZE

from .conftest import count, invoke, ledger_balances, run_cli, snapshot
from .test_migrations import EARLIER, fresh_objects, objects, page_size


@pytest.fixture
def db(tmp_path: Path) -> str:
    """A database with two imports and a rollback of the second: every table has rows."""
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    with connect(url, create=True) as target:
        import_file(target, write_records(tmp_path / "a.csv", 30))
        second = import_file(target, write_records(tmp_path / "b.csv", 10, start=500))
        rollback(target, import_id=second.import_id, yes=True, backups_dir=tmp_path / "kept")
    return url


def crafted(db: str, tmp_path: Path, *statements: str, name: str = "crafted.sqlite") -> Path:
    """A real backup of `db` with `statements` run in it afterwards: what someone could hand over."""
    with connect(db) as target:
        path = backup(target, backups_dir=tmp_path / "made")
    conn = sqlite3.connect(path, isolation_level=None)
    for statement in statements:
        conn.execute(statement)
    conn.close()
    return path.rename(tmp_path / name)


TRIGGER = (
    "CREATE TRIGGER rewrite AFTER INSERT ON professionals BEGIN"
    " UPDATE professionals SET email = 'stolen@evil.example' WHERE id = new.id; DELETE FROM ef_rollbacks; END"
)


def test_a_trigger_inside_a_restored_file_is_refused(db: str, tmp_path: Path) -> None:
    """Restored, it would rewrite the email of every record imported later and empty ef_rollbacks."""
    file = crafted(db, tmp_path, TRIGGER)
    with connect(db) as target:
        before = snapshot(target)
    done = invoke("restore", str(file), "--db", db, "--yes", cwd=tmp_path)
    assert done.returncode == 2 and len(done.stderr.splitlines()) == 1, done.stderr
    assert done.stderr == f"Error: {file} is not an EstateFlow database: it has a trigger 'rewrite' of its own\n"
    with connect(db) as target:
        assert snapshot(target) == before
        later = import_file(target, write_records(tmp_path / "c.csv", 5, start=900))
        emails = {
            r["email"] for r in target.query("SELECT email FROM professionals WHERE import_id = ?", (later.import_id,))
        }
        assert len(emails) == 5 and "stolen@evil.example" not in emails
        assert count(target, "SELECT COUNT(*) FROM ef_rollbacks") == 1


ENDLESS = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT i AS id, " + ", ".join(
    f"'x' AS {column}" for column in STORED_COLUMNS
)


def endless_view_file(db: str, tmp_path: Path, name: str) -> Path:
    """A file like a backup but whose professionals is an endless recursive view with all our columns."""
    return crafted(
        db,
        tmp_path,
        "DROP TABLE professionals",
        f"CREATE VIEW professionals AS {ENDLESS} FROM n",
        name=name,
    )


def in_a_child(tmp_path: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    """The command in its own process: a reader that hangs fails the test by the timeout (as it would
    have before these checks) instead of holding up the suite."""
    command = [sys.executable, "-m", "estateflow_nb.cli", *arguments]
    return subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=120, stdin=subprocess.DEVNULL)


def test_an_endless_view_hangs_no_command(db: str, tmp_path: Path) -> None:
    folder = tmp_path / "backups"
    folder.mkdir()
    # Named as a backup of this very database, so that every listing of its backups reads it.
    file = endless_view_file(db, tmp_path, f"backup-{database_key(db)}-20260101T000000.000Z.sqlite")
    file = file.rename(folder / file.name)
    dry_run = in_a_child(tmp_path, "restore", str(file), "--db", db, "--dry-run")
    assert dry_run.returncode == 2
    assert dry_run.stderr == f"Error: {file} is not an EstateFlow database: it has a view 'professionals' of its own\n"
    listed = in_a_child(tmp_path, "backups", "--db", db, "--backups-dir", str(folder), "--json")
    assert listed.returncode == 0, listed.stderr
    (info,) = json.loads(listed.stdout)["backups"]
    assert info["rows"] is None and "it has a view 'professionals' of its own" in info["error"]
    # The rollback notebook's listing is list_backups(db=...): the same check, in this process.
    (info,) = [b.to_dict() for b in list_backups(db=db, backups_dir=folder)]
    assert info["rows"] is None and info["error"].startswith("refused: ")
    assert in_a_child(tmp_path, "status", "--db", db, "--backups-dir", str(folder)).returncode == 0


@pytest.mark.parametrize(
    ("statements", "said"),
    [
        (["CREATE TABLE notes (body TEXT)"], "it has a table 'notes' of its own"),
        (["CREATE VIEW v AS SELECT 1"], "it has a view 'v' of its own"),
        (["CREATE INDEX idx_extra ON professionals(email)"], "it has a index 'idx_extra' of its own"),
        (
            [
                "DROP INDEX idx_professionals_city",
                "CREATE INDEX idx_professionals_city ON professionals(email)",
            ],
            "its index idx_professionals_city is defined otherwise than ours",
        ),
        (["DROP INDEX idx_professionals_city"], "it lacks the index idx_professionals_city"),
        (["ANALYZE"], "it has a table 'sqlite_stat1' of its own"),
        (
            [
                "PRAGMA writable_schema = ON",
                "UPDATE sqlite_master SET sql = replace(sql, 'UNIQUE', 'UNIQUE COLLATE NOCASE')"
                " WHERE name = 'professionals'",
            ],
            "its table professionals is defined otherwise than ours",
        ),
        ([f"PRAGMA user_version = {SCHEMA_VERSION + 1}"], f"has schema version {SCHEMA_VERSION + 1}, newer"),
        (
            ["ALTER TABLE ef_rollbacks ADD COLUMN note TEXT"],
            "its table ef_rollbacks is defined otherwise than ours",
        ),
    ],
)
def test_anything_but_our_objects_is_refused_with_the_reason(
    db: str, tmp_path: Path, statements: list[str], said: str
) -> None:
    file = crafted(db, tmp_path, *statements)
    with connect(db) as target, pytest.raises(UnsafeBackupError) as refused:
        restore(target, file, dry_run=True)
    assert said in str(refused.value)


def test_the_budget_stops_a_read_that_got_past_the_check(
    db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second wall: with the object check taken away, the endless view is still stopped, by the count
    of SQLite's steps, for a restore and for the listing alike."""
    monkeypatch.setattr(checks, "check_objects", lambda conn, path: 0)
    monkeypatch.setattr(checks, "STEPS_AT_LEAST", 2_000_000)
    folder = tmp_path / "backups"
    folder.mkdir()
    file = endless_view_file(db, tmp_path, f"backup-{database_key(db)}-20260101T000000.000Z.sqlite")
    file = file.rename(folder / file.name)
    with connect(db) as target, pytest.raises(UnsafeBackupError, match="reading it takes more than"):
        restore(target, file, dry_run=True)
    (info,) = list_backups(db=db, backups_dir=folder)
    assert info.error is not None and "reading it takes more than" in info.error


@pytest.mark.parametrize("earlier", EARLIER, ids=lambda p: p.stem)
def test_a_backup_of_every_earlier_schema_restores_and_then_works(earlier: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'now.db'}"
    with connect(url, create=True) as target:
        import_file(target, write_records(tmp_path / "now.csv", 8, start=70_000))
        file = tmp_path / earlier.name
        shutil.copy(earlier, file)
        result = restore(target, file, yes=True, backups_dir=tmp_path / "backups")
        assert result.rows == count(target) > 0 and target.schema_version() == SCHEMA_VERSION
        # The earlier file's 4 KiB pages were rewritten in the database's own, beside it and then gone.
        assert (target.scalar("PRAGMA page_size"),) == (PAGE_SIZE,) != page_size(earlier)
        assert [p.name for p in tmp_path.iterdir() if p.suffix == ".tmp"] == []
        assert all(check.passed for check in verify(target, benchmarks=False).checks)
        new = import_file(target, write_records(tmp_path / "more.csv", 30, start=10_000))
        assert new.inserted == 30 and ledger_balances(target)
        assert rollback(target, import_id=new.import_id, yes=True, backups_dir=tmp_path / "backups").rows_removed == 30
        assert status(target, backups_dir=tmp_path / "backups").tables["ef_rollbacks"] >= 2
    assert objects(tmp_path / "now.db") == fresh_objects(tmp_path)


def test_the_frozen_earlier_schemas_are_the_fixtures_objects() -> None:
    """What _backup_checks holds as each unversioned schema, and as each schema a new database got at a
    version, is what those commits made."""
    made = {checks._made(statements, 0) for statements in checks.UNVERSIONED.values()}
    made |= {checks._made(statements, version) for version, statements in checks.FRESH_AT.items()}
    found = set()
    for path in EARLIER:
        with checks.untrusted(path) as conn:
            found.add(checks._objects_of(conn))
    assert found == made


def test_a_copy_of_a_d1_database_carries_its_version_table(db: str, tmp_path: Path) -> None:
    """A backup of D1 has ef_schema beside our tables and user_version 0: accepted, at ef_schema's version."""
    file = crafted(
        db,
        tmp_path,
        "PRAGMA user_version = 0",
        "CREATE TABLE ef_schema (version INTEGER NOT NULL)",
        f"INSERT INTO ef_schema VALUES ({SCHEMA_VERSION})",
    )
    with checks.untrusted(file) as conn:
        assert checks.check_objects(conn, file) == SCHEMA_VERSION
    with connect(db) as target:
        restore(target, file, yes=True, backups_dir=tmp_path / "backups")
        assert target.schema_version() == SCHEMA_VERSION and count(target) == 30


# --- backups belong to their database --------------------------------------------------------------


def two_databases(tmp_path: Path) -> tuple[str, str]:
    """Two databases with the same file name in different folders."""
    urls = []
    for where, start in (("a", 0), ("b", 1000)):
        url = f"sqlite:///{tmp_path / where / 'estateflow.db'}"
        with connect(url, create=True) as target:
            import_file(target, write_records(tmp_path / f"{where}.csv", 5 + start // 500, start=start))
        urls.append(url)
    return urls[0], urls[1]


def test_each_database_lists_only_its_own_backups(tmp_path: Path) -> None:
    a, b = two_databases(tmp_path)
    folder = tmp_path / "backups"
    taken: dict[str, list[Path]] = {a: [], b: []}
    for url in (a, b, a, b, a):
        with connect(url) as target:
            taken[url].append(backup(target, backups_dir=folder))
    (folder / "backup-20250101T000000Z.sqlite").write_bytes(b"named before backups had owners")
    assert database_key(a) != database_key(b) and database_key(a).startswith("estateflow-")
    for url, rows in ((a, 5), (b, 7)):
        listed = list_backups(db=url, backups_dir=folder)
        assert [Path(i.path) for i in listed] == taken[url][::-1] and {i.rows for i in listed} == {rows}
        assert [Path(i.path).name for i in listed] == sorted((p.name for p in taken[url]), reverse=True)
        with connect(url) as target:
            newest = status(target, backups_dir=folder).newest_backup
            assert newest is not None and Path(newest["path"]) == taken[url][-1]
    assert len(list_backups(backups_dir=folder)) == 6  # without db: every file, the old one too
    shown = invoke("backups", "--db", b, "--backups-dir", str(folder), cwd=tmp_path)
    assert shown.returncode == 0 and shown.stdout.count("backup-estateflow-") == 2
    assert "4 more in the folder" in shown.stdout
    every = json.loads(invoke("backups", "--all", "--json", "--backups-dir", str(folder), cwd=tmp_path).stdout)
    assert len(every["backups"]) == 6 and every["backups"][-1]["database"] is None
    pruned = invoke("backups", "--db", a, "--keep", "1", "--yes", "--backups-dir", str(folder), cwd=tmp_path)
    assert pruned.returncode == 0 and len(list_backups(db=a, backups_dir=folder)) == 1
    assert len(list_backups(db=b, backups_dir=folder)) == 2


def test_the_same_database_by_another_path_is_the_same_owner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "data")
    monkeypatch.chdir(tmp_path)
    same = {
        database_key(url)
        for url in ("sqlite:///data/x.db", f"sqlite:///{tmp_path}/data/x.db", "data/x.db", f"{tmp_path}/link/x.db")
    }
    assert len(same) == 1
    assert (
        database_key("d1://account/0123-abcd")
        == database_key("d1://other-account/0123-abcd")
        != database_key("d1://account/4567")
    )


# --- leftovers of killed backups ----------------------------------------------------------------------


KILL = "ESTATEFLOW_TEST_KILL_AT"


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.mark.parametrize(
    ("killed", "next_command"),
    [
        (["backup"], ["backups"]),
        (["rollback", "last", "--yes"], ["status"]),
        (["backup"], ["backup"]),
    ],
    ids=["backup then backups", "rollback then status", "backup then backup"],
)
def test_the_temporary_files_of_a_killed_backup_are_removed_by_the_next_command(
    db: str, tmp_path: Path, killed: list[str], next_command: list[str]
) -> None:
    dead = run_cli(*killed, "--db", db, cwd=tmp_path, env={KILL: "backup:before"})
    assert dead.returncode == -9, dead.stderr
    folder = tmp_path / "backups"
    assert leftovers(folder), "the killed backup left its temporary file"
    with connect(db) as target:
        assert count(target) == 30  # the rollback never ran
    done = invoke(*next_command, "--db", db, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert leftovers(folder) == []


def test_the_temporary_file_of_a_running_writer_is_left_alone(tmp_path: Path) -> None:
    folder = tmp_path / "backups"
    folder.mkdir()
    sleeper = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        mine = folder / f".backup-x.sqlite.{sleeper.pid}-0123abcd.tmp"
        mine.write_bytes(b"being written")
        gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
        dead = folder / f".backup-y.sqlite.{int(gone.stdout)}-89abcdef.tmp-journal"
        dead.write_bytes(b"left behind")
        assert list_backups(backups_dir=folder) == []
        assert mine.exists() and not dead.exists()
    finally:
        assert sleeper.stdin is not None
        sleeper.stdin.close()
        sleeper.wait()


@pytest.mark.parametrize("earlier", EARLIER, ids=lambda p: p.stem)
def test_a_database_of_every_earlier_schema_brought_up_to_date_is_one_of_ours(earlier: Path, tmp_path: Path) -> None:
    """Opened (and so migrated), it holds the objects of one of the shapes a backup may have today. The
    shapes are made afresh here, not taken from the cache of an earlier test."""
    file = tmp_path / earlier.name
    shutil.copy(earlier, file)
    connect(f"sqlite:///{file}").close()
    checks.known_shapes.cache_clear()
    with checks.untrusted(file) as conn:
        assert checks.check_objects(conn, file) == SCHEMA_VERSION


def test_the_nearest_shape_is_the_one_that_differs_least() -> None:
    table = ("table", "professionals", "CREATE TABLE professionals (id)")
    far = frozenset({table, ("table", "x", "CREATE TABLE x (a)"), ("table", "y", "CREATE TABLE y (a)")})
    near = frozenset({table, ("index", "i", "CREATE INDEX i ON professionals (id)")})
    assert checks._difference(frozenset({table}), (far, near), {"professionals"}) == "it lacks the index i"
    assert checks._difference(frozenset(), (far, near), set()) == "it has no professionals table"


def test_a_copy_of_a_d1_database_of_a_newer_schema_is_refused_as_newer(db: str, tmp_path: Path) -> None:
    newer = SCHEMA_VERSION + 1
    file = crafted(
        db,
        tmp_path,
        "PRAGMA user_version = 0",
        "CREATE TABLE ef_schema (version INTEGER NOT NULL)",
        f"INSERT INTO ef_schema VALUES ({newer})",
    )
    with connect(db) as target, pytest.raises(UnsafeBackupError) as refused:
        restore(target, file, dry_run=True)
    assert str(refused.value) == (
        f"{file} has schema version {newer}, newer than this estateflow_nb knows ({SCHEMA_VERSION})"
    )
