from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from estateflow_nb import connect, generate_records, import_file, verify, write_records
from estateflow_nb.schema import (
    BAD_EMAIL_SQL,
    EMAIL_RE,
    MISSING_REQUIRED_SQL,
    ODD_LICENSE_SQL,
    STORED_COLUMNS,
    clean_record,
)
from estateflow_nb.targets import InsertRows, Sql, SQLiteTarget, Target
from estateflow_nb.verify import BENCHMARKS, CHECKS, BenchmarkResult, Check, Evidence, Finding, check

NOW = "2026-11-01T00:00:00Z"
CHECKS_RUN = [
    "total_count",
    "industries",
    "states",
    "duplicate_licenses",
    "email_format",
    "required_fields",
    "subscription_tiers",
    "verification_statuses",
    "featured",
    "recent_imports",
    "ratings",
    "top_cities",
]


def loose_target(tmp_path: Path, n: int = 40) -> Target:
    """A database whose table has no constraints, as a hand-made or foreign one might, holding one
    clean import of `n` records: every check passes until a test breaks one."""
    path = tmp_path / "loose.db"
    conn = sqlite3.connect(path)
    conn.execute(f"CREATE TABLE professionals (id INTEGER PRIMARY KEY, {', '.join(STORED_COLUMNS)})")
    conn.commit()
    conn.close()
    target = connect(str(path), create=True)
    rows = [(*clean_record(r, NOW), "imp-1", NOW) for r in generate_records(n, seed=5)]
    target.execute(
        [
            Sql(
                "INSERT INTO ef_imports (id, source_path, source_sha256, target, batch_size, status, inserted,"
                " checkpoint, started_at) VALUES ('imp-1', 'x.csv', 'abc', 'here', 10, 'completed', ?, ?, ?)",
                (n, n, NOW),
            ),
            InsertRows("professionals", STORED_COLUMNS, rows),
        ]
    )
    return target


BREAKERS = {
    "total_count": "DELETE FROM professionals WHERE id = 1",
    "industries": "UPDATE professionals SET industry = 'plumbing' WHERE id = 2",
    "states": "UPDATE professionals SET state = 'NY' WHERE id = 3",
    "duplicate_licenses": "UPDATE professionals SET license_number ="
    " ' ' || lower((SELECT license_number FROM professionals WHERE id = 3)) WHERE id = 4",
    "email_format": "UPDATE professionals SET email = 'someone.example.com' WHERE id = 5",
    "required_fields": "UPDATE professionals SET last_name = '   ' WHERE id = 6",
    "subscription_tiers": "UPDATE professionals SET subscription_tier = 'gold' WHERE id = 7",
    "verification_statuses": "UPDATE professionals SET verification_status = 'maybe' WHERE id = 8",
    "featured": "UPDATE professionals SET is_featured = 2 WHERE id = 9",
    "recent_imports": "UPDATE ef_imports SET status = 'failed'",
    "ratings": "UPDATE professionals SET rating = 9.5 WHERE id = 10",
    "top_cities": "UPDATE professionals SET city = upper(city) || ' ' WHERE id = 11",
}


def test_a_clean_database_passes_every_check(tmp_path: Path) -> None:
    target = loose_target(tmp_path)
    report = verify(target, runs=2)
    assert [c.name for c in report.checks] == CHECKS_RUN
    assert [c.number for c in report.checks] == list(range(1, 13))
    assert all(c.passed for c in report.checks), report.table()
    assert [b.name for b in report.benchmarks] == [name for name, *_ in BENCHMARKS]
    assert all(len(b.runs_ms) == 2 and b.median_ms > 0 for b in report.benchmarks)
    checks_only = verify(target, benchmarks=False)
    assert checks_only.passed and "All verification checks passed" in checks_only.table()


def test_the_terminal_table_marks_each_benchmark_against_its_limit(tmp_path: Path) -> None:
    """Timings made up, so that the marks do not depend on this machine's speed."""
    report = verify(loose_target(tmp_path), benchmarks=False)
    report.benchmarks = [
        BenchmarkResult("count", "COUNT query", "SELECT 1", 100.0, [3.0, 5.0, 4.0]),
        BenchmarkResult("city_search", "City search", "SELECT 2", 150.0, [120.0, 180.0, 170.0]),
    ]
    lines = report.table().splitlines()
    assert "    PASS  COUNT query     4.00 ms  (limit 100 ms)" in lines
    assert "    FAIL  City search   170.00 ms  (limit 150 ms)" in lines
    assert " 5. PASS  Email format" in "\n".join(lines)
    assert not report.passed and lines[-1].startswith("Verification FAILED. (")


@pytest.mark.parametrize("broken", CHECKS_RUN)
def test_each_check_fails_on_a_database_crafted_to_break_it(tmp_path: Path, broken: str) -> None:
    target = loose_target(tmp_path)
    target.execute([Sql(BREAKERS[broken])])
    report = verify(target, benchmarks=False)
    failed = report.failed_checks
    assert [c.name for c in failed] == [broken]
    assert failed[0].failing >= 1
    if broken != "total_count":
        assert failed[0].sample, "a failing check shows the rows that fail it"
    assert not report.passed and "Verification FAILED" in report.table()


def test_failing_rows_are_sampled_with_the_offending_value(tmp_path: Path) -> None:
    target = loose_target(tmp_path)
    target.execute([Sql(BREAKERS["email_format"]), Sql(BREAKERS["top_cities"])])
    report = verify(target, benchmarks=False)
    email = report.check("email_format")
    (row,) = email.sample
    assert row == {
        "id": 5,
        "license_number": row["license_number"],
        "email": "someone.example.com",
        "import_id": "imp-1",
    }
    (group,) = report.check("top_cities").groups
    spellings = [row["city"] for row in group.examples]
    assert len(spellings) == 2 and spellings[0].strip().casefold() == spellings[1].strip().casefold()


def test_distributions_and_totals_describe_the_table(tmp_path: Path) -> None:
    with connect(f"sqlite:///{tmp_path / 'db.sqlite'}", create=True) as target:
        import_file(target, write_records(tmp_path / "p.csv", 600))
        report = verify(target, benchmarks=False)
        assert report.check("total_count").observed == 600
        assert sum(r["count"] for r in report.check("industries").observed) == 600
        assert {r["state"] for r in report.check("states").observed} == {"FL", "TX", "CA"}
        assert sum(r["count"] for r in report.check("ratings").observed) == 600
        assert len(report.check("top_cities").observed) == 10
        assert report.check("recent_imports").observed[0]["inserted"] == 600


def test_a_check_is_found_by_its_name(tmp_path: Path) -> None:
    report = verify(loose_target(tmp_path), benchmarks=False)
    assert report.check("email_format") is report.checks[4]
    with pytest.raises(KeyError, match="no check named 'emails'; the checks are total_count, industries, "):
        report.check("emails")


@pytest.fixture
def registry() -> Iterator[list[Check]]:
    """The list of registered checks, as it was again after the test."""
    saved = list(CHECKS)
    yield CHECKS
    CHECKS[:] = saved


def test_checks_run_and_are_numbered_in_the_order_of_the_list(tmp_path: Path, registry: list[Check]) -> None:
    assert [c.name for c in registry] == CHECKS_RUN

    @check("always_one", "A check added last")
    def always_one(evidence: Evidence) -> Finding:
        return Finding(observed=evidence.listing["total"], expected="nothing at all", failing=1)

    registry.insert(0, registry.pop(CHECKS_RUN.index("featured")))
    report = verify(loose_target(tmp_path), benchmarks=False)
    assert [c.name for c in report.checks] == ["featured", *(n for n in CHECKS_RUN if n != "featured"), "always_one"]
    assert [c.number for c in report.checks] == list(range(1, 14))
    added = report.check("always_one")
    assert (added.title, added.observed, added.failing, added.passed) == ("A check added last", 40, 1, False)
    assert [c.name for c in report.failed_checks] == ["always_one"]
    with pytest.raises(ValueError, match="two checks are called 'featured'"):
        check("featured", "Featured again")(always_one)


def test_the_shared_queries_run_once_per_verification(tmp_path: Path) -> None:
    """The rating shape serves three checks and the listing pass six: each is one query, run once."""
    target = loose_target(tmp_path)
    assert isinstance(target, SQLiteTarget)
    statements: list[str] = []
    target.connection.set_trace_callback(statements.append)
    verify(target, benchmarks=False)
    shape = [s for s in statements if "GROUP BY industry, state, rating" in s]
    listing = [s for s in statements if "AS bad_featured" in s]
    assert (len(shape), len(listing)) == (1, 1)


def test_json_without_timings_is_stable(tmp_path: Path) -> None:
    target = loose_target(tmp_path)
    first, second = (verify(target, runs=1).to_dict(timings=False) for _ in range(2))
    assert first == second and "benchmarks" not in first and first["passed"] is True


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from("ab.@ \t\n\r-_é1"), max_size=12))
def test_the_sql_email_rule_is_the_python_rule(email: str) -> None:
    conn = sqlite3.connect(":memory:")
    (bad,) = conn.execute(f"SELECT {BAD_EMAIL_SQL} FROM (SELECT ? AS email)", (email,)).fetchone()
    assert bool(bad) == (EMAIL_RE.match(email) is None)


def test_row_rules_are_served_by_partial_indexes(tmp_path: Path) -> None:
    with connect(str(tmp_path / "db.sqlite"), create=True) as target:
        for condition in (BAD_EMAIL_SQL, MISSING_REQUIRED_SQL, ODD_LICENSE_SQL):
            plan = " ".join(
                r["detail"] for r in target.query(f"EXPLAIN QUERY PLAN SELECT id FROM professionals WHERE {condition}")
            )
            assert "INDEX idx_professionals_" in plan, plan
