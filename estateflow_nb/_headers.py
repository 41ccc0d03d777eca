"""What every report header and section heading shares: the verdict box, the facts (every value
escaped), the database's absolute place, the run's parameters and command, a table of contents."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

from IPython.display import HTML

from ._look import COLOURS, Outcome, Verdict, count, outcome_of_verdict
from .reports import RunFacts
from .targets import describe_url


def escaped(text: Any) -> str:
    return html.escape(str(text), quote=True)


def header(title: str, verdict: Verdict | None, facts: Sequence[tuple[str, str]], outcome: Outcome = "neutral") -> HTML:
    """A report's head: the verdict in a box coloured by its outcome (if there is one), the title, then facts."""
    rows = "".join(
        f"<tr><th style='text-align:left;padding:2px 16px 2px 0;vertical-align:top'>{escaped(k)}</th>"
        f"<td style='text-align:left;word-break:break-all'>{escaped(v)}</td></tr>"
        for k, v in facts
    )
    colour = COLOURS[outcome_of_verdict(verdict) if verdict else outcome]
    box = (
        f"<div class='ef-verdict' style='display:inline-block;padding:6px 18px;border-radius:6px;"
        f"background:{colour};color:white;font-size:26px;font-weight:bold'>{escaped(verdict)}</div>"
        if verdict
        else ""
    )
    return HTML(
        f"<div class='ef-report-header' data-verdict='{escaped(verdict or '')}'>{box}"
        f"<h1 style='margin:10px 0 4px 0'>{escaped(title)}</h1>"
        f"<table class='ef-facts' style='margin:0'>{rows}</table></div>"
    )


def database_facts(url: str, rows: int | None, size_bytes: int | None) -> list[tuple[str, str]]:
    size = "size unknown" if size_bytes is None else f"{size_bytes / 1e6:,.1f} MB"
    held = f"{count(rows)} professionals, {size}" if rows is not None else size
    return [("Database", describe_url(url)), ("Holds", held)]


def run_facts(run: RunFacts | None) -> list[tuple[str, str]]:
    if run is None:
        return []
    return [("Parameters", run.parameters_text()), ("Command", run.command)]


def section(title: str, anchor: str) -> HTML:
    """A report's section heading, which its table of contents links to."""
    return HTML(f"<h2 id='{escaped(anchor)}'>{escaped(title)}</h2>")


def contents(entries: Sequence[tuple[str, str]]) -> HTML:
    """A table of contents: (anchor, title) of each section, in order."""
    items = "".join(f"<li><a href='#{escaped(a)}'>{escaped(t)}</a></li>" for a, t in entries)
    return HTML(f"<nav class='ef-toc'><b>Contents</b><ol style='margin:4px 0'>{items}</ol></nav>")
