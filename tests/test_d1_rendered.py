"""The D1 import's rows rendered ahead, by the reader process: what the importing process is spared
(issue 11: its CPU time falls between one request and the next), with every guarantee of the import
kept. Against the local D1 engine."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from estateflow_nb import _batches, connect, import_file, importer
from estateflow_nb.schema import MAX_TEXT_LENGTH, STORED_COLUMNS
from estateflow_nb.targets.d1 import D1Target
from estateflow_nb.targets.d1 import _sql as d1_sql

from .test_d1 import AWKWARD, awkward_records

LONG = "😀" * MAX_TEXT_LENGTH  # 40,000 bytes of UTF-8


def stored(target: Any) -> list[tuple[Any, ...]]:
    """The table's rows, but for the import's own id and time."""
    columns = ", ".join(STORED_COLUMNS)
    rows = target.query(f"SELECT {columns} FROM professionals ORDER BY license_number")
    return [tuple(r.values())[:-2] for r in rows]


@pytest.mark.parametrize("early", [False, True], ids=["reader", "reader started before the scan"])
def test_the_reader_process_renders_the_rows_the_importer_sends_to_d1(
    d1_target: D1Target, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, early: bool
) -> None:
    """Through the reader process, the importing process writes no row's text but that of a row too long
    to be rendered ahead (which goes alone, its longest texts bound); D1 stores what SQLite does."""
    records = awkward_records()
    records[3].update(first_name=LONG, last_name=LONG, company=LONG)  # 120,000 bytes: longer than a statement
    source = tmp_path / "awkward.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    monkeypatch.setattr(importer, "SUBPROCESS_MIN_RECORDS", 1)
    if early:
        monkeypatch.setattr(_batches, "EARLY_READER_BYTES", 1)
    readers: list[Any] = []
    start = _batches.ReaderProcess.__init__

    def noted_reader(self: Any, reading: Any) -> None:
        readers.append(reading)
        start(self, reading)

    monkeypatch.setattr(_batches.ReaderProcess, "__init__", noted_reader)
    written_here: list[Any] = []
    text_of = d1_sql._text_of

    def noted(row: Any) -> str:
        written_here.append(row)
        return text_of(row)

    monkeypatch.setattr(d1_sql, "_text_of", noted)
    result = import_file(d1_target, source, batch_size=10)
    assert result.status == "completed" and result.inserted == len(AWKWARD) * 2 and result.rejected == 0
    # Only the rows whose text is too long to be rendered ahead, the one longer than a statement among them.
    assert LONG in [row[0] for row in written_here] and len(written_here) < len(records) / 4
    assert all(len(text_of(row).encode()) > d1_sql.RENDERED_MAX_BYTES for row in written_here)
    assert [r.renderer for r in readers] == [D1Target.limits.row_renderer]  # one reader, the early one if any
    with connect(f"sqlite:///{tmp_path / 'local.db'}", create=True) as local:
        import_file(local, source, batch_size=10)
        assert stored(d1_target) == stored(local)
