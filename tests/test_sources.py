"""The readers: CSV, JSON Lines and SQL dumps as streams of raw rows, and the walls around dumps."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import threading
import tracemalloc
from collections import deque
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pytest

from estateflow_nb._sql import quote_text
from estateflow_nb.errors import RefusedError, SourceError, UnsafeDumpError
from estateflow_nb.schema import RECORD_COLUMNS, SCHEMA_STATEMENTS, STORED_COLUMNS
from estateflow_nb.sources import SourceInfo, Span, file_sha256, read_rows, scan, source_format

ROOT = Path(__file__).resolve().parent.parent
SQLITE3_SHELL = shutil.which("sqlite3")

# Text that breaks naive readers: a quote, an apostrophe, a backslash, a comma, a semicolon,
# a newline (and CRLF), non-ASCII from outside the BMP too.
TRICKY = {
    "first_name": "Zoë",
    "last_name": "O'Brien",
    "company": 'Back\\slash "Quoted", Ltd; Co.',
    "city": "São Paulo",
    "phone": "line one\nline two",
    "email": "zoë.obrien@example.com",
    "subscription_tier": "🏠 premium\r\nnext",
}


def record(i: int, **changes: Any) -> dict[str, Any]:
    """A full record as text, unique by `i`."""
    row = {column: f"{column}-{i}" for column in RECORD_COLUMNS}
    row.update(changes)
    return row


def write_csv(path: Path, rows: Iterable[dict[str, Any]], columns: Sequence[str] = RECORD_COLUMNS) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        writer.writerows([row.get(column, "") for column in columns] for row in rows)
    return path


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path


def sql_literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, str):
        return quote_text(value)
    return repr(value)


def insert_sql(rows: Sequence[dict[str, Any]], columns: Sequence[str] = RECORD_COLUMNS) -> str:
    """One multi-row INSERT with a column list, one row per line, as our own files have them."""
    values = ",\n".join("(" + ", ".join(sql_literal(row.get(c)) for c in columns) + ")" for row in rows)
    return f"INSERT INTO professionals ({', '.join(columns)}) VALUES {values};\n"


def write_own_sql(path: Path, rows: Sequence[dict[str, Any]], per_insert: int = 500) -> Path:
    """Our own file shape: no CREATE TABLE, BEGIN TRANSACTION, multi-row INSERTs, COMMIT."""
    with path.open("w", encoding="utf-8", newline="") as f:
        f.write("BEGIN TRANSACTION;\n")
        for start in range(0, len(rows), per_insert):
            f.write(insert_sql(rows[start : start + per_insert]))
        f.write("COMMIT;\n")
    return path


def message(error: pytest.ExceptionInfo[BaseException]) -> str:
    text = str(error.value)
    assert "\n" not in text, "errors are one line"
    return text


# --- CSV ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("bom", [False, True])
def test_csv_rows_come_back_by_column_name(tmp_path: Path, bom: bool) -> None:
    columns = list(reversed(RECORD_COLUMNS))  # order must not matter
    rows = [record(1, **TRICKY), record(2, company="", rating="4.5")]
    path = write_csv(tmp_path / "pros.csv", rows, columns)
    if bom:
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())

    got = list(read_rows(path))

    assert got == rows
    assert list(got[0]) == columns
    assert got[0]["phone"] == "line one\nline two"
    assert got[0]["subscription_tier"] == "🏠 premium\r\nnext"
    assert got[1]["company"] == ""


def test_csv_missing_optional_columns_and_short_rows_are_left_out(tmp_path: Path) -> None:
    path = tmp_path / "few.csv"
    path.write_text("first_name,last_name,email\nAna,Diaz,ana@example.com\n\nBo,Li\n", encoding="utf-8")

    assert list(read_rows(path)) == [
        {"first_name": "Ana", "last_name": "Diaz", "email": "ana@example.com"},
        {"first_name": "Bo", "last_name": "Li"},  # the blank line is not a record
    ]
    assert scan(path).records == 2


def test_csv_unknown_columns_are_named(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "odd.csv", [record(1)], [*RECORD_COLUMNS[:3], "foo", "bar"])
    with pytest.raises(SourceError) as error:
        scan(path)
    assert message(error) == f"{path} line 1: unknown columns: foo, bar"


def test_csv_extra_fields_are_an_error_with_the_line_number(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "wide.csv", [record(i, company="two\nlines") for i in range(2)])
    # Header on line 1, two records of two lines each (lines 2-5), a good one-line record on 6.
    with path.open("a", encoding="utf-8", newline="") as f:
        csv.writer(f).writerow(record(3).values())
        csv.writer(f).writerow([*record(4).values(), "x", "y"])
    with pytest.raises(SourceError) as error:
        scan(path)
    assert message(error) == f"{path} line 7: 18 fields but the header has 16"
    with pytest.raises(SourceError, match="line 7"):
        list(read_rows(path))


def test_csv_extra_fields_are_named_by_the_first_line_of_their_record_whatever_its_line_breaks(tmp_path: Path) -> None:
    breaks = {"company": "a\r\nb", "city": "c\rd", "phone": "e\nf"}  # three more lines each record
    path = write_csv(tmp_path / "wide.csv", [record(1, **breaks)])  # header on line 1, then lines 2-5
    with path.open("a", encoding="utf-8", newline="") as f:
        csv.writer(f).writerow([*record(2, **breaks).values(), "x"])  # lines 6-9
    with pytest.raises(SourceError) as error:
        scan(path)
    assert message(error) == f"{path} line 6: 17 fields but the header has 16"


def test_csv_unclosed_quote_is_an_error_not_a_swallowed_file(tmp_path: Path) -> None:
    path = tmp_path / "quote.csv"
    path.write_text('first_name,last_name\n"Ana,Diaz\nBo,Li\n', encoding="utf-8")
    with pytest.raises(SourceError, match=re.escape(str(path))):
        scan(path)


def test_csv_header_after_blank_lines_is_found(tmp_path: Path) -> None:
    path = tmp_path / "blank_first.csv"
    path.write_text("\n\r\n  \n,\nfirst_name,email\nAna,a@b.co\n\nBo,b@c.co\n", encoding="utf-8")
    assert list(read_rows(path)) == [
        {"first_name": "Ana", "email": "a@b.co"},
        {"first_name": "Bo", "email": "b@c.co"},
    ]
    assert scan(path).columns == ("first_name", "email")
    path.write_text("\n\nfirst_name,shoe_size\nAna,9\n", encoding="utf-8")
    with pytest.raises(SourceError) as error:
        scan(path)
    assert message(error) == f"{path} line 3: unknown columns: shoe_size"


def test_csv_without_a_header_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    for blank, line in (("", 1), ("\n\n  \n", 3)):
        path.write_text(blank, encoding="utf-8")
        with pytest.raises(SourceError) as error:
            scan(path)
        assert message(error) == f"{path} line {line}: no header line"


def test_csv_columns_named_twice_are_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "twice.csv"
    path.write_text("first_name,email,first_name,email,city\nA,a@b.co,B,c@d.co,X\n", encoding="utf-8")
    with pytest.raises(SourceError) as error:
        scan(path)
    assert message(error) == f"{path} line 1: duplicate columns: email, first_name"


def test_counting_up_to_a_number_is_exact_only_below_it_and_reading_never_skips_back(tmp_path: Path) -> None:
    from estateflow_nb.generate import write_records

    path = write_records(tmp_path / "p.csv", 11)
    assert [(scan(path, count_up_to=n).records, scan(path, count_up_to=n).exact) for n in (10, 11)] == [
        (11, False),
        (11, True),
    ]
    with pytest.raises(ValueError, match=r"^skip must be 0 or more, not -1$"):
        read_rows(path, skip=-1)
    with pytest.raises(SourceError, match=r"^\S+nope\.csv: no such file$"):
        file_sha256(tmp_path / "nope.csv")


# --- JSON Lines ----------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".jsonl", ".ndjson"])
def test_jsonl_rows_keep_their_json_values(tmp_path: Path, suffix: str) -> None:
    rows: list[dict[str, Any]] = [
        {**TRICKY, "rating": 4.5, "review_count": 12, "is_featured": True, "company": None},
        {"license_number": "L1", "first_name": "Ana"},  # keys in another order, most missing
    ]
    path = write_jsonl(tmp_path / f"pros{suffix}", rows)
    path.write_text(path.read_text(encoding="utf-8") + "\n   \n", encoding="utf-8")  # blank lines

    assert list(read_rows(path)) == rows
    info = scan(path)
    assert info.records == 2
    assert info.format == "jsonl"
    assert info.columns == (*rows[0], "license_number")  # every key, in the order first seen


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('{"first_name": "Ana", ', "line 3: not valid JSON"),
        ('["Ana", "Diaz"]', "line 3: expected a JSON object, got an array"),
        ("42", "line 3: expected a JSON object, got a number"),
        ("null", "line 3: expected a JSON object, got null"),
        ('"Ana"', "line 3: expected a JSON object, got a string"),
        ("true", "line 3: expected a JSON object, got true/false"),
        ('{"first_name": "Ana", "foo": 1, "bar": 2}', "line 3: unknown columns: foo, bar"),
    ],
)
def test_jsonl_bad_lines_are_named_by_number(tmp_path: Path, line: str, expected: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(f'{{"first_name": "A"}}\n\n{line}\n{{"first_name": "B"}}\n', encoding="utf-8")
    with pytest.raises(SourceError) as error:
        scan(path)
    assert message(error).startswith(f"{path} {expected}")


# --- all formats ---------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".sql"])
def test_a_missing_file_is_refused_at_once(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"nope{suffix}"
    with pytest.raises(SourceError) as error:
        read_rows(path)  # raises on the call, before any iteration
    assert message(error) == f"{path}: no such file"
    with pytest.raises(SourceError, match="no such file"):
        scan(path)


def test_an_unknown_suffix_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "pros.xyz"
    path.write_text("first_name\nAna\n", encoding="utf-8")
    with pytest.raises(SourceError) as error:
        scan(path)
    assert message(error) == f"{path}: unknown file type '.xyz'; expected .csv, .jsonl or .sql"
    assert source_format("a.CSV") == "csv"
    assert source_format("a.ndjson") == "jsonl"


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".sql"])
def test_bytes_that_are_not_utf8_are_named_by_line(tmp_path: Path, suffix: str) -> None:
    path = make_source(tmp_path, suffix, [record(i) for i in range(300)])  # well past a read block
    lines = path.read_bytes().splitlines(keepends=True)
    lines[200] = lines[200].replace(b"first_name", b"first\xffname")
    path.write_bytes(b"".join(lines))
    with pytest.raises(SourceError) as error:
        scan(path)
    assert message(error) == f"{path} line 201: not UTF-8 text"


READ_A_FILE = (
    "import sys; from estateflow_nb.errors import RefusedError; from estateflow_nb.sources import scan\n"
    "try:\n    scan(sys.argv[1])\nexcept RefusedError as error:\n    print(error)\n"
)


@pytest.mark.parametrize("kind", ["fifo", "device", "folder"])
@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".sql"])
def test_a_path_that_is_not_a_regular_file_is_refused_not_waited_on(tmp_path: Path, kind: str, suffix: str) -> None:
    """A FIFO never answers its open; /dev/zero never ends. Read in a child process, so that a reader
    that does wait fails this test (by its timeout) instead of holding up the suite."""
    path = tmp_path / f"pros{suffix}"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "device":
        path.symlink_to("/dev/zero")
    else:
        path.mkdir()
    done = subprocess.run(
        [sys.executable, "-c", READ_A_FILE, str(path)], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    said = {"fifo": "is a FIFO", "device": "is a device", "folder": "is a folder"}[kind]
    assert done.stdout == f"{path} {said}, not a file to read\n", done.stderr
    if kind == "fifo" and suffix == ".csv":
        command = [sys.executable, "-m", "estateflow_nb.cli", "import", str(path), "--db", str(tmp_path / "db")]
        refused = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=60)
        assert (refused.returncode, refused.stderr) == (2, f"Error: {path} is a FIFO, not a file to read\n")


def make_source(tmp_path: Path, suffix: str, rows: Sequence[dict[str, Any]], per_insert: int = 3) -> Path:
    path = tmp_path / f"pros{suffix}"
    if suffix == ".csv":
        return write_csv(path, rows)
    if suffix == ".jsonl":
        return write_jsonl(path, rows)
    return write_own_sql(path, rows, per_insert)


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".sql"])
def test_skip_discards_leading_records(tmp_path: Path, suffix: str) -> None:
    path = make_source(tmp_path, suffix, [record(i) for i in range(10)])
    everything = list(read_rows(path))

    assert [row["license_number"] for row in everything] == [f"license_number-{i}" for i in range(10)]
    assert list(read_rows(path, skip=4)) == everything[4:]
    assert list(read_rows(path, skip=10)) == []
    assert list(read_rows(path, skip=99)) == []
    with pytest.raises(ValueError):
        read_rows(path, skip=-1)


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".sql"])
def test_scan_counts_records_and_hashes_the_bytes(tmp_path: Path, suffix: str) -> None:
    path = make_source(tmp_path, suffix, [record(i) for i in range(7)])

    info = scan(str(path))

    assert isinstance(info, SourceInfo)
    assert info.path == path
    assert info.format == suffix[1:]
    assert info.records == 7
    assert info.sha256 == hashlib.sha256(path.read_bytes()).hexdigest() == file_sha256(path)
    assert info.ignored_tables == ()
    expected_columns = ("id", *STORED_COLUMNS) if suffix == ".sql" else RECORD_COLUMNS
    assert info.columns == expected_columns


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".sql"])
def test_rows_can_be_read_on_another_thread(tmp_path: Path, suffix: str) -> None:
    # The importer reads ahead in a background thread.
    path = make_source(tmp_path, suffix, [record(i) for i in range(5)])
    rows = read_rows(path)
    first = next(rows)
    rest: list[dict[str, Any]] = []
    reader = threading.Thread(target=lambda: rest.extend(rows))
    reader.start()
    reader.join()
    assert [first, *rest] == list(read_rows(path))


# --- SQL dumps -----------------------------------------------------------------------------------


@pytest.mark.skipif(SQLITE3_SHELL is None, reason="needs the sqlite3 command-line shell")
def test_a_dump_by_the_sqlite3_shell_reads_back_identical_values(tmp_path: Path) -> None:
    db_path = tmp_path / "source.db"
    db = sqlite3.connect(db_path)
    for statement in SCHEMA_STATEMENTS:
        db.execute(statement)
    rows = [
        {**record(1, **TRICKY), "rating": 4.5, "review_count": 3, "is_featured": 1},
        {**record(2), "company": None, "rating": None, "review_count": 0, "is_featured": 0},
    ]
    for row in rows:
        db.execute(
            f"INSERT INTO professionals ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
            tuple(row.values()),
        )
    # A second table, AUTOINCREMENT so that the dump carries the shell's sqlite_sequence lines.
    db.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT)")
    db.execute("INSERT INTO notes (body) VALUES ('not a professional'), ('nor this')")
    db.commit()
    db.row_factory = sqlite3.Row
    expected = [dict(row) for row in db.execute("SELECT * FROM professionals ORDER BY id")]
    db.close()
    dump = subprocess.run([str(SQLITE3_SHELL), str(db_path), ".dump"], check=True, capture_output=True).stdout
    path = tmp_path / "shell.sql"
    path.write_bytes(dump)
    assert b"char(10)" in dump  # the shell's way of writing a newline: a function call

    assert list(read_rows(path)) == expected
    info = scan(path)
    assert info.records == 2
    assert info.columns == ("id", *STORED_COLUMNS)
    assert "notes" in info.ignored_tables
    assert "professionals" not in info.ignored_tables


def test_our_own_sql_shape_creates_a_permissive_scratch_table(tmp_path: Path) -> None:
    rows = [
        record(1, **TRICKY),
        record(2, rating="not a number", review_count=-1),  # bad values reach validation
        # A line inside a string that ends with ';' must not end the statement.
        record(3, first_name="semi;\n;colon;", last_name="--not a comment", company="/* nor this */"),
    ]
    path = tmp_path / "own.sql"
    with path.open("w", encoding="utf-8", newline="") as f:
        f.write("-- generated\nBEGIN TRANSACTION;\n")
        f.write(insert_sql(rows[:2]))
        f.write(insert_sql(rows[2:]) * 2)  # the same statement twice yields its rows twice
        f.write(insert_sql([{"first_name": "Only", "email": "o@x.co"}], ["first_name", "email"]))
        f.write("COMMIT;\n")

    got = list(read_rows(path))

    assert len(got) == 5
    for row, want in zip(got[:4], [*rows, rows[2]], strict=True):
        assert {k: row[k] for k in RECORD_COLUMNS} == want
        assert row["id"] is None
    assert got[4]["first_name"] == "Only"
    assert got[4]["license_number"] is None
    assert scan(path).records == 5


def test_statements_on_one_line_and_comments_are_split_correctly(tmp_path: Path) -> None:
    path = tmp_path / "oneline.sql"
    path.write_text(
        "/* a header; with a semicolon */ BEGIN; INSERT INTO professionals (first_name) VALUES ('a;b');"
        " INSERT INTO professionals (first_name) VALUES ('c'); -- trailing; comment\nCOMMIT;",
        encoding="utf-8",
    )
    assert [row["first_name"] for row in read_rows(path)] == ["a;b", "c"]


def test_a_dump_with_its_own_table_keeps_it(tmp_path: Path) -> None:
    path = tmp_path / "own_table.sql"
    path.write_text(
        "CREATE TABLE professionals (email TEXT, first_name TEXT NOT NULL, rating REAL);\n"
        "INSERT INTO professionals VALUES ('a@b.co', 'Ana', 4), ('c@d.co', 'Bo', NULL);\n",
        encoding="utf-8",
    )
    assert list(read_rows(path)) == [
        {"email": "a@b.co", "first_name": "Ana", "rating": 4.0},
        {"email": "c@d.co", "first_name": "Bo", "rating": None},
    ]
    assert scan(path).columns == ("email", "first_name", "rating")


def test_a_dump_table_with_unknown_columns_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "odd.sql"
    path.write_text("\nCREATE TABLE professionals (email, foo, bar);\n", encoding="utf-8")
    with pytest.raises(SourceError) as error:
        scan(path)
    assert message(error) == f"{path} line 2: table professionals has unknown columns: foo, bar"


def test_a_dump_without_professionals_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.sql"
    path.write_text("CREATE TABLE notes (body);\nINSERT INTO notes VALUES ('x');\n", encoding="utf-8")
    with pytest.raises(SourceError, match="no professionals table"):
        scan(path)


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        ("INSERT INTO professionals (first_name) VALUEZ ('x');", 'near "VALUEZ": syntax error'),
        ("INSERT INTO professionals (first_name) VALUES ('x', 'y');", "2 values for 1 columns"),
        ("INSERT INTO professionals (first_name) VALUES ('x')", "does not end with ';'"),
    ],
)
def test_a_statement_sqlite_rejects_is_a_source_error_with_its_line(
    tmp_path: Path, statement: str, expected: str
) -> None:
    path = tmp_path / "broken.sql"
    path.write_text(f"CREATE TABLE professionals (first_name TEXT NOT NULL);\n\n{statement}\n", encoding="utf-8")
    with pytest.raises(SourceError) as error:
        scan(path)
    assert not isinstance(error.value, UnsafeDumpError)
    assert message(error).startswith(f"{path} line 3: ")
    assert expected in message(error)


GOOD_INSERT = "INSERT INTO professionals (first_name, license_number) VALUES ('Ana', 'L1'), ('Bo', 'L2');"
HOSTILE = [
    "DROP TABLE professionals;",
    "DELETE FROM professionals;",
    "UPDATE professionals SET first_name = 'x';",
    "ATTACH DATABASE '{tmp}/x.db' AS x;",
    "DETACH DATABASE x;",
    "PRAGMA writable_schema=1;",
    "CREATE TRIGGER t AFTER INSERT ON professionals BEGIN DELETE FROM professionals; END;",
    "CREATE VIEW v AS SELECT * FROM professionals;",
    "CREATE VIRTUAL TABLE v USING fts5(body);",
    "CREATE TEMP TABLE t (a);",
    "CREATE TABLE t AS SELECT * FROM professionals;",
    "VACUUM INTO '{tmp}/x.db';",
    "VACUUM;",
    "ALTER TABLE professionals ADD COLUMN x;",
    "INSERT INTO professionals (first_name) VALUES (load_extension('{tmp}/evil.so'));",
    "INSERT INTO professionals (first_name) VALUES (readfile('/etc/passwd'));",
    "INSERT INTO professionals (first_name) SELECT sql FROM sqlite_master;",
    "INSERT INTO sqlite_master VALUES ('table', 't', 't', 0, 'CREATE TABLE t (a)');",
    "SELECT 1;",
    "ANALYZE;",
    "REINDEX;",
    "SAVEPOINT s;",
    "ROLLBACK;",
    "WITH x AS (SELECT 1) INSERT INTO professionals (first_name) SELECT * FROM x;",
]


@pytest.mark.parametrize("statement", HOSTILE)
def test_hostile_statements_are_refused_by_name_and_line(tmp_path: Path, statement: str) -> None:
    statement = statement.format(tmp=tmp_path)
    path = tmp_path / "evil.sql"
    path.write_text(f"BEGIN TRANSACTION;\n{GOOD_INSERT}\n{statement}\nCOMMIT;\n", encoding="utf-8")

    with pytest.raises(UnsafeDumpError) as error:
        scan(path)

    text = message(error)
    assert text.startswith(f'{path} line 3: refused "{statement[:40]}')
    assert text.endswith("a dump may only create tables and insert rows")
    assert not (tmp_path / "x.db").exists()


@pytest.mark.parametrize("width", [79, 80, 81, 200])
def test_a_refused_statement_is_quoted_on_one_line_and_cut_past_80_characters(tmp_path: Path, width: int) -> None:
    head = "UPDATE professionals\n   SET first_name = '"
    statement = head + "x" * (width - len(" ".join(head.split())) - 2) + "';"
    shown = " ".join(statement.split())
    assert len(shown) == width
    path = tmp_path / "evil.sql"
    path.write_text(f"{GOOD_INSERT}\n{statement}\n", encoding="utf-8")
    with pytest.raises(UnsafeDumpError) as error:
        scan(path)
    excerpt = shown if width <= 80 else shown[:77] + "..."
    assert message(error) == f'{path} line 2: refused "{excerpt}": a dump may only create tables and insert rows'


def test_hostile_statements_after_many_good_rows_are_still_refused(tmp_path: Path) -> None:
    path = write_own_sql(tmp_path / "late.sql", [record(i) for i in range(3000)], per_insert=250)
    good = path.read_text(encoding="utf-8").removesuffix("COMMIT;\n")
    lines = good.count("\n")
    path.write_text(good + f"{GOOD_INSERT} VACUUM INTO '{tmp_path}/x.db';\nCOMMIT;\n", encoding="utf-8")

    with pytest.raises(UnsafeDumpError, match=f'line {lines + 1}: refused "VACUUM INTO'):
        scan(path)
    assert not (tmp_path / "x.db").exists()


def test_the_shell_functions_for_newlines_are_allowed(tmp_path: Path) -> None:
    path = tmp_path / "shell_strings.sql"
    path.write_text(
        "INSERT INTO professionals (first_name) VALUES (replace('a\\nb','\\n',char(10)));\n",
        encoding="utf-8",
    )
    assert [row["first_name"] for row in read_rows(path)] == ["a\nb"]


# --- memory --------------------------------------------------------------------------------------


def python_peak(path: Path) -> int:
    tracemalloc.start()
    try:
        deque(read_rows(path), maxlen=0)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".sql"])
def test_memory_does_not_grow_with_the_file(tmp_path: Path, suffix: str) -> None:
    path = make_source(tmp_path, suffix, [record(i, **TRICKY) for i in range(20_000)], per_insert=500)
    assert path.stat().st_size > 5_000_000
    # A dump is read a statement (here 500 rows, ~200 KB of SQL) at a time, held in a few copies.
    assert python_peak(path) < (4_000_000 if suffix == ".sql" else 1_000_000)


RSS_SCRIPT = """
import resource, sys
from collections import deque
from estateflow_nb.sources import read_rows
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
deque(read_rows(sys.argv[1]), maxlen=0)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
"""


def rss_growth_kb(path: Path) -> int:
    done = subprocess.run(
        [sys.executable, "-c", RSS_SCRIPT, str(path)], check=True, capture_output=True, text=True, cwd=ROOT
    )
    return int(done.stdout)


@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss is in kB on Linux")
def test_the_scratch_database_does_not_keep_rows(tmp_path: Path) -> None:
    # tracemalloc does not see SQLite's own memory: compare peak RSS for 5k and 50k rows instead.
    # Keeping the 50k rows (~20 MB of SQL) in the scratch database would add well over 20 MB.
    small = write_own_sql(tmp_path / "small.sql", [record(i, **TRICKY) for i in range(5_000)])
    large = write_own_sql(tmp_path / "large.sql", [record(i, **TRICKY) for i in range(50_000)])
    assert rss_growth_kb(large) - rss_growth_kb(small) < 8_000


def test_scan_can_stop_counting_early_and_estimate(tmp_path: Path) -> None:
    from estateflow_nb.generate import write_records

    for suffix in (".csv", ".jsonl"):
        path = write_records(tmp_path / f"p{suffix}", 50)
        early = scan(path, count_up_to=10)
        assert (early.records, early.exact) == (50, False)
        assert early.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
        assert (scan(path, count_up_to=50).records, scan(path, count_up_to=50).exact) == (50, True)
    dump = write_records(tmp_path / "p.sql", 50)
    assert (scan(dump, count_up_to=10).records, scan(dump, count_up_to=10).exact) == (50, True)


# --- a range of records (a rung of a climb) -------------------------------------------------------


def test_a_range_knows_its_last_record_and_cuts_a_files_count_to_itself(tmp_path: Path) -> None:
    info = SourceInfo(tmp_path / "p.csv", "csv", 100, "0" * 64, ("email",))
    assert (Span(1, 10).last, Span(91, 10).last, Span(5, None).last, Span(5, 0).last) == (10, 100, None, 4)
    assert [Span(*where).of(info).records for where in ((1, 10), (91, 10), (95, 10), (101, 5), (120, 5))] == [
        10,
        10,
        6,
        0,
        0,
    ]
    assert (Span(1, None).of(info).records, Span(100, None).of(info).records, Span(101, None).of(info).records) == (
        100,
        1,
        0,
    )
    estimate = SourceInfo(tmp_path / "p.csv", "csv", 100, "0" * 64, ("email",), exact=False)
    assert Span(95, 10).of(estimate).records == 10  # an estimate cannot cut it short
    assert Span(95, 10).of(info).path == info.path and Span(95, 10).of(info).sha256 == info.sha256


@pytest.mark.parametrize("where", [(0, 5), (1, -1), (1, 5, -1)])
def test_a_range_that_cannot_be_is_refused(where: tuple[int, ...]) -> None:
    with pytest.raises(
        RefusedError, match=r"^a range of records starts at record 1 or later and holds 0 or more: not "
    ):
        Span(*where)


def test_the_edges_of_a_range_are_allowed() -> None:
    assert Span(1, 0, 0) == Span(first=1, records=0, offset=0)


def test_an_empty_or_unprintable_column_name_is_named_so_it_can_be_read(tmp_path: Path) -> None:
    path = tmp_path / "blank.csv"
    path.write_text("first_name,,email\nAna,x,a@b.co\n", encoding="utf-8")
    with pytest.raises(SourceError) as error:
        scan(path)
    assert message(error) == f'{path} line 1: unknown columns: ""'
    odd = tmp_path / "odd.jsonl"
    odd.write_text('{"first_name": "Ana", "\\ud800x": 1}\n', encoding="utf-8")
    with pytest.raises(SourceError) as error:
        scan(odd)
    assert message(error) == f"{odd} line 1: unknown columns: \\ud800x"


def test_text_that_fails_to_decode_is_named_by_its_line_or_else_by_its_file(tmp_path: Path) -> None:
    from estateflow_nb.sources import _not_utf8

    path = tmp_path / "p.csv"
    path.write_bytes(b"first_name\nAna\nB\xffo\n")
    assert str(_not_utf8(path)) == f"{path} line 3: not UTF-8 text"
    path.write_bytes(b"first_name\nAna\n")  # no line of it fails alone: the file is named
    assert str(_not_utf8(path)) == f"{path}: not UTF-8 text"


def test_a_refused_statement_is_quoted_printably_whatever_it_holds() -> None:
    from estateflow_nb.sources import _excerpt

    assert _excerpt("INSERT  INTO\n p VALUES ('a\ud800b');") == "INSERT INTO p VALUES ('a\\ud800b');"


def test_other_tables_of_a_dump_are_listed_once_whatever_their_case(tmp_path: Path) -> None:
    path = tmp_path / "more.sql"
    path.write_text(
        "CREATE TABLE notes (body);\nCREATE TABLE Notes (body);\nCREATE TABLE tags (t);\n"
        "CREATE TABLE professionals (first_name);\nINSERT INTO professionals VALUES ('Ana');\n",
        encoding="utf-8",
    )
    assert scan(path).ignored_tables == ("notes", "tags")


def test_statements_are_found_on_their_own_lines_and_the_last_one_may_end_in_a_comment(tmp_path: Path) -> None:
    path = tmp_path / "lines.sql"
    path.write_text(
        "\n\nBEGIN; INSERT INTO professionals (first_name)\nVALUES ('a'); INSERT INTO professionals (first_name)\n"
        "VALUES ('b'),\n('c');--the end",
        encoding="utf-8",
    )
    assert [row["first_name"] for row in read_rows(path)] == ["a", "b", "c"]
    path.write_text(
        "BEGIN; INSERT INTO professionals (first_name)\nVALUES ('a'); DROP TABLE professionals;\nCOMMIT;\n",
        encoding="utf-8",
    )
    with pytest.raises(UnsafeDumpError) as error:
        scan(path)
    assert message(error).startswith(f'{path} line 2: refused "DROP TABLE professionals;"')
