"""Climbing one file in notebook 01: the panel (any file, the plan, Run next rung, its table, rejects and
verification, Undo rung, go on), and headless, `estateflow report ladder -p file PATH`."""

from __future__ import annotations

from pathlib import Path

from bs4 import BeautifulSoup

from estateflow_nb import connect
from estateflow_nb.reports import run_report
from estateflow_nb.widgets import ClimbPanel

from .conftest import count, invoke, ledger_balances
from .report_reading import find, header_facts, html_outputs, images, table_rows, tables_with, verdict
from .test_climb import with_bad
from .test_widgets import html_rows, shown, text_of


def test_the_panel_plans_climbs_undoes_and_goes_on(tmp_path: Path) -> None:
    source = with_bad(tmp_path / "agents.csv", 400, range(200, 210))  # 10 of rung 3's 290: 3.4%
    url = f"sqlite:///{tmp_path / 'climb.db'}"
    panel = ClimbPanel(db=url, file=str(source), rungs="10,100", runs=1)
    panel.plan_button.click()
    (plan,) = [d for d in shown(panel.plan) if "ef-climb-plan" in d.get("text/html", "")]
    rows = [[td.get_text(strip=True) for td in row.select("td")] for row in html_rows(plan)]
    assert [r[:3] for r in rows] == [["1", "1 to 10", "10"], ["2", "11 to 110", "100"], ["3", "111 to 400", "290"]]
    assert rows[2][5] == "10 (3.4%) (over the limit)"
    with connect(url) as target:
        assert count(target, "SELECT COUNT(*) FROM ef_imports") == 0  # planning writes nothing

    panel.run_button.click()
    panel.run_button.click()
    assert "rung 2 (records 11 to 110): 100 records" in text_of(panel.messages)
    (table,) = [d for d in shown(panel.table) if "text/html" in d]
    assert [row.select("td")[1].get_text() for row in html_rows(table)] == ["1 to 10", "11 to 110"]
    assert "Verification after rung 2: passed" in text_of(panel.details)
    assert sum("image/png" in d for d in shown(panel.chart)) == 1

    panel.undo_button.click()  # the plan of undoing rung 2 first; nothing undone
    assert "Tick 'really undo'" in text_of(panel.messages)
    with connect(url) as target:
        assert count(target) == 110
    panel.undo_confirm.value = True
    panel.undo_button.click()
    with connect(url) as target:
        assert count(target) == 10 and ledger_balances(target)
    (table,) = [d for d in shown(panel.table) if "text/html" in d]
    assert [row.select("td")[-2].get_text() for row in html_rows(table)] == ["pass", "rolled back"]

    panel.run_button.click()  # rung 2 again, then rung 3, which fails and is undone
    panel.run_button.click()
    with connect(url) as target:
        assert count(target) == 110
    said = text_of(panel.messages)
    assert "rung 3 (records 111 to 400)" in said and "Next" not in said and "fix records 111 to 400" in said
    details = text_of(panel.details)
    assert "10 of its 290 records (3.4%) were rejected" in details and "Undone: import" in details
    (table,) = [d for d in shown(panel.table) if "text/html" in d]
    assert [row.select("td")[-2].get_text() for row in html_rows(table)] == [
        "pass",
        "rolled back",
        "pass",
        "undone: too many rejects",
    ]


def test_the_headless_report_climbs_the_file_and_a_failed_rung_fails_it(tmp_path: Path) -> None:
    source = with_bad(tmp_path / "agents.csv", 400, range(200, 210))
    db = f"sqlite:///{tmp_path / 'climb.db'}"
    args = ["report", "ladder", "--db", db, "-p", "file", str(source), "-p", "rungs", "10,100", "-p", "runs", "1"]
    done = invoke(*args, "--out-dir", str(tmp_path / "reports"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    soups = html_outputs(Path(done.stdout.strip().splitlines()[-1]).with_suffix(".ipynb"))
    header = find(soups, ".ef-report-header")
    facts = header_facts(header)
    assert verdict(header) == "FAILED"
    assert facts["Failed"].startswith("rung 3: 10 of its 290 records (3.4%) were rejected, over the limit of 1%")
    assert facts["Next"].startswith("fix records 111 to 400 of ") and facts["Rungs"] == "1, 2, 3"
    (rungs,) = tables_with(soups, "rung")
    assert [(r[0], r[1], r[-2]) for r in table_rows(rungs)] == [
        ("1", "1 to 10", "pass"),
        ("2", "11 to 110", "pass"),
        ("3", "111 to 400", "undone: too many rejects"),
    ]
    failure = find(soups, ".ef-climb-failure").get_text(" ", strip=True)
    assert "reasons: 10 x email is not a valid address" in failure and "Undone: import" in failure
    assert len(images(Path(done.stdout.strip().splitlines()[-1]).with_suffix(".ipynb"))) == 1
    with connect(db) as target:
        assert count(target) == 110

    with_bad(source, 400, range(0))  # fixed: the same report goes on after rung 2, and passes
    result = run_report(
        "ladder", db=db, parameters={"file": str(source), "rungs": "10,100", "runs": "1"}, out_dir=tmp_path / "r"
    )
    soups = html_outputs(result.notebook)
    header = find(soups, ".ef-report-header")
    assert verdict(header) == "LADDER PASSED" and header_facts(header)["Rungs"] == "3"
    assert "changed since rung 2 passed" in header_facts(header)["File changed"]
    assert find(soups, ".ef-climb-passed").get_text(strip=True) == "No rung failed."
    rungs_list = BeautifulSoup(str(find(soups, ".ef-climb-rungs")), "html.parser").get_text(" ", strip=True)
    assert rungs_list.startswith("rung 3 (records 111 to 400): 290 records")
    with connect(db) as target:
        assert count(target) == 400 and ledger_balances(target)
