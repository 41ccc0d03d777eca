from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from estateflow_nb import (
    BackupError,
    ConfirmationRequired,
    backup,
    connect,
    database_key,
    generate_records,
    import_file,
    list_backups,
    prune_backups,
    restore,
    rollback,
    status,
    write_records,
)
from estateflow_nb.targets import SQLiteTarget

from .conftest import count, invoke, snapshot, write_csv

NAME = re.compile(r"^backup-\w+-[0-9a-f]{8}-\d{8}T\d{6}\.\d{3}Z\.sqlite$")


@pytest.fixture
def loaded(target: SQLiteTarget, tmp_path: Path) -> SQLiteTarget:
    """Two imports, the second an --on-conflict update, so that before-images exist too."""
    records = list(generate_records(30, seed=21))
    import_file(target, write_csv(tmp_path / "a.csv", records))
    changed = [{**r, "rating": 1.5} for r in records[:5]] + list(generate_records(5, seed=21, start=50))
    import_file(target, write_csv(tmp_path / "b.csv", changed), on_conflict="update")
    return target


def everything(target: Any) -> dict[str, list[tuple[Any, ...]]]:
    tables = ("professionals", "ef_imports", "ef_before_images", "ef_rollbacks")
    return {t: [tuple(r.values()) for r in target.query(f"SELECT * FROM {t} ORDER BY 1, 2")] for t in tables}


def test_a_backup_is_a_checked_copy_under_a_new_name(loaded: SQLiteTarget, tmp_path: Path) -> None:
    folder = tmp_path / "backups"
    folder.mkdir()
    now = datetime.now(UTC)
    owner = database_key(loaded)
    # Backups already named for the coming milliseconds: a new one takes the next free one, never theirs.
    taken = [folder / f"backup-{owner}-{now + timedelta(milliseconds=ms):%Y%m%dT%H%M%S.%f}"[:-3] for ms in range(5)]
    taken = [path.with_name(path.name + "Z.sqlite") for path in taken]
    for path in taken:
        path.write_bytes(b"an earlier backup")
    first = backup(loaded, backups_dir=folder)
    second = backup(loaded, backups_dir=folder)
    assert first != second and NAME.match(first.name) and NAME.match(second.name)
    assert first not in taken and all(p.read_bytes() == b"an earlier backup" for p in taken)
    assert sorted([second.name, first.name]) == [first.name, second.name]  # names sort by time
    assert [p.name for p in folder.iterdir() if not NAME.match(p.name)] == []  # no temporary files left
    with sqlite3.connect(first) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)  # one self-contained file
    for path in (first, second):
        with connect(str(path), create=True) as copy:
            assert everything(copy) == everything(loaded)


def test_the_sql_dump_rebuilds_the_same_database(loaded: SQLiteTarget, tmp_path: Path) -> None:
    path = backup(loaded, backups_dir=tmp_path / "backups", sql=True)
    dump = path.with_suffix(".sql")
    rebuilt = sqlite3.connect(tmp_path / "rebuilt.db")
    rebuilt.executescript(dump.read_text(encoding="utf-8"))
    rebuilt.close()
    with connect(str(tmp_path / "rebuilt.db"), create=True) as copy:
        assert everything(copy) == everything(loaded)
    assert list_backups(backups_dir=tmp_path / "backups")[0].sql_dump == str(dump)


def test_the_folder_comes_from_the_keyword_the_environment_or_the_working_directory(
    loaded: SQLiteTarget, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert backup(loaded, backups_dir=tmp_path / "mine").parent == tmp_path / "mine"
    assert backup(loaded).parent == tmp_path / "backups"  # ESTATEFLOW_BACKUPS, set by conftest
    monkeypatch.delenv("ESTATEFLOW_BACKUPS")
    monkeypatch.chdir(tmp_path / "mine")
    assert backup(loaded).parent == Path("backups")
    assert (tmp_path / "mine" / "backups").is_dir()


def test_listing_and_pruning(loaded: SQLiteTarget, tmp_path: Path) -> None:
    folder = tmp_path / "backups"
    paths = []
    for n in range(4):
        import_file(loaded, write_records(tmp_path / f"more{n}.csv", 3, start=1000 + 10 * n))
        paths.append(backup(loaded, backups_dir=folder, sql=n == 0))
    found = list_backups(backups_dir=folder)
    assert [b.path for b in found] == [str(p) for p in reversed(paths)]
    assert [b.rows for b in found] == [47, 44, 41, 38] and [b.imports for b in found] == [6, 5, 4, 3]
    assert all(b.size_bytes == Path(b.path).stat().st_size and b.taken_at.endswith("Z") for b in found)
    assert prune_backups(2, backups_dir=folder, dry_run=True) == paths[:2][::-1]
    with pytest.raises(ConfirmationRequired, match="--yes"):
        prune_backups(2, backups_dir=folder)
    assert len(list_backups(backups_dir=folder)) == 4
    assert prune_backups(2, backups_dir=folder, yes=True) == paths[:2][::-1]
    assert [b.path for b in list_backups(backups_dir=folder)] == [str(p) for p in paths[:1:-1]]
    assert not paths[0].with_suffix(".sql").exists()
    newest = status(loaded, backups_dir=folder).newest_backup
    assert newest is not None and newest["path"] == str(paths[-1])
    assert f"Newest backup: {paths[-1]}" in status(loaded, backups_dir=folder).table()


def test_restore_brings_back_every_table_through_the_open_connection(loaded: SQLiteTarget, tmp_path: Path) -> None:
    folder = tmp_path / "backups"
    saved = everything(loaded)
    path = backup(loaded, backups_dir=folder)
    (last,) = loaded.query("SELECT id FROM ef_imports ORDER BY started_at DESC, rowid DESC LIMIT 1")
    rollback(loaded, import_id=last["id"], yes=True, backups_dir=folder)
    import_file(loaded, write_records(tmp_path / "later.csv", 7, start=5000))
    changed = everything(loaded)
    with pytest.raises(ConfirmationRequired):
        restore(loaded, path, backups_dir=folder)
    result = restore(loaded, path.name, yes=True, backups_dir=folder)  # a bare name is looked up in the folder
    restored = everything(loaded)
    record = restored.pop("ef_rollbacks")
    assert restored == {k: v for k, v in saved.items() if k != "ef_rollbacks"}
    assert len(record) == 1 and record[0][1] == "restore"  # the restore itself, naming the backup before it
    assert (result.rows, result.rows_before) == (35, 37) and result.backup_path
    with connect(result.backup_path, create=True) as before:
        assert everything(before) == changed


def test_restore_refuses_files_that_are_not_sound_estateflow_databases(loaded: SQLiteTarget, tmp_path: Path) -> None:
    folder = tmp_path / "backups"
    text = tmp_path / "notes.sqlite"
    text.write_text("not a database at all" * 100)
    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE professionals (id INTEGER PRIMARY KEY, name TEXT)")
    damaged = backup(loaded, backups_dir=tmp_path / "elsewhere")
    data = bytearray(damaged.read_bytes())
    data[4096 * 2 : 4096 * 2 + 600] = os.urandom(600)
    damaged.write_bytes(bytes(data))
    before = everything(loaded)
    for path, message in (
        (text, "is not a SQLite database"),
        (foreign, "is not an EstateFlow database: its table professionals is defined otherwise than ours"),
        (damaged, "integrity|malformed|not a usable"),
        (tmp_path / "missing.sqlite", "no such file"),
        (loaded.path, "is the database itself"),
    ):
        with pytest.raises(BackupError, match=message):
            restore(loaded, path, yes=True, backups_dir=folder)
        with pytest.raises(BackupError, match=message):
            restore(loaded, path, dry_run=True, backups_dir=folder)
    assert everything(loaded) == before and not folder.exists()


def test_a_database_from_elsewhere_is_read_without_writing_beside_it(loaded: SQLiteTarget, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    with connect(str(elsewhere / "other.db"), create=True) as other:  # WAL mode, closed cleanly
        import_file(other, write_records(tmp_path / "o.csv", 12, start=7000))
        expected = snapshot(other)
    listing = sorted(p.name for p in elsewhere.iterdir())
    plan = restore(loaded, elsewhere / "other.db", dry_run=True)
    assert plan.dry_run and plan.rows == 12 and count(loaded) == 35
    restore(loaded, elsewhere / "other.db", yes=True, backups_dir=tmp_path / "backups")
    assert snapshot(loaded) == expected
    assert sorted(p.name for p in elsewhere.iterdir()) == listing == ["other.db"]


def without_timings(verify_json: str) -> dict[str, Any]:
    report = json.loads(verify_json)
    for key in ("checked_at", "seconds", "benchmarks", "recorded"):  # recorded: its id in the history
        report.pop(key)
    for check in report["checks"]:
        check.pop("seconds")
    report.pop("passed")  # it covers the benchmarks, which are timings
    return report


def test_a_restored_database_verifies_exactly_as_when_it_was_backed_up(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"

    def estateflow(*args: str) -> subprocess.CompletedProcess[str]:
        return invoke(*args, "--db", url, cwd=tmp_path)

    def checks() -> dict[str, Any]:
        return without_timings(estateflow("verify", "--json", "--runs", "1").stdout)

    source = write_records(tmp_path / "p.csv", 300, invalid_share=0.02)
    assert estateflow("import", str(source), "--max-reject-rate", "5%").returncode == 0
    update = write_records(tmp_path / "u.csv", 40, seed=99)
    assert estateflow("import", str(update), "--on-conflict", "update").returncode == 0
    verified = checks()
    taken = estateflow("backup", "--json")
    assert taken.returncode == 0, taken.stderr
    path = json.loads(taken.stdout)["path"]
    assert path.startswith("backups/") and NAME.match(Path(path).name)
    assert estateflow("rollback", "last", "--yes").returncode == 0
    assert estateflow("import", str(write_records(tmp_path / "n.csv", 20, start=900))).returncode == 0
    assert checks() != verified
    refused = estateflow("restore", path)
    assert refused.returncode == 2 and "--yes" in refused.stderr
    done = estateflow("restore", path, "--yes")
    assert done.returncode == 0 and "Restored" in done.stdout, done.stderr
    assert checks() == verified
    listed = json.loads(invoke("backups", "--json", "--db", url, cwd=tmp_path).stdout)["backups"]
    assert len(listed) == 3  # on demand, before the rollback, before the restore
    assert f"Newest backup: {listed[0]['path']}" in estateflow("status").stdout


def test_cli_refuses_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    connect(url, create=True).close()
    (tmp_path / "x.sqlite").write_text("hello")
    done = invoke("restore", "x.sqlite", "--db", url, "--yes", cwd=tmp_path)
    assert done.returncode == 2 and done.stderr.startswith("Error: ") and "not a SQLite database" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and not (tmp_path / "backups").exists()
    pruned = invoke("backups", "--keep", "1", "--all", cwd=tmp_path)
    assert pruned.returncode == 0 and "no backups yet" in pruned.stdout
