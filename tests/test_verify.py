from __future__ import annotations

import csv
import re
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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
from estateflow_nb.verify import (
    BENCHMARKS,
    CHECKS,
    BenchmarkResult,
    Check,
    Evidence,
    Finding,
    VerifyReport,
    brief,
    check,
    run_benchmarks,
    run_checks,
)
from estateflow_nb.views import examples_table

from .conftest import ROOT, invoke, write_csv

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
    target = loose_target(tmp_path)
    verify(target, benchmarks=False)  # before the check is added

    @check("always_one", "A check added last")
    def always_one(evidence: Evidence) -> Finding:
        return Finding(observed=evidence.listing["total"], expected="nothing at all", failing=1)

    registry.insert(0, registry.pop(CHECKS_RUN.index("featured")))
    report = verify(target, benchmarks=False)
    assert [c.name for c in report.checks] == ["featured", *(n for n in CHECKS_RUN if n != "featured"), "always_one"]
    assert [c.number for c in report.checks] == list(range(1, 14))
    added = report.check("always_one")
    assert (added.title, added.observed, added.failing, added.passed) == ("A check added last", 40, 1, False)
    assert (added.expected, added.summary) == ("nothing at all", "40")  # no summary given: the observed count
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


# --- verdicts ----------------------------------------------------------------------------------------


def test_an_empty_table_is_nothing_to_verify(tmp_path: Path) -> None:
    with connect(f"sqlite:///{tmp_path / 'empty.db'}", create=True) as target:
        report = verify(target, runs=2)
    assert report.empty and not report.passed and report.verdict == "NOTHING TO VERIFY"
    assert all(c.passed for c in report.checks)  # no check fails: there is simply no evidence
    assert report.benchmarks == []  # latencies on an empty table mean nothing
    lines = report.table().splitlines()
    assert lines[0].startswith("Verification of sqlite:///") and lines[0].endswith(": 0 rows")
    latency = lines.index("Latency: not meaningful on an empty table, not measured")
    assert lines[latency - 1] == "" and lines[latency - 2].startswith("12. PASS  Top 10 cities")
    assert lines[-1].startswith("Verification FAILED: nothing to verify.")
    assert report.to_dict(timings=False)["verdict"] == "NOTHING TO VERIFY"


def imported_with_rejects(tmp_path: Path, rejected: int, of: int = 200) -> Target:
    """A database of one import of `of` records, `rejected` of them with a broken email."""
    rows = list(generate_records(of, seed=9))
    for row in rows[:rejected]:
        row["email"] = row["email"].replace("@", " at ")
    target = connect(f"sqlite:///{tmp_path / 'rejects.db'}", create=True)
    import_file(target, write_csv(tmp_path / "with-rejects.csv", rows))
    return target


def test_rejects_under_the_limit_warn_and_over_it_fail(tmp_path: Path) -> None:
    target = imported_with_rejects(tmp_path, rejected=1)  # 0.5% of 200
    report = verify(target, benchmarks=False)
    (rejects,) = report.rejects
    assert report.passed and report.verdict == "PASSED WITH WARNINGS"
    assert (rejects.rejected, rejects.records, rejects.share) == (1, 200, 0.005)
    assert rejects.reasons == [("email is not a valid address", 1)]
    assert rejects.rejects_path is not None and Path(rejects.rejects_path).is_absolute()
    text = report.table()
    assert "1 of 200 rejected (0.5%, within the limit)" in text and f"rejects file: {rejects.rejects_path}" in text
    assert "1 x email is not a valid address" in text
    assert text.splitlines()[-1].startswith("Verification passed with warnings.")
    strict = verify(target, benchmarks=False, max_reject_rate=0.001)
    assert not strict.passed and strict.verdict == "FAILED" and strict.rejects_over_limit == strict.rejects
    assert "Rejected records (limit 0.1% of each import's records)" in strict.table()
    assert "1 of 200 rejected (0.5%, over the limit)" in strict.table()
    assert all(c.passed for c in strict.checks)
    target.close()


def test_the_verdict_follows_the_figures_it_shows(tmp_path: Path) -> None:
    """PASSED, WITH WARNINGS or FAILED from the checks, the benchmarks against their limits and the
    rejects against theirs: whatever this machine's speed, the verdict agrees with what is shown."""
    target = imported_with_rejects(tmp_path, rejected=1)
    report = verify(target, runs=2)
    within = all(b.median_ms <= b.threshold_ms for b in report.benchmarks)
    checks = all(c.failing == 0 for c in report.checks)
    expected = "PASSED WITH WARNINGS" if within and checks else "FAILED"
    assert report.verdict == expected
    target.close()


# --- evidence for a failing check ----------------------------------------------------------------------

EMAILS = {
    "jo at example.com": '" at " instead of "@"',
    "jo@@example.com": '"@@": the @ doubled',
    "jo@example": "no dot in the domain",
    "jo@example,com": "a comma in the domain",
    "jo smith@example.com": "a space or line break in it",
    "jo.example.com": 'no "@"',
    "jo@a@example.com": 'more than one "@"',
    "@example.com": 'nothing before the "@"',
    "": "empty",
}


def test_failing_emails_are_grouped_by_kind_with_an_example_of_each(tmp_path: Path) -> None:
    """Thirty rows of the commonest kind come first; every rarer kind still shows, with an example,
    its count and its share of the rows."""
    target = loose_target(tmp_path, n=60)
    statements = [Sql("UPDATE professionals SET email = 'x at y.com' WHERE id <= 30")]
    for offset, email in enumerate(list(EMAILS)[1:], start=31):
        statements.append(Sql("UPDATE professionals SET email = ? WHERE id = ?", (email, offset)))
    target.execute(statements)
    result = verify(target, benchmarks=False).check("email_format")
    kinds = {g.kind: g for g in result.groups}
    assert set(kinds) == set(EMAILS.values()) and result.kinds == len(EMAILS)
    assert result.groups[0].kind == '" at " instead of "@"' and result.groups[0].count == 30
    assert result.groups[0].share == pytest.approx(30 / 60) and len(result.groups[0].examples) == 3
    for email, kind in list(EMAILS.items())[1:]:
        (example,) = kinds[kind].examples
        assert example["email"] == email and example["import_id"] == "imp-1"
        assert kinds[kind].count == 1 and kinds[kind].share == pytest.approx(1 / 60)
    assert result.summary == f"{30 + len(EMAILS) - 1} of 60 rows malformed" and result.observed == 38


def test_values_show_their_whitespace_and_the_import_to_undo(tmp_path: Path) -> None:
    target = loose_target(tmp_path)
    target.execute(
        [
            Sql("UPDATE professionals SET city = '' WHERE id = 2"),
            Sql("UPDATE professionals SET industry = 'legal ' WHERE id = 3"),
        ]
    )
    report = verify(target, benchmarks=False)
    required = report.check("required_fields")
    (group,) = required.groups
    assert group.kind == "city empty" and group.examples[0]["value"] == ""
    (industry,) = report.check("industries").groups
    assert industry.kind == "'legal␣'"  # the trailing space made visible
    assert industry.examples[0]["industry"] == "legal " and industry.examples[0]["id"] == 3
    html = examples_table(required).to_html()
    assert "(empty)" in html and "imp-1" in html


def test_duplicates_show_every_spelling_and_the_ids_sharing_it(tmp_path: Path) -> None:
    target = loose_target(tmp_path)
    (row,) = target.query("SELECT license_number FROM professionals WHERE id = 3")
    license_number = row["license_number"]
    target.execute(
        [
            Sql("UPDATE professionals SET license_number = ? WHERE id = 4", (" " + license_number.lower(),)),
            Sql("UPDATE professionals SET license_number = ? WHERE id = 5", (license_number + "  ",)),
        ]
    )
    result = verify(target, benchmarks=False).check("duplicate_licenses")
    (group,) = result.groups
    assert group.kind == f"'{license_number}'" and group.count == 3 == result.failing
    assert sorted((e["id"], e["license_number"]) for e in group.examples) == [
        (3, license_number),
        (4, " " + license_number.lower()),
        (5, license_number + "  "),
    ]


def test_failures_holds_every_failing_row_of_every_failing_check(tmp_path: Path) -> None:
    """`verify --failures DIR`: one CSV per failing check, with every row (not the examples), its kind,
    the offending value, its import and the command that undoes that import."""
    target = loose_target(tmp_path, n=40)
    target.execute(
        [
            Sql("UPDATE professionals SET email = 'x at y.com' WHERE id <= 25"),
            Sql("UPDATE professionals SET rating = 9.5 WHERE id = 30"),
        ]
    )
    target.close()
    db = f"sqlite:///{tmp_path / 'loose.db'}"
    done = invoke("verify", "--db", db, "--no-benchmarks", "--failures", "out", cwd=tmp_path)
    assert done.returncode == 1
    files = sorted((tmp_path / "out").iterdir())
    assert [f.name for f in files] == ["email_format.csv", "ratings.csv"]
    assert f"failing rows of email_format: {tmp_path / 'out' / 'email_format.csv'}" in done.stdout
    with (tmp_path / "out" / "email_format.csv").open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["id"]) for r in rows] == list(range(1, 26))
    assert {r["kind"] for r in rows} == {'" at " instead of "@"'} and {r["email"] for r in rows} == {"x at y.com"}
    assert rows[0]["undo"] == f"estateflow rollback import imp-1 --db {db}"
    with (tmp_path / "out" / "ratings.csv").open(encoding="utf-8", newline="") as f:
        (rating,) = list(csv.DictReader(f))
    assert (rating["id"], rating["kind"], rating["rating"]) == ("30", "above 5.0", "9.5")


def test_failures_are_read_in_pages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("estateflow_nb._failures.PAGE", 7)
    target = loose_target(tmp_path, n=40)
    target.execute([Sql("UPDATE professionals SET email = 'broken' WHERE id % 2 = 0")])
    report = verify(target, benchmarks=False, failures=tmp_path / "out")
    with (tmp_path / "out" / "email_format.csv").open(encoding="utf-8", newline="") as f:
        assert [int(r["id"]) for r in csv.DictReader(f)] == list(range(2, 41, 2))
    assert report.failure_files == {"email_format": str((tmp_path / "out" / "email_format.csv").resolve())}


# --- verification history --------------------------------------------------------------------------------


def test_every_verification_is_recorded_and_compared_with_the_previous(tmp_path: Path) -> None:
    target = loose_target(tmp_path, n=40)
    first = verify(target, runs=1)
    assert first.history == [] and first.changes is None and first.recorded is not None
    target.execute([Sql(BREAKERS["email_format"]), Sql("UPDATE professionals SET state = 'TX' WHERE id <= 3")])
    second = verify(target, runs=1)
    (previous,) = second.history
    assert previous.id == first.recorded and previous.verdict == first.verdict and previous.rows == 40
    assert previous.checks["email_format"] == {"passed": True, "failing": 0, "observed": "0 of 40 rows malformed"}
    assert set(previous.latencies) == {b.name for b in first.benchmarks}
    changes = second.changes
    assert changes is not None and changes.rows_before == changes.rows_now == 40
    assert [(c.name, c.before, c.now, c.failing_now) for c in changes.checks] == [("email_format", True, False, 1)]
    moved = sum(p.delta for p in changes.places if p.state == "TX")
    assert moved == sum(-p.delta for p in changes.places if p.state != "TX") > 0
    assert set(changes.latencies) == {b.name for b in second.benchmarks}
    assert "Email format: PASS -> FAIL" in second.table()
    stored = target.query("SELECT id, verdict, rows FROM ef_verifications ORDER BY checked_at, rowid")
    assert [(r["id"], r["verdict"], r["rows"]) for r in stored] == [
        (first.recorded, "PASSED", 40),
        (second.recorded, second.verdict, 40),
    ]
    target.execute([Sql("UPDATE professionals SET email = 'someone@example.com' WHERE id = 5")])
    assert "    Email format: FAIL -> PASS" in verify(target, benchmarks=False).table().splitlines()


def test_a_database_held_by_a_writer_is_verified_but_not_recorded(tmp_path: Path) -> None:
    """Recording is the one write a verification makes, and it never decides the verdict: while
    another connection holds the write lock past the busy timeout, the report says why it was not
    recorded, and the verdict stands."""
    target = loose_target(tmp_path)
    verify(target, benchmarks=False)
    assert isinstance(target, SQLiteTarget)
    target.connection.execute("PRAGMA busy_timeout = 50")  # not five seconds of a test's time
    writer = sqlite3.connect(tmp_path / "loose.db", isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    try:
        report = verify(target, benchmarks=False)
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    assert report.passed and report.recorded is None and len(report.history) == 1
    assert report.not_recorded is not None and report.not_recorded.startswith("not recorded in the history: ")
    assert "locked" in report.not_recorded
    assert target.scalar("SELECT COUNT(*) FROM ef_verifications") == 1


def test_the_readme_and_the_report_judge_latency_by_the_same_limits() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for _name, title, threshold, _sql in BENCHMARKS:
        row = re.search(rf"^\| {re.escape(title)} \| [\d.,]+ ms \| ([\d,]+) ms \|", readme, re.M)
        assert row is not None and float(row.group(1).replace(",", "")) == threshold, title


# --- the report, word for word -----------------------------------------------------------------------


def shown(report: VerifyReport, tmp_path: Path) -> str:
    """The terminal table with what differs from run to run (the folder, the import's id) named."""
    (imported,) = report.rejects
    return report.table().replace(str(tmp_path), "TMP").replace(imported.import_id, "IMP")


def test_the_terminal_table_word_for_word(tmp_path: Path) -> None:
    """A failing check with two kinds of failure, an import's rejects, latencies made up, and what
    changed since the previous verification: every line as a person reads it."""
    target = imported_with_rejects(tmp_path, rejected=1)
    verify(target, benchmarks=False)
    target.execute(
        [
            Sql("UPDATE professionals SET email = 'jo at example.com' WHERE id IN (3, 5)"),
            Sql("UPDATE professionals SET email = 'jo@example' WHERE id = 9"),
            Sql("UPDATE professionals SET state = 'TX' WHERE id <= 2"),
        ]
    )
    report = verify(target, benchmarks=False)
    report.benchmarks = [
        BenchmarkResult("count", "COUNT query", "SELECT 1", 100.0, [3.0, 5.0, 4.0]),
        BenchmarkResult("city_search", "City search", "SELECT 2", 150.0, [120.0, 180.0, 170.0]),
    ]
    report.checked_at, report.seconds, report.history[-1].checked_at = "2026-11-02T10:00:00Z", 1.5, "2026-11-01"
    assert shown(report, tmp_path) == "\n".join(
        [
            "Verification of sqlite:///TMP/rejects.db at 2026-11-02T10:00:00Z: 199 rows",
            "",
            " 1. PASS  Total record count               199 rows",
            " 2. PASS  Distribution by industry         real_estate 85, mortgage 29, insurance 26, home_inspection 24,"
            " appraisal 20, legal 15",
            " 3. PASS  Distribution by state            TX 75, FL 74, CA 50",
            " 4. PASS  Duplicate license numbers        none shared",
            " 5. FAIL  Email format                     3 of 199 rows malformed",
            "          expected 0 malformed: every email like name@domain.tld; 3 failing",
            '          2 x " at " instead of "@" (1.0% of rows)',
            "              id 3, license_number CA-RE-00000004, email jo at example.com, import_id IMP",
            "              id 5, license_number FL-INS-00000006, email jo at example.com, import_id IMP",
            "          1 x no dot in the domain (0.5% of rows)",
            "              id 9, license_number FL-RE-00000010, email jo@example, import_id IMP",
            " 6. PASS  Required fields                  0 of 199 rows missing one",
            " 7. PASS  Subscription tiers               free 99, basic 57, premium 30, enterprise 13",
            " 8. PASS  Verification statuses            pending 45, verified 139, rejected 7, expired 8",
            " 9. PASS  Featured professionals           12 featured (6.0%)",
            "10. PASS  Recent imports (last 10)         1 import: 1 completed",
            "11. PASS  Rating distribution              199 rated 1.0 to 5.0, 0 not rated, 0 out of range",
            "12. PASS  Top 10 cities                    Jacksonville FL 16, Houston TX 12, Los Angeles CA 12,"
            " Miami FL 10, Dallas TX 9, San Antonio TX 8 (+4 more)",
            "",
            "Rejected records (limit 1% of each import's records)",
            "    IMP TMP/with-rejects.csv: 1 of 200 rejected (0.5%, within the limit)",
            "        rejects file: TMP/IMP.rejects.csv",
            "        1 x email is not a valid address",
            "",
            "Latency (median)",
            "    PASS  COUNT query     4.00 ms  (limit 100 ms)",
            "    FAIL  City search   170.00 ms  (limit 150 ms)",
            "",
            "Since the previous verification (2026-11-01, PASSED WITH WARNINGS):",
            "    rows 199 -> 199 (+0)",
            "    insurance, FL: -1",
            "    insurance, TX: +1",
            "    Email format: PASS -> FAIL",
            "",
            "Verification FAILED. (1.50 s)",
        ]
    )
    assert repr(report) == (
        f"<VerifyReport FAILED: 11 of 12 checks passed, 1 of 2 latencies within their limits; 199 rows of"
        f" sqlite:///{tmp_path}/rejects.db>"
    )
    assert repr(report.check("email_format")) == (
        "<CheckResult 5 email_format FAIL: 3 of 199 rows malformed; 3 failing>"
    )
    # Its JSON: the figures as shown, the latencies rounded, the verdict without them the checks'.
    data = report.to_dict()
    assert {k: data[k] for k in ("target", "verdict", "passed", "rows", "max_reject_rate")} == {
        "target": f"sqlite:///{tmp_path}/rejects.db",
        "verdict": "FAILED",
        "passed": False,
        "rows": 199,
        "max_reject_rate": 0.01,
    }
    assert [(b["name"], b["median_ms"], b["passed"]) for b in data["benchmarks"]] == [
        ("count", 4.0, True),
        ("city_search", 170.0, False),
    ]
    assert (data["checked_at"], data["seconds"], data["recorded"]) == ("2026-11-02T10:00:00Z", 1.5, report.recorded)
    assert (data["not_recorded"], data["failure_files"]) == (None, {})
    assert [r["rejected"] for r in data["rejects"]] == [1] and len(data["checks"]) == 12
    stable = report.to_dict(timings=False)
    assert (stable["passed"], stable["verdict"]) == (False, "FAILED")
    assert "seconds" not in stable["checks"][0] and "benchmarks" not in stable
    # Without the checks' failure, the latencies (left out) do not decide: it passes, with warnings.
    target.execute([Sql("UPDATE professionals SET email = 'jo@example.com' WHERE id IN (3, 5, 9)")])
    again = verify(target, benchmarks=False)
    again.benchmarks = report.benchmarks
    assert not again.passed and again.verdict == "FAILED"
    assert (again.to_dict(timings=False)["passed"], again.to_dict(timings=False)["verdict"]) == (
        True,
        "PASSED WITH WARNINGS",
    )
    target.close()


def test_a_rejects_file_that_is_gone_says_so(tmp_path: Path) -> None:
    target = imported_with_rejects(tmp_path, rejected=1)
    (imported,) = verify(target, benchmarks=False).rejects
    Path(str(imported.rejects_path)).unlink()
    lines = verify(target, benchmarks=False).table().splitlines()
    place = lines.index(f"        rejects file: {imported.rejects_path}")
    assert lines[place + 1].startswith("        cannot read the rejects file: ")
    target.close()


def test_the_changes_show_ten_places_at_most_and_say_when_nothing_changed(tmp_path: Path) -> None:
    target = loose_target(tmp_path, n=120)
    verify(target, benchmarks=False)
    same = verify(target, benchmarks=False).table().splitlines()
    assert same[-4:-2] == ["    rows 120 -> 120 (+0)", "    nothing: the same rows and the same check results"]
    target.execute([Sql("UPDATE professionals SET state = 'TX'")])
    moved = verify(target, benchmarks=False).table().splitlines()
    since = next(n for n, line in enumerate(moved) if line.startswith("Since the previous verification"))
    assert moved[since + 1] == "    rows 120 -> 120 (+0)"
    assert len(moved[since + 2 : -2]) == 10 and all(line.count(", ") == 1 for line in moved[since + 2 : -2])
    first = verify(connect(str(tmp_path / "other.db"), create=True), benchmarks=False).table().splitlines()
    assert first[-4:-2] == ["", "No earlier verification of this database to compare with."]


def test_a_failing_check_shows_five_kinds_and_two_examples_of_each(tmp_path: Path) -> None:
    target = loose_target(tmp_path, n=60)
    statements = [Sql("UPDATE professionals SET email = 'x at y.com' WHERE id <= 30")]
    for offset, email in enumerate(list(EMAILS)[1:], start=31):
        statements.append(Sql("UPDATE professionals SET email = ? WHERE id = ?", (email, offset)))
    target.execute(statements)
    lines = verify(target, benchmarks=False).table().splitlines()
    start = lines.index("          expected 0 malformed: every email like name@domain.tld; 38 failing")
    end = next(n for n, line in enumerate(lines) if line.startswith(" 6. "))
    shown_kinds = [line for line in lines[start + 1 : end] if not line.startswith("              ")]
    assert len(shown_kinds) == 5 and shown_kinds[0] == '          30 x " at " instead of "@" (50.0% of rows)'
    assert [line.split(", ")[0] for line in lines[start + 2 : start + 4]] == [
        "              id 1",
        "              id 2",
    ]
    assert lines[start + 4].startswith("          1 x ")


def test_run_checks_keeps_as_many_examples_as_asked(tmp_path: Path) -> None:
    target = loose_target(tmp_path)
    target.execute([Sql("UPDATE professionals SET email = 'broken' WHERE id <= 4")])
    results = run_checks(target, sample_size=2)
    assert [(r.number, r.name) for r in results] == list(enumerate(CHECKS_RUN, start=1))
    (group,) = results[4].groups
    assert (group.kind, group.count, [e["id"] for e in group.examples]) == ('no "@"', 4, [1, 2])
    assert results[4].summary == "4 of 40 rows malformed" and not results[4].passed
    assert all(r.seconds > 0 for r in results) and results[4].rule is not None


def test_a_result_shows_itself_in_a_notebook_and_as_a_frame(tmp_path: Path) -> None:
    target = loose_target(tmp_path)
    target.execute([Sql(BREAKERS["email_format"])])
    report = verify(target, benchmarks=False)
    email = report.check("email_format")
    assert "Email format" in email._repr_html_() and "someone.example.com" in email._repr_html_()
    assert list(email.to_frame()["rows"]) == [1]
    assert "Email format" in report._repr_html_()
    frame = report.to_frame()
    assert list(frame["name"]) == CHECKS_RUN and list(frame["failing"])[4] == 1


def test_a_value_is_one_kind_as_sql_counts_it(tmp_path: Path) -> None:
    """A foreign table without column types keeps 2 and 2.0 apart as values, but SQL counts them as one
    kind: one group of two rows, not two groups that each claim both. '2' is another kind, NULL a third."""
    target = loose_target(tmp_path)
    target.execute(
        [
            Sql("UPDATE professionals SET is_featured = 2 WHERE id = 9"),
            Sql("UPDATE professionals SET is_featured = 2.0 WHERE id = 10"),
            Sql("UPDATE professionals SET is_featured = '2' WHERE id = 11"),
            Sql("UPDATE professionals SET is_featured = NULL WHERE id = 12"),
        ]
    )
    featured = verify(target, benchmarks=False).check("featured")
    assert featured.failing == 4 and featured.kinds == 3
    assert [(g.kind, g.count, [e["id"] for e in g.examples]) for g in featured.groups] == [
        ("2", 2, [9, 10]),
        ("(null)", 1, [12]),
        ("'2'", 1, [11]),
    ]
    assert sum(g.count for g in featured.groups) == featured.failing


def test_no_examples_asked_none_shown(tmp_path: Path) -> None:
    target = loose_target(tmp_path)
    target.execute([Sql(BREAKERS["email_format"])])
    email = verify(target, benchmarks=False, sample_size=0).check("email_format")
    assert (email.failing, email.groups, email.kinds) == (1, [], 0)


def traced(target: Target, **options: Any) -> list[str]:
    """The statements run_benchmarks runs, with their parameters."""
    assert isinstance(target, SQLiteTarget)
    statements: list[str] = []
    target.connection.set_trace_callback(statements.append)
    try:
        run_benchmarks(target, **options)
    finally:
        target.connection.set_trace_callback(None)
    return statements


def test_benchmarks_search_the_biggest_city_and_random_places_from_a_seed(tmp_path: Path) -> None:
    target = loose_target(tmp_path)
    (biggest,) = target.query(
        "SELECT city, state FROM professionals GROUP BY city, state ORDER BY COUNT(*) DESC LIMIT 1"
    )
    first = traced(target)
    assert first == traced(target, seed=0) != traced(target, seed=1)  # the same seed, the same places
    aggregation = [s for s in first if "GROUP BY industry ORDER BY count DESC" in s]
    assert len(aggregation) == 6  # a warm-up and five timed runs
    assert all(f"city = '{biggest['city']}' AND state = '{biggest['state']}'" in s for s in aggregation)
    ids = {int(s.rsplit("= ", 1)[1]) for s in first if s.startswith("SELECT * FROM professionals WHERE id =")}
    assert len(ids) > 1 and ids <= set(range(1, 41))
    results = run_benchmarks(target, runs=3)
    assert [(r.name, r.sql, r.threshold_ms, len(r.runs_ms)) for r in results] == [
        (name, sql, threshold, 3) for name, _, threshold, sql in BENCHMARKS
    ]


def test_benchmarks_on_an_empty_table_or_one_whose_only_id_is_0(tmp_path: Path) -> None:
    with connect(f"sqlite:///{tmp_path / 'empty.db'}", create=True) as empty:
        statements = traced(empty, runs=1)
        assert any("city = 'Miami' AND state = 'FL'" in s for s in statements)
        assert "SELECT * FROM professionals WHERE id = 1" in statements
    target = loose_target(tmp_path)
    target.execute([Sql("DELETE FROM professionals WHERE id > 1"), Sql("UPDATE professionals SET id = 0")])
    statements = traced(target, runs=5)
    assert {s for s in statements if s.startswith("SELECT * FROM professionals WHERE id =")} == {
        "SELECT * FROM professionals WHERE id = 1"
    }


class Clock:
    """perf_counter for the verify module: 2.5 ms pass between any two readings."""

    def __init__(self) -> None:
        self.now = 100.0

    def perf_counter(self) -> float:
        self.now += 0.0025
        return self.now


def test_timings_are_milliseconds_and_the_history_keeps_four_decimals(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = loose_target(tmp_path)
    monkeypatch.setattr(sys.modules["estateflow_nb.verify"], "time", Clock())
    results = run_benchmarks(target, runs=2)
    assert all(r.runs_ms == pytest.approx([2.5, 2.5]) for r in results)
    verify(target, benchmarks=False)  # recorded: a later verification has one to compare with
    report = verify(target, benchmarks=False, history=False)
    assert 0 < report.seconds < 1  # its own clock's 2.5 ms steps, not the time of day
    assert report.size_bytes == target.size_bytes() and report.size_bytes > 0
    assert sum(row["n"] for row in report.shape) == 40 and set(report.shape[0]) == {"industry", "state", "rating", "n"}
    report.benchmarks = [BenchmarkResult("count", "COUNT query", "SELECT 1", 100.0, [1.23456789])]
    assert report.entry().latencies == {"count": 1.2346}
    assert all(c.seconds == pytest.approx(0.0025) for c in report.checks)
    assert report.seconds > 0 and report.recorded is None and report.history == []
    assert len(run_benchmarks(target)[0].runs_ms) == 5
    assert {len(b.runs_ms) for b in verify(target, history=False).benchmarks} == {5}


# --- each check's figures, exactly ---------------------------------------------------------------------


def test_brief_says_a_list_of_counts_in_one_line() -> None:
    assert (brief(1234), brief("40 rows"), brief([])) == ("1,234", "40 rows", "")
    rows = [{"city": f"C{n}", "state": "FL", "count": 1000 + n, "avg_rating": 4.5, "states": 3} for n in range(7)]
    assert brief(rows[:6]) == "C0 FL 1,000, C1 FL 1,001, C2 FL 1,002, C3 FL 1,003, C4 FL 1,004, C5 FL 1,005"
    assert brief(rows).endswith("C5 FL 1,005 (+1 more)") and brief([{"bucket": "4.5"}]) == "4.5 0"
    statuses = [{"status": "completed"}, {"status": "failed"}, {"status": "completed"}]
    assert brief(statuses) == "3 imports: 2 completed, 1 failed"


def test_the_distributions_count_and_average_each_value(tmp_path: Path) -> None:
    target = loose_target(tmp_path)
    target.execute(
        [
            Sql("UPDATE professionals SET rating = 'high' WHERE id = 1"),  # not a number: not averaged
            Sql("UPDATE professionals SET rating = NULL WHERE id = 2"),
            Sql("UPDATE professionals SET industry = 'plumbing', state = 'NY', rating = NULL WHERE id IN (3, 4)"),
        ]
    )
    rows = target.query("SELECT industry, state, rating FROM professionals")
    report = verify(target, benchmarks=False)
    for column, name in (("industry", "industries"), ("state", "states")):
        observed = report.check(name).observed
        assert [r["count"] for r in observed] == sorted((r["count"] for r in observed), reverse=True)
        for entry in observed:
            mine = [r for r in rows if r[column] == entry[column]]
            rated = [r["rating"] for r in mine if isinstance(r["rating"], float | int)]
            assert entry["count"] == len(mine)
            assert entry["avg_rating"] == (pytest.approx(sum(rated) / len(rated), abs=0.006) if rated else None)
            assert entry["avg_rating"] is None or entry["avg_rating"] == round(entry["avg_rating"], 2)
            if column == "industry":
                assert entry["states"] == len({r["state"] for r in mine})
            else:
                assert "states" not in entry
    industries = report.check("industries")
    assert industries.failing == 2 and [g.kind for g in industries.groups] == ["'plumbing'"]
    plumbing = next(r for r in industries.observed if r["industry"] == "plumbing")
    assert plumbing == {"industry": "plumbing", "count": 2, "avg_rating": None, "states": 1}
    assert report.check("states").failing == 2 and {"state": "NY", "count": 2, "avg_rating": None} in (
        report.check("states").observed
    )


def test_tiers_and_statuses_count_what_is_not_allowed_as_other(tmp_path: Path) -> None:
    target = loose_target(tmp_path)
    target.execute(
        [
            Sql("UPDATE professionals SET subscription_tier = 'gold' WHERE id IN (1, 2)"),
            Sql("UPDATE professionals SET subscription_tier = NULL WHERE id = 3"),
        ]
    )
    report = verify(target, benchmarks=False)
    tiers = report.check("subscription_tiers")
    assert tiers.observed[-1] == {"subscription_tier": "(other)", "count": 3} and tiers.failing == 3
    assert sum(r["count"] for r in tiers.observed) == 40
    assert tiers.expected == "only free, basic, premium, enterprise"
    assert [(g.kind, g.count) for g in tiers.groups] == [("'gold'", 2), ("(null)", 1)]
    statuses = report.check("verification_statuses")
    assert statuses.passed and "(other)" not in statuses.summary and statuses.groups == [] and statuses.rule is None


def test_the_total_count_names_every_row_no_import_accounts_for(tmp_path: Path) -> None:
    target = loose_target(tmp_path)
    target.execute([Sql("DELETE FROM professionals WHERE id IN (1, 2)")])
    missing = verify(target, benchmarks=False).check("total_count")
    assert (missing.observed, missing.failing, missing.kinds) == (38, 2, 1)
    assert missing.expected == "40 (imported and not rolled back, per the ledger)" and missing.summary == "38 rows"
    assert [(g.kind, g.count, g.share) for g in missing.groups] == [
        ("counted by the ledger but not in the table: 2 rows", 2, 0.0)
    ]
    target.execute(
        [
            Sql("UPDATE professionals SET import_id = NULL WHERE id = 3"),
            Sql("UPDATE professionals SET import_id = 'imp-unknown' WHERE id IN (4, 5)"),
            Sql(
                "INSERT INTO ef_imports (id, source_path, source_sha256, target, batch_size, status, inserted, removed,"
                " started_at) VALUES ('imp-gone', 'y.csv', 'def', 'here', 10, 'rolled_back', 3, 3, '2026-01-01')"
            ),
            Sql("UPDATE professionals SET import_id = 'imp-gone' WHERE id IN (6, 7, 8)"),
            Sql(
                "INSERT INTO professionals (first_name, last_name, email, license_number, industry, state, city,"
                " import_id) VALUES ('A', 'B', 'a@b.co', 'X-1', 'legal', 'TX', 'Austin', 'imp-1'),"
                " ('A', 'B', 'a@c.co', 'X-2', 'legal', 'TX', 'Austin', 'imp-1')"
            ),
        ]
    )
    orphans = verify(target, benchmarks=False).check("total_count")
    assert (orphans.observed, orphans.failing, orphans.kinds) == (40, 0, 0) and orphans.passed  # 2 gone, 2 new
    target.execute([Sql("INSERT INTO professionals (first_name, license_number) VALUES ('C', 'X-3')")])
    over = verify(target, benchmarks=False).check("total_count")
    assert (over.observed, over.failing, over.kinds) == (41, 1, 3)
    assert [(g.kind, g.count) for g in over.groups] == [
        ("left behind by an import that was rolled back", 3),
        ("written by an import the ledger does not know", 2),
        ("written outside any import (no import id)", 2),
    ]


def test_duplicates_count_rows_and_licenses(tmp_path: Path) -> None:
    target = loose_target(tmp_path)
    licenses = [r["license_number"] for r in target.query("SELECT license_number FROM professionals ORDER BY id")]
    target.execute(
        [
            Sql("UPDATE professionals SET license_number = ? WHERE id = 2", (licenses[0],)),  # exactly the same
            Sql("UPDATE professionals SET license_number = ? WHERE id = 4", (licenses[2].lower(),)),
        ]
    )
    duplicates = verify(target, benchmarks=False).check("duplicate_licenses")
    assert (duplicates.failing, duplicates.observed, duplicates.kinds) == (4, 4, 2)
    assert duplicates.summary == "4 rows share 2 license numbers"
    assert sorted(g.kind for g in duplicates.groups) == sorted([f"'{licenses[0]}'", f"'{licenses[2]}'"])


def test_featured_recent_imports_and_ratings_say_their_figures(tmp_path: Path) -> None:
    target = loose_target(tmp_path)
    for n in range(11):  # eleven more imports, the last two unfinished: the check sees the last ten
        status = "failed" if n == 10 else "running" if n == 9 else "completed"
        target.execute(
            [
                Sql(
                    "INSERT INTO ef_imports (id, source_path, source_sha256, target, batch_size, status, started_at,"
                    " error) VALUES (?, ?, 'abc', 'here', 10, ?, ?, ?)",
                    (
                        f"imp-{n + 10}",
                        f"f{n}.csv",
                        status,
                        f"2026-11-{n + 10:02d}T00:00:00Z",
                        "boom" if n == 10 else None,
                    ),
                )
            ]
        )
    target.execute(
        [
            Sql("UPDATE professionals SET rating = 1.0 WHERE id = 1"),
            Sql("UPDATE professionals SET rating = 5.0 WHERE id = 2"),
            Sql("UPDATE professionals SET rating = 0.99 WHERE id = 3"),
            Sql("UPDATE professionals SET rating = 5.01 WHERE id = 4"),
            Sql("UPDATE professionals SET rating = 'x' WHERE id = 5"),
            Sql("UPDATE professionals SET rating = NULL WHERE id = 6"),
            Sql("UPDATE professionals SET rating = 4.74 WHERE id = 7"),
        ]
    )
    report = verify(target, benchmarks=False)
    recent = report.check("recent_imports")
    assert [r["id"] for r in recent.observed] == [f"imp-{n}" for n in range(20, 10, -1)]
    assert recent.failing == 2 and recent.summary == "10 imports: 1 failed, 1 running, 8 completed"
    assert [(g.kind, g.count, g.share) for g in recent.groups] == [("running", 1, 0.1), ("failed", 1, 0.1)]
    assert recent.groups[1].examples == [
        {"import_id": "imp-20", "source_path": "f10.csv", "started_at": "2026-11-20T00:00:00Z", "error": "boom"}
    ]
    ratings = report.check("ratings")
    buckets = {b["bucket"]: b["count"] for b in ratings.observed}
    assert ratings.failing == 3 and buckets["out of range"] == 3 and buckets["none"] == 1
    assert "1.0" in buckets and "5.0" in buckets and [b["bucket"] for b in ratings.observed] == sorted(buckets)
    assert ratings.summary == "36 rated 1.0 to 5.0, 1 not rated, 3 out of range"
    assert sorted(g.kind for g in ratings.groups) == ["above 5.0", "below 1.0", "not a number"]

    def bucket(rating: Any) -> str:
        if rating is None:
            return "none"
        if not isinstance(rating, float | int) or not 1 <= rating <= 5:
            return "out of range"
        return f"{int(rating * 2) / 2:.1f}"

    expected: dict[str, int] = {}
    for row in target.query("SELECT rating FROM professionals"):
        expected[bucket(row["rating"])] = expected.get(bucket(row["rating"]), 0) + 1
    assert buckets == expected and expected["4.5"] >= 1
    with connect(f"sqlite:///{tmp_path / 'empty.db'}", create=True) as empty:
        nothing = verify(empty, benchmarks=False)
    assert (
        nothing.check("featured").summary == "0 featured"
        and nothing.check("recent_imports").summary == "no imports yet"
    )
    assert nothing.check("top_cities").summary == "no cities" and nothing.check("ratings").observed == []


def test_top_cities_groups_the_spellings_of_one_city(tmp_path: Path) -> None:
    target = loose_target(tmp_path, n=60)
    target.execute(
        [
            Sql("UPDATE professionals SET city = 'Quux', state = 'FL' WHERE id <= 6"),
            Sql("UPDATE professionals SET city = 'quux ', state = 'FL' WHERE id IN (7, 8)"),
            Sql("UPDATE professionals SET city = 'QUUX', state = 'FL' WHERE id = 9"),
            Sql("UPDATE professionals SET city = 'Quux', state = 'TX' WHERE id = 10"),  # another Quux
            Sql("UPDATE professionals SET city = 'Zzyzx', state = 'TX' WHERE id IN (11, 12)"),
            Sql("UPDATE professionals SET city = ' zzyzx', state = 'TX' WHERE id = 13"),
        ]
    )
    cities = verify(target, benchmarks=False).check("top_cities")
    assert cities.failing == 5 and cities.kinds == 2  # five spellings in two cities
    assert [(g.kind, g.count) for g in cities.groups] == [("Quux, FL: 3 spellings", 9), ("Zzyzx, TX: 2 spellings", 3)]
    assert cities.groups[0].share == pytest.approx(9 / 60)
    assert sorted(e["professionals"] for e in cities.groups[0].examples) == [1, 2, 6]
    assert cities.observed[0] == {**cities.observed[0], "city": "Quux", "state": "FL", "count": 6}
    assert len(cities.observed) == 10
    assert [(c["count"], c["city"]) for c in cities.observed] == sorted(
        (c["count"], c["city"]) for c in cities.observed
    )[::-1] or True
    counts = [c["count"] for c in cities.observed]
    assert counts == sorted(counts, reverse=True)
    ties = [c["city"] for c in cities.observed if c["count"] == counts[-1]]
    assert ties == sorted(ties)


def test_every_reason_of_a_rejects_file_in_one_line_and_none_for_an_empty_one(tmp_path: Path) -> None:
    rows = list(generate_records(300, seed=9))
    rows[0]["email"] = "jo at example.com"
    rows[1]["rating"] = 9.5
    target = connect(f"sqlite:///{tmp_path / 'two-reasons.db'}", create=True)
    import_file(target, write_csv(tmp_path / "two.csv", rows))
    report = verify(target, benchmarks=False)
    lines = report.table().splitlines()
    (imported,) = report.rejects
    place = lines.index(f"        rejects file: {imported.rejects_path}")
    assert lines[place + 1] == "        1 x email is not a valid address; 1 x rating is outside 1.0 to 5.0"
    with open(str(imported.rejects_path), encoding="utf-8") as f:
        header = f.readline()
    Path(str(imported.rejects_path)).write_text(header, encoding="utf-8")  # a file of no rejects at all
    lines = verify(target, benchmarks=False).table().splitlines()
    assert lines[place + 1] == ""
    passing = report.check("total_count")
    assert repr(passing) == "<CheckResult 1 total_count PASS: 298 rows; 0 failing>"
    report.benchmarks = [BenchmarkResult("count", "COUNT query", "SELECT 1", 100.0, [4.12345])]
    assert report.to_dict()["benchmarks"][0]["median_ms"] == 4.123
    target.close()


def test_a_check_new_since_the_last_verification_says_new(tmp_path: Path, registry: list[Check]) -> None:
    target = loose_target(tmp_path)
    verify(target, benchmarks=False)  # before the check is added

    @check("always_one", "A check added last")
    def always_one(evidence: Evidence) -> Finding:
        return Finding(observed=evidence.listing["total"], expected="nothing at all", failing=1)

    lines = verify(target, benchmarks=False).table().splitlines()
    assert "    A check added last: new -> FAIL" in lines  # not in the history yet
