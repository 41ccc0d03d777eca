"""Where SQL runs: `connect(url)` gives a `Target` for a SQLite file or a Cloudflare D1 database.

    sqlite:///data/estateflow.db      a file, relative to the working directory
    sqlite:////srv/estateflow.db      an absolute path (four slashes)
    data/estateflow.db                a bare path means SQLite too
    d1://ACCOUNT_ID/DATABASE_ID       Cloudflare D1 (the token comes from CLOUDFLARE_API_TOKEN)

Without a URL, `ESTATEFLOW_DB` is used, then `DEFAULT_DB_URL`.

`_base` holds the interface every target offers (`Target`, the statement shapes, `Limits`), `_sqlite`
the SQLite file, and the `d1` package Cloudflare D1. Nothing outside this package asks which kind of
target it holds: what differs (backups, restores, bookmarks, limits) is a method or an attribute.
"""

from __future__ import annotations

import os

from ..errors import EstateFlowError
from ._base import CHANGES, BookmarkRestore, ExecuteResult, InsertRows, Limits, Sql, Statement, Target, TargetKind
from ._sqlite import SQLiteTarget

DEFAULT_DB_URL = "sqlite:///data/estateflow.db"

__all__ = [
    "CHANGES",
    "DEFAULT_DB_URL",
    "BookmarkRestore",
    "ExecuteResult",
    "InsertRows",
    "Limits",
    "SQLiteTarget",
    "Sql",
    "Statement",
    "Target",
    "TargetKind",
    "connect",
    "resolve_url",
]


def resolve_url(url: str | None = None) -> str:
    """The URL that `connect(url)` will use."""
    return url or os.environ.get("ESTATEFLOW_DB") or DEFAULT_DB_URL


def connect(url: str | None = None, *, create: bool = False, schema: bool = True) -> Target:
    """Open the target named by `url` and bring its schema up to date.

    Only with `create` (import and ladder) is a missing database made: otherwise NoDatabaseError says
    where none was found, and nothing is created there, not even a folder. `schema=False` opens it as
    it is, whatever it holds, for what replaces the whole database (a Time Travel restore).
    """
    from .._migrations import ensure_schema  # it speaks to targets through this package's interface

    target = _open(resolve_url(url), create)
    if not schema:
        return target
    try:
        ensure_schema(target, create=create)
    except BaseException:
        target.close()
        raise
    return target


def _open(url: str, create: bool) -> Target:
    if url.startswith("sqlite://"):
        path = url.removeprefix("sqlite://")
        if not path.startswith("/") or path == "/":
            raise EstateFlowError(f"bad SQLite URL {url!r}: expected sqlite:///path/to/file.db")
        return SQLiteTarget(path[1:], url=url, create=create)
    if url.startswith("d1://"):
        from .d1 import D1Target

        return D1Target.from_url(url)
    if "://" in url:
        raise EstateFlowError(f"unknown database URL {url!r}: expected sqlite:///PATH or d1://ACCOUNT/DATABASE")
    return SQLiteTarget(url, url=f"sqlite:///{url}", create=create)
