"""A property of every import of CSV and JSON Lines records: any unicode, numbers of any size and form,
missing and extra fields. The import ends with exit 0 or 1, never a traceback; when it ends with 0,
every record is in the table or in the rejects file, exactly once; when it ends with 1, the file was
refused whole and nothing was written."""

from __future__ import annotations

import csv
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from estateflow_nb import connect, importer
from estateflow_nb.schema import RECORD_COLUMNS

from .conftest import invoke

GOOD = {
    "first_name": "Ana",
    "last_name": "Diaz",
    "email": "ana@example.com",
    "industry": "legal",
    "state": "FL",
    "city": "Miami",
}
DIGITS = "0123456789"
# Numbers of every form: ASCII and other scripts' digits, signs, exponents, underscores, and lengths
# from one digit to past Python's 4,300-digit limit, written as text (CSV) or as JSON numbers.
number_text = st.one_of(
    st.integers().map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(DIGITS, min_size=1, max_size=30),
    st.text(DIGITS, min_size=300, max_size=400),
    st.text(DIGITS, min_size=4_301, max_size=4_400),
    st.builds(lambda a, b: f"{a}e{b}", st.integers(-5, 5), st.integers(-400, 400)),
    st.sampled_from(["１２", "٣", "1_000", " 4 ", "+3", "-0", "0x10", "nan", "inf", "1e309", "4.5.6", ""]),
)
# A JSON number must be JSON: digits, one sign, a fraction and an exponent.
json_number = st.one_of(
    st.integers().map(str),
    st.text(DIGITS, min_size=300, max_size=400).map(lambda d: "1" + d),
    st.text(DIGITS, min_size=4_301, max_size=4_400).map(lambda d: "9" + d),
    st.builds(lambda a, b: f"{a}e{b}", st.integers(-5, 5), st.integers(-400, 400)),
    st.builds(lambda a, b: f"{a}.{b}", st.integers(0, 9), st.text(DIGITS, min_size=1, max_size=20)),
)


@st.composite
def records(draw: st.DrawFn, *, jsonl: bool) -> dict[str, Any]:
    """One record: some columns good, some any text, numbers, missing; as (column -> JSON text) for
    JSON Lines, (column -> text) for CSV. Unicode for CSV leaves out lone surrogates: a UTF-8 file
    cannot hold them; JSON escapes them."""
    text = st.text(alphabet=st.characters(exclude_categories=() if jsonl else ("Cs",)), max_size=40)
    record: dict[str, Any] = {}
    for column in RECORD_COLUMNS:
        choice = draw(st.sampled_from(["good", "good", "text", "number", "missing"]))
        if choice == "missing":
            continue
        if choice == "good" and column in GOOD:
            value: Any = GOOD[column]
        elif choice == "number" or column in ("rating", "review_count"):
            value = draw(json_number if jsonl else number_text)
            value = ("#raw", value) if jsonl else value
        else:
            value = draw(text)
        record[column] = value
    return record


def json_line(record: dict[str, Any], license_number: str) -> str:
    parts = [f"{json.dumps('license_number')}: {json.dumps(license_number)}"]
    for column, value in record.items():
        if column == "license_number":
            continue
        text = value[1] if isinstance(value, tuple) else json.dumps(value)  # raw numbers of any length
        parts.append(f"{json.dumps(column)}: {text}")
    return "{" + ", ".join(parts) + "}"


def write_source(folder: Path, rows: list[dict[str, Any]], jsonl: bool, extra: bool) -> tuple[Path, list[str]]:
    """The file, and each record's license number (unique by construction, so no record is a duplicate)."""
    licenses = [f"LIC-{i:05d}" for i in range(len(rows))]
    if jsonl:
        path = folder / "records.jsonl"
        lines = [json_line(row, lic) for row, lic in zip(rows, licenses, strict=True)]
        if extra:
            lines[-1] = lines[-1][:-1] + ', "shoe_size": 9}'
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path, licenses
    path = folder / "records.csv"
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(RECORD_COLUMNS)
        for row, lic in zip(rows, licenses, strict=True):
            cells = [lic if c == "license_number" else row.get(c, "") for c in RECORD_COLUMNS]
            writer.writerow(cells + (["extra"] if extra and row is rows[-1] else []))
    return path, licenses


@settings(
    max_examples=int(os.environ.get("PROPERTY_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    st.booleans().flatmap(
        lambda jsonl: st.tuples(
            st.just(jsonl),
            st.lists(records(jsonl=jsonl), min_size=1, max_size=12),
            st.sampled_from([False] * 7 + [True]),  # extra fields, now and then
            st.booleans(),  # read in the child process big files use, or here
        )
    )
)
def test_every_record_lands_in_the_table_or_the_rejects_file_exactly_once(
    case: tuple[bool, list[dict[str, Any]], bool, bool],
) -> None:
    jsonl, rows, extra, in_child = case
    with tempfile.TemporaryDirectory() as work:
        folder = Path(work)
        path, licenses = write_source(folder, rows, jsonl, extra)
        url = f"sqlite:///{folder / 'db.sqlite'}"
        saved = importer.SUBPROCESS_MIN_RECORDS
        importer.SUBPROCESS_MIN_RECORDS = 1 if in_child else saved
        try:
            # Any share of rejects passes the verdict here: this is about where each record goes.
            done = invoke("import", str(path), "--db", url, "--json", "--max-reject-rate", "1", cwd=folder)
        finally:
            importer.SUBPROCESS_MIN_RECORDS = saved
        assert done.returncode in (0, 1), (done.returncode, done.stderr)
        assert "Traceback" not in done.stderr
        rejects = sorted(folder.glob("*.rejects.csv"))
        with connect(url) as target:
            stored = {r["license_number"] for r in target.query("SELECT license_number FROM professionals")}
        if done.returncode == 1:
            assert extra and len(done.stderr.splitlines()) == 1
            assert "unknown columns: shoe_size" in done.stderr or "fields but the header has" in done.stderr
            assert stored == set() and rejects == []
            return
        summary = json.loads(done.stdout)
        rejected: list[int] = []
        for file in rejects:
            with file.open(encoding="utf-8", newline="") as f:  # strict UTF-8: always readable
                rejected += [int(row["record"]) for row in csv.DictReader(f)]
        assert len(rejected) == len(set(rejected)) == summary["rejected"]
        for number, license_number in enumerate(licenses, 1):
            assert (license_number in stored) != (number in rejected), (number, license_number)
        assert len(stored) + len(rejected) == len(rows) == summary["inserted"] + summary["rejected"]
