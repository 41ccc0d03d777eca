"""A climb as a notebook and its report show it: the header (the file, its SHA-256, the verdict and,
for a failed rung, why), the plan and the rungs as tables with their ranges of records, each rung's
verification, and for a failed rung the reasons, the undo and what to do next. Every value from the
file or the database is escaped (the tables by their Styler, the rest here)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from IPython.display import HTML
from pandas.io.formats.style import Styler

from . import __version__
from ._climb_text import records, rung_line
from ._display import shown
from ._headers import escaped, header, run_facts
from ._look import count, fraction, percent, visible
from ._tables import RUNG_COLUMNS, rung_cells, table
from ._time import display_time
from .climb import ClimbPlan, ClimbResult
from .reports import RunFacts
from .targets import describe_url

# The rung table's columns, a rung's range of records and its count first, its import last.
CLIMB_COLUMNS = [
    "rung",
    "records",
    "count",
    *(c for c in RUNG_COLUMNS if c not in ("rung", "file", "records", "target/s")),
    "import",
]
PLAN_COLUMNS = ["rung", "records", "count", "batch", "state", "rejects (predicted)", "new", "present", "rows on D1"]


def climb_table(result: ClimbResult) -> Styler:
    """One row per rung of this climb: its range of records, what it did, its verification, its verdict."""
    shown = []
    for row, step in zip(result.rows(), result.rungs, strict=True):
        cells = rung_cells(row)
        cells |= {
            "rung": str(step.number),
            "records": records(step.first_record or 1, step.last_record)[len("records ") :],
            "count": cells["records"],
            "verdict": ("undone: " if step is result.failed and result.undo else "") + row["verdict"],
            "import": visible(row["import_id"] or "-"),
        }
        shown.append(cells)
    frame = pd.DataFrame(shown, columns=CLIMB_COLUMNS)
    numeric = ("count", "inserted", "skipped", "rejected", "rejected share", "seconds", "records/s")
    return table(frame, "verdict", numeric, "ef-climb")


def plan_table(plan: ClimbPlan) -> Styler:
    """The climb's plan: each rung's range, records, batch size and state; the dry run's predictions."""
    rows = []
    for rung in plan.rungs:
        predicted = rung.predicted
        share = predicted.rejected / predicted.records_read if predicted is not None and predicted.records_read else 0
        over = " (over the limit)" if predicted is not None and share > plan.max_reject_rate else ""
        rows.append(
            {
                "rung": str(rung.number),
                "records": records(rung.first, rung.last)[len("records ") :],
                "count": count(rung.records),
                "batch": count(rung.rung.batch_size),
                "state": rung.state + (f" ({visible(rung.import_id)})" if rung.import_id else ""),
                "rejects (predicted)": "-"
                if predicted is None
                else f"{predicted.rejected:,} ({fraction(share)}){over}",
                "new": "-" if predicted is None else count(predicted.inserted),
                "present": "-" if predicted is None else count(predicted.skipped + predicted.updated),
                "rows on D1": "-" if rung.quota is None else count(rung.quota.estimated_rows),
            }
        )
    frame = pd.DataFrame(rows, columns=PLAN_COLUMNS)
    return table(frame, "rejects (predicted)", ("count", "batch", "new", "present", "rows on D1"), "ef-climb-plan")


def plan_note(plan: ClimbPlan) -> HTML:
    """What the plan's table does not say: the file, a change since the last rung, the rules, the budget."""
    steps = ", ".join(f"{n:,}" for n in plan.steps)
    lines = [f"Climb {plan.source.path} ({plan.source.records:,} records) in rungs of {steps}, then the rest."]
    if plan.changed:
        lines.append(plan.changed)
    large = [r for r in plan.to_run if r.rung.needs is not None]
    if large:
        lines.append(
            ", ".join(f"Rung {r.number} ({r.records:,} records)" for r in large)
            + ": a large rung needs its confirmation ticked, an extra large one force."
        )
    if plan.quota is not None:
        lines.append(f"D1 free tier: {plan.quota.summary()}" + ("" if plan.quota.fits else ": not all of it today"))
    if not plan.to_run:
        lines.append("Every rung has passed: nothing left to climb.")
    return HTML("".join(f"<p class='ef-climb-note'>{escaped(line)}</p>" for line in lines))


def failure_html(result: ClimbResult) -> HTML:
    """Why the failed rung failed, the undo and the backup before it, and what to do next."""
    failed = result.failed
    if failed is None:
        return HTML("<p class='ef-climb-passed'>No rung failed.</p>")
    head = f"Rung {failed.number} ({records(failed.first_record or 1, failed.last_record)}) failed"
    lines = [f"<p><b>{escaped(head)}</b></p>", "<ul>"]
    lines += [f"<li>{escaped(line.strip())}</li>" for line in result.why]
    lines.append("</ul>")
    if result.undo is not None:
        undone = (
            f"Undone: import {failed.imported.import_id} rolled back ({result.undo.rollback_id},"
            f" {result.undo.rows_removed:,} rows removed) after a backup: {result.undo.backup_path or 'none'}."
        )
        lines.append(f"<p class='ef-climb-undone'>{escaped(undone)}</p>")
    lines.append(f"<p class='ef-climb-next'><b>Next:</b> {escaped(result.next)}</p>")
    return HTML(f"<div class='ef-climb-failure'>{''.join(lines)}</div>")


def _file_facts(result: ClimbResult) -> list[tuple[str, str]]:
    """The file climbed, its SHA-256, the rungs and the records they handled (dry runs not counted)."""
    done = [step for step in result.rungs if not step.imported.dry_run]
    return [
        ("File", result.file),
        ("SHA-256", result.sha256),
        ("Rungs", ", ".join(str(step.number) for step in result.rungs) or "none left to climb"),
        ("Records handled", count(sum(step.records for step in done))),
    ]


def climb_html(result: ClimbResult) -> str:
    """A climb shown alone in a notebook cell: the verdict, the file, its rungs and, for a failed rung,
    why and what to do next."""
    facts = _file_facts(result)
    if result.changed:
        facts.append(("File changed", result.changed))
    head = header(f"Climb of {Path(result.file).name}", result.verdict, facts, compact=True)
    failure = failure_html(result) if result.failed is not None else None
    return shown("climb", head, climb_table(result) if result.rungs else None, failure)


def each_rung(result: ClimbResult) -> HTML:
    """One line per rung: its records, rejected share, pace and verification, as the command prints it."""
    items = [f"<li>{escaped(rung_line(step))}</li>" for step in result.rungs]
    return HTML(f"<ul class='ef-climb-rungs'>{''.join(items)}</ul>")


def climb_header(result: ClimbResult, database: str, *, run: RunFacts | None = None) -> HTML:
    """The climb report's header: the verdict, the file and its SHA-256, what ran, and why a rung failed."""
    done = [step for step in result.rungs if not step.imported.dry_run]
    rejected = sum(step.imported.rejected for step in done)
    read = sum(step.imported.records_read for step in done)
    facts = [
        ("Database", describe_url(database)),
        ("Run at", display_time()),
        ("estateflow_nb version", __version__),
        *_file_facts(result),
        ("Rejected records", f"{count(rejected)} ({fraction(rejected / read) if read else '-'})"),
        ("Largest reject rate", percent(result.rungs[0].max_reject_rate) if result.rungs else "-"),
        *run_facts(run),
    ]
    if result.changed:
        facts.append(("File changed", result.changed))
    if result.failed is not None:
        facts.append(("Failed", f"rung {result.failed.number}: {'; '.join(line.strip() for line in result.why[:2])}"))
        facts.append(("Next", result.next))
    return header("EstateFlow progressive ladder: one file, climbed", result.verdict, facts)


__all__ = ["climb_header", "climb_html", "climb_table", "each_rung", "failure_html", "plan_note", "plan_table"]
