"""Figures: built from real engine results, read back from the artists they hold.

What a bar's height or a line's end says is compared with the numbers the engine returned, the
thresholds are found drawn where they belong, and the module is shown to leave pyplot alone.
"""

from __future__ import annotations

import io
import random
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from matplotlib.collections import LineCollection
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from PIL import Image

from estateflow_nb import (
    LadderResult,
    backup,
    connect,
    explore,
    list_backups,
    rollback,
    run_ladder,
    verify,
    write_records,
)
from estateflow_nb._look import FAIL_COLOUR, PASS_COLOUR
from estateflow_nb.plots import (
    _label,
    _weighted_box,
    backups_over_time,
    city_distribution,
    distributions,
    featured_by_city,
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
        return verify(target, runs=3)


def heights(ax: object) -> list[float]:
    return [patch.get_height() for patch in ax.patches]  # type: ignore[attr-defined]


def widths(ax: object) -> list[float]:
    return [patch.get_width() for patch in ax.patches]  # type: ignore[attr-defined]


def texts(fig: Figure) -> str:
    return " ".join(t.get_text() for ax in fig.axes for t in ax.texts)


def test_throughput_shows_every_batch_its_target_and_the_running_total(ladder: LadderResult) -> None:
    fig = throughput(ladder)
    rate_ax, total_ax = fig.axes
    batches = [m for step in ladder.rungs for m in step.imported.batch_metrics]
    assert [step.rung.name for step in ladder.rungs] == ["test", "small", "medium"]
    assert len(batches) == 3 + 3 + 2  # 30 by 10, 250 by 100, 1200 by 1000
    assert heights(rate_ax) == pytest.approx([m.records_per_second for m in batches])
    assert rate_ax.get_yscale() == "log" and rate_ax.get_ylabel() == "records / s"
    targets = sorted(
        seg[0][1] for c in rate_ax.collections if isinstance(c, LineCollection) for seg in c.get_segments()
    )
    assert targets == [50.0, 75.0]  # the small and medium rungs' targets; the test rung has none
    assert "target 50/s" in texts(fig) and "target 75/s" in texts(fig)
    legend = [t.get_text() for t in rate_ax.get_legend().get_texts()]
    assert legend[1] == f"small: 250 records, {ladder.rungs[1].records_per_second:,.0f}/s"
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
    assert [t.get_text() for t in ax.get_yticklabels()] == [b.title for b in benchmarks]
    assert "(4 of 5 within)" in ax.get_title() and ax.get_xlabel() == "milliseconds (log scale)"


def test_distributions_count_what_the_checks_counted(report: VerifyReport, explore_db: str) -> None:
    with connect(explore_db, create=True) as target:
        featured = explore.featured_by_industry(target)
    fig = distributions(report, featured)
    industry, state, tier, status, stacked, mean = fig.axes
    observed = {c.name: c.observed for c in report.checks}
    assert heights(industry) == [
        r["count"] for r in sorted(observed["industries"], key=lambda r: INDUSTRY_ORDER.index(r["industry"]))
    ]
    assert heights(state) == [
        next(r["count"] for r in observed["states"] if r["state"] == s) for s in ("FL", "TX", "CA")
    ]
    assert heights(tier) == [r["count"] for r in observed["subscription_tiers"]]
    assert heights(status) == [r["count"] for r in observed["verification_statuses"]]
    featured_total = sum(int(r["featured"]) for r in featured)
    assert report.check("featured").observed.startswith(f"{featured_total:,} featured")
    assert stacked.get_title() == f"Featured: {featured_total:,} of {sum(r['count'] for r in featured):,}"
    assert widths(mean) == [r["avg_rating"] for r in observed["industries"]]


INDUSTRY_ORDER = ["real_estate", "mortgage", "insurance", "legal", "home_inspection", "appraisal"]


def test_rating_histogram_and_top_cities(report: VerifyReport) -> None:
    ratings = report.check("ratings").observed
    (ax,) = rating_histogram(report).axes
    assert heights(ax) == [r["count"] for r in ratings]
    assert [t.get_text() for t in ax.get_xticklabels()] == [r["bucket"] for r in ratings]
    cities = report.check("top_cities").observed
    (ax,) = top_cities(report).axes
    assert widths(ax) == [c["count"] for c in cities]
    assert [t.get_text() for t in ax.get_yticklabels()] == [f"{c['city']}, {c['state']}" for c in cities]


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
    assert sum(int(label.split("n=")[1].rstrip(")").replace(",", "")) for label in labels) == total
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


def test_rollback_and_backup_figures(two_imports: tuple[str, str, str], tmp_path: Path) -> None:
    url, _first, second = two_imports
    with connect(url, create=True) as target:
        backup(target, backups_dir=tmp_path / "kept")
        plan = rollback(target, import_id=second, dry_run=True)
        done = rollback(target, import_id=second, yes=True, backups_dir=tmp_path / "kept")
    fig = rollback_rows(plan)
    (ax,) = fig.axes
    rows = plan.by_industry_state
    # Removed, then restored stacked after it: one bar of each per industry and state.
    assert widths(ax) == [r["removed"] for r in rows] + [r["restored"] for r in rows]
    assert [t.get_text() for t in ax.get_yticklabels()] == [f"{_label(r['industry'])}, {r['state']}" for r in rows]
    assert ax.get_title() == "Would remove 20 rows and restore 10, by industry and state"
    assert rollback_rows(done).axes[0].get_title() == "Removed 20 rows and restored 10, by industry and state"

    backups = list_backups(backups_dir=tmp_path / "kept")
    assert [b.rows for b in backups] == [60, 60]
    (line,) = backups_over_time(backups).axes[0].get_lines()
    assert list(line.get_ydata()) == [60, 60] and "60" in texts(backups_over_time(backups))
    assert "no backups" in texts(backups_over_time([]))


def test_figures_of_an_empty_database_say_so(tmp_path: Path) -> None:
    with connect(f"sqlite:///{tmp_path / 'empty.db'}", create=True) as target:
        empty = verify(target, runs=1)
        figures = [
            distributions(empty, explore.featured_by_industry(target)),
            rating_histogram(empty),
            top_cities(empty),
            ratings_by(explore.rating_counts(target)),
            rating_vs_reviews(explore.rating_review_sample(target), explore.reviews_by_rating(target)),
        ]
    for fig in figures:
        assert "no professionals" in texts(fig) or "no ratings" in texts(fig)
        assert figure_png(fig).startswith(b"\x89PNG")


def test_png_is_drawn_and_titled(report: VerifyReport) -> None:
    fig = latency(report.benchmarks)
    picture = Image.open(io.BytesIO(figure_png(fig))).convert("L")
    assert picture.width == 1100 and abs(picture.height - fig.get_figheight() * 100) <= 1
    histogram = picture.histogram()
    assert 0.01 < sum(histogram[:200]) / sum(histogram) < 0.5  # ink on paper, not blank and not solid
    assert figure_title(fig).startswith("Latency: median of 3 runs")


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
            plots.rollback_rows(plan), plots.backups_over_time(taken)):
    views.figure_png(fig)
assert "matplotlib.pyplot" not in sys.modules, "pyplot was imported"
assert dict.__getitem__(matplotlib.rcParams, "backend") == backend
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={"PYTHONPATH": str(ROOT)})
    assert done.stdout.strip() == "ok", done.stderr
