"""The D1 target: its pieces on their own, then the real import, ladder, verify, status and backups
through the local D1 engine (Cloudflare's workerd and D1, see d1_fixtures.py)."""

from __future__ import annotations

import enum
import json
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from estateflow_nb import (
    AuthError,
    ConflictError,
    EstateFlowError,
    QuotaExceededError,
    SqlError,
    TargetError,
    TooLargeError,
    TransientError,
    connect,
    import_file,
    read_rows,
    run_ladder,
    status,
    verify,
    write_records,
)
from estateflow_nb.quota import QuotaGuard, plan_import
from estateflow_nb.schema import MAX_TEXT_LENGTH, STORED_COLUMNS
from estateflow_nb.targets import CHANGES, InsertRows, Sql
from estateflow_nb.targets.d1 import (
    DUMP_PAGE_ROWS,
    MAX_PARAMS,
    MAX_SQL_BYTES,
    MAX_VALUES_TERMS,
    D1Target,
    RatePacer,
    classify,
    pack_insert,
    parse_url,
    render,
    sql_literal,
)
from estateflow_nb.targets.d1 import _sql as d1_sql
from estateflow_nb.targets.d1._sql import _row_literal, compile_batch

from .conftest import count, invoke, write_csv
from .d1_fixtures import LocalD1Engine
from .test_importer import table_rows

# --- pieces that need no engine ----------------------------------------------------------------------


def test_urls_take_missing_parts_from_the_environment() -> None:
    env = {"CLOUDFLARE_ACCOUNT_ID": "acc", "D1_DATABASE_ID": "db-1"}
    assert parse_url("d1://a1/d-2", env) == ("a1", "d-2")
    assert parse_url("d1://", env) == ("acc", "db-1")
    assert parse_url("d1://a1", env) == ("a1", "db-1")
    assert parse_url("d1:///d-2", env) == ("acc", "d-2")
    for bad in ("d1://", "d1://a/b/c", "d1://a b/c"):
        with pytest.raises(TargetError, match="D1 URL"):
            parse_url(bad, {})


def test_a_missing_or_mangled_token_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLOUDFLARE_API_TOKEN", raising=False)
    with pytest.raises(AuthError, match="CLOUDFLARE_API_TOKEN is not set"):
        connect("d1://acc/db", create=True)
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", "abc def-secret")
    with pytest.raises(AuthError, match="copy the token again") as caught:
        connect("d1://acc/db", create=True)
    assert "secret" not in str(caught.value)


def test_parameters_become_exact_literals() -> None:
    text, bound = render(
        "UPDATE t SET a = ?, b = ?, c = '?', d = ? WHERE e = ? -- ?\n AND f = ?",
        ("it's", None, 2.5, CHANGES, True),
    )
    assert text == "UPDATE t SET a = 'it''s', b = NULL, c = '?', d = 2.5 WHERE e = changes() -- ?\n AND f = 1"
    assert bound == []
    assert sql_literal("a\x00b") == "CAST(X'610062' AS TEXT)"
    assert sql_literal(float("nan")) == "NULL" and sql_literal(float("inf")) == "9e999"
    assert sql_literal(3.0) == "3.0"
    # Outside the range SQLite's decimal parser is exact in, a float is its exact binary value.
    assert render("SELECT ?", (1e-300,)) == (f"SELECT {sql_literal(1e-300)}", [])
    with pytest.raises(SqlError, match="placeholders"):
        render("SELECT ?, ?", (1,))
    with pytest.raises(SqlError, match="numbered"):
        render("SELECT ?1", (1,))


def test_long_values_are_bound_when_no_statement_could_carry_them() -> None:
    """Only text is ever bound (the REST API binds strings), and only what the statement cannot carry."""
    text, bound = render("SELECT length(?) WHERE ? = ? AND ? > 0", ("x" * 150_000, "y", CHANGES, 7))
    assert text == "SELECT length(?) WHERE 'y' = changes() AND 7 > 0" and bound == ["x" * 150_000]
    text, bound = render("SELECT ?, ?, ?", ("a" * 60_000, "b" * 50_000, 2.5))
    assert text == "SELECT ?, '" + "b" * 50_000 + "', 2.5" and bound == ["a" * 60_000]
    with pytest.raises(SqlError, match="binds strings only"):
        render("SELECT ?", (b"\x01" * 60_000,))


class Level(enum.IntEnum):
    HIGH = 3


class Tier(enum.StrEnum):
    FREE = "free"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.0, 0.0),
        (1e-15, 1e-15),
        (1e15, 1e15),
        (9.999999999999999e-16, 9.999999999999999e-16),
        (1.0000000000000002e15, 1.0000000000000002e15),
        (-2.5e-300, -2.5e-300),
        (5e-324, 5e-324),
        (1.7976931348623157e308, 1.7976931348623157e308),
        (2.0**70, 2.0**70),
        (float((2**53 - 1) * 2), float((2**53 - 1) * 2)),
        (-(2.0**-80) * 3, -(2.0**-80) * 3),
        (2**63 - 1, 2**63 - 1),
        (-(2**63), -(2**63)),
        (True, 1),
        (False, 0),
        (None, None),
        (b"\x00\xff", b"\x00\xff"),
        (bytearray(b"ab"), b"ab"),
        (memoryview(b"cd"), b"cd"),
        ("it's", "it's"),
        ("a\x00b", "a\x00b"),
        ("é", "é"),
        (Level.HIGH, 3),
        (Tier.FREE, "free"),
    ],
)
def test_every_literal_reads_back_as_the_value_in_sqlite(value: Any, expected: Any) -> None:
    """What D1 reads is what SQLite reads: run each literal in SQLite here (exact value and type)."""
    got = sqlite3.connect(":memory:").execute(f"SELECT {sql_literal(value)}").fetchone()[0]
    assert got == expected and type(got) is type(expected)


def test_literals_are_written_plainly_inside_the_exact_range_and_exactly_outside_it() -> None:
    assert [sql_literal(v) for v in (1e-15, 1e15, 0.0, -3.25)] == ["1e-15", "1000000000000000.0", "0.0", "-3.25"]
    assert sql_literal(1e16) == "(CAST(152587890625 AS REAL) * 65536)"  # 152587890625 x 2^16
    assert sql_literal(2.0**70) == "(CAST(1 AS REAL) * 4611686018427387904 * 256)"
    assert sql_literal(2.0**-70) == "(CAST(1 AS REAL) / 4611686018427387904 / 256)"
    assert sql_literal(3 * 2.0**124) == "(CAST(3 AS REAL) * 4611686018427387904 * 4611686018427387904)"
    assert sql_literal(float((2**53 - 1) * 2)) == "(CAST(9007199254740991 AS REAL) * 2)"
    assert sql_literal(1e15 + 0.5) == "(CAST(2000000000000001 AS REAL) / 2)"  # just past the plain range
    assert sql_literal(float("-inf")) == "-9e999" and sql_literal("a'b") == "'a''b'"
    for value in (2**63, -(2**63) - 1):
        with pytest.raises(SqlError, match=f"^integer {value} does not fit in SQLite's 64 bits$"):
            sql_literal(value)
    with pytest.raises(SqlError, match=r"^cannot send a value of type object to D1$"):
        sql_literal(object())


ROWS = [
    ("Ada", 1, 2.5, None, True),
    ("Bo", -(2**63), 1e15, None, False),
    ("Cy", 2**63 - 1, 1e-15, None, True),
    ("Di", 0, 0.0, None, False),
]


def test_the_fast_path_writes_a_row_as_the_general_path_does_or_leaves_it(monkeypatch: pytest.MonkeyPatch) -> None:
    # Templates are kept per sequence of types for the process: start without any, so that these rows
    # make their own (a template made earlier, by other code, would hide a mistake in making one).
    monkeypatch.setattr(d1_sql, "_TEMPLATES", {})
    for row in [*ROWS, ("only text",), (7,), (None, None)]:
        assert _row_literal(row) == "(" + ", ".join(sql_literal(v) for v in row) + ")"
    for odd in (
        "it's",
        "nul\x00",
        1e16,
        1e-16,
        -1e16,
        1e15 + 0.5,
        float("nan"),
        float("inf"),
        2**63,
        -(2**63) - 1,
        b"x",
    ):
        row = ("Ed", odd) if not isinstance(odd, str) else (odd, 1)
        assert _row_literal(row) is None, odd


def test_render_binds_texts_only_past_100000_bytes_longest_first_and_at_most_100() -> None:
    assert render("SELECT ?", ("a" * 99_991,)) == ("SELECT '" + "a" * 99_991 + "'", [])  # 100,000 bytes
    assert render("SELECT ?", ("a" * 99_992,)) == ("SELECT ?", ["a" * 99_992])
    assert render("SELECT ?", ("é" * 49_995,)) == ("SELECT '" + "é" * 49_995 + "'", [])  # bytes, not characters
    assert render("SELECT ?", ("é" * 49_996,)) == ("SELECT ?", ["é" * 49_996])
    # Binding the longest is enough: the other stays a literal in a statement of exactly 100,000 bytes.
    b = "b" * 99_988
    assert render("SELECT ?, ?", ("a" * 150_000, b)) == ("SELECT ?, '" + b + "'", ["a" * 150_000])
    # What is left after binding every text must fit too: 100,000 bytes do, 100,001 do not.
    for comment, fits in ((99_988, True), (99_989, False)):
        sql = "SELECT ? -- " + "c" * comment
        if fits:
            assert render(sql, ("a" * 200_000,)) == (sql, ["a" * 200_000])
            continue
        with pytest.raises(SqlError) as refused:
            render(sql, ("a" * 200_000,))
        assert str(refused.value) == (
            "a statement of 100,001 bytes even with its texts bound: D1 takes 100,000 bytes a statement,"
            " and its REST API binds strings only"
        )
    hundred = ", ".join("?" * 100)
    assert len(render(f"SELECT {hundred}", ["t" * 100_000] * 100)[1]) == 100
    with pytest.raises(SqlError, match=r"^101 bound parameters in one statement; D1 allows 100$"):
        render(f"SELECT {hundred}, ?", ["t" * 100_000] * 101)
    long_sql = "SELECT ?, ? FROM professionals WHERE " + "x = 1 AND " * 10
    with pytest.raises(SqlError) as miscounted:
        render(long_sql, (1,))
    assert str(miscounted.value) == f"2 placeholders but 1 parameters in: {long_sql[:80]}"


def test_packing_fills_each_statement_exactly_to_its_size() -> None:
    long = ("x" * 60,)  # too long for any statement here: it goes alone, and packing starts afresh after it
    rows = [(9,), long, *((i,) for i in range(10, 40))]  # each "(NN)": 4 bytes
    for tail in ("", "ON CONFLICT DO NOTHING"):
        head, end = "INSERT INTO t (a) VALUES ", f" {tail}" if tail else ""
        for room in range(4, 30):
            statements = [
                sql for sql, bound in pack_insert(InsertRows("t", ["a"], rows, tail=tail), len(head) + len(end) + room)
            ]
            values = [sql.removeprefix(head).removesuffix(end) for sql in statements]
            assert all(sql.startswith(head) and sql.endswith(end or ")") for sql in statements)
            assert ",".join(values) == ",".join(f"({sql_literal(v)})" for (v,) in rows)  # every row, in order, once
            packed = [v for v in values if "x" not in v]
            assert all(len(v) <= room for v in packed)  # each fits
            assert all(len(v) + 5 > room for v in packed[1:-1])  # and is as full as it can be


def test_packing_keeps_to_the_values_terms_and_parameters_d1_takes() -> None:
    six = [(1, 2, 3, 4, 5, 6)] * 6_000
    sizes = [sql.count("),(") + 1 for sql, _ in pack_insert(InsertRows("t", list("abcdef"), six))]
    assert sizes == [2_571, 2_571, 858]  # 18,000 values terms / 7 a row
    hundred = [f"c{i}" for i in range(100)]
    assert len(list(pack_insert(InsertRows("t", hundred, [tuple(range(100))])))) == 1
    with pytest.raises(SqlError, match=r"^101 columns; D1 binds at most 100 parameters$"):
        list(pack_insert(InsertRows("t", [*hundred, "c100"], [tuple(range(101))])))


def test_a_batch_compiles_to_items_and_each_statement_owns_its_own() -> None:
    count = Sql("UPDATE c SET n = n + ?", (CHANGES,))
    items, owners = compile_batch(
        [
            Sql("SELECT ?", (CHANGES,)),  # nothing before it: no changes
            Sql("DELETE FROM t WHERE a = ?", (1,)),
            count,
            InsertRows("t", ["a"], [(1,), (2,)], then=count),
            InsertRows("t", ["a"], [], then=count),  # no rows: its `then` still runs, counting none
            InsertRows("t", ["a"], [(3,)]),
            count,
            InsertRows("t", ["a", "b"], [(4, "x" * 60_000), (5, "y" * 60_000), (6, "z" * 150_000)], then=count),
        ]
    )
    assert items == [
        {"sql": "SELECT 0"},
        {"sql": "DELETE FROM t WHERE a = 1"},
        {"sql": "UPDATE c SET n = n + changes()"},
        {"sql": "INSERT INTO t (a) VALUES (1),(2)"},
        {"sql": "UPDATE c SET n = n + changes()"},
        {"sql": "UPDATE c SET n = n + 0"},
        {"sql": "INSERT INTO t (a) VALUES (3)"},
        {"sql": "UPDATE c SET n = n + changes()"},
        {"sql": "INSERT INTO t (a, b) VALUES (4, '" + "x" * 60_000 + "')"},
        {"sql": "UPDATE c SET n = n + changes()"},
        {"sql": "INSERT INTO t (a, b) VALUES (5, '" + "y" * 60_000 + "')"},
        {"sql": "UPDATE c SET n = n + changes()"},
        {"sql": "INSERT INTO t (a, b) VALUES (6, ?)", "params": ["z" * 150_000]},
        {"sql": "UPDATE c SET n = n + changes()"},
    ]
    assert owners == [[0], [1], [2], [3], [], [6], [7], [8, 10, 12]]
    with pytest.raises(SqlError) as refused:
        compile_batch([InsertRows("t", ["b"], [("x" * 60_000,), ("y" * 60_000,)]), count])
    assert str(refused.value) == (
        "CHANGES after an InsertRows that D1 packs into several statements is not supported: count it with"
        " InsertRows.then"
    )
    with pytest.raises(SqlError, match=r"^CHANGES after an InsertRows"):
        compile_batch([InsertRows("t", ["b"], [("x",)], then=Sql("SELECT 1")), count])


def _insert(rows: list[tuple[Any, ...]]) -> InsertRows:
    return InsertRows("t", ["id", "a", "b", "c"], rows, tail="ON CONFLICT(id) DO NOTHING")


def test_packing_keeps_every_statement_within_d1_limits() -> None:
    rows = [(i, "é" * (i * 997 % 30_000), "x" * (120_000 if i == 7 else 10), i / 7) for i in range(60)]
    rows.append((60, "small", None, 1e-200))
    rows += [(i, None, None, None) for i in range(61, 10_000)]
    statements = list(pack_insert(_insert(rows)))
    assert all(len(sql.encode()) <= MAX_SQL_BYTES and len(bound) <= MAX_PARAMS for sql, bound in statements)
    assert all(sql.count("),(") + 1 <= MAX_VALUES_TERMS // 5 for sql, _ in statements)
    # Row 7 is too long for any statement: it goes alone, with just its long text bound. Row 60's float,
    # outside the decimal parser's exact range, is written as its exact binary value, not bound.
    assert [bound for _, bound in statements if bound] == [["x" * 120_000]]
    assert all(isinstance(value, str) for _, bound in statements for value in bound)
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT, b TEXT, c REAL)")
    for sql, bound in statements:
        db.execute(sql, bound)
    assert db.execute("SELECT * FROM t ORDER BY id").fetchall() == rows


def test_the_pacer_keeps_to_its_window_without_waiting_in_the_test() -> None:
    now = [0.0]
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds

    pacer = RatePacer(3, 10.0, clock=lambda: now[0], sleep=sleep)
    for _ in range(3):
        pacer.acquire()
    assert waits == []
    now[0] = 4.0
    pacer.acquire()  # the 4th in 10 s: waits until the 1st leaves the window
    assert waits == [6.0] and now[0] == 10.0
    now[0] = 30.0
    pacer.acquire()
    assert waits == [6.0]


def _answer(status: int, message: str, code: int = 7500, **headers: str) -> tuple[int, Any, httpx.Headers]:
    body = {"success": False, "errors": [{"code": code, "message": message}], "messages": [], "result": None}
    return status, body, httpx.Headers(headers)


@pytest.mark.parametrize(
    ("answer", "kind", "retry_after"),
    [
        (
            _answer(429, "Please wait and consider throttling your request speed", 971, **{"Retry-After": "7"}),
            TransientError,
            7.0,
        ),
        (_answer(502, "Bad gateway", 1000), TransientError, None),
        (_answer(500, "D1 DB is overloaded. Requests queued for too long."), TransientError, None),
        (_answer(400, "Network connection lost."), TransientError, None),
        (_answer(401, "Authentication error", 10000), AuthError, None),
        (_answer(403, "Authentication error", 10000), AuthError, None),
        (_answer(400, "Invalid request headers", 6003), AuthError, None),
        (_answer(400, 'near "INSRT": syntax error at offset 0: SQLITE_ERROR'), SqlError, None),
        (
            _answer(400, "UNIQUE constraint failed: professionals.license_number: SQLITE_CONSTRAINT"),
            ConflictError,
            None,
        ),
        (_answer(404, "The database x could not be found", 7404), TargetError, None),
        # Cloudflare's error table (debug-d1), not the status: errors whose fix is smaller work...
        (
            _answer(400, "D1_ERROR: D1 DB storage operation exceeded timeout which caused object to be reset."),
            TooLargeError,
            None,
        ),
        (
            _answer(500, "D1 DB storage operation exceeded timeout which caused object to be reset."),
            TooLargeError,
            None,
        ),
        (_answer(500, "D1 DB's isolate exceeded its memory limit and was reset."), TooLargeError, None),
        (_answer(400, "D1 DB exceeded its CPU time limit and was reset."), TooLargeError, None),
        ((413, None, httpx.Headers()), TooLargeError, None),
        # ...errors whose fix is to retry, even when they come as 400 with code 7500...
        (_answer(400, "D1 DB reset because its code was updated."), TransientError, None),
        (_answer(400, "Internal error in D1 DB storage caused object to be reset."), TransientError, None),
        (
            _answer(400, "Internal error while starting up D1 DB storage caused object to be reset."),
            TransientError,
            None,
        ),
        (_answer(400, "Cannot resolve D1 DB due to transient issue on remote node."), TransientError, None),
        (_answer(400, "Can't read from request stream because client disconnected."), TransientError, None),
        (_answer(400, "D1 DB is overloaded. Too many requests queued."), TransientError, None),
        # ...and code 7500 alone is not a SQL error: only what SQLite said is.
        (_answer(400, "Something D1 has not documented"), TargetError, None),
        (_answer(400, "no such table: nowhere: SQLITE_ERROR"), SqlError, None),
        (_answer(400, "D1_TYPE_ERROR: Type 'undefined' not supported for value 'undefined'"), SqlError, None),
        # The quota message wins over the status it comes with: it is not worth retrying.
        (
            _answer(
                429,
                "Your account has exceeded D1's free tier daily row write limit. Upgrade to a paid plan or"
                " wait until tomorrow (midnight UTC) to continue.",
            ),
            QuotaExceededError,
            None,
        ),
    ],
)
def test_answers_are_classified(answer: tuple[int, Any, httpx.Headers], kind: type, retry_after: float | None) -> None:
    error = classify(*answer)
    assert type(error) is kind
    if kind is TransientError:
        assert error.retry_after == retry_after
    if kind is QuotaExceededError:
        assert "row write limit is used up" in str(error) and "resets at 00:00 UTC" in str(error)


# --- against the local D1 engine ----------------------------------------------------------------------


def test_changes_counts_each_packed_piece_on_d1(d1_target: D1Target) -> None:
    d1_target.execute([Sql("CREATE TABLE t (a INTEGER UNIQUE)"), Sql("CREATE TABLE n (inserted INTEGER)")])
    d1_target.execute([Sql("INSERT INTO n VALUES (6)")])
    # Several packed pieces, each followed by its own count: the counter is the sum of the pieces.
    many = [(100 + i,) for i in range(30_000)] + [(100,)]
    result = d1_target.execute(
        [
            InsertRows(
                "t",
                ["a"],
                many,
                tail="ON CONFLICT(a) DO NOTHING",
                then=Sql("UPDATE n SET inserted = inserted + ?", (CHANGES,)),
            )
        ]
    )
    assert result.changes == [30_000] and d1_target.scalar("SELECT inserted FROM n") == 30_006
    with pytest.raises(SqlError, match=r"InsertRows\.then"):
        d1_target.execute(
            [
                InsertRows("t", ["a"], many, tail="ON CONFLICT(a) DO NOTHING"),
                Sql("UPDATE n SET inserted = ?", (CHANGES,)),
            ]
        )


def test_the_engine_enforces_d1_limits_that_packing_keeps_to(d1_target: D1Target) -> None:
    """The engine rejects the 101st bound parameter and the 100,001st byte; packed statements pass."""
    with pytest.raises(SqlError, match="too many SQL variables"):
        d1_target.api.request(
            "POST", "/query", {"sql": "SELECT " + ", ".join("?" * 101), "params": [str(i) for i in range(101)]}
        )
    with pytest.raises(SqlError, match=r"too long|TOOBIG"):
        d1_target.api.request("POST", "/query", {"sql": "SELECT '" + "x" * (MAX_SQL_BYTES - 8) + "'"})
    d1_target.api.request("POST", "/query", {"sql": "SELECT '" + "x" * (MAX_SQL_BYTES - 9) + "'"})
    d1_target.execute([Sql("CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT, b TEXT, c REAL)")])
    rows = [(i, "ü" * (i * 4_999 % 70_000), "x" * (150_000 if i % 9 == 0 else 1), i / 3) for i in range(40)]
    d1_target.execute([_insert(rows)])
    back = d1_target.query("SELECT id, a, b, c FROM t ORDER BY id")
    assert [tuple(r.values()) for r in back] == rows


def test_imports_count_exactly_what_d1_inserted(d1_target: D1Target, tmp_path: Path, make_csv: Any) -> None:
    source = make_csv(45, mutate={9: {"license_number": "DUP-1"}, 10: {"license_number": "DUP-1"}, 3: {"email": "x"}})
    first = import_file(d1_target, source, batch_size=10)
    assert (first.inserted, first.skipped, first.rejected, first.batches) == (43, 1, 1, 5)
    again = import_file(d1_target, source, batch_size=7)
    assert (again.inserted, again.skipped) == (0, 44)
    assert count(d1_target) == 43
    ledger = d1_target.query("SELECT inserted, skipped, rows_written FROM ef_imports ORDER BY started_at, rowid")
    assert [r["inserted"] for r in ledger] == [43, 0]
    # Six rows per record (the row, its license number and four indexes), plus the ledger's own.
    assert 43 * 6 < ledger[0]["rows_written"] < 43 * 6 + 40
    with connect(f"sqlite:///{tmp_path / 'same.db'}", create=True) as local:
        import_file(local, source, batch_size=10)
        assert table_rows(local) == table_rows(d1_target)


def test_a_dry_run_on_d1_predicts_the_import_and_writes_nothing(d1_target: D1Target, tmp_path: Path) -> None:
    import_file(d1_target, write_records(tmp_path / "earlier.csv", 300), batch_size=100)
    source = write_records(tmp_path / "next.csv", 12_000, invalid_share=0.01)  # 10,000 licenses in one lookup
    plan = import_file(d1_target, source, batch_size=10_000, dry_run=True)
    assert count(d1_target, "SELECT COUNT(*) FROM ef_imports") == 1 and count(d1_target) == 300
    real = import_file(d1_target, source, batch_size=10_000)
    assert (plan.inserted, plan.skipped, plan.rejected) == (real.inserted, real.skipped, real.rejected)
    assert plan.skipped > 250


AWKWARD = [
    "O'Brien",
    "''",
    "'; DROP TABLE professionals; --",
    "back\\slash \\' \\\\",
    'double "quotes"',
    "line\nbreak",
    "carriage\r\nreturn",
    "tab\there",
    "NUL\x00inside\x00twice",
    "Zoë Ålesund-Øster ß",
    "漢字かな交じり文",
    "emoji 😀👍🏽 family 👨‍👩‍👧",
    "right-to-left \u202e override",
    "line separator \u2028 paragraph \u2029",
    "zero width \u200b joiner \u200d bom \ufeff",
    "?, ?1, :name, $x, @y",
    "/* not a comment */ -- nor this",
    "percent % underscore _",
    # As long as a record's text may be (first_name adds two characters around it).
    "x" * (MAX_TEXT_LENGTH - 2),
    "é" * (MAX_TEXT_LENGTH - 2),
]


def awkward_records() -> list[dict[str, Any]]:
    from estateflow_nb import generate_records

    records = list(generate_records(len(AWKWARD) * 2, seed=9))
    for i, text in enumerate(AWKWARD):
        records[i].update(first_name=f"A{text}Z", company=text, city=f"C{text}C")
        records[len(AWKWARD) + i].update(last_name=f"L{text}", phone=text, email=f"a{i}@b.co")
    return records


def test_awkward_strings_round_trip_through_import_and_dump(d1_target: D1Target, tmp_path: Path) -> None:
    source = tmp_path / "awkward.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in awkward_records()), encoding="utf-8")
    result = import_file(d1_target, source, batch_size=25)
    assert result.inserted == len(AWKWARD) * 2 and result.rejected == 0
    columns = ", ".join(STORED_COLUMNS)
    d1_rows = [
        tuple(r.values()) for r in d1_target.query(f"SELECT {columns} FROM professionals ORDER BY license_number")
    ]
    with connect(f"sqlite:///{tmp_path / 'local.db'}", create=True) as local:
        import_file(local, source, batch_size=25)
        local_rows = [
            tuple(r.values()) for r in local.query(f"SELECT {columns} FROM professionals ORDER BY license_number")
        ]
    assert [r[:-2] for r in d1_rows] == [r[:-2] for r in local_rows]  # all but the import's own id and time
    # The dump of D1 loads into the sqlite3 shell and reads back through our own dump reader unchanged.
    dump = d1_target.dump_sql(tmp_path / "backup.sql")
    restored = tmp_path / "restored.db"
    loaded = subprocess.run(["sqlite3", str(restored)], input=dump.read_bytes(), capture_output=True)
    assert loaded.returncode == 0, loaded.stderr
    db = sqlite3.connect(restored)
    assert db.execute(f"SELECT {columns} FROM professionals ORDER BY license_number").fetchall() == d1_rows
    assert db.execute("SELECT COUNT(*) FROM ef_imports").fetchone() == (1,)
    names = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"idx_professionals_city", "idx_professionals_import_id"} <= names
    assert sorted(row["license_number"] for row in read_rows(dump)) == sorted(r[5] for r in d1_rows)


def test_a_ladder_verify_status_and_backup_on_d1(d1_target: D1Target, tmp_path: Path) -> None:
    files = [
        write_records(tmp_path / "test.sql", 10),
        write_records(tmp_path / "small.csv", 100, start=10),
        write_records(tmp_path / "medium.jsonl", 1_000, start=110),
    ]
    sent_before = d1_target.requests
    result = run_ladder(d1_target, files=files, benchmarks=False)
    assert result.stopped is None and [r["rung"] for r in result.rows()] == ["test", "small", "medium"]
    assert [r["records"] for r in result.rows()] == [10, 100, 1000]
    assert [r["verified"] for r in result.rows()] == [None, True, True]
    assert count(d1_target) == 1_110
    report = verify(d1_target, benchmarks=False)
    assert report.passed and report.checks[0].observed == 1_110
    shown = status(d1_target)
    assert shown.tables["professionals"] == 1_110 and shown.by_status == {"completed": 3}
    assert shown.size_bytes and shown.size_bytes > 100_000
    assert d1_target.requests - sent_before < 100  # three imports and two verifications
    bookmark = d1_target.bookmark()
    assert bookmark and d1_target.bookmark() == bookmark  # nothing written in between
    d1_target.execute([Sql("UPDATE ef_imports SET error = NULL")])
    assert d1_target.bookmark() != bookmark
    with connect(f"sqlite:///{tmp_path / 'local.db'}", create=True) as local:
        run_ladder(local, files=files, benchmarks=False)
        assert table_rows(local) == table_rows(d1_target)


def test_rollback_backup_and_status_on_d1(d1_target: D1Target, tmp_path: Path) -> None:
    """The same rollback engine on D1: an update import undone in one request, a local backup paged
    out of D1 first, the Time Travel bookmark recorded and shown; restoring a file into D1 refused."""
    from estateflow_nb import generate_records, list_backups, restore, rollback

    records = list(generate_records(30, seed=4))
    first = import_file(d1_target, write_csv(tmp_path / "a.csv", records), batch_size=10)
    changed = [{**r, "city": "Key West"} for r in records[:10]] + list(generate_records(5, seed=4, start=50))
    second = import_file(d1_target, write_csv(tmp_path / "b.csv", changed), batch_size=10, on_conflict="update")
    assert count(d1_target) == 35
    bookmark = d1_target.bookmark()
    undone = rollback(d1_target, import_id=second.import_id, yes=True, backups_dir=tmp_path / "backups")
    assert (undone.rows_removed, undone.rows_restored) == (5, 10)
    assert undone.bookmark == bookmark and "Time Travel bookmark before" in undone.summary()
    assert count(d1_target) == 30
    assert count(d1_target, "SELECT COUNT(*) FROM professionals WHERE city = 'Key West'") == 0
    assert count(d1_target, "SELECT COUNT(*) FROM professionals WHERE import_id = ?", (first.import_id,)) == 30
    assert verify(d1_target, benchmarks=False).passed
    (saved,) = list_backups(backups_dir=tmp_path / "backups")
    assert saved.path == undone.backup_path and (saved.rows, saved.imports) == (35, 2)
    assert saved.sql_dump and Path(saved.sql_dump).exists()
    with connect(f"sqlite:///{saved.path}", create=True) as copy:
        assert count(copy, "SELECT COUNT(*) FROM professionals WHERE city = 'Key West'") == 10
    shown = status(d1_target, backups_dir=tmp_path / "backups")
    assert shown.bookmark and shown.bookmark["bookmark"] == bookmark and bookmark in shown.table()
    with pytest.raises(EstateFlowError, match="Time Travel bookmark"):
        restore(d1_target, saved.path, yes=True, backups_dir=tmp_path / "backups")


def test_a_quota_guard_answers_as_its_d1_target(d1_target: D1Target, tmp_path: Path) -> None:
    """The guard of a --free-tier import holds back writes only: the bookmark a rollback records, the
    backup paged out of D1 and the refusal to restore a file are its target's own."""
    from estateflow_nb import backup, restore

    guard = QuotaGuard(d1_target, plan_import(d1_target, 10, 10))
    bookmark = d1_target.bookmark()
    assert bookmark and guard.bookmark() == bookmark
    path = backup(guard, backups_dir=tmp_path / "backups")
    assert path.with_suffix(".sql").exists()
    with pytest.raises(EstateFlowError, match="Time Travel bookmark"):
        restore(guard, path, yes=True, backups_dir=tmp_path / "backups")


def test_a_backup_pages_through_tables_larger_than_a_page(d1_target: D1Target, tmp_path: Path) -> None:
    """More rows than one page of the dump: pages follow the rowid, which a table with an INTEGER
    PRIMARY KEY (professionals.id) would otherwise name after that column."""
    from estateflow_nb import backup, list_backups

    records = DUMP_PAGE_ROWS + 500
    import_file(d1_target, write_records(tmp_path / "pros.csv", records))
    path = backup(d1_target, backups_dir=tmp_path / "backups")
    (saved,) = list_backups(backups_dir=tmp_path / "backups")
    assert saved.path == str(path) and saved.rows == records
    with connect(f"sqlite:///{path}", create=True) as copy:
        assert table_rows(copy) == table_rows(d1_target)


def test_a_10000_record_batch_is_one_request(d1_target: D1Target, tmp_path: Path) -> None:
    source = write_records(tmp_path / "large.csv", 10_000)
    before = d1_target.requests
    result = import_file(d1_target, source, yes=True)
    assert result.batches == 1 and result.inserted == 10_000
    # Look for an unfinished import, create the ledger row, read it, the batch, finish, read it back.
    assert d1_target.requests - before == 6


def test_bad_credentials_and_ids_stop_with_one_line(d1_engine: LocalD1Engine, d1_url: str, tmp_path: Path) -> None:
    source = write_records(tmp_path / "p.csv", 20)
    wrong = "wrong-" + d1_engine.token[::-1]
    cases = [
        ({"CLOUDFLARE_API_TOKEN": wrong}, d1_url, "Cloudflare refused the API token (HTTP 401"),
        ({}, f"d1://someoneelse/{d1_engine.databases[0]}", "Cloudflare refused the API token (HTTP 403"),
        ({}, f"d1://{d1_engine.account_id}/no-such-db", "not found"),
    ]
    for extra, url, message in cases:
        done = _cli(d1_engine, "import", str(source), "--db", url, extra=extra, cwd=tmp_path)
        assert done.returncode == 1, done.stderr
        assert done.stderr.startswith("Error: ") and message in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
        assert d1_engine.token not in done.stdout + done.stderr and wrong not in done.stdout + done.stderr


def _cli(engine: LocalD1Engine, *args: str, extra: dict[str, str] | None = None, cwd: Path) -> Any:
    """The command in this process, pointed at the local engine (`extra` overrides its settings)."""
    return invoke(*args, cwd=cwd, env={**engine.env(), **(extra or {})})


def test_the_token_never_appears_in_output_files_or_the_database(
    d1_engine: LocalD1Engine, d1_url: str, tmp_path: Path
) -> None:
    source = write_records(tmp_path / "pros.csv", 150, invalid_share=0.005)  # one reject: under the 1% limit
    outputs = [
        _cli(d1_engine, "import", str(source), "--db", d1_url, "--verbose", cwd=tmp_path),
        _cli(d1_engine, "import", str(source), "--db", d1_url, "--json", cwd=tmp_path),
        _cli(d1_engine, "verify", "--db", d1_url, "--runs", "1", cwd=tmp_path),
        _cli(d1_engine, "verify", "--db", d1_url, "--json", "--runs", "1", cwd=tmp_path),
        _cli(d1_engine, "status", "--db", d1_url, cwd=tmp_path),
        _cli(d1_engine, "status", "--db", d1_url, "--json", cwd=tmp_path),
        _cli(d1_engine, "import", str(source), "--db", d1_url, "--free-tier", "--verbose", cwd=tmp_path),
        _cli(d1_engine, "backup", "--db", d1_url, "--backups-dir", str(tmp_path / "backups"), cwd=tmp_path),
        _cli(d1_engine, "rollback", "last", "--yes", "--db", d1_url, "--backups-dir", "backups", cwd=tmp_path),
        _cli(d1_engine, "status", "--db", d1_url, "--backups-dir", "backups", cwd=tmp_path),
        _cli(d1_engine, "import", str(tmp_path / "missing.csv"), "--db", d1_url, cwd=tmp_path),
        _cli(d1_engine, "import", str(source), "--db", "d1://x/y", cwd=tmp_path),
    ]
    assert [o.returncode for o in outputs] == [0] * 10 + [1, 1], [o.stderr for o in outputs]
    assert "Time Travel bookmark before rollback" in outputs[9].stdout
    assert "imported 149" in outputs[0].stdout and json.loads(outputs[3].stdout)["passed"]
    token = d1_engine.token
    for done in outputs:
        assert token not in done.stdout and token not in done.stderr
        assert "X-Amz-Signature" not in done.stdout + done.stderr  # the export's URL is a credential too
    with d1_engine.target() as target:
        assert token not in repr(target) and token not in target.url and token not in repr(vars(target))
        for table in ("professionals", "ef_imports", "ef_before_images"):
            assert token not in json.dumps(target.query(f"SELECT * FROM {table}"))
        target.dump_sql(tmp_path / "backup.sql")
        try:
            target.query("SELECT nope FROM nowhere")
        except SqlError as error:
            assert token not in str(error) and token not in repr(error.__dict__)
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name.endswith(".rejects.csv") for p in written) and any(p.name == "backup.sql" for p in written)
    assert len([p for p in written if p.parent.name == "backups"]) == 4  # two backups, each with its dump
    for path in written:
        assert token.encode() not in path.read_bytes(), path


def test_cli_free_tier_refuses_a_plan_that_does_not_fit(d1_engine: LocalD1Engine, d1_url: str, tmp_path: Path) -> None:
    source = write_records(tmp_path / "pros.csv", 5_000)
    with connect(d1_url, create=True) as target:
        target.execute(
            [
                Sql(
                    "INSERT INTO ef_imports (id, source_path, source_sha256, target, batch_size, status, rows_written,"
                    " started_at, finished_at) VALUES ('imp-earlier', 'x.csv', 'abc', 'd1', 10, 'completed', 80000,"
                    " strftime('%Y-%m-%dT%H:%M:%SZ', 'now'), strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))"
                )
            ]
        )
    refused = _cli(d1_engine, "import", str(source), "--db", d1_url, "--free-tier", cwd=tmp_path)
    assert refused.returncode == 2, refused.stderr
    assert "Refused: 5,000 records write about 30," in refused.stderr
    assert "80,000 of today's 100,000 free-tier row writes are used, 20,000 remain" in refused.stderr
    assert "--split-days" in refused.stderr and "00:00 UTC" in refused.stderr
    # The ladder plans all its files before the first rung: this one alone does not fit either.
    ladder = _cli(d1_engine, "ladder", str(source), "--db", d1_url, "--yes", "--free-tier", cwd=tmp_path)
    assert ladder.returncode == 2 and "--split-days" in ladder.stderr
    with d1_engine.target() as target:
        assert target.scalar("SELECT COUNT(*) FROM ef_imports") == 1 and count(target) == 0
