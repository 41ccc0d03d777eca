"""Source records as validated batches, ready to write, read in a second process for large files.

Reading and validating costs about as much CPU as SQLite's writing. Threads cannot overlap the two
(the GIL), a child process can: it reads and validates batch k+1 while the importer writes batch k,
and hands it over as one `marshal` blob on its stdout (a few milliseconds per 10,000 rows, far
cheaper than pickle). The pipe holds one batch at a time, which keeps memory flat.

Where the target renders rows into text of its own before it sends them (D1: SQL literals, see
`Limits.row_renderer`), the reader renders each batch too: the importer, whose CPU time falls between
one request and the next, then only joins texts, and decodes one string a row instead of its values.
"""

from __future__ import annotations

import importlib
import itertools
import json
import marshal
import stat
import struct
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from . import errors
from ._offsets import read_span
from ._text_records import TextRecords
from .schema import RecordRejected, clean_record
from .sources import FORMATS, Span, _read_csv_fields, read_rows

# Below this many records the child's start-up (a fresh interpreter) costs more than it saves.
SUBPROCESS_MIN_RECORDS = 50_000

Reject = tuple[int, str, dict[str, Any]]  # (record number, reason, the raw row)


@dataclass
class Batch:
    rows: list[tuple[Any, ...]]  # clean records with their provenance, in STORED_COLUMNS order
    licenses: list[str]
    rejects: list[Reject]
    end: int  # source records handled once this batch is in: the checkpoint after it
    offset: int | None = None  # the byte offset just after its last record, where a span reader knows it
    rendered: bool = False  # its rows as the target's renderer wrote them (see `rendered`)

    @property
    def records(self) -> int:
        return len(self.rows) + len(self.rejects)

    def reasons(self) -> Iterator[str]:
        """What each rejected record broke: the column its reason starts with."""
        return (reason.split(":")[0] for _, reason, _ in self.rejects)


def read_batches(path: str | Path, *, start: int, batch_size: int, import_id: str, imported_at: str) -> Iterator[Batch]:
    """Batches of `batch_size` source records (rows and rejects together), from record `start` on."""
    provenance = (import_id, imported_at)
    csv_file = _read_csv_fields(path, skip=start)
    if csv_file is not None:
        yield from _text_batches(*csv_file, start, batch_size, provenance)
        return
    batch = Batch([], [], [], start)
    for raw in read_rows(path, skip=start):
        batch.end += 1
        try:
            row = clean_record(raw, imported_at)
        except RecordRejected as why:
            batch.rejects.append((batch.end, str(why), raw))
        else:
            batch.rows.append(row + provenance)
            batch.licenses.append(row[5])
        if batch.records == batch_size:
            yield batch
            batch = Batch([], [], [], batch.end)
    if batch.records:
        yield batch


def _text_batches(
    header: list[str], rows: Iterator[list[str]], start: int, batch_size: int, provenance: tuple[str, str]
) -> Iterator[Batch]:
    """`read_batches` for a CSV file: each record validated by column position (see TextRecords)."""
    records = TextRecords(header, provenance[1])
    # The loop below runs once a record: `records.clean` inlined for a full row (its common path, with
    # no call but `_common`'s), and each name a local.
    common, pick, width, clean = records._common, records.pick, records.width, records.clean
    if pick is None:
        width = -1  # columns missing from the header: every record goes to `clean`
    end = start
    while True:
        batch = Batch([], [], [], end)
        good, rejects = batch.rows, batch.rejects
        for fields in itertools.islice(rows, batch_size):
            end += 1
            row = common(pick(fields)) if len(fields) == width else None  # type: ignore[misc]
            if row is None:
                try:
                    row = clean(fields)
                except RecordRejected as why:
                    rejects.append((end, str(why), records.raw(fields)))
                    continue
            good.append(row + provenance)
        if end == batch.end:
            return
        batch.licenses = [row[5] for row in good]
        batch.end = end
        yield batch


def read_span_batches(
    path: str | Path, *, span: Span, start: int, batch_size: int, import_id: str, imported_at: str
) -> Iterator[Batch]:
    """`read_batches` over the records of `span` only, from its record `start` (0: its first) on.

    Record numbers, and so `Batch.end`, count from the span's start. Each batch carries the byte offset
    after its last record (`Batch.offset`, see _offsets.py); a span with nothing left to read still
    gives one empty batch, which carries where it ends.
    """
    provenance = (import_id, imported_at)
    rows = read_span(path, span, skip=start)
    batch = Batch([], [], [], start)
    given = False
    for raw in rows:
        batch.end += 1
        try:
            row = clean_record(raw, imported_at)
        except RecordRejected as why:
            batch.rejects.append((batch.end, str(why), raw))
        else:
            batch.rows.append(row + provenance)
            batch.licenses.append(row[5])
        if batch.records == batch_size:
            batch.offset, given = rows.offset, True
            yield batch
            batch = Batch([], [], [], batch.end)
    if batch.records or not given:
        batch.offset = rows.offset
        yield batch


def rendered(batches: Iterator[Batch], renderer: str | None) -> Iterator[Batch]:
    """`batches`, their rows rendered by `renderer` ("module:function", a target's
    `Limits.row_renderer`) where one is given."""
    if renderer is None:
        yield from batches
        return
    render = _renderer(renderer)
    for batch in batches:
        batch.rows, batch.rendered = render(batch.rows), True
        yield batch


def _renderer(name: str) -> Callable[[list[tuple[Any, ...]]], list[Any]]:
    module, _, function = name.partition(":")
    render: Callable[[list[tuple[Any, ...]]], list[Any]] = getattr(importlib.import_module(module), function)
    return render


def read_batches_in_subprocess(
    path: str | Path,
    *,
    start: int,
    batch_size: int,
    import_id: str,
    imported_at: str,
    span: Span | None = None,
    renderer: str | None = None,
) -> Iterator[Batch]:
    """The same batches as `read_batches`, produced by a child process while the caller writes (their
    rows rendered there by `renderer`, see `rendered`)."""
    where = Reading(str(path), start, batch_size, import_id, imported_at, span, renderer)
    return ReaderProcess(where).batches()


@dataclass(frozen=True)
class Reading:
    """What a reader process reads: the file (or its range `span`) from record `start` on, in batches of
    `batch_size` records, each row with its provenance."""

    path: str
    start: int
    batch_size: int
    import_id: str
    imported_at: str
    span: Span | None = None
    renderer: str | None = None  # the target's `Limits.row_renderer` (see `rendered`)


class ReaderProcess:
    """A child process that reads and validates `reading`'s batches while the caller writes; started
    when made, so it can be made before the caller is ready for its first batch.

    The child is a plain `python -c`, not multiprocessing: that would run the caller's main module
    again in the child, which breaks scripts without a `__main__` guard. It imports this module without
    the package's `__init__` (see `_CHILD`): the public API's imports would cost the child's first batch
    more time than reading it.
    """

    def __init__(self, reading: Reading) -> None:
        self.reading = reading
        span = reading.span
        where = None if span is None else [span.first, span.records, span.offset]
        arguments = json.dumps(
            [
                reading.path,
                reading.start,
                reading.batch_size,
                reading.import_id,
                reading.imported_at,
                where,
                reading.renderer,
            ]
        )
        # The child must find this very package, even when the caller put it on sys.path by hand.
        package = str(Path(__file__).resolve().parent)
        self.child = subprocess.Popen(
            [sys.executable, "-c", _CHILD, package, arguments],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

    def batches(self) -> Iterator[Batch]:
        """The batches as the child sends them; the child is stopped when they end or are left."""
        child = self.child
        assert child.stdout is not None
        try:
            while True:
                tag, payload = _receive(child.stdout)
                if tag == "end":
                    return
                if tag == "error":
                    kind, message = payload
                    raise getattr(errors, kind, errors.SourceError)(message)
                yield Batch(*payload)
        except EOFError:
            child.wait()
            said = child.stderr.read() if child.stderr is not None else b""
            detail = (said.decode(errors="replace").strip().splitlines() or ["no message"])[-1]
            raise RuntimeError(f"the reader process for {self.reading.path} stopped: {detail}") from None
        finally:
            self.close()

    def close(self) -> None:
        """Stop the child, if it still runs, and close its pipes."""
        child = self.child
        if child.poll() is None:
            child.kill()
        child.wait()
        for stream in (child.stdout, child.stderr):
            if stream is not None:
                stream.close()


# A file this big holds at least SUBPROCESS_MIN_RECORDS records of a few hundred bytes (a generated
# record is about 190 bytes): worth starting its reader before the scan (see `early_reader`).
EARLY_READER_BYTES = 8 << 20


def early_reader(
    path: Path, batch_size: int, import_id: str, imported_at: str, renderer: str | None = None
) -> ReaderProcess | None:
    """A reader of a big CSV or JSON Lines file from its first record, started now, or None for any
    other file. The importer starts it before it scans the file (its start-up and first batch then
    overlap the scan) and uses it only if the import turns out new, with this batch size."""
    try:
        found = path.stat()
    except OSError:
        return None  # the scan says what is wrong with it
    plain = FORMATS.get(path.suffix.lower()) in ("csv", "jsonl") and stat.S_ISREG(found.st_mode)
    big = plain and found.st_size >= EARLY_READER_BYTES
    if not big:
        return None
    return ReaderProcess(Reading(str(path), 0, batch_size, import_id, imported_at, renderer=renderer))


def read_file_batches(
    path: str | Path,
    span: Span | None,
    *,
    child: bool,
    start: int,
    batch_size: int,
    import_id: str,
    imported_at: str,
    renderer: str | None = None,
) -> Iterator[Batch]:
    """The batches of the file, or of its range `span`, from record `start` on; read by a child process
    when `child`; their rows rendered by `renderer` where one is given (see `rendered`)."""
    how = {"start": start, "batch_size": batch_size, "import_id": import_id, "imported_at": imported_at}
    if child:
        return read_batches_in_subprocess(path, span=span, renderer=renderer, **how)  # type: ignore[arg-type]
    if span is None:
        return rendered(read_batches(path, **how), renderer)  # type: ignore[arg-type]
    return rendered(read_span_batches(path, span=span, **how), renderer)  # type: ignore[arg-type]


_LENGTH = struct.Struct("<Q")

# The reader process: the package as an empty module of this folder (its `__init__` imports the whole
# public API, 0.15-0.3 s of start-up before the first batch; the reader needs a handful of modules),
# then `_produce`. Arguments: the package's folder, then `_produce`'s JSON.
_CHILD = """
import sys, types
package = types.ModuleType("estateflow_nb")
package.__path__ = [sys.argv[1]]
sys.modules["estateflow_nb"] = package
from estateflow_nb._batches import _produce
_produce(sys.argv[2])
"""


def _send(stream: IO[bytes], message: tuple[str, Any]) -> None:
    blob = marshal.dumps(message)
    stream.write(_LENGTH.pack(len(blob)) + blob)
    stream.flush()


def _receive(stream: IO[bytes]) -> tuple[str, Any]:
    header = stream.read(_LENGTH.size)
    if len(header) < _LENGTH.size:
        raise EOFError
    size = _LENGTH.unpack(header)[0]
    blob = stream.read(size)
    if len(blob) < size:
        raise EOFError
    return marshal.loads(blob)


def _produce(arguments: str) -> None:
    path, start, batch_size, import_id, imported_at, where, *renderer = json.loads(arguments)
    out = sys.stdout.buffer
    how = {"start": start, "batch_size": batch_size, "import_id": import_id, "imported_at": imported_at}
    try:
        batches = read_batches(path, **how) if where is None else read_span_batches(path, span=Span(*where), **how)
        for batch in rendered(batches, renderer[0] if renderer else None):
            message = (batch.rows, batch.licenses, batch.rejects, batch.end, batch.offset, batch.rendered)
            _send(out, ("batch", message))
        _send(out, ("end", None))
    except BrokenPipeError:
        pass  # the importer stopped reading: nothing left to do
    except errors.EstateFlowError as error:
        _send(out, ("error", (type(error).__name__, str(error))))
