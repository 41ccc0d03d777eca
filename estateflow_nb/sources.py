"""Source files as a stream of raw rows: CSV, JSON Lines and SQL dumps, in constant memory.

`scan(path)` makes one full pass that checks the file and counts its records, so that a broken or
hostile file is refused before anything is written anywhere. `read_rows(path, skip=n)` then streams
the records as dicts of source column name to raw value; validation is `schema.clean_record`'s job.

A SQL dump is never run against a real database, and never runs as written: `_dump_grammar` reads each
statement first and lets through only CREATE TABLE with plain column definitions (parsed, never run:
a scratch table is made from its names, types and literal defaults) and INSERT ... VALUES of literals
(the shapes dump writers use for line breaks included). Those INSERTs into professionals are replayed
into a private in-memory SQLite under hard limits (value and statement length, expression depth, a
budget of steps per statement) and an authorizer, and their rows read back out and deleted after
every statement, so memory stays flat. CREATE INDEX is accepted and skipped: an index changes no row.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import itertools
import json
import re
import sqlite3
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, TextIO

from . import _dump_grammar
from ._dump_grammar import ALLOWED_CALLS
from ._files import open_regular
from .errors import RefusedError, SourceError, UnsafeDumpError
from .schema import STORED_COLUMNS, UNREADABLE, unknown_columns

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


@dataclass(frozen=True)
class Span:
    """A range of a file's records: `records` of them (None: every one to the end) from record `first`
    on (1-based), as one rung of a climb imports them. `offset`, when known, is the byte offset where
    record `first` begins: a CSV or JSON Lines file is then read from there (see _offsets.py)."""

    first: int = 1
    records: int | None = None
    offset: int | None = None

    def __post_init__(self) -> None:
        if self.first < 1 or (self.records is not None and self.records < 0) or (self.offset or 0) < 0:
            raise RefusedError(f"a range of records starts at record 1 or later and holds 0 or more: not {self}")

    @property
    def last(self) -> int | None:
        """Its last record (1-based), None when it runs to the end of the file."""
        return None if self.records is None else self.first + self.records - 1

    def of(self, source: SourceInfo) -> SourceInfo:
        """`source` as far as this range goes: its record count is the range's."""
        left = max(0, source.records - self.first + 1)
        records = left if self.records is None else min(self.records, left) if source.exact else self.records
        return replace(source, records=records)


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
        with open_regular(path) as f:
            return hashlib.file_digest(f, "sha256").hexdigest()
    except FileNotFoundError:
        raise SourceError(f"{path}: no such file") from None
    except OSError as error:
        raise SourceError(f"{path}: cannot read: {error.strerror or error}") from None


def _check_skip(skip: int) -> None:
    if skip < 0:  # a caller's bug: islice would say it less clearly
        raise ValueError(f"skip must be 0 or more, not {skip}")


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
    _check_skip(skip)
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
        # Counting a CSV needs its records checked, not a dict made of each.
        rows: Iterator[Any] = _csv_fields(path, layout) if reader is _csv_rows else reader(path, layout)
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
    with open_regular(path) as f:
        return sum(block.count(b"\n") for block in iter(lambda: f.read(1 << 20), b""))


def _reader_for(path: Path) -> Callable[[Path, _Layout], Iterator[dict[str, Any]]]:
    # A missing file is reported as such even when its suffix is wrong too: that is the likelier typo.
    if not path.exists():
        raise SourceError(f"{path}: no such file")
    reader = _READERS[source_format(path)]
    open_regular(path).close()  # a FIFO or a device is refused now, not when the reading blocks on it
    return reader


def _open_text(path: Path, newline: str | None = None) -> TextIO:
    # utf-8-sig: spreadsheets often save UTF-8 with a byte order mark.
    try:
        return io.TextIOWrapper(open_regular(path), encoding="utf-8-sig", newline=newline)
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
    # A name may hold a lone surrogate (JSON can spell one): escaped, the message can always be printed.
    return ", ".join(name.encode("utf-8", "backslashreplace").decode() if name else '""' for name in columns)


def _refuse_unknown(where: str, columns: Any, owner: str = "") -> None:
    unknown = unknown_columns(columns)
    if unknown:
        raise SourceError(f"{where}: {owner}unknown columns: {_names(unknown)}")


# --- CSV ---------------------------------------------------------------------------------------


# Python's csv refuses a field over 128 KiB, which would refuse the whole file: a field of any size is
# read instead, and validation rejects that one record (MAX_TEXT_LENGTH), as it does for JSON Lines.
# The limit is the csv module's own, for the whole process; sqlite-utils raises it the same way.
csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))


def _csv_rows(path: Path, layout: _Layout) -> Iterator[dict[str, Any]]:
    header = layout.columns
    for fields in _csv_fields(path, layout):
        # A short row leaves its missing columns out of the dict; validation decides.
        yield dict(zip(header, fields))  # noqa: B905 (strict=False costs ~10% here)


def _read_csv_fields(  # for _batches: not part of the package's API
    path: str | Path, *, skip: int = 0
) -> tuple[list[str], Iterator[list[str]]] | None:
    """A CSV file's header and its records as lists of text (no dict per record), from record `skip`
    on, checked as `read_rows` checks them: what the importer validates by column position. None for a
    file of another format."""
    _check_skip(skip)
    path = Path(path)
    if _reader_for(path) is not _csv_rows:
        return None
    layout = _Layout()
    rows = _csv_fields(path, layout)
    first = next(rows, None)  # reads the header into `layout`
    records = rows if first is None else itertools.chain([first], rows)
    return layout.columns, itertools.islice(records, skip, None)


def _csv_fields(path: Path, layout: _Layout) -> Iterator[list[str]]:
    with _open_text(path, newline="") as f:
        # strict: an unclosed quote must be an error, not a field that swallows the rest of the file.
        reader = csv.reader(f, strict=True)
        try:
            # The header is the first line that is not blank.
            header = [name.strip() for name in next((row for row in reader if any(field.strip() for field in row)), [])]
            where = f"{path} line {reader.line_num}"
            if not header:
                raise SourceError(f"{path} line {reader.line_num or 1}: no header line")
            _refuse_unknown(where, header)
            duplicates = sorted({name for name in header if header.count(name) > 1})
            if duplicates:
                raise SourceError(f"{where}: duplicate columns: {_names(duplicates)}")
            layout.columns[:] = header  # in place: _csv_rows holds the list
            width = len(header)
            # The loop is the hot path: blank lines are dropped by filter() in C, and the line
            # number is only worked out when there is an error to report.
            for fields in filter(None, reader):
                if len(fields) > width:
                    line = _first_line(reader.line_num, fields)
                    raise SourceError(f"{path} line {line}: {len(fields)} fields but the header has {width}")
                yield fields
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
                except (ValueError, RecursionError) as error:
                    # Valid JSON whose values Python cannot hold: that record is rejected, not the file.
                    yield {UNREADABLE: f"record: {_unreadable(error)} (line {number})"}
                    continue
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


def _unreadable(error: Exception) -> str:
    if isinstance(error, RecursionError):
        return "JSON nested too deeply to read"
    return f"a number with more than {sys.get_int_max_str_digits():,} digits"


# --- SQL dumps -----------------------------------------------------------------------------------

_REFUSAL = "a dump may only create tables and insert rows"
# Whitespace and comments before a statement's first keyword.
_NOISE = re.compile(r"(?:\s+|--[^\n]*(?:\n|\Z)|/\*.*?(?:\*/|\Z))*", re.S)
# The statements that are replayed, by their first words; _dump_grammar checks the rest.
_RUN = (
    ("create_table", re.compile(r"CREATE\s+TABLE\b", re.I)),
    ("insert", re.compile(r"(?:INSERT(?:\s+OR\s+(?:IGNORE|REPLACE|ABORT|FAIL|ROLLBACK))?|REPLACE)\s+INTO\b", re.I)),
)
# Statements accepted and not run (whole statement): the scratch database runs in autocommit mode
# and keeps foreign keys off, so that rows reach validation instead of failing the replay; indexes
# change no row. The shell's .dump of a database with an AUTOINCREMENT table also writes its
# counters into sqlite_sequence; they mean nothing to an import.
_PASS = re.compile(
    r"(?:(?:BEGIN|COMMIT|END)(?:\s+TRANSACTION)?"
    r"|CREATE\s+(?:UNIQUE\s+)?INDEX\b.*"
    r"|PRAGMA\s+(?:defer_)?foreign_keys\s*=\s*(?:ON|OFF|0|1|TRUE|FALSE|YES|NO)"
    r"|DELETE\s+FROM\s+sqlite_sequence"
    r"|INSERT\s+INTO\s+sqlite_sequence\s+VALUES\s*\(\s*'(?:[^']|'')*'\s*,\s*-?\d+\s*\))\s*;\s*\Z",
    re.I | re.S,
)
# Tokens that may hide a ';' (strings, quoted names, comments), and the ';' that ends a statement.
_SEMICOLONS = re.compile(r"""'[^']*'|"[^"]*"|`[^`]*`|\[[^\]]*\]|--[^\n]*|/\*.*?(?:\*/|\Z)|;""", re.S)

# The second wall, should a statement the grammar let through still try to do much: hard limits on
# the scratch database, and a budget of SQLite virtual-machine steps per statement, proportional to
# its length (a literal INSERT takes well under one step per byte; the budget is many times that).
_LIMITS = {
    sqlite3.SQLITE_LIMIT_LENGTH: 64 << 20,  # a string, blob or row
    sqlite3.SQLITE_LIMIT_SQL_LENGTH: 256 << 20,
    sqlite3.SQLITE_LIMIT_EXPR_DEPTH: 32,
    sqlite3.SQLITE_LIMIT_FUNCTION_ARG: 8,
    sqlite3.SQLITE_LIMIT_ATTACHED: 0,
    sqlite3.SQLITE_LIMIT_TRIGGER_DEPTH: 1,
}
STEPS_PER_CALL = 1_000
STEPS_PER_BYTE = 10  # a literal INSERT takes about 0.2
STEPS_PER_STATEMENT = 10_000
STEPS_PER_VALUE_READ = 4  # reading the rows back: about 1 per value, and a few per row


class _Budget:
    """The progress handler: counts SQLite's steps in calls of STEPS_PER_CALL, stops past the budget."""

    def __init__(self) -> None:
        self.calls = 0  # since the replay began: the work done, for tests to see
        self.stop_at = 0

    def allow(self, steps: int) -> None:
        self.stop_at = self.calls + (STEPS_PER_STATEMENT + steps) // STEPS_PER_CALL

    def __call__(self) -> int:
        self.calls += 1
        return int(self.calls > self.stop_at)  # non-zero interrupts the statement


class _Wall:
    """The authorizer, a third wall: while a dump's INSERT runs, SQLite may insert into the scratch
    professionals table, run the SELECT a multi-row VALUES list is inside SQLite, and call the
    functions dump writers use for text. Anything else (a read, another table, another function) is
    denied. It stays installed and stands down for our own queries instead of being removed: every
    sqlite3_set_authorizer call expires all prepared statements."""

    def __init__(self) -> None:
        self.guarding = False
        self.refusal = ""

    def __call__(self, action: int, arg1: str | None, arg2: str | None, db: str | None, _: str | None) -> int:
        if not self.guarding:
            return sqlite3.SQLITE_OK
        if action == sqlite3.SQLITE_SELECT:
            return sqlite3.SQLITE_OK
        if action == sqlite3.SQLITE_INSERT and (arg1 or "").lower() == TABLE and db in (None, "main"):
            return sqlite3.SQLITE_OK
        if action == sqlite3.SQLITE_FUNCTION and (arg2 or "").lower() in ALLOWED_CALLS:
            return sqlite3.SQLITE_OK
        self.refusal = self.refusal or f"it asks SQLite for action {action} on {arg1 or arg2 or 'nothing'}"
        return sqlite3.SQLITE_DENY


def _excerpt(statement: str) -> str:
    text = " ".join(statement.split())
    text = text if len(text) <= 80 else text[:77] + "..."
    return text.encode("utf-8", "backslashreplace").decode()


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
    """A private in-memory SQLite that a dump's INSERTs into professionals are replayed into, one at a
    time, each after `_dump_grammar` recognised it as literal syntax."""

    def __init__(self, path: Path, layout: _Layout) -> None:
        self.path = path
        self.layout = layout
        # cached_statements=3: our SELECT and DELETE stay prepared between dump statements, and the
        # cache never holds more than the one dump statement just run (it may be 100 KB).
        # check_same_thread=False: a row stream may be consumed (and closed) on another thread than
        # the one that started it, as a notebook or a caller's own prefetching does.
        self.db = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False, cached_statements=3)
        self.db.execute("PRAGMA trusted_schema = OFF")
        if sqlite3.sqlite_version_info < (3, 44):  # SQLite's own unistr() came in 3.44
            self.db.create_function("unistr", 1, _dump_grammar.unistr, deterministic=True)
        for limit, value in _LIMITS.items():
            self.db.setlimit(limit, value)
        self.budget = _Budget()
        self.db.set_progress_handler(self.budget, STEPS_PER_CALL)
        self.wall = _Wall()
        self.db.set_authorizer(self.wall)
        self.have_table = False

    def close(self) -> None:
        self.db.close()

    def rows(self, lines: TextIO) -> Iterator[dict[str, Any]]:
        for number, statement in _statements(self.path, lines):
            where = f"{self.path} line {number}"
            kind = self._kind(where, statement)
            try:
                if kind == "create_table":
                    self._create(where, _dump_grammar.create_table(statement))
                elif kind == "insert" and _dump_grammar.insert_table(statement).lower() == TABLE:
                    # Rows of other tables are not wanted: their INSERTs are checked, never run.
                    if not self.have_table:  # our own files insert into professionals without creating it
                        self._create(where, _dump_grammar.Table(TABLE, [_dump_grammar.Column(c) for c in _OURS]))
                    changes_before = self.db.total_changes
                    self._run(where, statement)
                    yield from self._take_rows(self.db.total_changes - changes_before)
            except _dump_grammar.Refusal as refusal:
                raise self._refused(where, statement, str(refusal), unsafe=refusal.unsafe) from None
        if not self.have_table:
            raise SourceError(f"{self.path}: no {TABLE} table: the dump neither creates nor fills it")

    def _kind(self, where: str, statement: str) -> str:
        # _PASS first: the shell's INSERT INTO sqlite_sequence would otherwise be refused.
        if _PASS.match(statement):
            return ""
        for kind, head in _RUN:
            if head.match(statement):
                return kind
        raise UnsafeDumpError(f'{where}: refused "{_excerpt(statement)}": {_REFUSAL}')

    def _refused(self, where: str, statement: str, reason: str, *, unsafe: bool) -> SourceError:
        if unsafe:
            return UnsafeDumpError(f'{where}: refused "{_excerpt(statement)}": {reason}; {_REFUSAL}')
        return SourceError(f'{where}: {reason} (in "{_excerpt(statement)}")')

    def _create(self, where: str, table: _dump_grammar.Table) -> None:
        if table.name.lower() != TABLE:
            if table.name.lower() not in (name.lower() for name in self.layout.ignored_tables):
                self.layout.ignored_tables.append(table.name)
            return
        if self.have_table:
            raise SourceError(f"{where}: the dump creates table {TABLE} a second time")
        columns = [column.name for column in table.columns]
        _refuse_unknown(where, columns, owner=f"table {TABLE} has ")
        # Our own name for it, whatever the dump's spelling: the INSERTs find it either way.
        self.db.execute(_dump_grammar.Table(TABLE, table.columns).scratch_ddl())
        self.have_table = True
        self.layout.columns = columns

    def _run(self, where: str, statement: str) -> None:
        self.budget.allow(STEPS_PER_BYTE * len(statement))
        self.wall.guarding, self.wall.refusal = True, ""
        try:
            # Stepped to the end, whatever the statement returns.
            for _ in self.db.execute(statement):
                pass
        except sqlite3.Error as error:
            if self.wall.refusal:
                raise self._refused(where, statement, self.wall.refusal, unsafe=True) from None
            if isinstance(error, sqlite3.OperationalError) and str(error) == "interrupted":
                raise self._refused(where, statement, "it takes too long to run", unsafe=True) from None
            if "too big" in str(error):
                raise self._refused(where, statement, f"it makes a value too long ({error})", unsafe=True) from None
            raise self._refused(where, statement, str(error), unsafe=False) from None
        finally:
            self.wall.guarding = False

    def _take_rows(self, rows: int) -> Iterator[dict[str, Any]]:
        # The scratch table never holds more than one statement's rows: read them, then drop them.
        self.budget.allow(STEPS_PER_VALUE_READ * rows * (len(self.layout.columns) + 4))
        query = f"SELECT * FROM {TABLE} ORDER BY rowid"
        try:
            cursor = self.db.execute(query)
            values = cursor.fetchall()
        except sqlite3.OperationalError as error:
            if "decode" not in str(error):
                raise SourceError(f"{self.path}: reading the rows of a statement back failed: {error}") from None
            # Text that is not UTF-8 (CAST(X'ff' AS TEXT)): read with the bad bytes kept as lone
            # surrogates, which validation rejects as not valid Unicode, instead of failing the file.
            self.db.text_factory = _SURROGATES
            try:
                cursor = self.db.execute(query)
                values = cursor.fetchall()
            finally:
                self.db.text_factory = str
        names = [column[0] for column in cursor.description]
        self.db.execute(f"DELETE FROM {TABLE}")
        # map() keeps the per-row work in C: this is a third of the time of reading a dump.
        yield from map(dict, map(zip, itertools.repeat(names), values))


_OURS = ("id", *STORED_COLUMNS)  # the columns of our own files, which insert without creating
_SURROGATES = functools.partial(str, encoding="utf-8", errors="surrogateescape")


def _sql_rows(path: Path, layout: _Layout) -> Iterator[dict[str, Any]]:
    with _open_text(path, newline="") as lines, closing(_Replay(path, layout)) as replay:
        # newline="": a raw "\r" inside a string value must reach SQLite unchanged.
        yield from replay.rows(lines)


_READERS: dict[SourceFormat, Callable[[Path, _Layout], Iterator[dict[str, Any]]]] = {
    "csv": _csv_rows,
    "jsonl": _jsonl_rows,
    "sql": _sql_rows,
}
