from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from estateflow_nb import (
    ConfirmationRequired,
    EstateFlowError,
    ImportOptions,
    ImportResult,
    RungResult,
    SqlError,
    check_confirmation,
    connect,
    generate_records,
    run_ladder,
    run_rung,
    rung_for,
    write_records,
)
from estateflow_nb._migrations import ensure_schema
from estateflow_nb.rungs import RUNGS
from estateflow_nb.targets import InsertRows, Sql, SQLiteTarget
from estateflow_nb.targets._base import ExecuteResult, Statement

from .conftest import invoke, write_csv


@pytest.mark.parametrize(
    ("records", "name", "batch"),
    [
        (0, "test", 10),
        (99, "test", 10),
        (100, "small", 100),
        (999, "small", 100),
        (1000, "medium", 1000),
        (9999, "medium", 1000),
        (10_000, "large", 10_000),
        (99_999, "large", 10_000),
        (100_000, "extra_large", 10_000),
        (2_000_000, "extra_large", 10_000),
    ],
)
def test_rungs_by_record_count(records: int, name: str, batch: int) -> None:
    rung = rung_for(records)
    assert (rung.name, rung.batch_size) == (name, batch)


def test_the_rungs_targets_and_rules() -> None:
    assert [(r.name, r.target_rate, r.needs) for r in RUNGS] == [
        ("test", None, None),
        ("small", 50.0, None),
        ("medium", 75.0, None),
        ("large", 100.0, "confirm"),
        ("extra_large", 100.0, "force"),
    ]


def test_safety_rules() -> None:
    large, extra = rung_for(10_000), rung_for(100_000)
    check_confirmation(rung_for(9_999), 9_999)
    with pytest.raises(ConfirmationRequired) as refused:
        check_confirmation(large, 12_345)
    assert refused.value.flag == "--yes"
    assert str(refused.value) == "12,345 records is a large import: confirm interactively or pass --yes"
    asked: list[str] = []
    with pytest.raises(ConfirmationRequired):
        check_confirmation(large, 12_345, confirm=lambda question: asked.append(question) or False)
    assert asked == ["12,345 records is a large import. Go ahead?"]
    with pytest.raises(ConfirmationRequired) as refused:
        check_confirmation(extra, 123_456, yes=True)
    assert str(refused.value) == "123,456 records is an extra large import: pass --force to run it"
    check_confirmation(large, 10_000, yes=True)
    check_confirmation(large, 10_000, confirm=lambda question: True)
    check_confirmation(large, 10_000, force=True)
    for kwargs in ({"yes": True}, {"confirm": lambda question: True}, {}):
        with pytest.raises(ConfirmationRequired) as refused:
            check_confirmation(extra, 100_000, **kwargs)  # type: ignore[arg-type]
        assert refused.value.flag == "--force"
    check_confirmation(extra, 100_000, force=True)


@pytest.fixture
def three_rungs(tmp_path: Path) -> list[Path]:
    """A test, a small and a medium rung (20, 150 and 1,500 records): the ladder's shape, a seventh of its size."""
    return [
        write_records(tmp_path / "a.csv", 20),
        write_records(tmp_path / "b.csv", 150, start=20),
        write_records(tmp_path / "c.csv", 1500, start=170),
    ]


def test_a_ladder_runs_and_verifies_after_every_rung_from_small_on(tmp_path: Path, three_rungs: list[Path]) -> None:
    seen: list[str] = []
    with connect(f"sqlite:///{tmp_path / 'ladder.db'}", create=True) as target:
        result = run_ladder(
            target,
            files=three_rungs,
            verify_runs=1,
            benchmarks=False,
            on_rung=lambda step: seen.append(step.rung.name),
        )
        assert target.scalar("SELECT COUNT(*) FROM professionals") == 1670
        ledger = target.query("SELECT rung, status FROM ef_imports ORDER BY started_at, rowid")
    assert [(r["rung"], r["status"]) for r in ledger] == [
        ("test", "completed"),
        ("small", "completed"),
        ("medium", "completed"),
    ]
    assert seen == ["test", "small", "medium"] and result.stopped is None
    rows = result.rows()
    assert [r["records"] for r in rows] == [20, 150, 1500]
    assert [r["inserted"] for r in rows] == [20, 150, 1500]
    assert [r["verified"] for r in rows] == [None, True, True]
    assert [r["target_rate"] for r in rows] == [None, 50.0, 75.0]
    # Whether a rung keeps the old tool's pace is the machine's business; the verdict must follow it.
    for step in result.rungs:
        assert step.meets_target == (step.rung.target_rate is None or step.records_per_second >= step.rung.target_rate)
        assert step.verdict == ("pass" if step.meets_target else "below target")
    assert result.passed == all(step.meets_target for step in result.rungs)
    assert ("Ladder passed." in result.table()) == result.passed


def imported(records: int, seconds: float, **changes: Any) -> ImportResult:
    return ImportResult(
        **{
            "import_id": "imp-x",
            "source": "f.csv",
            "target": "sqlite:///x.db",
            "rung": rung_for(records).name,
            "batch_size": 100,
            "on_conflict": "skip",
            "status": "completed",
            "records_total": records,
            "records_read": records,
            "inserted": records,
            "seconds": seconds,
            **changes,
        }
    )


@pytest.mark.parametrize(
    ("records", "seconds", "changes", "verdict"),
    [
        (150, 1.0, {}, "pass"),  # 150/s against the small rung's 50/s
        (150, 10.0, {}, "below target"),  # 15/s
        (1500, 10.0, {}, "pass"),  # 150/s against the medium rung's 75/s
        (1500, 30.0, {}, "below target"),  # 50/s
        (20, 1000.0, {}, "pass"),  # the test rung has no target
        (150, 1.0, {"status": "failed"}, "import failed"),
        (150, 1.0, {"status": "dry_run", "dry_run": True}, "dry run"),
    ],
)
def test_the_verdict_weighs_the_pace_against_the_rungs_target(
    records: int, seconds: float, changes: dict[str, Any], verdict: str
) -> None:
    step = RungResult(rung_for(records), "f.csv", imported(records, seconds, **changes))
    assert step.verdict == verdict


def test_options_or_keywords_reach_every_rung(tmp_path: Path, three_rungs: list[Path]) -> None:
    """One ImportOptions for the whole ladder, keywords on top; a batch size overrides every rung's."""
    with connect(f"sqlite:///{tmp_path / 'ladder.db'}", create=True) as target:
        planned = run_ladder(target, ImportOptions(batch_size=600, on_conflict="fail"), files=three_rungs, dry_run=True)
        assert target.scalar("SELECT COUNT(*) FROM ef_imports") == 0
        assert [s.verdict for s in planned.rungs] == ["dry run"] * 3
        assert [(s.imported.batch_size, s.imported.on_conflict) for s in planned.rungs] == [(600, "fail")] * 3
        assert [s.imported.batches for s in planned.rungs] == [1, 1, 3]
        step = run_rung(target, three_rungs[1], ImportOptions(batch_size=40), benchmarks=False, verify_runs=1)
        assert step.imported.batches == 4 and step.verification is not None and step.verification.passed
        assert step.verification.benchmarks == []


def test_ladder_refuses_up_front_without_confirmation(tmp_path: Path) -> None:
    with connect(f"sqlite:///{tmp_path / 'ladder.db'}", create=True) as target:
        with pytest.raises(ConfirmationRequired, match="--yes"):
            run_ladder(target, directory=tmp_path / "data")
        assert target.scalar("SELECT COUNT(*) FROM ef_imports") == 0
    # The four ladder files were written where asked, for the next run.
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == [
        "large-10000.sql",
        "medium-1000.sql",
        "small-100.sql",
        "test-10.sql",
    ]


def test_ladder_stops_at_the_first_failed_verification(tmp_path: Path, three_rungs: list[Path]) -> None:
    with connect(f"sqlite:///{tmp_path / 'ladder.db'}", create=True) as target:
        # A row no import accounts for: the total count check fails at the first verification.
        target.execute(
            [
                Sql(
                    "INSERT INTO professionals (first_name, last_name, email, license_number, industry, state, city,"
                    " created_at, updated_at) VALUES ('A', 'B', 'a@b.co', 'HAND-1', 'legal', 'TX', 'Austin', 'x', 'x')"
                )
            ]
        )
        result = run_ladder(target, files=three_rungs, verify_runs=1, benchmarks=False)
        assert target.scalar("SELECT COUNT(*) FROM professionals") == 1 + 20 + 150
    assert [r.rung.name for r in result.rungs] == ["test", "small"]
    assert result.rungs[-1].verdict == "verification failed"
    assert not result.passed and "total_count" in (result.stopped or "")


class FailingOnBatch(SQLiteTarget):
    """A SQLite target whose `fail_at`-th write of professionals fails as a SQL error would."""

    def __init__(self, path: Path, fail_at: int) -> None:
        super().__init__(path, create=True)
        ensure_schema(self, create=True)
        self.fail_at, self.writes = fail_at, 0

    def execute(self, statements: Sequence[Statement], **kwargs: Any) -> ExecuteResult:
        if any(isinstance(s, InsertRows) and s.table == "professionals" for s in statements):
            self.writes += 1
            if self.writes == self.fail_at:
                raise SqlError("no such column: injected")
        return super().execute(statements, **kwargs)


def test_ladder_stops_at_the_first_failed_import_and_says_why(tmp_path: Path, three_rungs: list[Path]) -> None:
    with FailingOnBatch(tmp_path / "ladder.db", fail_at=4) as target:  # a.csv: 2 batches, b.csv: 2
        result = run_ladder(target, files=three_rungs, verify_runs=1, benchmarks=False)
        assert target.scalar("SELECT COUNT(*) FROM professionals") == 20 + 100
    test, small = result.rungs
    assert test.verdict == "pass" and test.error is None
    assert small.verdict == "import failed" and small.verification is None
    assert small.error and small.error.startswith(f"import {small.imported.import_id} stopped at record 100 of 150")
    assert "no such column: injected" in small.error
    assert result.stopped == f"b.csv: {small.error}" and not result.passed


# --- rejected records and re-runs ---------------------------------------------------------------------


def test_a_rerun_that_writes_nothing_says_nothing_new(tmp_path: Path, three_rungs: list[Path]) -> None:
    with connect(f"sqlite:///{tmp_path / 'ladder.db'}", create=True) as target:
        first = run_ladder(target, files=three_rungs, verify_runs=1, benchmarks=False)
        again = run_ladder(target, files=three_rungs, verify_runs=1, benchmarks=False)
    assert first.verdict in ("LADDER PASSED", "BELOW TARGET")
    assert [step.verdict for step in again.rungs] == ["nothing new"] * 3
    assert [step.imported.skipped for step in again.rungs] == [20, 150, 1500]
    assert again.verdict == "NOTHING NEW" and again.passed and again.stopped is None
    assert again.table().splitlines()[-1] == "Nothing new: every record was already imported."


def with_rejects(path: Path, n: int, broken: int, start: int = 0) -> Path:
    rows = list(generate_records(n, seed=4, start=start))
    for row in rows[:broken]:
        row["rating"] = 9.5
    return write_csv(path, rows)


def test_rejects_under_the_limit_pass_with_warnings_that_name_the_file(tmp_path: Path) -> None:
    files = [with_rejects(tmp_path / "a.csv", 20, 0), with_rejects(tmp_path / "b.csv", 400, 2, start=20)]
    with connect(f"sqlite:///{tmp_path / 'ladder.db'}", create=True) as target:
        result = run_ladder(target, files=files, verify_runs=1, benchmarks=False)
    small = result.rungs[1]
    assert small.rejected_share == 2 / 400 and not small.too_many_rejects
    assert small.verdict in ("pass", "below target")  # its pace is the machine's business
    if small.verdict == "pass":
        assert result.verdict == "LADDER PASSED WITH WARNINGS" and result.passed
    (rejects,) = result.rejects
    assert rejects.rejects_path == small.imported.rejects_path and rejects.rejected == 2
    assert rejects.reasons == [("rating is outside 1.0 to 5.0", 2)]
    assert f"rejects: 2 (0.5%) -> {small.imported.rejects_path} (2 x rating is outside 1.0 to 5.0)" in result.table()
    assert result.rows()[1]["rejected_share"] == 0.005


def test_a_rung_over_the_reject_limit_stops_the_ladder(tmp_path: Path) -> None:
    files = [with_rejects(tmp_path / "a.csv", 20, 0), with_rejects(tmp_path / "b.csv", 200, 4, start=20)]
    files.append(with_rejects(tmp_path / "c.csv", 200, 0, start=220))
    with connect(f"sqlite:///{tmp_path / 'ladder.db'}", create=True) as target:
        result = run_ladder(target, files=files, verify_runs=1, benchmarks=False)
        assert target.scalar("SELECT COUNT(*) FROM professionals") == 20 + 196  # its rows stay in
        lenient = run_ladder(target, files=files[2:], max_reject_rate=0.05, verify_runs=1, benchmarks=False)
    assert [s.verdict for s in result.rungs] == ["pass", "too many rejects"] and not result.passed
    assert result.verdict == "TOO MANY REJECTS"
    assert result.stopped == "b.csv: 2.0% of its records were rejected, over the limit of 1%"
    assert lenient.rungs[0].max_reject_rate == 0.05


def test_import_and_ladder_exit_1_over_the_reject_limit(tmp_path: Path) -> None:
    source = with_rejects(tmp_path / "p.csv", 200, 3)  # 1.5%
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    over = invoke("import", str(source), "--db", db, cwd=tmp_path)
    assert over.returncode == 1
    assert "rejected share 1.5% is over the limit of 1% (--max-reject-rate)" in over.stderr
    assert "imported 197" in over.stdout  # its rows are in, all the same
    again = invoke("import", str(source), "--db", db, "--max-reject-rate", "2%", "--json", cwd=tmp_path)
    summary = json.loads(again.stdout)
    assert again.returncode == 0 and summary["rejected_share"] == 0.015 and summary["inserted"] == 0
    assert summary["verdict"].startswith("nothing new: all 200 records")
    assert invoke("import", str(source), "--db", db, "--max-reject-rate", "150%", cwd=tmp_path).returncode == 2
    # A ladder of files (one FILE alone is climbed: test_climb.py).
    files = [str(source), str(source)]
    ladder = invoke("ladder", *files, "--db", db, "--max-reject-rate", "0.02", "--json", cwd=tmp_path)
    data = json.loads(ladder.stdout)
    assert ladder.returncode == 0 and data["verdict"] == "NOTHING NEW" and data["rungs"][0]["rejected_share"] == 0.015
    strict = invoke("ladder", *files, "--db", db, cwd=tmp_path)
    assert strict.returncode == 1 and "too many rejects" in strict.stdout


def test_the_largest_reject_rate_is_a_share() -> None:
    with pytest.raises(EstateFlowError, match="from 0 to 1, not 5"):
        ImportOptions(max_reject_rate=5)
