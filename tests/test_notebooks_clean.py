"""Committed notebooks carry no outputs, no papermill or widget state, and a documented parameters cell."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import nbformat
import papermill
import pytest

from estateflow_nb.reports import KERNEL_NAME, REPORTS

from .conftest import ROOT

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
EXTRA_KEYS = "metadata.papermill cell.metadata.papermill"


def test_every_notebook_is_a_report() -> None:
    assert [p.name for p in NOTEBOOKS] == sorted(REPORTS.values())


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_committed_clean(path: Path) -> None:
    nb = nbformat.read(str(path), as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.kernelspec.name == KERNEL_NAME
    assert not {"papermill", "widgets"} & set(nb.metadata), "notebook metadata from a run"
    for cell in nb.cells:
        assert not {"papermill", "execution", "collapsed", "scrolled"} & set(cell.metadata), cell.source[:60]
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"outputs in {cell.source[:60]!r}"
            # A failing report names the cell by its first line: every code cell says what it does.
            assert cell.source.startswith("# "), f"code cell without its opening comment: {cell.source[:60]!r}"


def test_the_contributors_filter_would_change_nothing(tmp_path: Path) -> None:
    """nbstripout, as `make hooks` sets it up for git, leaves every committed notebook byte for byte."""
    copies = []
    for path in NOTEBOOKS:
        copies.append(tmp_path / path.name)
        copies[-1].write_bytes(path.read_bytes())
    subprocess.run([sys.executable, "-m", "nbstripout", "--extra-keys", EXTRA_KEYS, *copies], check=True)
    for path, copy in zip(NOTEBOOKS, copies, strict=True):
        assert copy.read_bytes() == path.read_bytes(), f"{path.name} has something nbstripout strips"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_parameters_cell_is_typed_and_documented(path: Path) -> None:
    nb = nbformat.read(str(path), as_version=4)
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1
    tree = ast.parse(tagged[0].source)
    assert all(isinstance(node, ast.AnnAssign) for node in tree.body), "every parameter has a type annotation"
    parameters = papermill.inspect_notebook(str(path))
    names = list(parameters)
    assert names[0] == "db" and names[-1] == "interactive"
    assert parameters["interactive"]["inferred_type_name"] == "bool" and parameters["interactive"]["default"] == "True"
    for name, parameter in parameters.items():
        assert parameter["inferred_type_name"] in ("str", "int", "float", "bool"), name
        assert len(parameter["help"]) > 15, f"{name} has no help comment"
        assert not any(word in name for word in ("secret", "token", "password", "key")), name


def test_papermill_documents_the_parameters() -> None:
    done = subprocess.run(
        [Path(sys.executable).parent / "papermill", "--help-notebook", str(ROOT / "notebooks" / REPORTS["ladder"])],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "interactive: bool (default True)" in done.stdout
    assert "batch_size: int (default 0)" in done.stdout and "records per batch" in done.stdout


def test_git_strips_notebooks_for_contributors() -> None:
    attributes = (ROOT / ".gitattributes").read_text(encoding="utf-8").splitlines()
    assert "*.ipynb filter=nbstripout" in attributes
    assert "nbstripout --install" in (ROOT / "Makefile").read_text(encoding="utf-8")
