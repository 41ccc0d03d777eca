"""The twelve checks and the five latency benchmarks, as plain SQL that runs on SQLite and D1 alike.

The checks are a list: each is one function below, registered with `@check(name, title)`, and
`verify` runs them in the order they are registered, numbering them 1, 2, 3, ... in that order.
A check reads the database through `Evidence`, whose shared queries (the rating shape, the listing
pass) run once for all the checks that need them, and returns a `Finding`: what it observed, what
was expected, how many rows fail it and a sample of them. A check passes when nothing fails it.
"""

from __future__ import annotations

import random
import statistics
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any, Literal

from ._look import terminal_mark, verification_line
from ._sql import text_list
from ._time import ledger_time
from .schema import (
    BAD_EMAIL_SQL,
    INDUSTRIES,
    MISSING_REQUIRED_SQL,
    ODD_LICENSE_SQL,
    REQUIRED_COLUMNS,
    STATES,
    SUBSCRIPTION_TIERS,
    VERIFICATION_STATUSES,
)
from .targets import Target

__all__ = [
    "BENCHMARKS",
    "CHECKS",
    "SAMPLE_SIZE",
    "BenchmarkResult",
    "Check",
    "CheckResult",
    "Evidence",
    "Finding",
    "VerifyReport",
    "brief",
    "check",
    "run_benchmarks",
    "run_checks",
    "verify",
]

SAMPLE_SIZE = 10
BAD_FEATURED = "(is_featured IS NULL OR is_featured NOT IN (0, 1))"
BAD_RATING = "(rating IS NOT NULL AND (typeof(rating) NOT IN ('real', 'integer') OR rating < 1 OR rating > 5))"
# Ledger statuses of an import that did not finish well: the recent imports check fails on them.
UNFINISHED: tuple[Literal["running", "failed"], ...] = ("running", "failed")


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
    sample: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0


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

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks) and all(b.passed for b in self.benchmarks)

    @property
    def failed_checks(self) -> list[CheckResult]:
        return [c for c in self.checks if not c.passed]

    def check(self, name: str) -> CheckResult:
        """The result of the check called `name` (KeyError, naming the checks there are, if none is)."""
        for result in self.checks:
            if result.name == name:
                return result
        raise KeyError(f"no check named {name!r}; the checks are {', '.join(c.name for c in self.checks)}")

    def to_dict(self, *, timings: bool = True) -> dict[str, Any]:
        """A JSON-ready dict; `timings=False` leaves out everything that varies from run to run."""
        checks = [asdict(c) for c in self.checks]
        benchmarks = [{**asdict(b), "median_ms": round(b.median_ms, 3), "passed": b.passed} for b in self.benchmarks]
        data: dict[str, Any] = {"target": self.target, "passed": self.passed, "checks": checks}
        if timings:
            data |= {"checked_at": self.checked_at, "seconds": self.seconds, "benchmarks": benchmarks}
        else:
            for result in checks:
                del result["seconds"]
            data["passed"] = all(c.passed for c in self.checks)
        return data

    def table(self) -> str:
        """The report as text for a terminal."""
        lines = [f"Verification of {self.target} at {self.checked_at}", ""]
        for c in self.checks:
            lines.append(f"{c.number:>2}. {terminal_mark(c.passed)}  {c.title:<32} {brief(c.observed)}")
            if not c.passed:
                lines.append(f"          expected {c.expected}; {c.failing:,} failing")
                lines.extend(f"          {row}" for row in c.sample[:3])
        if self.benchmarks:
            lines += ["", "Latency (median)"]
            width = max(len(b.title) for b in self.benchmarks)
            for b in self.benchmarks:
                lines.append(
                    f"    {terminal_mark(b.passed)}  {b.title:<{width}} {b.median_ms:8.2f} ms"
                    f"  (limit {b.threshold_ms:.0f} ms)"
                )
        lines += ["", f"{verification_line(self.passed)} ({self.seconds:.2f} s)"]
        return "\n".join(lines)


def brief(observed: Any) -> str:
    """A check's observed value in one line, for the terminal table and the notebooks' checks table:
    a number, a few value counts, or the ledger's statuses."""
    if not isinstance(observed, list):
        return f"{observed:,}" if isinstance(observed, int) else str(observed)
    if observed and "status" in observed[0]:
        statuses = Counter(row["status"] for row in observed)
        return f"{len(observed)} imports: " + ", ".join(f"{n} {status}" for status, n in statuses.items())
    parts = []
    for row in observed[:6]:
        label = " ".join(str(v) for k, v in row.items() if k not in ("count", "avg_rating", "states"))
        parts.append(f"{label} {row.get('count', 0):,}")
    more = f" (+{len(observed) - 6} more)" if len(observed) > 6 else ""
    return ", ".join(parts) + more


# --- how a check is written --------------------------------------------------------------------------


@dataclass(kw_only=True)
class Finding:
    """What one check found. It passes when `failing` is 0."""

    observed: Any
    expected: Any
    failing: int = 0
    sample: list[dict[str, Any]] = field(default_factory=list)


class Evidence:
    """What the checks read from one database. Two queries carry most of them and run once, when a
    check first asks: the rating shape (industry x state x rating counts, off the industry index) and
    the listing pass (tiers, statuses, featured and the total, in one pass over the table)."""

    def __init__(self, target: Target, sample_size: int = SAMPLE_SIZE) -> None:
        self.target = target
        self.sample_size = sample_size

    def sample(self, where: str, columns: str = "id, license_number") -> list[dict[str, Any]]:
        return self.target.query(
            f"SELECT {columns} FROM professionals WHERE {where} ORDER BY id LIMIT {int(self.sample_size)}"
        )

    def count(self, where: str) -> int:
        return int(self.target.scalar(f"SELECT COUNT(*) FROM professionals WHERE {where}") or 0)

    @cached_property
    def shape(self) -> list[dict[str, Any]]:
        return self.target.query(
            "SELECT industry, state, rating, COUNT(*) AS n FROM professionals GROUP BY industry, state, rating"
        )

    @cached_property
    def listing(self) -> dict[str, int]:
        sums = [
            *(f"SUM(subscription_tier = '{v}') AS tier_{v}" for v in SUBSCRIPTION_TIERS),
            *(f"SUM(verification_status = '{v}') AS status_{v}" for v in VERIFICATION_STATUSES),
            "SUM(is_featured = 1) AS featured",
            f"SUM({BAD_FEATURED}) AS bad_featured",
            "COUNT(*) AS total",
        ]
        row = self.target.query(f"SELECT {', '.join(sums)} FROM professionals")[0]
        return {k: int(v or 0) for k, v in row.items()}


CheckFunction = Callable[[Evidence], Finding]


@dataclass(frozen=True)
class Check:
    """A registered check: its name (for code and JSON), its title (for people) and its function."""

    name: str
    title: str
    run: CheckFunction


# Every check, in the order `verify` runs and numbers them: the order of the @check lines below.
CHECKS: list[Check] = []


def check(name: str, title: str) -> Callable[[CheckFunction], CheckFunction]:
    """Register the decorated function as the next check, called `name` and shown as `title`."""

    def register(run: CheckFunction) -> CheckFunction:
        if any(known.name == name for known in CHECKS):
            raise ValueError(f"two checks are called {name!r}")
        CHECKS.append(Check(name, title, run))
        return run

    return register


def run_checks(target: Target, *, sample_size: int = SAMPLE_SIZE) -> list[CheckResult]:
    """Every registered check against `target`, in order; each timed, the shared queries included
    in the first check that asks for them."""
    evidence = Evidence(target, sample_size)
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
                sample=found.sample,
                seconds=time.perf_counter() - began,
            )
        )
    return results


# --- what several checks share -------------------------------------------------------------------------


def _only_allowed(evidence: Evidence, column: str, allowed: tuple[str, ...], observed: list[dict[str, Any]]) -> Finding:
    """Counts per value of `column` (`observed`), failing on the rows whose value is not `allowed`."""
    failing = sum(r["count"] for r in observed if r[column] not in allowed)
    unknown = f"{column} IS NULL OR {column} NOT IN ({text_list(allowed)})"
    return Finding(
        observed=observed,
        expected=f"only {', '.join(allowed)}",
        failing=failing,
        sample=evidence.sample(unknown, f"id, license_number, {column}") if failing else [],
    )


def _by_group(evidence: Evidence, column: str, allowed: tuple[str, ...]) -> Finding:
    """Count and average rating per value of `column` (industry or state), from the shape."""
    groups: dict[Any, dict[str, Any]] = {}
    for row in evidence.shape:
        group = groups.setdefault(
            row[column], {column: row[column], "count": 0, "rated": 0, "sum": 0.0, "states": set()}
        )
        group["count"] += row["n"]
        group["states"].add(row["state"])
        if isinstance(row["rating"], int | float):
            group["rated"] += row["n"]
            group["sum"] += row["rating"] * row["n"]
    observed = []
    for group in sorted(groups.values(), key=lambda g: -g["count"]):
        entry = {column: group[column], "count": group["count"]}
        entry["avg_rating"] = round(group["sum"] / group["rated"], 2) if group["rated"] else None
        if column == "industry":
            entry["states"] = len(group["states"])
        observed.append(entry)
    return _only_allowed(evidence, column, allowed, observed)


def _by_listed_value(evidence: Evidence, column: str, prefix: str, allowed: tuple[str, ...]) -> Finding:
    """Counts of a column with few allowed values (tier, status), from the listing pass."""
    observed: list[dict[str, Any]] = [{column: v, "count": evidence.listing[f"{prefix}_{v}"]} for v in allowed]
    other = evidence.listing["total"] - sum(r["count"] for r in observed)
    if other:
        observed.append({column: "(other)", "count": other})
    return _only_allowed(evidence, column, allowed, observed)


def _rows_breaking(evidence: Evidence, condition: str, expected: str, columns: str) -> Finding:
    """The rows that meet `condition` fail; observed is how many rows do not."""
    failing = evidence.count(condition)
    return Finding(
        observed=evidence.listing["total"] - failing,
        expected=expected,
        failing=failing,
        sample=evidence.sample(condition, columns) if failing else [],
    )


# --- the twelve checks, in their order ---------------------------------------------------------------


@check("total_count", "Total record count")
def _total_count(evidence: Evidence) -> Finding:
    expected = int(evidence.target.scalar("SELECT COALESCE(SUM(inserted - removed), 0) FROM ef_imports") or 0)
    observed = evidence.listing["total"]
    orphans = "import_id IS NULL OR import_id NOT IN (SELECT id FROM ef_imports)" if observed != expected else "0"
    return Finding(
        observed=observed,
        expected=f"{expected:,} (imported and not rolled back, per the ledger)",
        failing=abs(observed - expected),
        sample=evidence.sample(orphans, "id, license_number, import_id"),
    )


@check("industries", "Distribution by industry")
def _industries(evidence: Evidence) -> Finding:
    return _by_group(evidence, "industry", INDUSTRIES)


@check("states", "Distribution by state")
def _states(evidence: Evidence) -> Finding:
    return _by_group(evidence, "state", STATES)


@check("duplicate_licenses", "Duplicate license numbers")
def _duplicate_licenses(evidence: Evidence) -> Finding:
    # Exact duplicates (only possible without our UNIQUE index), then spellings that normalise
    # to one license: those come off the partial index of licenses that are not in normal form.
    groups = evidence.target.query(
        "SELECT license_number AS license, COUNT(*) AS count FROM professionals"
        " GROUP BY license_number HAVING COUNT(*) > 1"
        f" UNION ALL SELECT norm, COUNT(*) FROM ("
        f"   SELECT upper(trim(license_number)) AS norm FROM professionals WHERE {ODD_LICENSE_SQL}"
        "   UNION ALL SELECT license_number FROM professionals WHERE license_number IN"
        f"     (SELECT upper(trim(license_number)) FROM professionals WHERE {ODD_LICENSE_SQL})"
        ") GROUP BY norm HAVING COUNT(*) > 1"
    )
    failing = sum(g["count"] for g in groups)
    return Finding(
        observed=failing,
        expected="0 rows sharing a license number",
        failing=failing,
        sample=groups[: evidence.sample_size],
    )


@check("email_format", "Email format")
def _email_format(evidence: Evidence) -> Finding:
    return _rows_breaking(evidence, BAD_EMAIL_SQL, "every email like name@domain.tld", "id, license_number, email")


@check("required_fields", "Required fields")
def _required_fields(evidence: Evidence) -> Finding:
    required = ", ".join(REQUIRED_COLUMNS)
    return _rows_breaking(evidence, MISSING_REQUIRED_SQL, f"{required} present", f"id, license_number, {required}")


@check("subscription_tiers", "Subscription tiers")
def _subscription_tiers(evidence: Evidence) -> Finding:
    return _by_listed_value(evidence, "subscription_tier", "tier", SUBSCRIPTION_TIERS)


@check("verification_statuses", "Verification statuses")
def _verification_statuses(evidence: Evidence) -> Finding:
    return _by_listed_value(evidence, "verification_status", "status", VERIFICATION_STATUSES)


@check("featured", "Featured professionals")
def _featured(evidence: Evidence) -> Finding:
    failing = evidence.listing["bad_featured"]
    count, total = evidence.listing["featured"], evidence.listing["total"]
    return Finding(
        observed=f"{count:,} featured ({count / total:.1%})" if total else "0 featured",
        expected="is_featured is 0 or 1",
        failing=failing,
        sample=evidence.sample(BAD_FEATURED, "id, license_number, is_featured") if failing else [],
    )


@check("recent_imports", "Recent imports (last 10)")
def _recent_imports(evidence: Evidence) -> Finding:
    observed = evidence.target.query(
        "SELECT id, source_path, status, inserted, updated, skipped, rejected, started_at"
        " FROM ef_imports ORDER BY started_at DESC, rowid DESC LIMIT 10"
    )
    unfinished = [r for r in observed if r["status"] in UNFINISHED]
    return Finding(
        observed=observed,
        expected="none of them failed or left unfinished",
        failing=len(unfinished),
        sample=unfinished,
    )


@check("ratings", "Rating distribution")
def _ratings(evidence: Evidence) -> Finding:
    buckets: dict[str, int] = {}
    failing = 0
    for row in evidence.shape:
        rating = row["rating"]
        if rating is None:
            key = "none"
        elif isinstance(rating, int | float) and 1 <= rating <= 5:
            key = f"{int(rating * 2) / 2:.1f}"
        else:
            key = "out of range"
            failing += row["n"]
        buckets[key] = buckets.get(key, 0) + row["n"]
    return Finding(
        observed=[{"bucket": k, "count": buckets[k]} for k in sorted(buckets)],
        expected="ratings within 1.0 to 5.0",
        failing=failing,
        sample=evidence.sample(BAD_RATING, "id, license_number, rating") if failing else [],
    )


@check("top_cities", "Top 10 cities")
def _top_cities(evidence: Evidence) -> Finding:
    cities = evidence.target.query(
        "SELECT city, state, COUNT(*) AS count, ROUND(AVG(rating), 2) AS avg_rating FROM professionals"
        " GROUP BY city, state"
    )
    # Spellings of one city ("Miami", "miami ", "MIAMI") split its count.
    spellings: dict[tuple[str, Any], set[str]] = {}
    for row in cities:
        if isinstance(row["city"], str):
            spellings.setdefault((row["city"].strip().casefold(), row["state"]), set()).add(row["city"])
    variants = [sorted(names) for names in spellings.values() if len(names) > 1]
    return Finding(
        observed=sorted(cities, key=lambda c: (-c["count"], str(c["city"])))[:10],
        expected="one spelling per city",
        failing=sum(len(v) for v in variants),
        sample=[{"spellings": v} for v in variants[: evidence.sample_size]],
    )


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


def verify(target: Target, *, benchmarks: bool = True, runs: int = 5, sample_size: int = SAMPLE_SIZE) -> VerifyReport:
    """Run the twelve checks (and, unless `benchmarks=False`, the latency benchmarks)."""
    began = time.perf_counter()
    checked_at = ledger_time()
    checks = run_checks(target, sample_size=sample_size)
    timed = run_benchmarks(target, runs=runs) if benchmarks else []
    return VerifyReport(target.url, checked_at, checks, timed, time.perf_counter() - began)
