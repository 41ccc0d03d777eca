"""Races and resumes: a batch lands only under its own running import, one run at a time holds an
import, a killed run's import is taken over at once, and a resume does what the first run said."""

from __future__ import annotations

import csv
import json
import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from estateflow_nb import (
    ConfirmationRequired,
    EstateFlowError,
    ImportFailedError,
    TargetError,
    _claims,
    _retry,
    connect,
    generate_records,
    import_file,
    rollback,
)
from estateflow_nb import importer as importer_module
from estateflow_nb._forwarding import Forwarding
from estateflow_nb._ledger import refuse_while_importing
from estateflow_nb._time import ledger_time, utc_now
from estateflow_nb.targets import Sql, SQLiteTarget, Target

from .conftest import count, invoke, ledger_balances, write_csv
from .test_importer import FlakyTarget, table_rows


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_retry, "SLEEP", lambda seconds: None)


def awkward(tmp_path: Path, name: str = "pros.csv") -> Path:
    """40 records: rejects in batches 1 and 3, a license twice (batches 1 and 4)."""
    rows = list(generate_records(40, seed=12))
    rows[3]["email"] = "broken"
    rows[24]["rating"] = "11"
    rows[33]["license_number"] = rows[1]["license_number"]
    return write_csv(tmp_path / name, rows)


def clean_run(tmp_path: Path, source: Path, **options: Any) -> tuple[list[tuple[Any, ...]], list[list[str]]]:
    """The table and the rejects of the same import done in one go, in a database of its own."""
    with connect(f"sqlite:///{tmp_path / 'clean.db'}", create=True) as clean:
        result = import_file(clean, source, batch_size=10, rejects_dir=tmp_path / "clean-rejects", **options)
        return table_rows(clean), rejects(result.rejects_path)


def rejects(path: str | Path | None) -> list[list[str]]:
    with open(path or "", newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def stopped_at_batch(target: SQLiteTarget, source: Path, batch: int, **options: Any) -> str:
    """The import of `source`, stopped by a target that fails for good at `batch`; its id."""
    with pytest.raises(ImportFailedError) as caught:
        import_file(FlakyTarget(target, {batch: 3}), source, batch_size=10, **options)
    return str(caught.value.result.import_id)


def other(target: Target) -> Target:
    """A second connection to the same database: another command, as another process would open it."""
    return connect(target.url)


# --- a batch lands only while its import exists and is running -------------------------------------------


def test_a_reset_while_an_import_runs_is_refused_and_the_import_ends_exact(
    target: SQLiteTarget, tmp_path: Path
) -> None:
    source = awkward(tmp_path)
    said: list[str] = []

    def reset_after_batch_two(metrics: Any) -> None:
        if metrics.number == 2:
            with other(target) as second, pytest.raises(EstateFlowError) as refused:
                rollback(second, reset=True, yes=True, backup=False)
            said.append(str(refused.value))
            cli = invoke("rollback", "reset", "--db", target.url, "--yes", cwd=tmp_path)
            said.append(cli.stderr)
            assert cli.returncode == 1 and len(cli.stderr.strip().splitlines()) == 1

    result = import_file(target, source, batch_size=10, progress=reset_after_batch_two)
    assert said[0].startswith("rollback reset refused: import imp-") and "is running (process " in said[0]
    assert "let it finish or stop it (Ctrl-C)" in said[0] and "rollback reset refused" in said[1]
    assert (result.status, table_rows(target)) == ("completed", clean_run(tmp_path, source)[0])
    assert ledger_balances(target)
    # Once it has finished, nothing stands in the reset's way.
    rollback(target, reset=True, yes=True, backup=False)
    assert count(target) == 0


def test_restore_can_refuse_while_an_import_runs(target: SQLiteTarget, tmp_path: Path) -> None:
    """What `restore` calls first (backup.py): the same refusal, naming the running import."""
    seen: list[str] = []

    def try_restore(metrics: Any) -> None:
        with other(target) as second, pytest.raises(EstateFlowError, match=r"^restore refused: import ") as refused:
            refuse_while_importing(second, "restore")
        seen.append(str(refused.value))

    import_file(target, awkward(tmp_path), batch_size=20, progress=try_restore)
    assert len(seen) == 2
    refuse_while_importing(target, "restore")  # nothing runs now


@pytest.mark.parametrize("how", ["ledger row deleted", "rolled back", "taken over"])
def test_a_batch_lands_only_under_its_own_running_import(each_target: Target, tmp_path: Path, how: str) -> None:
    """Whatever takes the import from under a run between two batches, its next batch writes nothing
    and the run stops with one line (no IndexError), leaving the import to whoever has it."""
    target = each_target

    def meddle(metrics: Any) -> None:
        if metrics.number != 2:
            return
        (row,) = target.query("SELECT id FROM ef_imports")
        if how == "ledger row deleted":  # what a restore of an older backup or an old version's reset did
            target.execute([Sql("DELETE FROM ef_imports")])
        elif how == "rolled back":
            rollback(target, import_id=row["id"], yes=True, backup=False)
        else:
            target.execute([Sql("UPDATE ef_imports SET claim = 'run-someone-else'")])

    with pytest.raises(ImportFailedError) as caught:
        import_file(target, awkward(tmp_path), batch_size=10, progress=meddle)
    message = str(caught.value)
    assert len(message.splitlines()) == 1 and "stopped at record 20 of 40" in message
    expected = {
        "ledger row deleted": "its ledger row is gone: another command reset or restored the database",
        "rolled back": "another command rolled this import back while it ran",
        "taken over": "another run took this import over",
    }
    advice = {
        "ledger row deleted": "Run the import again to start a new one.",
        "rolled back": "Run the import again to start a new one.",
        "taken over": "The other run goes on with it.",
    }
    assert f"stopped at record 20 of 40: {expected[how]}" in message and message.endswith(f". {advice[how]}")
    assert caught.value.result.status == (
        "rolled_back" if how == "rolled back" else "failed" if how != "taken over" else "running"
    )
    assert count(target) == (0 if how == "rolled back" else 19)  # batches 1 and 2: 20 records, a reject
    if how == "taken over":
        (row,) = target.query("SELECT status, claim, checkpoint FROM ef_imports")
        assert (row["status"], row["claim"], row["checkpoint"]) == ("running", "run-someone-else", 20)


# --- one run at a time; a killed run's import is taken over at once ------------------------------------


def test_two_resumes_at_once_one_goes_on_the_other_is_told(target: SQLiteTarget, tmp_path: Path) -> None:
    source = awkward(tmp_path)
    import_id = stopped_at_batch(target, source, 3)
    told: list[str] = []

    def second_resume(metrics: Any) -> None:
        if metrics.number == 3:
            with other(target) as second, pytest.raises(EstateFlowError) as caught:
                import_file(second, source, batch_size=10)
            told.append(str(caught.value))
            told.append(invoke("import", str(source), "--db", target.url, cwd=tmp_path).stderr)

    resumed = import_file(target, source, batch_size=10, progress=second_resume)
    assert resumed.import_id == import_id and resumed.status == "completed"
    assert told[0].startswith(f"import {import_id} of {source.resolve()} is already running (process ")
    assert f"import {import_id}" in told[1] and "already running" in told[1]
    table, clean_rejects = clean_run(tmp_path, source)
    assert table_rows(target) == table and ledger_balances(target)
    assert rejects(resumed.rejects_path) == clean_rejects  # each reject once


def _dead_pid() -> int:
    finished = subprocess.Popen(["true"])
    finished.wait()
    return finished.pid


@pytest.mark.parametrize(
    ("owner", "minutes_ago", "resumes"),
    [
        ("dead process here", 0, True),  # killed (SIGKILL leaves its row 'running'): taken over at once
        ("this process, no run", 0, True),  # an interrupted notebook kernel
        ("another host", 1, False),  # alive, as far as anyone here can tell
        ("another host", 11, True),  # silent for longer than the lease
    ],
)
def test_a_stale_claim_is_taken_over_and_a_live_one_is_not(
    target: SQLiteTarget, tmp_path: Path, owner: str, minutes_ago: int, resumes: bool
) -> None:
    source = awkward(tmp_path)
    import_id = stopped_at_batch(target, source, 3)
    here = _claims.owner().rsplit(" ", 2)[0]
    owners = {
        "dead process here": f"{here} {_dead_pid()} -",
        "this process, no run": _claims.owner(),
        "another host": "elsewhere/0000 4242 -",
    }
    heartbeat = ledger_time(utc_now() - timedelta(minutes=minutes_ago))
    target.execute(
        [
            Sql(
                "UPDATE ef_imports SET status = 'running', claim = 'run-old', claim_owner = ?, heartbeat_at = ?",
                (owners[owner], heartbeat),
            )
        ]
    )
    if resumes:
        assert import_file(target, source, batch_size=10).import_id == import_id
        assert table_rows(target) == clean_run(tmp_path, source)[0]
        return
    with pytest.raises(EstateFlowError, match="is already running") as caught:
        import_file(target, source, batch_size=10)
    free = ledger_time(utc_now() - timedelta(minutes=minutes_ago) + timedelta(seconds=_claims.LEASE_SECONDS))
    assert "(process 4242 on elsewhere, last write" in str(caught.value)
    assert str(caught.value).endswith(f"it can be resumed after {free}")


# --- a resume does what the first run said -----------------------------------------------------------------


def update_source(target: SQLiteTarget, tmp_path: Path) -> Path:
    """30 records already in the table, and a file that moves them all to Key West."""
    rows = list(generate_records(30, seed=13))
    import_file(target, write_csv(tmp_path / "first.csv", rows))
    return write_csv(tmp_path / "moved.csv", [{**r, "city": "Key West"} for r in rows])


def test_a_resume_keeps_on_conflict_as_the_first_run_said(target: SQLiteTarget, tmp_path: Path) -> None:
    source = update_source(target, tmp_path)
    stopped_at_batch(target, source, 2, on_conflict="update")
    cli = invoke("import", str(source), "--db", target.url, "--on-conflict", "skip", cwd=tmp_path)
    assert cli.returncode == 2 and len(cli.stderr.strip().splitlines()) == 1
    assert "started with --on-conflict update; this command says --on-conflict skip" in cli.stderr
    assert "--no-resume" in cli.stderr
    with pytest.raises(ConfirmationRequired) as refused:
        import_file(target, source, batch_size=10, on_conflict="fail")
    assert refused.value.flag == "--no-resume"
    resumed = invoke("import", str(source), "--db", target.url, "--batch-size", "10", "--json", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr  # says nothing: the recorded one
    summary = json.loads(resumed.stdout)
    assert (summary["on_conflict"], summary["updated"], summary["inserted"]) == ("update", 30, 0)
    assert count(target, "SELECT COUNT(*) FROM professionals WHERE city = 'Key West'") == 30
    assert ledger_balances(target)


def test_a_resume_may_change_how_it_goes_on(
    target: SQLiteTarget, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = awkward(tmp_path)
    import_id = stopped_at_batch(target, source, 3)
    waits: list[float] = []
    monkeypatch.setattr(importer_module.time, "sleep", waits.append)
    seen: list[int] = []
    resumed = import_file(
        target,
        source,
        batch_size=7,
        delay_ms=25,
        rejects_dir=tmp_path / "elsewhere",
        progress=lambda m: seen.append(m.records),
    )
    assert resumed.import_id == import_id and seen == [7, 7, 6]
    assert target.scalar("SELECT batch_size FROM ef_imports") == 7
    assert waits == [0.025, 0.025]  # between batches, not before the first
    assert Path(resumed.rejects_path or "").parent == tmp_path / "elsewhere"
    assert rejects(resumed.rejects_path) == clean_run(tmp_path, source)[1]


def test_a_run_holds_its_claim_while_it_writes_and_lets_go_when_it_ends(target: SQLiteTarget, tmp_path: Path) -> None:
    """Completed or stopped, a run of this process leaves no claim held: the next run finds its import
    free to resume."""
    held: list[set[str]] = []
    import_file(target, awkward(tmp_path), batch_size=10, progress=lambda _: held.append(set(_claims._HELD)))
    assert len(held) == 4 and all(len(claims) == 1 for claims in held) and not _claims._HELD
    stopped_at_batch(target, awkward(tmp_path, "more.csv"), 2)
    assert not _claims._HELD

    class Refusing(Forwarding):  # a database that takes no write: the run stops before its first batch
        def execute(self, statements: Any, *, before_commit: Any = None) -> Any:
            raise TargetError("SQLite: disk I/O error")

    with pytest.raises(TargetError):
        import_file(Refusing(target), awkward(tmp_path, "last.csv"), batch_size=10)
    assert not _claims._HELD


def test_a_run_told_that_the_import_is_running_changes_nothing(target: SQLiteTarget, tmp_path: Path) -> None:
    """Not the ledger, not the rejects file: the run that holds the import goes on with both."""
    source = awkward(tmp_path)
    stopped_at_batch(target, source, 3)
    claim = _claims.take()  # a run of this process holds it now
    try:
        target.execute(
            [Sql("UPDATE ef_imports SET status = 'running', claim = ?, claim_owner = ?", (claim, _claims.owner()))]
        )
        before = target.query("SELECT * FROM ef_imports")
        size = Path(before[0]["rejects_path"]).stat().st_size
        with pytest.raises(EstateFlowError, match="already running"):
            import_file(target, source, batch_size=10)
        assert {claim} == _claims._HELD  # the refused run let go of the claim it took
        assert target.query("SELECT * FROM ef_imports") == before
        assert Path(before[0]["rejects_path"]).stat().st_size == size
    finally:
        _claims.release(claim)
