"""The synthetic data generator: deterministic, valid (or invalid exactly where asked), loadable."""

from __future__ import annotations

import csv
import hashlib
import json
import re
import shutil
import sqlite3
import statistics
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from estateflow_nb.errors import EstateFlowError, SourceError
from estateflow_nb.generate import (
    LADDER_FILES,
    _fold,
    generate_records,
    invalid_count,
    write_ladder,
    write_records,
)
from estateflow_nb.schema import (
    EMAIL_RE,
    INDUSTRIES,
    PROFESSIONALS_DDL,
    RECORD_COLUMNS,
    STATES,
    SUBSCRIPTION_TIERS,
    VERIFICATION_STATUSES,
    RecordRejected,
    clean_record,
)

NOW = "2026-11-28T10:00:00Z"
FORMATS = (".sql", ".csv", ".jsonl")
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
PHONE = re.compile(r"^\(\d{3}\) [2-9]\d{2}-\d{4}$")
# The sqlite3 shell is a test dependency (make test installs it); a missing one must fail, not skip.
SQLITE3 = shutil.which("sqlite3")


def records(n: int, **kwargs: Any) -> list[dict[str, Any]]:
    return list(generate_records(n, **kwargs))


def reason(record: dict[str, Any]) -> str | None:
    try:
        clean_record(record, NOW)
    except RecordRejected as why:
        return str(why)
    return None


def load_with_shell(db: Path, *sql_files: Path) -> sqlite3.Connection:
    """Load the files with the real sqlite3 shell, as a person would, into a table made by our DDL."""
    if not db.exists():
        with sqlite3.connect(db) as conn:
            conn.execute(PROFESSIONALS_DDL)
    for sql_file in sql_files:
        with sql_file.open("rb") as f:
            done = subprocess.run([SQLITE3 or "sqlite3", "-bail", str(db)], stdin=f, capture_output=True, timeout=60)
        assert done.returncode == 0 and not done.stderr, done.stderr.decode()
    return sqlite3.connect(db)


def test_every_record_is_complete_typed_and_accepted_as_is() -> None:
    generated = records(3000)
    assert all(list(r) == list(RECORD_COLUMNS) for r in generated)
    for r in generated:
        # clean_record normalises; a generated record has nothing left to normalise.
        assert clean_record(r, NOW) == tuple(r.values())
        assert isinstance(r["rating"], float) and 1.0 <= r["rating"] <= 5.0
        assert round(r["rating"], 1) == r["rating"]
        assert isinstance(r["review_count"], int) and r["review_count"] >= 0
        assert r["is_featured"] in (0, 1) and type(r["is_featured"]) is int
        assert TIMESTAMP.match(r["created_at"]) and TIMESTAMP.match(r["updated_at"])
        assert "2019-01-01" <= r["created_at"] <= r["updated_at"] <= "2026-10-31T23:59:59Z"
        assert EMAIL_RE.match(r["email"]) and r["email"].isascii() and r["email"] == r["email"].lower()
        assert r["phone"] is None or PHONE.match(r["phone"])
        assert r["license_number"].startswith(f"{r['state']}-")
    assert len({r["email"] for r in generated}) == len(generated)
    assert len({r["license_number"] for r in generated}) == len(generated)


def test_distributions_look_like_a_real_directory() -> None:
    generated = records(5000, seed=3)
    share = Counter[str]()
    for r in generated:
        share.update([r["industry"], r["state"], r["subscription_tier"], r["verification_status"]])
    assert set(INDUSTRIES) | set(STATES) | set(SUBSCRIPTION_TIERS) | set(VERIFICATION_STATUSES) <= set(share)
    assert share["real_estate"] == max(share[i] for i in INDUSTRIES)
    assert 0.45 < share["free"] / 5000 < 0.65 and 0.02 < share["enterprise"] / 5000 < 0.09
    assert 0.62 < share["verified"] / 5000 < 0.78
    ratings = [r["rating"] for r in generated]
    assert sum(x >= 4.0 for x in ratings) / 5000 > 0.8
    assert any(x < 3.0 for x in ratings)
    reviews = [r["review_count"] for r in generated]
    assert statistics.median(reviews) < 30 and max(reviews) >= 200
    assert 0.02 < sum(r["is_featured"] for r in generated) / 5000 < 0.09
    for state in STATES:
        assert len({r["city"] for r in generated if r["state"] == state}) >= 15
    names = [r["first_name"] + r["last_name"] for r in generated]
    special = sum(not name.isascii() or "'" in name for name in names)
    assert 0.04 < special / 5000 < 0.25

    # Featuring is sold with the paid tiers: a premium profile is far likelier to be featured.
    def featured_share(tier: str) -> float:
        group = [r["is_featured"] for r in generated if r["subscription_tier"] == tier]
        return sum(group) / len(group)

    assert featured_share("premium") > 3 * featured_share("free")


def test_ratings_reviews_tiers_and_featured_differ_by_industry_state_and_city_size() -> None:
    """Enough difference for a report to show: the same in every run, since the seed fixes it."""
    generated = records(20_000, seed=3)

    def mean(rows: list[dict[str, Any]], column: str) -> float:
        return sum(float(r[column]) for r in rows) / len(rows)

    by_industry = {i: [r for r in generated if r["industry"] == i] for i in INDUSTRIES}
    ratings = {i: mean(rows, "rating") for i, rows in by_industry.items()}
    assert max(ratings.values()) - min(ratings.values()) > 0.25
    assert ratings["appraisal"] < ratings["real_estate"] - 0.2 and ratings["insurance"] < ratings["mortgage"]
    top_band = {i: sum(r["rating"] >= 4.5 for r in rows) / len(rows) for i, rows in by_industry.items()}
    assert max(top_band.values()) - min(top_band.values()) > 0.15
    by_state = {s: mean([r for r in generated if r["state"] == s], "rating") for s in STATES}
    assert by_state["CA"] < by_state["FL"] - 0.05
    paid = {i: sum(r["subscription_tier"] != "free" for r in rows) / len(rows) for i, rows in by_industry.items()}
    assert paid["mortgage"] > paid["appraisal"] + 0.15
    featured = {i: mean(rows, "is_featured") for i, rows in by_industry.items()}
    assert featured["real_estate"] > 1.5 * featured["appraisal"]
    big = {"Houston", "Los Angeles", "San Antonio", "Dallas", "San Diego", "Jacksonville", "Austin", "Fort Worth"}
    in_big = [r["review_count"] for r in generated if r["city"] in big]
    in_small = [r["review_count"] for r in generated if r["city"] in {"Palo Alto", "Sarasota", "Pensacola", "Waco"}]
    assert statistics.median(in_big) > 1.5 * statistics.median(in_small)


def test_emails_are_folded_from_the_names() -> None:
    assert [_fold(name) for name in ("Nguyễn", "Søren", "O'Brien", "De la Cruz", "Łukasz")] == [
        "nguyen",
        "soren",
        "obrien",
        "delacruz",
        "lukasz",
    ]
    for r in records(500):
        assert _fold(r["last_name"]) in r["email"].split("@")[0]


@pytest.mark.parametrize("suffix", FORMATS)
def test_same_arguments_give_the_same_bytes(tmp_path: Path, suffix: str) -> None:
    a = write_records(tmp_path / f"a{suffix}", 700, seed=5, start=20, invalid_share=0.1)
    b = write_records(tmp_path / f"b{suffix}", 700, seed=5, start=20, invalid_share=0.1)
    c = write_records(tmp_path / f"c{suffix}", 700, seed=6, start=20, invalid_share=0.1)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()


# SHA-256 of write_records(path, 2000, seed=11, start=5, invalid_share=0.05) per format: every name,
# word and weight in its order, pinned. Taken again when ratings, review counts, tiers and featured
# shares came to vary by industry, state and city size (the data changed on purpose, and only then).
PINNED = {
    ".sql": "5db2fa5b69c94c4407b2bb9203362f12887356d0920e0dcdb50dcfd35b2ad735",
    ".csv": "435a913bee4b4ee65bebd7ab46058e271be51cf65e1fcc4164a2bc31892e08dc",
    ".jsonl": "cbfb0f4bb12d66763771b9b6f67b5e56ad24ba99bdfb43c8a57186e663727fb6",
}


@pytest.mark.parametrize("suffix", FORMATS)
def test_the_bytes_are_those_pinned(tmp_path: Path, suffix: str) -> None:
    path = write_records(tmp_path / f"pinned{suffix}", 2000, seed=11, start=5, invalid_share=0.05)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == PINNED[suffix]


def test_ranges_never_share_a_license_number() -> None:
    first, second = records(100, start=0), records(100, start=100)
    numbers = [int(r["license_number"].rsplit("-", 1)[1]) for r in first + second]
    assert numbers == list(range(1, 201))
    # The start offset moves the numbers only, not what the records are like.
    assert {r["license_number"] for r in first}.isdisjoint(r["license_number"] for r in second)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(), start=st.integers(0, 10**9), n=st.integers(0, 40))
def test_any_seed_gives_valid_records(seed: int, start: int, n: int) -> None:
    generated = records(n, seed=seed, start=start)
    assert len(generated) == n
    assert all(reason(r) is None for r in generated)
    numbers = [int(r["license_number"].rsplit("-", 1)[1]) for r in generated]
    assert numbers == list(range(start + 1, start + n + 1))


def test_invalid_share_breaks_exactly_that_many_records_each_one_rejected() -> None:
    clean = records(1400)
    mixed = records(1400, invalid_share=0.1)
    changed = [(c, m) for c, m in zip(clean, mixed, strict=True) if c != m]
    assert len(changed) == invalid_count(1400, 0.1) == 140
    reasons = Counter[str]()
    for good, bad in changed:
        why = reason(bad)
        assert why is not None, bad
        reasons[why.split(":")[0]] += 1
        assert bad["license_number"] == good["license_number"]
        assert sum(good[c] != bad[c] for c in RECORD_COLUMNS) == 1  # one fault per broken record
    assert all(reason(m) is None for c, m in zip(clean, mixed, strict=True) if c == m)
    assert {"email", "rating", "industry", "city", "review_count", "state"} <= set(reasons)
    assert reasons["created_at"] + reasons["updated_at"] > 0


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_broken_records_stay_broken_in_a_file(tmp_path: Path, suffix: str) -> None:
    path = write_records(tmp_path / f"mixed{suffix}", 400, invalid_share=0.25)
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f)) if suffix == ".csv" else [json.loads(line) for line in f]
    assert sum(reason(row) is not None for row in rows) == 100


def assert_has_edge_cases(generated: list[dict[str, Any]]) -> None:
    # Otherwise a round trip proves nothing about quoting, encodings and NULLs.
    names = [r["first_name"] + r["last_name"] for r in generated]
    assert any("'" in name for name in names) and any(not name.isascii() for name in names)
    assert any(r["phone"] is None for r in generated) and any(r["company"] is None for r in generated)
    assert any("," in (r["company"] or "") for r in generated)


def test_csv_round_trip(tmp_path: Path) -> None:
    generated = records(600)
    assert_has_edge_cases(generated)
    path = write_records(tmp_path / "pros.csv", 600)
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == list(RECORD_COLUMNS)
        rows = list(reader)
    assert rows == [{k: "" if v is None else str(v) for k, v in r.items()} for r in generated]


def test_jsonl_round_trip(tmp_path: Path) -> None:
    generated = records(600)
    path = write_records(tmp_path / "pros.jsonl", 600)
    lines = path.read_text(encoding="utf-8").splitlines()
    objects = [json.loads(line) for line in lines]
    assert objects == generated
    assert all(list(o) == list(RECORD_COLUMNS) for o in objects)
    assert any(not line.isascii() for line in lines)  # written as UTF-8, not \u escapes


def test_sql_loads_in_the_sqlite3_shell_and_reads_back_equal(tmp_path: Path) -> None:
    generated = records(1234)
    assert_has_edge_cases(generated)
    path = write_records(tmp_path / "pros.sql", 1234)
    text = path.read_text(encoding="utf-8")
    assert text.startswith("BEGIN TRANSACTION;\n") and text.endswith("COMMIT;\n")
    assert text.count("INSERT INTO professionals (") == 3  # 500 + 500 + 234 rows
    assert "CREATE" not in text
    with load_with_shell(tmp_path / "pros.db", path) as conn:
        rows = conn.execute(f"SELECT {', '.join(RECORD_COLUMNS)} FROM professionals ORDER BY id").fetchall()
        storage = "SELECT DISTINCT typeof(rating), typeof(review_count) FROM professionals"
        types = conn.execute(storage).fetchall()
    assert rows == [tuple(r.values()) for r in generated]
    assert types == [("real", "integer")]


def test_ladder_files_hold_distinct_records_and_are_kept(tmp_path: Path) -> None:
    paths = write_ladder(tmp_path / "data")
    assert [p.name for p in paths] == [name for name, _ in LADDER_FILES]
    with load_with_shell(tmp_path / "ladder.db", *paths) as conn:
        counts = "SELECT COUNT(*), COUNT(DISTINCT license_number) FROM professionals"
        total, distinct = conn.execute(counts).fetchone()
    assert total == distinct == sum(n for _, n in LADDER_FILES) == 11_110

    original = paths[0].read_bytes()
    paths[0].write_text("-- edited by hand\n", encoding="utf-8")
    assert write_ladder(tmp_path / "data") == paths
    assert paths[0].read_text(encoding="utf-8") == "-- edited by hand\n"
    write_ladder(tmp_path / "data", overwrite=True)
    assert paths[0].read_bytes() == original


def test_progress_adds_up_to_the_record_count(tmp_path: Path) -> None:
    for suffix in FORMATS:
        calls: list[int] = []
        write_records(tmp_path / "deep" / "er" / f"p{suffix}", 12_000, progress=calls.append)
        assert sum(calls) == 12_000 and len(calls) >= 3, (suffix, calls)


@pytest.mark.parametrize("name", ["pros.txt", "pros.json", "pros", "pros.sql.gz"])
def test_an_unknown_format_is_refused_with_one_line(tmp_path: Path, name: str) -> None:
    with pytest.raises(SourceError) as raised:
        write_records(tmp_path / "out" / name, 5)
    assert "\n" not in str(raised.value) and ".jsonl" in str(raised.value)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("arguments", [{"n": -1}, {"n": 3, "start": -5}, {"n": 3, "invalid_share": 1.5}])
def test_bad_arguments_are_refused(arguments: dict[str, Any]) -> None:
    with pytest.raises(EstateFlowError):
        generate_records(**arguments)


def test_writing_is_atomic(tmp_path: Path) -> None:
    path = write_records(tmp_path / "pros.csv", 50)
    before = path.read_bytes()
    assert [p.name for p in tmp_path.iterdir()] == ["pros.csv"]

    def fail(_records: int) -> None:
        raise KeyboardInterrupt  # stopped part way, as by Ctrl-C

    with pytest.raises(KeyboardInterrupt):
        write_records(path, 20_000, seed=9, progress=fail)
    # The old file is untouched and nothing half-written is left beside it.
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["pros.csv"]
