"""A SQLite connection that can only read, for `read_sql` (estateflow_nb/query.py) to check a person's
own statement on, and where it can, to run it on.

A SQLite file is opened a second time, `mode=ro` and `PRAGMA query_only`: the statement runs on that
connection, never on the target's own (which writes). D1 cannot be reached by a connection, so the
statement is checked on an in-memory copy of the database's schema (its tables and views, from its
`sqlite_master`), empty, and then sent to D1 as checked; so is one for an in-memory SQLite target,
which has no file to open twice.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from ..errors import TargetError
from ._base import Target
from ._sqlite import SQLiteTarget, _immutable


@contextmanager
def reading_connection(target: Target) -> Iterator[tuple[sqlite3.Connection, bool]]:
    """(a read-only connection, whether it is the database itself): the SQLite file opened again to read
    only (True), or an empty in-memory copy of the schema to check statements on (False)."""
    connection = _file_read_only(target) if isinstance(target, SQLiteTarget) else None
    runs_here = connection is not None
    if connection is None:
        connection = _schema_copy(target)
    try:
        yield connection, runs_here
    finally:
        connection.close()


def _file_read_only(target: SQLiteTarget) -> sqlite3.Connection | None:
    if str(target.path) == ":memory:":
        return None
    uri = f"{target.path.resolve().as_uri()}?mode=ro{_immutable(target.path)}"
    try:
        connection = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
        connection.execute("PRAGMA query_only = ON")
        connection.execute("PRAGMA busy_timeout = 5000")
    except sqlite3.Error as error:
        raise TargetError(f"{target.path.resolve()}: cannot be opened to read ({error})") from None
    return connection


def _schema_copy(target: Target) -> sqlite3.Connection:
    """The target's tables and views, created empty in memory. A definition this SQLite cannot make (a
    virtual table of a module it lacks) is left out: a statement that names it is then refused, not sent."""
    copy = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
    for row in target.query("SELECT sql FROM sqlite_master WHERE type IN ('table', 'view') AND sql IS NOT NULL"):
        with suppress(sqlite3.Error):
            copy.execute(str(row["sql"]))
    copy.execute("PRAGMA query_only = ON")
    return copy
