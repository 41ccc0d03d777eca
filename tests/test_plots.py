"""Figures: built from real engine results, read back from the artists they hold.

What a bar's height or a line's end says is compared with the numbers the engine returned, the
thresholds are found named in the legends, every figure is drawn on the demo data and no two of its
texts may overlap, counting axes tick at whole numbers only, and the module is shown to leave pyplot
alone.
"""

from __future__ import annotations

import io
import random
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from matplotlib.axis import Axis
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.text import Text
from PIL import Image

from estateflow_nb import (
    BackupInfo,
    LadderResult,
    backup,
    connect,
    explore,
    import_file,
    list_backups,
    rollback,
    run_ladder,
    verify,
    write_records,
)
from estateflow_nb._explore_plots import _weighted_box
from estateflow_nb._look import FAIL_COLOUR, PASS_COLOUR
from estateflow_nb._plot_kit import label
from estateflow_nb.plots import (
    backups_over_time,
    city_distribution,
    distributions,
    featured_by_city,
    history,
    latency,
    rating_histogram,
    rating_vs_reviews,
    ratings_by,
    rollback_rows,
    throughput,
    top_cities,
)
from estateflow_nb.verify import VerifyReport
from estateflow_nb.views import figure_png, figure_title

from .conftest import ROOT


@pytest.fixture(scope="module")
def ladder(tmp_path_factory: pytest.TempPathFactory) -> LadderResult:
    folder = tmp_path_factory.mktemp("plots")
    files = [
        write_records(folder / "a.csv", 30),
        write_records(folder / "b.csv", 250, start=30),
        write_records(folder / "c.csv", 1200, start=280),
    ]
    with connect(f"sqlite:///{folder / 'ladder.db'}", create=True) as target:
        return run_ladder(target, files=files, verify_runs=2)


@pytest.fixture(scope="module")
def report(explore_db: str) -> VerifyReport:
    with connect(explore_db, create=True) as target:
        return verify(target, runs=3, history=False)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The demo's data, as `make demo` loads it (the ladder's 11,110 records in four imports), with
    two backups, a plan and two verifications: what every figure is drawn from."""
    folder = tmp_path_factory.mktemp("demo")
    sizes = [10, 100, 1000, 10_000]
    files = [write_records(folder / f"{n}.csv", n, start=sum(sizes[:i])) for i, n in enumerate(sizes)]
    with connect(f"sqlite:///{folder / 'demo.db'}", create=True) as target:
        ladder = run_ladder(target, files=files, yes=True, verify_runs=2)
        for _ in range(2):
            backup(target, backups_dir=folder / "kept")
        verify(target, runs=2)
        return {
            "ladder": ladder,
            "report": verify(target, runs=3),
            "featured": explore.featured_by_industry(target),
            "bands": explore.rating_bands(target),
            "ratings": explore.rating_counts(target),
            "sample": explore.rating_review_sample(target),
            "reviews": explore.reviews_by_rating(target),
            "cities": explore.city_counts(target),
            "plan": rollback(target, last_hours=24, dry_run=True),
            "backups": list_backups(backups_dir=folder / "kept"),
        }


def heights(ax: object) -> list[float]:
    return [patch.get_height() for patch in ax.patches]  # type: ignore[attr-defined]


def widths(ax: object) -> list[float]:
    return [patch.get_width() for patch in ax.patches]  # type: ignore[attr-defined]


def texts(fig: Figure) -> str:
    return " ".join(t.get_text() for t in fig.findobj(Text))


def legend_texts(fig: Figure) -> list[str]:
    return [t.get_text() for legend in fig.legends for t in legend.get_texts()]


def test_throughput_shows_every_batch_its_target_and_the_running_total(ladder: LadderResult) -> None:
    fig = throughput(ladder)
    rate_ax, total_ax = fig.axes
    batches = [m for step in ladder.rungs for m in step.imported.batch_metrics]
    assert [step.rung.name for step in ladder.rungs] == ["test", "small", "medium"]
    assert len(batches) == 3 + 3 + 2  # 30 by 10, 250 by 100, 1200 by 1000
    assert heights(rate_ax) == pytest.approx([m.records_per_second for m in batches])
    assert rate_ax.get_yscale() == "log" and rate_ax.get_ylabel() == "records / s"
    lines = sorted(seg[0][1] for c in rate_ax.collections if isinstance(c, LineCollection) for seg in c.get_segments())
    rates = [step.records_per_second for step in ladder.rungs]
    assert lines == pytest.approx(sorted([50.0, 75.0, *rates]))  # the targets and each rung's own rate
    # Named in the legend, not written over the bars: the targets, and why the rung's rate is lower.
    names = legend_texts(fig)
    assert "small target: 50/s" in names and "medium target: 75/s" in names
    assert f"small whole import: {ladder.rungs[1].records_per_second:,.0f}/s" in names
    assert "small batches (250 records)" in names
    assert not rate_ax.texts
    ends = [line.get_ydata()[-1] for line in total_ax.get_lines()]
    assert ends == [30, 280, 1480]
    assert total_ax.get_lines()[-1].get_xdata()[-1] == pytest.approx(
        sum(s.imported.batch_metrics[-1].elapsed for s in ladder.rungs)
    )
    assert fig.get_suptitle() == "Import throughput by batch"
    assert "no rung has run yet" in texts(throughput(LadderResult()))


def test_latency_bars_are_medians_against_their_limits(report: VerifyReport) -> None:
    # The first over its limit, the others within theirs, whatever this machine's speed.
    benchmarks = [
        replace(b, threshold_ms=b.median_ms / 2 if i == 0 else b.median_ms * 2) for i, b in enumerate(report.benchmarks)
    ]
    fig = latency(benchmarks)
    (ax,) = fig.axes
    assert widths(ax) == pytest.approx([b.median_ms for b in benchmarks])
    colours = [patch.get_facecolor() for patch in ax.patches]
    assert colours == [to_rgba(FAIL_COLOUR)] + [to_rgba(PASS_COLOUR)] * 4
    limits = [seg[0][0] for c in ax.collections if isinstance(c, LineCollection) for seg in c.get_segments()]
    assert limits == pytest.approx([b.threshold_ms for b in benchmarks])
    assert [t.get_text() for t in ax.get_yticklabels()] == [
        f"{b.title} (limit {b.threshold_ms:,.0f} ms)" for b in benchmarks
    ]
    assert legend_texts(fig) == ["limit"]
    assert "(4 of 5 within)" in ax.get_title() and ax.get_xlabel() == "milliseconds (log scale)"


INDUSTRY_ORDER = ["real_estate", "mortgage", "insurance", "legal", "home_inspection", "appraisal"]


def test_distributions_count_what_the_checks_counted(report: VerifyReport, explore_db: str) -> None:
    with connect(explore_db, create=True) as target:
        featured = explore.featured_by_industry(target)
        bands = explore.rating_bands(target)
    assert explore.bands_of(report.shape) == bands  # what the figure counts by default: the same
    fig = distributions(report, featured)
    industry, state, tier, status, stacked, shares = fig.axes
    observed = {c.name: c.observed for c in report.checks}
    assert widths(industry) == [
        r["count"] for r in sorted(observed["industries"], key=lambda r: INDUSTRY_ORDER.index(r["industry"]))
    ]
    assert widths(state) == [
        next(r["count"] for r in observed["states"] if r["state"] == s) for s in ("FL", "TX", "CA")
    ]
    assert widths(tier) == [r["count"] for r in observed["subscription_tiers"]]
    assert widths(status) == [r["count"] for r in observed["verification_statuses"]]
    featured_total = sum(int(r["featured"]) for r in featured)
    assert report.check("featured").observed == featured_total
    assert stacked.get_title() == f"Featured: {featured_total:,} of {sum(r['count'] for r in featured):,}"
    assert widths(stacked) == [int(r["featured"]) for r in featured]
    # The share of each rating band per industry: every industry's bar adds up to the whole.
    per_industry: dict[str, float] = {}
    for patch, _ in zip(shares.patches, range(len(shares.patches)), strict=True):
        y = round(patch.get_y() + patch.get_height() / 2)
        per_industry[str(y)] = per_industry.get(str(y), 0.0) + patch.get_width()
    assert list(per_industry.values()) == pytest.approx([1.0] * len({r["industry"] for r in bands}))
    assert set(legend_texts(fig)) <= {
        "4.5 to 5.0",
        "4.0 to 4.4",
        "3.0 to 3.9",
        "1.0 to 2.9",
        "not rated",
        "out of range",
    }


def test_rating_histogram_and_top_cities(report: VerifyReport) -> None:
    ratings = report.check("ratings").observed
    (ax,) = rating_histogram(report).axes
    assert heights(ax) == [r["count"] for r in ratings]
    assert [t.get_text() for t in ax.get_xticklabels()] == [r["bucket"] for r in ratings]
    cities = report.check("top_cities").observed
    (ax,) = top_cities(report).axes
    assert widths(ax) == [c["count"] for c in cities]
    assert [t.get_text() for t in ax.get_yticklabels()] == [f"{c['city']}, {c['state']}" for c in cities]


def test_an_out_of_range_value_is_shown_apart_with_a_note(report: VerifyReport) -> None:
    """A rating of 9.5 gets its own red bucket in the histogram and is left out of the box plots and
    the scatter, each saying so, instead of stretching an axis or vanishing beyond it."""
    broken = replace(report, checks=[replace(c) for c in report.checks])
    ratings = broken.check("ratings")
    ratings.observed = [*ratings.observed, {"bucket": "out of range", "count": 2}]
    ratings.failing = 2
    (ax,) = rating_histogram(broken).axes
    assert [t.get_text() for t in ax.get_xticklabels()][-1] == "out of range"
    assert ax.patches[-1].get_facecolor() == to_rgba(FAIL_COLOUR) and ax.patches[-1].get_height() == 2
    assert "2 out of range (shown apart, in red)" in ax.get_title()
    rows = [
        {"industry": "legal", "state": "TX", "rating": 4.5, "count": 10},
        {"industry": "legal", "state": "TX", "rating": 9.5, "count": 2},
        {"industry": "legal", "state": "TX", "rating": "great", "count": 1},
    ]
    fig = ratings_by(rows)
    assert "3 ratings out of range left out" in fig.get_suptitle()
    by_industry, _by_state = fig.axes
    assert by_industry.get_ylim() == (0.8, 5.2)
    assert "3 out of range" in by_industry.get_xticklabels()[0].get_text()
    sample = [
        {"rating": 4.0, "review_count": 3, "industry": "legal"},
        {"rating": 12.0, "review_count": 5, "industry": "legal"},
    ]
    (ax,) = rating_vs_reviews(sample).axes
    assert ax.get_xlim() == (0.9, 5.1) and "1 out of range left out" in ax.get_title()
    assert sum(len(c.get_offsets()) for c in ax.collections) == 1


def test_weighted_box_statistics_match_numpy() -> None:
    chooser = random.Random(3)
    for _ in range(20):
        counts = {v / 10: chooser.randint(1, 30) for v in chooser.sample(range(10, 51), chooser.randint(1, 12))}
        values = np.repeat(list(counts), list(counts.values()))
        box = _weighted_box("x", counts)
        q1, median, q3 = np.percentile(values, [25, 50, 75])
        assert (box["q1"], box["med"], box["q3"]) == pytest.approx((q1, median, q3))
        assert box["mean"] == pytest.approx(values.mean())
        assert (box["whislo"], box["whishi"], box["fliers"]) == (values.min(), values.max(), [])


def test_exploration_figures(explore_db: str) -> None:
    with connect(explore_db, create=True) as target:
        counts = explore.rating_counts(target)
        sample = explore.rating_review_sample(target, size=100)
        reviews = explore.reviews_by_rating(target)
        rows = explore.city_counts(target)
        total = target.scalar("SELECT COUNT(*) FROM professionals")
    _by_industry, by_state = ratings_by(counts).axes
    labels = [t.get_text() for t in by_state.get_xticklabels()]
    assert sum(int(label.split("n=")[1].split(")")[0].replace(",", "")) for label in labels) == total
    scatter = rating_vs_reviews(sample, reviews)
    assert sum(len(c.get_offsets()) for c in scatter.axes[0].collections) == len(sample) <= 100
    assert list(scatter.axes[0].get_lines()[0].get_ydata()) == [r["mean_reviews"] for r in reviews]
    cities = explore.cities(rows)
    (ax,) = city_distribution(rows, top=5).axes
    totals = [t.get_text() for t in ax.texts]
    assert totals == [f"{c['count']:,}" for c in cities[:5]]
    (ax,) = featured_by_city(rows, top=5).axes
    most = sorted(cities, key=lambda c: (-c["featured"], -c["count"], c["city"]))[:5]
    assert widths(ax) == [c["featured"] for c in most]
    assert "no city matches" in texts(city_distribution([], top=5))


def test_rollback_backup_and_history_figures(two_imports: tuple[str, str, str], tmp_path: Path) -> None:
    url, _first, second = two_imports
    with connect(url, create=True) as target:
        backup(target, backups_dir=tmp_path / "kept")
        plan = rollback(target, import_id=second, dry_run=True)
        done = rollback(target, import_id=second, yes=True, backups_dir=tmp_path / "kept")
        verify(target, runs=1)
        report = verify(target, runs=1)
    fig = rollback_rows(plan)
    (ax,) = fig.axes
    rows = plan.by_industry_state
    # Removed, then restored stacked after it: one bar of each per industry and state.
    assert widths(ax) == [r["removed"] for r in rows] + [r["restored"] for r in rows]
    assert [t.get_text() for t in ax.get_yticklabels()] == [f"{label(r['industry'])}, {r['state']}" for r in rows]
    assert ax.get_title() == "Would remove 20 rows and restore 10, by industry and state"
    assert legend_texts(fig) == ["to be removed", "to be restored"]
    assert rollback_rows(done).axes[0].get_title() == "Removed 20 rows and restored 10, by industry and state"

    backups = list_backups(backups_dir=tmp_path / "kept")
    assert [b.rows for b in backups] == [60, 60]
    (line,) = backups_over_time(backups).axes[0].get_lines()
    assert list(line.get_ydata()) == [60, 60]
    assert "no backups" in texts(backups_over_time([]))

    rows_ax, latency_ax = history(report).axes
    assert [e.rows for e in report.history] == [40] and list(rows_ax.get_lines()[0].get_ydata()) == [40, 40]
    assert {line.get_label() for line in latency_ax.get_lines()} == {b.title for b in report.benchmarks}
    assert all(len(line.get_xdata()) == 2 for line in latency_ax.get_lines())


def test_figures_of_an_empty_database_say_so(tmp_path: Path) -> None:
    with connect(f"sqlite:///{tmp_path / 'empty.db'}", create=True) as target:
        empty = verify(target, runs=1)
        figures = [
            distributions(empty, explore.featured_by_industry(target), explore.rating_bands(target)),
            rating_histogram(empty),
            top_cities(empty),
            ratings_by(explore.rating_counts(target)),
            rating_vs_reviews(explore.rating_review_sample(target), explore.reviews_by_rating(target)),
            latency(empty.benchmarks, note="not meaningful on an empty table"),
        ]
    for fig in figures:
        assert re.search("no professionals|no ratings|not meaningful", texts(fig)), texts(fig)
        assert figure_png(fig).startswith(b"\x89PNG")


def test_png_is_drawn_and_titled(report: VerifyReport) -> None:
    fig = latency(report.benchmarks)
    picture = Image.open(io.BytesIO(figure_png(fig))).convert("L")
    assert picture.width == 1100 and abs(picture.height - fig.get_figheight() * 100) <= 1
    histogram = picture.histogram()
    assert 0.01 < sum(histogram[:200]) / sum(histogram) < 0.5  # ink on paper, not blank and not solid
    assert figure_title(fig).startswith("Latency: median of 3 runs")


# --- every figure, drawn: no text over another, whole numbers on counting axes ------------------------


def every_figure(demo: dict[str, Any], ladder: LadderResult) -> Iterator[tuple[str, Figure]]:
    report = demo["report"]
    yield "throughput", throughput(demo["ladder"])
    # The same ladder a thousand times faster: an axis of milliseconds.
    quick = [
        replace(
            step,
            imported=replace(
                step.imported, batch_metrics=[replace(m, elapsed=m.elapsed / 1000) for m in step.imported.batch_metrics]
            ),
        )
        for step in ladder.rungs
    ]
    yield "throughput of a quick ladder", throughput(LadderResult(quick))
    yield "latency", latency(report.benchmarks)
    yield "distributions", distributions(report, demo["featured"], demo["bands"])
    yield "rating histogram", rating_histogram(report)
    yield "top cities", top_cities(report)
    yield "history", history(report)
    yield "ratings by", ratings_by(demo["ratings"])
    yield "rating vs reviews", rating_vs_reviews(demo["sample"], demo["reviews"])
    yield "city distribution", city_distribution(demo["cities"])
    yield "featured by city", featured_by_city(demo["cities"])
    yield "rollback rows", rollback_rows(demo["plan"])
    yield "backups", backups_over_time(demo["backups"])


def drawn_texts(fig: Figure) -> list[tuple[Text, Any]]:
    """Every text the figure draws, with its extent in pixels: tick labels of ticks in view only."""
    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw(renderer)
    hidden: set[int] = set()
    for ax in fig.axes:
        axes: list[Axis] = [ax.xaxis, ax.yaxis]
        for axis in axes:
            low, high = sorted(axis.get_view_interval())
            for tick in [*axis.get_major_ticks(), *axis.get_minor_ticks()]:
                if not low - 1e-9 <= tick.get_loc() <= high + 1e-9 or not tick.get_visible():
                    hidden.update({id(tick.label1), id(tick.label2)})
                if not tick.label1.get_visible():
                    hidden.add(id(tick.label1))
                if not tick.label2.get_visible():
                    hidden.add(id(tick.label2))
    shown = [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip() and id(t) not in hidden]
    return [(t, t.get_window_extent(renderer)) for t in shown]


def test_no_two_texts_of_any_figure_overlap(demo: dict[str, Any], ladder: LadderResult) -> None:
    for name, fig in every_figure(demo, ladder):
        placed = drawn_texts(fig)
        assert len(placed) > 5, name
        for i, (text, box) in enumerate(placed):
            for other, other_box in placed[i + 1 :]:
                width = min(box.x1, other_box.x1) - max(box.x0, other_box.x0)
                height = min(box.y1, other_box.y1) - max(box.y0, other_box.y0)
                assert width <= 1 or height <= 1, f"{name}: {text.get_text()!r} overlaps {other.get_text()!r}"


def test_counting_axes_tick_at_whole_numbers(tmp_path: Path) -> None:
    """On a database of three professionals, where matplotlib alone would tick 0.0, 0.5, 1.0 ... (and,
    written with thousands separators, show 0 0 1 1), or -0 just below zero."""
    with connect(f"sqlite:///{tmp_path / 'tiny.db'}", create=True) as target:
        import_file(target, write_records(tmp_path / "tiny.csv", 3))
        report = verify(target, runs=1)
        taken = [BackupInfo("a", f"2026-11-01T10:0{i}:00Z", 1, rows=i + 1) for i in range(2)]
        figures = [
            distributions(report, explore.featured_by_industry(target), explore.rating_bands(target)),
            rating_histogram(report),
            top_cities(report),
            city_distribution(explore.city_counts(target)),
            featured_by_city(explore.city_counts(target)),
            rollback_rows(rollback(target, last_hours=1, dry_run=True)),
            backups_over_time(taken),
        ]
    checked = 0
    for fig in figures:
        shown = {id(text) for text, _box in drawn_texts(fig)}
        for ax in fig.axes:
            for axis in (ax.xaxis, ax.yaxis):
                if axis.get_label_text() not in ("professionals", "featured professionals"):
                    continue  # not a counting axis
                numbers = [t.get_text() for t in axis.get_ticklabels() if id(t) in shown]
                assert numbers and all(re.fullmatch(r"\d{1,3}(,\d{3})*", n) for n in numbers), numbers
                assert len(numbers) == len(set(numbers)), f"{figure_title(fig)}: {numbers}"
                checked += 1
    assert checked >= 10


def test_text_from_the_data_is_never_mathematical_markup() -> None:
    """A city named with dollar signs is drawn as written, not typeset."""
    rows = [
        {
            "city": "$x^2$ Town",
            "state": "TX",
            "industry": "legal",
            "count": 3,
            "featured": 1,
            "avg_rating": 4.0,
            "rated": 3,
        },
        {
            "city": "Price $5 $6",
            "state": "FL",
            "industry": "real_estate",
            "count": 2,
            "featured": 0,
            "avg_rating": 4.5,
            "rated": 2,
        },
    ]
    for fig in (city_distribution(rows), featured_by_city(rows)):
        for text, _box in drawn_texts(fig):
            _plain, is_math = text._preprocess_math(text.get_text())
            assert not is_math, text.get_text()
        names = [t.get_text() for t in fig.axes[0].get_yticklabels()]
        assert r"\$x^2\$ Town, TX" in names


def test_no_pyplot_and_no_backend_choice() -> None:
    """Building and rendering every figure leaves pyplot unimported and the backend as it was."""
    code = """
import sys, matplotlib
# The raw setting: matplotlib.get_backend() would itself import pyplot to resolve it.
backend = dict.__getitem__(matplotlib.rcParams, "backend")
from estateflow_nb import connect, verify, write_records, import_file, explore, rollback, BackupInfo
from estateflow_nb import plots, views, widgets
import tempfile, pathlib
folder = pathlib.Path(tempfile.mkdtemp())
with connect(str(folder / "x.db"), create=True) as target:
    import_file(target, write_records(folder / "x.csv", 50))
    report = verify(target, runs=1)
    rows = explore.city_counts(target)
    plan = rollback(target, last_hours=1, dry_run=True)
taken = [BackupInfo("a", "2026-11-01T10:00:00Z", 1, rows=5), BackupInfo("b", "2026-11-02T10:00:00Z", 1, rows=9)]
for fig in (plots.latency(report.benchmarks), plots.distributions(report), plots.city_distribution(rows),
            plots.rollback_rows(plan), plots.backups_over_time(taken), plots.history(report)):
    views.figure_png(fig)
assert "matplotlib.pyplot" not in sys.modules, "pyplot was imported"
assert dict.__getitem__(matplotlib.rcParams, "backend") == backend
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={"PYTHONPATH": str(ROOT)})
    assert done.stdout.strip() == "ok", done.stderr
