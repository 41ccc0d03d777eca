"""The figures of exploration, rollbacks and backups (re-exported by `plots`, which says how all figures
are made)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from matplotlib.axes import Axes
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure

from ._look import BAR_COLOUR, FAIL_COLOUR, FEATURED_COLOUR, INDUSTRY_COLOURS, MUTED_COLOUR, count, fraction
from ._plot_kit import at_least_a_minute, barh, counts, empty, figure, label, legend_below, text
from .backup import BackupInfo
from .explore import cities as merge_cities
from .rollback import RollbackResult
from .schema import INDUSTRIES, STATES

RATING_LIMITS = (1.0, 5.0)


def _in_range(rating: Any) -> bool:
    return isinstance(rating, int | float) and not isinstance(rating, bool) and 1.0 <= rating <= 5.0


def _weighted_box(name: str, weights: Mapping[float, int]) -> dict[str, Any]:
    """Box plot statistics (matplotlib's `bxp` format) of values given with their counts."""
    values = sorted(weights)
    total = sum(weights.values())

    def value_at(index: int) -> float:
        # The index-th smallest value of the values repeated by their counts.
        seen = 0
        for value in values:
            seen += weights[value]
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
        "label": name,
        "q1": quantile(0.25),
        "med": quantile(0.5),
        "q3": quantile(0.75),
        "mean": sum(v * n for v, n in weights.items()) / total,
        "whislo": values[0],
        "whishi": values[-1],
        "fliers": [],
    }


def _boxes(ax: Axes, rows: Sequence[Mapping[str, Any]], column: str, order: Sequence[str]) -> int:
    """Box plots of the ratings in range, one per value of `column`; how many ratings were out of range."""
    groups: dict[Any, dict[float, int]] = {}
    apart: dict[Any, int] = {}
    for row in rows:
        if _in_range(row["rating"]):
            group = groups.setdefault(row[column], {})
            group[float(row["rating"])] = group.get(float(row["rating"]), 0) + int(row["count"])
        else:
            apart[row[column]] = apart.get(row[column], 0) + int(row["count"])
    keys = [k for k in order if k in groups] + sorted((k for k in groups if k not in order), key=str)
    if not keys:
        empty(ax, "no ratings")
        return sum(apart.values())
    stats = []
    for key in keys:
        name = f"{label(key)}\n(n={count(sum(groups[key].values()))})"
        if apart.get(key):
            name += f"\n{count(apart[key])} out of range"
        stats.append(_weighted_box(name, groups[key]))
    boxes = ax.bxp(stats, showmeans=True, patch_artist=True, widths=0.6)
    for patch, key in zip(boxes["boxes"], keys, strict=True):
        patch.set_facecolor(INDUSTRY_COLOURS.get(key, BAR_COLOUR) if column == "industry" else BAR_COLOUR)
        patch.set_alpha(0.55)
    ax.set_ylim(0.8, 5.2)
    ax.set_ylabel("rating")
    ax.set_xlabel(column)
    ax.tick_params(axis="x", labelsize=8)
    ax.grid(axis="y", alpha=0.3)
    return sum(apart.values())


def ratings_by(rows: Sequence[Mapping[str, Any]]) -> Figure:
    """Box plots of ratings by industry and by state, from `explore.rating_counts` rows. Ratings out of
    range are not in the boxes (they would stretch the axis or vanish beyond it): each box says how many
    of its group's ratings were left out."""
    fig = figure(13, 5.2)
    by_industry, by_state = fig.subplots(1, 2, width_ratios=(2, 1))
    apart = _boxes(by_industry, rows, "industry", INDUSTRIES)
    _boxes(by_state, rows, "state", STATES)
    note = f"; {count(apart)} ratings out of range left out" if apart else ""
    fig.suptitle(
        f"Ratings by industry and by state (box: quartiles, line: median, triangle: mean, whiskers: lowest to"
        f" highest{note})",
        fontweight="bold",
    )
    by_industry.set_title("By industry")
    by_state.set_title("By state")
    return fig


def rating_vs_reviews(sample: Sequence[Mapping[str, Any]], means: Sequence[Mapping[str, Any]] = ()) -> Figure:
    """A sample of professionals as dots (one colour per industry) and the mean review count per rating
    (from `explore.rating_review_sample` and `explore.reviews_by_rating`); ratings out of range are left
    out, and counted in the title."""
    fig = figure(11, 5.4)
    ax = fig.subplots()
    shown = [r for r in sample if _in_range(r["rating"]) and isinstance(r["review_count"], int | float)]
    means = [r for r in means if _in_range(r["rating"])]
    if not shown and not means:
        empty(ax, "no ratings")
    for industry in [*INDUSTRIES, None]:
        points = [
            r for r in shown if r["industry"] == industry or (industry is None and r["industry"] not in INDUSTRIES)
        ]
        if points:
            ax.scatter(
                [r["rating"] for r in points],
                [r["review_count"] for r in points],
                s=9,
                alpha=0.5,
                color=INDUSTRY_COLOURS.get(industry or "", MUTED_COLOUR),
                label=label(industry or "other"),
            )
    if means:
        ax.plot(
            [r["rating"] for r in means],
            [r["mean_reviews"] for r in means],
            color="black",
            linewidth=2,
            label="mean reviews per rating (every matching professional)",
        )
    ax.set_xlim(0.9, 5.1)
    ax.set_yscale("symlog", linthresh=10)
    ax.set_ylim(bottom=0)  # no review count is below zero: no empty half of an axis
    ax.set_xlabel("rating")
    ax.set_ylabel("review count (log scale above 10)")
    apart = len(sample) - len(shown)
    note = f"; {count(apart)} out of range left out" if apart else ""
    ax.set_title(
        f"Rating against review count ({count(len(shown))} professionals sampled evenly{note})", fontweight="bold"
    )
    ax.grid(alpha=0.3)
    legend_below(fig, ax, columns=4)
    return fig


def _city_figure(merged: Sequence[Mapping[str, Any]]) -> tuple[Figure, Axes, list[str]]:
    """A figure tall enough for one bar per city, and the cities' names ("Miami, FL")."""
    fig = figure(12, 1.9 + 0.34 * max(3, len(merged)))
    ax = fig.subplots()
    if not merged:
        empty(ax, "no city matches")
    return fig, ax, [f"{c['city']}, {c['state']}" for c in merged]


def city_distribution(rows: Sequence[Mapping[str, Any]], top: int = 15) -> Figure:
    """Professionals per city, stacked by industry, for the `top` cities of `explore.city_counts` rows."""
    merged = merge_cities(rows)[:top]
    fig, ax, names = _city_figure(merged)
    if merged:
        positions = list(range(len(merged)))
        left = [0] * len(merged)
        industries = [i for i in INDUSTRIES if any(i in c["by_industry"] for c in merged)]
        industries += sorted({i for c in merged for i in c["by_industry"]} - set(INDUSTRIES), key=str)
        for industry in industries:
            widths = [c["by_industry"].get(industry, 0) for c in merged]
            ax.barh(
                positions, widths, left=left, color=INDUSTRY_COLOURS.get(industry, MUTED_COLOUR), label=label(industry)
            )
            left = [a + b for a, b in zip(left, widths, strict=True)]
        for y, total in enumerate(left):
            ax.annotate(count(total), (total, y), xytext=(3, -3), textcoords="offset points", fontsize=8)
        ax.set_yticks(positions, [text(n) for n in names])
        ax.invert_yaxis()
        ax.set_xlim(0, max(left) * 1.12 or 1)
        legend_below(fig, ax, columns=6)
        counts(ax, "x")
    ax.set_title(f"Professionals per city (top {len(merged)})", fontweight="bold")
    ax.set_xlabel("professionals")
    return fig


def featured_by_city(rows: Sequence[Mapping[str, Any]], top: int = 15) -> Figure:
    """Featured professionals per city (and their share of the city), for the `top` cities by featured."""
    merged = sorted(merge_cities(rows), key=lambda c: (-c["featured"], -c["count"], str(c["city"])))[:top]
    fig, ax, names = _city_figure(merged)
    if merged:
        values = [c["featured"] for c in merged]
        labels = [
            f"{count(c['featured'])} of {count(c['count'])} ({fraction(c['featured'] / c['count'])})" for c in merged
        ]
        barh(ax, names, values, labels, FEATURED_COLOUR)
        counts(ax, "x")
    ax.set_title(f"Featured professionals by city (top {len(merged)})", fontweight="bold")
    ax.set_xlabel("featured professionals")
    return fig


def rollback_rows(result: RollbackResult) -> Figure:
    """The rows a rollback removes (or removed) and restores to earlier values, by industry and state,
    from `RollbackResult.by_industry_state`."""
    rows = result.by_industry_state
    fig = figure(11, 1.9 + 0.32 * max(3, len(rows)))
    ax = fig.subplots()
    done = result.status == "rolled_back"
    removed = [int(r["removed"]) for r in rows]
    restored = [int(r["restored"]) for r in rows]
    if not rows:
        empty(ax, "no rows to roll back")
    else:
        positions = list(range(len(rows)))
        ax.barh(positions, removed, color=FAIL_COLOUR, label="removed" if done else "to be removed")
        bars = ax.barh(
            positions,
            restored,
            left=removed,
            color=MUTED_COLOUR,
            label="restored to earlier values" if done else "to be restored",
        )
        labels = [count(a) + (f" + {count(b)} restored" if b else "") for a, b in zip(removed, restored, strict=True)]
        ax.bar_label(bars, labels=labels, fontsize=8, padding=3)
        ax.set_yticks(positions, [f"{label(r['industry'])}, {text(r['state'])}" for r in rows])
        ax.invert_yaxis()
        # Room for the labels: bars' sticky edges keep margins() from widening past the longest one.
        ax.set_xlim(0, max(a + b for a, b in zip(removed, restored, strict=True)) * 1.3 or 1)
        legend_below(fig, ax)
        ax.tick_params(axis="y", labelsize=8)
        counts(ax, "x")
    removes, restores = ("Removed", "restored") if done else ("Would remove", "restore")
    ax.set_title(
        f"{removes} {count(sum(removed))} rows and {restores} {count(sum(restored))}, by industry and state",
        fontweight="bold",
    )
    ax.set_xlabel("professionals")
    return fig


def backups_over_time(backups: Sequence[BackupInfo]) -> Figure:
    """Rows of professionals in each backup against when it was taken (from `backup.list_backups`)."""
    counted = sorted((b for b in backups if b.rows is not None), key=lambda b: b.taken_at)
    fig = figure(11, 3.6)
    ax = fig.subplots()
    if not counted:
        empty(ax, "no backups with readable counts")
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
        locator = AutoDateLocator(minticks=2, maxticks=6)
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
        at_least_a_minute(ax, times)
        ax.set_ylim(0, max(rows) * 1.2 or 1)
        counts(ax)
        ax.grid(alpha=0.3)
    ax.set_title(f"Rows in each of {len(counted)} backups, by when it was taken (UTC)", fontweight="bold")
    ax.set_ylabel("professionals")
    return fig
