from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from estateflow_nb import connect, write_records
from estateflow_nb.cli import cli

from .conftest import CLI, ROOT


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """The real console entry point in a child process, with stdin and stdout not a terminal."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("ESTATEFLOW_DB", None)
    return subprocess.run([*CLI, *args], capture_output=True, text=True, cwd=cwd, env=env, stdin=subprocess.DEVNULL)


def all_commands(group: click.Group = cli, prefix: str = "estateflow") -> list[tuple[str, click.Command]]:
    found = []
    for name, command in sorted(group.commands.items()):
        found.append((f"{prefix} {name}", command))
        if isinstance(command, click.Group):
            found += all_commands(command, f"{prefix} {name}")
    return found


def test_every_command_has_help_and_is_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for name, command in all_commands():
        assert command.help and len(command.help) > 20, f"{name} has no help text"
        assert f"`{name}" in readme, f"{name} is not documented in README.md"
        result = CliRunner().invoke(cli, [*name.split()[1:], "--help"])
        assert result.exit_code == 0 and "Usage:" in result.output


def test_generate_is_deterministic(tmp_path: Path) -> None:
    for name in ("a", "b"):
        done = run("generate", "--ladder", "--dir", str(tmp_path / name))
        assert done.returncode == 0, done.stderr
    for file in ("test-10.sql", "small-100.sql", "medium-1000.sql", "large-10000.sql"):
        assert (tmp_path / "a" / file).read_bytes() == (tmp_path / "b" / file).read_bytes()
    done = run("generate", "25", "--out", str(tmp_path / "x.jsonl"))
    assert done.returncode == 0 and "wrote 25 records" in done.stdout
    assert len((tmp_path / "x.jsonl").read_text(encoding="utf-8").splitlines()) == 25


def test_import_prints_a_summary_and_json(tmp_path: Path) -> None:
    source = write_records(tmp_path / "p.csv", 120, invalid_share=0.05)
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    human = run("import", str(source), "--db", url)
    assert human.returncode == 0, human.stderr
    assert re.search(r"import imp-\S+ \(completed\): small rung, batch size 100", human.stdout)
    assert "records read 120 of 120" in human.stdout and "rejects ->" in human.stdout
    again = run("import", str(source), "--db", url, "--json")
    summary = json.loads(again.stdout)
    assert summary["inserted"] == 0 and summary["skipped"] + summary["rejected"] == 120
    assert summary["batch_metrics"][0]["records"] == 100


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("first_name,shoe_size\nAda,9\n", "unknown columns: shoe_size"),
        ("first_name,email\nAda,a@b.co,extra\n", "line 2"),
    ],
)
def test_bad_input_gives_one_line_and_exit_1(tmp_path: Path, content: str, message: str) -> None:
    source = tmp_path / "bad.csv"
    source.write_text(content, encoding="utf-8")
    done = run("import", str(source), "--db", f"sqlite:///{tmp_path / 'db.sqlite'}")
    assert done.returncode == 1
    assert done.stderr.startswith("Error: ") and message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


def test_missing_file_and_unknown_type(tmp_path: Path) -> None:
    for name in ("nowhere.csv", "data.xlsx"):
        if name.endswith("xlsx"):
            (tmp_path / name).write_text("x")
        done = run("import", str(tmp_path / name), "--db", f"sqlite:///{tmp_path / 'db.sqlite'}")
        assert done.returncode == 1 and done.stderr.startswith("Error: ")
        assert len(done.stderr.strip().splitlines()) == 1


def test_confirmation_rules_exit_2_when_not_interactive(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    large = write_records(tmp_path / "large.csv", 10_000)
    refused = run("import", str(large), "--db", url)
    assert refused.returncode == 2 and "--yes" in refused.stderr
    ladder = run("ladder", "--db", url, "--dir", str(tmp_path / "data"))
    assert ladder.returncode == 2 and "--yes" in ladder.stderr
    with connect(url) as target:
        assert target.scalar("SELECT COUNT(*) FROM ef_imports") == 0
    assert run("import", str(large), "--db", url, "--yes").returncode == 0


def test_ladder_verify_and_status_end_to_end(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    ladder = run("ladder", "--yes", "--db", url, "--dir", str(tmp_path / "data"), "--runs", "1")
    assert ladder.returncode == 0, ladder.stderr
    assert re.search(r"^large\s+10,000\s", ladder.stdout, re.M) and "Ladder passed." in ladder.stdout
    verified = run("verify", "--db", url, "--json", "--runs", "1")
    assert verified.returncode == 0
    report = json.loads(verified.stdout)
    assert report["passed"] and len(report["checks"]) == 12 and len(report["benchmarks"]) == 5
    assert report["checks"][0]["observed"] == 11_110
    shown = run("status", "--db", url, "--json")
    state = json.loads(shown.stdout)
    assert state["tables"]["professionals"] == 11_110 and state["by_status"] == {"completed": 4}
    text = run("status", "--db", url)
    assert "professionals" in text.stdout and "11,110" in text.stdout


def test_verify_exits_1_on_a_failing_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    with connect(url) as target:
        target.connection.execute(
            "INSERT INTO professionals (first_name, last_name, email, license_number, industry, state, city,"
            " created_at, updated_at) VALUES ('A', 'B', 'a@b.co', 'HAND-1', 'legal', 'TX', 'Austin', 'x', 'x')"
        )
    done = run("verify", "--db", url, "--no-benchmarks")
    assert done.returncode == 1 and "FAIL" in done.stdout and "Total record count" in done.stdout
