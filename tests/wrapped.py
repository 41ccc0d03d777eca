"""A real target seen only through the Target interface, for tests that put a fault or a probe in
front of it: subclasses override what they change (usually `execute`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from estateflow_nb.targets import ExecuteResult, Target


class Wrapped(Target):
    def __init__(self, inner: Target) -> None:
        self.inner = inner
        self.url, self.kind, self.limits = inner.url, inner.kind, inner.limits

    def execute(self, statements: Sequence[Any], *, before_commit: Any = None) -> ExecuteResult:
        return self.inner.execute(statements, before_commit=before_commit)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        return self.inner.query(sql, params)

    def size_bytes(self) -> int | None:
        return self.inner.size_bytes()

    def schema_version(self) -> int | None:
        return self.inner.schema_version()

    def migrate(self, statements: Sequence[Any], version: int) -> None:
        self.inner.migrate(statements, version)
