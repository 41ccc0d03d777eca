"""Backups: a consistent copy of the whole database in `backups/`, taken on demand and before every rollback.

    backup(target)              -> backups/backup-estateflow-1a2b3c4d-20261128T104233.512Z.sqlite
    list_backups(db=target)     -> that database's backups, newest first, with size, time and row counts
    prune_backups(keep, db=...) -> removes all but its newest `keep`
    restore(target, path)       -> checks the file, backs up the current database, copies the file in

Backups belong to their database: each name carries the database's own (the file's name, or "d1") and
a short hash of what it is (the absolute path of the file, or the D1 database id), so that backups of
two databases in one folder are never taken for each other, and the time to the millisecond, so that
names sort by time. `db=` (a URL or a target) picks one database's backups; without it the listing
has every database's, and those named before backups had owners (`backup-20261128T104233Z.sqlite`).

The folder is `backups_dir=`, else `ESTATEFLOW_BACKUPS`, else `backups/` in the working directory.
Names come only from this module: a backup is written under a temporary name, checked with
`PRAGMA integrity_check`, switched to a self-contained rollback-journal file, and hard-linked to
its final name, which fails rather than overwrite an earlier backup. The temporary files of a backup
that was killed are removed by the next command that looks at the folder.

The copies themselves are the target's (`Target.copy_into`, `Target.replace_with`), so this module
never asks which kind of database it holds. A SQLite file uses SQLite's online backup API in both
directions: a backup taken while an import writes is a consistent snapshot, and a restore is seen at
once through the target's open connection. A D1 database leaves D1 as a SQL dump, kept beside the
copy; restoring into D1 is Time Travel's job, and the target says so before anything is done.

A file to restore, or to list, is trusted in nothing (see `_backup_checks`): its objects must be
exactly those of one of our schema versions before any of its rows is read, every read of it runs
under a budget, and after the copy the migrations bring an earlier schema up to today's. Files are
read with `immutable=1` (no locks, no -wal or -shm files beside them), so checking a FILE that lives
elsewhere writes nothing there.
"""

from __future__ import annotations

import hashlib
import os
import re
import sqlite3
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import _backup_checks, _deferred_indexes, _ledger
from ._confirm import Confirm, require_confirmation
from ._files import open_read_only, open_regular, remove_leftovers, temporary_path
from ._look import visible
from ._migrations import ensure_schema
from ._testing import kill_hooks
from ._time import ledger_time, new_id, utc_now
from .errors import BackupError, EstateFlowError, RefusedError, TargetError, UnsafeBackupError
from .targets import Sql, Target, resolve_url

if TYPE_CHECKING:
    import pandas as pd

BACKUPS_ENV = "ESTATEFLOW_BACKUPS"
DEFAULT_BACKUPS_DIR = "backups"
# backup-<owner>-<UTC to the millisecond>.sqlite; owner is <name>-<8 hex>. Names from before backups
# had owners are backup-<UTC to the second>[-N].sqlite.
_NAME = re.compile(
    r"^backup-(?:(?P<owner>.+-[0-9a-f]{8})-)?(?P<stamp>\d{8}T\d{6}(?:\.\d{3})?Z)(?:-(?P<number>\d+))?\.sqlite$"
)
_STAMP = "%Y%m%dT%H%M%S"
_SQLITE_HEADER = b"SQLite format 3\x00"


@dataclass
class BackupInfo:
    """One backup file. Counts are None when not read (or unreadable: see `error`)."""

    path: str
    taken_at: str  # UTC, from the name
    size_bytes: int
    rows: int | None = None  # professionals
    imports: int | None = None  # ef_imports
    sql_dump: str | None = None
    error: str | None = None
    database: str | None = None  # whose backup: the owner part of its name (None: named before owners)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Backups(list[BackupInfo]):
    """The backups `list_backups` found, newest first: a list that shows itself as a table in a notebook."""

    def _repr_html_(self) -> str:
        from ._display import backups_html

        return backups_html(self)

    def to_frame(self) -> pd.DataFrame:
        """One row per backup: path, taken_at (UTC), size_bytes, rows, imports, sql_dump, error, database."""
        from ._frames import backups_frame

        return backups_frame(self)

    def __repr__(self) -> str:
        newest = f", newest {visible(Path(self[0].path).name)}" if self else ""
        return f"<Backups: {len(self):,} backup{'' if len(self) == 1 else 's'}{newest}>"


@dataclass
class RestoreResult:
    """What a restore did, or (dry_run) would do."""

    path: str
    target: str
    rows: int  # in the file, now in the database
    imports: int
    rows_before: int
    imports_before: int
    backup_path: str | None = None  # the database as it was before the restore
    dry_run: bool = False
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def _repr_html_(self) -> str:
        from ._display import restore_html

        return restore_html(self)

    def to_frame(self) -> pd.DataFrame:
        """The restore as one row: path, target, rows, imports, rows_before, imports_before, backup_path,
        dry_run, seconds."""
        from ._frames import RESTORE_COLUMNS, one_row

        return one_row(self, RESTORE_COLUMNS)

    def __repr__(self) -> str:
        done = "dry run of a restore" if self.dry_run else "restored"
        what = f"{visible(Path(self.path).name)} into {visible(self.target)}"
        return f"<RestoreResult {done}: {what}, {self.rows_before:,} -> {self.rows:,} rows>"

    def summary(self) -> str:
        what = f"{self.rows:,} rows and {self.imports:,} imports from {self.path}"
        before = f"(it held {self.rows_before:,} rows and {self.imports_before:,} imports)"
        if self.dry_run:
            return f"Dry run: restoring would put {what} into {self.target} {before}; nothing was changed."
        return (
            f"Restored {what} into {self.target} in {self.seconds:.2f} s {before}.\n"
            f"  backup taken before: {self.backup_path or 'none'}"
        )


def backups_folder(backups_dir: str | Path | None = None) -> Path:
    """Where backups go: `backups_dir`, else $ESTATEFLOW_BACKUPS, else ./backups."""
    return Path(backups_dir or os.environ.get(BACKUPS_ENV) or DEFAULT_BACKUPS_DIR)


def database_key(db: str | Target | None = None) -> str:
    """Whose backups: `<name>-<8 hex>` for the database `db` names (a URL, a target, or the default).

    The name is the file's (or "d1"); the hex is the start of the SHA-256 of the file's absolute path
    (symbolic links followed) or of the D1 database id, so that two files called estateflow.db in
    different folders keep their backups apart.
    """
    url = db.url if isinstance(db, Target) else resolve_url(db)
    if url.startswith("d1://"):
        from .targets.d1.target import parse_url

        name, identity = "d1", "d1:" + parse_url(url)[1]
    else:
        path = Path(url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else url)
        identity = str(path.resolve()) if str(path) != ":memory:" else ":memory:"
        name = path.stem or "database"
    name = re.sub(r"[^A-Za-z0-9_.]+", "_", name)[:40].strip("._") or "database"
    return f"{name}-{hashlib.sha256(identity.encode('utf-8', 'surrogatepass')).hexdigest()[:8]}"


def _checked(path: Path) -> tuple[int, int]:
    """(rows, imports) of a file fit to restore: SQLite, exactly our objects, sound; else UnsafeBackupError.

    The objects are checked from sqlite_master before anything reads a row; every read runs under
    `_backup_checks.untrusted`'s budget.
    """
    try:
        with open_regular(path) as f:
            header = f.read(len(_SQLITE_HEADER))
    except FileNotFoundError:
        raise UnsafeBackupError(f"{path}: no such file") from None
    except RefusedError as error:
        raise UnsafeBackupError(str(error)) from None
    except OSError as error:
        raise UnsafeBackupError(f"{path}: cannot read: {error.strerror or error}") from None
    if header != _SQLITE_HEADER:
        raise UnsafeBackupError(f"{path} is not a SQLite database")
    wal = Path(f"{path}-wal")
    if wal.exists() and wal.stat().st_size:
        raise BackupError(
            f"{path} has changes not yet written into it ({wal.name}): open and close it with sqlite3"
            " first, or back that database up with `estateflow backup`"
        )
    with _backup_checks.untrusted(path) as conn:
        _backup_checks.check_objects(conn, path)
        found = [row[0] for row in conn.execute("PRAGMA integrity_check").fetchall()]
        if found != ["ok"]:
            raise UnsafeBackupError(f"{path} fails SQLite's integrity check: {found[0] if found else 'no answer'}")
        return _backup_checks.counts(conn)


def _check_integrity(conn: sqlite3.Connection, path: Path) -> None:
    found = [row[0] for row in conn.execute("PRAGMA integrity_check").fetchall()]
    if found != ["ok"]:
        raise BackupError(f"{path} fails SQLite's integrity check: {found[0] if found else 'no answer'}")


def _claim(tmp: Path, folder: Path, owner: str, moment: datetime, suffix: str) -> Path:
    """Give `tmp` the name of the first free millisecond from `moment` on; a hard link never overwrites,
    and later backups never get earlier names."""
    while True:
        path = folder / f"backup-{owner}-{moment:{_STAMP}}.{moment.microsecond // 1000:03d}Z{suffix}"
        try:
            os.link(tmp, path)
            return path
        except FileExistsError:
            moment += timedelta(milliseconds=1)


def backup(target: Target, *, backups_dir: str | Path | None = None, sql: bool = False) -> Path:
    """Copy the whole database to a new file in the backups folder and return its path.

    With `sql=True` a plain SQL dump of the same snapshot is written beside it (same name, `.sql`).
    A target that writes a dump on the way (D1: the dump is how it leaves D1) always has it kept.
    `ESTATEFLOW_TEST_KILL_AT=backup:before` kills the process with the copy written and not yet named.
    """
    folder = backups_folder(backups_dir)
    folder.mkdir(parents=True, exist_ok=True)
    remove_leftovers(folder)
    owner, moment = database_key(target), utc_now()
    tmp = temporary_path(folder / f"backup-{owner}.sqlite")
    dump = None
    before_naming, _ = kill_hooks("backup")
    try:
        try:
            copy = sqlite3.connect(tmp, isolation_level=None)
            try:
                dump = target.copy_into(copy, folder)
                # A snapshot taken while a big import has its indexes deferred lacks them: a backup
                # is whole (and a restore accepts it) only with them.
                for build in _deferred_indexes.builds():
                    copy.execute(build.text, build.params)
                copy.execute("PRAGMA journal_mode=DELETE")
                _check_integrity(copy, tmp)
            finally:
                copy.close()
        except sqlite3.Error as error:
            raise BackupError(f"backup into {folder} failed: {error}") from None
        if before_naming is not None:
            before_naming()
        path = _claim(tmp, folder, owner, moment, ".sqlite")
        if dump is not None:
            os.link(dump, path.with_suffix(".sql"))
    finally:
        tmp.unlink(missing_ok=True)
        if dump is not None:
            dump.unlink(missing_ok=True)
    if sql and dump is None:
        _write_dump(path)
    return path


def _write_dump(path: Path) -> Path:
    dump = path.with_suffix(".sql")
    tmp = temporary_path(dump)
    try:
        conn = open_read_only(path)
        try:
            with tmp.open("w", encoding="utf-8") as f:
                for line in conn.iterdump():
                    f.write(f"{line}\n")
        finally:
            conn.close()
        os.link(tmp, dump)
    except FileExistsError:
        raise BackupError(f"{dump} already exists; not overwriting it") from None
    finally:
        tmp.unlink(missing_ok=True)
    return dump


def _taken(path: Path) -> tuple[datetime, int]:
    """When a backup was taken, from its name, and its number within that second (old names only)."""
    match = _NAME.match(path.name)
    assert match is not None
    return datetime.fromisoformat(match["stamp"]), int(match["number"] or 1)


def _backup_files(folder: Path, db: str | Target | None = None) -> list[Path]:
    """The backup files in `folder` (of database `db` only, when given), newest first."""
    if not folder.is_dir():
        return []
    remove_leftovers(folder)
    owner = database_key(db) if db is not None else None
    found = [p for p in folder.iterdir() if (m := _NAME.match(p.name)) and (owner is None or m["owner"] == owner)]
    return sorted(found, key=_taken, reverse=True)


def _info(path: Path, counts: bool) -> BackupInfo:
    match = _NAME.match(path.name)
    assert match is not None
    dump = path.with_suffix(".sql")
    info = BackupInfo(
        str(path),
        ledger_time(_taken(path)[0]),
        path.stat().st_size,
        sql_dump=str(dump) if dump.exists() else None,
        database=match["owner"],
    )
    if counts:
        # Read as untrusted as any file: a backups folder may hold a file put there by anyone.
        try:
            with _backup_checks.untrusted(path) as conn:
                _backup_checks.check_objects(conn, path)
                info.rows, info.imports = _backup_checks.counts(conn)
        except (UnsafeBackupError, OSError) as error:
            info.error = f"refused: {str(error).replace(str(path), path.name)}"
    return info


def list_backups(
    *, db: str | Target | None = None, backups_dir: str | Path | None = None, counts: bool = True
) -> Backups:
    """The backups in the folder, newest first: of database `db` (a URL or a target) when given, else
    every one. With `counts`, their row and import counts (`error` says why a file was not read)."""
    return Backups(_info(path, counts) for path in _backup_files(backups_folder(backups_dir), db))


def newest_backup(*, db: str | Target | None = None, backups_dir: str | Path | None = None) -> BackupInfo | None:
    """The newest backup (path, time, size) of database `db` (any database's without it), or None."""
    files = _backup_files(backups_folder(backups_dir), db)
    return _info(files[0], counts=False) if files else None


def prune_backups(
    keep: int,
    *,
    db: str | Target | None = None,
    backups_dir: str | Path | None = None,
    dry_run: bool = False,
    yes: bool = False,
    confirm: Confirm | None = None,
) -> list[Path]:
    """Delete all but the newest `keep` backups (of database `db` only, when given) and their SQL dumps;
    return what goes.

    Asks like a rollback (`yes` or `confirm`); `dry_run` only returns the list.
    """
    if keep < 1:
        raise RefusedError(f"keep at least 1 backup, not {keep}")
    doomed = _backup_files(backups_folder(backups_dir), db)[keep:]
    if dry_run or not doomed:
        return doomed
    names = ", ".join(p.name for p in doomed)
    require_confirmation(
        f"Delete {len(doomed)} older backups ({names})?", f"deleting {len(doomed)} backups", yes=yes, confirm=confirm
    )
    for path in doomed:
        path.with_suffix(".sql").unlink(missing_ok=True)
        path.unlink()
    return doomed


def _resolve(path: str | Path, backups_dir: str | Path | None) -> Path:
    """FILE as given, or a bare backup name looked up in the backups folder."""
    given = Path(path)
    in_folder = backups_folder(backups_dir) / given
    if not given.exists() and given.parent == Path(".") and in_folder.exists():
        return in_folder
    return given


def restore(
    target: Target,
    path: str | Path,
    *,
    dry_run: bool = False,
    yes: bool = False,
    confirm: Confirm | None = None,
    backup_first: bool = True,
    backups_dir: str | Path | None = None,
) -> RestoreResult:
    """Replace the whole database with the backup at `path` (a path, or a name in the backups folder).

    The file must hold exactly the objects of one of our schema versions (no trigger, no view, nothing
    extra; checked before any row is read) and pass SQLite's integrity check, else UnsafeBackupError.
    Asks like a rollback (`yes` or `confirm`), backs the current database up unless
    `backup_first=False`, then copies the file in with the online backup API in one transaction, and
    migrates a backup of an earlier schema to today's. The restore is recorded in `ef_rollbacks`.
    """
    began = time.perf_counter()
    started_at = ledger_time()
    refusal = target.replace_refusal()
    if refusal:
        raise EstateFlowError(refusal)
    file = _resolve(path, backups_dir)
    if target.is_same_file(file):
        raise BackupError(f"{file} is the database itself; restore a backup of it instead")
    rows, imports = _checked(file)
    if not dry_run:
        _ledger.refuse_while_importing(target, "restore")
    rows_before = int(target.scalar("SELECT COUNT(*) FROM professionals") or 0)
    imports_before = int(target.scalar("SELECT COUNT(*) FROM ef_imports") or 0)
    result = RestoreResult(str(file), target.url, rows, imports, rows_before, imports_before, dry_run=dry_run)
    if dry_run:
        return result
    require_confirmation(
        f"Replace {target.url} ({rows_before:,} rows, {imports_before:,} imports) with {file}"
        f" ({rows:,} rows, {imports:,} imports)? A backup of the current database is taken first.",
        f"restoring {file} replaces {rows_before:,} rows with {rows:,}",
        yes=yes,
        confirm=confirm,
    )
    if backup_first:
        result.backup_path = str(backup(target, backups_dir=backups_dir))
    try:
        target.replace_with(file)
    except TargetError as error:
        raise BackupError(f"restoring {file} failed, the database is as it was: {error}") from None
    # A backup of an earlier schema (checked to be exactly one) is brought up to today's.
    ensure_schema(target, create=False)
    _record_restore(target, file, result, started_at)
    result.seconds = time.perf_counter() - began
    return result


def _record_restore(target: Target, file: Path, result: RestoreResult, started_at: str) -> None:
    """Record the restore in `ef_rollbacks`."""
    target.execute(
        [
            Sql(
                "INSERT INTO ef_rollbacks (id, strategy, arguments, backup_path, started_at, finished_at)"
                " VALUES (?, 'restore', json_object('file', ?, 'rows', ?, 'imports', ?), ?, ?, ?)",
                (
                    new_id("rs"),
                    str(file.resolve()),
                    result.rows,
                    result.imports,
                    result.backup_path,
                    started_at,
                    ledger_time(),
                ),
            ),
        ]
    )
