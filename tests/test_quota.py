"""The D1 free tier's arithmetic, on a real SQLite file: the quota module asks a target only for its
indexes and its ledger, so every figure here is exact (the D1 tests show the plan against what the
local engine reports written)."""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from estateflow_nb import connect, generate_records
from estateflow_nb.errors import QuotaExceededError
from estateflow_nb.quota import (
    FREE_TIER_ROWS_PER_DAY,
    LEDGER_ROWS_PER_BATCH,
    LEDGER_ROWS_PER_IMPORT,
    QuotaGuard,
    QuotaPlan,
    combine,
    estimate_rows,
    plan_import,
    rows_per_record,
    stop_advice,
    written_today,
)
from estateflow_nb.schema import STORED_COLUMNS, clean_record
from estateflow_nb.targets import InsertRows, Sql, SQLiteTarget, Target

NOW = datetime(2026, 11, 2, 10, 30, 15, 250_000, tzinfo=UTC)


@pytest.fixture
def db(tmp_path: Path) -> Iterable[SQLiteTarget]:
    target = connect(f"sqlite:///{tmp_path / 'quota.db'}", create=True)
    assert isinstance(target, SQLiteTarget)
    yield target
    target.close()


def ledger_row(
    target: Target,
    import_id: str,
    rows_written: int,
    started_at: str,
    finished_at: str | None = None,
    records: tuple[int | None, int] = (120, 45),
) -> None:
    """A ledger row of an import of `records` (records_total, checkpoint)."""
    target.execute(
        [
            Sql(
                "INSERT INTO ef_imports (id, source_path, source_sha256, target, batch_size, status, rows_written,"
                " records_total, checkpoint, started_at, finished_at)"
                " VALUES (?, 'x.csv', 'abc', 'here', 10, 'completed', ?, ?, ?, ?, ?)",
                (import_id, rows_written, *records, started_at, finished_at),
            )
        ]
    )


def test_a_record_writes_its_row_and_one_entry_per_full_index(db: SQLiteTarget) -> None:
    # The row, the UNIQUE license number and four indexes; the three partial indexes hold no valid row.
    assert rows_per_record(db) == 6
    db.execute(
        [
            Sql("CREATE INDEX extra_partial ON professionals(city) WHERE rating > 4"),
            Sql("CREATE INDEX elsewhere ON ef_imports(status)"),
        ]
    )
    assert rows_per_record(db) == 6
    db.execute([Sql("CREATE INDEX extra_full ON professionals(last_name)")])
    assert rows_per_record(db) == 7


def test_a_table_without_indexes_writes_one_row_a_record(db: SQLiteTarget) -> None:
    names = db.query("SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")
    db.execute([Sql(f"DROP INDEX {row['name']}") for row in names])
    db.execute([Sql("CREATE TABLE bare AS SELECT * FROM professionals"), Sql("DROP TABLE professionals")])
    db.execute([Sql("ALTER TABLE bare RENAME TO professionals")])
    assert rows_per_record(db) == 1


def test_written_today_counts_what_ran_since_midnight_utc(db: SQLiteTarget) -> None:
    assert written_today(db, NOW) == 0
    ledger_row(db, "yesterday", 1_000, "2026-11-01T22:00:00Z", "2026-11-01T23:59:59Z")
    ledger_row(db, "at-midnight", 100, "2026-11-01T23:00:00Z", "2026-11-02T00:00:00Z")  # finished today
    ledger_row(db, "a-second-in", 20, "2026-11-02T00:00:01Z")  # still running: its start counts
    ledger_row(db, "a-minute-in", 3, "2026-11-02T00:00:59Z", "2026-11-02T00:00:59Z")
    ledger_row(db, "an-hour-in", 4000, "2026-11-02T00:30:00Z", "2026-11-02T01:00:00Z")
    ledger_row(db, "nothing-yet", 0, "2026-11-02T02:00:00Z")
    assert written_today(db, NOW) == 100 + 20 + 3 + 4000
    # The same moment seen from UTC+05:00 is the same UTC day; the next UTC day counts nothing yet.
    assert written_today(db, NOW.astimezone(timezone(timedelta(hours=5)))) == 4123
    assert written_today(db, NOW + timedelta(days=1)) == 0
    assert written_today(db, NOW - timedelta(days=1)) == 1000 + 4123


def test_today_is_the_utc_day_whatever_the_machine_s_zone(db: SQLiteTarget, monkeypatch: pytest.MonkeyPatch) -> None:
    ledger_row(db, "early", 7, "2026-11-02T01:00:00Z")  # 20:00 the day before in New York
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        assert written_today(db, NOW) == 7
        assert plan_import(db, 10, 10, now=NOW).now.tzinfo == UTC
    finally:
        monkeypatch.undo()
        time.tzset()


@pytest.mark.parametrize(
    ("records", "batch_size", "on_conflict", "rows"),
    [
        (0, 10, "skip", LEDGER_ROWS_PER_IMPORT),  # no batch at all
        (1, 10, "skip", 6 + 2 + 5),
        (20, 10, "skip", 20 * 6 + 2 * 2 + 5),  # batches fill exactly
        (21, 10, "skip", 21 * 6 + 3 * 2 + 5),  # one more record is one more batch
        (21, 10, None, 21 * 6 + 3 * 2 + 5),
        (21, 10, "fail", 21 * 6 + 3 * 2 + 5),
        (21, 10, "update", 21 * 6 + 3 * 2 + 5 + 21 * (6 + 2)),  # rewritten entries and a before image
    ],
)
def test_an_import_is_estimated_row_by_row(records: int, batch_size: int, on_conflict: str | None, rows: int) -> None:
    assert (LEDGER_ROWS_PER_IMPORT, LEDGER_ROWS_PER_BATCH) == (5, 2)
    assert estimate_rows(records, batch_size, on_conflict, 6) == rows


def plan(estimated: int, written: int, records: int = 100, limit: int = 1_000) -> QuotaPlan:
    return QuotaPlan(records, estimated, 6, written, daily_limit=limit, now=NOW)


def test_a_plan_fits_up_to_the_last_row_of_the_budget() -> None:
    assert FREE_TIER_ROWS_PER_DAY == 100_000
    assert QuotaPlan(10, 65, 6, 0, now=NOW).daily_limit == 100_000
    exact = plan(estimated=400, written=600)
    assert (exact.remaining, exact.fits, exact.records_today, exact.days) == (400, True, 100, 1)
    over = plan(estimated=401, written=600)
    assert (over.remaining, over.fits, over.days) == (400, False, 2)
    assert over.records_today == 99  # 400 rows at 4.01 a record
    spent = plan(estimated=10, written=1_200)  # others wrote past the limit: nothing remains, not less
    assert (spent.remaining, spent.fits, spent.records_today, spent.days) == (0, False, 0, 2)


@pytest.mark.parametrize(
    ("estimated", "written", "days"),
    [
        (1_000, 0, 1),  # a whole day's budget, today
        (1_001, 0, 2),
        (1_250, 750, 2),  # 250 today, then 1,000 tomorrow exactly
        (1_251, 750, 3),
        (3_000, 1_000, 4),  # nothing left today, then three full days
    ],
)
def test_days_count_today_s_remainder_then_whole_days(estimated: int, written: int, days: int) -> None:
    assert plan(estimated, written).days == days


def test_records_today_is_what_the_remaining_rows_pay_for() -> None:
    assert plan(estimated=1_000, written=750, records=100).records_today == 25  # 10 rows a record
    assert plan(estimated=1_000, written=751, records=100).records_today == 24  # rounds down
    # One record that does not fit: what remains pays for none of it.
    assert plan(estimated=7, written=994, records=1, limit=1_000).records_today == 0
    assert plan(estimated=7, written=993, records=1, limit=1_000).records_today == 1
    # A plan of no records that does not fit (the ledger rows alone) still says none.
    assert plan(estimated=5, written=997, records=0).records_today == 0


def test_the_summary_and_the_refusal_give_the_figures_and_the_way_out() -> None:
    shown = QuotaPlan(12_345, 74_093, 6, 99_750, now=datetime(2026, 11, 2, 21, 15, tzinfo=UTC))
    assert shown.summary() == (
        "12,345 records write about 74,093 rows on D1 (6 per record with its index entries, plus the ledger);"
        " 99,750 of today's 100,000 free-tier row writes are used, 250 remain"
    )
    assert shown.refusal("estateflow ladder") == (
        f"{shown.summary()}: that does not fit today. Split it across 2 days: add --split-days to write about"
        " 41 records now and stop cleanly before the budget runs out, then run estateflow ladder again after"
        " the quota resets at 00:00 UTC (in 2 h 45 min)."
    )
    assert "then run the same command again after" in shown.refusal()


def test_plan_import_reads_the_indexes_and_today_s_ledger(db: SQLiteTarget) -> None:
    ledger_row(db, "earlier", 99_000, "2026-11-02T08:00:00Z", "2026-11-02T08:10:00Z")
    planned = plan_import(db, 150, 100, now=NOW)
    assert planned == QuotaPlan(150, 150 * 6 + 2 * 2 + 5, 6, 99_000, 100_000, NOW)
    assert planned.fits and planned.remaining == 1_000
    updating = plan_import(db, 150, 100, "update", daily_limit=2_000, now=NOW.astimezone(timezone(timedelta(hours=-8))))
    assert (updating.estimated_rows, updating.daily_limit, updating.remaining) == (909 + 150 * 8, 2_000, 0)
    assert updating.now == NOW and updating.now.tzinfo == UTC
    assert plan_import(db, 150, 100).now.tzinfo == UTC  # now, in UTC


def test_a_ladder_is_planned_as_its_imports_one_after_another() -> None:
    first = QuotaPlan(10, 65, 6, 400, daily_limit=1_000, now=NOW)
    second = QuotaPlan(100, 615, 7, 999, daily_limit=5, now=NOW + timedelta(hours=1))
    both = combine([first, second])
    assert both == QuotaPlan(110, 680, 6, 400, daily_limit=1_000, now=NOW)
    assert not both.fits and both.remaining == 600


def insert(rows: int, start: int = 0) -> InsertRows:
    """`rows` valid records, as a batch of the importer writes them."""
    records = generate_records(rows, seed=2, start=start)
    return InsertRows(
        "professionals", STORED_COLUMNS, [(*clean_record(r, "2026-11-02T00:00:00Z"), None, None) for r in records]
    )


def test_the_guard_refuses_the_batch_that_would_pass_the_budget(db: SQLiteTarget) -> None:
    # 100 rows a day, 5 kept for the ledger's last writes: 95 for batches, at 6 rows a record.
    guard = QuotaGuard(db, QuotaPlan(40, 240, 6, 0, daily_limit=100, now=NOW))
    assert guard.spent == 0
    with pytest.raises(QuotaExceededError) as refused:
        guard.execute([insert(15), *(Sql("SELECT 1") for _ in range(6))])  # 90 + 6 = 96 rows
    assert str(refused.value).startswith(
        "today's free-tier budget of 100 row writes would be passed by the next batch (about 96 rows;"
        " 0 written today); stopped before sending it, the quota resets at 00:00 UTC (in "
    )
    assert db.scalar("SELECT COUNT(*) FROM professionals") == 0 and guard.spent == 0
    done = guard.execute([insert(15), *(Sql("UPDATE ef_imports SET batches = 1") for _ in range(5))])  # 95 rows
    assert db.scalar("SELECT COUNT(*) FROM professionals") == 15
    assert guard.spent == done.rows_written == 15  # what the target reports, not the estimate
    # What was written counts: 15 + 84 passes 95, 15 + 78 does not.
    with pytest.raises(QuotaExceededError, match=r"about 84 rows; 15 written today"):
        guard.execute([insert(14, start=100)])
    guard.execute([insert(13, start=100)])
    assert guard.spent == 28
    # The importer's checkpoint commits with the batch: the guard passes it on.
    committed: list[int] = []
    guard.execute([insert(1, start=200)], before_commit=lambda: committed.append(1))
    assert committed == [1]


def test_the_guard_lets_the_ledger_s_own_writes_through_and_counts_them(db: SQLiteTarget) -> None:
    ledger_row(db, "imp-1", 0, "2026-11-02T08:00:00Z")
    guard = QuotaGuard(db, QuotaPlan(40, 240, 6, 99, daily_limit=100, now=NOW))
    assert guard.spent == 99
    guard.execute([Sql("UPDATE ef_imports SET status = 'failed' WHERE id = 'imp-1'")])
    guard.execute([Sql("UPDATE ef_imports SET status = 'failed'")])
    assert guard.spent == 101  # past the budget: the ledger is never held back
    with pytest.raises(QuotaExceededError):
        guard.execute([insert(1)])


def test_stop_advice_says_what_was_written_and_what_remains(db: SQLiteTarget) -> None:
    ledger_row(db, "imp-1", 4_321, "2026-11-02T08:00:00Z")
    ledger_row(db, "imp-0", 1_000, "2026-11-02T07:00:00Z", "2026-11-02T07:30:00Z")
    assert stop_advice(db, "imp-1", NOW) == (
        "This import wrote 4,321 rows on D1 (5,321 today per the ledger) and 75 records remain: after the reset,"
        " run the same command again to resume after the last committed batch (or upgrade to Workers Paid)."
    )
    assert stop_advice(db, "imp-unknown", NOW).startswith("This import wrote 0 rows on D1 (5,321 today per the ledger)")
    assert " and 0 records remain" in stop_advice(db, "imp-unknown", NOW)
    ledger_row(db, "imp-2", 0, "2026-11-02T09:00:00Z", records=(None, 0))  # not counted yet: nothing known left
    assert " and 0 records remain" in stop_advice(db, "imp-2", NOW)
