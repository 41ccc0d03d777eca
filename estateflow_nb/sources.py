"""Source files as a stream of raw rows: CSV, JSON Lines and SQL dumps, in constant memory.

`scan(path)` makes one full pass that checks the file and counts its records, so that a broken or
hostile file is refused before anything is written anywhere. `read_rows(path, skip=n)` then streams
the records as dicts of source column name to raw value; validation is `schema.clean_record`'s job.

A SQL dump is never run against a real database. It is replayed, one statement at a time, into a
private in-memory SQLite that only runs CREATE TABLE and INSERT (checked twice: by the statement's
leading keywords and by an authorizer), and rows are read back out of its `professionals` table and
deleted after every statement, so memory stays flat. CREATE INDEX is accepted and skipped: an index
changes no row, and its expressions (a partial index's WHERE) may call any function.
"""

from __future__ import annotations

import csv
import hashlib
import itertools
import json
import re
import sqlite3
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TextIO

from ._sql import quote_name
from .errors import SourceError, UnsafeDumpError
from .schema import STORED_COLUMNS, unknown_columns

SourceFormat = Literal["csv", "jsonl", "sql"]
FORMATS: dict[str, SourceFormat] = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".sql": "sql"}
TABLE = "professionals"


@dataclass(frozen=True)
class SourceInfo:
    """What `scan` learned about a file: enough to plan an import and to recognise the file again."""

    path: Path
    format: SourceFormat
    records: int
    sha256: str
    columns: tuple[str, ...]
    ignored_tables: tuple[str, ...] = ()
    exact: bool = True  # False: `records` is an estimate (see scan's count_up_to)


@dataclass
class _Layout:
    """What a reader learns about a file besides its rows, filled in as it goes."""

    columns: list[str] = field(default_factory=list)
    ignored_tables: list[str] = field(default_factory=list)


def source_format(path: str | Path) -> SourceFormat:
    """The file's format by its suffix: "csv", "jsonl" (also .ndjson) or "sql"."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise SourceError(f"{path}: unknown file type {suffix!r}; expected .csv, .jsonl or .sql")
    return FORMATS[suffix]


def file_sha256(path: str | Path) -> str:
    """The SHA-256 of the file's bytes, in hex."""
    try:
        with open(path, "rb") as f:
            return hashlib.file_digest(f, "sha256").hexdigest()
    except FileNotFoundError:
        raise SourceError(f"{path}: no such file") from None
    except OSError as error:
        raise SourceError(f"{path}: cannot read: {error.strerror or error}") from None


def read_rows(path: str | Path, *, skip: int = 0) -> Iterator[dict[str, Any]]:
    """Yield each record of the file as a dict of source column name to raw value.

    Values are as the file has them: text for CSV ('' when empty), JSON values for JSON Lines,
    SQLite values for a dump. The first `skip` records are read and discarded (resuming after a
    checkpoint). A missing file or unknown suffix raises at once; problems inside the file raise
    `SourceError` when the reading reaches them.

    Contract for SQL dumps: rows are yielded as the replay goes, so rows of statements that come
    before a refused one have been yielded by the time `UnsafeDumpError` is raised. Callers that
    write anywhere must run `scan()` on the file first (the importer always does): it replays the
    whole dump and refuses a hostile one before a single row is written.
    """
    if skip < 0:
        raise ValueError(f"skip must be 0 or more, not {skip}")
    path = Path(path)
    reader = _reader_for(path)
    return itertools.islice(reader(path, _Layout()), skip, None)


def scan(path: str | Path, *, count_up_to: int | None = None) -> SourceInfo:
    """Check the file and count its records, raising `SourceError` on the first problem.

    With `count_up_to`, a CSV or JSON Lines file is checked and counted only that far; past it,
    `records` is an estimate from the file's line count and `exact` is False. That is enough to
    pick a rung (the top rung starts at a fixed count) and spares a whole pass over a big file,
    which the importer reads and counts anyway. A SQL dump is always replayed whole: that is what
    refuses a hostile one before anything is written.
    """
    path = Path(path)
    reader = _reader_for(path)
    layout = _Layout()
    kind = source_format(path)
    limit = None if kind == "sql" or count_up_to is None else count_up_to + 1
    # hashlib releases the GIL on large reads: the digest is computed while the records are counted.
    with ThreadPoolExecutor(max_workers=1) as pool:
        digest = pool.submit(file_sha256, path)
        rows = reader(path, layout)
        try:
            records = sum(1 for _ in itertools.islice(rows, limit))
        finally:
            rows.close()  # type: ignore[attr-defined]  # a generator: closing it closes the file
        exact = limit is None or records < limit
        if not exact:
            records = max(records, _line_count(path) - (kind == "csv"))
        sha256 = digest.result()
    return SourceInfo(
        path=path,
        format=kind,
        records=records,
        sha256=sha256,
        columns=tuple(layout.columns),
        ignored_tables=tuple(layout.ignored_tables),
        exact=exact,
    )


def _line_count(path: Path) -> int:
    with open(path, "rb") as f:
        return sum(block.count(b"\n") for block in iter(lambda: f.read(1 << 20), b""))


def _reader_for(path: Path) -> Callable[[Path, _Layout], Iterator[dict[str, Any]]]:
    # A missing file is reported as such even when its suffix is wrong too: that is the likelier typo.
    if not path.exists():
        raise SourceError(f"{path}: no such file")
    return _READERS[source_format(path)]


def _open_text(path: Path, newline: str | None = None) -> TextIO:
    # utf-8-sig: spreadsheets often save UTF-8 with a byte order mark.
    try:
        return open(path, encoding="utf-8-sig", newline=newline)
    except FileNotFoundError:
        raise SourceError(f"{path}: no such file") from None
    except OSError as error:
        raise SourceError(f"{path}: cannot read: {error.strerror or error}") from None


def _not_utf8(path: Path) -> SourceError:
    # Text is decoded in blocks, so the line being read when decoding fails may be well before
    # the bad byte: find its line again, byte line by byte line (only ever on this error path).
    with open(path, "rb") as f:
        for number, line in enumerate(f, 1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                return SourceError(f"{path} line {number}: not UTF-8 text")
    return SourceError(f"{path}: not UTF-8 text")


def _names(columns: list[str]) -> str:
    return ", ".join(name or '""' for name in columns)


def _refuse_unknown(where: str, columns: Any, owner: str = "") -> None:
    unknown = unknown_columns(columns)
    if unknown:
        raise SourceError(f"{where}: {owner}unknown columns: {_names(unknown)}")


# --- CSV ---------------------------------------------------------------------------------------


def _csv_rows(path: Path, layout: _Layout) -> Iterator[dict[str, Any]]:
    with _open_text(path, newline="") as f:
        # strict: an unclosed quote must be an error, not a field that swallows the rest of the file.
        reader = csv.reader(f, strict=True)
        try:
            header = [name.strip() for name in next(reader, [])]
            if not header:
                raise SourceError(f"{path} line 1: no header line")
            _refuse_unknown(f"{path} line 1", header)
            duplicates = sorted({name for name in header if header.count(name) > 1})
            if duplicates:
                raise SourceError(f"{path} line 1: duplicate columns: {_names(duplicates)}")
            layout.columns = header
            width = len(header)
            # The loop is the hot path: blank lines are dropped by filter() in C, and the line
            # number is only worked out when there is an error to report.
            for fields in filter(None, reader):
                if len(fields) > width:
                    line = _first_line(reader.line_num, fields)
                    raise SourceError(f"{path} line {line}: {len(fields)} fields but the header has {width}")
                # A short row leaves its missing columns out of the dict; validation decides.
                yield dict(zip(header, fields))  # noqa: B905 (strict=False costs ~10% here)
        except csv.Error as error:
            raise SourceError(f"{path} line {reader.line_num}: {error}") from None
        except UnicodeDecodeError:
            raise _not_utf8(path) from None


def _first_line(last_line: int, fields: list[str]) -> int:
    # The csv reader knows a record's last line; quoted fields may span lines ("\r\n", "\n", "\r").
    inner = sum(f.count("\n") + f.count("\r") - f.count("\r\n") for f in fields)
    return last_line - inner


# --- JSON Lines ----------------------------------------------------------------------------------

_JSON_KINDS = {list: "an array", str: "a string", int: "a number", float: "a number", bool: "true/false"}


def _jsonl_rows(path: Path, layout: _Layout) -> Iterator[dict[str, Any]]:
    seen: set[str] = set()
    with _open_text(path) as f:
        try:
            for number, line in enumerate(f, 1):
                if line.isspace():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as error:
                    raise SourceError(
                        f"{path} line {number}: not valid JSON: {error.msg} (column {error.colno})"
                    ) from None
                if type(record) is not dict:
                    kind = "null" if record is None else _JSON_KINDS.get(type(record), type(record).__name__)
                    raise SourceError(f"{path} line {number}: expected a JSON object, got {kind}")
                # Keys are checked only when a record brings one not seen before: most lines cost
                # a single set comparison.
                if not seen.issuperset(record):
                    _refuse_unknown(f"{path} line {number}", record)
                    layout.columns.extend(key for key in record if key not in seen)
                    seen.update(record)
                yield record
        except UnicodeDecodeError:
            raise _not_utf8(path) from None


# --- SQL dumps -----------------------------------------------------------------------------------

_REFUSAL = "a dump may only create tables and insert rows"
# The sqlite3 shell's .dump writes text with newlines as replace('..','\n',char(10)), newer shells
# as unistr('..\u000a'); nothing else may be called.
ALLOWED_FUNCTIONS = frozenset({"replace", "char", "unistr"})
# Whitespace and comments before a statement's first keyword.
_NOISE = re.compile(r"(?:\s+|--[^\n]*(?:\n|\Z)|/\*.*?(?:\*/|\Z))*", re.S)
# Statements that are run, by kind. Only the head is matched: the authorizer checks the rest.
_RUN = (
    ("create_table", re.compile(r"CREATE\s+TABLE\b", re.I)),
    ("insert", re.compile(r"(?:INSERT(?:\s+OR\s+(?:IGNORE|REPLACE|ABORT|FAIL))?|REPLACE)\s+INTO\b", re.I)),
)
# Statements accepted and not run (whole statement): the scratch database runs in autocommit mode
# and keeps foreign keys off, so that rows reach validation instead of failing the replay; indexes
# change no row. The shell's .dump of a database with an AUTOINCREMENT table also writes its
# counters into sqlite_sequence; they mean nothing to an import.
_PASS = re.compile(
    r"(?:(?:BEGIN|COMMIT|END)(?:\s+TRANSACTION)?"
    r"|CREATE\s+(?:UNIQUE\s+)?INDEX\b.*"
    r"|PRAGMA\s+foreign_keys\s*=\s*(?:ON|OFF|0|1|TRUE|FALSE|YES|NO)"
    r"|DELETE\s+FROM\s+sqlite_sequence"
    r"|INSERT\s+INTO\s+sqlite_sequence\s+VALUES\s*\(\s*'(?:[^']|'')*'\s*,\s*-?\d+\s*\))\s*;\s*\Z",
    re.I | re.S,
)
# Tokens that may hide a ';' (strings, quoted names, comments), and the ';' that ends a statement.
_SEMICOLONS = re.compile(r"""'[^']*'|"[^"]*"|`[^`]*`|\[[^\]]*\]|--[^\n]*|/\*.*?(?:\*/|\Z)|;""", re.S)
_MISSING_FUNCTION = re.compile(r"no such function: (\w+)")
_MISSING_TABLE = {f"no such table: {TABLE}", f"no such table: main.{TABLE}"}
_ACTION_NAMES = {
    getattr(sqlite3, f"SQLITE_{name}"): name.lower().replace("_", " ")
    for name in (
        "ALTER_TABLE",
        "ANALYZE",
        "ATTACH",
        "CREATE_INDEX",
        "CREATE_TABLE",
        "CREATE_TEMP_INDEX",
        "CREATE_TEMP_TABLE",
        "CREATE_TEMP_TRIGGER",
        "CREATE_TEMP_VIEW",
        "CREATE_TRIGGER",
        "CREATE_VIEW",
        "CREATE_VTABLE",
        "DELETE",
        "DETACH",
        "DROP_INDEX",
        "DROP_TABLE",
        "DROP_TEMP_INDEX",
        "DROP_TEMP_TABLE",
        "DROP_TEMP_TRIGGER",
        "DROP_TEMP_VIEW",
        "DROP_TRIGGER",
        "DROP_VIEW",
        "DROP_VTABLE",
        "PRAGMA",
        "RECURSIVE",
        "REINDEX",
        "SAVEPOINT",
        "TRANSACTION",
    )
}


class _Wall:
    """The authorizer: what SQLite may do while running one dump statement of a known kind.

    Measured on SQLite 3.40: CREATE TABLE reports an INSERT into sqlite_master, CREATE_TABLE, a
    CREATE_INDEX per UNIQUE/PRIMARY KEY autoindex, READs of its own columns (CHECK, UNIQUE), UPDATEs
    of sqlite_master's five columns and a READ of sqlite_master.ROWID (the first AUTOINCREMENT table
    then does the same again for sqlite_sequence). INSERT reports INSERT on its table, SELECT for a
    multi-row VALUES list and FUNCTION for each call. Exactly that is allowed; anything else (reads
    by INSERT...SELECT, upserts, ATTACH, CREATE TABLE ... AS SELECT, any other function) is denied.

    It stays installed and stands down for our own queries instead of being removed: every
    sqlite3_set_authorizer call expires all prepared statements, and re-preparing our SELECT after
    each dump statement would double the time of a one-row-per-INSERT dump.
    """

    def __init__(self) -> None:
        self.start("")
        self.stand_down()

    def start(self, kind: str) -> None:
        self.guarding = True
        self.kind = kind
        self.table = ""  # the table created or inserted into, as SQLite names it
        self.refusal = ""

    def stand_down(self) -> None:
        self.guarding = False

    def __call__(self, action: int, arg1: str | None, arg2: str | None, db: str | None, _: str | None) -> int:
        if not self.guarding:
            return sqlite3.SQLITE_OK
        reason = self._refusal(action, arg1 or "", arg2 or "", db or "")
        if not reason:
            return sqlite3.SQLITE_OK
        self.refusal = self.refusal or reason
        return sqlite3.SQLITE_DENY

    def _refusal(self, action: int, arg1: str, arg2: str, db: str) -> str:
        if action == sqlite3.SQLITE_FUNCTION:
            return "" if arg2.lower() in ALLOWED_FUNCTIONS else f"it calls {arg2}()"
        if db and db != "main":
            return f"it uses database {db!r}"
        # SQLite reports some names as the statement spells them, others as the schema does.
        name, table = arg1.lower(), self.table.lower()
        internal = name == "sqlite_master"
        if self.kind == "create_table":
            if action == sqlite3.SQLITE_CREATE_TABLE and not name.startswith("sqlite_"):
                self.table = arg1
                return ""
            # SQLite creates sqlite_sequence itself with the first AUTOINCREMENT table.
            if action == sqlite3.SQLITE_CREATE_TABLE and table and name == "sqlite_sequence":
                return ""
            if action in (sqlite3.SQLITE_INSERT, sqlite3.SQLITE_UPDATE) and internal:
                return ""
            if action == sqlite3.SQLITE_READ and ((internal and arg2 == "ROWID") or name == table):
                return ""
            if action == sqlite3.SQLITE_CREATE_INDEX and arg2.lower() == table:
                return ""
        elif self.kind == "insert":
            if action == sqlite3.SQLITE_INSERT and not table and not name.startswith("sqlite_"):
                self.table = arg1
                return ""
            # A multi-row VALUES list is a compound SELECT inside SQLite; with no READ allowed it
            # can only compute values.
            if action == sqlite3.SQLITE_SELECT:
                return ""
        return _describe(action, arg1, arg2)


def _describe(action: int, arg1: str, arg2: str) -> str:
    if action == sqlite3.SQLITE_READ:
        return f"it reads {arg1}"
    if action == sqlite3.SQLITE_UPDATE:
        return f"it updates {arg1}"
    if action == sqlite3.SQLITE_INSERT:
        return f"it inserts into {arg1}"
    if action == sqlite3.SQLITE_SELECT:
        return "it runs a SELECT"
    name = _ACTION_NAMES.get(action, f"action {action}")
    return f"it asks for {name} {arg1}".rstrip()


def _unsafe_error(error: sqlite3.Error) -> str:
    """Why an error SQLite raised before the authorizer was asked means a hostile statement, or ''."""
    message = str(error)
    # Unknown functions fail before the authorizer sees them (readfile() exists only in the shell).
    missing = _MISSING_FUNCTION.fullmatch(message)
    if missing and missing[1].lower() not in ALLOWED_FUNCTIONS:
        return f"it calls {missing[1]}()"
    # A function in a column DEFAULT is only checked by SQLite, when an INSERT uses it.
    if message.startswith("unsafe use of "):
        return message
    # The splitter hands over one statement at a time; more than one means it was fooled.
    if isinstance(error, sqlite3.ProgrammingError):
        return message
    return ""


def _excerpt(statement: str) -> str:
    text = " ".join(statement.split())
    return text if len(text) <= 80 else text[:77] + "..."


def _statements(path: Path, lines: TextIO) -> Iterator[tuple[int, str]]:
    """(line number, text) of each statement, comments and whitespace before it removed."""
    buffer: list[str] = []
    start = 0
    try:
        for number, line in enumerate(lines, 1):
            if not buffer:
                if line.isspace():
                    continue
                start = number
            buffer.append(line)
            # complete_statement scans the whole buffer, so it is only asked when a statement may
            # have ended: a 100 KB INSERT is then scanned once, not once per line.
            if line.rstrip().endswith(";"):
                text = "".join(buffer)
                if sqlite3.complete_statement(text):
                    buffer = []  # before the statements run: one copy of a big INSERT is enough
                    yield from _split(start, text)
    except UnicodeDecodeError:
        raise _not_utf8(path) from None
    text = "".join(buffer)
    if sqlite3.complete_statement(text):
        yield from _split(start, text)
    elif _NOISE.fullmatch(text) is None:
        raise SourceError(f"{path} line {start}: the last statement does not end with ';'")


def _split(start: int, text: str) -> Iterator[tuple[int, str]]:
    """(line number, text) of each statement in `text`, which begins on line `start`."""
    # Nearly always one statement (its only ';' is the last one); only text with more than one
    # ';' is tokenized to find where each statement ends.
    if text.count(";") == 1:
        ends = [text.index(";") + 1]
    else:
        ends = [m.end() for m in _SEMICOLONS.finditer(text) if m.group() == ";"]
    begin = 0
    for end in ends:
        noise = _NOISE.match(text, begin, end)
        first = noise.end() if noise else begin
        if first < end:
            yield start + text.count("\n", 0, first), text[first:end]
        begin = end


class _Replay:
    """A private in-memory SQLite that dump statements are replayed into, one at a time."""

    def __init__(self, path: Path, layout: _Layout) -> None:
        self.path = path
        self.layout = layout
        # cached_statements=3: our SELECT and DELETE stay prepared between dump statements
        # (preparing the SELECT afresh would double the time of a one-row-per-INSERT dump), and
        # the cache never holds more than the one dump statement just run (it may be 100 KB).
        # check_same_thread=False: a row stream may be consumed (and closed) on another thread than
        # the one that started it, as a notebook or a caller's own prefetching does.
        self.db = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False, cached_statements=3)
        # The dump's own schema is not trusted: functions in its DEFAULTs (which the authorizer does
        # not see) are then limited to SQLite's innocuous built-ins.
        self.db.execute("PRAGMA trusted_schema = OFF")
        self.wall = _Wall()
        self.db.set_authorizer(self.wall)
        self.have_table = False
        self.executed = 0

    def close(self) -> None:
        self.db.close()

    def rows(self, lines: TextIO) -> Iterator[dict[str, Any]]:
        for number, statement in _statements(self.path, lines):
            where = f"{self.path} line {number}"
            kind = self._kind(where, statement)
            if not kind:
                continue
            self._run(where, kind, statement)
            table = self.wall.table
            if kind == "create_table" and not self.have_table and table.lower() == TABLE:
                self._adopt_table(where)
            elif kind == "create_table" and table.lower() != TABLE:
                self._ignore(table)
            elif kind == "insert":
                if table.lower() == TABLE:
                    yield from self._take_rows(table)
                else:
                    # Rows of other tables are not wanted, and keeping them would grow memory.
                    self.db.execute(f"DELETE FROM {quote_name(table)}")
        if not self.have_table:
            raise SourceError(f"{self.path}: no {TABLE} table: the dump neither creates nor fills it")

    def _kind(self, where: str, statement: str) -> str:
        # _PASS first: the shell's INSERT INTO sqlite_sequence would otherwise be run and refused.
        if _PASS.match(statement):
            return ""
        for kind, head in _RUN:
            if head.match(statement):
                return kind
        raise UnsafeDumpError(f'{where}: refused "{_excerpt(statement)}": {_REFUSAL}')

    def _run(self, where: str, kind: str, statement: str) -> None:
        try:
            self._execute(kind, statement)
        except sqlite3.OperationalError as error:
            # Our own files insert into professionals without creating it.
            if kind != "insert" or self.have_table or str(error).lower() not in _MISSING_TABLE:
                self._fail(where, statement, error)
            self._create_scratch_table()
            try:
                self._execute(kind, statement)
            except sqlite3.Error as again:
                self._fail(where, statement, again)
        except sqlite3.Error as error:
            self._fail(where, statement, error)

    def _execute(self, kind: str, statement: str) -> None:
        self.executed += 1
        # A repeated text would come from the statement cache without the authorizer being asked
        # (which is also how we learn the table written to): a trailing comment makes each unique.
        unique = f"{statement}\n-- {self.executed}"
        self.wall.start(kind)
        try:
            # Stepped to the end: an INSERT ... RETURNING only inserts as its rows are fetched.
            for _ in self.db.execute(unique):
                pass
        finally:
            self.wall.stand_down()

    def _fail(self, where: str, statement: str, error: sqlite3.Error) -> None:
        excerpt = _excerpt(statement)
        refusal = self.wall.refusal or _unsafe_error(error)
        if refusal:
            raise UnsafeDumpError(f'{where}: refused "{excerpt}": {refusal}; {_REFUSAL}') from None
        raise SourceError(f'{where}: {error} (in "{excerpt}")') from None

    def _create_scratch_table(self) -> None:
        # No types and no constraints: a bad row must reach validation, not fail the replay.
        self.db.execute(f"CREATE TABLE {TABLE} ({', '.join(('id', *STORED_COLUMNS))})")
        self.have_table = True
        self.layout.columns = ["id", *STORED_COLUMNS]

    def _adopt_table(self, where: str) -> None:
        columns = [row[1] for row in self.db.execute(f"PRAGMA table_info({TABLE})")]
        _refuse_unknown(where, columns, owner=f"table {TABLE} has ")
        self.have_table = True
        self.layout.columns = columns

    def _ignore(self, table: str) -> None:
        if table and table.lower() not in (name.lower() for name in self.layout.ignored_tables):
            self.layout.ignored_tables.append(table)

    def _take_rows(self, table: str) -> Iterator[dict[str, Any]]:
        # The scratch table never holds more than one statement's rows: read them, then drop them.
        try:
            cursor = self.db.execute(f"SELECT * FROM {quote_name(table)} ORDER BY rowid")
        except sqlite3.OperationalError:  # a WITHOUT ROWID table
            cursor = self.db.execute(f"SELECT * FROM {quote_name(table)}")
        names = [column[0] for column in cursor.description]
        # map() keeps the per-row work in C: this is a third of the time of reading a dump.
        yield from map(dict, map(zip, itertools.repeat(names), cursor))
        self.db.execute(f"DELETE FROM {quote_name(table)}")


def _sql_rows(path: Path, layout: _Layout) -> Iterator[dict[str, Any]]:
    with _open_text(path, newline="") as lines, closing(_Replay(path, layout)) as replay:
        # newline="": a raw "\r" inside a string value must reach SQLite unchanged.
        yield from replay.rows(lines)


_READERS: dict[SourceFormat, Callable[[Path, _Layout], Iterator[dict[str, Any]]]] = {
    "csv": _csv_rows,
    "jsonl": _jsonl_rows,
    "sql": _sql_rows,
}
