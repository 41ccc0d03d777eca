"""The twelve checks and the five latency benchmarks, as plain SQL that runs on SQLite and D1 alike,
and the verdict they add up to.

The checks are a list (`CHECKS`): each is one function in _checks.py, registered with
`@check(name, title)`, and `verify` runs them in the order they are registered, numbering them 1, 2,
3, ... in that order. A check reads the database through `Evidence` and returns a `Finding`: what it
observed, what was expected, how many rows fail it, and those rows grouped by kind of failure with
examples of every kind (see _evidence.py). A check passes when nothing fails it.

The verdict: an empty table is NOTHING TO VERIFY (a failure: there is no evidence); a failing check,
a benchmark over its limit or an import whose rejected share is over `max_reject_rate` is FAILED;
rejected records under that limit give PASSED WITH WARNINGS; otherwise PASSED. Every verification
is recorded in the database's history (`ef_verifications`), and its report says what changed since
the one before.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import _checks  # noqa: F401 (registers the twelve checks)
from ._checks import brief
from ._evidence import CHECKS, EXAMPLES_PER_KIND, Check, Evidence, FailureGroup, Finding, RowRule, check
from ._failures import write_failures
from ._history import Changes, HistoryEntry, changes_since, counts_by_place, earlier, new_entry_id, record
from ._look import Verdict, count, fraction, percent, terminal_mark, verdict_of, verification_line, visible
from ._rejected import DEFAULT_MAX_REJECT_RATE, RejectedImport, imports_with_rejects
from ._time import ledger_time
from .schema import INDUSTRIES, STATES
from .targets import Target

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "BENCHMARKS",
    "CHECKS",
    "SAMPLE_SIZE",
    "BenchmarkResult",
    "Check",
    "CheckResult",
    "Evidence",
    "FailureGroup",
    "Finding",
    "RejectedImport",
    "RowRule",
    "VerifyReport",
    "brief",
    "check",
    "run_benchmarks",
    "run_checks",
    "verify",
]

# Example rows a report shows for each kind of failure.
SAMPLE_SIZE = EXAMPLES_PER_KIND


# --- results ---------------------------------------------------------------------------------------


@dataclass(kw_only=True)
class CheckResult:
    number: int
    name: str
    title: str
    passed: bool
    observed: Any
    expected: Any
    failing: int = 0
    summary: str = ""  # `observed` in one line, for people
    groups: list[FailureGroup] = field(default_factory=list)
    kinds: int = 0
    rule: RowRule | None = field(default=None, repr=False, compare=False)
    seconds: float = 0.0

    @property
    def sample(self) -> list[dict[str, Any]]:
        """The example rows of every kind of failure, most common kind first."""
        return [row for group in self.groups for row in group.examples]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        del data["rule"]
        return data

    def _repr_html_(self) -> str:
        from ._display import check_html

        return check_html(self)

    def to_frame(self) -> pd.DataFrame:
        """The failing rows by kind of failure, most common first: kind, rows, share (of all rows)."""
        from ._frames import kinds_frame

        return kinds_frame(self)

    def __repr__(self) -> str:
        mark = terminal_mark(self.passed)
        return f"<CheckResult {self.number} {self.name} {mark}: {visible(self.summary)}; {self.failing:,} failing>"


@dataclass
class BenchmarkResult:
    name: str
    title: str
    sql: str
    threshold_ms: float
    runs_ms: list[float]

    @property
    def median_ms(self) -> float:
        return statistics.median(self.runs_ms)

    @property
    def passed(self) -> bool:
        return self.median_ms <= self.threshold_ms


@dataclass
class VerifyReport:
    target: str
    checked_at: str
    checks: list[CheckResult]
    benchmarks: list[BenchmarkResult]
    seconds: float
    rows: int = 0
    size_bytes: int | None = None  # the database's size, where the target can say
    rejects: list[RejectedImport] = field(default_factory=list)  # imports that rejected records
    max_reject_rate: float = DEFAULT_MAX_REJECT_RATE
    counts: dict[str, int] = field(default_factory=dict)  # rows per "industry|state"
    # Professionals per industry, state and rating (industry, state, rating, n): the distributions'
    # figures read it rather than the table again.
    shape: list[dict[str, Any]] = field(default_factory=list, repr=False)
    history: list[HistoryEntry] = field(default_factory=list)  # earlier verifications, oldest first
    recorded: str | None = None  # the id of this verification in the history, once recorded
    not_recorded: str | None = None  # why it was not, if it was not
    failure_files: dict[str, str] = field(default_factory=dict)  # check name -> its failing rows' CSV

    @property
    def empty(self) -> bool:
        """No professionals: nothing to verify, so nothing passes."""
        return self.rows == 0

    @property
    def rejects_over_limit(self) -> list[RejectedImport]:
        return [r for r in self.rejects if r.over(self.max_reject_rate)]

    @property
    def passed(self) -> bool:
        return (
            not self.empty
            and all(c.passed for c in self.checks)
            and all(b.passed for b in self.benchmarks)
            and not self.rejects_over_limit
        )

    @property
    def verdict(self) -> Verdict:
        return verdict_of(self.passed, warnings=bool(self.rejects), empty=self.empty)

    @property
    def failed_checks(self) -> list[CheckResult]:
        return [c for c in self.checks if not c.passed]

    @property
    def changes(self) -> Changes | None:
        """What changed since the previous verification, if there was one."""
        if not self.history:
            return None
        latencies = {b.name: b.median_ms for b in self.benchmarks}
        return changes_since(self.history[-1], self.rows, self.counts, self.checks, latencies)

    def check(self, name: str) -> CheckResult:
        """The result of the check called `name` (KeyError, naming the checks there are, if none is)."""
        for result in self.checks:
            if result.name == name:
                return result
        raise KeyError(f"no check named {name!r}; the checks are {', '.join(c.name for c in self.checks)}")

    def entry(self) -> HistoryEntry:
        """This verification as the history keeps it."""
        return HistoryEntry(
            id=self.recorded or new_entry_id(),
            checked_at=self.checked_at,
            verdict=self.verdict,
            rows=self.rows,
            seconds=self.seconds,
            checks={c.name: {"passed": c.passed, "failing": c.failing, "observed": c.summary} for c in self.checks},
            latencies={b.name: round(b.median_ms, 4) for b in self.benchmarks},
            counts=self.counts,
        )

    def to_dict(self, *, timings: bool = True) -> dict[str, Any]:
        """A JSON-ready dict; `timings=False` leaves out everything that varies from run to run."""
        checks = [c.to_dict() for c in self.checks]
        benchmarks = [{**asdict(b), "median_ms": round(b.median_ms, 3), "passed": b.passed} for b in self.benchmarks]
        data: dict[str, Any] = {
            "target": self.target,
            "verdict": self.verdict,
            "passed": self.passed,
            "rows": self.rows,
            "max_reject_rate": self.max_reject_rate,
            "rejects": [r.to_dict() for r in self.rejects],
            "checks": checks,
        }
        if timings:
            data |= {
                "checked_at": self.checked_at,
                "seconds": self.seconds,
                "benchmarks": benchmarks,
                "recorded": self.recorded,
                "not_recorded": self.not_recorded,
                "failure_files": self.failure_files,
            }
        else:
            for result in checks:
                del result["seconds"]
            data["passed"] = not self.empty and all(c.passed for c in self.checks) and not self.rejects_over_limit
            data["verdict"] = verdict_of(data["passed"], warnings=bool(self.rejects), empty=self.empty)
        return data

    def _repr_html_(self) -> str:
        from ._display import verify_html

        return verify_html(self)

    def to_frame(self) -> pd.DataFrame:
        """One row per check: number, name, title, passed, failing, kinds, observed, expected, seconds."""
        from ._frames import checks_frame

        return checks_frame(self.checks)

    def __repr__(self) -> str:
        passed = sum(c.passed for c in self.checks)
        within = sum(b.passed for b in self.benchmarks)
        return (
            f"<VerifyReport {self.verdict}: {passed} of {len(self.checks)} checks passed, {within} of"
            f" {len(self.benchmarks)} latencies within their limits; {self.rows:,} rows of {visible(self.target)}>"
        )

    def table(self) -> str:
        """The report as text for a terminal (values from the data with control characters escaped)."""
        lines = [f"Verification of {self.target} at {self.checked_at}: {count(self.rows)} rows", ""]
        for c in self.checks:
            lines.append(f"{c.number:>2}. {terminal_mark(c.passed)}  {c.title:<32} {visible(c.summary)}")
            if not c.passed:
                lines.append(f"          expected {visible(c.expected)}; {count(c.failing)} failing")
                lines.extend(_group_lines(c))
        lines += _rejects_lines(self)
        if self.benchmarks:
            lines += ["", "Latency (median)"]
            width = max(len(b.title) for b in self.benchmarks)
            for b in self.benchmarks:
                lines.append(
                    f"    {terminal_mark(b.passed)}  {b.title:<{width}} {b.median_ms:8.2f} ms"
                    f"  (limit {b.threshold_ms:,.0f} ms)"
                )
        elif self.empty:
            lines += ["", "Latency: not meaningful on an empty table, not measured"]
        lines += _changes_lines(self.changes)
        line = verification_line(self.passed, warnings=bool(self.rejects), empty=self.empty)
        lines += ["", f"{line} ({self.seconds:.2f} s)"]
        return "\n".join(lines)


def _rejects_lines(report: VerifyReport) -> list[str]:
    if not report.rejects:
        return []
    lines = ["", f"Rejected records (limit {percent(report.max_reject_rate)} of each import's records)"]
    for r in report.rejects:
        over = "over the limit" if r.over(report.max_reject_rate) else "within the limit"
        lines.append(
            f"    {visible(r.import_id)} {visible(r.source_path)}: {count(r.rejected)} of {count(r.records)}"
            f" rejected ({fraction(r.share)}, {over})"
        )
        lines.append(f"        rejects file: {visible(r.rejects_path)}")
        reasons = "; ".join(f"{count(n)} x {visible(reason)}" for reason, n in r.reasons) or r.unreadable or ""
        if reasons:
            lines.append(f"        {reasons}")
    return lines


def _changes_lines(changes: Changes | None) -> list[str]:
    if changes is None:
        return ["", "No earlier verification of this database to compare with."]
    delta = changes.rows_now - changes.rows_before
    lines = ["", f"Since the previous verification ({changes.since.checked_at}, {changes.since.verdict}):"]
    lines.append(f"    rows {count(changes.rows_before)} -> {count(changes.rows_now)} ({delta:+,})")
    for place in changes.places[:10]:
        lines.append(f"    {visible(place.industry)}, {visible(place.state)}: {place.delta:+,}")
    for change in changes.checks:
        before = "new" if change.before is None else terminal_mark(change.before)
        lines.append(f"    {change.title}: {before} -> {terminal_mark(change.now)}")
    if not changes.places and not changes.checks and delta == 0:
        lines.append("    nothing: the same rows and the same check results")
    return lines


def _group_lines(result: CheckResult) -> list[str]:
    lines = []
    for group in result.groups[:5]:
        lines.append(f"          {count(group.count)} x {visible(group.kind)} ({fraction(group.share)} of rows)")
        for row in group.examples[:2]:
            lines.append("              " + ", ".join(f"{k} {visible(v)}" for k, v in row.items()))
    return lines


def run_checks(target: Target, *, sample_size: int = SAMPLE_SIZE) -> list[CheckResult]:
    """Every registered check against `target`, in order; each timed, the shared queries included
    in the first check that asks for them. `sample_size` example rows are kept of each kind of failure."""
    return _run_checks(Evidence(target, sample_size))


def _run_checks(evidence: Evidence) -> list[CheckResult]:
    results = []
    for number, registered in enumerate(CHECKS, start=1):
        began = time.perf_counter()
        found = registered.run(evidence)
        results.append(
            CheckResult(
                number=number,
                name=registered.name,
                title=registered.title,
                passed=found.failing == 0,
                observed=found.observed,
                expected=found.expected,
                failing=found.failing,
                summary=found.summary or brief(found.observed),
                groups=found.groups,
                kinds=found.kinds,
                rule=found.rule,
                seconds=time.perf_counter() - began,
            )
        )
    return results


# --- latency ----------------------------------------------------------------------------------------

# The old tool's latency thresholds in milliseconds, and the query each one times: the searches and
# the summary a directory page runs.
BENCHMARKS = (
    ("simple_select", "Simple SELECT by id", 100.0, "SELECT * FROM professionals WHERE id = ?"),
    ("count", "COUNT query", 100.0, "SELECT COUNT(*) FROM professionals"),
    (
        "complex_aggregation",
        "Complex aggregation (city summary)",
        200.0,
        "SELECT industry, COUNT(*) AS count, ROUND(AVG(rating), 2) AS avg_rating, MIN(rating) AS low,"
        " MAX(rating) AS high, SUM(rating >= 4.5) AS top_rated FROM professionals"
        " WHERE city = ? AND state = ? GROUP BY industry ORDER BY count DESC",
    ),
    (
        "city_search",
        "City search (a profession in a city)",
        150.0,
        "SELECT id, first_name, last_name, company, rating FROM professionals"
        " WHERE city = ? AND state = ? AND industry = ? ORDER BY rating DESC LIMIT 20",
    ),
    (
        "industry_search",
        "Industry search (a profession in a state)",
        150.0,
        "SELECT id, first_name, last_name, city, rating FROM professionals"
        " WHERE industry = ? AND state = ? ORDER BY rating DESC LIMIT 20",
    ),
)


def run_benchmarks(target: Target, *, runs: int = 5, seed: int = 0) -> list[BenchmarkResult]:
    """Time each benchmark query `runs` times after one warm-up; the median counts.

    Searches look in the biggest city (the worst case for a city query) and in random places.
    """
    chooser = random.Random(seed)
    biggest = target.query("SELECT city, state FROM professionals GROUP BY city, state ORDER BY COUNT(*) DESC LIMIT 1")
    city, state = (biggest[0]["city"], biggest[0]["state"]) if biggest else ("Miami", "FL")
    max_id = int(target.scalar("SELECT COALESCE(MAX(id), 1) FROM professionals") or 1)
    params: dict[str, Callable[[], tuple[Any, ...]]] = {
        "simple_select": lambda: (chooser.randint(1, max_id),),
        "count": lambda: (),
        "complex_aggregation": lambda: (city, state),
        "city_search": lambda: (city, state, chooser.choice(INDUSTRIES)),
        "industry_search": lambda: (chooser.choice(INDUSTRIES), chooser.choice(STATES)),
    }
    results = []
    for name, title, threshold, sql in BENCHMARKS:
        target.query(sql, params[name]())
        timings = []
        for _ in range(runs):
            args = params[name]()
            began = time.perf_counter()
            target.query(sql, args)
            timings.append((time.perf_counter() - began) * 1000)
        results.append(BenchmarkResult(name, title, sql, threshold, timings))
    return results


def verify(
    target: Target,
    *,
    benchmarks: bool = True,
    runs: int = 5,
    sample_size: int = SAMPLE_SIZE,
    max_reject_rate: float = DEFAULT_MAX_REJECT_RATE,
    history: bool = True,
    failures: str | Path | None = None,
) -> VerifyReport:
    """Run the twelve checks and, unless `benchmarks=False` or the table is empty, the latency
    benchmarks; weigh the imports' rejected records against `max_reject_rate`; and, unless
    `history=False`, compare with the previous verification and record this one in the history.
    With `failures`, every failing row of every failing check is written to `failures/<check>.csv`."""
    began = time.perf_counter()
    checked_at = ledger_time()
    evidence = Evidence(target, sample_size)
    checks = _run_checks(evidence)
    rows = evidence.total
    timed = run_benchmarks(target, runs=runs) if benchmarks and rows else []
    report = VerifyReport(
        target.url,
        checked_at,
        checks,
        timed,
        0.0,
        rows=rows,
        size_bytes=target.size_bytes(),
        rejects=imports_with_rejects(target),
        max_reject_rate=max_reject_rate,
        counts=counts_by_place(evidence.shape),
        shape=evidence.shape,
        history=earlier(target) if history else [],
    )
    if failures is not None:
        report.failure_files = write_failures(target, report.failed_checks, failures)
    report.seconds = time.perf_counter() - began
    if history:
        entry = report.entry()
        report.not_recorded = record(target, entry)
        report.recorded = None if report.not_recorded else entry.id
    return report
