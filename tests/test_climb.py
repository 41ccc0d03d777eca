"""Climbing one file (issue 12): rungs of 10, 100, 1,000 and 10,000 records then the rest, each its
own import with its range in the ledger, verified and judged after each; a failed rung undone after a
backup; the same command continuing after the last rung that passed; the plan; reading each rung from
where the one before ended; the same on the local D1 engine."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from estateflow_nb import (
    Climb,
    RefusedError,
    Span,
    climb,
    connect,
    file_sha256,
    generate_records,
    parse_steps,
    read_rows,
    write_records,
)
from estateflow_nb._batches import read_batches_in_subprocess, read_span_batches
from estateflow_nb._offsets import read_span
from estateflow_nb._testing import KILL_HOOK_ENV
from estateflow_nb.schema import RECORD_COLUMNS
from estateflow_nb.targets import Sql, Target

from .conftest import CLI, ROOT, count, invoke, ledger_balances, write_csv

RANGES = "SELECT first_record, last_record, start_offset, end_offset, status, rung_verdict, checkpoint, inserted,"
RANGES += " skipped, rejected, source_sha256 FROM ef_imports ORDER BY first_record, started_at"


def ledger(target: Target) -> list[dict[str, Any]]:
    return target.query(RANGES)


def with_bad(path: Path, n: int, bad: range, *, seed: int = 5) -> Path:
    """`n` generated records as CSV, the emails of records `bad` (0-based) broken."""
    rows = list(generate_records(n, seed=seed))
    for i in bad:
        rows[i]["email"] = rows[i]["email"].replace("@", " at ")
    return write_csv(path, rows)


def records_of(target: Target) -> dict[str, tuple[Any, ...]]:
    """The table as a climb leaves it, whatever the import ids: license -> the record's own columns."""
    rows = target.query(f"SELECT {', '.join(RECORD_COLUMNS)} FROM professionals")
    return {row["license_number"]: tuple(row.values()) for row in rows}


# --- a whole file of 25,000 records ---------------------------------------------------------------------


def test_a_file_of_25000_records_climbs_in_five_rungs(tmp_path: Path) -> None:
    """The one climb of 25,000 records: five rungs, each its own import with its range, its offsets and
    the file's SHA-256, verified after each; every row once; the same command again has nothing to do."""
    source = write_records(tmp_path / "agents.csv", 25_000)
    url = f"sqlite:///{tmp_path / 'climb.db'}"
    args = ["ladder", str(source), "--db", url, "--yes", "--no-benchmarks", "--runs", "1"]
    done = invoke(*args, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    said = done.stderr.splitlines()
    assert [line.split(":")[0] for line in said] == [
        "rung 1 (records 1 to 10)",
        "rung 2 (records 11 to 110)",
        "rung 3 (records 111 to 1,110)",
        "rung 4 (records 1,111 to 11,110)",
        "rung 5 (records 11,111 to 25,000)",
    ]
    assert all(line.endswith("verified: pass") or line.endswith("verified: below target") for line in said)
    assert done.stdout.splitlines()[-1] == "Climb passed: 25,000 records in 5 rungs, each verified."
    with connect(url) as target:
        rows = ledger(target)
        assert [(r["first_record"], r["last_record"]) for r in rows] == [
            (1, 10),
            (11, 110),
            (111, 1110),
            (1111, 11110),
            (11111, 25000),
        ]
        assert [r["checkpoint"] for r in rows] == [r["inserted"] for r in rows] == [10, 100, 1000, 10000, 13890]
        assert {(r["status"], r["rung_verdict"], r["source_sha256"]) for r in rows} == {
            ("completed", "passed", file_sha256(source))
        }
        # Each rung started reading where the one before ended; the last ended at the end of the file.
        assert [r["start_offset"] for r in rows[1:]] == [r["end_offset"] for r in rows[:-1]]
        assert rows[-1]["end_offset"] == source.stat().st_size
        assert count(target) == 25_000 == count(target, "SELECT COUNT(DISTINCT license_number) FROM professionals")
        assert ledger_balances(target)
        assert count(target, "SELECT COUNT(*) FROM ef_verifications") == 5  # one verification after each rung
        assert all(h["verdict"] == "PASSED" for h in target.query("SELECT verdict FROM ef_verifications"))
    again = invoke(*args, "--json", cwd=tmp_path)
    data = json.loads(again.stdout)
    assert again.returncode == 0 and data["verdict"] == "NOTHING NEW" and data["rungs"] == []
    with connect(url) as target:
        assert count(target, "SELECT COUNT(*) FROM ef_imports") == 5


# --- a rung that fails ------------------------------------------------------------------------------------


def test_a_file_that_turns_bad_inside_the_fourth_rung(tmp_path: Path) -> None:
    """The climb stops at rung 4, undoes it after a backup, keeps rungs 1 to 3 (1,110 rows), exits 1 and
    says why and what next; run again it goes on from rung 4; once the file is fixed it climbs to the top."""
    source = with_bad(tmp_path / "agents.csv", 12_000, range(5_000, 5_150))  # 150 of rung 4's 10,000
    url = f"sqlite:///{tmp_path / 'climb.db'}"
    args = ["ladder", str(source), "--db", url, "--yes", "--no-benchmarks", "--runs", "1"]
    failed = invoke(*args, cwd=tmp_path)
    assert failed.returncode == 1
    out = " ".join(failed.stdout.split())  # lines wrapped at 100 characters, read as one
    assert "FAILED at rung 4 (records 1,111 to 11,110):" in out
    assert "150 of its 10,000 records (1.5%) were rejected, over the limit of 1% (--max-reject-rate)" in out
    assert "reasons: 150 x email is not a valid address" in out
    with connect(url) as target:
        rows = ledger(target)
        assert count(target) == 1_110 and ledger_balances(target)
        (undone,) = target.query("SELECT * FROM ef_imports WHERE status = 'rolled_back'")
        (rollback,) = target.query("SELECT * FROM ef_rollbacks")
    assert [(r["first_record"], r["status"], r["rung_verdict"]) for r in rows] == [
        (1, "completed", "passed"),
        (11, "completed", "passed"),
        (111, "completed", "passed"),
        (1111, "rolled_back", "too many rejects"),
    ]
    assert (undone["inserted"], undone["removed"], undone["rejected"]) == (9_850, 9_850, 150)
    assert f"rejects file: {undone['rejects_path']}" in out
    with open(undone["rejects_path"], newline="", encoding="utf-8") as f:  # numbered as in the file
        assert [int(r["record"]) for r in csv.DictReader(f)] == list(range(5_001, 5_151))
    assert (tmp_path / rollback["backup_path"]).is_file() and rollback["backup_path"] in out
    assert f"Undone: import {undone['id']} rolled back ({rollback['id']}, 9,850 rows removed)" in out
    assert "rungs 1 to 3 stay" in out
    assert "Next: fix records 1,111 to 11,110 of" in out and "--max-reject-rate" in out
    assert "it continues after rung 3 (record 1,110)" in out

    again = invoke(*args, "--json", cwd=tmp_path)  # the file unchanged: rung 4 again, and only it
    data = json.loads(again.stdout)
    assert again.returncode == 1 and data["verdict"] == "FAILED" and data["failed"] == 4
    assert [r["number"] for r in data["rungs"]] == [4] and data["undone"]["rows_removed"] == 9_850

    with_bad(source, 12_000, range(0))  # fixed
    fixed = invoke(*args, cwd=tmp_path)
    assert fixed.returncode == 0, fixed.stdout
    assert "continuing after rung 3 (records 1 to 1,110 passed before)" in fixed.stdout
    assert "changed since rung 3 passed" in fixed.stdout and "records already present are skipped" in fixed.stdout
    with connect(url) as target:
        assert count(target) == 12_000 and ledger_balances(target)
        passed = target.query(RANGES.replace("ORDER BY", "WHERE rung_verdict = 'passed' ORDER BY"))
        assert [(r["first_record"], r["last_record"]) for r in passed] == [
            (1, 10),
            (11, 110),
            (111, 1110),
            (1111, 11110),
            (11111, 12000),
        ]
        assert passed[3]["start_offset"] is None  # a changed file: found by counting, not by an old offset


def test_a_rung_whose_verification_fails_is_undone_and_says_which_checks(tmp_path: Path) -> None:
    source = write_records(tmp_path / "agents.csv", 300)
    with connect(f"sqlite:///{tmp_path / 'climb.db'}", create=True) as target:

        def a_row_nobody_imported(step: Any) -> None:
            if step.number == 2:  # the total count check fails from the next verification on
                target.execute(
                    [
                        Sql(
                            "INSERT INTO professionals (first_name, last_name, email, license_number, industry,"
                            " state, city, created_at, updated_at) VALUES ('A', 'B', 'a@b.co', 'HAND-1', 'legal',"
                            " 'TX', 'Austin', 'x', 'x')"
                        )
                    ]
                )

        result = climb(
            target, source, steps="10,100", benchmarks=False, backups_dir=tmp_path / "b", on_rung=a_row_nobody_imported
        )
        assert count(target) == 110 + 1
    assert result.verdict == "FAILED" and not result.passed and result.failed is not None
    assert [s.verdict for s in result.rungs] == ["pass", "pass", "verification failed"]
    assert (result.failed.number, result.failed.first_record, result.failed.last_record) == (3, 111, 300)
    assert result.undo is not None and Path(str(result.undo.backup_path)).is_file()
    assert result.why[0] == "the verification after it FAILED:"
    assert result.why[1].startswith("  check total_count failed:")
    assert result.next.startswith("see what failed (`estateflow verify` shows the failing values")
    text = result.table()
    assert "FAILED at rung 3 (records 111 to 300):" in text and "check total_count failed" in text


def test_a_file_that_cannot_be_read_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    source = write_records(tmp_path / "agents.csv", 400)
    lines = source.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[250] = lines[250].rstrip("\r\n") + ",one too many\r\n"  # record 250, on line 251
    source.write_text("".join(lines), encoding="utf-8", newline="")
    url = f"sqlite:///{tmp_path / 'climb.db'}"
    done = invoke("ladder", str(source), "--db", url, "--rungs", "10,100", "--no-benchmarks", cwd=tmp_path)
    assert done.returncode == 1 and "agents.csv line 251: 17 fields but the header has 16" in done.stderr
    with connect(url) as target:
        assert count(target, "SELECT COUNT(*) FROM ef_imports") == 0


def test_a_rung_that_cannot_be_read_is_undone_and_names_the_files_line(tmp_path: Path) -> None:
    """A file read in part by its scan (past 100,000 records) can break inside a rung: stood in for here
    by a file changed under the climb, same size and time. The rung is undone; the line is the file's."""
    source = write_records(tmp_path / "agents.csv", 400)
    with connect(f"sqlite:///{tmp_path / 'climb.db'}", create=True) as target:
        climbing = Climb(target, source, steps=(10, 100), benchmarks=False, backups_dir=tmp_path / "b")
        assert climbing.next_rung() is not None and climbing.next_rung() is not None
        before = source.stat()
        data = bytearray(source.read_bytes())
        line = data.splitlines(keepends=True)
        at = sum(len(x) for x in line[:250]) + line[250].index(b"@")  # record 250, line 251
        data[at - 1 : at] = b","
        source.write_bytes(bytes(data))
        os.utime(source, ns=(before.st_atime_ns, before.st_mtime_ns))
        step = climbing.next_rung()
        assert step is not None and step.verdict == "import failed" and count(target) == 110
        result = climbing.result
    assert result.verdict == "FAILED" and result.undo is not None and result.failed is step
    assert result.why[0].startswith("its import stopped: ") and "agents.csv line 251: 17 fields" in result.why[0]
    assert result.next.startswith("fix ") and "where the error above says" in result.next
    assert "it continues after rung 2 (record 110)" in result.next


# --- killed and run again --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """A file of 3,000 records (4 of them rejected, one in rung 4's second batch) climbed in rungs of 10,
    100 and 1,000 then 1,890 (two batches), without interruption: what every killed climb must end as."""
    folder = tmp_path_factory.mktemp("uninterrupted")
    rows = list(generate_records(3_000, seed=8))
    for bad in (50, 500, 1_200, 2_500):
        rows[bad]["rating"] = 9.5
    source = write_csv(folder / "agents.csv", rows)
    with connect(f"sqlite:///{folder / 'clean.db'}", create=True) as target:
        result = climb(target, source, steps="10,100,1000", yes=True, benchmarks=False, max_reject_rate=0.01)
        assert result.passed
        return source, outcome(target)


def outcome(target: Target) -> dict[str, Any]:
    """What a climb leaves: the records, the ledger's ranges and counts, the rejects' numbers, the verifications."""
    shape = [
        {
            k: r[k]
            for k in ("first_record", "last_record", "status", "rung_verdict", "checkpoint", "inserted", "rejected")
        }
        for r in ledger(target)
    ]
    rejects = []
    for row in target.query("SELECT rejects_path FROM ef_imports WHERE rejected > 0 ORDER BY first_record"):
        with open(row["rejects_path"], newline="", encoding="utf-8") as f:
            rejects.append([(r["record"], r["reason"]) for r in csv.DictReader(f)])
    offsets = [(r["start_offset"], r["end_offset"]) for r in ledger(target)]
    return {
        "records": records_of(target),
        "ledger": shape,
        "rejects": rejects,
        "offsets": offsets,
        "verified": count(target, "SELECT COUNT(*) FROM ef_verifications"),
        "balanced": ledger_balances(target),
    }


@pytest.mark.parametrize("kill_at", ["1:after", "2:before", "judge-3:after"])
def test_a_climb_killed_and_run_again_ends_as_an_uninterrupted_one(
    kill_at: str, tmp_path: Path, uninterrupted: tuple[Path, dict[str, Any]]
) -> None:
    """Killed after rung 1's batch is in (before its import finished), inside rung 4's second batch, or
    between rung 3's import and its verification: the same command finishes the climb exactly."""
    source, expected = uninterrupted
    url = f"sqlite:///{tmp_path / 'killed.db'}"
    command = [*CLI, "ladder", str(source), "--db", url, "--rungs", "10,100,1000", "--yes", "--no-benchmarks"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), KILL_HOOK_ENV: kill_at, "ESTATEFLOW_BACKUPS": str(tmp_path / "b")}
    killed = subprocess.run(command, env=env, capture_output=True, text=True, cwd=tmp_path)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    del env[KILL_HOOK_ENV]
    resumed = subprocess.run(command, env=env, capture_output=True, text=True, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "Climb passed" in resumed.stdout
    with connect(url) as target:
        assert outcome(target) == expected


# --- the plan, the rungs' sizes and the safety rules ------------------------------------------------------


def test_a_dry_run_shows_the_plan_and_writes_nothing(tmp_path: Path) -> None:
    source = with_bad(tmp_path / "agents.csv", 1_500, range(200, 230))  # 30 of rung 3's 1,000: 3%
    url = f"sqlite:///{tmp_path / 'climb.db'}"
    shown = invoke("ladder", str(source), "--db", url, "--dry-run", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    top = lines.index(next(line for line in lines if line.startswith("rung  range")))
    # The header wraps where the (temporary) path's length puts it: read it as one line of words.
    header = " ".join(" ".join(lines[:top]).split())
    assert lines[0].startswith("Plan: climb ") and "(1,500 records, SHA-256 " in header
    assert [line.split()[:5] for line in lines[top + 2 : top + 6]] == [
        ["1", "1", "to", "10", "10"],
        ["2", "11", "to", "110", "100"],
        ["3", "111", "to", "1,110", "1,000"],
        ["4", "1,111", "to", "1,500", "390"],
    ]
    assert "30 (3.0%) OVER" in lines[top + 4]
    assert "rung 3 would fail: 3.0% rejected, over the limit of 1% (30 x email)" in " ".join(shown.stdout.split())
    assert lines[-1] == "Dry run: nothing was written."
    plan = json.loads(invoke("ladder", str(source), "--db", url, "--dry-run", "--json", cwd=tmp_path).stdout)
    assert plan["verdict"] == "DRY RUN" and plan["plan"]["records"] == 1_500
    assert [r["predicted"]["rejected"] for r in plan["plan"]["rungs"]] == [0, 0, 30, 0]
    assert [r["predicted"]["inserted"] for r in plan["plan"]["rungs"]] == [10, 100, 970, 390]
    with connect(url) as target:
        assert count(target, "SELECT COUNT(*) FROM ef_imports") == 0 and count(target) == 0


def test_rung_sizes_and_the_safety_rules(tmp_path: Path) -> None:
    assert parse_steps("10, 100,1_000") == (10, 100, 1000)
    for bad in ("", "10,x", "10,0", "-5"):
        with pytest.raises(RefusedError):
            parse_steps(bad)
    source = write_records(tmp_path / "agents.csv", 10_050)
    url = f"sqlite:///{tmp_path / 'climb.db'}"
    refused = invoke("ladder", str(source), "--db", url, "--rungs", "50", cwd=tmp_path)
    assert refused.returncode == 2 and "rung 2 (10,000 records): large imports" in refused.stderr
    assert "--yes" in refused.stderr
    bad = invoke("ladder", str(source), "--db", url, "--rungs", "10,none", cwd=tmp_path)
    assert bad.returncode == 2 and "rungs are record counts" in bad.stderr
    several = invoke("ladder", str(source), str(source), "--db", url, "--rungs", "10", cwd=tmp_path)
    assert several.returncode == 2 and "--rungs is for climbing one FILE" in several.stderr
    with connect(url) as target:
        assert count(target, "SELECT COUNT(*) FROM ef_imports") == 0


# --- from Python, a rung at a time -------------------------------------------------------------------------


def test_a_climb_a_rung_at_a_time_with_an_undo(tmp_path: Path) -> None:
    source = write_records(tmp_path / "agents.jsonl", 400)
    with connect(f"sqlite:///{tmp_path / 'climb.db'}", create=True) as target:
        climbing = Climb(target, source, steps=(10, 100), benchmarks=False, backups_dir=tmp_path / "b")
        assert [(r.first, r.last, r.state) for r in climbing.plan().rungs] == [
            (1, 10, "to run"),
            (11, 110, "to run"),
            (111, 400, "to run"),
        ]
        first, second = climbing.next_rung(), climbing.next_rung()
        assert first is not None and second is not None and count(target) == 110
        assert second.verification is not None and second.verification.passed
        undone = climbing.undo_rung(yes=True)
        assert undone is not None and undone.rows_removed == 100 and Path(str(undone.backup_path)).is_file()
        assert second.rolled_back and second.verdict == "rolled back" and count(target) == 10
        assert [r.state for r in climbing.plan().rungs] == ["passed", "to run", "to run"]
        again = climbing.next_rung()
        assert again is not None and (again.number, again.first_record, again.last_record) == (2, 11, 110)
        rest = climbing.run()
        assert rest.passed and rest.verdict == "LADDER PASSED" and count(target) == 400
        assert climbing.next_rung() is None
        assert [r.state for r in climbing.plan().rungs] == ["passed"] * 3


def test_a_sql_dump_climbs_by_count(tmp_path: Path) -> None:
    """A dump has no byte offsets (see _offsets.py): each rung finds its place by counting records."""
    source = write_records(tmp_path / "agents.sql", 1_300)
    with connect(f"sqlite:///{tmp_path / 'climb.db'}", create=True) as target:
        result = climb(target, source, benchmarks=False)
        rows = ledger(target)
        assert result.passed and count(target) == 1_300
        assert [(r["first_record"], r["last_record"], r["end_offset"]) for r in rows] == [
            (1, 10, None),
            (11, 110, None),
            (111, 1110, None),
            (1111, 1300, None),
        ]


# --- reading a rung from where the one before ended --------------------------------------------------------


@pytest.mark.parametrize("kind", ["csv", "jsonl", "sql"])
def test_spans_read_exactly_the_records_of_the_file(tmp_path: Path, kind: str) -> None:
    source = write_records(tmp_path / f"agents.{kind}", 250, invalid_share=0.02)
    whole = list(read_rows(source))
    got: list[dict[str, Any]] = []
    offset, first = None, 1
    for size in (10, 100, 1_000):
        span = read_span(source, Span(first, size, offset))
        got += list(span)
        offset, first = span.offset, len(got) + 1
        assert (offset is None) == (kind == "sql")
    assert got == whole
    assert list(read_span(source, Span(11, 100), skip=30)) == whole[40:110]  # resuming inside a span
    how = {"span": Span(111, None), "start": 5, "batch_size": 40, "import_id": "i", "imported_at": "t"}
    here = list(read_span_batches(source, **how))  # type: ignore[arg-type]
    there = list(read_batches_in_subprocess(source, **how))  # type: ignore[arg-type]
    assert [(b.rows, b.rejects, b.end, b.offset) for b in here] == [(b.rows, b.rejects, b.end, b.offset) for b in there]
    assert [b.end for b in here] == [45, 85, 125, 140]  # counted from the span's start


@pytest.mark.parametrize("kind", ["csv", "jsonl"])
def test_a_span_is_read_from_its_offset_not_from_the_start(tmp_path: Path, kind: str) -> None:
    """The records before a span's offset are not read again: make them unreadable, and the span still
    reads. (A CSV file's header is read and checked from the start, as every reading does: its first
    block of 64 KiB stays as it was.)"""
    source = write_records(tmp_path / f"agents.{kind}", 1_000)
    first = read_span(source, Span(1, 900))
    expected = list(read_rows(source))[900:]
    list(first)
    data = source.read_bytes()
    kept = data.index(b"\n", 1 << 16) + 1
    assert first.offset is not None and kept < first.offset
    source.write_bytes(data[:kept] + b"\xff" * (first.offset - kept) + data[first.offset :])
    assert list(read_span(source, Span(901, None, first.offset))) == expected
    with pytest.raises(Exception, match="not UTF-8"):
        list(read_rows(source))


def test_offsets_count_bytes_whatever_the_line_ends_and_the_bom(tmp_path: Path) -> None:
    """CRLF, a lone CR, a BOM and a quoted field over two lines: each span ends where the next begins."""
    ends = ["\r", "\r\n", "\n"]
    text = "\ufefffirst_name,last_name,email\r\n"
    text += "".join(f'A{i},"B\r\n{i}",a{i}@b.co' + ends[i % 3] for i in range(40))
    source = tmp_path / "odd.csv"
    source.write_bytes(text.encode("utf-8"))
    whole = list(read_rows(source))
    got, offset = [], None
    for first in range(1, 41, 7):
        span = read_span(source, Span(first, 7, offset))
        got += list(span)
        offset = span.offset
    assert got == whole and len(got) == 40 and offset == source.stat().st_size


# --- the same on the local D1 engine -----------------------------------------------------------------------


def test_the_same_climb_on_d1(d1_url: str, tmp_path: Path) -> None:
    """25,000 records on the local D1 engine: the plan with the rows it writes against the free tier's
    budget, then five rungs with their ranges, every row once, verified after each; then a file that
    turns bad in rung 4, undone after a backup (D1's export)."""
    source = write_records(tmp_path / "agents.csv", 25_000)
    plan = invoke("ladder", str(source), "--db", d1_url, "--dry-run", "--free-tier", cwd=tmp_path)
    assert plan.returncode == 0, plan.stderr
    lines = plan.stdout.splitlines()
    top = lines.index(next(line for line in lines if line.startswith("rung  range")))
    assert lines[top].split()[-4:] == ["rows", "on", "D1", "import"]
    assert [line.split()[-2] for line in lines[top + 2 : top + 7]] == ["67", "607", "6,007", "60,007", "83,349"]
    said = " ".join(plan.stdout.split())
    assert "D1 free tier: 25,000 records write about 150,037 rows on D1" in said
    assert "today's budget runs out in rung 5: --split-days spreads the climb over days" in said
    refused = invoke("ladder", str(source), "--db", d1_url, "--yes", "--free-tier", cwd=tmp_path)
    assert refused.returncode == 2 and "--split-days" in refused.stderr
    done = invoke("ladder", str(source), "--db", d1_url, "--yes", "--no-benchmarks", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    with connect(d1_url) as target:
        rows = ledger(target)
        assert [(r["first_record"], r["last_record"], r["rung_verdict"]) for r in rows] == [
            (1, 10, "passed"),
            (11, 110, "passed"),
            (111, 1110, "passed"),
            (1111, 11110, "passed"),
            (11111, 25000, "passed"),
        ]
        assert [r["start_offset"] for r in rows[1:]] == [r["end_offset"] for r in rows[:-1]]
        assert count(target) == 25_000 == count(target, "SELECT COUNT(DISTINCT license_number) FROM professionals")
        assert ledger_balances(target) and count(target, "SELECT COUNT(*) FROM ef_verifications") == 5


def test_a_failed_rung_on_d1_is_undone_after_a_backup(d1_url: str, tmp_path: Path) -> None:
    source = with_bad(tmp_path / "agents.csv", 1_500, range(300, 330))  # 30 of rung 3's 1,390
    args = ["ladder", str(source), "--db", d1_url, "--rungs", "10,100", "--no-benchmarks", "--json"]
    failed = invoke(*args, cwd=tmp_path)
    data = json.loads(failed.stdout)
    assert failed.returncode == 1 and data["verdict"] == "FAILED" and data["failed"] == 3
    assert Path(tmp_path / data["undone"]["backup_path"]).is_file()
    assert data["next"].startswith("fix records 111 to 1,500 of ")
    with connect(d1_url) as target:
        assert count(target) == 110 and ledger_balances(target)
        assert [(r["first_record"], r["status"]) for r in ledger(target)] == [
            (1, "completed"),
            (11, "completed"),
            (111, "rolled_back"),
        ]
