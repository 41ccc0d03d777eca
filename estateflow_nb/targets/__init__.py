"""Where SQL runs: `connect(url)` gives a `Target` for a SQLite file or a Cloudflare D1 database.

    sqlite:///data/estateflow.db      a file, relative to the project root (see below)
    sqlite:////srv/estateflow.db      an absolute path (four slashes)
    data/estateflow.db                a bare path means SQLite too
    d1://ACCOUNT_ID/DATABASE_ID       Cloudflare D1 (the token comes from CLOUDFLARE_API_TOKEN)

Without a URL, `ESTATEFLOW_DB` is used, then `DEFAULT_DB_URL`. A relative path means the same file
from wherever it is given: from the project's root, from `notebooks/` (where JupyterLab starts its
kernels) or from a report's kernel. The root is `ESTATEFLOW_HOME` when set, else the nearest folder
holding `pyproject.toml` from the working directory up, else the working directory; `resolve_url`
gives the URL with the absolute path, and every target's `url` is that.

`_base` holds the interface every target offers (`Target`, the statement shapes, `Limits`), `_sqlite`
the SQLite file, and the `d1` package Cloudflare D1. Nothing outside this package asks which kind of
target it holds: what differs (backups, restores, bookmarks, limits) is a method or an attribute.
"""

from __future__ import annotations

import os
from pathlib import Path

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
    "describe_url",
    "project_path",
    "project_root",
    "resolve_url",
]

HOME_ENV = "ESTATEFLOW_HOME"
_SQLITE = "sqlite://"


def project_root() -> Path:
    """Where relative paths start: ESTATEFLOW_HOME, else the nearest folder from the working directory
    up that holds pyproject.toml, else the working directory."""
    home = os.environ.get(HOME_ENV, "").strip()
    if home:
        return Path(os.path.abspath(Path(home).expanduser()))
    here = Path(os.path.abspath(Path.cwd()))
    return next((folder for folder in (here, *here.parents) if _holds_project(folder)), here)


def _holds_project(folder: Path) -> bool:
    try:
        return (folder / "pyproject.toml").is_file()
    except OSError:  # a folder on the way up that we may not look into
        return False


def project_path(path: str | Path) -> Path:
    """`path` made absolute: a relative one is taken from the project root."""
    path = Path(path).expanduser()
    return Path(os.path.abspath(path if path.is_absolute() else project_root() / path))


def resolve_url(url: str | None = None) -> str:
    """The URL that `connect(url)` will use: the default when none is given, and a SQLite file's path
    made absolute (from the project root), so that it names the same file from any folder."""
    url = url or os.environ.get("ESTATEFLOW_DB") or DEFAULT_DB_URL
    if url.startswith(_SQLITE):
        path = url.removeprefix(_SQLITE)
        if not path.startswith("/") or path == "/":
            return url  # malformed: `_open` says so
        path = path[1:]
    elif "://" in url:
        return url
    else:
        path = url
    if path == ":memory:":
        return f"{_SQLITE}/{path}"
    return f"{_SQLITE}/{project_path(path)}"


def describe_url(url: str) -> str:
    """Where a database is, for a person: a SQLite file's absolute path, or D1's database and account ids."""
    resolved = resolve_url(url)
    if resolved.startswith(_SQLITE):
        return resolved.removeprefix(_SQLITE)[1:]
    if resolved.startswith("d1://"):
        account, _, database = resolved.removeprefix("d1://").partition("/")
        return (
            f"D1 database {database or '(from D1_DATABASE_ID)'} (account {account or '(from CLOUDFLARE_ACCOUNT_ID)'})"
        )
    return resolved


def connect(url: str | None = None, *, create: bool = False, schema: bool = True) -> Target:
    """Open the target named by `url` and bring its schema up to date.

    Only with `create` (import and ladder) is a missing database made: otherwise NoDatabaseError says
    where none was found, and nothing is created there, not even a folder. `schema=False` opens it as
    it is, whatever it holds, for what replaces the whole database (a Time Travel restore).
    """
    # Both speak to targets through this package's interface.
    from .._deferred_indexes import restore
    from .._migrations import ensure_schema

    target = _open(resolve_url(url), create)
    if not schema:
        return target
    try:
        ensure_schema(target, create=create)
        restore(target)  # the indexes a killed big import had deferred (see _deferred_indexes)
    except BaseException:
        target.close()
        raise
    return target


def _open(url: str, create: bool) -> Target:
    """The target of a URL `resolve_url` gave: a SQLite file's path is absolute by then."""
    if url.startswith(_SQLITE):
        path = url.removeprefix(_SQLITE)
        if not path.startswith("/") or path == "/":
            raise EstateFlowError(f"bad SQLite URL {url!r}: expected sqlite:///path/to/file.db")
        return SQLiteTarget(path[1:], url=url, create=create)
    if url.startswith("d1://"):
        from .d1 import D1Target

        return D1Target.from_url(url)
    raise EstateFlowError(f"unknown database URL {url!r}: expected sqlite:///PATH or d1://ACCOUNT/DATABASE")
