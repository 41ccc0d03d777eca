"""What every figure shares: a figure without pyplot, axes that count in whole numbers, labels from the
data that are never markup, legends that stay clear of the data.

Matplotlib reads text between two dollar signs as mathematical markup: a city called "$5 Town $"
would be typeset. Every text that comes from the data goes through `text()` (or `label()`), which
escapes the dollar signs, so it is drawn as it is written.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Literal

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from ._look import MUTED_COLOUR


def figure(width: float, height: float) -> Figure:
    return Figure(figsize=(width, height), layout="constrained", facecolor="white")


def text(value: Any) -> str:
    """A value from the data as figure text: drawn as written, never as mathematical markup."""
    return str(value).replace("$", r"\$")


def label(value: Any) -> str:
    """A word of the data as a label: `real_estate` -> `real estate`, never markup."""
    return text(value).replace("_", " ")


def _whole(value: float, _position: int = 0) -> str:
    # round() first: a tick at -0.3 is "0", never "-0".
    return f"{round(value) + 0:,}"


def counts(ax: Axes, axis: str = "y", bins: int | Literal["auto"] = "auto") -> None:
    """A counting axis: ticks only at whole numbers, written like 250,000."""
    target = ax.yaxis if axis == "y" else ax.xaxis
    target.set_major_locator(MaxNLocator(nbins=bins, integer=True, min_n_ticks=1))
    target.set_major_formatter(FuncFormatter(_whole))


def seconds(value: float, _position: int = 0) -> str:
    """A tick on an axis of seconds: 0.5 ms, 45 s, 2 min 05 s."""
    if value == 0:
        return "0"
    if value < 1:
        return f"{value * 1000:.3g} ms"
    if value < 60:
        return f"{value:.3g} s"
    minutes, rest = divmod(round(value), 60)
    return f"{minutes} min {rest:02d} s"


def at_least_a_minute(ax: Axes, moments: Sequence[datetime]) -> None:
    """A time axis over at least a minute around `moments`. Moments within one second (a first backup,
    a ladder's quick verifications) leave matplotlib a range of nothing, which it widens to days or
    years: ticks at midnight all reading "00:00:00", or the years 2025 to 2029 around one backup."""
    first, last = min(moments), max(moments)
    if last - first < timedelta(minutes=1):
        middle = first + (last - first) / 2
        ax.set_xlim(middle - timedelta(seconds=30), middle + timedelta(seconds=30))  # type: ignore[arg-type]


def empty(ax: Axes, message: str) -> None:
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, color=MUTED_COLOUR, fontsize=11)
    ax.set_xticks([])
    ax.set_yticks([])


def barh(
    ax: Axes,
    names: Sequence[str],
    values: Sequence[float],
    labels: Sequence[str],
    colour: str | Sequence[str],
    headroom: float = 1.3,
) -> None:
    """Horizontal bars, first name on top, each labelled at its end, with room for the labels."""
    positions = list(range(len(names)))
    bars = ax.barh(positions, values, color=colour)
    ax.set_yticks(positions, [text(n) for n in names])
    ax.bar_label(bars, labels=[text(t) for t in labels], fontsize=8, padding=3)
    ax.invert_yaxis()
    ax.set_xlim(0, (max(values, default=0) or 1) * headroom)


def legend_below(fig: Figure, ax: Axes, columns: int = 4) -> None:
    """The axes' legend under the whole figure, where it covers no bar and no label."""
    handles, names = ax.get_legend_handles_labels()
    if handles:
        fig.legend(handles, names, loc="outside lower center", ncols=min(columns, len(handles)), fontsize=8)
