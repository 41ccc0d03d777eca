"""What every target offers: run statements atomically, answer queries, know its limits.

The engine speaks only this interface, so it does not know whether SQL runs in a local SQLite file
or in Cloudflare D1. Writes go through `execute`, a list of statements that commits as one unit.
Two statement shapes exist:

- `Sql`: one statement with bound parameters. A parameter may be `CHANGES`, which the target
  replaces with the number of rows changed by the statement just before it in the same list. This
  lets the ledger count what a batch really inserted inside the batch's own transaction, on a
  target (D1) where the request is sent before any count comes back.
- `InsertRows`: many rows of one table; each target packs them the fastest way its limits allow
  (SQLite: one `executemany`; D1: multi-row literal INSERTs under 100 KB each). Its `then`
  statement runs after each packed piece, with `CHANGES` bound to that piece's count.

Backups and restores go through the interface too: `copy_into` copies the whole database into a
local SQLite connection, `replace_with` replaces it with a checked SQLite file (where the target
can), and `is_same_file` answers whether a file is the database itself. Where the provider keeps the
database's history (D1's Time Travel), `bookmark` names a moment of it and `restore_to_bookmark`
returns the database to one, saying the bookmark that undoes it.
"""

from __future__ import annotations

import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from ..errors import EstateFlowError

TargetKind = Literal["sqlite", "d1"]


class _Changes:
    def __repr__(self) -> str:
        return "CHANGES"


CHANGES: Any = _Changes()


@dataclass(frozen=True)
class Sql:
    text: str
    params: Sequence[Any] = ()


@dataclass(frozen=True)
class InsertRows:
    table: str
    columns: Sequence[str]
    rows: Sequence[Sequence[Any]]
    # SQL after the VALUES list, e.g. "ON CONFLICT(license_number) DO NOTHING".
    tail: str = ""
    then: Sql | None = None
    # The rows as the target's `Limits.row_renderer` rendered them ahead: each row its text, or its
    # values where the renderer left it as it was.
    rendered: bool = False


Statement = Sql | InsertRows


@dataclass(frozen=True)
class Limits:
    """What one statement may carry on this target (None: no practical limit)."""

    max_params: int
    max_sql_bytes: int | None = None
    max_query_seconds: float | None = None
    # Each `execute` is a round trip over the network (D1): work carried inside a request that is sent
    # anyway costs nothing, a request of its own costs a round trip.
    round_trips: bool = False
    # Where the rows of an `InsertRows` may be rendered ahead into the text the target sends (D1: SQL
    # literals), by the process that reads them while the importer writes (see _batches.py):
    # "module:function", from a list of rows to the list rendered (see `InsertRows.rendered`). None: the
    # target takes values only.
    row_renderer: str | None = None


@dataclass
class ExecuteResult:
    changes: list[int] = field(default_factory=list)
    rows_written: int = 0
    # How long the target itself says the work took (D1: the sum of `meta.duration`), where it says:
    # what sizes the next request to stay well inside `Limits.max_query_seconds`.
    server_seconds: float | None = None
    # What each statement returned (a SELECT's rows), one list per statement, where the target says;
    # empty where it does not. Lets a write read back what it wrote in the same request (on D1, one
    # round trip fewer).
    rows: list[list[dict[str, Any]]] = field(default_factory=list)

    def returned(self, index: int) -> list[dict[str, Any]] | None:
        """The rows statement `index` returned; None where the target did not say."""
        try:
            return self.rows[index]
        except IndexError:
            return None


@dataclass(frozen=True)
class BookmarkRestore:
    """What the provider said after returning a database to a bookmark."""

    bookmark: str  # the state after the restore
    previous_bookmark: str  # the state before it: restoring to this undoes the restore
    message: str = ""


class Target(ABC):
    """A database the toolkit reads and writes. Create one with `estateflow_nb.connect(url)`."""

    url: str
    kind: TargetKind
    limits: Limits

    @abstractmethod
    def execute(
        self, statements: Sequence[Statement], *, before_commit: Callable[[], None] | None = None
    ) -> ExecuteResult:
        """Run `statements` as one unit: one transaction on SQLite (all of them take effect, or none),
        one request on D1 (which Cloudflare does not promise to apply whole: see `d1.target`).

        `before_commit` runs after the last statement and before the commit where the target can
        tell the two apart; tests use it to crash a process mid-transaction.
        """

    @abstractmethod
    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Rows of a read-only query, as dicts of column name to value."""

    @abstractmethod
    def size_bytes(self) -> int | None:
        """The database's size on disk, where the target can say."""

    @abstractmethod
    def schema_version(self) -> int | None:
        """The schema version the database records; 0 for tables made before versions were kept, None
        when it holds nothing of ours. Reads only (see `_migrations`)."""

    @abstractmethod
    def migrate(self, statements: Sequence[Sql], version: int) -> None:
        """Run `statements` and record `version`, in one transaction; nothing when another process got
        the database to `version` first."""

    def bookmark(self, at: datetime | None = None) -> str | None:
        """A point the provider can restore the database to (D1's Time Travel): now, or the nearest one at
        or before `at`; None where there is none."""
        return None

    def restore_to_bookmark(self, bookmark: str) -> BookmarkRestore:
        """Return the whole database to `bookmark` in one step, where the provider keeps its history."""
        raise EstateFlowError(
            f"{self.url} has no Time Travel bookmarks to restore to ({self.kind} databases keep no history);"
            " restore a backup file instead"
        )

    def close(self) -> None:  # noqa: B027 - a target may hold nothing to release
        """Release connections; the target is not used afterwards."""

    def copy_into(self, connection: sqlite3.Connection, scratch_folder: Path) -> Path | None:
        """Copy the whole database (schema and rows) into `connection`, an empty SQLite database.

        A target that writes a SQL dump on the way (D1) writes it in `scratch_folder` and returns its
        path, for the caller to keep or delete; others return None.
        """
        raise EstateFlowError(f"backups of {self.kind} databases are not supported")

    def replace_refusal(self) -> str | None:
        """Why `replace_with` cannot work on this target, and what to do instead; None when it can."""
        return f"restores of {self.kind} databases are not supported"

    def replace_with(self, path: Path) -> None:
        """Replace the whole database, in one step, with the SQLite file at `path` (already checked).

        Raises TargetError if the copy fails, leaving the database as it was.
        """
        raise EstateFlowError(self.replace_refusal() or f"restores of {self.kind} databases are not supported")

    def is_same_file(self, path: Path) -> bool:
        """Whether `path` is this database's own file (restoring it onto itself would destroy it)."""
        return False

    def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        rows = self.query(sql, params)
        return next(iter(rows[0].values())) if rows else None

    def __enter__(self) -> Target:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.url}>"
