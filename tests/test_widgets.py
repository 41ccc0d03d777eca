"""The notebook panels, driven in process: buttons pressed, database read back.

ipywidgets run without a kernel here; a button's `click()` calls its handlers just as a press in
JupyterLab does, and the outputs are the display data the browser would render.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from bs4 import BeautifulSoup

from estateflow_nb import connect, explore, verify
from estateflow_nb.widgets import ROLLBACK_MODULE, CityExplorer, LadderPanel, VerifyPanel, roll_back_last_import

from .conftest import count


def shown(output: Any) -> list[dict[str, Any]]:
    return [o["data"] for o in output.outputs]


def text_of(output: Any) -> str:
    return " ".join(
        BeautifulSoup(d["text/html"], "html.parser").get_text(" ") for d in shown(output) if "text/html" in d
    )


def pngs(output: Any) -> int:
    return sum("image/png" in d for d in shown(output))


@pytest.fixture
def panel(tmp_path: Path, db_url: str) -> LadderPanel:
    return LadderPanel(db=db_url, directory=str(tmp_path / "data"), runs=1)


def test_run_rung_imports_draws_and_moves_to_the_next_rung(panel: LadderPanel, db_url: str, tmp_path: Path) -> None:
    assert panel.file.value == str(tmp_path / "data" / "test-10.sql")
    panel.run_button.click()
    with connect(db_url) as target:
        assert count(target) == 10
    assert (panel.progress.value, panel.progress.max) == (10, 10)
    assert "batch 1: 10 of 10 records" in panel.progress_label.value
    assert [step.rung.name for step in panel.result.rungs] == ["test"]
    assert "test-10.sql" in text_of(panel.table) and pngs(panel.chart) == 1
    assert panel.file.value.endswith("small-100.sql")

    panel.run_button.click()
    with connect(db_url) as target:
        assert count(target) == 110
    small = panel.result.rungs[-1]
    assert small.verification is not None and small.verification.passed
    rows = BeautifulSoup(shown(panel.table)[0]["text/html"], "html.parser").select("tbody tr")
    cells = [[td.get_text() for td in row.find_all("td")] for row in rows]
    assert [(c[0], c[9]) for c in cells] == [("test", "-"), ("small", "yes")]  # rung, verified
    assert "import imp-" in text_of(panel.messages) and "verification: passed" in text_of(panel.messages)
    assert not any(button.disabled for button in (panel.run_button, panel.verify_button, panel.rollback_button))


def test_large_rung_needs_its_tick_and_a_dry_run_writes_nothing(panel: LadderPanel, db_url: str) -> None:
    panel.file.value = panel.ladder_files[3]  # large-10000.sql
    panel.run_button.click()
    assert "ConfirmationRequired: 10,000 records is a large import" in text_of(panel.messages)
    assert panel.result.rungs == []
    panel.dry_run.value = True
    panel.yes.value = True
    panel.batch_size.value = 2500
    panel.run_button.click()
    step = panel.result.rungs[-1]
    assert step.verdict == "dry run" and step.imported.batch_size == 2500 and step.imported.inserted == 10_000
    assert step.verification is None
    with connect(db_url) as target:
        assert count(target) == 0


def test_verify_marks_the_newest_rung_and_lists_the_checks(panel: LadderPanel) -> None:
    panel.run_button.click()  # the test rung is not verified by the ladder
    assert panel.result.rungs[-1].verification is None
    panel.verify_button.click()
    assert panel.result.rungs[-1].verification is not None
    assert "All verification checks passed." in text_of(panel.messages)
    assert "Total record count" in text_of(panel.messages)


def test_a_bad_database_url_is_a_message_not_a_traceback(panel: LadderPanel) -> None:
    panel.db.value = "postgres://elsewhere/db"
    panel.run_button.click()
    assert "EstateFlowError: unknown database URL 'postgres://elsewhere/db'" in text_of(panel.messages)


def test_roll_back_says_when_the_rollback_engine_is_not_in_this_build(
    panel: LadderPanel, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The rollback engine arrives on its own branch; without it the button explains and changes nothing.
    # (None in sys.modules is Python's own way to make an import fail as if the module did not exist.)
    monkeypatch.setitem(sys.modules, ROLLBACK_MODULE, None)
    panel.run_button.click()
    panel.rollback_confirm.value = True
    panel.rollback_button.click()
    assert "Rollback is not available in this build" in text_of(panel.messages)
    assert panel.rollback_confirm.value is False
    with connect(db_url) as target:
        assert count(target) == 10
        assert "Nothing was changed." in roll_back_last_import(target, confirm=True)


def test_verify_panel_shows_the_whole_report(explore_db: str) -> None:
    verify_panel = VerifyPanel(db=explore_db, runs=1)
    verify_panel.verify_button.click()
    text = text_of(verify_panel.report)
    assert "PASSED" in text and explore_db in text and "Import ledger" in text
    assert pngs(verify_panel.report) == 4


def test_city_explorer_follows_its_search_and_filter(explore_db: str) -> None:
    with connect(explore_db) as target:
        rows = explore.city_counts(target)
        engine = verify(target, benchmarks=False)
    explorer = CityExplorer(rows, top=50)
    cities = explore.cities(rows)
    assert f"{len(cities)} cities" in text_of(explorer.output) and pngs(explorer.output) == 2
    explorer.city.value = "SAN"
    table = BeautifulSoup(shown(explorer.output)[-1]["text/html"], "html.parser")
    names = [row.find("td").get_text() for row in table.select("tbody tr")]
    assert names and all("san" in name.casefold() for name in names)
    explorer.industry.value = "legal"
    legal = explore.cities(explore.filter_cities(rows, "san", "legal"))
    assert f"{len(legal)} cities where city contains 'SAN' and legal" in text_of(explorer.output)
    total = sum(c["count"] for c in explore.cities(explore.filter_cities(rows, "", "legal")))
    industries = next(c for c in engine.checks if c.name == "industries").observed
    assert total == next(r["count"] for r in industries if r["industry"] == "legal")
