"""D1's daily row-write quota: plan an import against it, keep to it, and say what to do when it is hit.

On Cloudflare's free tier an account may write 100,000 rows a day (reset at 00:00 UTC), and every
index entry counts: one record in `professionals` writes its row, its `license_number` entry and one
entry in each of the four indexes, six rows in all. The ledger keeps what D1 reported
(`meta.rows_written`) per import, so what was written today is known without asking Cloudflare.

- `plan_import` estimates the rows an import will write: records x (1 + indexes), plus the ledger.
- `QuotaGuard` wraps a target during a `--free-tier` import: it stops (QuotaExceededError, before
  anything is sent) at the batch that would pass today's budget, so the import ends with its
  checkpoint intact instead of D1 refusing mid-way, and the same command resumes after 00:00 UTC.
- `stop_advice` turns a quota stop into the one line a person needs: written, remaining, when, how.

What the ledger knows is this database's imports: writes by other apps or databases of the same
account are not in it, which is why D1's own quota error is still recognised as the final word. An
import counts on the day it last ran.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ._forwarding import Forwarding
from ._time import ledger_time, utc_now
from .errors import ConfirmationRequired, EstateFlowError, QuotaExceededError, until_reset
from .schema import INDEXES, OnConflict
from .targets import ExecuteResult, InsertRows, Statement, Target

FREE_TIER_ROWS_PER_DAY = 100_000
# Ledger rows an import writes besides its batches: its ledger row (and that row's key), the
# 'running' mark, the settling of its counts and the finish.
LEDGER_ROWS_PER_IMPORT = 5
# Each batch also settles the ledger's counts and moves its checkpoint: two rows.
LEDGER_ROWS_PER_BATCH = 2


def _today(now: datetime | None) -> datetime:
    return (now or utc_now()).astimezone(UTC)


def rows_per_record(target: Target) -> int:
    """Rows one new record writes: the row itself and one entry per index (UNIQUE included).

    Partial indexes are left out: they hold only rows that break a rule, and validation keeps those
    out of the table.
    """
    indexes = target.scalar(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = 'professionals'"
        " AND (sql IS NULL OR sql NOT LIKE '% WHERE %')"
    )
    return 1 + int(indexes or 0)


def written_today(target: Target, now: datetime | None = None) -> int:
    """Rows the ledger says this database's imports wrote today (UTC), as D1 reported them."""
    day = ledger_time(_today(now).replace(hour=0, minute=0, second=0, microsecond=0))
    total = target.scalar(
        "SELECT COALESCE(SUM(rows_written), 0) FROM ef_imports WHERE COALESCE(finished_at, started_at) >= ?",
        (day,),
    )
    return int(total or 0)


def estimate_rows(records: int, batch_size: int, on_conflict: str | None, per_record: int) -> int:
    """Rows an import of `records` records will write at most on D1."""
    batches = math.ceil(records / batch_size) if records else 0
    rows = records * per_record + batches * LEDGER_ROWS_PER_BATCH + LEDGER_ROWS_PER_IMPORT
    if on_conflict == "update":
        # An overwritten record may also rewrite every index entry and keeps a before image (and its key).
        rows += records * (per_record + 2)
    return rows


def request_rows(rows: int, on_conflict: str | None) -> int:
    """Rows a request that writes `rows` records into our schema writes at most on D1, its ledger
    statements included. The ledger keeps this figure for the one request whose own answer comes only
    after its last write: the last batch's, which completes the import (see importer._Run.finish)."""
    # The row, its license number's entry and one entry per secondary index.
    return estimate_rows(rows, max(rows, 1), on_conflict, 2 + len(INDEXES))


@dataclass
class QuotaPlan:
    """An import (or a ladder) set against today's row-write budget."""

    records: int
    estimated_rows: int
    per_record: int
    written_today: int
    daily_limit: int = FREE_TIER_ROWS_PER_DAY
    now: datetime = field(default_factory=utc_now)

    @property
    def remaining(self) -> int:
        return max(0, self.daily_limit - self.written_today)

    @property
    def fits(self) -> bool:
        return self.estimated_rows <= self.remaining

    @property
    def records_today(self) -> int:
        """About how many records fit in what remains of today's budget."""
        if self.fits:
            return self.records
        per = self.estimated_rows / max(self.records, 1)
        return min(self.records, int(self.remaining / per))

    @property
    def days(self) -> int:
        """Days the import needs if each day's whole budget goes to it, today's remainder first."""
        if self.fits:
            return 1
        rest = self.estimated_rows - self.remaining
        return 1 + math.ceil(rest / self.daily_limit)

    def summary(self) -> str:
        return (
            f"{self.records:,} records write about {self.estimated_rows:,} rows on D1"
            f" ({self.per_record} per record with its index entries, plus the ledger); {self.written_today:,} of"
            f" today's {self.daily_limit:,} free-tier row writes are used, {self.remaining:,} remain"
        )

    def refusal(self, command: str = "the same command") -> str:
        return (
            f"{self.summary()}: that does not fit today. Split it across {self.days} days: add --split-days to"
            f" write about {self.records_today:,} records now and stop cleanly before the budget runs out, then"
            f" run {command} again after the quota resets {until_reset(self.now)}."
        )


def plan_import(
    target: Target,
    records: int,
    batch_size: int,
    on_conflict: str | None = "skip",
    *,
    daily_limit: int = FREE_TIER_ROWS_PER_DAY,
    now: datetime | None = None,
) -> QuotaPlan:
    """The quota plan for importing `records` records into `target` today."""
    per = rows_per_record(target)
    return QuotaPlan(
        records=records,
        estimated_rows=estimate_rows(records, batch_size, on_conflict, per),
        per_record=per,
        written_today=written_today(target, now),
        daily_limit=daily_limit,
        now=_today(now),
    )


def combine(plans: Sequence[QuotaPlan]) -> QuotaPlan:
    """One plan for several imports run one after another today (a ladder)."""
    first = plans[0]
    return QuotaPlan(
        records=sum(p.records for p in plans),
        estimated_rows=sum(p.estimated_rows for p in plans),
        per_record=first.per_record,
        written_today=first.written_today,
        daily_limit=first.daily_limit,
        now=first.now,
    )


class QuotaGuard(Forwarding):
    """`inner`, but a write that would pass today's budget is refused before it is sent.

    Only writes that insert records are held back; the ledger's own small updates (a failed import
    must still be marked failed) always go through and are counted. What D1 reports as written is
    added up as it comes. Every other method of the Target interface is `inner`'s (see _forwarding).
    """

    def __init__(self, inner: Target, plan: QuotaPlan) -> None:
        super().__init__(inner)
        self.plan = plan
        self.spent = plan.written_today

    def _estimate(self, statements: Sequence[Statement]) -> int:
        rows = 0
        for statement in statements:
            # A statement other than the records' INSERT writes a ledger row at most.
            rows += len(statement.rows) * self.plan.per_record if isinstance(statement, InsertRows) else 1
        return rows

    def execute(
        self, statements: Sequence[Statement], *, before_commit: Callable[[], None] | None = None
    ) -> ExecuteResult:
        if any(isinstance(s, InsertRows) for s in statements):
            needed = self._estimate(statements)
            # Room is kept for the ledger's last writes (marking the import failed or completed).
            if self.spent + needed > self.plan.daily_limit - LEDGER_ROWS_PER_IMPORT:
                raise QuotaExceededError(
                    f"today's free-tier budget of {self.plan.daily_limit:,} row writes would be passed by the next"
                    f" batch (about {needed:,} rows; {self.spent:,} written today); stopped before sending it,"
                    f" the quota resets {until_reset()}"
                )
        result = self.inner.execute(statements, before_commit=before_commit)
        self.spent += result.rows_written
        return result


def stop_advice(target: Target, import_id: str, now: datetime | None = None) -> str:
    """What a person needs after a quota stop: rows written, records left, when and how to resume."""
    row = target.query("SELECT rows_written, checkpoint, records_total FROM ef_imports WHERE id = ?", (import_id,))
    written = int(row[0]["rows_written"]) if row else 0
    left = int(row[0]["records_total"] or 0) - int(row[0]["checkpoint"]) if row else 0
    return (
        f"This import wrote {written:,} rows on D1 ({written_today(target, now):,} today per the ledger) and"
        f" {left:,} records remain: after the reset, run the same command again to resume after the last"
        " committed batch (or upgrade to Workers Paid)."
    )


__all__ = [
    "FREE_TIER_ROWS_PER_DAY",
    "QuotaGuard",
    "QuotaPlan",
    "combine",
    "estimate_rows",
    "plan_import",
    "rows_per_record",
    "stop_advice",
    "written_today",
]


def free_tier_guard(
    target: Target, records: int, batch_size: int, on_conflict: OnConflict, split_days: bool, say: Callable[[str], None]
) -> Target:
    """The target behind a guard that keeps to today's D1 free-tier budget (planned first)."""
    if target.kind != "d1":
        say(f"--free-tier: {target.kind} has no row-write quota; nothing to plan")
        return target
    plan = plan_import(target, records, batch_size, on_conflict)
    say(f"free tier: {plan.summary()}")
    if not plan.fits and not split_days:
        raise ConfirmationRequired(plan.refusal(), flag="--split-days")
    return QuotaGuard(target, plan)


def stop_advice_or(target: Target, import_id: str, fallback: str) -> str:
    """`stop_advice`, or `fallback` where the ledger cannot be read for it."""
    try:
        return stop_advice(target, import_id)
    except EstateFlowError:
        return fallback
