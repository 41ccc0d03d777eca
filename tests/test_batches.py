from __future__ import annotations

from pathlib import Path

import pytest

from estateflow_nb import SourceError, connect, import_file, write_records
from estateflow_nb import importer as importer_module
from estateflow_nb._batches import read_batches, read_batches_in_subprocess

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
