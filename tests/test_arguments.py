"""Bad arguments get one line: rollback windows out of range, compact dates, click's own refusals."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from estateflow_nb import RefusedError, connect, import_file, rollback, write_records

from .conftest import invoke


@pytest.fixture
def imported(tmp_path: Path) -> tuple[str, str]:
    """(database URL, the UTC day its one import started on, as 2026-11-29)."""
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    with connect(url, create=True) as target:
        result = import_file(target, write_records(tmp_path / "p.csv", 12))
        started = target.scalar("SELECT started_at FROM ef_imports WHERE id = ?", (result.import_id,))
    return url, started[:10]


def one_line_refusal(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stderr.startswith("Error: ") and len(done.stderr.strip().splitlines()) == 1
    return done.stderr


@pytest.mark.parametrize(
    ("arguments", "said"),
    [
        (["last", "inf"], "hours must be a number more than 0, not inf"),
        (["last", "nan"], "not nan"),
        (["last", "1e12"], "reaches back before the year 1"),
        (["last", "1e9"], "reaches back before the year 1"),
        (["last", "abc"], "'abc' is not a valid"),
        (["date", "2026-13-01", "2026-12-01"], "from: '2026-13-01' is not a date"),
        (["date", "2026-12-01", "2026-11-01"], "the window is empty"),
    ],
)
def test_out_of_range_arguments_get_one_line_and_exit_2(
    imported: tuple[str, str], tmp_path: Path, arguments: list[str], said: str
) -> None:
    url, _ = imported
    done = invoke("rollback", *arguments, "--db", url, "--yes", cwd=tmp_path)
    assert said in one_line_refusal(done)
    with connect(url) as target:
        assert target.scalar("SELECT COUNT(*) FROM professionals") == 12


@pytest.mark.parametrize(
    ("since", "until", "undone"),
    [
        ("0001-01-01", "0001-01-02", 0),  # the first days of the calendar: nothing, not an overflow
        ("9999-12-31", "9999-12-31", 0),  # its last day: the day after it is past the calendar
        ("0001-01-01", "9999-12-31", 12),  # the whole calendar, zero-padded years compared as text
        ("0005-01-01", "9999-12-31T23:59:59-05:00", 12),  # a time past the calendar once in UTC
    ],
)
def test_windows_at_the_ends_of_the_calendar(
    imported: tuple[str, str], tmp_path: Path, since: str, until: str, undone: int
) -> None:
    url, _ = imported
    done = invoke("rollback", "date", since, until, "--db", url, "--dry-run", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["rows_removed"] == undone


def test_compact_dates_cover_whole_days(imported: tuple[str, str], tmp_path: Path) -> None:
    url, day = imported
    compact = day.replace("-", "")
    for since, until in ((compact, compact), (day, compact), (compact, day)):
        done = invoke("rollback", "date", since, until, "--db", url, "--dry-run", "--json", cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["rows_removed"] == 12, (since, until)


def test_the_python_api_refuses_the_same_way(imported: tuple[str, str]) -> None:
    url, _ = imported
    with connect(url) as target:
        for hours in (float("inf"), 1e12, -1.0):
            with pytest.raises(RefusedError):
                rollback(target, last_hours=hours, dry_run=True)
        with pytest.raises(RefusedError, match="exactly one"):
            rollback(target, dry_run=True)


def test_click_usage_errors_are_one_line(tmp_path: Path) -> None:
    for arguments in (["rollback", "last", "-1"], ["backups", "--bogus"], ["rollback", "nothing"]):
        one_line_refusal(invoke(*arguments, cwd=tmp_path))
