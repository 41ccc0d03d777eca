"""Time axes read as times (issue 9, point 9): the verification history and the backups over time,
drawn, tick at dates and times of the data, never at matplotlib's day numbers (20393.4) or at
seconds since 1970.

The figures are drawn (`FigureCanvasAgg.draw`), so the labels are the ones a reader sees; only the
ticks inside the axis' view are read (matplotlib keeps labels of ticks outside it, never drawn).
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from matplotlib.axis import Axis
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from estateflow_nb import BackupInfo, connect, import_file, verify, write_records
from estateflow_nb._time import ledger_time
from estateflow_nb.plots import backups_over_time, history
from estateflow_nb.verify import VerifyReport

# What a number on an axis looks like when a time went in as a plain number.
NUMBER = re.compile(r"[−-]?[\d,]+(\.\d+)?(e[+−-]?\d+)?")


def drawn_labels(fig: Figure, axis: Axis) -> list[str]:
    """The tick labels `axis` shows once the figure is drawn, in order."""
    FigureCanvasAgg(fig).draw()
    low, high = sorted(axis.get_view_interval())
    return [
        tick.label1.get_text()
        for tick in axis.get_major_ticks()
        if low - 1e-9 <= tick.get_loc() <= high + 1e-9 and tick.label1.get_visible() and tick.label1.get_text()
    ]


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def read_times(labels: list[str], day: datetime, form: str) -> list[datetime]:
    """Labels of the form `form` (strptime's) as moments of `day` (when the form holds no date)."""
    found = []
    for text in labels:
        assert not NUMBER.fullmatch(text.replace("\n", "")), f"a time axis shows a plain number: {labels}"
        parsed = datetime.strptime(text, form)
        if "%Y" not in form:
            parsed = parsed.replace(year=day.year, month=day.month, day=day.day)
        found.append(parsed.replace(tzinfo=UTC))
    return found


def within(found: list[datetime], first: datetime, last: datetime, slack: timedelta) -> bool:
    return bool(found) and all(first - slack <= t <= last + slack for t in found)


@pytest.fixture(scope="module")
def verified(tmp_path_factory: pytest.TempPathFactory) -> VerifyReport:
    """A database verified three times: the last report, with the two before it in its history."""
    folder = tmp_path_factory.mktemp("history")
    with connect(f"sqlite:///{folder / 'h.db'}", create=True) as target:
        import_file(target, write_records(folder / "a.csv", 30))
        verify(target, runs=1)
        verify(target, runs=1)
        return verify(target, runs=1)


def spread_over(report: VerifyReport, times: list[datetime]) -> VerifyReport:
    """`report` with its verifications (the history's, then its own) at `times`."""
    entries = [replace(e, checked_at=ledger_time(t)) for e, t in zip(report.history, times, strict=False)]
    return replace(report, history=entries, checked_at=ledger_time(times[-1]))


# Three verifications within one day: in one second (a ladder's small rungs), seconds apart, an hour apart.
@pytest.mark.parametrize("apart", [timedelta(0), timedelta(seconds=7), timedelta(minutes=25)], ids=str)
def test_the_history_within_a_day_ticks_at_the_times_of_its_verifications(
    verified: VerifyReport, apart: timedelta
) -> None:
    """Hours, minutes and seconds of the verifications' day, around them, and no two alike."""
    times = [datetime(2026, 11, 1, 10, 48, 22, tzinfo=UTC) + n * apart for n in range(3)]
    fig = history(spread_over(verified, times))
    for ax in fig.axes:
        labels = drawn_labels(fig, ax.xaxis)
        found = read_times(labels, times[0], "%H:%M:%S")
        # Ticks fall around the verifications (the axis pads a little), not at midnight or in 1970.
        assert within(found, times[0], times[-1], max(apart, timedelta(minutes=1))), (labels, times)
        assert len(labels) >= 2 and len(set(labels)) == len(labels), labels


def test_the_history_across_days_ticks_at_dates_and_hours(verified: VerifyReport) -> None:
    """Verifications over three days: each tick says its date and its hour."""
    days = [datetime(2026, 11, 1, 9, 30, tzinfo=UTC) + timedelta(days=d, hours=5 * d) for d in range(3)]
    first, last = days[0], days[-1]
    fig = history(spread_over(verified, days))
    for ax in fig.axes:
        labels = drawn_labels(fig, ax.xaxis)
        assert within(read_times(labels, first, "%Y-%m-%d\n%H:%M"), first, last, timedelta(hours=12)), labels


def test_the_backups_over_time_tick_at_the_times_they_were_taken() -> None:
    """Backups taken over twenty minutes of one day: the minutes on the ticks, the day beside them."""
    taken = [BackupInfo(f"b{i}", f"2026-11-01T10:{i * 10:02d}:00Z", 1, rows=10 * (i + 1)) for i in range(3)]
    fig = backups_over_time(taken)
    (ax,) = fig.axes
    labels = drawn_labels(fig, ax.xaxis)
    first, last = moment(taken[0].taken_at), moment(taken[-1].taken_at)
    assert within(read_times(labels, first, "%H:%M"), first, last, timedelta(minutes=10)), labels
    assert ax.xaxis.get_offset_text().get_text() == "2026-Nov-01"  # the day, said once


def test_the_backups_over_days_tick_at_their_days() -> None:
    """Backups a day apart: the ticks name the month and the days the backups were taken on."""
    taken = [BackupInfo(f"b{i}", f"2026-11-0{i + 2}T08:00:00Z", 1, rows=5 + i) for i in range(4)]
    fig = backups_over_time(taken)
    (ax,) = fig.axes
    labels = drawn_labels(fig, ax.xaxis)
    assert all(re.fullmatch(r"Nov|0[1-6]|\d{2}:\d{2}", t) for t in labels), labels
    days = {int(t) for t in labels if t.isdigit()}
    assert days and days <= set(range(1, 7)), labels
    assert ax.xaxis.get_offset_text().get_text() in ("2026-Nov", "2026-Nov-05", "")


@pytest.mark.parametrize("backups", [1, 2], ids=["the first backup", "two in one second"])
def test_backups_within_one_second_tick_at_their_minute(backups: int) -> None:
    """One backup (or two in its second) left matplotlib nothing to span, and it ticked the years 2025
    to 2029: the axis is the minute around it, its day said beside it."""
    taken = [BackupInfo(f"b{i}", "2026-11-01T10:00:00Z", 1, rows=5) for i in range(backups)]
    fig = backups_over_time(taken)
    (ax,) = fig.axes
    labels = drawn_labels(fig, ax.xaxis)
    assert "10:00" in labels and all(re.fullmatch(r"\d{2}(:\d{2})?", t) for t in labels), labels
    assert ax.xaxis.get_offset_text().get_text().startswith("2026-Nov-01"), labels
