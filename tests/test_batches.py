from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from estateflow_nb import (
    ConfirmationRequired,
    RefusedError,
    SourceError,
    Span,
    UnsafeDumpError,
    _batches,
    connect,
    generate_records,
    import_file,
    write_records,
)
from estateflow_nb import importer as importer_module
from estateflow_nb._batches import (
    Batch,
    ReaderProcess,
    Reading,
    _produce,
    _receive,
    _send,
    read_batches,
    read_batches_in_subprocess,
    read_file_batches,
    read_span_batches,
)
from estateflow_nb.rungs import RUNGS
from estateflow_nb.schema import RECORD_COLUMNS
from estateflow_nb.targets.d1 import D1Target
from estateflow_nb.targets.d1._sql import render_rows

from .conftest import write_csv
from .test_importer import table_rows

ARGS = {"start": 0, "batch_size": 40, "import_id": "imp-x", "imported_at": "2026-11-28T00:00:00Z"}


def test_the_child_process_yields_exactly_the_in_process_batches(tmp_path: Path) -> None:
    source = write_records(tmp_path / "p.csv", 150, invalid_share=0.1)
    here = list(read_batches(source, **ARGS))
    there = list(read_batches_in_subprocess(source, **ARGS))
    assert [b.end for b in there] == [40, 80, 120, 150]
    assert [(b.rows, b.licenses, b.rejects, b.end) for b in there] == [
        (b.rows, b.licenses, b.rejects, b.end) for b in here
    ]
    assert sum(len(b.rejects) for b in there) == 15
    resumed = list(read_batches_in_subprocess(source, **{**ARGS, "start": 80}))
    assert [b.end for b in resumed] == [120, 150] and resumed[0].rows == here[2].rows


def test_a_source_error_in_the_child_arrives_as_itself(tmp_path: Path) -> None:
    source = write_records(tmp_path / "p.csv", 100)
    lines = source.read_text(encoding="utf-8").splitlines()
    lines[61] += ",one field too many"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    batches = read_batches_in_subprocess(source, **ARGS)
    assert next(batches).end == 40
    with pytest.raises(SourceError, match="line 62: 17 fields but the header has 16"):
        list(batches)


def test_a_large_import_through_the_child_matches_a_small_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = write_records(tmp_path / "p.csv", 300, invalid_share=0.05)
    with connect(str(tmp_path / "inline.db"), create=True) as inline:
        expected = import_file(inline, source, batch_size=64)
        monkeypatch.setattr(importer_module, "SUBPROCESS_MIN_RECORDS", 100)
        with connect(str(tmp_path / "child.db"), create=True) as child:
            result = import_file(child, source, batch_size=64)
            assert table_rows(child) == table_rows(inline)
    assert (result.inserted, result.rejected, result.batches) == (expected.inserted, expected.rejected, 5)
    assert Path(result.rejects_path or "").read_text().count("\n") == 1 + 15


def test_a_broken_file_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    source = write_records(tmp_path / "p.csv", 100)
    lines = source.read_text(encoding="utf-8").splitlines()
    lines[71] += ",extra"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with connect(str(tmp_path / "db.sqlite"), create=True) as target:
        with pytest.raises(SourceError, match="line 72"):
            import_file(target, source, batch_size=20)
        assert target.scalar("SELECT COUNT(*) FROM professionals") == 0
        assert target.scalar("SELECT COUNT(*) FROM ef_imports") == 0


def interrupt(_metrics: Any) -> None:
    raise KeyboardInterrupt


class Started:
    """The reader processes an import starts, noted in order with the scans it makes (real processes)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.events: list[str] = []
        self.readers: list[_batches.ReaderProcess] = []
        make, scan = _batches.ReaderProcess.__init__, importer_module.scan

        def reader(process: _batches.ReaderProcess, reading: _batches.Reading) -> None:
            self.events.append(f"reader from {reading.start}")
            self.readers.append(process)
            make(process, reading)

        def scanned(*args: Any, **how: Any) -> Any:
            self.events.append("scan")
            return scan(*args, **how)

        monkeypatch.setattr(_batches.ReaderProcess, "__init__", reader)
        monkeypatch.setattr(importer_module, "scan", scanned)
        # A 300-record file counts as big: its reader starts before the scan, in the small rung's batches.
        monkeypatch.setattr(_batches, "EARLY_READER_BYTES", 1000)
        monkeypatch.setattr(importer_module, "SUBPROCESS_MIN_RECORDS", 200)


def test_a_big_files_reader_starts_before_the_scan_and_reads_the_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = write_records(tmp_path / "p.csv", 300, invalid_share=0.05)
    with connect(str(tmp_path / "inline.db"), create=True) as inline:
        expected, rows = import_file(inline, source), table_rows(inline)
    started = Started(monkeypatch)
    with connect(str(tmp_path / "early.db"), create=True) as target:
        result = import_file(target, source)
        assert started.events == ["reader from 0", "scan"]
        assert table_rows(target) == rows
        # Its rows carry the import's own id and time, which the reader was given before the ledger had them.
        (ledger,) = target.query("SELECT id, started_at FROM ef_imports")
        assert re.fullmatch(r"imp-\d{8}T\d{6}Z-[0-9a-f]{6}", ledger["id"])  # an import's id, as any other
        provenance = target.query("SELECT DISTINCT import_id, imported_at FROM professionals")
        assert provenance == [{"import_id": ledger["id"], "imported_at": ledger["started_at"]}]
    assert (result.inserted, result.rejected, result.batches) == (expected.inserted, expected.rejected, 3)
    assert started.readers[0].child.returncode is not None


@pytest.mark.parametrize("suffix", [".jsonl", ".sql", ".csv"])
def test_only_a_big_csv_or_json_lines_file_gets_its_reader_before_the_scan(
    suffix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A SQL dump is replayed by the scan, under its checks, before anything reads it; a file below
    the size gets no reader before it is known to need one."""
    source = write_records(tmp_path / f"p{suffix}", 300)
    small = write_records(tmp_path / f"small{suffix}", 5, start=1000)
    started = Started(monkeypatch)
    monkeypatch.setattr(_batches, "EARLY_READER_BYTES", source.stat().st_size)  # big: this size or more
    with connect(str(tmp_path / "db.sqlite"), create=True) as target:
        assert import_file(target, source).inserted == 300
        assert import_file(target, small).inserted == 5
    first = ["reader from 0", "scan"] if suffix != ".sql" else ["scan", "reader from 0"]
    assert started.events == [*first, "scan"]


def test_a_dry_run_or_a_range_gets_no_reader_before_the_scan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A dry run reads nothing; a range (a rung of a climb) is read from where it starts, once known."""
    source = write_records(tmp_path / "p.csv", 300)
    started = Started(monkeypatch)
    with connect(str(tmp_path / "db.sqlite"), create=True) as target:
        assert import_file(target, source, dry_run=True).dry_run
        assert started.events == ["scan"]
        assert import_file(target, source, span=Span(first=51, records=250)).inserted == 250
        assert started.events == ["scan", "scan", "reader from 0"]


def test_a_fifo_gets_no_reader_before_the_scan_refuses_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fifo = tmp_path / "p.csv"
    os.mkfifo(fifo)
    started = Started(monkeypatch)
    monkeypatch.setattr(_batches, "EARLY_READER_BYTES", 0)  # any size: only the kind of file decides
    with (
        connect(str(tmp_path / "db.sqlite"), create=True) as target,
        pytest.raises(RefusedError, match="is a FIFO, not a file to read"),
    ):
        import_file(target, fifo)
    assert started.events == ["scan"]


def test_a_resume_leaves_the_early_reader_and_reads_from_its_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = write_records(tmp_path / "p.csv", 300)
    with connect(str(tmp_path / "inline.db"), create=True) as inline:
        import_file(inline, source)
        rows = table_rows(inline)
    with connect(str(tmp_path / "db.sqlite"), create=True) as target:
        with pytest.raises(KeyboardInterrupt):
            import_file(target, source, progress=interrupt)
        started = Started(monkeypatch)
        result = import_file(target, source)
        assert started.events == ["reader from 0", "scan", "reader from 100"]
        assert started.readers[0].child.returncode is not None  # stopped, unread
        assert (result.status, result.resumed_from, result.inserted) == ("completed", 100, 300)
        assert table_rows(target) == rows


@pytest.mark.parametrize("why", ["a broken line", "an extra large import without --force"])
def test_an_import_refused_before_it_starts_stops_its_early_reader(
    why: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = write_records(tmp_path / "p.csv", 300)
    if why == "a broken line":
        lines = source.read_text(encoding="utf-8").splitlines()
        lines[71] += ",extra"
        source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    started = Started(monkeypatch)
    monkeypatch.setattr(importer_module, "rung_for", lambda records: RUNGS[-1])
    with connect(str(tmp_path / "db.sqlite"), create=True) as target:
        with pytest.raises(SourceError if why == "a broken line" else ConfirmationRequired):
            import_file(target, source)
        assert target.scalar("SELECT COUNT(*) FROM ef_imports") == 0
    assert started.events == ["reader from 0", "scan"]
    assert started.readers[0].child.returncode is not None


# --- the reader process's side, run in this process (a child process is invisible to `make mutation`) ---


def produced(monkeypatch: pytest.MonkeyPatch, path: Path, start: int = 0, where: list[Any] | None = None) -> list[Any]:
    """What `python -m estateflow_nb._batches` writes to its stdout for these arguments, as messages."""
    out = io.BytesIO()
    monkeypatch.setattr(sys, "stdout", SimpleNamespace(buffer=out))
    _produce(json.dumps([str(path), start, 40, "imp-x", "2026-11-28T00:00:00Z", where]))
    monkeypatch.undo()
    stream, messages = io.BytesIO(out.getvalue()), []
    while stream.tell() < len(out.getvalue()):
        messages.append(_receive(stream))
    return messages


def as_message(batch: Batch) -> tuple[str, Any]:
    return "batch", (batch.rows, batch.licenses, batch.rejects, batch.end, batch.offset, batch.rendered)


def test_the_reader_process_sends_each_batch_then_the_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = write_records(tmp_path / "p.csv", 150, invalid_share=0.1)
    batches = [as_message(b) for b in read_batches(source, **ARGS)]
    assert produced(monkeypatch, source) == [*batches, ("end", None)]
    assert produced(monkeypatch, source, start=80) == [*batches[2:], ("end", None)]
    span = Span(first=31, records=50)
    in_range = [as_message(b) for b in read_span_batches(source, span=span, **ARGS)]
    assert [m[1][3] for m in in_range] == [40, 50] and in_range[0][1][4] is not None
    assert produced(monkeypatch, source, where=[31, 50, None]) == [*in_range, ("end", None)]


def test_the_reader_process_sends_a_source_error_by_kind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = write_records(tmp_path / "p.csv", 100)
    lines = source.read_text(encoding="utf-8").splitlines()
    lines[61] += ",one field too many"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    *batches, last = produced(monkeypatch, source)
    assert [tag for tag, _ in batches] == ["batch"]
    assert last == ("error", ("SourceError", f"{source} line 62: 17 fields but the header has 16"))


def test_the_reader_process_stops_quietly_when_nobody_reads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class Closed(io.BytesIO):
        def write(self, _: Any) -> int:
            raise BrokenPipeError

    monkeypatch.setattr(sys, "stdout", SimpleNamespace(buffer=Closed()))
    _produce(json.dumps([str(write_records(tmp_path / "p.csv", 10)), 0, 40, "imp-x", "now", None]))


def test_a_message_cut_short_is_the_end_of_the_stream() -> None:
    out = io.BytesIO()
    _send(out, ("batch", ([("a", 1)], ["L-1"], [], 1, None)))
    whole = out.getvalue()
    assert _receive(io.BytesIO(whole)) == ("batch", ([("a", 1)], ["L-1"], [], 1, None))
    for cut in (0, 7, len(whole) - 1):
        with pytest.raises(EOFError):
            _receive(io.BytesIO(whole[:cut]))


def test_file_batches_come_from_the_reader_the_range_and_the_child_asks_for(tmp_path: Path) -> None:
    source = write_records(tmp_path / "p.csv", 100, invalid_share=0.1)
    how = {"start": 0, "batch_size": 40, "import_id": "imp-x", "imported_at": "2026-11-28T00:00:00Z"}
    whole = [(b.rows, b.rejects, b.end) for b in read_batches(source, **how)]
    span = Span(first=11, records=50)
    ranged = [(b.rows, b.rejects, b.end) for b in read_span_batches(source, span=span, **how)]
    assert [b[2] for b in ranged] == [40, 50] and ranged != whole[:2]
    for child in (False, True):
        got = [(b.rows, b.rejects, b.end) for b in read_file_batches(source, None, child=child, **how)]
        assert got == whole
        got = [(b.rows, b.rejects, b.end) for b in read_file_batches(source, span, child=child, **how)]
        assert got == ranged


def test_a_reader_process_that_dies_is_reported_with_its_last_words(tmp_path: Path) -> None:
    source = write_records(tmp_path / "p.csv", 10)
    batches = read_batches_in_subprocess(source, **{**ARGS, "start": -1})  # a bug's traceback, not an error of ours
    with pytest.raises(RuntimeError) as stopped:
        next(batches)
    assert str(stopped.value) == f"the reader process for {source} stopped: ValueError: skip must be 0 or more, not -1"


def test_a_range_gives_full_batches_then_what_is_left_or_one_empty_batch_saying_where_it_ends(tmp_path: Path) -> None:
    source = write_records(tmp_path / "p.csv", 100)
    exact = list(read_span_batches(source, span=Span(first=1, records=40), **ARGS))
    assert [(b.end, b.records) for b in exact] == [(40, 40)] and exact[0].offset is not None
    rest = list(read_span_batches(source, span=Span(first=101, records=None), **ARGS))
    assert [(b.end, b.records) for b in rest] == [(0, 0)] and rest[0].offset == source.stat().st_size


def test_records_without_times_take_the_imports_time_in_a_range_too(tmp_path: Path) -> None:
    rows = [{**r, "created_at": "", "updated_at": ""} for r in generate_records(5, seed=2)]
    source = write_csv(tmp_path / "p.csv", rows)
    created = RECORD_COLUMNS.index("created_at")
    for batches in (read_batches(source, **ARGS), read_span_batches(source, span=Span(2, 3), **ARGS)):
        (batch,) = list(batches)
        assert {row[created] for row in batch.rows} == {ARGS["imported_at"]}


def test_the_reader_process_is_this_python_on_this_package_reading_nothing_from_us(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The child must import this very package (a checkout, a copy), whatever else PYTHONPATH holds,
    and never wait on the caller's stdin. The real process runs; only its arguments are noted."""
    started: list[tuple[list[str], dict[str, Any]]] = []
    children: list[subprocess.Popen[bytes]] = []
    popen = subprocess.Popen

    def noted(args: list[str], **how: Any) -> subprocess.Popen[bytes]:
        started.append((args, how))
        children.append(popen(args, **how))
        return children[-1]

    monkeypatch.setattr(_batches.subprocess, "Popen", noted)
    # A decoy package of the same name first on PYTHONPATH: importing it fails loudly.
    decoy = tmp_path / "elsewhere" / "estateflow_nb"
    decoy.mkdir(parents=True)
    (decoy / "__init__.py").write_text("raise ImportError('the decoy was imported')\n")
    monkeypatch.setenv("PYTHONPATH", str(decoy.parent))
    source = write_records(tmp_path / "p.csv", 10)
    assert [b.end for b in read_batches_in_subprocess(source, **ARGS)] == [10]
    ((args, how),) = started
    assert args[:2] == [sys.executable, "-c"]
    assert args[3] == str(Path(_batches.__file__).resolve().parent)
    assert how["stdin"] == subprocess.DEVNULL
    assert children[0].returncode is not None and children[0].stdout.closed and children[0].stderr.closed
    # A reader that stops early (here after one batch of many, more than the pipe holds) ends the child.
    big = write_records(tmp_path / "big.csv", 3_000)
    batches = read_batches_in_subprocess(big, **ARGS)
    assert next(batches).end == 40
    batches.close()
    assert children[1].returncode is not None and children[1].stderr.closed


def test_the_reader_process_skips_the_packages_init(tmp_path: Path) -> None:
    """The reader imports the modules it reads with, not the public API: the package's `__init__`
    (which imports every part of the toolkit) would delay its first batch. Run as the importer runs it,
    with an `__init__` that would fail if imported, the child still reads."""
    package = tmp_path / "copy" / "estateflow_nb"
    shutil.copytree(Path(_batches.__file__).resolve().parent, package, ignore=shutil.ignore_patterns("__pycache__"))
    (package / "__init__.py").write_text("raise ImportError('the public API was imported')\n")
    source = write_records(tmp_path / "p.csv", 25)
    arguments = json.dumps([str(source), 0, 10, "imp-x", "2026-12-07T00:00:00Z", None])
    done = subprocess.run(
        [sys.executable, "-c", _batches._CHILD, str(package), arguments], capture_output=True, check=True
    )
    stream = io.BytesIO(done.stdout)
    ends = []
    while (message := _batches._receive(stream))[0] == "batch":
        ends.append(message[1][3])
    assert ends == [10, 20, 25] and message == ("end", None)


def with_child(monkeypatch: pytest.MonkeyPatch, code: str) -> None:
    """The reader process replaced by a real Python process running `code`, for the ways a child can
    end that the real one only shows on a bad day."""
    popen = subprocess.Popen
    monkeypatch.setattr(_batches.subprocess, "Popen", lambda args, **how: popen([sys.executable, "-c", code], **how))


SEND = "import sys\nfrom estateflow_nb._batches import _send\n_send(sys.stdout.buffer, {!r})\n"


@pytest.mark.parametrize(
    ("code", "stopped"),
    [
        ("import sys; sys.stderr.buffer.write(b'bad \\xff byte\\n'); sys.exit(3)", "bad \ufffd byte"),
        ("import sys; sys.exit(3)", "no message"),
    ],
)
def test_a_reader_process_that_ends_without_a_word_of_ours_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: str, stopped: str
) -> None:
    with_child(monkeypatch, code)
    with pytest.raises(RuntimeError) as caught:
        list(read_batches_in_subprocess(tmp_path / "p.csv", **ARGS))
    assert str(caught.value) == f"the reader process for {tmp_path / 'p.csv'} stopped: {stopped}"


def test_an_error_from_the_reader_process_keeps_its_kind_or_becomes_a_source_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dump = tmp_path / "evil.sql"
    dump.write_text("DROP TABLE professionals;\n", encoding="utf-8")
    with pytest.raises(UnsafeDumpError, match="refused"):
        list(read_batches_in_subprocess(dump, **ARGS))
    with_child(monkeypatch, SEND.format(("error", ("NoSuchError", "the child's words"))))
    with pytest.raises(SourceError) as caught:
        list(read_batches_in_subprocess(dump, **ARGS))
    assert type(caught.value) is SourceError and str(caught.value) == "the child's words"


RENDERER = D1Target.limits.row_renderer


def test_rows_come_rendered_for_the_target_from_the_reader_here_and_in_the_child(tmp_path: Path) -> None:
    """Where the target renders rows (D1: SQL literals), the reader renders them: the importer then only
    joins texts. Everything else about a batch is as it was."""
    source = write_records(tmp_path / "p.csv", 100, invalid_share=0.1)
    how = {"start": 0, "batch_size": 40, "import_id": "imp-x", "imported_at": "2026-11-28T00:00:00Z"}
    plain = list(read_batches(source, **how))
    assert not any(b.rendered for b in plain) and RENDERER is not None
    for child in (False, True):
        for span in (None, Span(first=11, records=50)):
            got = list(read_file_batches(source, span, child=child, renderer=RENDERER, **how))
            expected = list(read_file_batches(source, span, child=False, **how))
            assert [b.rendered for b in got] == [True] * len(expected)
            assert [b.rows for b in got] == [render_rows(b.rows) for b in expected]
            assert [(b.licenses, b.rejects, b.end, b.offset) for b in got] == [
                (b.licenses, b.rejects, b.end, b.offset) for b in expected
            ]
    assert all(type(row) is str and row.startswith("('") for row in render_rows(plain[0].rows))
    early = ReaderProcess(Reading(str(source), 0, 40, "imp-x", "2026-11-28T00:00:00Z", renderer=RENDERER))
    assert [b.rows for b in early.batches()] == [render_rows(b.rows) for b in plain]
