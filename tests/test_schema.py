from __future__ import annotations

import sqlite3
from typing import get_args

import pytest

from estateflow_nb._ledger import CONFLICT_TAILS
from estateflow_nb.schema import (
    IMPORT_STATUSES,
    IMPORTS_DDL,
    INDUSTRIES,
    ON_CONFLICT,
    RECORD_COLUMNS,
    SCHEMA_STATEMENTS,
    UNREADABLE,
    ImportStatus,
    OnConflict,
    RecordRejected,
    clean_record,
    unknown_columns,
)

NOW = "2026-11-28T10:00:00Z"
GOOD = {
    "first_name": " Zoë ",
    "last_name": "O'Brien",
    "email": "zoe.obrien@example.com",
    "phone": "(305) 555-0101",
    "company": "",
    "license_number": "FL-RE-00000001",
    "industry": "Real_Estate",
    "state": "fl",
    "city": "Miami",
    "rating": "4.7",
    "review_count": "12",
    "subscription_tier": "",
    "verification_status": "VERIFIED",
    "is_featured": "true",
    "created_at": "2024-03-01T09:30:00Z",
    "updated_at": "",
}


def test_clean_record_normalises_a_good_row() -> None:
    record = dict(zip(RECORD_COLUMNS, clean_record(GOOD, NOW), strict=True))
    assert record["first_name"] == "Zoë"
    assert record["company"] is None
    assert record["industry"] == "real_estate"
    assert record["state"] == "FL"
    assert record["rating"] == 4.7
    assert record["review_count"] == 12
    assert record["subscription_tier"] == "free"
    assert record["verification_status"] == "verified"
    assert record["is_featured"] == 1
    assert record["updated_at"] == "2024-03-01T09:30:00Z"


def test_missing_timestamps_take_the_import_time() -> None:
    record = dict(zip(RECORD_COLUMNS, clean_record({**GOOD, "created_at": None}, NOW), strict=True))
    assert record["created_at"] == record["updated_at"] == NOW


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"email": "a@b@c.com"}, "email"),
        ({"email": "a b@c.com"}, "email"),
        ({"email": ""}, "email: required"),
        ({"first_name": "  "}, "first_name: required"),
        ({"license_number": None}, "license_number: required"),
        ({"city": ""}, "city: required"),
        ({"industry": "plumbing"}, "industry"),
        ({"state": "NY"}, "state"),
        ({"subscription_tier": "gold"}, "subscription_tier"),
        ({"verification_status": "maybe"}, "verification_status"),
        ({"rating": "7.5"}, "rating"),
        ({"rating": "0.5"}, "rating"),
        ({"rating": "nan"}, "rating"),
        ({"rating": "great"}, "rating"),
        ({"review_count": "-1"}, "review_count"),
        ({"review_count": "1.5"}, "review_count"),
        ({"is_featured": "maybe"}, "is_featured"),
        ({"created_at": "yesterday"}, "created_at"),
        ({"updated_at": "2024-13-40"}, "updated_at"),
        ({"company": ["a", "list"]}, "company"),
        ({"company": "x" * 10_001}, "company: 10,001 characters"),
        ({"last_name": "O\ud800Brien"}, "last_name: not valid Unicode"),
        # Numbers that do not fit: past SQLite's 64 bits, past any float, past Python's digit limit.
        ({"review_count": 2**63}, "review_count: 9223372036854775808 is more than 9,223,372,036,854,775,807"),
        ({"review_count": "9223372036854775808"}, "review_count: '9223372036854775808' is more than"),
        ({"review_count": 1e19}, "review_count: 1e\\+19 is more than"),
        ({"review_count": "9" * 5000}, "review_count: '99999999999.* is not a whole number"),
        ({"rating": 10**400}, "rating: 1000000000.*\\(401 characters\\) is outside 1.0 to 5.0"),
        ({"rating": "1e309"}, "rating: '1e309' is outside"),
        ({"rating": float("inf")}, "rating: inf is outside"),
        ({"rating": b"4.5"}, "rating: b'4.5' is not a number"),
        ({"phone": 10**30}, None),
        # Numbers in ASCII digits only.
        ({"rating": "\uff14.5"}, "rating: '４.5' is not a number in ASCII digits"),
        ({"rating": "\u0663"}, "rating: '٣' is not a number in ASCII digits"),
        ({"review_count": "1_000"}, "review_count: '1_000' is not a number in ASCII digits"),
        ({"review_count": "\u0967\u0968"}, "review_count: '१२' is not a number in ASCII digits"),
        ({"review_count": True}, "review_count: True is not a whole number"),
        # A reader's unreadable record says why.
        ({"first_name": None, UNREADABLE: "record: JSON nested too deeply to read (line 3)"}, "record: JSON nested"),
    ],
)
def test_bad_rows_are_rejected_with_the_column_named(change: dict[str, object], reason: str | None) -> None:
    if reason is None:  # fits after all: a long number is fine as text
        clean_record({**GOOD, **change}, NOW)
        return
    with pytest.raises(RecordRejected, match=f"^{reason}"):
        clean_record({**GOOD, **change}, NOW)


def test_a_long_value_is_shown_short_in_its_reason() -> None:
    with pytest.raises(RecordRejected) as rejected:
        clean_record({**GOOD, "state": "N" * 5000}, NOW)
    assert len(str(rejected.value)) < 120 and "(5,002 characters)" in str(rejected.value)


def test_json_typed_values_are_accepted() -> None:
    record = clean_record({**GOOD, "rating": 5, "review_count": 3.0, "is_featured": False}, NOW)
    assert record[RECORD_COLUMNS.index("rating")] == 5.0
    assert record[RECORD_COLUMNS.index("review_count")] == 3
    assert record[RECORD_COLUMNS.index("is_featured")] == 0


def test_unknown_columns_are_named_in_order() -> None:
    assert unknown_columns(["email", "shoe_size", "id", "import_id", "favourite"]) == [
        "shoe_size",
        "favourite",
    ]


def test_schema_is_idempotent_and_enforces_the_table_rules() -> None:
    conn = sqlite3.connect(":memory:")
    for _ in range(2):
        for statement in SCHEMA_STATEMENTS:
            conn.execute(statement)
    columns = [row[1] for row in conn.execute("PRAGMA table_info(professionals)")]
    assert columns[0] == "id" and set(RECORD_COLUMNS) <= set(columns)
    indexed = {row[1] for row in conn.execute("PRAGMA index_list(professionals)")}
    assert {"idx_professionals_industry", "idx_professionals_state", "idx_professionals_city"} <= indexed
    values = clean_record(GOOD, NOW)
    insert = f"INSERT INTO professionals ({', '.join(RECORD_COLUMNS)}) VALUES ({', '.join('?' * len(values))})"
    conn.execute(insert, values)
    with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
        conn.execute(insert, values)
    bad_rating = list(values)
    bad_rating[RECORD_COLUMNS.index("license_number")] = "other"
    bad_rating[RECORD_COLUMNS.index("rating")] = 6.0
    with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
        conn.execute(insert, bad_rating)


def test_each_allowed_word_has_its_one_list_and_its_sql() -> None:
    """The Literal types and the tuples beside them are one list; every conflict rule has its SQL."""
    assert get_args(OnConflict) == ON_CONFLICT and set(CONFLICT_TAILS) == set(ON_CONFLICT)
    assert get_args(ImportStatus) == IMPORT_STATUSES and "DEFAULT 'running'" in IMPORTS_DDL


def test_a_reason_shows_a_value_whole_up_to_60_characters_then_its_first_50() -> None:
    """The exact reasons, edges included: what the rejects file says is what an analyst reads."""
    with pytest.raises(RecordRejected) as whole:
        clean_record({**GOOD, "state": "n" * 58}, NOW)  # repr: 60 characters
    assert str(whole.value) == f"state: '{'N' * 58}' is not one of FL, TX, CA"
    with pytest.raises(RecordRejected) as cut:
        clean_record({**GOOD, "state": "n" * 59}, NOW)  # repr: 61 characters
    assert str(cut.value) == f"state: '{'N' * 49}... (61 characters) is not one of FL, TX, CA"


def test_numbers_too_long_for_python_to_write_are_rejected_in_words() -> None:
    too_long = 10**5000  # more digits than Python turns into text
    with pytest.raises(RecordRejected) as rating:
        clean_record({**GOOD, "rating": too_long}, NOW)
    assert str(rating.value) == "rating: a number too long to show is outside 1.0 to 5.0"
    with pytest.raises(RecordRejected) as phone:
        clean_record({**GOOD, "phone": too_long}, NOW)
    assert str(phone.value) == "phone: a number too long to be text"
    record = clean_record({**GOOD, "phone": 10**30, "company": 2.5}, NOW)
    assert record[RECORD_COLUMNS.index("phone")] == "1" + "0" * 30
    assert record[RECORD_COLUMNS.index("company")] == "2.5"


@pytest.mark.parametrize(
    ("value", "flag"),
    [(None, 0), (False, 0), (0, 0), (0.0, 0), (True, 1), (1, 1), (1.0, 1), (" Yes ", 1), ("T", 1), ("", 0), ("n", 0)],
)
def test_is_featured_reads_json_numbers_and_words(value: object, flag: int) -> None:
    assert clean_record({**GOOD, "is_featured": value}, NOW)[RECORD_COLUMNS.index("is_featured")] == flag


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"email": "a b@c.com"}, "email: 'a b@c.com' is not a valid address"),
        ({"email": None}, "email: required"),
        ({"industry": None}, "industry: required"),
        ({"industry": "Plumbing"}, "industry: 'plumbing' is not one of " + ", ".join(INDUSTRIES)),
        ({"subscription_tier": "Gold"}, "subscription_tier: 'gold' is not one of free, basic, premium, enterprise"),
        ({"rating": "great"}, "rating: 'great' is not a number"),
        ({"rating": [4]}, "rating: [4] is not a number"),
        ({"rating": True}, "rating: True is not a number"),
        ({"rating": "0.99"}, "rating: '0.99' is outside 1.0 to 5.0"),
        ({"rating": 5.01}, "rating: 5.01 is outside 1.0 to 5.0"),
        ({"rating": "4_5"}, "rating: '4_5' is not a number in ASCII digits"),
        ({"review_count": "-1"}, "review_count: '-1' is not a whole number >= 0"),
        ({"review_count": 2.5}, "review_count: 2.5 is not a whole number >= 0"),
        ({"review_count": "ten"}, "review_count: 'ten' is not a whole number >= 0"),
        ({"is_featured": "maybe"}, "is_featured: 'maybe' is not 0/1 or true/false"),
        ({"is_featured": 2}, "is_featured: 2 is not 0/1 or true/false"),
        ({"created_at": "yesterday"}, "created_at: 'yesterday' is not an ISO-8601 timestamp"),
        ({"phone": {"a": 1}}, "phone: expected text, got dict"),
        ({"phone": False}, "phone: expected text, got bool"),
        ({"city": "x" * 10_001}, "city: 10,001 characters, more than 10,000"),
        ({"city": "Mi\udc80mi"}, "city: not valid Unicode text"),
    ],
)
def test_each_reason_says_the_column_the_value_and_the_rule(change: dict[str, object], reason: str) -> None:
    with pytest.raises(RecordRejected) as rejected:
        clean_record({**GOOD, **change}, NOW)
    assert str(rejected.value) == reason


@pytest.mark.parametrize(
    ("change", "column", "value"),
    [
        ({"rating": "1.0"}, "rating", 1.0),
        ({"rating": "5"}, "rating", 5.0),
        ({"rating": ""}, "rating", None),
        ({"rating": None}, "rating", None),
        ({"review_count": ""}, "review_count", 0),
        ({"review_count": None}, "review_count", 0),
        ({"review_count": "0"}, "review_count", 0),
        ({"review_count": 2**63 - 1}, "review_count", 2**63 - 1),
        ({"review_count": str(2**63 - 1)}, "review_count", 2**63 - 1),
        ({"city": "x" * 10_000}, "city", "x" * 10_000),
        ({"city": " Miami Beach "}, "city", "Miami Beach"),
        ({"phone": 3055550101}, "phone", "3055550101"),
        ({"updated_at": "2025-01-02T03:04:05+00:00"}, "updated_at", "2025-01-02T03:04:05+00:00"),
        ({"state": " tx "}, "state", "TX"),
        ({"verification_status": None}, "verification_status", "pending"),
    ],
)
def test_values_at_the_edges_of_each_rule_are_kept(change: dict[str, object], column: str, value: object) -> None:
    record = dict(zip(RECORD_COLUMNS, clean_record({**GOOD, **change}, NOW), strict=True))
    assert record[column] == value and type(record[column]) is type(value)
