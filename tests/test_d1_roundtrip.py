"""Every value the D1 target writes as an SQL literal comes back exactly, through the real engine.

Hypothesis draws rows of text (quotes, backslashes, newlines, NULs, any non-ASCII, very long),
64-bit integers and floats (subnormal to huge), sends them through `execute` (packed multi-row
INSERTs with literals, binding only what no literal carries exactly), and reads them back with their
SQLite types. A local SQLite table filled with bound parameters is the reference: what it stores is
what D1 must store.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from estateflow_nb.targets import InsertRows, Sql
from estateflow_nb.targets.d1 import D1Target, sql_literal

AWKWARD = [
    "'",
    "''",
    "\\",
    "\\'",
    "\n",
    "\r\n",
    "\r",
    "\x00",
    "?",
    ";",
    "--",
    "/*",
    "*/",
    '"',
    "`",
    "[",
    "😀",
    "\u2028",
    "\ufeff",
    "é",
]

texts = st.one_of(
    st.text(max_size=40),
    st.lists(st.sampled_from(AWKWARD), max_size=12).map("".join),
    st.builds(
        lambda piece, n: piece * n, st.sampled_from(["x", "é", "漢", "😀", "'", "\x00a"]), st.integers(20_000, 60_000)
    ),
)
integers = st.integers(min_value=-(2**63), max_value=2**63 - 1)
# Infinities are left out: D1 answers in JSON, which has no Infinity (it comes back as null).
floats = st.floats(allow_nan=False, allow_infinity=False)
anything = st.one_of(st.none(), texts, integers, floats)
rows = st.lists(
    st.tuples(texts, st.one_of(st.none(), texts), st.one_of(st.none(), floats), integers, anything), max_size=40
)

COLUMNS = ["id", "a", "b", "r", "i", "u"]
# Integers as text (JSON numbers stop at 2^53); reals as D1 hands them back, the shortest JSON number
# for the same double; each with its SQLite type.
READ_BACK = (
    "SELECT id, a, b, typeof(r) AS tr, r, CAST(i AS TEXT) AS i, typeof(u) AS tu,"
    " CASE typeof(u) WHEN 'integer' THEN CAST(u AS TEXT) ELSE u END AS u FROM rt ORDER BY id"
)


def reference(table: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE rt (id INTEGER PRIMARY KEY, a TEXT NOT NULL, b TEXT, r REAL, i INTEGER, u)")
    db.executemany("INSERT INTO rt VALUES (?, ?, ?, ?, ?, ?)", table)
    return [tuple(row) for row in db.execute(READ_BACK)]


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(drawn=rows)
def test_values_round_trip_exactly_through_d1(d1_target: D1Target, drawn: list[tuple[Any, ...]]) -> None:
    table = [(n, *row) for n, row in enumerate(drawn)]
    d1_target.execute(
        [
            Sql(
                "CREATE TABLE IF NOT EXISTS rt (id INTEGER PRIMARY KEY, a TEXT NOT NULL, b TEXT, r REAL, i INTEGER, u)"
            ),
            Sql("DELETE FROM rt"),
            InsertRows("rt", COLUMNS, table),
        ]
    )
    back = [tuple(row.values()) for row in d1_target.query(READ_BACK)]
    expected = reference(table)
    # A real that happens to be whole comes back as a JSON number without a point (D1 answers in JSON,
    # as JavaScript prints doubles); its type column says it is a real, and it is the same double.
    assert [_reals_as_floats(row) for row in back] == expected


def _reals_as_floats(row: tuple[Any, ...]) -> tuple[Any, ...]:
    values = list(row)
    for kind, at in ((3, 4), (6, 7)):
        if values[kind] == "real":
            values[at] = float(values[at])
    return tuple(values)


EXTREME_FLOATS = [
    5e-324,  # the smallest subnormal
    2.225073858507201e-308,  # the largest subnormal
    2.2250738585072014e-308,  # the smallest normal
    1.7976931348623157e308,  # the largest double
    -1e-300,
    1e-15 / 3,
    1e15 * 3 + 0.5,
    2.0**53 + 2,
    123456789.123e200,
    -9.999999999999999e-16,
]


def test_floats_far_from_one_are_written_as_their_exact_binary_value(d1_target: D1Target) -> None:
    """Outside the range SQLite's decimal parser reads exactly, a float travels as mantissa x 2^k, with
    no parameter bound (the REST API binds strings only) and nothing lost, in SQLite and in D1 alike."""
    rows = [(i, value) for i, value in enumerate(EXTREME_FLOATS)]
    d1_target.execute([Sql("CREATE TABLE f (id INTEGER PRIMARY KEY, r REAL, u)"), InsertRows("f", ["id", "r"], rows)])
    d1_target.execute([Sql("UPDATE f SET u = r")])
    back = d1_target.query("SELECT id, typeof(r) AS t, r, u FROM f ORDER BY id")
    assert [(r["id"], r["t"], float(r["r"]), float(r["u"])) for r in back] == [
        (i, "real", value, value) for i, value in rows
    ]
    local = sqlite3.connect(":memory:")
    for _, value in rows:
        assert local.execute(f"SELECT {sql_literal(value)}").fetchone()[0] == value
