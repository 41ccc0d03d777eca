"""Matplotlib figures of what the engine returns: throughput, latency, distributions, ratings, cities,
the verification history, rollbacks and backups.

Every function takes results (or the rows of `estateflow_nb.explore`) and returns a new
`matplotlib.figure.Figure`. Nothing here touches pyplot or its global state, and nothing chooses a
backend: a figure is drawn when it is saved or shown (`views.show` embeds it as a PNG). Each figure
has a title, labelled axes, its numbers written on the bars, and the thresholds it is judged by
named in its legend, so that it reads at a glance in a report. Counting axes tick at whole numbers
only; a value out of range is shown apart, with a note, rather than stretching an axis; no two
texts of a figure overlap (the tests draw every figure and compare the texts' extents).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Literal

from matplotlib.axes import Axes
from matplotlib.dates import AutoDateLocator, DateFormatter
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator

from ._explore_plots import (
    backups_over_time,
    city_distribution,
    featured_by_city,
    rating_vs_reviews,
    ratings_by,
    rollback_rows,
)
from ._look import (
    BAR_COLOUR,
    FAIL_COLOUR,
    FEATURED_COLOUR,
    MUTED_COLOUR,
    PASS_COLOUR,
    SERIES,
    count,
    fraction,
    plural,
)
from ._plot_kit import at_least_a_minute, barh, counts, empty, figure, label, legend_below, seconds, text
from .explore import BANDS, bands_of
from .ladder import LadderResult, RungResult
from .schema import INDUSTRIES, STATES, SUBSCRIPTION_TIERS, VERIFICATION_STATUSES
from .verify import BenchmarkResult, CheckResult, VerifyReport

__all__ = [
    "backups_over_time",
    "city_distribution",
    "distributions",
    "featured_by_city",
    "history",
    "latency",
    "rating_histogram",
    "rating_vs_reviews",
    "ratings_by",
    "rollback_rows",
    "throughput",
    "top_cities",
]

# Rating bands from best to worst, in colours from green to red, then what is not in a band.
BAND_COLOURS = dict(
    zip(
        [*(name for name, _ in BANDS), "not rated", "out of range"],
        ["#1b5e20", "#66bb6a", "#ffb300", "#e65100", MUTED_COLOUR, FAIL_COLOUR],
        strict=True,
    )
)


# --- the ladder ------------------------------------------------------------------------------------


def _rung_bars(ax: Axes, rungs: list[RungResult]) -> float:
    """Each rung's batches as bars, its target and its whole-import rate as lines; the highest rate."""
    position, top = 0, 0.0
    for i, step in enumerate(rungs):
        metrics = step.imported.batch_metrics
        if not metrics:
            continue
        colour = SERIES[i % len(SERIES)]
        xs = list(range(position + 1, position + len(metrics) + 1))
        rates = [m.records_per_second for m in metrics]
        top = max(top, *rates, step.records_per_second)
        what = "nothing new" if step.nothing_new else f"{count(step.records)} records"
        ax.bar(xs, rates, color=colour, width=0.8, label=f"{text(step.rung.name)} batches ({what})")
        # The rung's own rate counts the whole import (reading, validating, the ledger), so it sits
        # below its batches' bars, which count the writing of each batch only.
        lines: list[tuple[float, str, Literal[":", "--"], str]] = [
            (step.records_per_second, colour, ":", "whole import")
        ]
        if step.rung.target_rate is not None:
            lines.append((step.rung.target_rate, FAIL_COLOUR, "--", "target"))
        for rate, line_colour, style, what in lines:
            name = f"{text(step.rung.name)} {what}: {rate:,.0f}/s"
            ax.hlines(rate, xs[0] - 0.45, xs[-1] + 0.45, colors=line_colour, linestyles=style, linewidth=2, label=name)
        position += len(metrics)
    return top


def _cumulative(ax: Axes, rungs: list[RungResult]) -> tuple[int, float]:
    """Records handled against seconds of importing, one line per rung; (records, seconds) in all."""
    clock, records = 0.0, 0
    for i, step in enumerate(rungs):
        metrics = step.imported.batch_metrics
        if not metrics:
            continue
        times = [clock] + [clock + m.elapsed for m in metrics]
        totals = [records]
        for m in metrics:
            totals.append(totals[-1] + m.records)
        ax.plot(times, totals, marker="o", markersize=3, color=SERIES[i % len(SERIES)])
        clock, records = times[-1], totals[-1]
    return records, clock


def throughput(result: LadderResult | Sequence[RungResult]) -> Figure:
    """Records/s of every batch (one colour per rung), each rung's whole-import rate and its target
    (named in the legend), and cumulative records over time.

    Time on the right is import time: the verifications between rungs are left out, so the slope is
    the import rate.
    """
    rungs = list(result.rungs if isinstance(result, LadderResult) else result)
    fig = figure(12, 5.2)
    rate_ax, total_ax = fig.subplots(1, 2, width_ratios=(1.25, 1))
    fig.suptitle("Import throughput by batch", fontsize=13, fontweight="bold")
    if not any(step.imported.batch_metrics for step in rungs):
        for ax in (rate_ax, total_ax):
            empty(ax, "no batch written yet" if rungs else "no rung has run yet")
        return fig
    top = _rung_bars(rate_ax, rungs)
    rate_ax.set_yscale("log")
    lowest = min(10.0, *(s.rung.target_rate or 10.0 for s in rungs), *(s.records_per_second or 10.0 for s in rungs))
    rate_ax.set_ylim(bottom=lowest / 2, top=top * 3)
    rate_ax.set_title("Records per second, each batch (log scale)")
    rate_ax.set_xlabel("batch (in ladder order)")
    rate_ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    rate_ax.set_ylabel("records / s")
    rate_ax.grid(axis="y", alpha=0.3)
    legend_below(fig, rate_ax, columns=3)
    records, clock = _cumulative(total_ax, rungs)
    took = f"{clock:,.2f} s" if clock < 60 else seconds(clock)
    total_ax.set_title(f"Cumulative records: {count(records)} in {took} of importing")
    total_ax.set_xlabel("time importing (verification excluded)")
    total_ax.xaxis.set_major_locator(MaxNLocator(nbins=5))
    total_ax.xaxis.set_major_formatter(FuncFormatter(seconds))
    total_ax.set_ylabel("records handled")
    counts(total_ax)
    total_ax.grid(alpha=0.3)
    return fig


# --- verification ----------------------------------------------------------------------------------


def latency(benchmarks: Sequence[BenchmarkResult], *, note: str = "no latency benchmarks were run") -> Figure:
    """Median latency of each benchmark query (a bar, every run a dot) against its limit (a black bar,
    its value in the query's label)."""
    fig = figure(11, 1.5 + 0.65 * max(1, len(benchmarks)))
    ax = fig.subplots()
    if not benchmarks:
        empty(ax, note)
        ax.set_title("Latency")
        return fig
    within = sum(b.passed for b in benchmarks)
    ax.set_title(
        f"Latency: median of {plural(len(benchmarks[0].runs_ms), 'run')} against the old tool's limits"
        f" ({within} of {len(benchmarks)} within)",
        fontweight="bold",
    )
    ys = list(range(len(benchmarks)))
    ax.barh(
        ys,
        [b.median_ms for b in benchmarks],
        color=[PASS_COLOUR if b.passed else FAIL_COLOUR for b in benchmarks],
        height=0.5,
    )
    for y, b in zip(ys, benchmarks, strict=True):
        ax.scatter(b.runs_ms, [y] * len(b.runs_ms), s=12, color="black", alpha=0.45, zorder=3)
        # One legend entry for all the limits.
        limit = "_" if y else "limit"
        ax.vlines(b.threshold_ms, y - 0.38, y + 0.38, colors="black", linewidth=3, zorder=4, label=limit)
        ax.annotate(f"{b.median_ms:,.2f} ms", (b.median_ms, y), xytext=(4, -14), textcoords="offset points", fontsize=8)
    ax.set_yticks(ys, [f"{b.title} (limit {b.threshold_ms:,.0f} ms)" for b in benchmarks])
    ax.invert_yaxis()
    ax.set_xscale("log")
    lowest = min(min(b.runs_ms) for b in benchmarks)
    highest = max(max(b.threshold_ms, *b.runs_ms) for b in benchmarks)
    ax.set_xlim(10 ** math.floor(math.log10(max(lowest, 1e-4))), highest * 8)
    ax.set_xlabel("milliseconds (log scale)")
    ax.grid(axis="x", alpha=0.3)
    legend_below(fig, ax)
    return fig


def _observed_counts(check: CheckResult, column: str, order: Sequence[str]) -> tuple[list[Any], list[int]]:
    """(values, counts) of a distribution check, allowed values in their own order, others after."""
    found = {row[column]: int(row["count"]) for row in check.observed}
    labels = [v for v in order if v in found] + [v for v in found if v not in order]
    return labels, [found[v] for v in labels]


def _counted_bars(ax: Axes, names: Sequence[Any], values: Sequence[int], allowed: Sequence[Any], title: str) -> None:
    """A panel of counts, one bar per value; values outside `allowed` in red."""
    ax.set_title(title)
    if not sum(values):
        empty(ax, "no professionals")
        return
    colours = [BAR_COLOUR if name in allowed else FAIL_COLOUR for name in names]
    total = sum(values)
    barh(ax, [label(n) for n in names], values, [f"{count(v)} ({fraction(v / total)})" for v in values], colours)
    ax.set_xlabel("professionals")
    counts(ax, "x", bins=3)
    ax.tick_params(axis="y", labelsize=8)


def _featured_panel(ax: Axes, featured: Sequence[Mapping[str, Any]]) -> None:
    if not featured:
        empty(ax, "no professionals")
        ax.set_title("Featured")
        return
    names = [label(row["industry"]) for row in featured]
    yes = [int(row["featured"] or 0) for row in featured]
    total = [int(row["count"]) for row in featured]
    ax.set_title(f"Featured: {count(sum(yes))} of {count(sum(total))}")
    barh(
        ax,
        names,
        [float(y) for y in yes],
        [f"{count(y)} ({fraction(y / t)})" for y, t in zip(yes, total, strict=True)],
        FEATURED_COLOUR,
    )
    ax.set_xlabel("featured professionals")
    counts(ax, "x", bins=3)
    ax.tick_params(axis="y", labelsize=8)


def _bands_panel(fig: Figure, ax: Axes, bands: Sequence[Mapping[str, Any]]) -> None:
    """The share of each rating band per industry: 100% bars, so that industries compare at a glance."""
    ax.set_title("Rating bands by industry")
    per: dict[Any, dict[str, int]] = {}
    for row in bands:
        per.setdefault(row["industry"], {})[row["band"]] = int(row["count"])
    industries = [i for i in INDUSTRIES if i in per] + sorted((i for i in per if i not in INDUSTRIES), key=str)
    if not industries:
        empty(ax, "no ratings")
        return
    positions = list(range(len(industries)))
    left = [0.0] * len(industries)
    for band, colour in BAND_COLOURS.items():
        shares = [per[i].get(band, 0) / sum(per[i].values()) for i in industries]
        if not any(shares):
            continue
        bars = ax.barh(positions, shares, left=left, color=colour, label=band)
        # A share is written inside its segment only where the segment is wide enough to hold it.
        ax.bar_label(
            bars,
            labels=[f"{s:.0%}" if s >= 0.12 else "" for s in shares],
            label_type="center",
            fontsize=7,
            color="white",
        )
        left = [a + b for a, b in zip(left, shares, strict=True)]
    ax.set_yticks(positions, [label(i) for i in industries])
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:.0%}"))
    ax.tick_params(axis="y", labelsize=8)
    legend_below(fig, ax, columns=6)


def distributions(
    report: VerifyReport, featured: Sequence[Mapping[str, Any]] = (), bands: Sequence[Mapping[str, Any]] | None = None
) -> Figure:
    """Industry, state, subscription tier and verification status (values outside the allowed ones in
    red), featured professionals per industry (`explore.featured_by_industry`), and the share of each
    rating band per industry (`explore.rating_bands`; by default, from the verification's own counts)."""
    fig = figure(14, 8)
    axes = fig.subplots(2, 3)
    fig.suptitle(f"Distributions of {count(report.rows)} professionals", fontsize=13, fontweight="bold")
    panels = [
        ("industries", "industry", INDUSTRIES, "By industry"),
        ("states", "state", STATES, "By state"),
        ("subscription_tiers", "subscription_tier", SUBSCRIPTION_TIERS, "By subscription tier"),
        ("verification_statuses", "verification_status", VERIFICATION_STATUSES, "By verification status"),
    ]
    for ax, (name, column, allowed, title) in zip(axes.flat, panels, strict=False):
        names, values = _observed_counts(report.check(name), column, allowed)
        _counted_bars(ax, names, values, allowed, title)
    _featured_panel(axes.flat[4], featured)
    _bands_panel(fig, axes.flat[5], bands_of(report.shape) if bands is None else bands)
    return fig


def rating_histogram(report: VerifyReport) -> Figure:
    """Professionals per half-star rating bucket; no rating in grey, out of range apart, in red."""
    check = report.check("ratings")
    fig = figure(11, 4.2)
    ax = fig.subplots()
    buckets = {row["bucket"]: int(row["count"]) for row in check.observed}
    stars = sorted(b for b in buckets if b not in ("none", "out of range"))
    names = stars + [b for b in ("none", "out of range") if b in buckets]
    if not names:
        empty(ax, "no professionals")
    else:
        colours = [BAR_COLOUR if b in stars else MUTED_COLOUR if b == "none" else FAIL_COLOUR for b in names]
        values = [buckets[b] for b in names]
        bars = ax.bar(range(len(names)), values, color=colours)
        ax.set_xticks(range(len(names)), names)
        ax.bar_label(bars, labels=[count(v) for v in values], fontsize=8, padding=2)
        ax.set_ylim(0, max(values) * 1.15)
        counts(ax)
    total = sum(buckets.values())
    rated = sum(buckets[b] for b in stars)
    apart = f", {count(check.failing)} out of range (shown apart, in red)" if check.failing else ""
    ax.set_title(f"Rating distribution: {count(rated)} of {count(total)} rated{apart}", fontweight="bold")
    ax.set_xlabel("rating, half-star buckets (1.0 to 5.0)")
    ax.set_ylabel("professionals")
    ax.grid(axis="y", alpha=0.3)
    return fig


def top_cities(report: VerifyReport) -> Figure:
    """The ten cities with the most professionals, with their mean rating."""
    rows = report.check("top_cities").observed
    fig = figure(11, 1.6 + 0.34 * max(3, len(rows)))
    ax = fig.subplots()
    if not rows:
        empty(ax, "no professionals")
    else:
        values = [int(r["count"]) for r in rows]
        labels = [
            count(v)
            + ("" if not isinstance(r["avg_rating"], int | float) else f"  (mean rating {r['avg_rating']:.1f})")
            for v, r in zip(values, rows, strict=True)
        ]
        barh(ax, [f"{r['city']}, {r['state']}" for r in rows], values, labels, BAR_COLOUR, headroom=1.45)
        counts(ax, "x")
    ax.set_title(f"Top {len(rows)} cities by professionals", fontweight="bold")
    ax.set_xlabel("professionals")
    return fig


# --- the verification history -------------------------------------------------------------------------


def _moment(text_time: str) -> datetime:
    return datetime.fromisoformat(text_time.replace("Z", "+00:00"))


def _time_axis(ax: Axes, moments: Sequence[datetime]) -> None:
    """Times as times: hours, minutes and seconds within a day, dates and hours across days."""
    locator = AutoDateLocator(minticks=2, maxticks=5)
    ax.xaxis.set_major_locator(locator)
    at_least_a_minute(ax, moments)
    within_a_day = max(moments) - min(moments) < timedelta(days=1)
    ax.xaxis.set_major_formatter(DateFormatter("%H:%M:%S" if within_a_day else "%Y-%m-%d\n%H:%M"))


def history(report: VerifyReport) -> Figure:
    """The rows and each benchmark's median latency at every recorded verification, this one last."""
    moments = [_moment(e.checked_at) for e in report.history] + [_moment(report.checked_at)]
    rows = [e.rows for e in report.history] + [report.rows]
    fig = figure(12, 3.8)
    rows_ax, latency_ax = fig.subplots(1, 2)
    fig.suptitle(f"The last {len(moments)} verifications of this database (UTC)", fontweight="bold")
    rows_ax.plot(moments, rows, marker="o", color=BAR_COLOUR, drawstyle="steps-post")
    rows_ax.set_title("Professionals")
    rows_ax.set_ylim(0, max(rows) * 1.2 or 1)
    counts(rows_ax)
    _time_axis(rows_ax, moments)
    rows_ax.grid(alpha=0.3)
    names = {b.name: b.title for b in report.benchmarks}
    for name in {n for e in report.history for n in e.latencies} | set(names):
        points = [(m, e.latencies[name]) for m, e in zip(moments, report.history, strict=False) if name in e.latencies]
        now = next((b.median_ms for b in report.benchmarks if b.name == name), None)
        if now is not None:
            points.append((moments[-1], now))
        if points:
            latency_ax.plot(
                [p[0] for p in points], [p[1] for p in points], marker="o", label=text(names.get(name, name))
            )
    latency_ax.set_title("Median latency (log scale)")
    if latency_ax.lines:
        latency_ax.set_yscale("log")
        latency_ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        latency_ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:g}"))
        latency_ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _p: ""))
        latency_ax.set_ylabel("milliseconds")
        legend_below(fig, latency_ax, columns=3)
    else:
        empty(latency_ax, "no latency measured")
    _time_axis(latency_ax, moments)
    latency_ax.grid(alpha=0.3)
    return fig
