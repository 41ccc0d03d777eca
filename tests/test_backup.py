from __future__ import annotations

import hashlib
import json
import locale
import os
import re
import shutil
import sqlite3
import subprocess
import sys
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
from estateflow_nb._backup_checks import STEPS_PER_CALL, _Steps
from estateflow_nb._forwarding import Forwarding
from estateflow_nb._time import ledger_time
from estateflow_nb.backup import Backups, _taken, _write_dump, newest_backup
from estateflow_nb.errors import EstateFlowError, RefusedError, TargetError, UnsafeBackupError
from estateflow_nb.targets import Sql, SQLiteTarget

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


# --- names, owners, listings and messages, exactly ---------------------------------------------------


def digest(identity: str) -> str:
    return hashlib.sha256(identity.encode("utf-8", "surrogatepass")).hexdigest()[:8]


def test_a_database_s_key_is_its_name_and_a_hash_of_where_it_is(tmp_path: Path) -> None:
    weird = tmp_path / "My Data!! (copy).db"
    assert database_key(f"sqlite:///{weird}") == f"My_Data_copy-{digest(str(weird))}"
    long = tmp_path / f"{'x' * 38}.-{'y' * 10}.db"
    assert database_key(str(long)) == f"{'x' * 38}-{digest(str(long))}"  # 40 characters, without '.-'
    for nameless in ("._.db", ".-._.db"):
        assert database_key(str(tmp_path / nameless)) == f"database-{digest(str(tmp_path / nameless))}"
    assert database_key("d1://account/0123-abcd") == f"d1-{digest('d1:0123-abcd')}"
    undecodable = tmp_path / "caf\udce9.db"  # a name that was not UTF-8 on disk
    assert database_key(str(undecodable)) == f"caf-{digest(str(undecodable))}"
    assert database_key(str(tmp_path / "XY.db")) == f"XY-{digest(str(tmp_path / 'XY.db'))}"
    assert database_key("/") == f"database-{digest('/')}"  # no file name at all
    assert database_key(":memory:") == database_key("sqlite:///:memory:") == f"memory-{digest(':memory:')}"


@pytest.fixture
def stopped_clock(monkeypatch: pytest.MonkeyPatch) -> datetime:
    moment = datetime(2026, 11, 28, 10, 42, 33, 512_000, tzinfo=UTC)
    monkeypatch.setattr(sys.modules["estateflow_nb.backup"], "utc_now", lambda: moment)
    return moment


def test_backups_taken_in_one_millisecond_take_the_next_ones(
    loaded: SQLiteTarget, tmp_path: Path, stopped_clock: datetime
) -> None:
    folder = tmp_path / "deep" / "er" / "backups"
    owner = database_key(loaded)
    names = [backup(loaded, backups_dir=folder).name for _ in range(3)]
    assert names == [f"backup-{owner}-20261128T104233.{ms}Z.sqlite" for ms in (512, 513, 514)]
    # A dump that is already there is never overwritten: the backup says so.
    (folder / f"backup-{owner}-20261128T104233.515Z.sql").write_text("an earlier dump")
    with pytest.raises(BackupError, match=r"backup-.*\.515Z\.sql already exists; not overwriting it"):
        backup(loaded, backups_dir=folder, sql=True)
    assert (folder / f"backup-{owner}-20261128T104233.515Z.sql").read_text() == "an earlier dump"


def test_old_names_sort_by_their_number_within_the_second(loaded: SQLiteTarget, tmp_path: Path) -> None:
    folder = tmp_path / "backups"
    taken = backup(loaded, backups_dir=folder)
    for name in (
        "backup-20250101T000000Z.sqlite",
        "backup-20250101T000000Z-2.sqlite",
        "backup-20250101T000001Z.sqlite",
    ):
        shutil.copy(taken, folder / name)
    (folder / "notes.txt").write_text("not a backup")
    (folder / "backup-20250101T000000Z.sqlite.bak").write_text("not a backup either")
    listed = list_backups(backups_dir=folder, counts=False)
    assert [Path(b.path).name for b in listed] == [
        taken.name,
        "backup-20250101T000001Z.sqlite",
        "backup-20250101T000000Z-2.sqlite",
        "backup-20250101T000000Z.sqlite",
    ]
    assert listed[1].taken_at == "2025-01-01T00:00:01Z" and listed[1].database is None
    assert listed[0].database == database_key(loaded) and listed[0].rows is None and listed[0].imports is None
    assert repr(listed) == f"<Backups: 4 backups, newest {taken.name}>"
    assert (
        repr(Backups()) == "<Backups: 0 backups>"
        and repr(Backups(listed[:1])) == f"<Backups: 1 backup, newest {taken.name}>"
    )
    newest = newest_backup(db=loaded, backups_dir=folder)
    assert newest is not None and newest.path == str(taken) and newest.rows is None
    assert newest_backup(backups_dir=tmp_path / "none") is None
    assert list_backups(backups_dir=tmp_path / "none") == []
    assert listed[0].to_dict()["path"] == str(taken)


def test_a_file_in_the_backups_folder_is_read_as_untrusted(loaded: SQLiteTarget, tmp_path: Path) -> None:
    folder = tmp_path / "backups"
    folder.mkdir()
    (folder / "backup-20250101T000000Z.sqlite").write_bytes(b"SQLite format 3\x00" + b"\x00" * 200)
    (info,) = list_backups(backups_dir=folder)
    assert info.rows is None and info.error is not None
    assert info.error.startswith("refused: backup-20250101T000000Z.sqlite ") and str(folder) not in info.error


def test_pruning_asks_naming_what_goes_and_keeps_at_least_one(loaded: SQLiteTarget, tmp_path: Path) -> None:
    folder = tmp_path / "kept"  # not the environment's folder
    paths = [backup(loaded, backups_dir=folder) for _ in range(3)]
    with pytest.raises(RefusedError, match=r"^keep at least 1 backup, not 0$"):
        prune_backups(0, backups_dir=folder)
    asked: list[str] = []
    with pytest.raises(ConfirmationRequired, match=r"^deleting 2 backups: confirm interactively or pass --yes$"):
        prune_backups(1, backups_dir=folder, confirm=lambda q: asked.append(q) or False)
    assert asked == [f"Delete 2 older backups ({paths[1].name}, {paths[0].name})?"]
    assert prune_backups(3, backups_dir=folder, yes=True) == []
    assert prune_backups(1, backups_dir=folder, confirm=lambda q: True) == [paths[1], paths[0]]
    assert [b.path for b in list_backups(backups_dir=folder)] == [str(paths[2])]


def test_a_file_with_changes_beside_it_is_not_restored(loaded: SQLiteTarget, tmp_path: Path) -> None:
    path = backup(loaded, backups_dir=tmp_path / "elsewhere")
    Path(f"{path}-wal").write_bytes(b"")  # an empty write-ahead log holds nothing: fine
    assert restore(loaded, path, dry_run=True).rows == 35
    Path(f"{path}-wal").write_bytes(b"\x00" * 32)
    with pytest.raises(BackupError) as refused:
        restore(loaded, path, dry_run=True)
    assert str(refused.value) == (
        f"{path} has changes not yet written into it ({path.name}-wal): open and close it with sqlite3 first,"
        " or back that database up with `estateflow backup`"
    )
    with pytest.raises(BackupError, match=f"^{re.escape(str(tmp_path))} is a folder, not a file to read$"):
        restore(loaded, tmp_path, dry_run=True)


def test_a_restore_says_what_it_did_and_records_it(loaded: SQLiteTarget, tmp_path: Path) -> None:
    folder = tmp_path / "backups"
    path = backup(loaded, backups_dir=folder)
    import_file(loaded, write_records(tmp_path / "later.csv", 7, start=5000))
    plan = restore(loaded, path, dry_run=True)
    assert (plan.rows, plan.imports, plan.rows_before, plan.imports_before) == (35, 2, 42, 3)
    assert plan.summary() == (
        f"Dry run: restoring would put 35 rows and 2 imports from {path} into {loaded.url}"
        " (it held 42 rows and 3 imports); nothing was changed."
    )
    assert repr(plan) == f"<RestoreResult dry run of a restore: {path.name} into {loaded.url}, 42 -> 35 rows>"
    asked: list[str] = []
    with pytest.raises(ConfirmationRequired, match=f"^restoring {re.escape(str(path))} replaces 42 rows with 35: "):
        restore(loaded, path, confirm=lambda q: asked.append(q) or False)
    assert asked == [
        f"Replace {loaded.url} (42 rows, 3 imports) with {path} (35 rows, 2 imports)?"
        " A backup of the current database is taken first."
    ]
    done = restore(loaded, path, yes=True, backup_first=False, backups_dir=folder)
    assert done.backup_path is None and not done.dry_run and done.seconds > 0
    assert done.summary() == (
        f"Restored 35 rows and 2 imports from {path} into {loaded.url} in {done.seconds:.2f} s"
        " (it held 42 rows and 3 imports).\n  backup taken before: none"
    )
    assert repr(done) == f"<RestoreResult restored: {path.name} into {loaded.url}, 42 -> 35 rows>"
    assert len(list_backups(backups_dir=folder)) == 1  # no backup taken before
    (record,) = loaded.query("SELECT * FROM ef_rollbacks WHERE strategy = 'restore'")
    assert json.loads(record["arguments"]) == {"file": str(path.resolve()), "rows": 35, "imports": 2}
    assert record["backup_path"] is None and record["started_at"] <= record["finished_at"]
    assert record["id"].startswith("rs-")
    assert done.to_dict()["rows_before"] == 42 and list(done.to_frame()["rows"]) == [35]


def test_restore_refuses_while_an_import_runs_and_where_the_target_cannot(loaded: SQLiteTarget, tmp_path: Path) -> None:
    path = backup(loaded, backups_dir=tmp_path / "backups")
    # An import running on another machine (its heartbeat is fresh).
    running = (
        "UPDATE ef_imports SET status = 'running', claim = 'c', claim_owner = 'elsewhere/0000 4242 -', heartbeat_at = ?"
    )
    loaded.execute([Sql(running, (ledger_time(),))])
    assert restore(loaded, path, dry_run=True).rows == 35  # a dry run changes nothing: it may look
    with pytest.raises(EstateFlowError, match=r"^restore refused: import imp-"):
        restore(loaded, path, yes=True)
    loaded.execute([Sql("UPDATE ef_imports SET status = 'completed'")])

    class Refusing(Forwarding):
        def replace_refusal(self) -> str | None:
            return "this database is restored by its provider: use --bookmark"

    with pytest.raises(EstateFlowError, match=r"^this database is restored by its provider: use --bookmark$"):
        restore(Refusing(loaded), path, yes=True)

    class Failing(Forwarding):
        def replace_with(self, file: Path) -> None:
            raise TargetError("the disk is full")

    with pytest.raises(BackupError, match=f"^restoring {re.escape(str(path))} failed, the database is as it was: "):
        restore(Failing(loaded), path, yes=True, backup_first=False)


def test_the_sql_dump_is_utf8_whatever_the_machine_s_locale(loaded: SQLiteTarget, tmp_path: Path) -> None:
    loaded.execute([Sql("UPDATE professionals SET city = 'Montréal' WHERE id = 1")])
    locale.setlocale(locale.LC_CTYPE, "C")  # ASCII, as on a machine without a UTF-8 locale
    try:
        path = backup(loaded, backups_dir=tmp_path / "backups", sql=True)
    finally:
        locale.setlocale(locale.LC_CTYPE, "")
    assert "Montréal" in path.with_suffix(".sql").read_text(encoding="utf-8")
    with pytest.raises(sqlite3.Error):  # the file's own error, not the missing temporary file's
        _write_dump(tmp_path / "gone" / "backup-x.sqlite")


def test_a_file_without_our_table_says_so(loaded: SQLiteTarget, tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)")
    with pytest.raises(BackupError, match="it has no professionals table"):
        restore(loaded, other, dry_run=True)


def test_the_step_budget_stops_a_statement_just_past_it() -> None:
    steps = _Steps(5 * STEPS_PER_CALL)
    assert [steps() for _ in range(6)] == [0, 0, 0, 0, 0, 1] and steps.calls == 6


def test_backups_and_restores_show_themselves_in_a_notebook(loaded: SQLiteTarget, tmp_path: Path) -> None:
    path = backup(loaded, backups_dir=tmp_path / "backups")
    listed = list_backups(backups_dir=tmp_path / "backups")
    assert path.name in listed._repr_html_() and list(listed.to_frame()["path"]) == [str(path)]
    plan = restore(loaded, path, dry_run=True)
    assert path.name in plan._repr_html_()


class LeavesADump(Forwarding):
    """A target whose copy leaves a SQL dump in the scratch folder on its way out (as D1's export does)."""

    def copy_into(self, connection: sqlite3.Connection, scratch_folder: Path) -> Path | None:
        self.inner.copy_into(connection, scratch_folder)
        dump = scratch_folder / ".export-1.sql"
        dump.write_text("-- the provider's dump\n", encoding="utf-8")
        return dump


def test_a_dump_left_by_the_copy_is_kept_beside_the_backup(loaded: SQLiteTarget, tmp_path: Path) -> None:
    folder = tmp_path / "kept"
    path = backup(LeavesADump(loaded), backups_dir=folder)
    assert path.with_suffix(".sql").read_text(encoding="utf-8") == "-- the provider's dump\n"
    assert sorted(p.name for p in folder.iterdir()) == sorted([path.name, path.with_suffix(".sql").name])
    (info,) = list_backups(backups_dir=folder)
    assert info.sql_dump == str(path.with_suffix(".sql"))
    plain = backup(loaded, backups_dir=tmp_path / "plain")
    assert list_backups(backups_dir=tmp_path / "plain")[0].sql_dump is None and plain.exists()


def test_restore_finds_names_in_its_own_folder_and_counts_from_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "kept"  # not the environment's folder
    with connect(f"sqlite:///{tmp_path / 'empty.db'}", create=True) as empty:
        path = backup(empty, backups_dir=folder)
        done = restore(empty, path.name, yes=True, backups_dir=folder)
        assert (done.rows_before, done.imports_before) == (0, 0) and 0 < done.seconds < 60
        assert done.backup_path is not None and Path(done.backup_path).parent == folder
        with pytest.raises(BackupError, match=r"^missing\.sqlite: no such file$"):
            restore(empty, "missing.sqlite", dry_run=True, backups_dir=folder)


def test_a_file_of_a_newer_schema_is_refused(loaded: SQLiteTarget, tmp_path: Path) -> None:
    path = backup(loaded, backups_dir=tmp_path / "elsewhere")
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(UnsafeBackupError):
        restore(loaded, path, dry_run=True)


def test_a_damaged_file_is_refused_with_sqlite_s_own_first_complaint(loaded: SQLiteTarget, tmp_path: Path) -> None:
    """One license number changed inside its index, not in its row: the objects are ours and every page
    reads, so only SQLite's integrity check finds it, and the refusal quotes the first line it said."""
    damaged = backup(loaded, backups_dir=tmp_path / "made")
    conn = sqlite3.connect(damaged)
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'sqlite_autoindex_professionals_1'").fetchone()
    license = conn.execute("SELECT MIN(license_number) FROM professionals").fetchone()[0].encode()
    conn.close()
    data = bytearray(damaged.read_bytes())
    at = data.index(license, (root[0] - 1) * page_size, root[0] * page_size) + len(license) - 1
    data[at] = data[at] ^ 1
    damaged.write_bytes(bytes(data))
    conn = sqlite3.connect(damaged)
    complaints = [row[0] for row in conn.execute("PRAGMA integrity_check")]
    conn.close()
    assert complaints[0].endswith("missing from index sqlite_autoindex_professionals_1")
    with pytest.raises(UnsafeBackupError) as refused:
        restore(loaded, damaged, dry_run=True)
    assert str(refused.value) == f"{damaged} fails SQLite's integrity check: {complaints[0]}"


def test_a_path_that_cannot_be_read_is_refused_with_the_reason(loaded: SQLiteTarget, tmp_path: Path) -> None:
    inside_a_file = tmp_path / "a.csv" / "backup.sqlite"
    with pytest.raises(UnsafeBackupError) as refused:
        restore(loaded, inside_a_file, dry_run=True)
    assert str(refused.value) == f"{inside_a_file}: cannot read: Not a directory"


def test_an_old_name_without_a_number_is_the_first_of_its_second() -> None:
    assert _taken(Path("backup-20250101T000000Z.sqlite")) == (datetime(2025, 1, 1, tzinfo=UTC), 1)
    assert _taken(Path("backup-20250101T000000Z-2.sqlite")) == (datetime(2025, 1, 1, tzinfo=UTC), 2)


def test_a_listed_file_with_objects_of_its_own_says_which_by_its_name(loaded: SQLiteTarget, tmp_path: Path) -> None:
    folder = tmp_path / "backups"
    folder.mkdir()
    listed = folder / "backup-20250101T000000Z.sqlite"
    shutil.copy(backup(loaded, backups_dir=tmp_path / "made"), listed)
    with sqlite3.connect(listed) as conn:
        conn.execute("CREATE VIEW everyone AS SELECT * FROM professionals")
    conn.close()
    (info,) = list_backups(backups_dir=folder)
    assert info.rows is None
    assert info.error == f"refused: {listed.name} is not an EstateFlow database: it has a view 'everyone' of its own"


def test_a_database_that_fails_the_integrity_check_is_not_backed_up(loaded: SQLiteTarget, tmp_path: Path) -> None:
    """The copy is checked as a restore checks a file: one license number changed inside its index."""
    page_size = loaded.scalar("PRAGMA page_size")
    root = loaded.scalar("SELECT rootpage FROM sqlite_master WHERE name = 'sqlite_autoindex_professionals_1'")
    license = str(loaded.scalar("SELECT MIN(license_number) FROM professionals")).encode()
    loaded.close()
    data = bytearray(loaded.path.read_bytes())
    at = data.index(license, (root - 1) * page_size, root * page_size) + len(license) - 1
    data[at] = data[at] ^ 1
    loaded.path.write_bytes(bytes(data))
    with connect(f"sqlite:///{loaded.path}") as target, pytest.raises(BackupError) as refused:
        backup(target, backups_dir=tmp_path / "kept")
    said = str(refused.value)  # of the copy, under its temporary name in the backups folder
    assert said.startswith(str(tmp_path / "kept" / ".backup-"))
    assert re.search(
        r" fails SQLite's integrity check: row \d+ missing from index sqlite_autoindex_professionals_1$", said
    )
    assert not (tmp_path / "kept").exists() or not list((tmp_path / "kept").iterdir())
