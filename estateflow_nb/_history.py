"""Verification history: every verification recorded in the database (`ef_verifications`), and what
changed since the one before.

A verification reads the earlier ones before it records itself, so that its report can say what
changed: the rows per industry and state, the checks whose verdict changed, the latency trend.
Recording is the one write a verification makes. It never decides the verdict: on a database that
cannot be written (a read-only file, a writer holding the lock past the busy timeout) the report
says the verification was not recorded, and why.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ._time import new_id
from .errors import EstateFlowError
from .targets import Sql, Target

# How many earlier verifications a report reads: enough for a trend, few enough to read at once.
HISTORY_LIMIT = 30
PLACE_SEPARATOR = "|"


@dataclass
class HistoryEntry:
    """One recorded verification."""

    id: str
    checked_at: str
    verdict: str
    rows: int
    seconds: float
    checks: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> {passed, failing, observed}
    latencies: dict[str, float] = field(default_factory=dict)  # benchmark name -> median ms
    counts: dict[str, int] = field(default_factory=dict)  # "industry|state" -> rows

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> HistoryEntry:
        return cls(
            id=row["id"],
            checked_at=row["checked_at"],
            verdict=row["verdict"],
            rows=int(row["rows"]),
            seconds=float(row["seconds"]),
            checks=_json(row["checks"]),
            latencies=_json(row["latencies"]),
            counts=_json(row["counts"]),
        )


def _json(text: Any) -> dict[str, Any]:
    try:
        value = json.loads(text or "{}")
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def place_key(industry: Any, state: Any) -> str:
    return f"{industry}{PLACE_SEPARATOR}{state}"


def counts_by_place(shape: list[dict[str, Any]]) -> dict[str, int]:
    """Rows per industry and state, from the rating shape (industry x state x rating counts)."""
    counts: dict[str, int] = {}
    for row in shape:
        key = place_key(row["industry"], row["state"])
        counts[key] = counts.get(key, 0) + int(row["n"])
    return dict(sorted(counts.items()))


def earlier(target: Target, limit: int = HISTORY_LIMIT) -> list[HistoryEntry]:
    """The newest `limit` recorded verifications, oldest first ([] where none can be read)."""
    try:
        rows = target.query(
            "SELECT * FROM ef_verifications ORDER BY checked_at DESC, rowid DESC LIMIT ?", (int(limit),)
        )
    except EstateFlowError:
        return []
    return [HistoryEntry.from_row(row) for row in reversed(rows)]


def record(target: Target, entry: HistoryEntry) -> str | None:
    """Write `entry` into the history; None when written, else why not (the verdict stands either way)."""
    try:
        target.execute(
            [
                Sql(
                    "INSERT INTO ef_verifications (id, checked_at, verdict, rows, seconds, checks, latencies, counts)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        entry.id,
                        entry.checked_at,
                        entry.verdict,
                        entry.rows,
                        round(entry.seconds, 6),
                        json.dumps(entry.checks, default=str, ensure_ascii=False),
                        json.dumps(entry.latencies),
                        json.dumps(entry.counts, ensure_ascii=False),
                    ),
                )
            ]
        )
    except EstateFlowError as error:
        return f"not recorded in the history: {error}"
    return None


def new_entry_id() -> str:
    return new_id("ver")


@dataclass
class PlaceChange:
    industry: str
    state: str
    before: int
    now: int

    @property
    def delta(self) -> int:
        return self.now - self.before


@dataclass
class CheckChange:
    name: str
    title: str
    before: bool | None  # None: the check was not there before
    now: bool
    failing_before: int
    failing_now: int


@dataclass
class Changes:
    """What changed between the previous verification and this one."""

    since: HistoryEntry
    rows_before: int
    rows_now: int
    places: list[PlaceChange]  # only the industry and state pairs whose rows changed
    checks: list[CheckChange]  # only the checks whose verdict changed
    latencies: dict[str, tuple[float | None, float]]  # benchmark -> (median before, now)


def changes_since(
    previous: HistoryEntry, rows: int, counts: dict[str, int], checks: list[Any], latencies: dict[str, float]
) -> Changes:
    """The changes from `previous` to a verification of `rows` rows with these counts, check results
    (objects with name, title, passed and failing) and latency medians."""
    places = []
    for key in sorted(set(previous.counts) | set(counts)):
        before, now = int(previous.counts.get(key, 0)), int(counts.get(key, 0))
        if before != now:
            industry, _, state = key.partition(PLACE_SEPARATOR)
            places.append(PlaceChange(industry, state, before, now))
    changed = []
    for check in checks:
        earlier_result = previous.checks.get(check.name)
        was = None if earlier_result is None else bool(earlier_result.get("passed"))
        if was != check.passed:
            failing_before = 0 if earlier_result is None else int(earlier_result.get("failing") or 0)
            changed.append(CheckChange(check.name, check.title, was, check.passed, failing_before, check.failing))
    trend = {name: (previous.latencies.get(name), ms) for name, ms in latencies.items()}
    return Changes(previous, previous.rows, rows, places, changed, trend)
