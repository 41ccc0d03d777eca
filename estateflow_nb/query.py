"""Your own question to the database, as a pandas DataFrame: `read_sql(target, sql, params)`.

    read_sql(target, "SELECT state, COUNT(*) AS n FROM professionals GROUP BY state")
    read_sql("d1://ACCOUNT/DATABASE", "SELECT * FROM professionals WHERE city = ?", ("Miami",))

Named after pandas' own, it answers from a SQLite file and from D1 alike, and it only ever reads, by
construction rather than by looking at the first word:

- SQLite parses the text. It must be one statement (what follows its `;` may only be blanks and
  comments), and compiling it under an authorizer that allows reading tables, selecting, functions
  and recursive common table expressions, and nothing else, must succeed: a write, a PRAGMA, an
  ATTACH, a transaction, a schema change are refused at compile time, and a statement that reads
  nothing (VACUUM) is refused for not being a SELECT. Each refusal is one line (RefusedError).
- On a SQLite file the statement then runs on a second connection opened `mode=ro` with
  `PRAGMA query_only`, under the same authorizer.
- D1 has no connection to hold, so the statement is checked on an empty in-memory copy of the
  database's schema, and what is sent is that one statement inside `SELECT * FROM (...) LIMIT n`:
  SQLite's grammar admits nothing but a SELECT (or WITH ... SELECT, or VALUES) there.

`limit` caps the rows (default 100,000): a query that gives more returns the first `limit`, warns,
and says so in the frame's `attrs["estateflow"]`. Duplicate column names come back as SQLite names
them in a subquery (`n`, `n:1`). The frame's `attrs["estateflow"]` says which database answered,
the SQL and the parameters' count, the rows and whether they were cut; the D1 token is in none of it,
nor in any error (it only ever travels in the request's header).

pandas is imported when a question is asked, never by `import estateflow_nb`.
"""

from __future__ import annotations

import os
import sqlite3
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from .errors import EstateFlowError, RefusedError, SqlError
from .targets import Target, connect, describe_url
from .targets._reading import reading_connection

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["DEFAULT_LIMIT", "read_sql"]

DEFAULT_LIMIT = 100_000
# The longest statement read_sql takes: D1's limit for one statement.
MAX_SQL_CHARS = 100_000

# What a read does, in SQLite's authorizer's words; everything else is refused.
_READS = {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION, sqlite3.SQLITE_RECURSIVE}
# Functions that do something besides computing a value.
_REFUSED_FUNCTIONS = {"load_extension", "fts3_tokenizer"}
# The authorizer's actions by name, for the line that says what was refused.
_ACTIONS = {
    getattr(sqlite3, f"SQLITE_{name}"): name.replace("_", " ")
    for name in (
        *("INSERT", "UPDATE", "DELETE", "PRAGMA", "ATTACH", "DETACH", "TRANSACTION", "SAVEPOINT"),
        *("CREATE_TABLE", "CREATE_INDEX", "CREATE_VIEW", "CREATE_TRIGGER", "CREATE_VTABLE", "ALTER_TABLE"),
        *("CREATE_TEMP_TABLE", "CREATE_TEMP_INDEX", "CREATE_TEMP_VIEW", "CREATE_TEMP_TRIGGER"),
        *("DROP_TABLE", "DROP_INDEX", "DROP_VIEW", "DROP_TRIGGER", "DROP_VTABLE"),
        *("DROP_TEMP_TABLE", "DROP_TEMP_INDEX", "DROP_TEMP_VIEW", "DROP_TEMP_TRIGGER", "REINDEX", "ANALYZE"),
    )
}
# SQLite's own record of the schema: a statement that would change it names it first (DROP TABLE
# deletes from it before it drops).
_SCHEMA_TABLES = {"sqlite_master", "sqlite_schema", "sqlite_temp_master", "sqlite_temp_schema"}
_TOKEN_ENV = "CLOUDFLARE_API_TOKEN"


class _ReadsOnly:
    """A SQLite authorizer that allows reading and nothing else, and remembers what it refused first."""

    def __init__(self) -> None:
        self.refused: str | None = None
        self.selects = 0

    def __call__(self, action: int, first: str | None, second: str | None, _db: str | None, _by: str | None) -> int:
        if action == sqlite3.SQLITE_FUNCTION and (second or "").casefold() in _REFUSED_FUNCTIONS:
            self.refused = self.refused or f"the function {second}()"
            return sqlite3.SQLITE_DENY
        if action in _READS:
            self.selects += action == sqlite3.SQLITE_SELECT
            return sqlite3.SQLITE_OK
        if self.refused is None:
            what = _ACTIONS.get(action, f"action {action}")
            if action == sqlite3.SQLITE_PRAGMA and first:
                what = f"PRAGMA {first}"
            elif (first or "").casefold() in _SCHEMA_TABLES:
                what = f"a change to the schema ({what} on {first})"
            self.refused = what
        return sqlite3.SQLITE_DENY


def read_sql(
    target: Target | str | None, sql: str, params: Sequence[Any] = (), *, limit: int = DEFAULT_LIMIT
) -> pd.DataFrame:
    """The rows of one SELECT (or WITH ... SELECT) statement as a DataFrame, read-only on SQLite and D1
    alike. `target` is a target or a database URL (None: the default database); `params` fill the
    statement's `?` placeholders; at most `limit` rows come back (a warning says when there were more).

    Raises RefusedError for anything but one statement that only reads, SqlError for SQL that SQLite
    cannot compile (a typo, a table that is not there), NoDatabaseError for a database that is not there.
    """
    import pandas as pd

    statement, values = _checked_arguments(sql, params, limit)
    wrapped = f"SELECT * FROM (\n{statement}\n) LIMIT {limit + 1}"
    with _opened(target) as database, reading_connection(database) as (connection, runs_here):
        authorizer = _ReadsOnly()
        connection.set_authorizer(authorizer)
        _compile(connection, authorizer, sql, values)
        if runs_here:
            cursor = _run(connection, wrapped, values)
            columns = [d[0] for d in cursor.description or ()]
            rows = [tuple(row) for row in cursor.fetchall()]
        else:
            _compile(connection, authorizer, wrapped, values)
            found = database.query(wrapped, values)
            columns = list(found[0]) if found else _columns(connection, statement, values)
            rows = [tuple(row.values()) for row in found]
        url = database.url
    cut = len(rows) > limit
    frame = pd.DataFrame.from_records(rows[:limit], columns=columns)
    frame.attrs["estateflow"] = {
        "database": _without_token(describe_url(url)),
        "sql": _without_token(sql),
        "params": len(values),
        "rows": len(frame),
        "limit": limit,
        "cut": cut,
    }
    if cut:
        warnings.warn(
            f"read_sql: the query gives more than {limit:,} rows; only the first {limit:,} came back (limit=...)",
            stacklevel=2,
        )
    return frame


def _checked_arguments(sql: Any, params: Any, limit: Any) -> tuple[str, list[Any]]:
    """The statement without its closing `;` (and what follows it), and the parameters as a list."""
    if not isinstance(sql, str) or not sql.strip():
        raise RefusedError("read_sql needs one SELECT statement as text")
    if len(sql) > MAX_SQL_CHARS:
        raise RefusedError(f"read_sql takes a statement of up to {MAX_SQL_CHARS:,} characters, not {len(sql):,}")
    if isinstance(params, str | bytes | dict) or not isinstance(params, Sequence):
        raise RefusedError("read_sql's params are a sequence of values, one for each ? of the statement")
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise RefusedError(f"read_sql's limit is a whole number of rows, at least 1, not {limit!r}")
    return _first_statement(sql), list(params)


def _first_statement(sql: str) -> str:
    """The text up to the `;` where SQLite's tokenizer says the first statement is complete (all of it
    when there is none). Whether anything but comments follows is for the compiler to say."""
    for end, character in enumerate(sql):
        if character == ";" and sqlite3.complete_statement(sql[: end + 1]):
            return sql[:end]
    return sql


def _compile(connection: sqlite3.Connection, authorizer: _ReadsOnly, sql: str, values: Sequence[Any]) -> None:
    """Compile `sql` (EXPLAIN runs nothing) under the authorizer: one statement, reading only, a SELECT."""
    authorizer.refused, authorizer.selects = None, 0
    try:
        connection.execute(f"EXPLAIN {sql}", values).fetchone()
    except sqlite3.ProgrammingError as error:
        if "one statement" in str(error):
            raise RefusedError("read_sql runs one statement: this text holds more than one") from None
        raise RefusedError(f"read_sql: {_without_token(str(error))}") from None
    except sqlite3.Error as error:
        if authorizer.refused is not None:
            raise RefusedError(
                f"read_sql only reads: {authorizer.refused} is refused (one SELECT or WITH ... SELECT)"
            ) from None
        if "incomplete input" in str(error):
            raise RefusedError("read_sql needs one SELECT statement; this text holds none") from None
        raise SqlError(f"read_sql: SQLite cannot compile this query: {_without_token(str(error))}") from None
    if authorizer.selects == 0:
        raise RefusedError("read_sql only reads: this statement is not a SELECT (one SELECT or WITH ... SELECT)")


def _run(connection: sqlite3.Connection, sql: str, values: Sequence[Any]) -> sqlite3.Cursor:
    try:
        return connection.execute(sql, values)
    except sqlite3.Error as error:
        raise SqlError(f"read_sql: {_without_token(str(error))}") from None


def _columns(copy: sqlite3.Connection, statement: str, values: Sequence[Any]) -> list[str]:
    """The names of the columns, from the empty copy of the schema (LIMIT 0 runs nothing there)."""
    cursor = _run(copy, f"SELECT * FROM (\n{statement}\n) LIMIT 0", values)
    return [d[0] for d in cursor.description or ()]


@contextmanager
def _opened(target: Target | str | None) -> Iterator[Target]:
    """The target given, or the database a URL names, opened for this question and closed after it."""
    if isinstance(target, Target):
        yield target
        return
    if target is not None and not isinstance(target, str):
        raise EstateFlowError(f"read_sql reads a target or a database URL, not {type(target).__name__}")
    with connect(target) as opened:
        yield opened


def _without_token(text: str) -> str:
    """`text` with the D1 token taken out, should a message or a statement ever hold it."""
    token = os.environ.get(_TOKEN_ENV, "").strip()
    return text.replace(token, "<token>") if len(token) >= 8 else text
