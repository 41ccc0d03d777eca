"""A local SQLite file as a target: the embedded default for development, demos and tests.

Opening never creates unless asked (`create=True`: import and ladder), and never writes to a database
that is already at the current schema: readers (status, verify, a notebook) open, read the schema
version and go on, however busy a writer is. A file that cannot be written (its mode, a read-only
mount) is opened read-only: every reading command works, and a write says "read-only".
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

from .._files import open_read_only, temporary_path
from ..errors import ConflictError, NoDatabaseError, SqlError, TargetError, TransientError
from ._base import CHANGES, ExecuteResult, InsertRows, Limits, Sql, Statement, Target

# 16 MiB of page cache: memory stays flat however big the file, as the cache is full by then. (32 MiB
# for every connection lifted a new database's import, reader included, from 120 to 153 MB, past issue
# 11's 150 MB. An import that keeps the indexes up writes with 32 MiB, the index builds with 2 MiB: see
# _deferred_indexes.)
CACHE_SIZE_PRAGMA = "PRAGMA cache_size=-16384"
PAGE_SIZE = 8192  # of a database this toolkit creates
# Per connection, and none of them takes a lock. (WAL mode, set once when the database is created or
# migrated, lets readers look while an import writes; synchronous=NORMAL in WAL mode still survives a
# killed process, it only risks the last commit on power loss.)
_PRAGMAS = (
    "PRAGMA synchronous=NORMAL",
    CACHE_SIZE_PRAGMA,
    "PRAGMA busy_timeout=5000",
    # Checkpoint the WAL every ~40 MB instead of every 4 MB: a big import spends a third less time
    # copying pages, and readers still see a bounded WAL.
    "PRAGMA wal_autocheckpoint=10000",
)


def _translate(error: sqlite3.Error) -> TargetError:
    message = str(error)
    if isinstance(error, sqlite3.IntegrityError) and "license_number" in message:
        return ConflictError(f"license number already in the table ({message})")
    if isinstance(error, sqlite3.OperationalError) and ("locked" in message or "busy" in message):
        return TransientError(f"SQLite: {message}")
    if isinstance(error, sqlite3.OperationalError) and (
        "syntax error" in message or "no such" in message or "has no column" in message
    ):
        return SqlError(f"SQLite: {message}")
    return TargetError(f"SQLite: {message}")


def _prepare(path: Path, create: bool) -> bool:
    """Check that `path` can be opened (creating its folder when `create`); True when it is read-only."""
    where = Path(os.path.abspath(path))
    if path.exists():
        if not path.is_file():
            raise TargetError(f"{where} is not a database file")
        writable = os.access(path, os.W_OK) and os.access(path.parent, os.W_OK | os.X_OK)
        return not writable or _read_only_mount(path.parent)
    if not create:
        raise NoDatabaseError(f"no database at {where}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise TargetError(f"cannot create a database at {where}: {error.strerror or error}") from None
    if not os.access(path.parent, os.W_OK | os.X_OK) or _read_only_mount(path.parent):
        raise TargetError(f"cannot create a database at {where}: its folder is read-only")
    return False


def _immutable(path: Path) -> str:
    """ "&immutable=1" where SQLite could not otherwise read the file: a WAL database needs its -shm file,
    which a read-only folder cannot hold. Nothing writes the file through this path then."""
    shm, wal = Path(f"{path}-shm"), Path(f"{path}-wal")
    if shm.exists() or (os.access(path.parent, os.W_OK | os.X_OK) and not _read_only_mount(path.parent)):
        return ""
    if wal.exists() and wal.stat().st_size:
        raise TargetError(
            f"{path.resolve()} is read-only and has changes in {wal.name} that only a writable copy can read:"
            " open it once where it can be written"
        )
    return "&immutable=1"


def _read_only_mount(folder: Path) -> bool:
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError:
        return False


class SQLiteTarget(Target):
    kind: Literal["sqlite"] = "sqlite"

    def __init__(self, path: str | Path, url: str | None = None, *, create: bool = False) -> None:
        """Open the database at `path`; with `create`, make it (and its folder) when missing.
        `connect()` then brings its schema up to date (see `_migrations`)."""
        self.path = Path(path)
        self.url = url or f"sqlite:///{self.path}"
        self.read_only = False
        memory = str(self.path) == ":memory:"
        if not memory:
            self.read_only = _prepare(self.path, create)
        try:
            if self.read_only:
                uri = f"{self.path.resolve().as_uri()}?mode=ro{_immutable(self.path)}"
                self._conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
            else:
                self._conn = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
            for pragma in _PRAGMAS:
                self._conn.execute(pragma)
            self._conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()  # reads the header: is it SQLite?
        except sqlite3.DatabaseError as error:
            raise TargetError(f"{self.path.resolve()}: not a usable SQLite database ({error})") from None
        self.limits = Limits(max_params=self._conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER))

    def schema_version(self) -> int | None:
        try:
            version = int(self._conn.execute("PRAGMA user_version").fetchone()[0])
            if version:
                return version
            ours = self._conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'professionals'")
            return 0 if ours.fetchone() else None
        except sqlite3.Error as error:
            raise self._translate(error) from error

    def migrate(self, statements: Sequence[Sql], version: int) -> None:
        if self.read_only:
            raise TargetError(
                f"{self.path.resolve()} is read-only and has an earlier schema: open it once where it can be"
                f" written to bring it up to version {version}"
            )
        cursor = self._conn.cursor()
        try:
            # Takes effect only in a database that has no table yet (ours: the first migration creates
            # them): 8 KiB pages load 500,000 rows about a fifth faster than the default 4 KiB.
            cursor.execute(f"PRAGMA page_size = {PAGE_SIZE}")
            cursor.execute("BEGIN IMMEDIATE")
            if int(cursor.execute("PRAGMA user_version").fetchone()[0]) >= version:
                cursor.execute("ROLLBACK")  # another process got there first
                return
            for statement in statements:
                self._run(cursor, statement, 0)
            cursor.execute(f"PRAGMA user_version = {int(version)}")
            cursor.execute("COMMIT")
        except sqlite3.Error as error:
            self._rollback()
            raise self._translate(error) from error
        if self._conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            self._conn.execute("PRAGMA journal_mode=WAL")

    @property
    def connection(self) -> sqlite3.Connection:
        """The open connection, for what needs SQLite's own API."""
        return self._conn

    def execute(
        self, statements: Sequence[Statement], *, before_commit: Callable[[], None] | None = None
    ) -> ExecuteResult:
        result = ExecuteResult()
        cursor = self._conn.cursor()
        try:
            # Takes effect only in a database that has no table yet (ours: the first migration creates
            # them): 8 KiB pages load 500,000 rows about a fifth faster than the default 4 KiB.
            cursor.execute(f"PRAGMA page_size = {PAGE_SIZE}")
            cursor.execute("BEGIN IMMEDIATE")
            previous = 0
            for statement in statements:
                if isinstance(statement, InsertRows):
                    previous = self._insert_rows(cursor, statement)
                    result.changes.append(previous)
                    result.rows.append([])
                    if statement.then is not None:
                        self._run(cursor, statement.then, previous)
                else:
                    previous = self._run(cursor, statement, previous)
                    result.changes.append(previous)
                    result.rows.append(_fetched(cursor))
            if before_commit is not None:
                before_commit()
            cursor.execute("COMMIT")
        except sqlite3.Error as error:
            self._rollback()
            raise self._translate(error) from error
        except BaseException:
            self._rollback()
            raise
        result.rows_written = sum(result.changes)
        return result

    def _translate(self, error: sqlite3.Error) -> TargetError:
        if self.read_only and "readonly" in str(error).replace("-", "").replace(" ", ""):
            return TargetError(f"{self.path.resolve()} is read-only: it can be read, not written")
        return _translate(error)

    def _rollback(self) -> None:
        if self._conn.in_transaction:
            self._conn.execute("ROLLBACK")

    @staticmethod
    def _run(cursor: sqlite3.Cursor, statement: Sql, previous: int) -> int:
        params = [previous if p is CHANGES else p for p in statement.params]
        cursor.execute(statement.text, params)
        return max(cursor.rowcount, 0)

    @staticmethod
    def _insert_rows(cursor: sqlite3.Cursor, insert: InsertRows) -> int:
        if not insert.rows:
            return 0
        columns = ", ".join(insert.columns)
        marks = ", ".join("?" * len(insert.columns))
        cursor.executemany(f"INSERT INTO {insert.table} ({columns}) VALUES ({marks}) {insert.tail}", insert.rows)
        return max(cursor.rowcount, 0)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        try:
            cursor = self._conn.execute(sql, params)
        except sqlite3.Error as error:
            raise self._translate(error) from error
        return _fetched(cursor)

    def size_bytes(self) -> int | None:
        if str(self.path) == ":memory:":
            return None
        return sum(p.stat().st_size for p in (self.path, Path(f"{self.path}-wal")) if p.exists())

    def close(self) -> None:
        self._conn.close()

    # -- backups: SQLite's online backup API, in both directions ----------------------------------

    def copy_into(self, connection: sqlite3.Connection, scratch_folder: Path) -> None:
        """A consistent snapshot, even while an import writes."""
        self._conn.backup(connection)

    def replace_refusal(self) -> None:
        return None

    def replace_with(self, path: Path) -> None:
        """Copy the file in through the open connection, so that it is seen at once. A file of another
        page size (a backup of an earlier database, a D1 export) is first rewritten in this one's, beside
        the database: SQLite copies into a database in WAL mode only between equal page sizes."""
        converted = None
        try:
            source = open_read_only(path)
            try:
                page_size = self._conn.execute("PRAGMA page_size").fetchone()[0]
                if not self.read_only and source.execute("PRAGMA page_size").fetchone()[0] != page_size:
                    converted = temporary_path(self.path)
                    source = _in_page_size(source, converted, page_size)
                source.backup(self._conn)
            finally:
                source.close()
        except sqlite3.Error as error:
            raise self._translate(error) from None
        finally:
            if converted is not None:
                converted.unlink(missing_ok=True)

    def is_same_file(self, path: Path) -> bool:
        return path.exists() and path.resolve() == self.path.resolve()


def _in_page_size(source: sqlite3.Connection, path: Path, page_size: int) -> sqlite3.Connection:
    """A copy of `source` at `path` in pages of `page_size`, open (VACUUM rewrites a database that is not
    in WAL mode in the page size asked for); `source` is closed either way."""
    with contextlib.closing(source):
        copy = sqlite3.connect(path, isolation_level=None)
        try:
            source.backup(copy)
            copy.execute("PRAGMA journal_mode=DELETE")
            copy.execute(f"PRAGMA page_size = {int(page_size)}")
            copy.execute("VACUUM")
        except BaseException:
            copy.close()
            raise
    return copy


def _fetched(cursor: sqlite3.Cursor) -> list[dict[str, Any]]:
    """The rows the statement just run returned (none for a plain write)."""
    if cursor.description is None:
        return []
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
