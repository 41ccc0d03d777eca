"""The notebook panels, driven in process: buttons pressed, database read back.

ipywidgets run without a kernel here; a button's `click()` calls its handlers just as a press in
JupyterLab does, and the outputs are the display data the browser would render.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from bs4 import BeautifulSoup

from estateflow_nb import connect, explore, import_file, list_backups, rollback, verify, write_records
from estateflow_nb._look import passed_word, yes_no
from estateflow_nb.widgets import ExplorePanel, LadderPanel, RollbackPanel, VerifyPanel

from .conftest import count, snapshot, write_csv


def shown(output: Any) -> list[dict[str, Any]]:
    return [o["data"] for o in output.outputs]


shown_data = shown


def html_rows(data: dict[str, Any]) -> list[Any]:
    return list(BeautifulSoup(data["text/html"], "html.parser").select("tbody tr"))


def text_of(output: Any) -> str:
    return " ".join(
        BeautifulSoup(d["text/html"], "html.parser").get_text(" ") for d in shown(output) if "text/html" in d
    )


def pngs(output: Any) -> int:
    return sum("image/png" in d for d in shown(output))


def roll_back_a_changed_plan(tick: Any, button: Any, messages: Any, db: str, before: dict[str, Any]) -> None:
    """Tick and press after the database changed under the plan shown: refused, and nothing changed."""
    tick.value = True
    button.click()
    assert "the database changed since the plan was shown, so nothing was rolled back" in text_of(messages)
    with connect(db, create=True) as target:
        assert snapshot(target) == before


def ledger_statuses(target: Any) -> list[str]:
    return [row["status"] for row in target.query("SELECT status FROM ef_imports ORDER BY started_at, rowid")]


@pytest.fixture
def panel(tmp_path: Path, db_url: str) -> LadderPanel:
    return LadderPanel(db=db_url, directory=str(tmp_path / "data"), runs=1)


def test_run_rung_imports_draws_and_moves_to_the_next_rung(panel: LadderPanel, db_url: str, tmp_path: Path) -> None:
    assert panel.file.value == str(tmp_path / "data" / "test-10.sql")
    panel.run_button.click()
    with connect(db_url, create=True) as target:
        assert count(target) == 10
    assert (panel.progress.value, panel.progress.max) == (10, 10)
    assert "batch 1: 10 of 10 records" in panel.progress_label.value
    assert [step.rung.name for step in panel.result.rungs] == ["test"]
    assert "test-10.sql" in text_of(panel.table) and pngs(panel.chart) == 1
    assert panel.file.value.endswith("small-100.sql")

    panel.run_button.click()
    with connect(db_url, create=True) as target:
        assert count(target) == 110
    small = panel.result.rungs[-1]
    # The twelve checks pass; the verdict also holds the latency benchmarks, timed on this machine.
    assert small.verification is not None and all(c.passed for c in small.verification.checks)
    verified = small.verification.passed
    rows = BeautifulSoup(shown(panel.table)[0]["text/html"], "html.parser").select("tbody tr")
    cells = [[td.get_text() for td in row.find_all("td")] for row in rows]
    assert [(c[0], c[10]) for c in cells] == [("test", "-"), ("small", yes_no(verified))]  # rung, verified
    assert "import imp-" in text_of(panel.messages)
    assert f"verification: {passed_word(verified)}" in text_of(panel.messages)
    assert not any(button.disabled for button in (panel.run_button, panel.verify_button, panel.rollback_button))


def test_a_ladder_of_given_files_runs_them_in_order(tmp_path: Path, db_url: str) -> None:
    files = [str(write_records(tmp_path / "a.csv", 20)), str(write_records(tmp_path / "b.jsonl", 150, start=20))]
    panel = LadderPanel(db=db_url, directory=str(tmp_path / "data"), files=f"{files[0]}, {files[1]}", runs=1)
    assert panel.file.options == tuple(files) and panel.file.value == files[0]
    panel.run_button.click()
    assert panel.file.value == files[1]  # the test rung has no target rate and no verification: it passed
    panel.run_button.click()
    assert [(step.rung.name, step.file) for step in panel.result.rungs] == [("test", files[0]), ("small", files[1])]
    with connect(db_url, create=True) as target:
        assert count(target) == 170
    assert not (tmp_path / "data").exists()  # the generated ladder files were never needed


def test_large_rung_needs_its_tick_and_a_dry_run_writes_nothing(panel: LadderPanel, db_url: str) -> None:
    panel.file.value = panel.ladder_files[3]  # large-10000.sql
    panel.run_button.click()
    assert "ConfirmationRequired: 10,000 records is a large import" in text_of(panel.messages)
    assert panel.progress_label.value == ""  # nothing is importing: no stale "importing large-10000.sql"
    assert panel.result.rungs == []
    panel.dry_run.value = True
    panel.yes.value = True
    panel.batch_size.value = 2500
    panel.run_button.click()
    step = panel.result.rungs[-1]
    assert step.verdict == "dry run" and step.imported.batch_size == 2500 and step.imported.inserted == 10_000
    assert step.verification is None
    with connect(db_url, create=True) as target:
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


def test_roll_back_last_import_shows_the_plan_and_acts_only_with_the_tick(
    panel: LadderPanel, db_url: str, tmp_path: Path
) -> None:
    panel.run_button.click()
    panel.run_button.click()  # the test rung, then the small one: 110 rows
    small = panel.result.rungs[-1].imported.import_id
    with connect(db_url, create=True) as target:
        before = snapshot(target)
        plan = rollback(target, import_id=small, dry_run=True)
    assert plan.rows_removed == 100

    panel.rollback_button.click()  # unticked: the plan, nothing else
    shown = text_of(panel.messages)
    assert f"rolling back import {small} would change this (nothing was changed)" in shown
    assert "removes 100 rows" in shown and "Tick 'really roll back' and press again" in shown
    assert all(line.strip() in shown for line in plan.plan().splitlines())
    # The plan as tables and a chart, as the rollback notebook shows it.
    assert "PLAN ONLY" in shown and pngs(panel.messages) == 1
    rows_table = next(d for d in shown_data(panel.messages) if "restored</th>" in d.get("text/html", ""))
    assert [[td.get_text() for td in row.find_all("td")] for row in html_rows(rows_table)] == [
        [r["industry"], r["state"], f"{r['removed']:,}", f"{r['restored']:,}"] for r in plan.by_industry_state
    ]
    with connect(db_url, create=True) as target:
        assert snapshot(target) == before and ledger_statuses(target) == ["completed", "completed"]
    assert not list_backups(backups_dir=tmp_path / "backups")

    panel.rollback_confirm.value = True
    panel.rollback_button.click()  # ticked, after the plan: that plan is carried out
    assert panel.rollback_confirm.value is False
    shown = text_of(panel.messages)
    assert f"Rolled back import {small}" in shown and "removed 100 rows" in shown
    (taken,) = list_backups(backups_dir=tmp_path / "backups")
    assert f"backup taken before: {taken.path}" in shown and taken.rows == 110
    with connect(db_url, create=True) as target:
        assert count(target) == 10 and ledger_statuses(target) == ["completed", "rolled_back"]
        assert count(target, "SELECT COUNT(*) FROM professionals WHERE import_id = ?", (small,)) == 0
    # The rung table follows the ledger: the undone rung says so.
    verdicts = [row.find_all("td")[-1].get_text() for row in html_rows(shown_data(panel.table)[0])]
    assert verdicts[1] == "rolled back" and verdicts[0] in ("pass", "nothing new")


def test_the_tick_alone_never_rolls_back_what_was_not_shown(panel: LadderPanel, db_url: str, tmp_path: Path) -> None:
    panel.run_button.click()
    panel.rollback_confirm.value = True
    panel.rollback_button.click()  # ticked before any plan: the plan is shown, nothing done
    assert "Not rolled back: the plan below had not been shown yet" in text_of(panel.messages)
    assert panel.rollback_confirm.value is False
    panel.run_button.click()  # a new rung: the plan shown was about an import that is no longer the last
    panel.rollback_confirm.value = True
    panel.rollback_button.click()
    assert "Not rolled back" in text_of(panel.messages)
    with connect(db_url, create=True) as target:
        assert count(target) == 110 and ledger_statuses(target) == ["completed", "completed"]
        newest = panel.result.rungs[-1].imported.import_id
        # Plan shown, then the database changes under it (an import updates the planned rows): refused.
        assert f"rolling back import {newest}" in text_of(panel.messages)
        records = target.query("SELECT * FROM professionals WHERE import_id = ? LIMIT 10", (newest,))
        import_file(
            target,
            write_csv(tmp_path / "moved.csv", [{**r, "city": "Key West"} for r in records]),
            on_conflict="update",
        )
        before = snapshot(target)
    roll_back_a_changed_plan(panel.rollback_confirm, panel.rollback_button, panel.messages, db_url, before)
    assert not list_backups(backups_dir=tmp_path / "backups")


# --- the rollback panel ---------------------------------------------------------------------------


def test_rollback_panel_plans_first_and_rolls_back_only_with_the_tick(
    two_imports: tuple[str, str, str], tmp_path: Path
) -> None:
    url, first, second = two_imports
    backups = tmp_path / "kept"
    rollback_panel = RollbackPanel(db=url, import_id=second, backups_dir=str(backups))
    assert rollback_panel.strategy.value == "import_id" and rollback_panel.import_id.options == (second, first)
    assert rollback_panel.confirm.disabled and rollback_panel.rollback_button.disabled
    with connect(url, create=True) as target:
        before = snapshot(target)
        plan = rollback(target, import_id=second, dry_run=True)
    assert (plan.rows_removed, plan.rows_restored) == (20, 10)

    rollback_panel.rollback_button.click()  # no plan yet
    assert "Press Plan first" in text_of(rollback_panel.messages)
    rollback_panel.plan_button.click()
    assert "Plan only: nothing was changed." in text_of(rollback_panel.messages)
    header = BeautifulSoup(shown(rollback_panel.output)[0]["text/html"], "html.parser")
    assert header.select_one(".ef-verdict").get_text(strip=True) == "PLAN ONLY"
    rows_table = next(d for d in shown(rollback_panel.output) if "restored</th>" in d.get("text/html", ""))
    rows = BeautifulSoup(rows_table["text/html"], "html.parser").select("tbody tr")
    assert [[td.get_text() for td in row.find_all("td")] for row in rows] == [
        [r["industry"], r["state"], f"{r['removed']:,}", f"{r['restored']:,}"] for r in plan.by_industry_state
    ]
    assert pngs(rollback_panel.output) == 1
    assert not rollback_panel.confirm.disabled and rollback_panel.rollback_button.disabled

    rollback_panel.rollback_button.click()  # a plan, but no tick
    assert "Tick the box to confirm the plan first: nothing was changed." in text_of(rollback_panel.messages)
    rollback_panel.confirm.value = True
    assert not rollback_panel.rollback_button.disabled
    rollback_panel.strategy.value = "last_hours"  # another choice withdraws the plan and the tick
    assert rollback_panel.confirm.value is False and rollback_panel.confirm.disabled
    rollback_panel.confirm.value = True
    rollback_panel.rollback_button.click()
    assert "Press Plan first" in text_of(rollback_panel.messages)
    with connect(url, create=True) as target:
        assert snapshot(target) == before
    assert not backups.exists()

    rollback_panel.strategy.value = "import_id"
    rollback_panel.plan_button.click()
    rollback_panel.confirm.value = True
    rollback_panel.rollback_button.click()
    assert f"Rolled back import {second}" in text_of(rollback_panel.messages)
    assert "ROLLED BACK" in text_of(rollback_panel.output) and "The import ledger now" in text_of(rollback_panel.output)
    assert rollback_panel.confirm.value is False and rollback_panel.rollback_button.disabled
    assert rollback_panel.import_id.options == (first,)
    (taken,) = list_backups(backups_dir=backups)
    assert taken.rows == 60
    with connect(url, create=True) as target:
        assert count(target) == 40 and count(target, "SELECT COUNT(*) FROM professionals WHERE city = 'Key West'") == 0
        assert ledger_statuses(target) == ["completed", "rolled_back"]
        assert set(snapshot(target)) < set(before)


def test_rollback_panel_refuses_a_plan_the_database_no_longer_gives(
    two_imports: tuple[str, str, str], tmp_path: Path
) -> None:
    url, _first, _second = two_imports
    rollback_panel = RollbackPanel(db=url, last_hours=1, backups_dir=str(tmp_path / "kept"))
    assert rollback_panel.strategy.value == "last_hours" and rollback_panel.last_hours.value == 1
    rollback_panel.plan_button.click()
    assert "imports started in the last 1 hours" in text_of(rollback_panel.output)
    with connect(url, create=True) as target:
        import_file(target, write_records(tmp_path / "c.csv", 5, start=500))  # a third import, in the window
        before = snapshot(target)
    panel = rollback_panel
    roll_back_a_changed_plan(panel.confirm, panel.rollback_button, panel.messages, url, before)
    assert not (tmp_path / "kept").exists()
    rollback_panel.strategy.value = "since/until"
    rollback_panel.plan_button.click()
    assert "give a date 'from' or 'to'" in text_of(rollback_panel.messages)


def test_verify_panel_shows_the_whole_report(explore_db: str) -> None:
    verify_panel = VerifyPanel(db=explore_db, runs=1)
    verify_panel.verify_button.click()
    text = text_of(verify_panel.report)
    # The explore database rejected one record of 150, under the 1% limit: a warning, not a failure.
    assert "PASSED WITH WARNINGS" in text and explore_db.removeprefix("sqlite:///") in text
    assert "Import ledger" in text and "Rejected records" in text and "rejects.csv" in text
    assert pngs(verify_panel.report) >= 4  # latency, distributions, ratings, cities (and the history)


def test_a_panel_shows_any_error_as_one_red_line_with_its_details(
    explore_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An error nobody foresaw (injected: no real part fails so on demand) is a red line in the panel,
    with the traceback a click away; one the user caused has no traceback to show."""
    verify_panel = VerifyPanel(db=explore_db, runs=1)

    def broken(*_args: Any, **_kwargs: Any) -> None:
        raise ZeroDivisionError("a figure divided by zero")

    monkeypatch.setattr("estateflow_nb.widgets.verify", broken)
    verify_panel.verify_button.click()
    (data,) = shown(verify_panel.report)
    soup = BeautifulSoup(data["text/html"], "html.parser")
    line = soup.select_one(".ef-error pre")
    assert line is not None and line.get_text() == "ZeroDivisionError: a figure divided by zero"
    details = soup.select_one("details.ef-details pre")
    assert details is not None and "Traceback" in details.get_text() and "broken" in details.get_text()
    assert not verify_panel.verify_button.disabled
    monkeypatch.undo()
    verify_panel.db.value = "nowhere/at/all.db"
    assert verify_panel.where.value.startswith("= sqlite:////")  # the absolute path it names
    verify_panel.verify_button.click()
    soup = BeautifulSoup(shown(verify_panel.report)[0]["text/html"], "html.parser")
    assert soup.select_one(".ef-error pre").get_text().startswith("NoDatabaseError: no database at /")
    assert soup.select_one("details") is None


def test_explore_panel_filters_every_section(explore_db: str) -> None:
    with connect(explore_db, create=True) as target:
        rows = explore.city_counts(target)
        engine = verify(target, benchmarks=False, history=False)
    explorer = ExplorePanel(db=explore_db, top=50)
    cities = explore.cities(rows)
    assert f"{len(cities)} cities" in text_of(explorer.output) and pngs(explorer.output) == 4
    assert "Filter none: every professional" in " ".join(text_of(explorer.output).split())
    explorer.city.value = "SAN"
    table = BeautifulSoup(shown(explorer.output)[-1]["text/html"], "html.parser")
    names = [row.find("td").get_text() for row in table.select("tbody tr")]
    assert names and all("san" in name.casefold() for name in names)
    explorer.industry.value = "legal"
    legal = explore.cities(explore.filter_cities(rows, "san", "legal"))
    text = " ".join(text_of(explorer.output).split())
    assert f"{len(legal)} cities" in text and "Filter city contains 'SAN' and legal (every section)" in text
    total = sum(c["count"] for c in explore.cities(explore.filter_cities(rows, "", "legal")))
    industries = engine.check("industries").observed
    assert total == next(r["count"] for r in industries if r["industry"] == "legal")
