"""A D1 database as a SQL dump paged out through queries (the fallback when D1's export API is not
available), and any dump of ours replayed into a local SQLite file.

The paged dump is what D1's own export writes, statement for statement kinds: CREATE TABLE,
multi-row INSERTs with exact literals (integers as written, reals as SQLite quotes them, NUL inside
text as `'||char(0)||'`, line breaks through replace() as .dump writes them), CREATE INDEX. No
BEGIN, COMMIT or PRAGMA: D1 refuses transactions in a file for `wrangler d1 execute --file`, so the
file loads there as it is, in the sqlite3 shell, and through `estateflow import`. D1's internal tables
(`_cf_*`, `sqlite_*`) are left out. Paging is not one snapshot: rows written while it pages may or
may not be in it, which is why the export API comes first.

`load_dump` replays such a file (paged or exported) into a local SQLite connection, statement by
statement, with an authorizer that lets nothing reach outside that file (no ATTACH, no PRAGMA but
the two foreign-key ones).
"""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TextIO

from ..._files import atomic_text
from ..._sql import quote_name, quote_text
from ...errors import TooLargeError

Query = Callable[[str], list[dict[str, Any]]]

DUMP_PAGE_ROWS = 2_000
DUMP_ROWS_PER_INSERT = 200

_SCHEMA = (
    "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL AND type IN ('table', 'index')"
    " AND name NOT LIKE 'sqlite/_%' ESCAPE '/' AND name NOT LIKE '/_cf/_%' ESCAPE '/'"
    " ORDER BY CASE type WHEN 'table' THEN 0 ELSE 1 END, rowid"
)


def dump_sql(query: Query, path: str | Path, header: str = "") -> Path:
    """Write every table (schema, rows, indexes) that `query` reaches to `path` as a SQL dump, after
    `header` (a comment line). Written under a temporary name and renamed when complete.
    """
    schema = query(_SCHEMA)
    with atomic_text(path) as out:
        out.write(header)
        for entry in schema:
            if entry["type"] == "table":
                out.write(f"{entry['sql']};\n")
                _dump_rows(query, entry["name"], out, paged="WITHOUT ROWID" not in entry["sql"].upper())
        for entry in schema:
            if entry["type"] == "index":
                out.write(f"{entry['sql']};\n")
    return Path(path)


def load_dump(path: Path, connection: sqlite3.Connection) -> None:
    """Run the dump at `path` (one we wrote or D1 exported) in `connection`, one statement at a time."""
    connection.set_authorizer(_within_the_file)
    try:
        with open(path, encoding="utf-8", newline="") as lines:
            statement = ""
            for line in lines:
                statement += line
                # complete_statement scans the whole text: ask only where a statement may end.
                if line.rstrip().endswith(";") and sqlite3.complete_statement(statement):
                    connection.execute(statement)
                    statement = ""
    finally:
        connection.set_authorizer(None)


_OUTSIDE = {sqlite3.SQLITE_ATTACH, sqlite3.SQLITE_DETACH}


def _within_the_file(action: int, arg1: str | None, *_: str | None) -> int:
    """Deny what would reach beyond the database being filled: other files, connection settings."""
    if action in _OUTSIDE:
        return sqlite3.SQLITE_DENY
    if action == sqlite3.SQLITE_PRAGMA and (arg1 or "").lower() not in ("foreign_keys", "defer_foreign_keys"):
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK


def _dump_rows(query: Query, table: str, out: TextIO, *, paged: bool = True) -> None:
    """Rows in pages by rowid; a WITHOUT ROWID table (only our scratch tables) in one read."""
    name = quote_name(table)
    columns = [row["name"] for row in query(f"PRAGMA table_info({name})")]
    if not columns:
        return
    # Each value comes with its type: integers as text (JSON numbers lose digits past 2^53),
    # reals as SQLite's own round-trip quote(), blobs as hex, text as itself.
    exprs = ", ".join(
        f"typeof({c}), CASE typeof({c}) WHEN 'integer' THEN CAST({c} AS TEXT) WHEN 'real' THEN quote({c})"
        f" WHEN 'blob' THEN hex({c}) ELSE {c} END"
        for c in map(quote_name, columns)
    )
    last, page = None, DUMP_PAGE_ROWS
    while True:
        where = "" if last is None else f" WHERE rowid > {int(last)}"
        try:
            # Named: SQLite calls a bare rowid by the name of an INTEGER PRIMARY KEY column ("id") if there is one.
            if paged:
                rows = query(f"SELECT rowid AS rowid, {exprs} FROM {name}{where} ORDER BY rowid LIMIT {page}")
            else:
                rows = query(f"SELECT NULL AS rowid, {exprs} FROM {name}")
        except TooLargeError:
            if not paged or page == 1:
                raise
            page = max(1, page // 2)  # D1's documented fix: ask for less at a time
            continue
        values = [
            "(" + ", ".join(_dump_literal(kind, value) for kind, value in _pairs(list(row.values())[1:])) + ")"
            for row in rows
        ]
        for start in range(0, len(values), DUMP_ROWS_PER_INSERT):
            out.write(f"INSERT INTO {name} VALUES{','.join(values[start : start + DUMP_ROWS_PER_INSERT])};\n")
        if not paged or len(rows) < page:
            return
        last = rows[-1]["rowid"]


def _pairs(values: list[Any]) -> Iterator[tuple[str, Any]]:
    return zip(values[0::2], values[1::2], strict=True)


def _dump_literal(kind: str, value: Any) -> str:
    if kind == "null":
        return "NULL"
    if kind in ("integer", "real"):
        return str(value)
    if kind == "blob":
        return f"X'{value}'"
    return _dump_text(str(value))


def _dump_text(value: str) -> str:
    """Text for a dump file, read line by line: the sqlite3 shell drops a CR before a line end, so
    (as its own .dump does) CR and LF are written as markers that replace() turns back. A NUL, which
    ends a statement for SQLite's parser, is joined in as char(0)."""
    literal = "||char(0)||".join(map(quote_text, value.split("\x00")))
    if "\r" not in value and "\n" not in value:
        return literal
    for char, code, name in (("\r", 13, "r"), ("\n", 10, "n")):
        if char in value:
            marker = next(m for m in _markers(name) if m not in value)
            literal = f"replace({literal.replace(char, marker)},'{marker}',char({code}))"
    return literal


def _markers(name: str) -> Iterator[str]:
    yield "\\" + name
    for i in itertools.count():
        yield f"\\{name}{i}"
