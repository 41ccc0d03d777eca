"""How results look: one set of colours, marks and verdict words for terminal, tables, figures, panels."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from bs4 import BeautifulSoup

from estateflow_nb import LadderResult, connect, import_file, run_rung, verify, write_records
from estateflow_nb._look import FAIL_COLOUR, FAIL_MARK, PASS_COLOUR, PASS_MARK, cell_style, outcome_of
from estateflow_nb.views import checks_table, ladder_header, rung_table


@pytest.mark.parametrize(
    ("text", "outcome"),
    [
        (PASS_MARK, "pass"),
        (FAIL_MARK, "fail"),
        ("pass", "pass"),
        ("yes", "pass"),
        ("NO", "fail"),
        ("FAIL", "fail"),
        ("failed", "fail"),
        ("import failed", "fail"),
        ("verification failed", "fail"),
        ("below target", "fail"),
        ("completed", "neutral"),
        ("rolled_back", "neutral"),
        ("dry run", "neutral"),
        ("-", "neutral"),
    ],
)
def test_a_cell_says_pass_fail_or_neither(text: str, outcome: str) -> None:
    assert outcome_of(text) == outcome
    colour = {"pass": PASS_COLOUR, "fail": FAIL_COLOUR}.get(outcome)
    assert cell_style(text) == ("" if colour is None else f"color: {colour}; font-weight: bold")


def cell_colours(html: str) -> list[tuple[str, str | None]]:
    """(text, CSS colour or None) of every body cell of a Styler's HTML."""
    soup = BeautifulSoup(html, "html.parser")
    colours: dict[str, str] = {}
    for selectors, rules in re.findall(r"([^{}]+)\{([^}]*)\}", soup.style.get_text() if soup.style else ""):
        colour = re.search(r"color: (#[0-9a-f]{6})", rules)
        for selector in selectors.split(","):
            if colour:
                colours[selector.strip().lstrip("#")] = colour.group(1)
    return [(cell.get_text(), colours.get(str(cell["id"]))) for cell in soup.select("tbody td")]


def test_the_checks_table_colours_its_marks(tmp_path: Path) -> None:
    with connect(f"sqlite:///{tmp_path / 'db.sqlite'}", create=True) as target:
        import_file(target, write_records(tmp_path / "p.csv", 30))
        report = verify(target, benchmarks=False)
    report.check("email_format").passed = False  # as if it had failed
    marks = [(text, colour) for text, colour in cell_colours(checks_table(report).to_html()) if "\u00a0" in text]
    assert marks == [(PASS_MARK, PASS_COLOUR)] * 4 + [(FAIL_MARK, FAIL_COLOUR)] + [(PASS_MARK, PASS_COLOUR)] * 7


def test_a_dry_run_ladder_is_neither_passed_nor_failed(tmp_path: Path) -> None:
    with connect(f"sqlite:///{tmp_path / 'db.sqlite'}", create=True) as target:
        step = run_rung(target, write_records(tmp_path / "p.csv", 20), dry_run=True)
    header = BeautifulSoup(ladder_header(LadderResult([step]), "here").data, "html.parser")
    box = header.select_one(".ef-verdict")
    assert box is not None and box.get_text() == "DRY RUN" and FAIL_COLOUR not in str(box)
    table = BeautifulSoup(rung_table(LadderResult([step])).to_html(), "html.parser")
    assert [td.get_text() for td in table.select("tbody td")][-2:] == ["-", "dry run"]
