"""The CSV path's validation by column position (TextRecords) decides every record exactly as
clean_record does: the same clean values, or a rejection with the same reason."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from estateflow_nb import _text_records, generate_records
from estateflow_nb._text_records import TextRecords
from estateflow_nb.schema import MAX_INTEGER, MAX_TEXT_LENGTH, RECORD_COLUMNS, RecordRejected, clean_record

NOW = "2026-12-07T10:00:00Z"
# Values that sit on an edge of some rule, tried in every column.
EDGES = [
    "",
    " ",
    "\t",
    "x",
    " FL ",
    "fl",
    "Tx",
    "REAL_ESTATE",
    " legal",
    "Premium",
    "VERIFIED ",
    "1",
    "0",
    " 1 ",
    "true",
    "No",
    "2",
    "4.5",
    " 4.5 ",
    "5.0",
    "5.01",
    "0.99",
    "nan",
    "inf",
    "1e0",
    "1_0",
    "1.2_5",
    "٣",
    "５",
    "-1",
    "12",
    str(2**63),
    str(2**63 - 1),
    "9" * 5000,
    "a@b.co",
    " a@b.co ",
    "a@@b.co",
    "a b@c.de",
    # The address check's own edges: what passes it without the regex, and what only nearly does.
    "a@b.c",
    "a@.co",
    "a@b.",
    "@b.co",
    "a@b..",
    "a@b.c@d",
    "a\x1f@b.co",
    "a\x00@b.co",
    "\u00e9@b.co",
    "a@b\u00a0.co",
    # Numbers read from a table, and the spellings beside them that are read the long way.
    "1.0",
    "0.9",
    "5.1",
    "4",
    "04.5",
    "4.50",
    "007",
    "999",
    "1000",
    " 12",
    "2026-01-02",
    "2026-01-02T03:04:05",
    " 2026-01-02T03:04:05+00:00 ",
    "2026-13-01",
    "ﬀ",
    "\u212a",
    "x" * (MAX_TEXT_LENGTH + 1),
]


def outcome(decide: Any) -> tuple[str, Any]:
    try:
        return ("clean", decide())
    except RecordRejected as why:
        return ("rejected", str(why))


def agree(header: list[str], fields: list[str]) -> None:
    records = TextRecords(header, NOW)
    raw = dict(zip(header, fields))  # noqa: B905 (a short row, as the reader gives it)
    assert outcome(lambda: records.clean(fields)) == outcome(lambda: clean_record(raw, NOW))


def test_generated_records_and_every_edge_in_every_column_agree() -> None:
    header = list(RECORD_COLUMNS)
    pick = random.Random(7)
    for record in generate_records(300, seed=3, invalid_share=0.2):
        fields = [str(record.get(c, "")) for c in header]
        agree(header, fields)
        column = pick.randrange(len(header))
        for edge in EDGES:
            agree(header, [*fields[:column], edge, *fields[column + 1 :]])


def test_a_record_longer_than_any_field_may_be_agrees() -> None:
    """Its fields within the limit, all of them together past it: decided field by field, with the
    import's time for a missing creation time."""
    record = {c: str(v) for c, v in next(generate_records(1, seed=6)).items()}
    record.update(company="c" * (MAX_TEXT_LENGTH - 5), first_name="f" * 20, created_at="")
    agree(list(RECORD_COLUMNS), [record[c] for c in RECORD_COLUMNS])


# Well-formed values in the spellings a person writes them, and numbers on the edges of their ranges.
SPELLINGS = [
    {"industry": "LEGAL", "state": "fl", "subscription_tier": "Premium", "verification_status": "VERIFIED"},
    {"subscription_tier": "", "verification_status": "", "is_featured": "No", "rating": "", "review_count": ""},
    {"is_featured": "TRUE", "rating": "1.00", "review_count": "00"},
    {"rating": "5.00", "review_count": str(MAX_INTEGER), "email": "\u00e9mile@b.co"},
    {"rating": " 4.5", "review_count": "1234", "email": "a\x00b@c.de"},
]


@pytest.mark.parametrize("header", [list(RECORD_COLUMNS), list(reversed(RECORD_COLUMNS))])
def test_a_well_formed_record_never_goes_the_long_way(header: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """clean_record is the long way, for what the checks by position leave to it: a well-formed record,
    in any column order and any spelling that is accepted, never goes there (the speed of a CSV import
    stands on it), and comes out as clean_record would make it."""
    long_way: list[dict[str, str]] = []

    def counted(raw: dict[str, str], now: str) -> tuple[object, ...]:
        long_way.append(raw)
        return clean_record(raw, now)

    monkeypatch.setattr(_text_records, "clean_record", counted)
    records = TextRecords(header, NOW)
    for record in generate_records(50, seed=8):
        for spelling in [{}, *SPELLINGS]:
            fields = {c: str(v) for c, v in record.items()} | spelling
            row = records.clean([fields[c] for c in header])
            assert not long_way, spelling
            assert row == clean_record(fields, NOW)


def test_a_short_row_and_another_column_order_agree() -> None:
    record = next(generate_records(1, seed=4))
    header = list(reversed(RECORD_COLUMNS))
    fields = [str(record[c]) for c in header]
    agree(header, fields)
    agree(header, fields[:-3])
    agree([c for c in header if c != "phone"], [str(record[c]) for c in header if c != "phone"])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(EDGES), st.text(max_size=12)), min_size=16, max_size=16))
def test_any_text_in_any_column_agrees(values: list[str]) -> None:
    record = next(generate_records(1, seed=5))
    fields = [str(record[c]) for c in RECORD_COLUMNS]
    agree(list(RECORD_COLUMNS), [v if i % 3 else fields[i] for i, v in enumerate(values)])
    agree(list(RECORD_COLUMNS), values)
