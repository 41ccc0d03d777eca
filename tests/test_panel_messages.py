"""A message during a long operation says what is running, and goes when it is done (issue 9, point 14).

What the panel shows is read *during* the operation, with no sleeps and no timing: the SQLite
connection the panel's engine works through calls back for every statement it runs
(`sqlite3.Connection.set_trace_callback`), and that callback notes the panel's message and progress
line at that moment. So each statement of the import, the verification or the rollback is seen
together with what the person was being told while it ran.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ipywidgets as w
from bs4 import BeautifulSoup

from estateflow_nb import write_records
from estateflow_nb._panel import DatabasePanel
from estateflow_nb.targets import SQLiteTarget
from estateflow_nb.widgets import ClimbPanel, LadderPanel, RollbackPanel, VerifyPanel

from .test_widgets import text_of


@dataclass
class Seen:
    """One statement the engine ran, and what the panel showed while it ran."""

    sql: str
    message: str
    progress: str


def _text(outputs: tuple[dict[str, Any], ...], cache: dict[int, str]) -> str:
    if id(outputs) not in cache:
        cache[id(outputs)] = " ".join(
            BeautifulSoup(o["data"]["text/html"], "html.parser").get_text(" ")
            for o in outputs
            if "text/html" in o["data"]
        )
    return cache[id(outputs)]


@contextmanager
def watching(panel: DatabasePanel, messages: w.Output, progress: w.Label | None = None) -> Iterator[list[Seen]]:
    """Every statement run on the panel's database meanwhile, with the panel's message and progress
    line as they were when it ran."""
    target = panel.target
    assert isinstance(target, SQLiteTarget)
    # The outputs are kept as they were (a tuple, replaced whenever the panel says something new),
    # and read after: parsing HTML for each statement would slow the import it watches.
    raw: list[tuple[str, tuple[dict[str, Any], ...], str]] = []
    target._conn.set_trace_callback(
        lambda sql: raw.append((sql, messages.outputs, progress.value if progress is not None else ""))
    )
    seen: list[Seen] = []
    try:
        yield seen
    finally:
        target._conn.set_trace_callback(None)
    cache: dict[int, str] = {}
    seen += [Seen(sql, _text(outputs, cache), line) for sql, outputs, line in raw]


def during(seen: list[Seen], start: str) -> list[Seen]:
    found = [s for s in seen if s.sql.lstrip().startswith(start)]
    assert found, f"no statement starting {start!r} ran"
    return found


def test_the_ladder_says_which_file_it_imports_and_verifies_while_it_does(tmp_path: Path) -> None:
    source = write_records(tmp_path / "agents.csv", 150)  # the small rung: imported, then verified
    panel = LadderPanel(db=f"sqlite:///{tmp_path / 'l.db'}", files=str(source), runs=1)
    with watching(panel, panel.messages, panel.progress_label) as seen:
        panel.run_button.click()
    said = f"importing {source}, then verifying"
    writes = during(seen, "INSERT INTO professionals")
    assert all(s.message.startswith(said) for s in writes), {s.message for s in writes}
    # Before any batch is done the progress line names the file; then it counts the batches.
    assert writes[0].progress == "importing agents.csv"
    assert writes[-1].progress.startswith("batch ") and "of 150 records" in writes[-1].progress
    (recorded,) = during(seen, "INSERT INTO ef_verifications")  # the verification after the import
    assert recorded.message.startswith(said)
    # Done: the message says how it went, and nothing says it is still importing.
    assert "importing" not in text_of(panel.messages) and "rung verdict: pass" in text_of(panel.messages)
    assert not panel.progress_label.value.startswith("importing")

    with watching(panel, panel.messages, panel.progress_label) as seen:
        panel.verify_button.click()
    (recorded,) = during(seen, "INSERT INTO ef_verifications")
    assert recorded.message.startswith("verifying: the twelve checks") and recorded.progress == ""
    assert "verifying:" not in text_of(panel.messages) and "verification checks passed" in text_of(panel.messages)


def test_a_climb_says_which_file_it_climbs_while_it_does_and_clears_its_progress(tmp_path: Path) -> None:
    source = write_records(tmp_path / "agents.csv", 60)
    panel = ClimbPanel(db=f"sqlite:///{tmp_path / 'c.db'}", file=str(source), rungs="10", runs=1)
    with watching(panel, panel.messages, panel.progress_label) as seen:
        panel.run_button.click()
    said = f"climbing {source}: the next rung, then its verification"
    writes = during(seen, "INSERT INTO professionals")
    assert all(s.message.startswith(said) for s in writes)
    (recorded,) = during(seen, "INSERT INTO ef_verifications")
    assert recorded.message.startswith(said) and recorded.progress.startswith("batch 1: 10 of 10 records")
    assert "climbing" not in text_of(panel.messages) and "rung 1 (records 1 to 10)" in text_of(panel.messages)
    assert (panel.progress.value, panel.progress_label.value) == (0, "")  # no stale "batch 1: 10 of 10"


def test_a_rollback_says_it_is_rolling_back_while_it_does(two_imports: tuple[str, str, str], tmp_path: Path) -> None:
    url, _first, second = two_imports
    panel = RollbackPanel(db=url, import_id=second, backups_dir=str(tmp_path / "kept"))
    panel.plan_button.click()
    panel.confirm.value = True
    with watching(panel, panel.messages) as seen:
        panel.rollback_button.click()
    said = "rolling back the plan shown: a backup first, then one transaction"
    removed = during(seen, "DELETE FROM professionals")
    assert all(s.message.startswith(said) for s in removed)
    assert said not in text_of(panel.messages) and f"Rolled back import {second}" in text_of(panel.messages)


def test_a_verification_says_which_database_it_verifies_while_it_does(explore_db: str) -> None:
    panel = VerifyPanel(db=explore_db, runs=1)
    with watching(panel, panel.report) as seen:
        panel.verify_button.click()
    said = f"verifying {panel.target.url} ..."
    (recorded,) = during(seen, "INSERT INTO ef_verifications")
    assert recorded.message == said
    assert said not in text_of(panel.report)
    assert "Total record count" in text_of(panel.report)
