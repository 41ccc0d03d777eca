from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from estateflow_nb import __version__, connect, write_records
from estateflow_nb.cli import cli

from .conftest import ROOT, invoke, run_cli


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


def test_the_installed_command_runs_in_its_own_process(tmp_path: Path) -> None:
    """The console script pyproject.toml declares, as a shell runs it: its version, and a user's
    mistake as one line on stderr with exit code 1, never a traceback."""
    script = Path(sys.executable).parent / "estateflow"
    version = subprocess.run([str(script), "--version"], capture_output=True, text=True, cwd=tmp_path)
    assert version.returncode == 0 and version.stdout.strip() == f"estateflow, version {__version__}"
    (tmp_path / "bad.csv").write_text("first_name,shoe_size\nAda,9\n", encoding="utf-8")
    refused = run_cli("import", "bad.csv", "--db", f"sqlite:///{tmp_path / 'db.sqlite'}", cwd=tmp_path)
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr.startswith("Error: ") and "unknown columns: shoe_size" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1 and "Traceback" not in refused.stderr


def test_generate_is_deterministic(tmp_path: Path) -> None:
    for name in ("a", "b"):
        done = invoke("generate", "--ladder", "--dir", str(tmp_path / name), cwd=tmp_path)
        assert done.returncode == 0, done.stderr
    for file in ("test-10.sql", "small-100.sql", "medium-1000.sql", "large-10000.sql"):
        assert (tmp_path / "a" / file).read_bytes() == (tmp_path / "b" / file).read_bytes()
    done = invoke("generate", "25", "--out", str(tmp_path / "x.jsonl"), cwd=tmp_path)
    assert done.returncode == 0 and "wrote 25 records" in done.stdout
    assert len((tmp_path / "x.jsonl").read_text(encoding="utf-8").splitlines()) == 25


def test_import_prints_a_summary_and_json(tmp_path: Path) -> None:
    source = write_records(tmp_path / "p.csv", 120, invalid_share=0.05)
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    human = invoke("import", str(source), "--db", url, "--max-reject-rate", "10%", cwd=tmp_path)
    assert human.returncode == 0, human.stderr
    assert re.search(r"import imp-\S+ \(completed\): small rung, batch size 100", human.stdout)
    assert "records read 120 of 120" in human.stdout and "rejects ->" in human.stdout
    again = invoke("import", str(source), "--db", url, "--json", cwd=tmp_path)
    summary = json.loads(again.stdout)
    assert summary["inserted"] == 0 and summary["skipped"] + summary["rejected"] == 120
    assert summary["batch_metrics"][0]["records"] == 100


def test_import_options_reach_the_importer(tmp_path: Path) -> None:
    """Every import option, given on the command line, lands in the one ImportOptions the import runs with."""
    source = write_records(tmp_path / "p.csv", 30, invalid_share=0.1)
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    planned = invoke("import", str(source), "--db", url, "--dry-run", "--batch-size", "7", "--json", cwd=tmp_path)
    plan = json.loads(planned.stdout)
    assert (plan["dry_run"], plan["batch_size"], plan["batches"], plan["rejected"]) == (True, 7, 5, 3)
    args = ["import", str(source), "--db", url, "--batch-size", "10", "--rejects-dir", "rejects", "--json"]
    done = json.loads(invoke(*args, "--on-conflict", "update", "--delay", "1", cwd=tmp_path).stdout)
    assert (done["on_conflict"], done["batches"], done["inserted"]) == ("update", 3, 27)
    assert Path(done["rejects_path"]).parent == (tmp_path / "rejects").resolve()  # the ledger keeps it absolute
    again = json.loads(invoke(*args, "--no-resume", "--on-conflict", "fail", cwd=tmp_path).stdout)
    assert again["import_id"] != done["import_id"] and again["status"] == "failed"
    fresh = f"sqlite:///{tmp_path / 'fresh.sqlite'}"
    verbose = invoke("import", str(source), "--db", fresh, "--verbose", "--batch-size", "10", cwd=tmp_path)
    assert sum(line.startswith("batch ") for line in verbose.stderr.splitlines()) == 3


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
    done = invoke("import", str(source), "--db", f"sqlite:///{tmp_path / 'db.sqlite'}", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.startswith("Error: ") and message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


def test_missing_file_and_unknown_type(tmp_path: Path) -> None:
    for name in ("nowhere.csv", "data.xlsx"):
        if name.endswith("xlsx"):
            (tmp_path / name).write_text("x")
        done = invoke("import", str(tmp_path / name), "--db", f"sqlite:///{tmp_path / 'db.sqlite'}", cwd=tmp_path)
        assert done.returncode == 1 and done.stderr.startswith("Error: ")
        assert len(done.stderr.strip().splitlines()) == 1


def test_confirmation_rules_exit_2_when_not_interactive(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    large = write_records(tmp_path / "large.csv", 10_000)
    refused = invoke("import", str(large), "--db", url, cwd=tmp_path)
    assert refused.returncode == 2 and "--yes" in refused.stderr
    ladder = invoke("ladder", "--db", url, "--dir", str(tmp_path / "data"), cwd=tmp_path)
    assert ladder.returncode == 2 and "--yes" in ladder.stderr
    with connect(url, create=True) as target:
        assert target.scalar("SELECT COUNT(*) FROM ef_imports") == 0
    assert invoke("import", str(large), "--db", url, "--yes", cwd=tmp_path).returncode == 0


def test_ladder_verify_and_status_end_to_end(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    # Two test rungs: neither has a pace to keep nor a verification, so the verdicts are the machine's
    # speed's business nowhere. Verifying after a rung is test_ladder.py's.
    files = [str(write_records(tmp_path / "a.csv", 30)), str(write_records(tmp_path / "b.csv", 60, start=30))]
    ladder = invoke("ladder", *files, "--db", url, "--runs", "1", cwd=tmp_path)
    assert ladder.returncode == 0, ladder.stderr
    assert re.search(r"^test\s+60\s", ladder.stdout, re.M) and "Ladder passed." in ladder.stdout
    assert [line.split()[:2] for line in ladder.stderr.splitlines()] == [["test", "30"], ["test", "60"]]
    again = invoke("ladder", *files, "--db", url, "--json", cwd=tmp_path)
    rungs = json.loads(again.stdout)["rungs"]
    assert [(r["records"], r["inserted"], r["skipped"]) for r in rungs] == [(30, 0, 30), (60, 0, 60)]
    verified = invoke("verify", "--db", url, "--json", "--runs", "1", cwd=tmp_path)
    report = json.loads(verified.stdout)
    assert len(report["checks"]) == 12 and all(c["passed"] for c in report["checks"])
    assert report["checks"][0]["observed"] == 90
    # The latency benchmarks are timed, so whether they pass is the machine's; the exit code follows them.
    assert len(report["benchmarks"]) == 5 and verified.returncode == (0 if report["passed"] else 1)
    shown = invoke("status", "--db", url, "--json", cwd=tmp_path)
    state = json.loads(shown.stdout)
    assert state["tables"]["professionals"] == 90 and state["by_status"] == {"completed": 4}
    text = invoke("status", "--db", url, cwd=tmp_path)
    assert re.search(r"professionals\s+90 rows", text.stdout)


def test_verify_exits_1_on_a_failing_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    with connect(url, create=True) as target:
        target.connection.execute(
            "INSERT INTO professionals (first_name, last_name, email, license_number, industry, state, city,"
            " created_at, updated_at) VALUES ('A', 'B', 'a@b.co', 'HAND-1', 'legal', 'TX', 'Austin', 'x', 'x')"
        )
    done = invoke("verify", "--db", url, "--no-benchmarks", cwd=tmp_path)
    assert done.returncode == 1 and "FAIL" in done.stdout and "Total record count" in done.stdout
