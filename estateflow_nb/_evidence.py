"""What the checks read from a database, and how a failing check shows why it fails.

`Evidence` runs the queries the checks share (the rating shape, the listing pass) once, and answers
the checks' own questions. A row-level check describes its failing rows as a `RowRule`: which rows
fail (`where`), what kind of failure each one is (`kind`, an SQL expression) and which value offends
(`value`). From a rule, `Evidence.grouped` gives the failing values grouped by kind, most rows first,
with a few example rows of every kind, so that a rare kind is never hidden behind the first rows of
a common one; `_failures` writes every failing row of a rule to a file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from ._look import visible
from .schema import REQUIRED_COLUMNS, SUBSCRIPTION_TIERS, VERIFICATION_STATUSES
from .targets import Target

# Example rows shown for each kind of failure, and at most how many kinds a report shows (the
# failures file has every row of every kind).
EXAMPLES_PER_KIND = 3
MAX_KINDS = 20

BAD_FEATURED = "(is_featured IS NULL OR is_featured NOT IN (0, 1))"
BAD_RATING = "(rating IS NOT NULL AND (typeof(rating) NOT IN ('real', 'integer') OR rating < 1 OR rating > 5))"

# What is wrong with an email, first match wins; every row of BAD_EMAIL_SQL gets one of these.
_SPACE = " OR ".join(f"email GLOB '*{space}*'" for space in " \t\n\r")
EMAIL_KIND = (
    "CASE WHEN email IS NULL THEN 'missing (null)'"
    " WHEN email = '' THEN 'empty'"
    " WHEN email GLOB '*@@*' THEN '\"@@\": the @ doubled'"
    " WHEN email GLOB '*@*@*' THEN 'more than one \"@\"'"
    " WHEN email NOT GLOB '*@*' AND (email GLOB '* at *' OR email GLOB '*[[]at]*' OR email GLOB '*(at)*')"
    ' THEN \'" at " instead of "@"\''
    " WHEN email NOT GLOB '*@*' THEN 'no \"@\"'"
    f" WHEN {_SPACE} THEN 'a space or line break in it'"
    " WHEN email GLOB '*@*,*' THEN 'a comma in the domain'"
    " WHEN email NOT GLOB '*@*.*' THEN 'no dot in the domain'"
    " WHEN email GLOB '@*' THEN 'nothing before the \"@\"'"
    " ELSE 'nothing around a dot of the domain' END"
)
# The first required column a row lacks, and how.
REQUIRED_KIND = (
    "CASE "
    + " ".join(
        f"WHEN {c} IS NULL THEN '{c} missing (null)' WHEN {c} = '' THEN '{c} empty'"
        f" WHEN trim({c}) = '' THEN '{c} blank (spaces only)'"
        for c in REQUIRED_COLUMNS
    )
    + " END"
)
REQUIRED_VALUE = "CASE " + " ".join(f"WHEN {c} IS NULL OR trim({c}) = '' THEN {c}" for c in REQUIRED_COLUMNS) + " END"
RATING_KIND = (
    "CASE WHEN typeof(rating) NOT IN ('real', 'integer') THEN 'not a number'"
    " WHEN rating > 5 THEN 'above 5.0' ELSE 'below 1.0' END"
)


@dataclass(frozen=True)
class RowRule:
    """The failing rows of a row-level check: `where` selects them (with `params`), `kind` says what
    kind of failure each is, `value` is the offending value, shown under the name `column`."""

    where: str
    kind: str
    value: str
    column: str
    params: tuple[Any, ...] = ()
    # Whether every space of the value matters (an email), not only leading, trailing and doubled ones.
    every_space: bool = False
    # Whether `kind` is the value itself (an unknown industry), shown quoted, rather than words.
    kind_is_value: bool = False


@dataclass
class FailureGroup:
    """One kind of failure: how many rows (`count`, `share` of all rows) and a few of them."""

    kind: str
    count: int
    share: float
    examples: list[dict[str, Any]] = field(default_factory=list)


@dataclass(kw_only=True)
class Finding:
    """What one check found. It passes when `failing` is 0.

    `observed` is the data (counts, rows) for code and JSON; `summary` says it in one line, for people.
    `groups` are the failing values by kind; `rule`, for a row-level check, finds every failing row.
    """

    observed: Any
    expected: Any
    failing: int = 0
    summary: str = ""
    groups: list[FailureGroup] = field(default_factory=list)
    kinds: int = 0  # how many kinds of failure there are (more than `groups` when they were capped)
    rule: RowRule | None = None


class Evidence:
    """What the checks read from one database. Two queries carry most of them and run once, when a
    check first asks: the rating shape (industry x state x rating counts, off the industry index) and
    the listing pass (tiers, statuses, featured and the total, in one pass over the table)."""

    def __init__(self, target: Target, examples: int = EXAMPLES_PER_KIND) -> None:
        self.target = target
        self.examples = examples

    def count(self, where: str, params: tuple[Any, ...] = ()) -> int:
        return int(self.target.scalar(f"SELECT COUNT(*) FROM professionals WHERE {where}", params) or 0)

    @property
    def total(self) -> int:
        return self.listing["total"]

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

    def grouped(self, rule: RowRule, examples: int | None = None) -> tuple[list[FailureGroup], int]:
        """The failing rows of `rule` by kind, most rows first (at most MAX_KINDS kinds), each with its
        first `examples` rows by id; and how many kinds there are in all."""
        rows = self.target.query(
            "SELECT kind, n, kinds, id, license_number, import_id, value FROM ("
            " SELECT *, DENSE_RANK() OVER (ORDER BY n DESC, kind) AS rank FROM ("
            "  SELECT kind, id, license_number, import_id, value, COUNT(*) OVER (PARTITION BY kind) AS n,"
            "   ROW_NUMBER() OVER (PARTITION BY kind ORDER BY id) AS k FROM ("
            f"   SELECT {rule.kind} AS kind, id, license_number, import_id, {rule.value} AS value"
            f"   FROM professionals WHERE {rule.where}))"
            # COUNT(DISTINCT) leaves NULL out: a NULL kind (a missing is_featured) is one more.
            ") JOIN (SELECT COUNT(DISTINCT kind) + (COUNT(*) > COUNT(kind)) AS kinds FROM ("
            f" SELECT {rule.kind} AS kind FROM professionals WHERE {rule.where}))"
            " WHERE k <= ? AND rank <= ? ORDER BY rank, id",
            (*rule.params, *rule.params, examples or self.examples, MAX_KINDS),
        )
        return self.groups(rows, rule), int(rows[0]["kinds"]) if rows else 0

    def groups(self, rows: list[dict[str, Any]], rule: RowRule) -> list[FailureGroup]:
        """Rows of (kind, n, id, license_number, import_id, value), in order, as groups."""
        found: dict[Any, FailureGroup] = {}
        for row in rows:
            # One kind as SQL has it: 2 and '2' are two, 2 and 2.0 are one (one count covers both).
            key = row["kind"]
            group = found.get(key)
            if group is None:
                n = int(row["n"])
                kind = kind_text(row["kind"]) if rule.kind_is_value else str(row["kind"])
                group = found[key] = FailureGroup(kind, n, _ratio(n, self.total))
            group.examples.append(
                {
                    "id": row["id"],
                    "license_number": row["license_number"],
                    rule.column: row["value"],
                    "import_id": row["import_id"],
                }
            )
        return list(found.values())


def kind_text(value: Any) -> str:
    """A value that is itself the kind of failure (an unknown industry), as a person should read it."""
    if value is None:
        return "(null)"
    return f"'{visible(value)}'" if isinstance(value, str) else visible(value)


def _ratio(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def value_rule(column: str, allowed: tuple[str, ...]) -> RowRule:
    """Rows whose `column` is not one of `allowed`; each distinct value is its own kind."""
    listed = ", ".join(f"'{v}'" for v in allowed)
    return RowRule(
        where=f"({column} IS NULL OR {column} NOT IN ({listed}))",
        kind=column,
        value=column,
        column=column,
        kind_is_value=True,
    )


CheckFunction = Callable[[Evidence], Finding]


@dataclass(frozen=True)
class Check:
    """A registered check: its name (for code and JSON), its title (for people) and its function."""

    name: str
    title: str
    run: CheckFunction


# Every check, in the order `verify` runs and numbers them: the order of the @check lines in _checks.py.
CHECKS: list[Check] = []


def check(name: str, title: str) -> Callable[[CheckFunction], CheckFunction]:
    """Register the decorated function as the next check, called `name` and shown as `title`."""

    def register(run: CheckFunction) -> CheckFunction:
        if any(known.name == name for known in CHECKS):
            raise ValueError(f"two checks are called {name!r}")
        CHECKS.append(Check(name, title, run))
        return run

    return register
