"""The plan of a climb (see climb.py): its rungs, each with its range of the file's records and where
it stands in the ledger (passed, to judge, unfinished, to run), read from the ledger alone."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ._climb_text import plan_table
from .errors import RefusedError
from .importer import ImportResult
from .quota import QuotaPlan
from .rungs import Rung, rung_for
from .sources import SourceInfo, Span
from .targets import Target

DEFAULT_STEPS = (10, 100, 1_000, 10_000)
RungState = Literal["passed", "to judge", "unfinished", "to run"]
PASSED = "passed"


def parse_steps(text: str | Sequence[int]) -> tuple[int, ...]:
    """Rung sizes from "10,100,1000,10000" (or a sequence of ints): each a whole number of 1 or more."""
    parts = [p.strip().replace("_", "") for p in text.split(",")] if isinstance(text, str) else list(text)
    try:
        steps = tuple(int(p) for p in parts if str(p))
    except ValueError:
        raise RefusedError(f"rungs are record counts separated by commas (10,100,1000,10000), not {text!r}") from None
    if not steps or any(n < 1 for n in steps):
        raise RefusedError(f"each rung holds 1 record or more, and there is at least one: not {text!r}")
    return steps


@dataclass(frozen=True)
class PlannedRung:
    """One rung of a climb: its place, its range of the file's records, and where it stands."""

    number: int  # 1-based
    first: int  # its first record (1-based)
    records: int  # how many (for the last rung of a file counted only in part, an estimate)
    to_end: bool  # it takes every record to the end of the file
    state: RungState
    import_id: str | None = None  # of a rung already imported (passed, to judge or unfinished)
    offset: int | None = None  # the byte offset its reading starts at, where known
    predicted: ImportResult | None = None  # a dry run of it (`Climb.plan(predict=True)`)
    quota: QuotaPlan | None = None  # D1: the rows it writes against today's free-tier budget

    @property
    def last(self) -> int:
        return self.first + self.records - 1

    @property
    def rung(self) -> Rung:
        """The rung of its size: its batch size and safety rule."""
        return rung_for(self.records)

    @property
    def span(self) -> Span:
        return Span(self.first, None if self.to_end else self.records, self.offset)

    def to_dict(self) -> dict[str, Any]:
        predicted = self.predicted
        return {
            "number": self.number,
            "first_record": self.first,
            "last_record": self.last,
            "records": self.records,
            "to_end": self.to_end,
            "rung": self.rung.name,
            "state": self.state,
            "import_id": self.import_id,
            "predicted": None
            if predicted is None
            else {
                "rejected": predicted.rejected,
                "reasons": dict(predicted.reject_reasons.most_common()),
                "inserted": predicted.inserted,
                "skipped": predicted.skipped,
                "updated": predicted.updated,
            },
            "rows_on_d1": None if self.quota is None else self.quota.estimated_rows,
        }


@dataclass
class Standing:
    """Where a file's climb stands, from the ledger: the rungs that passed, the one after them if it was
    imported but not judged or not finished, and where the next rung starts reading."""

    passed: list[dict[str, Any]] = field(default_factory=list)  # their ledger rows, in order
    pending: dict[str, Any] | None = None
    offset: int | None = None
    changed: str | None = None  # the file changed since the last rung passed: a line that says so

    @property
    def done(self) -> int:
        """The last record of the last rung that passed (0: none did)."""
        return int(self.passed[-1]["last_record"]) if self.passed else 0


def standing(target: Target, source: SourceInfo) -> Standing:
    """Where the climb of `source` stands (see the module's docstring)."""
    rows = target.query(
        "SELECT * FROM ef_imports WHERE source_path = ? AND first_record IS NOT NULL AND status != 'rolled_back'"
        " ORDER BY first_record, (rung_verdict IS ? AND status = 'completed') DESC, started_at DESC, rowid DESC",
        (str(source.path.resolve()), PASSED),
    )
    found = Standing()
    for row in rows:
        if row["first_record"] != found.done + 1:
            continue
        if row["status"] == "completed" and row["rung_verdict"] == PASSED:
            found.passed.append(row)
        else:
            found.pending = row
            break
    if found.passed:
        last = found.passed[-1]
        if last["source_sha256"] == source.sha256:
            found.offset = last["end_offset"]
        else:
            found.changed = (
                f"{source.path} changed since rung {len(found.passed)} passed (SHA-256 {last['source_sha256'][:12]}..."
                f" then, {source.sha256[:12]}... now): the climb goes on after record {found.done:,} of the file"
                " as it is now, found by counting its records; records already present are skipped as usual"
            )
    return found


def plan_rungs(source: SourceInfo, where: Standing, steps: Sequence[int]) -> list[PlannedRung]:
    """Every rung of the climb: those that passed, then the rest of the file by `steps` (each rung the
    next step, and the last one the rest). The step boundaries stay where `steps` puts them, so a climb
    that goes on after a failed rung climbs the same rungs again."""
    rungs = [
        PlannedRung(n, row["first_record"], row["last_record"] - row["first_record"] + 1, False, "passed", row["id"])
        for n, row in enumerate(where.passed, 1)
    ]
    total, first = source.records, where.done + 1
    at_end = where.offset is not None and source.format != "sql" and where.offset >= source.path.stat().st_size
    bounds = [sum(steps[: i + 1]) for i in range(len(steps))]
    pending = where.pending
    while first <= total and not at_end:
        number = len(rungs) + 1
        if pending is not None and first == pending["first_record"]:
            last = pending["last_record"]
            records = (last if last is not None else total) - first + 1
            state: RungState = "to judge" if pending["status"] == "completed" else "unfinished"
            rungs.append(
                PlannedRung(number, first, records, last is None, state, pending["id"], pending["start_offset"])
            )
        else:
            end = next((b for b in bounds if b >= first), None)
            to_end = end is None or end >= total
            offset = where.offset if first == where.done + 1 else None
            rungs.append(
                PlannedRung(number, first, min(end or total, total) - first + 1, to_end, "to run", None, offset)
            )
        if rungs[-1].to_end:
            break
        first = rungs[-1].last + 1
    return rungs


@dataclass
class ClimbPlan:
    """The plan of a climb: the file, where it stands, and every rung with its range."""

    source: SourceInfo
    rungs: list[PlannedRung]
    steps: tuple[int, ...]
    max_reject_rate: float
    changed: str | None = None
    quota: QuotaPlan | None = None  # D1: the rungs to run, together, against today's budget

    @property
    def to_run(self) -> list[PlannedRung]:
        return [r for r in self.rungs if r.state != "passed"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": str(self.source.path),
            "sha256": self.source.sha256,
            "records": self.source.records,
            "records_exact": self.source.exact,
            "steps": list(self.steps),
            "changed": self.changed,
            "rungs": [r.to_dict() for r in self.rungs],
            "quota": None if self.quota is None else {"fits": self.quota.fits, "summary": self.quota.summary()},
        }

    def table(self) -> str:
        return plan_table(self)
