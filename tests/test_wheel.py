"""A plain install of the wheel, no `make` and no checkout, gives a working `estateflow report`: the
notebooks and templates ship inside it, and the report's kernel is registered when it is missing.

The wheel is built from a copy of what it is made of (so nothing is written into the checkout) and
installed with `--no-deps` into a fresh virtual environment, which finds its dependencies (pandas,
matplotlib, papermill, ...) in this environment's libraries through a path file: the same libraries
at the same versions, without downloading them again. Only nbconvert's own data (its base HTML
templates, which pip puts under the environment's `share/`) is linked in too. The environment's
estateflow_nb is the wheel's, its kernel is registered in the environment's own prefix by the
first report, and the report runs outside any checkout, with no PYTHONPATH.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import nbformat
import pytest

from estateflow_nb import connect, import_file, write_records

from .conftest import ROOT
from .report_reading import find, header_facts, html_outputs, verdict

# What the wheel is built from.
SOURCES = ("pyproject.toml", "README.md", "estateflow_nb", "notebooks")


@pytest.fixture(scope="session")
def fresh_install(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with the wheel installed: its folder."""
    folder = tmp_path_factory.mktemp("wheel")
    source = folder / "source"
    source.mkdir()
    for name in SOURCES:
        copy = shutil.copytree if (ROOT / name).is_dir() else shutil.copy
        copy(ROOT / name, source / name)  # type: ignore[operator]
    for cache in source.rglob("__pycache__"):
        shutil.rmtree(cache)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    # Built as pip builds any package: setuptools from the package registry (or pip's cache), in isolation.
    subprocess.run([*pip, "wheel", "--no-deps", "-w", str(folder / "dist"), str(source)], check=True)
    (wheel,) = (folder / "dist").glob("estateflow_nb-*.whl")
    venv = folder / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    Path(purelib, "estateflow-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    (venv / "share" / "jupyter").mkdir(parents=True)
    (venv / "share" / "jupyter" / "nbconvert").symlink_to(Path(sys.prefix) / "share" / "jupyter" / "nbconvert")
    subprocess.run([*pip, "--python", str(python), "install", "--no-deps", str(wheel)], check=True)
    return venv


def test_a_report_from_the_installed_wheel(fresh_install: Path, tmp_path: Path) -> None:
    python = fresh_install / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "ESTATEFLOW_HOME", "ESTATEFLOW_DB")}
    env |= {"IPYTHONDIR": str(tmp_path / "ipython"), "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")}
    where = subprocess.run(
        [
            str(python),
            "-c",
            "import estateflow_nb.reports as r; print(r.__file__, r.NOTEBOOKS_DIR, r.CHECKOUT)",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        check=True,
    ).stdout.split()
    # The wheel's package and notebooks, not the checkout's.
    assert all(Path(p).is_relative_to(fresh_install) for p in where[:2]) and where[2] == "False", where
    assert (Path(where[1]) / "02_verification_report.ipynb").is_file()

    db = tmp_path / "data" / "wheel.db"
    with connect(f"sqlite:///{db}", create=True) as target:
        import_file(target, write_records(tmp_path / "p.csv", 150))
    done = subprocess.run(
        [
            str(fresh_install / "bin" / "estateflow"),
            "report",
            "verification",
            "--db",
            "data/wheel.db",
            "-p",
            "runs",
            "1",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,  # no pyproject.toml from here up: relative paths are the working folder's
    )
    assert done.returncode == 0, done.stderr
    html = Path(done.stdout.strip().splitlines()[-1])
    assert html.parent == tmp_path / "reports" and html.is_file()
    spec = json.loads((fresh_install / "share" / "jupyter" / "kernels" / "estateflow" / "kernel.json").read_text())
    assert spec["argv"][0] == str(python)  # registered for the fresh environment by the report itself
    notebook = nbformat.read(str(html.with_suffix(".ipynb")), as_version=4)
    assert Path(notebook.metadata.papermill.input_path).is_relative_to(fresh_install)
    header = find(html_outputs(html.with_suffix(".ipynb")), ".ef-report-header")
    assert verdict(header) in ("PASSED", "FAILED") and header_facts(header)["Database"] == str(db)
