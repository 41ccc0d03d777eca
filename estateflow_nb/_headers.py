"""What every report header and section heading shares: the verdict box, the facts (every value
escaped), the database's absolute place, the run's parameters and command, a table of contents; and
the rollback's header, which a report and a plan shown alone in a cell (see _display) both show."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

from IPython.display import HTML

from ._look import COLOURS, Outcome, Verdict, count, outcome_of_verdict
from .reports import RunFacts
from .rollback import RollbackPlan, RollbackResult
from .targets import describe_url


def escaped(text: Any) -> str:
    return html.escape(str(text), quote=True)


def header(
    title: str,
    verdict: Verdict | None,
    facts: Sequence[tuple[str, str]],
    outcome: Outcome = "neutral",
    *,
    compact: bool = False,
) -> HTML:
    """A report's head: the verdict in a box coloured by its outcome (if there is one), the title, then
    facts. `compact` is the size of a result shown alone in a notebook cell (see _display): the same
    box, title and facts, with the same classes, smaller."""
    # Compact: the value's cell padded as its name's, so that both sit on one line in JupyterLab too.
    cell, value = (
        ("padding:2px 12px 2px 0", "padding:2px 0;vertical-align:top;") if compact else ("padding:2px 16px 2px 0", "")
    )
    rows = "".join(
        f"<tr><th style='text-align:left;{cell};vertical-align:top'>{escaped(k)}</th>"
        f"<td style='text-align:left;{value}word-break:break-all'>{escaped(v)}</td></tr>"
        for k, v in facts
    )
    colour = COLOURS[outcome_of_verdict(verdict) if verdict else outcome]
    size, padding = ("15px", "2px 10px") if compact else ("26px", "6px 18px")
    box = (
        f"<div class='ef-verdict' style='display:inline-block;padding:{padding};border-radius:6px;"
        f"background:{colour};color:white;font-size:{size};font-weight:bold'>{escaped(verdict)}</div>"
        if verdict
        else ""
    )
    heading = (
        f"<div class='ef-title' style='display:inline-block;margin:0 0 0 {10 if verdict else 0}px;font-size:16px;"
        f"font-weight:bold;vertical-align:middle'>{escaped(title)}</div>"
        if compact
        else f"<h1 style='margin:10px 0 4px 0'>{escaped(title)}</h1>"
    )
    kind = "ef-report-header ef-compact" if compact else "ef-report-header"
    return HTML(
        f"<div class='{kind}' data-verdict='{escaped(verdict or '')}'>{box}{heading}"
        f"<table class='ef-facts' style='margin:{'4px 0 0 0' if compact else '0'}'>{rows}</table></div>"
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


def rollback_header(
    result: RollbackResult, database: str | None, *, plan: RollbackPlan | None = None, compact: bool = False
) -> HTML:
    """A rollback's head: plan only, rolled back or nothing to do; what it undoes; the backup taken first.
    `database` None: a result that does not say which (a RollbackResult alone)."""
    done = result.status == "rolled_back"
    verdict: Verdict
    if done:
        verdict, title = "ROLLED BACK", "Rollback"
    elif result.imports or result.by_industry_state:
        verdict, title = "PLAN ONLY", "Rollback plan"
    else:
        verdict, title = "NOTHING TO ROLL BACK", "Rollback plan"
    facts = [
        *([("Database", describe_url(database))] if database is not None else []),
        ("Rollback of", result.description),
        ("Imports", count(len(result.imports))),
        ("Rows removed" if done else "Rows it would remove", count(result.rows_removed)),
        ("Rows restored" if done else "Rows it would restore", count(result.rows_restored)),
    ]
    if plan is not None:
        facts.append(("Plan fingerprint", plan.fingerprint[:16]))
    if done:
        facts += [
            ("Rollback", str(result.rollback_id)),
            ("Backup taken before", result.backup_path or "none"),
            ("Took", f"{result.seconds:.2f} s"),
        ]
    if result.bookmark:
        facts.append(("Time Travel bookmark before", result.bookmark))
    return header(title, verdict, facts, compact=compact)
