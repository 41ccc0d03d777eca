"""Interactive users are not shown dead headless code (issue 9, point 14).

Each notebook runs two ways: a person drives its panels (`interactive=True`, in JupyterLab), or
papermill runs it from its parameters (`interactive=False`, `estateflow report`). Code that runs only
headless lives in cells of its own, tagged `headless`, whose whole body is `if not interactive:`,
and whose source JupyterLab keeps hidden (`jupyter.source_hidden`, the "..." of a collapsed input).
No cell a person sees holds code of the headless path: no `else:` after `if interactive:`, no
`if not interactive:`. The headless cells still run in every report (tests/test_reports.py).
"""

from __future__ import annotations

import ast
from pathlib import Path

import nbformat
import pytest
from nbformat import NotebookNode

from .conftest import ROOT

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
HEADLESS_TAG = "headless"


def _tests_interactive(test: ast.expr) -> bool:
    return any(isinstance(node, ast.Name) and node.id == "interactive" for node in ast.walk(test))


def _is_not_interactive(test: ast.expr) -> bool:
    return (
        isinstance(test, ast.UnaryOp)
        and isinstance(test.op, ast.Not)
        and isinstance(test.operand, ast.Name)
        and test.operand.id == "interactive"
    )


def headless_only(cell: NotebookNode) -> bool:
    """The cell's code is one `if not interactive:` without an else (its opening comment aside)."""
    body = ast.parse(cell.source).body
    return len(body) == 1 and isinstance(body[0], ast.If) and _is_not_interactive(body[0].test) and not body[0].orelse


def headless_code_shown(cell: NotebookNode) -> list[str]:
    """What of the headless path a person would see in this cell: each such branch's first line."""
    found = []
    for node in ast.walk(ast.parse(cell.source)):
        if isinstance(node, ast.If | ast.IfExp) and _tests_interactive(node.test):
            if _is_not_interactive(node.test):
                found.append(f"line {node.lineno}: if not interactive")
            elif node.orelse:
                found.append(f"line {node.lineno}: the else of if interactive")
    return found


def hidden(cell: NotebookNode) -> bool:
    return bool(cell.metadata.get("jupyter", {}).get("source_hidden"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_headless_code_is_in_hidden_cells_of_its_own(path: Path) -> None:
    nb = nbformat.read(str(path), as_version=4)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    for cell in code:
        tagged = HEADLESS_TAG in cell.metadata.get("tags", [])
        name = cell.source.splitlines()[0]
        if tagged or hidden(cell):
            assert tagged and hidden(cell), f"{name}: a headless cell is tagged {HEADLESS_TAG!r} and hidden"
            assert headless_only(cell), f"{name}: a hidden cell holds headless code only, under `if not interactive:`"
            assert name.startswith("# Headless (papermill"), name  # its one visible line says what it is
        else:
            shown = headless_code_shown(cell)
            assert not shown, f"{name}: headless code shown to a person: {shown}"


def test_every_notebook_with_a_headless_path_hides_it() -> None:
    """The notebooks whose headless run differs from the interactive one (the panels' notebooks)."""
    with_headless = {
        path.name
        for path in NOTEBOOKS
        if any(HEADLESS_TAG in c.metadata.get("tags", []) for c in nbformat.read(str(path), as_version=4).cells)
    }
    assert with_headless == {
        "01_progressive_ladder.ipynb",
        "03_explore_ratings_cities.ipynb",
        "04_rollback_and_backups.ipynb",
    }
    # The verification notebook runs its report the same both ways: its one interactive-only cell adds a panel.
    verification = nbformat.read(str(ROOT / "notebooks" / "02_verification_report.ipynb"), as_version=4)
    assert not any(headless_code_shown(c) for c in verification.cells if c.cell_type == "code")


def test_a_person_running_every_cell_runs_no_headless_code() -> None:
    """With `interactive` true each hidden cell does nothing at all: its code, run, defines and shows nothing."""
    for path in NOTEBOOKS:
        for cell in nbformat.read(str(path), as_version=4).cells:
            if cell.cell_type == "code" and hidden(cell):
                scope: dict[str, object] = {"interactive": True}
                exec(compile(cell.source, f"{path.name}: {cell.source.splitlines()[0]}", "exec"), scope)
                assert set(scope) == {"interactive", "__builtins__"}, f"{path.name}: {sorted(scope)}"
