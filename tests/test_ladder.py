from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from estateflow_nb import ConfirmationRequired, SqlError, connect, run_ladder, rung_for, write_records
from estateflow_nb.rungs import check_confirmation
from estateflow_nb.targets import InsertRows, Sql, SQLiteTarget
from estateflow_nb.targets._base import ExecuteResult, Statement


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


def test_safety_rules() -> None:
    large, extra = rung_for(10_000), rung_for(100_000)
    check_confirmation(rung_for(9_999), 9_999)
    with pytest.raises(ConfirmationRequired) as refused:
        check_confirmation(large, 10_000)
    assert refused.value.flag == "--yes"
    check_confirmation(large, 10_000, yes=True)
    check_confirmation(large, 10_000, confirm=lambda question: True)
    check_confirmation(large, 10_000, force=True)
    for kwargs in ({"yes": True}, {"confirm": lambda question: True}, {}):
        with pytest.raises(ConfirmationRequired) as refused:
            check_confirmation(extra, 100_000, **kwargs)  # type: ignore[arg-type]
        assert refused.value.flag == "--force"
    check_confirmation(extra, 100_000, force=True)


def test_the_whole_ladder_runs_and_verifies(tmp_path: Path) -> None:
    seen: list[str] = []
    with connect(f"sqlite:///{tmp_path / 'ladder.db'}") as target:
        result = run_ladder(
            target,
            directory=tmp_path / "data",
            yes=True,
            verify_runs=1,
            on_rung=lambda step: seen.append(step.rung.name),
        )
        assert target.scalar("SELECT COUNT(*) FROM professionals") == 11_110
    assert seen == ["test", "small", "medium", "large"]
    assert result.passed and result.stopped is None
    rows = result.rows()
    assert [r["records"] for r in rows] == [10, 100, 1000, 10_000]
    assert [r["verified"] for r in rows] == [None, True, True, True]
    assert [r["target_rate"] for r in rows] == [None, 50.0, 75.0, 100.0]
    assert all(r["verdict"] == "pass" for r in rows)
    assert "Ladder passed." in result.table()


def test_ladder_refuses_up_front_without_confirmation(tmp_path: Path) -> None:
    with connect(f"sqlite:///{tmp_path / 'ladder.db'}") as target:
        with pytest.raises(ConfirmationRequired, match="--yes"):
            run_ladder(target, directory=tmp_path / "data")
        assert target.scalar("SELECT COUNT(*) FROM ef_imports") == 0


def test_ladder_stops_at_the_first_failed_verification(tmp_path: Path) -> None:
    files = [
        write_records(tmp_path / "a.csv", 20),
        write_records(tmp_path / "b.csv", 150, start=20),
        write_records(tmp_path / "c.csv", 1500, start=170),
    ]
    with connect(f"sqlite:///{tmp_path / 'ladder.db'}") as target:
        # A row no import accounts for: the total count check fails at the first verification.
        target.execute(
            [
                Sql(
                    "INSERT INTO professionals (first_name, last_name, email, license_number, industry, state, city,"
                    " created_at, updated_at) VALUES ('A', 'B', 'a@b.co', 'HAND-1', 'legal', 'TX', 'Austin', 'x', 'x')"
                )
            ]
        )
        result = run_ladder(target, files=files, verify_runs=1)
        assert target.scalar("SELECT COUNT(*) FROM professionals") == 1 + 20 + 150
    assert [r.rung.name for r in result.rungs] == ["test", "small"]
    assert result.rungs[-1].verdict == "verification failed"
    assert not result.passed and "total_count" in (result.stopped or "")


class FailingOnBatch(SQLiteTarget):
    """A SQLite target whose `fail_at`-th write of professionals fails as a SQL error would."""

    def __init__(self, path: Path, fail_at: int) -> None:
        super().__init__(path)
        self.fail_at, self.writes = fail_at, 0

    def execute(self, statements: Sequence[Statement], **kwargs: Any) -> ExecuteResult:
        if any(isinstance(s, InsertRows) and s.table == "professionals" for s in statements):
            self.writes += 1
            if self.writes == self.fail_at:
                raise SqlError("no such column: injected")
        return super().execute(statements, **kwargs)


def test_ladder_stops_at_the_first_failed_import_and_says_why(tmp_path: Path) -> None:
    files = [
        write_records(tmp_path / "a.csv", 20),
        write_records(tmp_path / "b.csv", 150, start=20),
        write_records(tmp_path / "c.csv", 1500, start=170),
    ]
    with FailingOnBatch(tmp_path / "ladder.db", fail_at=4) as target:  # a.csv: 2 batches, b.csv: 2
        result = run_ladder(target, files=files, verify_runs=1)
        assert target.scalar("SELECT COUNT(*) FROM professionals") == 20 + 100
    test, small = result.rungs
    assert test.verdict == "pass" and test.error is None
    assert small.verdict == "import failed" and small.verification is None
    assert small.error and small.error.startswith(f"import {small.imported.import_id} stopped at record 100 of 150")
    assert "no such column: injected" in small.error
    assert result.stopped == f"b.csv: {small.error}" and not result.passed
