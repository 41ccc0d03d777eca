"""Matplotlib figures of what the engine returns: throughput, latency, distributions, ratings, cities,
rollbacks and backups.

Every function takes results (or the rows of `estateflow_nb.explore`) and returns a new
`matplotlib.figure.Figure`. Nothing here touches pyplot or its global state, and nothing chooses a
backend: a figure is drawn when it is saved or shown (`views.show` embeds it as a PNG). Each figure
has a title, labelled axes, its numbers written on the bars, and the thresholds it is judged by
drawn on it, so that it reads at a glance in a report.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from matplotlib.axes import Axes
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ._look import (
    BAR_COLOUR,
    FAIL_COLOUR,
    FEATURED_COLOUR,
    INDUSTRY_COLOURS,
    MUTED_COLOUR,
    PASS_COLOUR,
    SERIES,
)
from .backup import BackupInfo
from .explore import cities as merge_cities
from .ladder import LadderResult, RungResult
from .rollback import RollbackResult
from .schema import INDUSTRIES, STATES, SUBSCRIPTION_TIERS, VERIFICATION_STATUSES
from .verify import BenchmarkResult, CheckResult, VerifyReport

__all__ = [
    "backups_over_time",
    "city_distribution",
    "distributions",
    "featured_by_city",
    "latency",
    "rating_histogram",
    "rating_vs_reviews",
    "ratings_by",
    "rollback_rows",
    "throughput",
    "top_cities",
]


def _figure(width: float, height: float) -> Figure:
    return Figure(figsize=(width, height), layout="constrained", facecolor="white")


def _thousands(ax: Axes, axis: str = "y") -> None:
    """Tick labels like 250,000 on the counting axis."""
    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(lambda value, _pos: f"{value:,.0f}")


def _empty(ax: Axes, message: str) -> None:
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, color=MUTED_COLOUR, fontsize=11)
    ax.set_xticks([])
    ax.set_yticks([])


def _label(text: Any) -> str:
    return str(text).replace("_", " ")


# --- the ladder ------------------------------------------------------------------------------------


def throughput(result: LadderResult | Sequence[RungResult]) -> Figure:
    """Records/s of every batch (one colour per rung, its target dashed) and cumulative records over time.

    Time on the right is import time: the verifications between rungs are left out, so the slope is
    the import rate.
    """
    rungs = list(result.rungs if isinstance(result, LadderResult) else result)
    fig = _figure(12, 4.4)
    rate_ax, total_ax = fig.subplots(1, 2, width_ratios=(1.25, 1))
    fig.suptitle("Import throughput by batch", fontsize=13, fontweight="bold")
    batches = [(i, step, m) for i, step in enumerate(rungs) for m in step.imported.batch_metrics]
    if not batches:
        for ax in (rate_ax, total_ax):
            _empty(ax, "no batch written yet" if rungs else "no rung has run yet")
        return fig
    position = 0
    clock = 0.0
    records = 0
    top_rate = 0.0
    for i, step in enumerate(rungs):
        metrics = step.imported.batch_metrics
        colour = SERIES[i % len(SERIES)]
        label = f"{step.rung.name}: {step.records:,} records, {step.records_per_second:,.0f}/s"
        if metrics:
            xs = list(range(position + 1, position + len(metrics) + 1))
            rates = [m.records_per_second for m in metrics]
            top_rate = max(top_rate, *rates)
            rate_ax.bar(xs, rates, color=colour, width=0.8, label=label)
            if step.rung.target_rate is not None:
                rate_ax.hlines(
                    step.rung.target_rate,
                    xs[0] - 0.45,
                    xs[-1] + 0.45,
                    colors=FAIL_COLOUR,
                    linestyles="--",
                    linewidth=1.5,
                )
                rate_ax.annotate(
                    f"target {step.rung.target_rate:.0f}/s",
                    (xs[0] - 0.45, step.rung.target_rate),
                    xytext=(0, 3),
                    textcoords="offset points",
                    fontsize=8,
                    color=FAIL_COLOUR,
                )
            times = [clock] + [clock + m.elapsed for m in metrics]
            totals = [records]
            for m in metrics:
                totals.append(totals[-1] + m.records)
            total_ax.plot(times, totals, marker="o", markersize=3, color=colour, label=label)
            position += len(metrics)
            clock = times[-1]
            records = totals[-1]
    rate_ax.set_yscale("log")
    rate_ax.set_ylim(bottom=min(10.0, *(s.rung.target_rate or 10.0 for s in rungs)) / 2, top=top_rate * 3)
    rate_ax.set_title("Records per second, each batch (log scale)")
    rate_ax.set_xlabel("batch (in ladder order)")
    rate_ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    rate_ax.set_ylabel("records / s")
    rate_ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncols=2, fontsize=8)
    rate_ax.grid(axis="y", alpha=0.3)
    total_ax.set_title(f"Cumulative records: {records:,} in {clock:,.2f} s of importing")
    total_ax.set_xlabel("seconds importing (verification excluded)")
    total_ax.set_ylabel("records handled")
    _thousands(total_ax)
    total_ax.grid(alpha=0.3)
    return fig


# --- verification ----------------------------------------------------------------------------------


def latency(benchmarks: Sequence[BenchmarkResult]) -> Figure:
    """Median latency of each benchmark query (a bar, every run a dot) against its limit (a black bar)."""
    fig = _figure(11, 1.1 + 0.65 * max(1, len(benchmarks)))
    ax = fig.subplots()
    if not benchmarks:
        _empty(ax, "no latency benchmarks were run")
        ax.set_title("Latency")
        return fig
    within = sum(b.passed for b in benchmarks)
    ax.set_title(
        f"Latency: median of {len(benchmarks[0].runs_ms)} runs against the old tool's limits"
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
        ax.vlines(b.threshold_ms, y - 0.38, y + 0.38, colors="black", linewidth=3, zorder=4)
        ax.annotate(
            f"limit {b.threshold_ms:,.0f} ms", (b.threshold_ms, y + 0.38), xytext=(4, -2), textcoords="offset points"
        )
        ax.annotate(f"{b.median_ms:,.2f} ms", (b.median_ms, y), xytext=(4, -12), textcoords="offset points", fontsize=9)
    ax.set_yticks(ys, [b.title for b in benchmarks])
    ax.invert_yaxis()
    ax.set_xscale("log")
    lowest = min(min(b.runs_ms) for b in benchmarks)
    highest = max(max(b.threshold_ms, *b.runs_ms) for b in benchmarks)
    ax.set_xlim(10 ** math.floor(math.log10(max(lowest, 1e-4))), highest * 8)
    ax.set_xlabel("milliseconds (log scale)")
    ax.grid(axis="x", alpha=0.3)
    return fig


def _barh(ax: Axes, names: Sequence[str], values: Sequence[float], labels: Sequence[str], colour: str) -> None:
    """Horizontal bars, first name on top, each labelled at its end."""
    bars = ax.barh(names, values, color=colour)
    ax.bar_label(bars, labels=labels, fontsize=8, padding=3)
    ax.invert_yaxis()


def _bars(ax: Axes, labels: Sequence[Any], counts: Sequence[int], allowed: Iterable[Any], title: str) -> None:
    allowed = set(allowed)
    colours = [BAR_COLOUR if label in allowed else FAIL_COLOUR for label in labels]
    bars = ax.bar([_label(v) for v in labels], counts, color=colours)
    ax.bar_label(bars, labels=[f"{c:,}" for c in counts], fontsize=8, padding=2)
    ax.set_title(title)
    ax.set_ylabel("professionals")
    _thousands(ax)
    ax.margins(y=0.15)
    ax.tick_params(axis="x", labelrotation=25, labelsize=8)


def _observed_counts(check: CheckResult, column: str, order: Sequence[str]) -> tuple[list[Any], list[int]]:
    """(values, counts) of a distribution check, allowed values in their own order, others after."""
    counts = {row[column]: int(row["count"]) for row in check.observed}
    labels = [v for v in order if v in counts] + [v for v in counts if v not in order]
    return labels, [counts[v] for v in labels]


def distributions(report: VerifyReport, featured: Sequence[Mapping[str, Any]] = ()) -> Figure:
    """Industry, state, subscription tier and verification status (values outside the allowed ones in
    red), and featured professionals per industry (from `explore.featured_by_industry`)."""
    fig = _figure(13, 7.5)
    axes = fig.subplots(2, 3)
    fig.suptitle("Distributions", fontsize=13, fontweight="bold")
    panels = [
        ("industries", "industry", INDUSTRIES, "By industry"),
        ("states", "state", STATES, "By state"),
        ("subscription_tiers", "subscription_tier", SUBSCRIPTION_TIERS, "By subscription tier"),
        ("verification_statuses", "verification_status", VERIFICATION_STATUSES, "By verification status"),
    ]
    for ax, (name, column, allowed, title) in zip(axes.flat, panels, strict=False):
        labels, counts = _observed_counts(report.check(name), column, allowed)
        if counts:
            _bars(ax, labels, counts, allowed, title)
        else:
            _empty(ax, "no professionals")
            ax.set_title(title)
    ax = axes.flat[4]
    if featured:
        names = [_label(row["industry"]) for row in featured]
        yes = [int(row["featured"] or 0) for row in featured]
        no = [int(row["count"]) - y for row, y in zip(featured, yes, strict=True)]
        ax.bar(names, no, color=MUTED_COLOUR, label="not featured")
        bars = ax.bar(names, yes, bottom=no, color=FEATURED_COLOUR, label="featured")
        ax.bar_label(bars, labels=[f"{y:,}" for y in yes], fontsize=8, padding=2)
        ax.legend(fontsize=8, loc="upper right")
        ax.margins(y=0.2)
        ax.tick_params(axis="x", labelrotation=25, labelsize=8)
        ax.set_ylabel("professionals")
        _thousands(ax)
        ax.set_title(f"Featured: {sum(yes):,} of {sum(yes) + sum(no):,}")
    else:
        _empty(ax, "no professionals")
        ax.set_title("Featured")
    ax = axes.flat[5]
    industries = report.check("industries").observed
    rated = [row for row in industries if row.get("avg_rating") is not None]
    if rated:
        ratings = [r["avg_rating"] for r in rated]
        _barh(ax, [_label(r["industry"]) for r in rated], ratings, [f"{v:.2f}" for v in ratings], BAR_COLOUR)
        ax.set_xlim(1, 5.4)
        ax.set_xlabel("mean rating (1 to 5)")
        ax.tick_params(axis="y", labelsize=8)
    else:
        _empty(ax, "no ratings")
    ax.set_title("Mean rating by industry")
    return fig


def rating_histogram(report: VerifyReport) -> Figure:
    """Professionals per half-star rating bucket; no rating in grey, out of range in red."""
    check = report.check("ratings")
    fig = _figure(11, 4)
    ax = fig.subplots()
    buckets = {row["bucket"]: int(row["count"]) for row in check.observed}
    stars = sorted(b for b in buckets if b not in ("none", "out of range"))
    labels = stars + [b for b in ("none", "out of range") if b in buckets]
    if not labels:
        _empty(ax, "no professionals")
    else:
        colours = [BAR_COLOUR if b in stars else MUTED_COLOUR if b == "none" else FAIL_COLOUR for b in labels]
        counts = [buckets[b] for b in labels]
        bars = ax.bar(labels, counts, color=colours)
        ax.bar_label(bars, labels=[f"{c:,}" for c in counts], fontsize=8, padding=2)
        ax.margins(y=0.15)
    total = sum(buckets.values())
    rated = sum(buckets[b] for b in stars)
    ax.set_title(
        f"Rating distribution: {rated:,} of {total:,} rated, {check.failing:,} out of range", fontweight="bold"
    )
    ax.set_xlabel("rating, half-star buckets (1.0 to 5.0)")
    ax.set_ylabel("professionals")
    _thousands(ax)
    ax.grid(axis="y", alpha=0.3)
    return fig


def top_cities(report: VerifyReport) -> Figure:
    """The ten cities with the most professionals, with their mean rating."""
    check = report.check("top_cities")
    fig = _figure(11, 4.6)
    ax = fig.subplots()
    rows = check.observed
    if not rows:
        _empty(ax, "no professionals")
    else:
        names = [f"{r['city']}, {r['state']}" for r in rows]
        counts = [int(r["count"]) for r in rows]
        labels = [
            f"{c:,}" + ("" if r["avg_rating"] is None else f"  (mean rating {r['avg_rating']:.2f})")
            for c, r in zip(counts, rows, strict=True)
        ]
        _barh(ax, names, counts, labels, BAR_COLOUR)
        ax.margins(x=0.3)
    ax.set_title(f"Top {len(rows)} cities by professionals", fontweight="bold")
    ax.set_xlabel("professionals")
    _thousands(ax, "x")
    return fig


# --- exploration ---------------------------------------------------------------------------------


def _weighted_box(label: str, counts: Mapping[float, int]) -> dict[str, Any]:
    """Box plot statistics (matplotlib's `bxp` format) of values given with their counts."""
    values = sorted(counts)
    total = sum(counts.values())

    def value_at(index: int) -> float:
        # The index-th smallest value of the values repeated by their counts.
        seen = 0
        for value in values:
            seen += counts[value]
            if index < seen:
                return value
        return values[-1]

    def quantile(q: float) -> float:
        # Linear interpolation between the two nearest ranks, as numpy's default percentile.
        position = q * (total - 1)
        low, high = value_at(math.floor(position)), value_at(math.ceil(position))
        return low + (high - low) * (position - math.floor(position))

    # Ratings take a few dozen values: whiskers to the lowest and highest, rather than a column of
    # "outliers" below a 1.5 IQR whisker, read better.
    return {
        "label": label,
        "q1": quantile(0.25),
        "med": quantile(0.5),
        "q3": quantile(0.75),
        "mean": sum(v * n for v, n in counts.items()) / total,
        "whislo": values[0],
        "whishi": values[-1],
        "fliers": [],
    }


def ratings_by(rows: Sequence[Mapping[str, Any]]) -> Figure:
    """Box plots of ratings by industry and by state, from `explore.rating_counts` rows."""
    fig = _figure(13, 4.8)
    by_industry, by_state = fig.subplots(1, 2, width_ratios=(2, 1))
    fig.suptitle(
        "Ratings by industry and by state (box: quartiles, line: median, triangle: mean, whiskers: lowest to highest)",
        fontweight="bold",
    )
    for ax, column, order in ((by_industry, "industry", INDUSTRIES), (by_state, "state", STATES)):
        groups: dict[Any, dict[float, int]] = {}
        for row in rows:
            group = groups.setdefault(row[column], {})
            group[float(row["rating"])] = group.get(float(row["rating"]), 0) + int(row["count"])
        keys = [k for k in order if k in groups] + sorted((k for k in groups if k not in order), key=str)
        if not keys:
            _empty(ax, "no ratings")
            continue
        stats = [_weighted_box(f"{_label(k)}\n(n={sum(groups[k].values()):,})", groups[k]) for k in keys]
        boxes = ax.bxp(stats, showmeans=True, patch_artist=True, widths=0.6)
        for patch, key in zip(boxes["boxes"], keys, strict=True):
            patch.set_facecolor(INDUSTRY_COLOURS.get(key, BAR_COLOUR) if column == "industry" else BAR_COLOUR)
            patch.set_alpha(0.55)
        ax.set_ylim(0.8, 5.2)
        ax.set_ylabel("rating")
        ax.set_xlabel(column)
        ax.tick_params(axis="x", labelsize=8)
        ax.grid(axis="y", alpha=0.3)
    by_industry.set_title("By industry")
    by_state.set_title("By state")
    return fig


def rating_vs_reviews(sample: Sequence[Mapping[str, Any]], means: Sequence[Mapping[str, Any]] = ()) -> Figure:
    """A sample of professionals as dots (one colour per industry) and the mean review count per rating
    (from `explore.rating_review_sample` and `explore.reviews_by_rating`)."""
    fig = _figure(11, 4.8)
    ax = fig.subplots()
    if not sample and not means:
        _empty(ax, "no ratings")
    for industry in [*INDUSTRIES, None]:
        points = [
            r for r in sample if (r["industry"] == industry) or (industry is None and r["industry"] not in INDUSTRIES)
        ]
        if points:
            ax.scatter(
                [r["rating"] for r in points],
                [r["review_count"] for r in points],
                s=9,
                alpha=0.5,
                color=INDUSTRY_COLOURS.get(industry or "", MUTED_COLOUR),
                label=_label(industry or "other"),
            )
    if means:
        ax.plot(
            [r["rating"] for r in means],
            [r["mean_reviews"] for r in means],
            color="black",
            linewidth=2,
            label="mean reviews per rating (all rows)",
        )
    ax.set_yscale("symlog", linthresh=10)
    ax.set_xlabel("rating")
    ax.set_ylabel("review count (log scale above 10)")
    ax.set_title(f"Rating against review count ({len(sample):,} professionals sampled evenly)", fontweight="bold")
    if sample or means:
        ax.legend(fontsize=8, ncols=2, loc="upper left")
    ax.grid(alpha=0.3)
    return fig


def _city_figure(merged: Sequence[Mapping[str, Any]]) -> tuple[Figure, Axes, list[str]]:
    """A figure tall enough for one bar per city, and the cities' names ("Miami, FL")."""
    fig = _figure(12, 1.4 + 0.34 * max(3, len(merged)))
    ax = fig.subplots()
    if not merged:
        _empty(ax, "no city matches")
    return fig, ax, [f"{c['city']}, {c['state']}" for c in merged]


def city_distribution(rows: Sequence[Mapping[str, Any]], top: int = 15) -> Figure:
    """Professionals per city, stacked by industry, for the `top` cities of `explore.city_counts` rows."""
    merged = merge_cities(rows)[:top]
    fig, ax, names = _city_figure(merged)
    if merged:
        left = [0] * len(merged)
        industries = [i for i in INDUSTRIES if any(i in c["by_industry"] for c in merged)]
        industries += sorted({i for c in merged for i in c["by_industry"]} - set(INDUSTRIES), key=str)
        for industry in industries:
            widths = [c["by_industry"].get(industry, 0) for c in merged]
            ax.barh(
                names, widths, left=left, color=INDUSTRY_COLOURS.get(industry, MUTED_COLOUR), label=_label(industry)
            )
            left = [a + b for a, b in zip(left, widths, strict=True)]
        for y, total in enumerate(left):
            ax.annotate(f"{total:,}", (total, y), xytext=(3, -3), textcoords="offset points", fontsize=8)
        ax.invert_yaxis()
        ax.margins(x=0.08)
        ax.legend(fontsize=8, loc="lower right")
    ax.set_title(f"Professionals per city (top {len(merged)})", fontweight="bold")
    ax.set_xlabel("professionals")
    _thousands(ax, "x")
    return fig


def featured_by_city(rows: Sequence[Mapping[str, Any]], top: int = 15) -> Figure:
    """Featured professionals per city (and their share of the city), for the `top` cities by featured."""
    merged = sorted(merge_cities(rows), key=lambda c: (-c["featured"], -c["count"], str(c["city"])))[:top]
    fig, ax, names = _city_figure(merged)
    if merged:
        counts = [c["featured"] for c in merged]
        labels = [f"{c['featured']:,} of {c['count']:,} ({c['featured'] / c['count']:.0%})" for c in merged]
        _barh(ax, names, counts, labels, FEATURED_COLOUR)
        ax.margins(x=0.25)
    ax.set_title(f"Featured professionals by city (top {len(merged)})", fontweight="bold")
    ax.set_xlabel("featured professionals")
    _thousands(ax, "x")
    return fig


# --- rollbacks and backups ------------------------------------------------------------------------


def rollback_rows(result: RollbackResult) -> Figure:
    """The rows a rollback removes (or removed) and restores to earlier values, by industry and state,
    from `RollbackResult.by_industry_state`."""
    rows = result.by_industry_state
    fig = _figure(11, 1.4 + 0.32 * max(3, len(rows)))
    ax = fig.subplots()
    done = result.status == "rolled_back"
    removed = [int(r["removed"]) for r in rows]
    restored = [int(r["restored"]) for r in rows]
    if not rows:
        _empty(ax, "no rows to roll back")
    else:
        names = [f"{_label(r['industry'])}, {r['state']}" for r in rows]
        ax.barh(names, removed, color=FAIL_COLOUR, label="removed" if done else "to be removed")
        bars = ax.barh(
            names,
            restored,
            left=removed,
            color=MUTED_COLOUR,
            label="restored to earlier values" if done else "to be restored",
        )
        labels = [f"{a:,}" + (f" + {b:,} restored" if b else "") for a, b in zip(removed, restored, strict=True)]
        ax.bar_label(bars, labels=labels, fontsize=8, padding=3)
        ax.invert_yaxis()
        # Room for the labels: bars' sticky edges keep margins() from widening past the longest one.
        ax.set_xlim(0, max(a + b for a, b in zip(removed, restored, strict=True)) * 1.25 or 1)
        ax.legend(fontsize=8, loc="lower right")
        ax.tick_params(axis="y", labelsize=8)
    removes, restores = ("Removed", "restored") if done else ("Would remove", "restore")
    ax.set_title(
        f"{removes} {sum(removed):,} rows and {restores} {sum(restored):,}, by industry and state", fontweight="bold"
    )
    ax.set_xlabel("professionals")
    _thousands(ax, "x")
    return fig


def backups_over_time(backups: Sequence[BackupInfo]) -> Figure:
    """Rows of professionals in each backup against when it was taken (from `backup.list_backups`)."""
    counted = sorted((b for b in backups if b.rows is not None), key=lambda b: b.taken_at)
    fig = _figure(11, 3.6)
    ax = fig.subplots()
    if not counted:
        _empty(ax, "no backups with readable counts")
    else:
        times = [datetime.fromisoformat(b.taken_at.replace("Z", "+00:00")) for b in counted]
        rows = [int(b.rows or 0) for b in counted]
        ax.plot(
            times,  # type: ignore[arg-type]  # matplotlib's units take datetimes
            rows,
            color=BAR_COLOUR,
            marker="o",
            drawstyle="steps-post",
            linewidth=1.5,
        )
        for moment, value in zip(times, rows, strict=True):
            ax.annotate(
                f"{value:,}", (moment, value), xytext=(0, 6), textcoords="offset points", ha="center", fontsize=8
            )
        locator = AutoDateLocator()
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
        ax.set_ylim(0, max(rows) * 1.2 or 1)
        ax.grid(alpha=0.3)
    ax.set_title(f"Rows in each of {len(counted)} backups, by when it was taken (UTC)", fontweight="bold")
    ax.set_ylabel("professionals")
    _thousands(ax)
    return fig
