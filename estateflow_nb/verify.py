"""The twelve checks and the five latency benchmarks, as plain SQL that runs on SQLite and D1 alike.

Each check returns a `CheckResult`: what it observed (a number or a small table), what was
expected, how many rows fail it and a sample of them. Row-level tests (email, required fields,
featured flag, rating range) share one scan of the table, so all twelve stay fast on large tables.
"""

from __future__ import annotations

import random
import statistics
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

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

SAMPLE_SIZE = 10


def _quoted(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


BAD_FEATURED = "(is_featured IS NULL OR is_featured NOT IN (0, 1))"
BAD_RATING = "(rating IS NOT NULL AND (typeof(rating) NOT IN ('real', 'integer') OR rating < 1 OR rating > 5))"


@dataclass
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

    def to_dict(self, *, timings: bool = True) -> dict[str, Any]:
        """A JSON-ready dict; `timings=False` leaves out everything that varies from run to run."""
        checks = [asdict(c) for c in self.checks]
        benchmarks = [{**asdict(b), "median_ms": round(b.median_ms, 3), "passed": b.passed} for b in self.benchmarks]
        data: dict[str, Any] = {"target": self.target, "passed": self.passed, "checks": checks}
        if timings:
            data |= {"checked_at": self.checked_at, "seconds": self.seconds, "benchmarks": benchmarks}
        else:
            for check in checks:
                del check["seconds"]
            data["passed"] = all(c.passed for c in self.checks)
        return data

    def table(self) -> str:
        """The report as text for a terminal."""
        lines = [f"Verification of {self.target} at {self.checked_at}", ""]
        for c in self.checks:
            mark = "PASS" if c.passed else "FAIL"
            lines.append(f"{c.number:>2}. {mark}  {c.title:<32} {brief(c.observed)}")
            if not c.passed:
                lines.append(f"          expected {c.expected}; {c.failing:,} failing")
                lines.extend(f"          {row}" for row in c.sample[:3])
        if self.benchmarks:
            lines += ["", "Latency (median)"]
            width = max(len(b.title) for b in self.benchmarks)
            for b in self.benchmarks:
                mark = "PASS" if b.passed else "FAIL"
                lines.append(f"    {mark}  {b.title:<{width}} {b.median_ms:8.2f} ms  (limit {b.threshold_ms:.0f} ms)")
        verdict = "All verification checks passed." if self.passed else "Verification FAILED."
        lines += ["", f"{verdict} ({self.seconds:.2f} s)"]
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


class _Checker:
    """Runs the checks against one target. Three queries carry most of them: the rating shape
    (industry x state x rating counts, off the industry index), the listing counts (tiers,
    statuses, featured: one pass over the table) and the city counts (off the city index)."""

    def __init__(self, target: Target, sample_size: int) -> None:
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

    def total_count(self) -> CheckResult:
        expected = int(self.target.scalar("SELECT COALESCE(SUM(inserted - removed), 0) FROM ef_imports") or 0)
        observed = self.listing["total"]
        orphans = "import_id IS NULL OR import_id NOT IN (SELECT id FROM ef_imports)" if observed != expected else "0"
        return CheckResult(
            1,
            "total_count",
            "Total record count",
            observed == expected,
            observed,
            f"{expected:,} (imported and not rolled back, per the ledger)",
            abs(observed - expected),
            self.sample(orphans, "id, license_number, import_id"),
        )

    def grouped(self, number: int, name: str, title: str, column: str, allowed: tuple[str, ...]) -> CheckResult:
        """Count and average rating per value of `column` (industry or state), from the shape."""
        groups: dict[Any, dict[str, Any]] = {}
        for row in self.shape:
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
        return self._allowed_values(number, name, title, column, allowed, observed)

    def _allowed_values(
        self, number: int, name: str, title: str, column: str, allowed: tuple[str, ...], observed: list[dict[str, Any]]
    ) -> CheckResult:
        failing = sum(r["count"] for r in observed if r[column] not in allowed)
        unknown = f"{column} IS NULL OR {column} NOT IN ({_quoted(allowed)})"
        return CheckResult(
            number,
            name,
            title,
            failing == 0,
            observed,
            f"only {', '.join(allowed)}",
            failing,
            self.sample(unknown, f"id, license_number, {column}") if failing else [],
        )

    def listed(
        self, number: int, name: str, title: str, column: str, prefix: str, allowed: tuple[str, ...]
    ) -> CheckResult:
        """Counts of a column with few allowed values (tier, status), from the listing pass."""
        observed: list[dict[str, Any]] = [{column: v, "count": self.listing[f"{prefix}_{v}"]} for v in allowed]
        other = self.listing["total"] - sum(r["count"] for r in observed)
        if other:
            observed.append({column: "(other)", "count": other})
        return self._allowed_values(number, name, title, column, allowed, observed)

    def duplicates(self) -> CheckResult:
        # Exact duplicates (only possible without our UNIQUE index), then spellings that normalise
        # to one license: those come off the partial index of licenses that are not in normal form.
        groups = self.target.query(
            "SELECT license_number AS license, COUNT(*) AS count FROM professionals"
            " GROUP BY license_number HAVING COUNT(*) > 1"
            f" UNION ALL SELECT norm, COUNT(*) FROM ("
            f"   SELECT upper(trim(license_number)) AS norm FROM professionals WHERE {ODD_LICENSE_SQL}"
            "   UNION ALL SELECT license_number FROM professionals WHERE license_number IN"
            f"     (SELECT upper(trim(license_number)) FROM professionals WHERE {ODD_LICENSE_SQL})"
            ") GROUP BY norm HAVING COUNT(*) > 1"
        )
        failing = sum(g["count"] for g in groups)
        return CheckResult(
            4,
            "duplicate_licenses",
            "Duplicate license numbers",
            not groups,
            failing,
            "0 rows sharing a license number",
            failing,
            groups[: self.sample_size],
        )

    def row_check(self, number: int, name: str, title: str, condition: str, expected: str, columns: str) -> CheckResult:
        failing = self.count(condition)
        return CheckResult(
            number,
            name,
            title,
            failing == 0,
            self.listing["total"] - failing,
            expected,
            failing,
            self.sample(condition, columns) if failing else [],
        )

    def featured(self) -> CheckResult:
        failing = self.listing["bad_featured"]
        featured, total = self.listing["featured"], self.listing["total"]
        share = f"{featured:,} featured ({featured / total:.1%})" if total else "0 featured"
        return CheckResult(
            9,
            "featured",
            "Featured professionals",
            failing == 0,
            share,
            "is_featured is 0 or 1",
            failing,
            self.sample(BAD_FEATURED, "id, license_number, is_featured") if failing else [],
        )

    def recent_imports(self) -> CheckResult:
        observed = self.target.query(
            "SELECT id, source_path, status, inserted, updated, skipped, rejected, started_at"
            " FROM ef_imports ORDER BY started_at DESC, rowid DESC LIMIT 10"
        )
        failing = [r for r in observed if r["status"] in ("running", "failed")]
        return CheckResult(
            10,
            "recent_imports",
            "Recent imports (last 10)",
            not failing,
            observed,
            "none of them failed or left unfinished",
            len(failing),
            failing,
        )

    def ratings(self) -> CheckResult:
        buckets: dict[str, int] = {}
        failing = 0
        for row in self.shape:
            rating = row["rating"]
            if rating is None:
                key = "none"
            elif isinstance(rating, int | float) and 1 <= rating <= 5:
                key = f"{int(rating * 2) / 2:.1f}"
            else:
                key = "out of range"
                failing += row["n"]
            buckets[key] = buckets.get(key, 0) + row["n"]
        observed = [{"bucket": k, "count": buckets[k]} for k in sorted(buckets)]
        return CheckResult(
            11,
            "ratings",
            "Rating distribution",
            failing == 0,
            observed,
            "ratings within 1.0 to 5.0",
            failing,
            self.sample(BAD_RATING, "id, license_number, rating") if failing else [],
        )

    def top_cities(self) -> CheckResult:
        cities = self.target.query(
            "SELECT city, state, COUNT(*) AS count, ROUND(AVG(rating), 2) AS avg_rating FROM professionals"
            " GROUP BY city, state"
        )
        observed = sorted(cities, key=lambda c: (-c["count"], str(c["city"])))[:10]
        # Spellings of one city ("Miami", "miami ", "MIAMI") split its count.
        spellings: dict[tuple[str, Any], set[str]] = {}
        for row in cities:
            if isinstance(row["city"], str):
                spellings.setdefault((row["city"].strip().casefold(), row["state"]), set()).add(row["city"])
        variants = [sorted(names) for names in spellings.values() if len(names) > 1]
        return CheckResult(
            12,
            "top_cities",
            "Top 10 cities",
            not variants,
            observed,
            "one spelling per city",
            sum(len(v) for v in variants),
            [{"spellings": v} for v in variants[: self.sample_size]],
        )

    def all(self) -> list[CheckResult]:
        steps: list[Callable[[], CheckResult]] = [
            self.total_count,
            lambda: self.grouped(2, "industries", "Distribution by industry", "industry", INDUSTRIES),
            lambda: self.grouped(3, "states", "Distribution by state", "state", STATES),
            self.duplicates,
            lambda: self.row_check(
                5,
                "email_format",
                "Email format",
                BAD_EMAIL_SQL,
                "every email like name@domain.tld",
                "id, license_number, email",
            ),
            lambda: self.row_check(
                6,
                "required_fields",
                "Required fields",
                MISSING_REQUIRED_SQL,
                f"{', '.join(REQUIRED_COLUMNS)} present",
                f"id, license_number, {', '.join(REQUIRED_COLUMNS)}",
            ),
            lambda: self.listed(
                7, "subscription_tiers", "Subscription tiers", "subscription_tier", "tier", SUBSCRIPTION_TIERS
            ),
            lambda: self.listed(
                8,
                "verification_statuses",
                "Verification statuses",
                "verification_status",
                "status",
                VERIFICATION_STATUSES,
            ),
            self.featured,
            self.recent_imports,
            self.ratings,
            self.top_cities,
        ]
        results = []
        for step in steps:
            began = time.perf_counter()
            result = step()
            result.seconds = time.perf_counter() - began
            results.append(result)
        return results


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
    checked_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    checks = _Checker(target, sample_size).all()
    timed = run_benchmarks(target, runs=runs) if benchmarks else []
    return VerifyReport(target.url, checked_at, checks, timed, time.perf_counter() - began)
