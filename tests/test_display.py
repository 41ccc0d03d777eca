"""Results show themselves in a notebook: each one, as the last line of a cell of a notebook executed by
papermill and converted to HTML by nbconvert (as the reports are), displays the look of the reports
(the verdict box, key figures, the main table), and markup in the data stays text. Every result also
has a short plain repr and a DataFrame with proper dtypes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nbformat
import pandas as pd
import papermill
from bs4 import BeautifulSoup

from estateflow_nb import (
    BookmarkRestoreResult,
    connect,
    import_file,
    list_backups,
    plan_rollback,
    restore,
    run_ladder,
    status,
    verify,
    write_records,
)
from estateflow_nb._frames import TEXT
from estateflow_nb.reports import ReportResult, _kernel_imports_this_package, report_kernel, to_html
from estateflow_nb.targets import Sql

from . import test_markup
from .report_reading import outputs
from .test_markup import (
    HOSTILE_IMPORT,
    PAYLOADS,
    live_markup,
    shown_payloads,
)

# Each cell's last line, and what it must show: the kind of result (its block's class) and its verdict.
CELLS: list[tuple[str, str, str | None]] = [
    ("import_file(target, SOURCE, batch_size=40)", "import", "IMPORTED WITH REJECTS"),
    ("import_file(target, CLEAN, batch_size=5)", "import", "IMPORTED"),
    ("verify(target, runs=1)", "verification", "FAILED"),
    ("verify(target, runs=1, history=False).check('email_format')", "check", "FAILED"),
    ("status(target, backups_dir=KEPT)", "status", None),
    ("plan = plan_rollback(target, import_id=HOSTILE)\nplan", "rollback-plan", "PLAN ONLY"),
    ("undone = plan.apply(target, backups_dir=KEPT)\nundone", "rollback", "ROLLED BACK"),
    ("backups = list_backups(db=target, backups_dir=KEPT)\nbackups", "backups", None),
    ("restore(target, backups[0].path, yes=True, backups_dir=KEPT)", "restore", "RESTORED"),
    ("run_rung(target, RUNG, verify_runs=1, max_reject_rate=0.5)", "rung", "NOTHING NEW"),
    # The restored database still holds the rows of markup: their emails fail the small rung's verification.
    ("run_ladder(target, files=[SOURCE, RUNG], verify_runs=1, max_reject_rate=0.5)", "ladder", "VERIFICATION FAILED"),
    # A climb of a file named with markup whose first rung holds a record with a bad email: it fails there.
    ("climb(target, BAD, verify_runs=1, benchmarks=False, backups_dir=KEPT)", "climb", "FAILED"),
    (
        "ReportResult(PAYLOADS[1], FOLDER / 'r.html', FOLDER / 'r.ipynb',"
        " {'city': PAYLOADS[5], 'industry': PAYLOADS[7], 'files': PAYLOADS[8]}, 2.5)",
        "report",
        None,
    ),
    (
        "BookmarkRestoreResult('d1://a/' + PAYLOADS[2], PAYLOADS[3], None, PAYLOADS[4], 3, 1, dry_run=True)",
        "bookmark-restore",
        "DRY RUN",
    ),
]

# test_markup's database of markup, as a fixture of this module too (fixtures are found by name).
hostile = test_markup.hostile


def _notebook(hostile: dict[str, Any], path: Path) -> Path:
    """Each of CELLS after a cell that opens test_markup's database of markup (under a folder named like
    markup, with rows whose every text column is markup, and a failed import whose id, source, error
    and rejects file are markup)."""
    folder: Path = hostile["folder"]
    setup = "\n".join(
        [
            "from pathlib import Path",
            "from estateflow_nb import *",
            f"PAYLOADS = {PAYLOADS!r}",
            f"FOLDER = Path({str(folder)!r})",
            f"KEPT = FOLDER / {PAYLOADS[6]!r}",
            f"HOSTILE = {HOSTILE_IMPORT!r}",
            f"SOURCE = {str(hostile['source'])!r}",
            "RUNG = str(write_records(FOLDER / '<b>rung</b>.csv', 20, start=9000))",
            "CLEAN = str(write_records(FOLDER / 'more.csv', 60, start=20000))",
            "BAD = write_records(FOLDER / '<i>bad</i>.csv', 30, start=30000)",
            "LINES = BAD.read_text(encoding='utf-8').splitlines(keepends=True)",
            "BAD.write_text(''.join(LINES[:3] + [LINES[3].replace('@', ' at ')] + LINES[4:]), encoding='utf-8')",
            f"target = connect({hostile['url']!r})",
            "import_file(target, RUNG);  # imported once already: its rung has nothing new",
        ]
    )
    question = "read_sql(target, 'SELECT city, email FROM professionals WHERE import_id = ?', (HOSTILE,))"
    cells = [nbformat.v4.new_code_cell(setup)]
    cells += [nbformat.v4.new_code_cell(code) for code, _, _ in CELLS]
    cells.append(nbformat.v4.new_code_cell(question))
    notebook = nbformat.v4.new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {"name": report_kernel(), "display_name": "Python", "language": "python"}
    nbformat.write(notebook, str(path))
    return path


def executed_results(hostile: dict[str, Any], folder: Path) -> Path:
    """The notebook of CELLS, executed by papermill on the report kernel, in `folder`."""
    source = _notebook(hostile, folder / "results.ipynb")
    executed = folder / "executed.ipynb"
    with _kernel_imports_this_package():
        papermill.execute_notebook(
            str(source), str(executed), kernel_name=report_kernel(), cwd=str(folder), progress_bar=False
        )
    return executed


def test_every_result_displays_as_the_reports_do_and_markup_stays_text(hostile: dict[str, Any], tmp_path: Path) -> None:
    executed = executed_results(hostile, tmp_path)
    nb = nbformat.read(str(executed), as_version=4)
    results = [cell.outputs for cell in nb.cells[1:]]
    shown: set[str] = set()
    for (code, kind, verdict), cell in zip(CELLS, results, strict=False):
        (result,) = [o for o in cell if o["output_type"] == "execute_result"]
        html, plain = result["data"]["text/html"], result["data"]["text/plain"]
        soup = BeautifulSoup(html, "html.parser")
        block = soup.select_one(f"div.ef-result.ef-{kind}")
        assert block is not None, code
        header = block.select_one(".ef-report-header.ef-compact")
        assert header is not None and header.select_one(".ef-facts tr") is not None, code
        box = header.select_one(".ef-verdict")
        assert (box.get_text(strip=True) if box else None) == verdict, code
        assert live_markup(html) == [], code
        assert plain.startswith("<") and plain.count("\n") <= 1 and len(plain) < 320, plain  # a line or two
        shown |= shown_payloads(html)
    assert shown == set(PAYLOADS)  # every kind of markup was in the data shown, and shown as text

    imported = BeautifulSoup(results[1][-1]["data"]["text/html"], "html.parser")
    rows = [[td.get_text(strip=True) for td in tr.select("td")] for tr in imported.select("table.ef-batches tbody tr")]
    assert [r[0] for r in rows] == ["1", "2", "3", "4", "5", "…", "8", "9", "10", "11", "12"]  # 12 batches of 5
    assert rows[5][1] == "2 more"
    checks = BeautifulSoup(results[2][-1]["data"]["text/html"], "html.parser").select("table.ef-checks tbody tr")
    assert len(checks) == 12
    at = next(i for i, (_, kind, _) in enumerate(CELLS) if kind == "climb")
    (climbed,) = [o["data"]["text/html"] for o in results[at] if o["output_type"] == "execute_result"]
    climb_block = BeautifulSoup(climbed, "html.parser")
    failure = climb_block.select_one(".ef-climb-failure")
    assert failure is not None and "Rung 1 (records 1 to 10) failed" in failure.get_text()
    assert failure.select_one(".ef-climb-undone") is not None and failure.select_one(".ef-climb-next") is not None
    assert [tr.select("td")[0].get_text(strip=True) for tr in climb_block.select("table.ef-climb tbody tr")] == ["1"]
    (question,) = [o for o in results[-1] if o["output_type"] == "execute_result"]
    assert live_markup(question["data"]["text/html"]) == []  # a DataFrame of markup, escaped by pandas
    assert PAYLOADS[0] in BeautifulSoup(question["data"]["text/html"], "html.parser").get_text()

    page = to_html(executed, tmp_path / "results.html", title="results").read_text(encoding="utf-8")
    assert live_markup(page) == [] and shown_payloads(page) == set(PAYLOADS)
    assert len(outputs(executed)) >= len(CELLS)


# --- to_frame, without a notebook -------------------------------------------------------------------------

UTC_TIME = "datetime64[ns, UTC]"


def _dtypes(frame: pd.DataFrame) -> dict[str, str]:
    return {name: str(dtype) for name, dtype in frame.dtypes.items()}


def test_every_result_has_a_frame_with_proper_dtypes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'frames.db'}"
    text = str(TEXT)
    with connect(url, create=True) as target:
        imported = import_file(target, write_records(tmp_path / "a.csv", 95, invalid_share=0.05), batch_size=20)
        batches = imported.to_frame()
        assert _dtypes(batches) == {
            **dict.fromkeys(["number", "records", "inserted", "updated", "skipped", "rejected"], "int64"),
            "seconds": "float64",
            "records_per_second": "float64",
            "done": "int64",
            "total": "int64",
            "elapsed": "float64",
        }
        assert batches["records"].sum() == imported.records_read and batches["number"].tolist() == [1, 2, 3, 4, 5]
        assert batches["rejected"].sum() == imported.rejected > 0

        report = verify(target, runs=1)
        checks = report.to_frame()
        assert len(checks) == 12 and checks["passed"].dtype == bool and checks["failing"].dtype == "int64"
        assert checks["number"].tolist() == list(range(1, 13)) and checks["name"].dtype == text
        assert checks["seconds"].dtype == "float64"
        target.execute([Sql("UPDATE professionals SET email = 'no-at-sign' WHERE id <= 3")])
        email = verify(target, runs=1, history=False).check("email_format")
        assert _dtypes(email.to_frame()) == {"kind": text, "rows": "int64", "share": "float64"}
        assert email.to_frame()["rows"].sum() == 3

        ledger = status(target).to_frame()
        assert ledger["started_at"].dtype == UTC_TIME and ledger["finished_at"].dtype == UTC_TIME
        assert ledger["rolled_back_at"].dtype == UTC_TIME and ledger["rolled_back_at"].isna().all()
        assert ledger["records_total"].dtype == "Int64" and ledger["inserted"].dtype == "int64"
        assert ledger["started_at"][0] == pd.Timestamp(status(target).imports[0]["started_at"])

        plan = plan_rollback(target, import_id=imported.import_id)
        places = plan.to_frame()
        assert _dtypes(places) == {"industry": text, "state": text, "removed": "int64", "restored": "int64"}
        assert places["removed"].sum() == imported.inserted
        undone = plan.apply(target)
        assert undone.to_frame()["removed"].sum() == imported.inserted

        backups = list_backups(db=target)
        listing = backups.to_frame()
        assert listing["taken_at"].dtype == UTC_TIME and listing["size_bytes"].dtype == "int64"
        assert listing["rows"].dtype == "Int64" and listing["rows"].tolist() == [imported.inserted]

        restored = restore(target, backups[0].path, yes=True).to_frame()
        assert restored["rows"].tolist() == [imported.inserted] and restored["dry_run"].dtype == bool
        assert restored["rows_before"].dtype == "int64" and restored["seconds"].dtype == "float64"

        ladder = run_ladder(target, files=[write_records(tmp_path / "r.csv", 20, start=500)], verify_runs=1)
        rungs = ladder.to_frame()
        assert rungs["records"].dtype == "int64" and rungs["target_rate"].dtype == "float64"
        assert rungs["verified"].dtype == "boolean" and rungs["verified"].isna().all()  # the test rung is not verified
        assert ladder.rungs[0].to_frame().equals(rungs)

    when = BookmarkRestoreResult("d1://a/b", "0001-aa", "2026-11-28T10:40:00Z", "0002-bb", 5, 1).to_frame()
    assert when["at"].dtype == UTC_TIME and when["at"][0] == pd.Timestamp("2026-11-28T10:40:00Z")
    assert when["rows"].dtype == "Int64" and when["rows"].isna().all()
    report_row = ReportResult("explore", tmp_path / "x.html", tmp_path / "x.ipynb", {}, 1.5).to_frame()
    assert report_row["html"].tolist() == [str(tmp_path / "x.html")] and report_row["seconds"].dtype == "float64"


def test_a_short_plain_repr(tmp_path: Path) -> None:
    """Each repr fits a line, and a control character from the data is shown as its escape."""
    url = "sqlite:///" + str(tmp_path / "a\x1b[31mred" / "r.db")
    with connect(url, create=True) as target:
        result = import_file(target, write_records(tmp_path / "a.csv", 12))
        report = verify(target, runs=1)
        for thing in (result, report, report.checks[0], status(target), plan_rollback(target, last_hours=1)):
            text = repr(thing)
            assert "\n" not in text and len(text) < 240 and "\x1b" not in text, text
        assert repr(result).startswith(f"<ImportResult {result.import_id} completed: 12 read, 12 inserted")
        assert repr(report).startswith("<VerifyReport PASSED: 12 of 12 checks passed")
        assert repr(list_backups(db=target)) == "<Backups: 0 backups>"
        assert "a\\x1b[31mred" in repr(report)  # the escape, as text
