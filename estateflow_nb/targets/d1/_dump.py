"""A D1 database as a SQL dump, paged out through queries: how a backup of D1 leaves D1.

The dump is what the sqlite3 shell's `.dump` writes and what `sources.read_rows` reads: CREATE TABLE,
multi-row INSERTs with exact literals (integers as written, reals as SQLite quotes them, text with
NULs as CAST(X'..' AS TEXT), line breaks through replace() as .dump writes them), CREATE INDEX, all in
one transaction. D1's internal tables (`_cf_*`, `sqlite_*`) are left out. `load_dump` replays such a
file into a local SQLite connection, statement by statement.
"""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TextIO

from ..._files import atomic_text
from ..._sql import quote_name
from ._sql import text_literal

Query = Callable[[str], list[dict[str, Any]]]

DUMP_PAGE_ROWS = 2_000
DUMP_ROWS_PER_INSERT = 200

_SCHEMA = (
    "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL AND type IN ('table', 'index')"
    " AND name NOT LIKE 'sqlite/_%' ESCAPE '/' AND name NOT LIKE '/_cf/_%' ESCAPE '/'"
    " ORDER BY CASE type WHEN 'table' THEN 0 ELSE 1 END, rowid"
)


def dump_sql(query: Query, path: str | Path) -> Path:
    """Write every table (schema, rows, indexes) that `query` reaches to `path` as a SQL dump.

    Written under a temporary name and renamed when complete.
    """
    schema = query(_SCHEMA)
    with atomic_text(path) as out:
        out.write("PRAGMA foreign_keys=OFF;\nBEGIN TRANSACTION;\n")
        for entry in schema:
            if entry["type"] == "table":
                out.write(f"{entry['sql']};\n")
                _dump_rows(query, entry["name"], out, paged="WITHOUT ROWID" not in entry["sql"].upper())
        for entry in schema:
            if entry["type"] == "index":
                out.write(f"{entry['sql']};\n")
        out.write("COMMIT;\n")
    return Path(path)


def load_dump(path: Path, connection: sqlite3.Connection) -> None:
    """Run the dump at `path` (one we wrote) in `connection`, one statement at a time."""
    with open(path, encoding="utf-8", newline="") as lines:
        statement = ""
        for line in lines:
            statement += line
            # complete_statement scans the whole text: ask only where a statement may end.
            if line.rstrip().endswith(";") and sqlite3.complete_statement(statement):
                connection.execute(statement)
                statement = ""


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
    last = None
    while True:
        where = "" if last is None else f" WHERE rowid > {int(last)}"
        # Named: SQLite calls a bare rowid by the name of an INTEGER PRIMARY KEY column ("id") if there is one.
        if paged:
            rows = query(f"SELECT rowid AS rowid, {exprs} FROM {name}{where} ORDER BY rowid LIMIT {DUMP_PAGE_ROWS}")
        else:
            rows = query(f"SELECT NULL AS rowid, {exprs} FROM {name}")
        values = [
            "(" + ", ".join(_dump_literal(kind, value) for kind, value in _pairs(list(row.values())[1:])) + ")"
            for row in rows
        ]
        for start in range(0, len(values), DUMP_ROWS_PER_INSERT):
            out.write(f"INSERT INTO {name} VALUES{','.join(values[start : start + DUMP_ROWS_PER_INSERT])};\n")
        if not paged or len(rows) < DUMP_PAGE_ROWS:
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
    (as its own .dump does) CR and LF are written as markers that replace() turns back."""
    literal = text_literal(value)
    if "\x00" in value or ("\r" not in value and "\n" not in value):
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
