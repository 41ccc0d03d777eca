"""Values that do not fit are rejects, not crashes: each lands in the rejects file with its reason, the
import goes on, and the rejects file can always be written."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

from estateflow_nb import connect, generate_records, import_file, importer
from estateflow_nb.schema import RECORD_COLUMNS

from .conftest import invoke, write_csv

DEEP = 100_000

# (column, JSON text of the value, the reason's start)
JSON_VALUES = [
    ("review_count", str(10**30), "review_count: 1000000000000000000000000000000 is more than"),
    ("review_count", "1e20", "review_count: 1e+20 is more than"),
    ("rating", "1" + "0" * 400, "rating: 1000000000"),
    ("rating", "1e309", "rating: inf is outside"),
    ("review_count", "9" * 5000, "record: a number with more than 4,300 digits (line "),
    ("first_name", '"\\ud800"', "first_name: not valid Unicode text"),
    ("last_name", '"a\\udfffb"', "last_name: not valid Unicode text"),
    ("company", "[" * DEEP + "]" * DEEP, "record: JSON nested too deeply to read (line "),
    ("company", "[" * 900 + "]" * 900, "company: expected text, got list"),
    ("rating", '"\uff15"', "rating: '５' is not a number in ASCII digits"),
    ("rating", '"\u0663"', "rating: '٣' is not a number in ASCII digits"),
    ("review_count", '"1_000"', "review_count: '1_000' is not a number in ASCII digits"),
    ("review_count", '"\u0661\u0662"', "review_count: '١٢' is not a number in ASCII digits"),
]


def jsonl_with(tmp_path: Path, odd: list[tuple[str, str, str]], good: int = 5) -> Path:
    """Good records, then one record per odd value (the value spliced in as JSON text)."""
    records = list(generate_records(good + len(odd), seed=11))
    lines = [json.dumps(r) for r in records[:good]]
    for (column, text, _), record in zip(odd, records[good:], strict=True):
        record.pop(column, None)
        lines.append(json.dumps(record)[:-1] + f', "{column}": {text}}}')
    path = tmp_path / "odd.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def rejects_of(path: str) -> list[dict[str, str]]:
    # Strict UTF-8: the file must be readable as written, whatever the records held.
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(params=["in this process", "in the reader process"])
def reader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both ways records are read: here, and in the child process big files use."""
    if request.param == "in the reader process":
        monkeypatch.setattr(importer, "SUBPROCESS_MIN_RECORDS", 1)
    return str(request.param)


def test_every_value_that_does_not_fit_is_a_reject_with_its_reason(tmp_path: Path, reader: str) -> None:
    path = jsonl_with(tmp_path, JSON_VALUES)
    with connect(f"sqlite:///{tmp_path / 'db.sqlite'}", create=True) as target:
        result = import_file(target, path, batch_size=4)
        assert result.status == "completed" and target.scalar("SELECT COUNT(*) FROM professionals") == 5
    assert (result.inserted, result.rejected) == (5, len(JSON_VALUES))
    assert result.rejects_path is not None
    rejected = rejects_of(result.rejects_path)
    assert [row["record"] for row in rejected] == [str(n) for n in range(6, 6 + len(JSON_VALUES))]
    for row, (_, _, reason) in zip(rejected, JSON_VALUES, strict=True):
        assert row["reason"].startswith(reason), (row["reason"], reason)
    # The lone surrogate is kept, escaped, beside its reason: nothing is lost.
    assert rejected[5]["first_name"] == "\\ud800"


def test_csv_numbers_in_other_digits_and_too_long_fields_are_rejects(tmp_path: Path, reader: str) -> None:
    rows = list(generate_records(8, seed=5))
    rows[1]["rating"] = "４.５"
    rows[2]["review_count"] = "1_000"
    rows[3]["rating"] = "1" + "0" * 400
    rows[4]["review_count"] = "7" * 5000
    rows[5]["company"] = "x" * 200_000  # past Python's csv field limit (128 KiB): one record, not the file
    rows[6]["city"] = 'quoted, "and" long\n' * 10_000
    path = write_csv(tmp_path / "odd.csv", rows)
    with connect(f"sqlite:///{tmp_path / 'db.sqlite'}", create=True) as target:
        result = import_file(target, path)
    assert (result.inserted, result.rejected) == (2, 6)
    assert result.rejects_path is not None
    reasons = [row["reason"] for row in rejects_of(result.rejects_path)]
    assert reasons[0].startswith("rating: '４.５' is not a number in ASCII digits")
    assert reasons[1].startswith("review_count: '1_000' is not a number in ASCII digits")
    assert reasons[2].startswith("rating: '1000000000") and "is outside 1.0 to 5.0" in reasons[2]
    assert reasons[3].startswith("review_count: '7777") and "is not a whole number" in reasons[3]
    assert reasons[4] == "company: 200,000 characters, more than 10,000"
    assert reasons[5].startswith("city: ") and "more than 10,000" in reasons[5]


def test_the_command_line_finishes_and_a_second_run_adds_nothing(tmp_path: Path) -> None:
    path = jsonl_with(tmp_path, JSON_VALUES)
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    done = invoke("import", str(path), "--db", url, "--json", "--max-reject-rate", "1", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    summary: dict[str, Any] = json.loads(done.stdout)
    assert (summary["inserted"], summary["rejected"], summary["status"]) == (5, len(JSON_VALUES), "completed")
    again = invoke("import", str(path), "--db", url, "--json", "--no-resume", "--max-reject-rate", "1", cwd=tmp_path)
    again = json.loads(again.stdout)
    assert (again["inserted"], again["skipped"], again["rejected"]) == (0, 5, len(JSON_VALUES))


def test_a_dump_with_values_past_64_bits_is_read_and_rejected(tmp_path: Path) -> None:
    """SQLite reads an integer literal past 64 bits as a float; a review count that large is a reject."""
    record = next(iter(generate_records(1, seed=2)))
    values = ", ".join(
        "99999999999999999999999" if c == "review_count" else "'" + str(record[c]).replace("'", "''") + "'"
        for c in RECORD_COLUMNS
    )
    path = tmp_path / "big.sql"
    path.write_text(f"INSERT INTO professionals ({', '.join(RECORD_COLUMNS)}) VALUES ({values});\n", encoding="utf-8")
    with connect(f"sqlite:///{tmp_path / 'db.sqlite'}", create=True) as target:
        result = import_file(target, path)
    assert (result.inserted, result.rejected) == (0, 1)
    assert result.rejects_path is not None
    assert rejects_of(result.rejects_path)[0]["reason"].startswith("review_count: 1e+23 is more than")
