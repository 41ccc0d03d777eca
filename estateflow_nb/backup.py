"""Backups: a consistent copy of the whole database in `backups/`, taken on demand and before every rollback.

    backup(target)          -> backups/backup-20261128T104233Z.sqlite (-2, -3, ... within one second)
    list_backups()          -> newest first, with size, time and row counts
    prune_backups(keep)     -> removes all but the newest `keep`
    restore(target, path)   -> checks the file, backs up the current database, copies the file in

The folder is `backups_dir=`, else `ESTATEFLOW_BACKUPS`, else `backups/` in the working directory.
Names come only from this module: a backup is written under a temporary name, checked with
`PRAGMA integrity_check`, switched to a self-contained rollback-journal file, and hard-linked to
its final name, which fails rather than overwrite an earlier backup.

The copies themselves are the target's (`Target.copy_into`, `Target.replace_with`), so this module
never asks which kind of database it holds. A SQLite file uses SQLite's online backup API in both
directions: a backup taken while an import writes is a consistent snapshot, and a restore is seen at
once through the target's open connection. A D1 database leaves D1 as a SQL dump, kept beside the
copy; restoring into D1 is Time Travel's job, and the target says so before anything is done.

Files are read with `immutable=1` (no locks, no -wal or -shm files beside them), so checking a FILE
that lives elsewhere writes nothing there.
"""

from __future__ import annotations

import os
import re
import sqlite3
import time
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path
from typing import Any

from ._confirm import Confirm, require_confirmation
from ._files import open_read_only, temporary_path
from ._sql import quote_name
from ._time import compact_time, ledger_time, new_id, parse_time
from .errors import BackupError, EstateFlowError, TargetError
from .schema import CORE_TABLES, SCHEMA_STATEMENTS
from .targets import Sql, Target

BACKUPS_ENV = "ESTATEFLOW_BACKUPS"
DEFAULT_BACKUPS_DIR = "backups"
_NAME = re.compile(r"^backup-(\d{8}T\d{6}Z)(?:-(\d+))?\.sqlite$")
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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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


def _check_integrity(conn: sqlite3.Connection, path: Path) -> None:
    found = [row[0] for row in conn.execute("PRAGMA integrity_check").fetchall()]
    if found != ["ok"]:
        raise BackupError(f"{path} fails SQLite's integrity check: {found[0] if found else 'no answer'}")


@cache
def _expected_columns() -> dict[str, frozenset[str]]:
    conn = sqlite3.connect(":memory:")
    for statement in SCHEMA_STATEMENTS:
        conn.execute(statement)
    columns = {t: frozenset(r[1] for r in conn.execute(f"PRAGMA table_info({quote_name(t)})")) for t in CORE_TABLES}
    conn.close()
    return columns


def _check_schema(conn: sqlite3.Connection, path: Path) -> None:
    for table, expected in _expected_columns().items():
        found = {row[1] for row in conn.execute(f"PRAGMA table_info({quote_name(table)})")}
        if not found:
            raise BackupError(f"{path} is not an EstateFlow database: it has no {table} table")
        if missing := sorted(expected - found):
            raise BackupError(f"{path} is not an EstateFlow database: {table} lacks {', '.join(missing)}")


def _counts(conn: sqlite3.Connection) -> tuple[int, int]:
    rows = conn.execute("SELECT (SELECT COUNT(*) FROM professionals), (SELECT COUNT(*) FROM ef_imports)").fetchone()
    return int(rows[0]), int(rows[1])


def _checked(path: Path) -> tuple[int, int]:
    """(rows, imports) of a database file that passes the integrity and schema checks; else BackupError."""
    if not path.is_file():
        raise BackupError(f"{path}: no such file")
    with path.open("rb") as f:
        if f.read(len(_SQLITE_HEADER)) != _SQLITE_HEADER:
            raise BackupError(f"{path} is not a SQLite database")
    wal = Path(f"{path}-wal")
    if wal.exists() and wal.stat().st_size:
        raise BackupError(
            f"{path} has changes not yet written into it ({wal.name}): open and close it with sqlite3"
            " first, or back that database up with `estateflow backup`"
        )
    try:
        conn = open_read_only(path)
        try:
            _check_integrity(conn, path)
            _check_schema(conn, path)
            return _counts(conn)
        finally:
            conn.close()
    except sqlite3.DatabaseError as error:
        raise BackupError(f"{path} is not a usable SQLite database ({error})") from None


def _claim(tmp: Path, folder: Path, stamp: str, suffix: str) -> Path:
    """Give `tmp` the first free name backup-STAMP[-N]SUFFIX; a hard link never overwrites."""
    number = 1
    while True:
        path = folder / f"backup-{stamp}{'' if number == 1 else f'-{number}'}{suffix}"
        try:
            os.link(tmp, path)
            return path
        except FileExistsError:
            number += 1


def backup(target: Target, *, backups_dir: str | Path | None = None, sql: bool = False) -> Path:
    """Copy the whole database to a new file in the backups folder and return its path.

    With `sql=True` a plain SQL dump of the same snapshot is written beside it (same name, `.sql`).
    A target that writes a dump on the way (D1: the dump is how it leaves D1) always has it kept.
    """
    folder = backups_folder(backups_dir)
    folder.mkdir(parents=True, exist_ok=True)
    stamp = compact_time()
    tmp = temporary_path(folder / f"backup-{stamp}.sqlite")
    dump = None
    try:
        try:
            copy = sqlite3.connect(tmp, isolation_level=None)
            try:
                dump = target.copy_into(copy, folder)
                copy.execute("PRAGMA journal_mode=DELETE")
                _check_integrity(copy, tmp)
            finally:
                copy.close()
        except sqlite3.Error as error:
            raise BackupError(f"backup into {folder} failed: {error}") from None
        path = _claim(tmp, folder, stamp, ".sqlite")
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


def _sort_key(path: Path) -> tuple[str, int]:
    match = _NAME.match(path.name)
    assert match is not None
    return match.group(1), int(match.group(2) or 1)


def _backup_files(folder: Path) -> list[Path]:
    """The backup files in `folder`, newest first."""
    if not folder.is_dir():
        return []
    return sorted((p for p in folder.iterdir() if _NAME.match(p.name)), key=_sort_key, reverse=True)


def _info(path: Path, counts: bool) -> BackupInfo:
    taken_at = ledger_time(parse_time(_sort_key(path)[0]))
    dump = path.with_suffix(".sql")
    info = BackupInfo(str(path), taken_at, path.stat().st_size, sql_dump=str(dump) if dump.exists() else None)
    if counts:
        try:
            conn = open_read_only(path)
            try:
                info.rows, info.imports = _counts(conn)
            finally:
                conn.close()
        except sqlite3.Error as error:
            info.error = f"unreadable: {error}"
    return info


def list_backups(*, backups_dir: str | Path | None = None, counts: bool = True) -> list[BackupInfo]:
    """The backups in the folder, newest first; with `counts`, their row and import counts."""
    return [_info(path, counts) for path in _backup_files(backups_folder(backups_dir))]


def newest_backup(*, backups_dir: str | Path | None = None) -> BackupInfo | None:
    """The newest backup (path, time, size), or None."""
    files = _backup_files(backups_folder(backups_dir))
    return _info(files[0], counts=False) if files else None


def prune_backups(
    keep: int,
    *,
    backups_dir: str | Path | None = None,
    dry_run: bool = False,
    yes: bool = False,
    confirm: Confirm | None = None,
) -> list[Path]:
    """Delete all but the newest `keep` backups (and their SQL dumps); return what goes.

    Asks like a rollback (`yes` or `confirm`); `dry_run` only returns the list.
    """
    if keep < 1:
        raise EstateFlowError(f"keep at least 1 backup, not {keep}")
    doomed = _backup_files(backups_folder(backups_dir))[keep:]
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

    The file must pass SQLite's integrity check and hold the EstateFlow tables. Asks like a rollback
    (`yes` or `confirm`), backs the current database up unless `backup_first=False`, then copies the
    file in with the online backup API in one transaction. Tables added to the schema since the
    backup was taken are created empty. The restore is recorded in `ef_rollbacks`.
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
    _record_restore(target, file, result, started_at)
    result.seconds = time.perf_counter() - began
    return result


def _record_restore(target: Target, file: Path, result: RestoreResult, started_at: str) -> None:
    """Recreate any table added to the schema since the backup, and record the restore in `ef_rollbacks`."""
    target.execute(
        [
            *(Sql(statement) for statement in SCHEMA_STATEMENTS),
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
