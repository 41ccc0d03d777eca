from __future__ import annotations

import json
import sys
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
    rungs,
    write_records,
)
from estateflow_nb import generate as generate_module
from estateflow_nb import ladder as ladder_module
from estateflow_nb._forwarding import Forwarding
from estateflow_nb._migrations import ensure_schema
from estateflow_nb.climb import ClimbResult
from estateflow_nb.ladder import LadderResult, import_verdict, nothing_new, rejected_share, run_from_parameters
from estateflow_nb.ladder import _settle_before_the_first_rung as settle
from estateflow_nb.rungs import RUNGS, Rung
from estateflow_nb.targets import InsertRows, Sql, SQLiteTarget, Target
from estateflow_nb.targets._base import ExecuteResult, Statement
from estateflow_nb.verify import CheckResult, VerifyReport

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


# --- verdicts, rows and the table, from results made up -------------------------------------------------


def empty_verification(passed: bool) -> VerifyReport:
    """A verification that passed or failed (a failing check), without a database."""
    failing = CheckResult(number=1, name="total_count", title="Total", passed=passed, observed=1, expected=1)
    return VerifyReport("sqlite:///x.db", "2026-11-02T00:00:00Z", [failing], [], 0.0, rows=10)


@pytest.mark.parametrize(
    ("changes", "step", "verdict"),
    [
        # Each verdict wins over every one below it.
        ({"status": "failed", "dry_run": True}, {"rolled_back": True}, "dry run"),
        ({"status": "failed", "rejected": 50, "inserted": 0}, {"rolled_back": True}, "import failed"),
        ({"rejected": 50, "inserted": 0}, {"rolled_back": True}, "rolled back"),
        ({"rejected": 50, "inserted": 0}, {"verification": empty_verification(False)}, "too many rejects"),
        ({"inserted": 0}, {"verification": empty_verification(False)}, "verification failed"),
        ({"inserted": 0}, {"verification": empty_verification(True)}, "nothing new"),
        ({"inserted": 0, "updated": 3}, {}, "pass"),
        ({"rejected": 2, "inserted": 148}, {}, "pass"),  # 2 of 150 is 1.3%, under a limit of 2%
        ({"rejected": 3, "inserted": 147}, {}, "pass"),  # exactly 2% is not over it
        ({"rejected": 4, "inserted": 146}, {}, "too many rejects"),
    ],
)
def test_a_rung_s_verdict_in_order_of_precedence(changes: dict[str, Any], step: dict[str, Any], verdict: str) -> None:
    rung = RungResult(rung_for(150), "f.csv", imported(150, 1.0, **changes), max_reject_rate=0.02, **step)
    assert rung.verdict == verdict


def test_pace_at_the_target_passes() -> None:
    assert RungResult(rung_for(150), "f.csv", imported(150, 3.0)).verdict == "pass"  # 50/s exactly
    assert RungResult(rung_for(150), "f.csv", imported(151, 3.0)).records_per_second > 50
    slow = RungResult(rung_for(150), "f.csv", imported(150, 3.01))
    assert slow.verdict == "below target" and not slow.meets_target
    resumed = RungResult(rung_for(150), "f.csv", imported(150, 1.0, resumed_from=40))
    assert resumed.records == 110 and repr(resumed) == (
        "<RungResult small pass: 110 records, 110 records/s, 0.0% rejected, imp-x>"
    )


def test_shares_and_nothing_new_of_an_import() -> None:
    assert rejected_share(imported(0, 1.0)) == 0.0
    assert rejected_share(imported(200, 1.0, rejected=3)) == 0.015
    assert nothing_new(imported(20, 1.0, inserted=0))
    assert not nothing_new(imported(20, 1.0, inserted=0, status="failed"))
    assert not nothing_new(imported(0, 1.0, inserted=0))
    assert not nothing_new(imported(20, 1.0, inserted=0, updated=1))


def test_an_import_s_verdict_line() -> None:
    assert import_verdict(imported(200, 1.0, rejected=3, dry_run=True, status="dry_run"), 0.01) == (
        False,
        "rejected share 1.5% (limit 1%): a dry run, nothing written",
    )
    assert import_verdict(imported(200, 1.0, rejected=3), 0.01) == (
        True,
        "rejected share 1.5% is over the limit of 1% (--max-reject-rate): see the rejects file",
    )
    assert import_verdict(imported(200, 1.0, rejected=2), 0.01) == (
        False,
        "rejected share 1.0%, within the limit of 1%",
    )
    assert import_verdict(imported(2000, 1.0, inserted=0, rejected=2), 0.01) == (
        False,
        "nothing new: all 2,000 records were already present or rejected",
    )


def ladder_of(*steps: RungResult, stopped: str | None = None) -> LadderResult:
    return LadderResult(rungs=list(steps), stopped=stopped)


def step(records: int = 150, seconds: float = 1.0, **changes: Any) -> RungResult:
    rolled_back = changes.pop("rolled_back", False)
    verification = changes.pop("verification", None)
    return RungResult(
        rung_for(records), "f.csv", imported(records, seconds, **changes), verification, rolled_back=rolled_back
    )


@pytest.mark.parametrize(
    ("ladder", "verdict", "passed"),
    [
        (ladder_of(), "STOPPED", False),
        (ladder_of(step(), stopped="b.csv: gone"), "STOPPED", False),
        (ladder_of(step(), step(status="failed")), "IMPORT FAILED", False),
        (ladder_of(step(inserted=0), step(verification=empty_verification(False))), "VERIFICATION FAILED", False),
        (ladder_of(step(), step(seconds=100.0)), "BELOW TARGET", False),
        (ladder_of(step(dry_run=True, status="dry_run"), step(dry_run=True, status="dry_run")), "DRY RUN", False),
        (ladder_of(step(inserted=0), step(dry_run=True, status="dry_run")), "NOTHING NEW", True),
        (ladder_of(step(rolled_back=True)), "NOTHING NEW", True),
        (ladder_of(step(inserted=0), step()), "LADDER PASSED", True),
        (ladder_of(step(rejected=1, rejects_path="r.csv")), "LADDER PASSED WITH WARNINGS", True),
        (ladder_of(step(rejected=1, rejects_path="r.csv", rolled_back=True), step()), "LADDER PASSED", True),
    ],
)
def test_a_ladder_s_verdict(ladder: LadderResult, verdict: str, passed: bool) -> None:
    assert (ladder.verdict, ladder.passed) == (verdict, passed)


def test_the_ladder_table_and_rows_word_for_word(tmp_path: Path) -> None:
    reasons = [{"reason": "rating: 9.5 is outside 1.0 to 5.0"}, {"reason": "email: 'x' is not a valid address"}]
    rejects = write_csv(tmp_path / "r.csv", reasons, ["reason"])
    no_reasons = write_csv(tmp_path / "none.csv", [], ["reason"])
    ladder = ladder_of(
        step(20, 0.5),
        step(150, 2.10049, rejected=2, inserted=148, rejects_path=str(rejects), verification=empty_verification(True)),
        step(
            1500, 40.0, rejected=1, inserted=1499, rejects_path=str(no_reasons), verification=empty_verification(False)
        ),
        stopped="verification failed after the medium rung (total_count)",
    )
    rows = ladder.rows()
    assert rows[1] == {
        "rung": "small",
        "file": "f.csv",
        "records": 150,
        "inserted": 148,
        "skipped": 0,
        "rejected": 2,
        "rejected_share": 0.013333,
        "max_reject_rate": 0.01,
        "seconds": 2.1,
        "records_per_second": 71.4,
        "target_rate": 50.0,
        "verified": True,
        "verdict": "too many rejects",
    }
    assert [(r["verified"], r["verdict"]) for r in rows] == [
        (None, "pass"),
        (True, "too many rejects"),
        (False, "verification failed"),
    ]
    assert ladder.table() == "\n".join(
        [
            "rung      records  rejected  seconds  records/s  target  verified verdict",
            "-" * 73,
            "test           20      0.0%     0.50         40       -  -        pass",
            "small         150      1.3%     2.10         71      50  yes      too many rejects",
            "medium      1,500     <0.1%    40.00         38      75  NO       verification failed",
            f"  rejects: 2 (1.3%) -> {rejects} (1 x rating is outside 1.0 to 5.0; 1 x email is not a valid address)",
            f"  rejects: 1 (<0.1%) -> {no_reasons}",
            "",
            "Ladder stopped (TOO MANY REJECTS): verification failed after the medium rung (total_count)",
        ]
    )
    data = ladder.to_dict()
    assert (data["verdict"], data["passed"], data["stopped"]) == ("TOO MANY REJECTS", False, ladder.stopped)
    assert data["rungs"] == rows and [r["rejected"] for r in data["rejects"]] == [2, 1]
    assert [r.import_id for r in ladder.rejects] == ["imp-x", "imp-x"]
    assert (
        repr(ladder) == "<LadderResult TOO MANY REJECTS: test pass, small too many rejects, medium verification failed>"
    )
    assert repr(ladder_of()) == "<LadderResult STOPPED: no rungs>"
    assert (
        ladder_of(step(seconds=100.0)).table().splitlines()[-1]
        == "Ladder stopped (BELOW TARGET): a rung missed its target"
    )
    assert ladder_of(step()).table().splitlines()[-1] == "Ladder passed."
    assert list(ladder.to_frame()["rung"]) == ["test", "small", "medium"]
    assert list(ladder.rungs[0].to_frame()["rung"]) == ["test"]
    assert "medium" in ladder._repr_html_() and "small" in ladder.rungs[1]._repr_html_()


# --- the runners: what reaches each rung ------------------------------------------------------------------


@pytest.fixture
def narrow_rungs(monkeypatch: pytest.MonkeyPatch) -> None:
    """The ladder's rules at a tenth of the size, in a smaller way: 150 records is a large import
    (a confirmation), 1,000 an extra large one (--force)."""
    monkeypatch.setattr(
        rungs,
        "RUNGS",
        (
            Rung("test", 0, 10, None, None),
            Rung("small", 100, 100, 1.0, None),
            Rung("large", 140, 100, 1.0, "confirm"),
            Rung("extra_large", 1_000, 500, 1.0, "force"),
        ),
    )


def test_every_rung_is_confirmed_before_the_first_runs(tmp_path: Path, narrow_rungs: None) -> None:
    files = [write_records(tmp_path / "a.csv", 20), write_records(tmp_path / "b.csv", 150, start=20)]
    with connect(f"sqlite:///{tmp_path / 'ladder.db'}", create=True) as target:
        with pytest.raises(ConfirmationRequired, match="150 records is a large import"):
            run_ladder(target, files=files, benchmarks=False)
        assert target.scalar("SELECT COUNT(*) FROM ef_imports") == 0  # not even the first rung
        asked: list[str] = []
        result = run_ladder(
            target, files=files, confirm=lambda q: asked.append(q) or True, benchmarks=False, verify_runs=1
        )
        # Asked once, up front; the rung itself then runs as confirmed.
        assert asked == ["150 records is a large import. Go ahead?"]
        assert [s.rung.name for s in result.rungs] == ["test", "large"] and result.passed
        assert result.rungs[1].verification is not None and result.rungs[1].verification.passed
        # A chosen batch size is taken as knowing what one does: nothing is asked.
        again = write_records(tmp_path / "c.csv", 150, start=170)
        chosen = run_ladder(target, files=[again], batch_size=50, benchmarks=False, verify_runs=1)
        assert chosen.rungs[0].imported.batches == 3
        big = write_records(tmp_path / "d.csv", 1_000, start=320)
        with pytest.raises(ConfirmationRequired, match="pass --force"):
            run_ladder(target, files=[big], yes=True, confirm=lambda q: True)
        assert target.scalar("SELECT COUNT(*) FROM ef_imports") == 3
        assert run_ladder(target, files=files, yes=True, benchmarks=False, verify_runs=1).verdict == "NOTHING NEW"
        forced = run_ladder(target, files=[big], force=True, dry_run=True)
        assert forced.verdict == "DRY RUN" and target.scalar("SELECT COUNT(*) FROM ef_imports") == 5


def test_verification_settings_reach_every_rung(tmp_path: Path, three_rungs: list[Path]) -> None:
    seen: list[RungResult] = []
    done: list[int] = []
    with connect(f"sqlite:///{tmp_path / 'ladder.db'}", create=True) as target:
        result = run_ladder(
            target,
            files=three_rungs[:2],
            verify_runs=2,
            on_rung=seen.append,
            progress=lambda metrics: done.append(metrics.done),
        )
    assert seen == result.rungs and done == [10, 20, 100, 150]
    verification = result.rungs[1].verification
    assert verification is not None and {len(b.runs_ms) for b in verification.benchmarks} == {2}


def test_a_ladder_that_fails_only_its_latencies_says_so(
    tmp_path: Path, three_rungs: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The package's `verify` is the function; the module holds the limits.
    monkeypatch.setattr(
        sys.modules["estateflow_nb.verify"],
        "BENCHMARKS",
        [("count", "COUNT query", 0.0, "SELECT COUNT(*) FROM professionals")],
    )
    with connect(f"sqlite:///{tmp_path / 'ladder.db'}", create=True) as target:
        result = run_ladder(target, files=three_rungs, verify_runs=1)
    assert [s.rung.name for s in result.rungs] == ["test", "small"]
    assert result.stopped == "verification failed after the small rung (latency)"


class SeenAsD1(Forwarding):
    """A SQLite file that says it is D1: what plans against D1's free tier, on a real file."""

    def __init__(self, inner: Target) -> None:
        super().__init__(inner)
        self.kind = "d1"


def test_the_free_tier_plans_the_whole_ladder_before_the_first_rung(tmp_path: Path, three_rungs: list[Path]) -> None:
    with connect(f"sqlite:///{tmp_path / 'ladder.db'}", create=True) as inner:
        inner.execute(
            [
                Sql(
                    "INSERT INTO ef_imports (id, source_path, source_sha256, target, batch_size, status, rows_written,"
                    " started_at) VALUES ('imp-0', 'x.csv', 'abc', 'd1', 10, 'completed', 98900,"
                    " strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))"
                )
            ]
        )
        target = SeenAsD1(inner)
        # 20 and 150 records: (20 + 150) x 6 rows, 2 + 2 batches, 2 imports: 1,038 of the 1,100 left today.
        fits = run_ladder(target, files=three_rungs[:2], free_tier=True, benchmarks=False, verify_runs=1)
        assert fits.passed
        with pytest.raises(ConfirmationRequired, match="the same ladder command again") as refused:
            run_ladder(target, files=three_rungs, free_tier=True)
        assert refused.value.flag == "--split-days" and inner.scalar("SELECT COUNT(*) FROM ef_imports") == 3
        planned = run_ladder(target, files=three_rungs, free_tier=True, dry_run=True)
        assert planned.verdict == "DRY RUN"
        # With --split-days each rung keeps to the budget itself, and the ladder stops where it ran out.
        split = run_ladder(target, files=three_rungs[2:], free_tier=True, split_days=True, benchmarks=False)
        assert split.rungs[0].verdict == "import failed" and "stopped before sending it" in str(split.stopped)


def test_the_notebook_s_parameters_run_a_ladder_of_files_or_climb_one(tmp_path: Path, three_rungs: list[Path]) -> None:
    a, b, c = three_rungs
    with connect(f"sqlite:///{tmp_path / 'ladder.db'}", create=True) as target:
        ladder = run_from_parameters(target, files=f" {a}, ,{b} ", verify_runs=1, max_reject_rate=0.05)
        assert [s.file for s in ladder.rungs] == [str(a), str(b)]
        assert {s.max_reject_rate for s in ladder.rungs} == {0.05}
        verification = ladder.rungs[1].verification
        assert verification is not None and {len(t.runs_ms) for t in verification.benchmarks} == {1}
        climbed = run_from_parameters(target, file=str(c), rungs="10,20", batch_size=5, dry_run=True, verify_runs=1)
        assert isinstance(climbed, ClimbResult) and climbed.verdict == "DRY RUN"
        assert [(s.imported.records_read, s.imported.batch_size) for s in climbed.rungs][:2] == [(10, 5), (20, 5)]
        assert target.scalar("SELECT COUNT(*) FROM ef_imports") == 2


def multiline_csv(path: Path, records: int, newlines: int) -> Path:
    """`records` valid records whose company names span `newlines` + 1 lines each."""
    rows = [{**r, "company": "Co" + "\n" * newlines} for r in generate_records(records, seed=12)]
    return write_csv(path, rows)


def test_rungs_are_picked_by_the_count_of_records_not_of_lines(tmp_path: Path) -> None:
    """Counted exactly up to the top rung's start: 101 records of 100 lines each are a small import, not
    a large one; 10,001 of 10 lines each a large one, not an extra large one."""
    with connect(f"sqlite:///{tmp_path / 'ladder.db'}", create=True) as target:
        small = multiline_csv(tmp_path / "small.csv", 101, 99)
        settle(target, [small], ImportOptions(), None)  # nothing to confirm
        large = multiline_csv(tmp_path / "large.csv", 10_001, 9)
        settle(target, [large], ImportOptions(yes=True), None)  # --yes is enough, not --force
        with pytest.raises(ConfirmationRequired, match="10,001 records is a large import"):
            settle(target, [large], ImportOptions(), None)


def test_the_notebook_s_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, narrow_rungs: None) -> None:
    """The ladder of the generated files in data/, nothing confirmed, five timed runs per verification;
    a file climbed in the default rungs with each rung's batch size, written for real."""
    made: list[Path] = []

    def write_ladder(directory: Path) -> list[Path]:
        made.append(directory)
        return []

    monkeypatch.setattr(generate_module, "write_ladder", write_ladder)
    monkeypatch.setattr(ladder_module, "project_path", lambda path: tmp_path / path)
    with connect(f"sqlite:///{tmp_path / 'ladder.db'}", create=True) as target:
        assert run_from_parameters(target).rungs == [] and made == [tmp_path / "data"]
        run_from_parameters(target, directory="elsewhere")
        assert made[-1] == tmp_path / "elsewhere"
        large = write_records(tmp_path / "b.csv", 150)
        with pytest.raises(ConfirmationRequired, match="150 records is a large import"):
            run_from_parameters(target, files="b.csv")
        done = run_from_parameters(target, files="b.csv", yes=True)
        verification = done.rungs[0].verification
        assert verification is not None and {len(b.runs_ms) for b in verification.benchmarks} == {5}
        big = write_records(tmp_path / "d.csv", 1_000, start=200)
        with pytest.raises(ConfirmationRequired, match="pass --force"):
            run_from_parameters(target, files="d.csv", yes=True)
        assert run_from_parameters(target, files="d.csv", force=True, verify_runs=1).rungs[0].imported.inserted == 1000
        climbed = run_from_parameters(
            target, file=str(write_records(tmp_path / "e.csv", 150, start=2000)), verify_runs=2
        )
        assert [s.imported.records_read - s.imported.resumed_from for s in climbed.rungs] == [10, 100, 40]
        assert [s.imported.batch_size for s in climbed.rungs] == [10, 100, 10]
        assert target.scalar("SELECT COUNT(*) FROM professionals") == 1150 + 150
        assert {len(b.runs_ms) for s in climbed.rungs if s.verification for b in s.verification.benchmarks} == {2}
    assert large.exists() and big.exists()


def test_what_reaches_one_rung_or_a_climb(tmp_path: Path, narrow_rungs: None, monkeypatch: pytest.MonkeyPatch) -> None:
    assert nothing_new(imported(1, 1.0, inserted=0))  # one record, already there
    b = write_records(tmp_path / "b.csv", 150)
    logged: list[str] = []
    with connect(f"sqlite:///{tmp_path / 'ladder.db'}", create=True) as target:
        # A large rung confirmed through `confirm`; the log reaches the import; the defaults verify with timings.
        step = run_rung(target, b, confirm=lambda q: True, free_tier=True, log=logged.append)
        assert logged[0] == "--free-tier: sqlite has no row-write quota; nothing to plan"
        assert step.verification is not None and {len(t.runs_ms) for t in step.verification.benchmarks} == {5}
        assert len(step.verification.benchmarks) == 5
        again = run_rung(target, write_records(tmp_path / "c.csv", 150, start=500), batch_size=50, benchmarks=False)
        assert again.imported.batches == 3 and again.verification is not None and again.verification.benchmarks == []
        ladder = run_ladder(target, files=[write_records(tmp_path / "a.csv", 120, start=900)])
        verification = ladder.rungs[0].verification
        assert verification is not None and {len(t.runs_ms) for t in verification.benchmarks} == {5}
        climbed = run_ladder(target, file=write_records(tmp_path / "e.csv", 150, start=2000), benchmarks=False)
        assert all(s.verification is None or s.verification.benchmarks == [] for s in climbed.rungs)
        assert any(s.verification is not None for s in climbed.rungs)
    made: list[Any] = []
    monkeypatch.setattr(generate_module, "write_ladder", lambda directory: made.append(directory) or [])
    with connect(f"sqlite:///{tmp_path / 'other.db'}", create=True) as target:
        assert run_ladder(target).rungs == [] and made == ["data"]


def test_run_ladder_passes_everything_on_to_a_climb_and_to_each_rung(tmp_path: Path, three_rungs: list[Path]) -> None:
    seen: list[str] = []
    done: list[int] = []
    logged: list[str] = []
    asked: list[str] = []
    with connect(f"sqlite:///{tmp_path / 'ladder.db'}", create=True) as target:
        climbed = run_ladder(
            target,
            file=with_rejects(tmp_path / "e.csv", 150, 2, start=2000),  # 2 of the first 10: the first rung fails
            steps="10,100",
            confirm=lambda q: asked.append(q) or True,
            backups_dir=tmp_path / "kept",
            progress=lambda metrics: done.append(metrics.done),
            on_rung=lambda step: seen.append(step.rung.name),
            log=logged.append,
            benchmarks=False,
        )
        assert len(seen) == len(climbed.rungs) == 1 and done and logged and climbed.failed is not None
        assert climbed.undo is not None and climbed.undo.backup_path is not None
        assert Path(climbed.undo.backup_path).parent == tmp_path / "kept"
        lines: list[str] = []
        ladder = run_ladder(target, files=three_rungs[:2], benchmarks=False, verify_runs=1, log=lines.append)
        assert lines and all(s.verification is None or s.verification.benchmarks == [] for s in ladder.rungs)
        # Two checks failing at once are both named.
        target.execute([Sql("UPDATE professionals SET email = 'broken', industry = 'plumbing' WHERE id = 1")])
        stopped = run_ladder(target, files=three_rungs[1:], benchmarks=False, verify_runs=1)
        assert stopped.stopped == "verification failed after the small rung (industries, email_format)"


def test_the_free_tier_plan_counts_what_an_update_rewrites(tmp_path: Path, three_rungs: list[Path]) -> None:
    with connect(f"sqlite:///{tmp_path / 'ladder.db'}", create=True) as inner:
        inner.execute(
            [
                Sql(
                    "INSERT INTO ef_imports (id, source_path, source_sha256, target, batch_size, status, rows_written,"
                    " started_at) VALUES ('imp-0', 'x.csv', 'abc', 'd1', 10, 'completed', 98900,"
                    " strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))"
                )
            ]
        )
        target = SeenAsD1(inner)
        # 1,038 rows fit the 1,100 left; with every record rewritten, 2,398 do not.
        with pytest.raises(ConfirmationRequired, match="--split-days"):
            run_ladder(target, files=three_rungs[:2], free_tier=True, on_conflict="update")
        assert inner.scalar("SELECT COUNT(*) FROM ef_imports") == 1
