"""A SQL dump is literally "create tables and insert rows": the small dumps that would compute gigabytes
are refused, the shapes real dump writers use still load, and the walls behind the grammar hold."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from estateflow_nb import _dump_grammar, sources
from estateflow_nb.errors import SourceError, UnsafeDumpError
from estateflow_nb.sources import read_rows

from .conftest import ROOT, invoke

TEN = ",".join(f"({i})" for i in range(10))
NESTED = "'xxxxxxxxxx'"
for _ in range(9):
    NESTED = f"replace({NESTED},'x','xxxxxxxxxx')"
# Each under 1 KB; each computes 10^8 rows or gigabytes of text when SQLite runs it as written.
ATTACKS = {
    "cross join of VALUES lists": (
        "INSERT INTO professionals (first_name) SELECT 'x' FROM "
        + ", ".join(f"(VALUES {TEN}) t{j}" for j in range(8))
        + ";\n",
        "it runs a SELECT",
    ),
    "DEFAULT calling functions": (
        "CREATE TABLE professionals (first_name TEXT DEFAULT (hex(zeroblob(100000000))), email TEXT);\n"
        "INSERT INTO professionals (email) VALUES " + ",".join(f"('e{i}')" for i in range(20)) + ";\n",
        "the DEFAULT of a column is an expression",
    ),
    "nested replace() building gigabytes": (
        f"INSERT INTO professionals (first_name) VALUES ({NESTED});\n",
        "not an INSERT of literal values",
    ),
    "a CTE feeding an INSERT": (
        "INSERT INTO professionals (first_name) WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n)"
        " SELECT i FROM n;\n",
        "it uses a WITH clause",
    ),
    "a function in a value": (
        "INSERT INTO professionals (first_name) VALUES (printf('%.*c', 1000000000, 'x'));\n",
        "it calls printf()",
    ),
    "a computed value": ("INSERT INTO professionals (first_name) VALUES ('a' || 'b');\n", "it computes values"),
    "a generated column": (
        "CREATE TABLE professionals (first_name TEXT AS (hex(zeroblob(1000000))), email TEXT);\n",
        "generated from an expression",
    ),
    "an upsert": (
        "INSERT INTO professionals (first_name) VALUES ('a') ON CONFLICT DO UPDATE SET first_name = 'b';\n",
        "not a plain INSERT",
    ),
}

READ_IN_A_CHILD = """
import json, resource, sys
from estateflow_nb.errors import SourceError
from estateflow_nb.sources import read_rows
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    outcome = {"rows": sum(1 for _ in read_rows(sys.argv[1]))}
except SourceError as error:
    outcome = {"error": type(error).__name__, "message": str(error)}
outcome["grew_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
print(json.dumps(outcome))
"""


def read_in_a_child(path: Path) -> dict[str, Any]:
    """Read the dump in its own process, capped at 1 GB of address space; the timeout only keeps a
    hanging reader (as on the code before this test) from holding the suite for good."""
    cap = "import resource; resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))\n"
    done = subprocess.run(
        [sys.executable, "-c", cap + READ_IN_A_CHILD, str(path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    outcome: dict[str, Any] = json.loads(done.stdout)
    return outcome


@pytest.mark.parametrize("name", ATTACKS)
def test_small_dumps_that_compute_are_refused_before_they_run(tmp_path: Path, name: str) -> None:
    text, reason = ATTACKS[name]
    path = tmp_path / "attack.sql"
    path.write_text(text, encoding="utf-8")
    assert path.stat().st_size < 1024
    outcome = read_in_a_child(path)
    assert outcome.get("error") == "UnsafeDumpError", outcome
    assert reason in outcome["message"] and outcome["message"].endswith("a dump may only create tables and insert rows")
    assert outcome["grew_kb"] < 200_000


def test_the_command_line_refuses_a_hostile_dump_with_one_line_and_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "attack.sql"
    path.write_text(ATTACKS["DEFAULT calling functions"][0], encoding="utf-8")
    done = invoke("import", str(path), "--db", f"sqlite:///{tmp_path / 'db.sqlite'}", cwd=tmp_path)
    assert done.returncode == 2 and done.stderr.startswith("Error: ") and len(done.stderr.splitlines()) == 1
    assert "refused" in done.stderr and "Traceback" not in done.stderr


def rows_of(text: str, tmp_path: Path) -> list[dict[str, Any]]:
    path = tmp_path / "dump.sql"
    path.write_text(text, encoding="utf-8")
    return list(read_rows(path))


def test_the_shapes_dump_writers_use_for_text_still_load(tmp_path: Path) -> None:
    """The sqlite3 shell's nested replace(), newer shells' unistr() (ours where SQLite has none), our D1
    dump's CAST of a blob for text with a NUL, and every kind of literal."""
    got = rows_of(
        "CREATE TABLE professionals (first_name TEXT, last_name TEXT, company TEXT, rating REAL,"
        " review_count INTEGER, phone BLOB, city TEXT);\n"
        "INSERT INTO professionals VALUES(replace(replace('a\\r\\nb','\\r',char(13)),'\\n',char(10)),"
        " unistr('c\\u000ad\\+01F600'), CAST(X'650066' AS TEXT), -4.5e0, 0x10, X'00ff', NULL),"
        " ('it''s', 'x', 'y', +3, 7, NULL, TRUE);\n",
        tmp_path,
    )
    assert got[0] == {
        "first_name": "a\r\nb",
        "last_name": "c\nd😀",
        "company": "e\x00f",
        "rating": -4.5,
        "review_count": 16,
        "phone": b"\x00\xff",
        "city": None,
    }
    assert (
        got[1]["first_name"] == "it's" and got[1]["rating"] == 3.0 and got[1]["city"] == "1"
    )  # TEXT affinity, as SQLite stores it


def test_a_wrangler_export_opens_with_a_pragma_that_is_passed_over(tmp_path: Path) -> None:
    """`wrangler d1 export` writes PRAGMA defer_foreign_keys=TRUE; first: it changes no row."""
    got = rows_of(
        "PRAGMA defer_foreign_keys=TRUE;\nCREATE TABLE professionals (first_name TEXT);\n"
        "INSERT INTO professionals VALUES('a');\n",
        tmp_path,
    )
    assert got == [{"first_name": "a"}]


def test_text_with_nuls_as_our_d1_dumps_join_it_loads_and_nothing_else_joins(tmp_path: Path) -> None:
    head = "CREATE TABLE professionals (first_name TEXT);\n"
    got = rows_of(head + "INSERT INTO professionals VALUES('a'||char(0)||'b'||char(0)||'');\n", tmp_path)
    assert got == [{"first_name": "a\x00b\x00"}]
    for joined in ("'a'||char(1)||'b'", "'a'||'b'", "'a'||char(0)", "char(0)||'a'", "'a'||char(0)||X'00'"):
        with pytest.raises(UnsafeDumpError, match=r"it computes values|it is not an INSERT of literal values"):
            rows_of(head + f"INSERT INTO professionals VALUES({joined});\n", tmp_path)


def test_a_dump_table_keeps_names_types_and_literal_defaults_but_no_constraints(tmp_path: Path) -> None:
    got = rows_of(
        'CREATE TABLE IF NOT EXISTS main."professionals" (\n'
        "  id INTEGER PRIMARY KEY AUTOINCREMENT,\n"
        "  first_name VARCHAR(40) NOT NULL COLLATE NOCASE CHECK (length(first_name) > 100),\n"
        "  subscription_tier TEXT DEFAULT 'free' REFERENCES tiers(name) ON DELETE CASCADE,\n"
        "  review_count DECIMAL(10, 0) DEFAULT (-1),\n"
        "  UNIQUE (first_name), CHECK (review_count > 1000)\n"
        ") WITHOUT ROWID;\n"
        "INSERT INTO professionals (first_name, review_count) VALUES ('Ana', '12'), (NULL, NULL), ('Ana', 3);\n"
        "INSERT INTO professionals (first_name) VALUES ('Bo');\n",
        tmp_path,
    )
    # CHECK, NOT NULL and UNIQUE are never evaluated (bad rows reach validation); the types still
    # convert ('12' -> 12) and the literal default fills what an INSERT leaves out.
    assert [(r["id"], r["first_name"], r["subscription_tier"], r["review_count"]) for r in got] == [
        (None, "Ana", "free", 12),
        (None, None, "free", None),
        (None, "Ana", "free", 3),
        (None, "Bo", "free", -1),
    ]


@pytest.mark.parametrize(
    ("statement", "said"),
    [
        ("INSERT INTO sqlite_master VALUES ('table', 't', 't', 0, 'CREATE TABLE t (a)');", "SQLite's own table"),
        ("INSERT INTO temp.professionals (first_name) VALUES ('a');", "database 'temp'"),
        ("CREATE TABLE aux.professionals (first_name);", "database 'aux'"),
        ("CREATE TABLE t AS SELECT 1;", "from a SELECT"),
        ("CREATE TABLE professionals (first_name DEFAULT (random()));", "is an expression"),
        ("CREATE TABLE professionals (first_name DEFAULT CURRENT_TIMESTAMP || 'x');", "syntax error"),
    ],
)
def test_more_than_plain_tables_and_literals_is_refused_by_line(tmp_path: Path, statement: str, said: str) -> None:
    path = tmp_path / "odd.sql"
    path.write_text(f"BEGIN;\n{statement}\nCOMMIT;\n", encoding="utf-8")
    with pytest.raises(SourceError, match="line 2") as error:
        list(read_rows(path))
    assert said in str(error.value)
    assert isinstance(error.value, UnsafeDumpError) == ("syntax error" not in said)


def test_a_second_create_of_professionals_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="line 2: the dump creates table professionals a second time"):
        rows_of("CREATE TABLE professionals (email);\nCREATE TABLE Professionals (email);\n", tmp_path)


def test_text_that_is_not_utf8_reaches_validation_as_a_reject(tmp_path: Path) -> None:
    """A blob cast to text may hold any bytes (here a lone surrogate's and a stray byte): the record is
    read with them escaped and rejected, the file is not refused."""
    rows = rows_of(
        "INSERT INTO professionals (first_name, last_name) VALUES (CAST(X'eda080' AS TEXT), 'ok'),"
        " (CAST(X'41ff' AS TEXT), 'ok'), ('fine', 'ok');\n"
        "INSERT INTO professionals (first_name, last_name) VALUES ('after', 'ok');\n",  # read as text again
        tmp_path,
    )
    assert [r["last_name"] for r in rows] == ["ok", "ok", "ok", "ok"] and rows[2]["first_name"] == "fine"
    assert rows[3]["first_name"] == "after"
    assert all(not r["first_name"].isascii() for r in rows[:2])
    with pytest.raises(UnicodeEncodeError):
        rows[0]["first_name"].encode("utf-8")


# --- the second wall: limits and a budget, should the grammar ever let something through -------------


@pytest.fixture
def no_grammar(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every INSERT passes the first wall, as if the grammar had a hole."""
    monkeypatch.setattr(_dump_grammar, "insert_table", lambda statement: "professionals")


def refusal_of(text: str, tmp_path: Path) -> str:
    with pytest.raises(UnsafeDumpError) as refused:
        rows_of(text, tmp_path)
    return str(refused.value)


def test_the_step_budget_stops_a_statement_that_computes(tmp_path: Path, no_grammar: None) -> None:
    statement = ATTACKS["cross join of VALUES lists"][0]
    assert refusal_of(statement, tmp_path) == (
        f'{tmp_path / "dump.sql"} line 1: refused "{sources._excerpt(statement)}": it takes too long to run;'
        " a dump may only create tables and insert rows"
    )


def test_the_length_limit_stops_a_value_that_grows(tmp_path: Path, no_grammar: None) -> None:
    statement = ATTACKS["nested replace() building gigabytes"][0]
    assert refusal_of(statement, tmp_path) == (
        f'{tmp_path / "dump.sql"} line 1: refused "{sources._excerpt(statement)}": it makes a value too long'
        " (string or blob too big); a dump may only create tables and insert rows"
    )


def test_the_authorizer_stops_a_read(tmp_path: Path, no_grammar: None) -> None:
    statement = "INSERT INTO professionals (first_name) SELECT name FROM sqlite_master;"
    assert refusal_of(f"CREATE TABLE professionals (first_name);\n{statement}\n", tmp_path) == (
        f'{tmp_path / "dump.sql"} line 2: refused "{statement}": it asks SQLite for action 20 on sqlite_master;'
        " a dump may only create tables and insert rows"
    )


def test_the_authorizer_lets_through_only_rows_for_professionals_and_the_dump_writers_calls() -> None:
    wall = sources._Wall()
    insert, function, read = sqlite3.SQLITE_INSERT, sqlite3.SQLITE_FUNCTION, sqlite3.SQLITE_READ
    assert wall(read, "t", "c", "main", None) == sqlite3.SQLITE_OK  # standing down: our own queries
    wall.guarding = True
    allowed = [(insert, "professionals", None, "main"), (insert, "Professionals", None, None)]
    allowed += [
        (function, None, "char", None),
        (function, None, "REPLACE", None),
        (sqlite3.SQLITE_SELECT, None, None, None),
    ]
    assert [wall(*a, None) for a in allowed] == [sqlite3.SQLITE_OK] * 5 and wall.refusal == ""
    denied = [(insert, "notes", None, "main"), (insert, "professionals", None, "temp"), (function, None, "hex", None)]
    denied += [(read, None, None, None), (insert, None, None, "main")]
    assert [wall(*a, None) for a in denied] == [sqlite3.SQLITE_DENY] * 5
    assert wall.refusal == f"it asks SQLite for action {insert} on notes"  # the first one is kept
    for args, named in (((read, None, "x", None), "x"), ((read, None, None, None), "nothing")):
        wall.refusal = ""
        wall(*args, None)
        assert wall.refusal == f"it asks SQLite for action {read} on {named}"


def test_the_step_budget_counts_calls_of_1000_steps_from_an_allowance() -> None:
    budget = sources._Budget()
    assert budget() == 1  # nothing runs before it is given an allowance
    budget.allow(4_999)  # 10,000 + 4,999 steps: 14 calls
    assert [budget() for _ in range(15)] == [0] * 14 + [1] and budget.calls == 16


def test_each_statement_and_each_read_back_has_its_own_allowance(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    allowed: list[int] = []
    allow = sources._Budget.allow
    monkeypatch.setattr(sources._Budget, "allow", lambda budget, steps: allowed.append(steps) or allow(budget, steps))
    insert, one = (
        "INSERT INTO professionals VALUES ('a', 1), ('b', 2), ('c', 3);",
        "INSERT INTO professionals VALUES ('d', 4);",
    )
    assert len(rows_of(f"CREATE TABLE professionals (first_name, review_count);\n{insert}\n{one}\n", tmp_path)) == 4
    # Per byte of each statement, and per value of the rows it added, read back.
    assert allowed == [10 * len(insert), 4 * 3 * (2 + 4), 10 * len(one), 4 * 1 * (2 + 4)]


def test_a_big_statement_runs_and_reads_back_within_its_allowance(tmp_path: Path) -> None:
    values = ",".join(f"('name {i}', 'x{i}@example.com', {i})" for i in range(3_000))
    got = rows_of(f"INSERT INTO professionals (first_name, email, review_count) VALUES {values};\n", tmp_path)
    assert len(got) == 3_000 and got[-1]["first_name"] == "name 2999"


def test_reading_back_past_its_allowance_is_an_error_of_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sources, "STEPS_PER_STATEMENT", 0)
    monkeypatch.setattr(sources, "STEPS_PER_VALUE_READ", 0)
    values = ",".join(f"('name {i}')" for i in range(3_000))
    with pytest.raises(SourceError) as stopped:
        rows_of(f"INSERT INTO professionals (first_name) VALUES {values};\n", tmp_path)
    assert str(stopped.value) == f"{tmp_path / 'dump.sql'}: reading the rows of a statement back failed: interrupted"


# --- a fuzz over short dumps ------------------------------------------------------------------------

LITERALS = ["'x'", "'xxxxxxxx'", "'\\n'", "9e999", "-1", "0x7fffffffffffffff", "NULL", "X'00'", "1e308"]
SHAPES = ["CAST(X'4100' AS TEXT)", "unistr('a\\u000ab')", "char(10)", "char(13)"]
CALLS = ["zeroblob(1000000000)", "randomblob(99999999)", "(SELECT 1)", "(VALUES (1),(2))"]
values = st.recursive(
    st.sampled_from(LITERALS + SHAPES + CALLS),
    lambda inner: st.one_of(
        st.builds(lambda a, b, c: f"replace({a},{b},{c})", inner, inner, inner),
        st.builds(lambda a: f"hex({a})", inner),
        st.builds(lambda a, b: f"{a} || {b}", inner, inner),
        st.builds(lambda a: f"printf('%.*c', {a}, 'x')", inner),
        st.builds(lambda a: f"(SELECT {a} FROM (VALUES (1),(2),(3)) a, (VALUES (1),(2),(3)) b)", inner),
    ),
    max_leaves=6,
)
rows = st.lists(st.builds(lambda v: f"({v})", values), min_size=1, max_size=6).map(",".join)
plain_rows = st.lists(st.sampled_from(LITERALS + SHAPES).map(lambda v: f"({v})"), min_size=1, max_size=20)
statements = st.one_of(
    plain_rows.map(lambda r: f"INSERT INTO professionals (first_name) VALUES {','.join(r)};\n"),
    rows.map(lambda r: f"INSERT INTO professionals (first_name) VALUES {r};\n"),
    values.map(lambda v: f"CREATE TABLE professionals (first_name TEXT DEFAULT {v}, email TEXT);\n"),
    st.just("INSERT INTO professionals (email) VALUES ('a'),('b');\n"),
    values.map(
        lambda v: f"INSERT INTO professionals (first_name) SELECT {v} FROM (VALUES (1),(2)) a, (VALUES (3)) b;\n"
    ),
    st.sampled_from(["BEGIN;\n", "COMMIT;\n", "CREATE INDEX i ON professionals (first_name);\n", "garbage(\n"]),
)


class CountingBudget(sources._Budget):
    made: list[sources._Budget] = []  # noqa: RUF012 - the instances of one read

    def __init__(self) -> None:
        super().__init__()
        CountingBudget.made.append(self)


def consumed(path: Path) -> Iterator[dict[str, Any]]:
    try:
        yield from read_rows(path)
    except SourceError:
        return


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(statements, min_size=1, max_size=8).map("".join))
def test_any_short_dump_is_refused_or_read_small_and_in_few_steps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str
) -> None:
    text = text[:1000]  # under 1 KB, wherever that cuts
    path = tmp_path / "fuzz.sql"
    path.write_text(text, encoding="utf-8")
    monkeypatch.setattr(sources, "_Budget", CountingBudget)
    CountingBudget.made.clear()
    rows = list(consumed(path))
    # Nothing a dump's values make is bigger than the dump, and SQLite took at most a few million
    # steps (a fraction of a second) for the whole of it.
    assert sum(len(str(value)) for row in rows for value in row.values() if value is not None) <= 4 * len(text) + 64
    assert all(budget.calls * sources.STEPS_PER_CALL <= 3_000_000 for budget in CountingBudget.made)


# --- the grammar itself, statement by statement (in this process: quick, and seen by `make mutation`) ---

OPERATORS = ("||", "+", "-", "*", "/", "%", "<<", ">>", "&", "|", "=", "==", "<", ">", "<=", ">=", "!=", "<>")
NOT_LITERAL = (
    "it is not an INSERT of literal values (replace(), char(), unistr() and CAST only as dump writers use them)"
)
INSERTS = [
    ("INSERT INTO main.professionals VALUES (1);", ("ok", "professionals")),
    ('INSERT INTO "temp".professionals VALUES (1);', ("it uses database 'temp'", True)),
    ("INSERT INTO sqlite_stat1 VALUES (1);", ("it writes SQLite's own table sqlite_stat1", True)),
    ("INSERT OR IGNORE INTO [Pros] (a, b) VALUES (1, 'x'), (-2.5e3, X'00');", ("ok", "Pros")),
    ("REPLACE INTO `P` VALUES (NULL);", ("ok", "P")),
    ("INSERT INTO p VALUES (1) RETURNING *;", ("it is not a plain INSERT ... VALUES (RETURNING)", True)),
    ("INSERT INTO p (a) VALUES (abs(-1));", ("it calls abs()", True)),
    ("INSERT INTO p (a) VALUES (-1 * 2);", ("it computes values (with *)", True)),
    (
        "INSERT INTO p (a) VALUES (1 + 2);",
        (NOT_LITERAL, True),
    ),
    ("INSERT INTO p (a) VALUES (-1, +2, 3 % 2);", ("it computes values (with %)", True)),
    ("INSERT INTO p (a) SELECT 1;", ("it runs a SELECT", True)),
    ("INSERT INTO p (a) VALUES (1) ON CONFLICT DO NOTHING;", ("it is not a plain INSERT ... VALUES (ON)", True)),
    ("INSERT INTO p DEFAULT VALUES;", ("it is not a plain INSERT ... VALUES (DEFAULT)", True)),
    (
        "INSERT INTO p (a) VALUES ((1));",
        (NOT_LITERAL, True),
    ),
    (
        "INSERT INTO p (a) VALUES (1 IN (1, 2));",
        (NOT_LITERAL, True),
    ),
    (
        "INSERT INTO p (a) VALUES (replace('a', 'b', char(11)));",
        (NOT_LITERAL, True),
    ),
    ("INSERT INTO main.p (a) VALUES (x'00' || 'a');", ("it computes values (with ||)", True)),
    ("INSERT INTO p (a, b) VALUES (1, 2", ("incomplete input", False)),
    ("INSERT INTO p VALUEZ (1);", ('near "VALUEZ": syntax error', False)),
    ("INSERT INTO p (a) VALUES (1 << 2);", ("it computes values (with <<)", True)),
    (
        "INSERT INTO p (a) VALUES (CAST(1 AS TEXT));",
        (NOT_LITERAL, True),
    ),
    # The head (INTO, the table, its columns) is passed over before looking for what a statement tries:
    # a column may be named like a clause ("do") or a query word ("with").
    ("INSERT INTO p(do) VALUES (a);", (NOT_LITERAL, True)),
    ("INSERT INTO main.p(with) VALUES (a);", (NOT_LITERAL, True)),
    ("INSERT INTO p VALUES (abs(1));", ("it calls abs()", True)),
    ("SELECT abs(1);", ("it runs a SELECT", True)),
    # Text that is more than one statement, to the very last token.
    ("SELECT 1; INSERT INTO p", (NOT_LITERAL, True)),
    ("SELECT 1; INSERT INTO p(a", (NOT_LITERAL, True)),
    ("SELECT (1); INSERT INTO p(do) VALUES (a);", (NOT_LITERAL, True)),
    ("INSERT INTO p VALUES (a); foo", (NOT_LITERAL, True)),
    ("INSERT INTO p VALUES (a); foo(", ("it calls foo()", True)),
    ("INSERT INTO p VALUES (a); -", ("it computes values (with -)", True)),
    ("INSERT INTO p VALUES (a); -1", (NOT_LITERAL, True)),
    ("INSERT INTO p VALUES ('x);", ('unrecognized token: "\'x);"', False)),
    *((f"INSERT INTO p VALUES (a {op} a);", (f"it computes values (with {op})", True)) for op in OPERATORS),
]

CREATES = [
    ("CREATE TABLE IF NOT EXISTS main.p (a, b TEXT);", ("ok", 'CREATE TABLE "p" ("a", "b" TEXT)')),
    (
        "CREATE TABLE p (a VARCHAR(255), b DECIMAL(10, 2), c DOUBLE PRECISION, d INT(-1))",
        ("ok", 'CREATE TABLE "p" ("a" VARCHAR(255), "b" DECIMAL(10,2), "c" DOUBLE PRECISION, "d" INT(-1))'),
    ),
    ("CREATE TABLE p (a VARCHAR(abc))", ("the type VARCHAR(abc) is not a type name and a size", False)),
    ("CREATE TABLE p (a VARCHAR(1,2,3))", ("the type VARCHAR(1,2,3) is not a type name and a size", False)),
    (
        "CREATE TABLE p (a DEFAULT 'x', b DEFAULT X'00', c DEFAULT -1, d DEFAULT +1.5, e DEFAULT NULL,"
        " f DEFAULT CURRENT_TIMESTAMP, g DEFAULT (5), h DEFAULT TRUE)",
        (
            "ok",
            'CREATE TABLE "p" ("a" DEFAULT \'x\', "b" DEFAULT X\'00\', "c" DEFAULT -1, "d" DEFAULT +1.5,'
            ' "e" DEFAULT NULL, "f" DEFAULT CURRENT_TIMESTAMP, "g" DEFAULT 5, "h" DEFAULT TRUE)',
        ),
    ),
    ("CREATE TABLE p (a DEFAULT -NULL)", ("the DEFAULT of a column is an expression (-NULL ...), not a literal", True)),
    (
        "CREATE TABLE p (a DEFAULT -X'00')",
        ("the DEFAULT of a column is an expression (-X'00' ...), not a literal", True),
    ),
    ("CREATE TABLE p (a DEFAULT abs(1))", ("the DEFAULT of a column is an expression (abs ...), not a literal", True)),
    ("CREATE TABLE p (a DEFAULT (1 + 2))", ("the DEFAULT of a column is an expression (1 ...), not a literal", True)),
    ("CREATE TABLE p (a DEFAULT (5)", ('near "end": syntax error', False)),
    (
        "CREATE TABLE p (a, PRIMARY KEY (a, b), FOREIGN KEY (a) REFERENCES t(b) ON DELETE CASCADE,"
        " CONSTRAINT c CHECK (a > 0))",
        ("ok", 'CREATE TABLE "p" ("a")'),
    ),
    ("CREATE TABLE p (a) WITHOUT ROWID, STRICT;", ("ok", 'CREATE TABLE "p" ("a")')),
    ("CREATE TABLE p (a) garbage;", ('near "garbage": syntax error', False)),
    ("CREATE TABLE p (a", ('near "end": syntax error', False)),
    (
        "CREATE TABLE p (a CONSTRAINT nn NOT NULL COLLATE NOCASE UNIQUE ON CONFLICT REPLACE REFERENCES t"
        " DEFERRABLE INITIALLY DEFERRED)",
        ("ok", 'CREATE TABLE "p" ("a")'),
    ),
    (
        "CREATE TABLE p (a INTEGER PRIMARY KEY ASC AUTOINCREMENT, b GENERATED ALWAYS AS (a) STORED)",
        ("column b is generated from an expression", True),
    ),
    ("CREATE TABLE p (a AS (1))", ("column a is generated from an expression", True)),
    ("CREATE TABLE p (a FOO BAR BAZ)", ("ok", 'CREATE TABLE "p" ("a" FOO BAR BAZ)')),
    ("CREATE TABLE p (a TEXT WHATEVER(1))", ("ok", 'CREATE TABLE "p" ("a" TEXT WHATEVER(1))')),
    ("CREATE TABLE p (a TEXT) ;", ("ok", 'CREATE TABLE "p" ("a" TEXT)')),
    ("CREATE TABLE p (a TEXT);x", ('near "x": syntax error', False)),
    ("CREATE TABLE 'p' (a)", ("near \"'p'\": syntax error", False)),
    ("CREATE TABLE (a)", ('near "(": syntax error', False)),
    ("CREATE TABLE p (1)", ('near "1": syntax error', False)),
    ("CREATE TABLE p (a TEXT NOT NULL ! )", ('near "!": syntax error', False)),
    ("CREATE TABLE temp.p (a)", ("it uses database 'temp'", True)),
    ("CREATE TABLE p AS SELECT 1", ("it creates a table from a SELECT", True)),
    (
        "CREATE TABLE [my p] (\"c\"\"d\" TEXT DEFAULT 'it''s')",
        ("ok", 'CREATE TABLE "my p" ("c""d" TEXT DEFAULT \'it\'\'s\')'),
    ),
    ("CREATE TABLE p (a CHECK (a IN (1, (2))), b)", ("ok", 'CREATE TABLE "p" ("a", "b")')),
    ("CREATE VIEW p AS SELECT 1", ('near "VIEW": syntax error', False)),
    ("CREATE TABLE p (a CHECK)", ('near ")": syntax error', False)),
    ("CREATE TABLE p (a DEFAULT 1 (2))", ("the DEFAULT of a column is an expression (1 ...), not a literal", True)),
    ("CREATE TABLE p (a, UNIQUE (a), b)", ("ok", 'CREATE TABLE "p" ("a", "b")')),
    ("CREATE TABLE p (a, UNIQUE (a)", ('near "end": syntax error', False)),
    ("CREATE TABLE p (_a TEXT)", ("ok", 'CREATE TABLE "p" ("_a" TEXT)')),
    ("CREATE TABLE p (`a b` TEXT)", ("ok", 'CREATE TABLE "p" ("a b" TEXT)')),
    ("CREATE TABLE p (a DEFAULT", ("incomplete input", False)),
    ("CREATE TABLE p (a GENERATED)", ("column a is generated from an expression", True)),
    ("CREATE TABLE p (a DOUBLE PRECISION(x))", ("the type DOUBLE PRECISION(x) is not a type name and a size", False)),
    ("CREATE TABLE p (a INTEGER PRIMARY KEY DESC)", ("ok", 'CREATE TABLE "p" ("a" INTEGER)')),
    ("CREATE TABLE p (a TEXT NOT NULL bogus)", ('near "bogus": syntax error', False)),
]


def outcome(parse: Any, statement: str) -> tuple[Any, Any]:
    """("ok", what `parse` made of it) or (the refusal's reason, whether it is unsafe)."""
    try:
        made = parse(statement)
    except _dump_grammar.Refusal as refusal:
        return str(refusal), refusal.unsafe
    return "ok", made.scratch_ddl() if isinstance(made, _dump_grammar.Table) else made


@pytest.mark.parametrize(("statement", "expected"), INSERTS)
def test_an_insert_is_taken_or_refused_with_what_it_tries(statement: str, expected: tuple[Any, Any]) -> None:
    assert outcome(_dump_grammar.insert_table, statement) == expected


@pytest.mark.parametrize(("statement", "expected"), CREATES)
def test_a_create_table_is_read_into_its_scratch_table_or_refused(statement: str, expected: tuple[Any, Any]) -> None:
    assert outcome(_dump_grammar.create_table, statement) == expected


def test_names_are_unquoted_and_statements_split_into_sqlite_tokens() -> None:
    quoted = ['"a""b"', "`y``z`", "[x y]", "plain", "'s'"]
    assert [_dump_grammar.unquote(name) for name in quoted] == ['a"b', "y`z", "x y", "plain", "'s'"]
    statement = "a /* c */ b -- d\n 'x''y' \"q\" <= >= <> != == || << >> . 1.5e3 0x1F X'00' [n] `m`"
    assert _dump_grammar.tokens(statement) == [
        *("a", "b", "'x''y'", '"q"', "<=", ">=", "<>", "!=", "==", "||", "<<", ">>", "."),
        *("1.5e3", "0x1F", "X'00'", "[n]", "`m`"),
    ]


def test_unistr_reads_every_escape_sqlite_does_and_refuses_the_rest() -> None:
    escapes = ["a\\0041b", "\\u0041", "\\+000041", "\\U00000041", "\\\\", "plain", "\\U0010FFFF"]
    assert [_dump_grammar.unistr(text) for text in escapes] == ["aAb", "A", "A", "A", "\\", "plain", "\U0010ffff"]
    assert _dump_grammar.unistr(None) is None
    with pytest.raises(ValueError, match=r"^invalid Unicode escape in unistr\(\)$"):
        _dump_grammar.unistr("\\x")
    with pytest.raises(ValueError, match=r"^invalid Unicode escape in unistr\(\): \\U00110000$"):
        _dump_grammar.unistr("\\U00110000")


def test_explaining_a_refusal_runs_nothing_and_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite only parses what is explained (an authorizer denies everything), in memory: an ATTACH
    would otherwise create its file, and a named database a file in the working folder."""
    monkeypatch.chdir(tmp_path)
    attach = f"ATTACH DATABASE '{tmp_path / 'x.db'}' AS x"
    assert _dump_grammar.explain_insert(attach) == (NOT_LITERAL, True)
    assert _dump_grammar.explain_insert("INSERT INTO p VALUES (a);") == (NOT_LITERAL, True)
    assert list(tmp_path.iterdir()) == []
