"""A target in front of another: every method of the Target interface is the inner target's.

A subclass changes what it stands in front of for (the free tier's `QuotaGuard` holds back writes);
a method left to the base class instead would answer for the wrapper, not for the target.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from .targets import BookmarkRestore, ExecuteResult, Sql, Statement, Target


class Forwarding(Target):
    def __init__(self, inner: Target) -> None:
        self.inner = inner
        self.url, self.kind, self.limits = inner.url, inner.kind, inner.limits

    def execute(
        self, statements: Sequence[Statement], *, before_commit: Callable[[], None] | None = None
    ) -> ExecuteResult:
        return self.inner.execute(statements, before_commit=before_commit)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        return self.inner.query(sql, params)

    def size_bytes(self) -> int | None:
        return self.inner.size_bytes()

    def schema_version(self) -> int | None:
        return self.inner.schema_version()

    def migrate(self, statements: Sequence[Sql], version: int) -> None:
        self.inner.migrate(statements, version)

    def bookmark(self, at: datetime | None = None) -> str | None:
        return self.inner.bookmark(at)

    def restore_to_bookmark(self, bookmark: str) -> BookmarkRestore:
        return self.inner.restore_to_bookmark(bookmark)

    def close(self) -> None:
        self.inner.close()

    def copy_into(self, connection: sqlite3.Connection, scratch_folder: Path) -> Path | None:
        return self.inner.copy_into(connection, scratch_folder)

    def replace_refusal(self) -> str | None:
        return self.inner.replace_refusal()

    def replace_with(self, path: Path) -> None:
        self.inner.replace_with(path)

    def is_same_file(self, path: Path) -> bool:
        return self.inner.is_same_file(path)
