"""Notebook 04 shows only the current database's backups (issue 9, point 16), run as the rollback
report runs it (papermill, headless) on a backups folder shared by two databases."""

from __future__ import annotations

from pathlib import Path

from estateflow_nb import backup, connect, import_file, list_backups, write_records
from estateflow_nb.reports import run_report

from .report_reading import header_facts, headers, html_outputs, image_alts, outputs, table_rows, tables_with


def test_the_rollback_notebook_shows_only_this_databases_backups(
    two_imports: tuple[str, str, str], tmp_path: Path
) -> None:
    url, _first, _second = two_imports
    kept = tmp_path / "kept"
    # Another database of the same file name in another folder, backed up into the same folder after
    # this one, so that its backup is the newest there: any mix-up shows in the header and the table.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    other = f"sqlite:///{elsewhere / Path(url.removeprefix('sqlite:///')).name}"
    with connect(url) as target:
        backup(target, backups_dir=kept)
        backup(target, backups_dir=kept)
    with connect(other, create=True) as target:
        import_file(target, write_records(tmp_path / "other.csv", 7))
        backup(target, backups_dir=kept)
        backup(target, backups_dir=kept)
        backup(target, backups_dir=kept)
    ours, theirs = list_backups(db=url, backups_dir=kept), list_backups(db=other, backups_dir=kept)
    assert [b.rows for b in ours] == [60, 60] and [b.rows for b in theirs] == [7, 7, 7]
    everyone = list_backups(backups_dir=kept)  # newest first, to the millisecond of their names
    assert len(everyone) == 5 and everyone[0].path == theirs[0].path

    result = run_report("rollback", db=url, parameters={"backups_dir": str(kept)}, out_dir=tmp_path / "reports")
    soups = html_outputs(result.notebook)
    (state,) = headers(soups)
    assert header_facts(state)["Newest backup"].startswith(Path(ours[0].path).name)
    (listed,) = tables_with(soups, "backup")
    assert [[r[0], r[3]] for r in table_rows(listed)] == [[Path(b.path).name, "60"] for b in ours]
    assert "2 backups in" in " ".join(s.get_text(" ") for s in soups)
    assert "Rows in each of 2 backups, by when it was taken (UTC)" in image_alts(result.notebook)
    shown = str(outputs(result.notebook)) + result.html.read_text(encoding="utf-8")
    for theirs_backup in theirs:
        assert Path(theirs_backup.path).name not in shown
