"""The twelve checks and the five latency benchmarks, as plain SQL that runs on SQLite and D1 alike.

Each check returns a `CheckResult`: what it observed (a number or a small table), what was
expected, how many rows fail it and a sample of them. Row-level tests (email, required fields,
featured flag, rating range) share one scan of the table, so all twelve stay fast on large tables.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from .schema import INDUSTRIES, REQUIRED_COLUMNS, STATES, SUBSCRIPTION_TIERS, VERIFICATION_STATUSES
from .targets import Target

SAMPLE_SIZE = 10


def _quoted(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


# The SQL twin of schema.EMAIL_RE: exactly one "@", no whitespace, text before it, a dot after it.
BAD_EMAIL = (
    "(email IS NULL OR length(email) - length(replace(email, '@', '')) != 1"
    " OR email NOT LIKE '_%@_%._%' OR instr(email, ' ') > 0 OR instr(email, char(9)) > 0"
    " OR instr(email, char(10)) > 0 OR instr(email, char(13)) > 0)"
)
MISSING_REQUIRED = "(" + " OR ".join(f"{c} IS NULL OR trim({c}) = ''" for c in REQUIRED_COLUMNS) + ")"
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
            lines.append(f"{c.number:>2}. {mark}  {c.title:<32} {_brief(c.observed)}")
            if not c.passed:
                lines.append(f"          expected {c.expected}; {c.failing:,} failing")
                lines.extend(f"          {row}" for row in c.sample[:3])
        if self.benchmarks:
            lines += ["", "Latency (median)"]
            for b in self.benchmarks:
                mark = "PASS" if b.passed else "FAIL"
                lines.append(f"    {mark}  {b.title:<32} {b.median_ms:8.2f} ms  (limit {b.threshold_ms:.0f} ms)")
        verdict = "All verification checks passed." if self.passed else "Verification FAILED."
        lines += ["", f"{verdict} ({self.seconds:.2f} s)"]
        return "\n".join(lines)


def _brief(observed: Any) -> str:
    if isinstance(observed, list):
        parts = [", ".join(str(v) for v in list(row.values())[:2]) for row in observed[:6]]
        more = f" (+{len(observed) - 6} more)" if len(observed) > 6 else ""
        return "; ".join(parts) + more
    return f"{observed:,}" if isinstance(observed, int) else str(observed)


class _Checker:
    """Runs the checks against one target, sharing the one full-table scan between them."""

    def __init__(self, target: Target, sample_size: int) -> None:
        self.target = target
        self.sample_size = sample_size
        self._row_counts: dict[str, int] | None = None

    def sample(self, where: str, columns: str = "id, license_number") -> list[dict[str, Any]]:
        return self.target.query(
            f"SELECT {columns} FROM professionals WHERE {where} ORDER BY id LIMIT {int(self.sample_size)}"
        )

    @property
    def row_counts(self) -> dict[str, int]:
        if self._row_counts is None:
            row = self.target.query(
                "SELECT COUNT(*) AS total,"
                f" COALESCE(SUM(CASE WHEN {BAD_EMAIL} THEN 1 ELSE 0 END), 0) AS bad_email,"
                f" COALESCE(SUM(CASE WHEN {MISSING_REQUIRED} THEN 1 ELSE 0 END), 0) AS missing_required,"
                f" COALESCE(SUM(CASE WHEN {BAD_FEATURED} THEN 1 ELSE 0 END), 0) AS bad_featured,"
                f" COALESCE(SUM(CASE WHEN {BAD_RATING} THEN 1 ELSE 0 END), 0) AS bad_rating,"
                " COALESCE(SUM(CASE WHEN is_featured = 1 THEN 1 ELSE 0 END), 0) AS featured"
                " FROM professionals"
            )[0]
            self._row_counts = {k: int(v or 0) for k, v in row.items()}
        return self._row_counts

    def total_count(self) -> CheckResult:
        expected = int(self.target.scalar("SELECT COALESCE(SUM(inserted - removed), 0) FROM ef_imports") or 0)
        observed = self.row_counts["total"]
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

    def distribution(
        self, number: int, name: str, title: str, column: str, allowed: tuple[str, ...], extra: str = ""
    ) -> CheckResult:
        observed = self.target.query(
            f"SELECT {column}, COUNT(*) AS count{extra} FROM professionals GROUP BY {column} ORDER BY count DESC"
        )
        unknown = f"{column} IS NULL OR {column} NOT IN ({_quoted(allowed)})"
        failing = sum(r["count"] for r in observed if r[column] not in allowed)
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

    def duplicates(self) -> CheckResult:
        # Normalised, because "fl-123 " and "FL-123" are one license to a person, two to UNIQUE.
        groups = self.target.query(
            "SELECT upper(trim(license_number)) AS license, COUNT(*) AS count FROM professionals"
            f" GROUP BY upper(trim(license_number)) HAVING COUNT(*) > 1 ORDER BY count DESC"
            f" LIMIT {int(self.sample_size)}"
        )
        failing = 0
        if groups:
            failing = int(
                self.target.scalar(
                    "SELECT COALESCE(SUM(n), 0) FROM (SELECT COUNT(*) AS n FROM professionals"
                    " GROUP BY upper(trim(license_number)) HAVING COUNT(*) > 1)"
                )
            )
        return CheckResult(
            4,
            "duplicate_licenses",
            "Duplicate license numbers",
            not groups,
            failing,
            "0 rows sharing a license number",
            failing,
            groups,
        )

    def row_check(
        self, number: int, name: str, title: str, key: str, condition: str, expected: str, columns: str
    ) -> CheckResult:
        failing = self.row_counts[key]
        return CheckResult(
            number,
            name,
            title,
            failing == 0,
            self.row_counts["total"] - failing,
            expected,
            failing,
            self.sample(condition, columns) if failing else [],
        )

    def featured(self) -> CheckResult:
        failing = self.row_counts["bad_featured"]
        featured = self.row_counts["featured"]
        total = self.row_counts["total"]
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
        failing = self.row_counts["bad_rating"]
        observed = self.target.query(
            "SELECT CASE WHEN rating IS NULL THEN 'none' ELSE CAST(CAST(rating * 2 AS INTEGER) / 2.0 AS TEXT)"
            " END AS bucket, COUNT(*) AS count FROM professionals GROUP BY bucket ORDER BY bucket"
        )
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
        observed = self.target.query(
            "SELECT city, state, COUNT(*) AS count, ROUND(AVG(rating), 2) AS avg_rating FROM professionals"
            " GROUP BY city, state ORDER BY count DESC, city LIMIT 10"
        )
        # Spellings of one city ("Miami", "miami ", "MIAMI") split its count; the distinct names are
        # few (they come off the city index), so they are compared here rather than in SQL.
        spellings: dict[str, list[str]] = {}
        for row in self.target.query("SELECT DISTINCT city FROM professionals WHERE city IS NOT NULL"):
            spellings.setdefault(row["city"].strip().casefold(), []).append(row["city"])
        variants = [names for names in spellings.values() if len(names) > 1]
        sample = [{"spellings": sorted(names)} for names in variants[: self.sample_size]]
        return CheckResult(
            12,
            "top_cities",
            "Top 10 cities",
            not variants,
            observed,
            "one spelling per city",
            sum(len(v) for v in variants),
            sample,
        )

    def all(self) -> list[CheckResult]:
        steps: list[Callable[[], CheckResult]] = [
            self.total_count,
            lambda: self.distribution(
                2,
                "industries",
                "Distribution by industry",
                "industry",
                INDUSTRIES,
                ", ROUND(AVG(rating), 2) AS avg_rating, COUNT(DISTINCT state) AS states",
            ),
            lambda: self.distribution(
                3, "states", "Distribution by state", "state", STATES, ", ROUND(AVG(rating), 2) AS avg_rating"
            ),
            self.duplicates,
            lambda: self.row_check(
                5,
                "email_format",
                "Email format",
                "bad_email",
                BAD_EMAIL,
                "every email like name@domain.tld",
                "id, license_number, email",
            ),
            lambda: self.row_check(
                6,
                "required_fields",
                "Required fields",
                "missing_required",
                MISSING_REQUIRED,
                f"{', '.join(REQUIRED_COLUMNS)} present",
                f"id, license_number, {', '.join(REQUIRED_COLUMNS)}",
            ),
            lambda: self.distribution(
                7, "subscription_tiers", "Subscription tiers", "subscription_tier", SUBSCRIPTION_TIERS
            ),
            lambda: self.distribution(
                8,
                "verification_statuses",
                "Verification statuses",
                "verification_status",
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


# The old tool's latency thresholds in milliseconds, and the query each one times.
BENCHMARKS = (
    ("simple_select", "Simple SELECT by id", 100.0, "SELECT * FROM professionals WHERE id = ?"),
    ("count", "COUNT query", 100.0, "SELECT COUNT(*) FROM professionals"),
    (
        "complex_aggregation",
        "Complex aggregation (city stats)",
        200.0,
        "SELECT industry, COUNT(*) AS count, ROUND(AVG(rating), 2) AS avg_rating, SUM(is_featured) AS featured,"
        " SUM(review_count) AS reviews FROM professionals WHERE city = ? GROUP BY industry ORDER BY count DESC",
    ),
    (
        "city_search",
        "City search (top rated)",
        150.0,
        "SELECT id, first_name, last_name, company, rating FROM professionals WHERE city = ?"
        " ORDER BY rating DESC LIMIT 20",
    ),
    (
        "industry_search",
        "Industry search (top rated in a state)",
        150.0,
        "SELECT id, first_name, last_name, city, rating FROM professionals WHERE industry = ? AND state = ?"
        " ORDER BY rating DESC LIMIT 20",
    ),
)


def run_benchmarks(target: Target, *, runs: int = 5, seed: int = 0) -> list[BenchmarkResult]:
    """Time each benchmark query `runs` times after one warm-up; the median counts."""
    chooser = random.Random(seed)
    top_city = target.query("SELECT city FROM professionals GROUP BY city ORDER BY COUNT(*) DESC LIMIT 1")
    city = top_city[0]["city"] if top_city else "Miami"
    max_id = int(target.scalar("SELECT COALESCE(MAX(id), 1) FROM professionals") or 1)
    params: dict[str, Callable[[], tuple[Any, ...]]] = {
        "simple_select": lambda: (chooser.randint(1, max_id),),
        "count": lambda: (),
        "complex_aggregation": lambda: (city,),
        "city_search": lambda: (city,),
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
