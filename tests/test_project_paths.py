"""The same relative database path means the same file from the project root and from `notebooks/`
(where JupyterLab starts its kernels): relative SQLite paths start at the project root, the folder
holding pyproject.toml, or at ESTATEFLOW_HOME when it is set; the absolute path is what is shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from estateflow_nb import NoDatabaseError, connect, describe_url, import_file, project_root, resolve_url, write_records
from estateflow_nb.widgets import VerifyPanel


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project folder (with its pyproject.toml) and its notebooks/ folder, no ESTATEFLOW_HOME."""
    root = tmp_path / "project"
    (root / "notebooks").mkdir(parents=True)
    (root / "pyproject.toml").write_text("[project]\nname = 'mine'\n", encoding="utf-8")
    monkeypatch.delenv("ESTATEFLOW_HOME", raising=False)
    monkeypatch.delenv("ESTATEFLOW_DB", raising=False)
    return root


def test_a_relative_path_means_the_same_file_from_the_root_and_from_notebooks(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = f"sqlite:///{project / 'data' / 'x.db'}"
    answers = []
    for folder in (project, project / "notebooks"):
        monkeypatch.chdir(folder)
        assert project_root() == project
        answers += [resolve_url("sqlite:///data/x.db"), resolve_url("data/x.db")]
    assert answers == [expected] * 4
    monkeypatch.chdir(project / "notebooks")
    assert resolve_url() == f"sqlite:///{project / 'data' / 'estateflow.db'}"  # the default, too
    assert resolve_url("sqlite:////elsewhere/y.db") == "sqlite:////elsewhere/y.db"  # absolute stays


def test_a_database_made_from_the_root_is_found_from_notebooks(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(project)
    with connect("sqlite:///data/x.db", create=True) as target:
        import_file(target, write_records(project / "p.csv", 12))
        assert target.url == f"sqlite:///{project / 'data' / 'x.db'}"
    monkeypatch.chdir(project / "notebooks")
    with connect("sqlite:///data/x.db") as target:
        assert target.scalar("SELECT COUNT(*) FROM professionals") == 12
    with pytest.raises(NoDatabaseError, match=f"no database at {project / 'data' / 'missing.db'}"):
        connect("data/missing.db")
    assert not (project / "notebooks" / "data").exists()


def test_estateflow_home_wins_and_without_a_project_the_working_folder_counts(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    monkeypatch.chdir(project / "notebooks")
    monkeypatch.setenv("ESTATEFLOW_HOME", str(home))
    assert resolve_url("data/x.db") == f"sqlite:///{home / 'data' / 'x.db'}"
    monkeypatch.delenv("ESTATEFLOW_HOME")
    loose = tmp_path / "loose"
    loose.mkdir()
    monkeypatch.chdir(loose)
    assert project_root() == loose and resolve_url("x.db") == f"sqlite:///{loose / 'x.db'}"


def test_the_absolute_path_is_what_is_shown(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(project / "notebooks")
    assert describe_url("data/x.db") == str(project / "data" / "x.db")
    assert describe_url("d1://acct/db-1") == "D1 database db-1 (account acct)"
    panel = VerifyPanel(db="data/x.db")
    assert panel.where.value == f"= sqlite:///{project / 'data' / 'x.db'}"
    panel.db.value = ""
    assert panel.where.value == f"= sqlite:///{project / 'data' / 'estateflow.db'}"
