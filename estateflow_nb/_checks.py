"""The twelve checks, in their order: each reads the database through `Evidence` and returns a
`Finding` (see _evidence.py). `verify` imports this module, which registers them."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any, Literal

from ._evidence import (
    BAD_FEATURED,
    BAD_RATING,
    EMAIL_KIND,
    RATING_KIND,
    REQUIRED_KIND,
    REQUIRED_VALUE,
    Evidence,
    FailureGroup,
    Finding,
    RowRule,
    check,
    value_rule,
)
from ._look import count, plural, share
from .schema import (
    BAD_EMAIL_SQL,
    INDUSTRIES,
    MISSING_REQUIRED_SQL,
    ODD_LICENSE_SQL,
    STATES,
    SUBSCRIPTION_TIERS,
    VERIFICATION_STATUSES,
)

# Ledger statuses of an import that did not finish well: the recent imports check fails on them.
UNFINISHED: tuple[Literal["running", "failed"], ...] = ("running", "failed")
# What an unfinished import shows as an example: its id, file, start and error.
_IMPORT_EXAMPLE = {"import_id": "id", "source_path": "source_path", "started_at": "started_at", "error": "error"}
# Rows no import accounts for, and why.
ORPHAN = (
    "(import_id IS NULL OR import_id NOT IN (SELECT id FROM ef_imports)"
    " OR import_id IN (SELECT id FROM ef_imports WHERE status = 'rolled_back'))"
)
ORPHAN_KIND = (
    "CASE WHEN import_id IS NULL THEN 'written outside any import (no import id)'"
    " WHEN import_id NOT IN (SELECT id FROM ef_imports) THEN 'written by an import the ledger does not know'"
    " ELSE 'left behind by an import that was rolled back' END"
)


def brief(observed: Any) -> str:
    """A list of counts in one line: a few values with their counts, or the ledger's statuses."""
    if not isinstance(observed, list):
        return count(observed) if isinstance(observed, int) else str(observed)
    if observed and "status" in observed[0]:
        statuses = Counter(row["status"] for row in observed)
        return f"{plural(len(observed), 'import')}: " + ", ".join(f"{n} {status}" for status, n in statuses.items())
    parts = []
    for row in observed[:6]:
        label = " ".join(str(v) for k, v in row.items() if k not in ("count", "avg_rating", "states"))
        parts.append(f"{label} {count(row.get('count', 0))}")
    more = f" (+{len(observed) - 6} more)" if len(observed) > 6 else ""
    return ", ".join(parts) + more


def _by_rule(evidence: Evidence, rule: RowRule, failing: int, **finding: Any) -> Finding:
    """A finding whose failing rows `rule` describes: grouped by kind when anything fails."""
    groups, kinds = evidence.grouped(rule) if failing else ([], 0)
    return Finding(failing=failing, groups=groups, kinds=kinds, rule=rule if failing else None, **finding)


def _only_allowed(evidence: Evidence, column: str, allowed: tuple[str, ...], observed: list[dict[str, Any]]) -> Finding:
    """Counts per value of `column` (`observed`), failing on the rows whose value is not `allowed`."""
    failing = sum(r["count"] for r in observed if r[column] not in allowed)
    return _by_rule(
        evidence,
        value_rule(column, allowed),
        failing,
        observed=observed,
        expected=f"only {', '.join(allowed)}",
        summary=brief(observed),
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


def _rows_breaking(evidence: Evidence, rule: RowRule, what: str, expected: str) -> Finding:
    """The rows that `rule` selects fail; observed is how many do, of all the rows."""
    failing = evidence.count(rule.where, rule.params)
    return _by_rule(
        evidence,
        rule,
        failing,
        observed=failing,
        expected=expected,
        summary=f"{count(failing)} of {count(evidence.total)} rows {what}",
    )


# --- the twelve checks, in their order ---------------------------------------------------------------


@check("total_count", "Total record count")
def _total_count(evidence: Evidence) -> Finding:
    expected = int(evidence.target.scalar("SELECT COALESCE(SUM(inserted - removed), 0) FROM ef_imports") or 0)
    observed = evidence.total
    failing = abs(observed - expected)
    rule = RowRule(ORPHAN, ORPHAN_KIND, "import_id", "import_id")
    finding = _by_rule(
        evidence,
        rule,
        evidence.count(ORPHAN) if failing else 0,
        observed=observed,
        expected=f"{count(expected)} (imported and not rolled back, per the ledger)",
        summary=f"{count(observed)} rows",
    )
    if failing and observed < expected:
        missing = expected - observed
        finding.groups.append(
            FailureGroup(f"counted by the ledger but not in the table: {count(missing)} rows", missing, 0.0)
        )
        finding.kinds += 1
    finding.failing = failing
    return finding


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
    shared = evidence.target.query(
        "SELECT license_number AS license, COUNT(*) AS count FROM professionals"
        " GROUP BY license_number HAVING COUNT(*) > 1"
        f" UNION ALL SELECT norm, COUNT(*) FROM ("
        f"   SELECT upper(trim(license_number)) AS norm FROM professionals WHERE {ODD_LICENSE_SQL}"
        "   UNION ALL SELECT license_number FROM professionals WHERE license_number IN"
        f"     (SELECT upper(trim(license_number)) FROM professionals WHERE {ODD_LICENSE_SQL})"
        ") GROUP BY norm HAVING COUNT(*) > 1"
    )
    failing = sum(g["count"] for g in shared)
    licenses = json.dumps(sorted({str(g["license"]) for g in shared}))
    rule = RowRule(
        where=f"(license_number IN (SELECT value FROM json_each(?)) OR ({ODD_LICENSE_SQL}"
        " AND upper(trim(license_number)) IN (SELECT value FROM json_each(?))))",
        kind="upper(trim(license_number))",
        value="license_number",
        column="license_number",
        params=(licenses, licenses),
        kind_is_value=True,
    )
    # Every spelling of a shared license, with the id of each row holding it.
    groups, kinds = evidence.grouped(rule, examples=12) if failing else ([], 0)
    return Finding(
        observed=failing,
        expected="0 rows sharing a license number",
        failing=failing,
        summary=f"{count(failing)} rows share {count(len(shared))} license numbers" if failing else "none shared",
        groups=groups,
        kinds=kinds,
        rule=rule if failing else None,
    )


@check("email_format", "Email format")
def _email_format(evidence: Evidence) -> Finding:
    rule = RowRule(BAD_EMAIL_SQL, EMAIL_KIND, "email", "email", every_space=True)
    return _rows_breaking(evidence, rule, "malformed", "0 malformed: every email like name@domain.tld")


@check("required_fields", "Required fields")
def _required_fields(evidence: Evidence) -> Finding:
    rule = RowRule(MISSING_REQUIRED_SQL, REQUIRED_KIND, REQUIRED_VALUE, "value")
    return _rows_breaking(
        evidence, rule, "missing one", "0 missing: first and last name, email, license, industry, state, city"
    )


@check("subscription_tiers", "Subscription tiers")
def _subscription_tiers(evidence: Evidence) -> Finding:
    return _by_listed_value(evidence, "subscription_tier", "tier", SUBSCRIPTION_TIERS)


@check("verification_statuses", "Verification statuses")
def _verification_statuses(evidence: Evidence) -> Finding:
    return _by_listed_value(evidence, "verification_status", "status", VERIFICATION_STATUSES)


@check("featured", "Featured professionals")
def _featured(evidence: Evidence) -> Finding:
    featured, total = evidence.listing["featured"], evidence.total
    return _by_rule(
        evidence,
        RowRule(BAD_FEATURED, "is_featured", "is_featured", "is_featured", kind_is_value=True),
        evidence.listing["bad_featured"],
        observed=featured,
        expected="is_featured is 0 or 1",
        summary=f"{count(featured)} featured ({share(featured, total)})" if total else "0 featured",
    )


@check("recent_imports", "Recent imports (last 10)")
def _recent_imports(evidence: Evidence) -> Finding:
    observed = evidence.target.query(
        "SELECT id, source_path, status, inserted, updated, skipped, rejected, started_at, error"
        " FROM ef_imports ORDER BY started_at DESC, rowid DESC LIMIT 10"
    )
    groups = []
    for status in UNFINISHED:
        rows = [r for r in observed if r["status"] == status]
        if rows:
            examples = [{key: r[column] for key, column in _IMPORT_EXAMPLE.items()} for r in rows]
            groups.append(FailureGroup(status, len(rows), len(rows) / len(observed), examples))
    failing = sum(g.count for g in groups)
    return Finding(
        observed=observed,
        expected="none of them failed or left unfinished",
        failing=failing,
        summary=brief(observed) if observed else "no imports yet",
        groups=groups,
        kinds=len(groups),
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
    rated = sum(n for key, n in buckets.items() if key not in ("none", "out of range"))
    return _by_rule(
        evidence,
        RowRule(BAD_RATING, RATING_KIND, "rating", "rating"),
        failing,
        observed=[{"bucket": k, "count": buckets[k]} for k in sorted(buckets)],
        expected="ratings within 1.0 to 5.0",
        summary=f"{count(rated)} rated 1.0 to 5.0, {count(buckets.get('none', 0))} not rated,"
        f" {count(failing)} out of range",
    )


@check("top_cities", "Top 10 cities")
def _top_cities(evidence: Evidence) -> Finding:
    cities = evidence.target.query(
        "SELECT city, state, COUNT(*) AS count, ROUND(AVG(rating), 2) AS avg_rating FROM professionals"
        " GROUP BY city, state"
    )
    # Spellings of one city ("Miami", "miami ", "MIAMI") split its count.
    spellings: dict[tuple[str, Any], list[dict[str, Any]]] = {}
    for row in cities:
        if isinstance(row["city"], str):
            spellings.setdefault((row["city"].strip().casefold(), row["state"]), []).append(row)
    variants = sorted(
        (rows for rows in spellings.values() if len(rows) > 1), key=lambda rows: -sum(r["count"] for r in rows)
    )
    groups = []
    for rows in variants:
        n = sum(r["count"] for r in rows)
        name = max(rows, key=lambda r: r["count"])["city"]
        examples = [{"city": r["city"], "state": r["state"], "professionals": r["count"]} for r in rows]
        kind = f"{name.strip()}, {rows[0]['state']}: {len(rows)} spellings"
        groups.append(FailureGroup(kind, n, n / evidence.total, examples))
    pairs = json.dumps([[r["city"], r["state"]] for rows in variants for r in rows])
    rule = RowRule(
        where="(city, state) IN (SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(?))",
        kind="lower(trim(city)) || ', ' || state",
        value="city",
        column="city",
        params=(pairs,),
    )
    top = sorted(cities, key=lambda c: (-c["count"], str(c["city"])))[:10]
    return Finding(
        observed=top,
        expected="one spelling per city",
        failing=sum(len(rows) for rows in variants),
        summary=brief(top) if top else "no cities",
        groups=groups[:20],
        kinds=len(groups),
        rule=rule if variants else None,
    )
