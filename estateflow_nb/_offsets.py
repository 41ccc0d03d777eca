"""A range of a file's records (a `Span`), read from a byte offset, knowing the offset it reached.

A climb imports a file in rungs: the first 10 records, the next 100, and so on. Each rung starts
where the one before ended, so that no rung reads (let alone validates) the records before it again:
`read_span` counts the bytes of every line it reads, and `SpanRows.offset` is always the byte offset
just after the last record it yielded, which the ledger keeps for the next rung.

The CSV and JSON Lines readers here are `sources`' own, reading from an offset: lines are read with
universal newlines and kept as they are (newline=""), so that each line's length in UTF-8 is the
bytes it took. The header of a CSV file is read and checked from the file's start by `_csv_rows`, as
every reading does (which reads the first record too). Line numbers in messages count from the file's
start: the lines before the offset are counted only when a message needs them.

A SQL dump is read by count instead, its records before the span replayed again (not validated): its
rows come out of a replay whose scratch table the statements before the span create, and a byte
offset inside a multi-row INSERT would also need the row within it. That is the cheapest way: `scan`
replays the whole dump before anything is written anyway (it is what refuses a hostile dump), and
the replay of what comes before a rung costs no more than the part of that scan.
"""

from __future__ import annotations

import codecs
import csv
import functools
import io
import itertools
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

from ._files import open_regular
from .errors import SourceError
from .schema import UNREADABLE, unknown_columns
from .sources import (
    _JSON_KINDS,
    Span,
    _csv_rows,
    _first_line,
    _Layout,
    _not_utf8,
    _reader_for,
    _refuse_unknown,
    _unreadable,
    read_rows,
    source_format,
)


class _Counted:
    """The lines of a text file from byte `start` on, counting the bytes each takes: `offset` is where
    the next line starts."""

    def __init__(self, path: Path, start: int) -> None:
        self.path, self.start, self.offset = path, start, start

    def lines(self, text: TextIO) -> Iterator[str]:
        for line in text:
            self.offset += len(line.encode("utf-8"))
            yield line

    def line(self, number: int) -> int:
        """The file's line number of the `number`-th line (1-based) read from `start`."""
        return self._lines_before + number

    @functools.cached_property
    def _lines_before(self) -> int:
        if not self.start:
            return 0
        counter = _Counted(self.path, 0)
        lines = 0
        with _text_at(counter) as text:
            for _ in counter.lines(text):
                lines += 1
                if counter.offset >= self.start:
                    break
        return lines


@contextmanager
def _text_at(counted: _Counted) -> Iterator[TextIO]:
    """The file as text from `counted.offset` on, lines kept as they are (see the module's docstring)."""
    try:
        raw = open_regular(counted.path)
    except FileNotFoundError:
        raise SourceError(f"{counted.path}: no such file") from None
    except OSError as error:
        raise SourceError(f"{counted.path}: cannot read: {error.strerror or error}") from None
    with raw:
        if counted.offset:
            raw.seek(counted.offset)
        elif raw.read(len(codecs.BOM_UTF8)) == codecs.BOM_UTF8:  # as utf-8-sig reads it: not a character
            counted.offset = len(codecs.BOM_UTF8)
        else:
            raw.seek(0)
        yield io.TextIOWrapper(raw, encoding="utf-8", newline="")


def _csv_span(path: Path, layout: _Layout, counted: _Counted) -> Iterator[dict[str, Any]]:
    """`sources._csv_rows` from `counted`'s offset on (0: the file's start, header and all)."""
    checked = _csv_rows(path, layout)  # the header, checked as every reading checks it
    try:
        next(checked, None)
    finally:
        checked.close()  # type: ignore[attr-defined]  # a generator: closing it closes the file
    header, width = layout.columns, len(layout.columns)
    at_start = not counted.offset
    with _text_at(counted) as text:
        reader = csv.reader(counted.lines(text), strict=True)
        try:
            if at_start:  # the header: the first line that is not blank
                next((row for row in reader if any(field.strip() for field in row)), None)
            for fields in filter(None, reader):
                if len(fields) > width:
                    line = counted.line(_first_line(reader.line_num, fields))
                    raise SourceError(f"{path} line {line}: {len(fields)} fields but the header has {width}")
                yield dict(zip(header, fields))  # noqa: B905 (a short row leaves columns out; validation decides)
        except csv.Error as error:
            raise SourceError(f"{path} line {counted.line(reader.line_num)}: {error}") from None
        except UnicodeDecodeError:
            raise _not_utf8(path) from None


def _jsonl_span(path: Path, layout: _Layout, counted: _Counted) -> Iterator[dict[str, Any]]:
    """`sources._jsonl_rows` from `counted`'s offset on."""
    seen: set[str] = set()
    with _text_at(counted) as text:
        try:
            for number, line in enumerate(counted.lines(text), 1):
                if line.isspace():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as error:
                    where = f"{path} line {counted.line(number)}"
                    raise SourceError(f"{where}: not valid JSON: {error.msg} (column {error.colno})") from None
                except (ValueError, RecursionError) as error:
                    yield {UNREADABLE: f"record: {_unreadable(error)} (line {counted.line(number)})"}
                    continue
                if type(record) is not dict:
                    kind = "null" if record is None else _JSON_KINDS.get(type(record), type(record).__name__)
                    raise SourceError(f"{path} line {counted.line(number)}: expected a JSON object, got {kind}")
                if not seen.issuperset(record):
                    if unknown_columns(record):  # the line is worked out only for the message
                        _refuse_unknown(f"{path} line {counted.line(number)}", record)
                    layout.columns.extend(key for key in record if key not in seen)
                    seen.update(record)
                yield record
        except UnicodeDecodeError:
            raise _not_utf8(path) from None


_SPAN_READERS = {"csv": _csv_span, "jsonl": _jsonl_span}


class SpanRows:
    """The raw rows of a span (iterate once), and `offset`: the byte offset just after the last row
    yielded so far (None for a SQL dump, which is read by count)."""

    def __init__(self, rows: Iterator[dict[str, Any]], counted: _Counted | None) -> None:
        self._rows, self._counted = rows, counted

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return self._rows

    @property
    def offset(self) -> int | None:
        return None if self._counted is None else self._counted.offset


def read_span(path: str | Path, span: Span, *, skip: int = 0) -> SpanRows:
    """The records of `span` after its first `skip` (resuming inside it), as `read_rows` yields them.

    A CSV or JSON Lines file is read from the span's `offset` when it has one, else from its start with
    the records before the span read and passed over (not validated), and the offset reached is known
    either way. A SQL dump is read by count (see the module's docstring).
    """
    path = Path(path)
    _reader_for(path)  # a missing file, an unknown suffix or a FIFO: refused now
    end = None if span.records is None else span.records
    kind = source_format(path)
    if kind == "sql":
        rows = read_rows(path, skip=span.first - 1 + skip)
        return SpanRows(itertools.islice(rows, None if end is None else max(0, end - skip)), None)
    known = span.offset is not None
    counted = _Counted(path, span.offset or 0)
    rows = _SPAN_READERS[kind](path, _Layout(), counted)
    before = 0 if known else span.first - 1
    return SpanRows(itertools.islice(rows, before + skip, None if end is None else before + end), counted)
