"""The tables the views show, as pandas Stylers (re-exported by `views`).

Every cell is formatted here, into text, and escaped for HTML by the Styler: nothing from a file or a
database is ever markup, whatever it holds. Numbers have one format (`_look`): whole numbers with
thousands separators, ratings with one decimal, shares as percentages. Identifiers (ids, license
numbers, import ids) are shown as they are, with whitespace and control characters made visible.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from IPython.display import HTML
from pandas.io.formats.style import Styler

from ._failures import undo_command
from ._look import (
    cell_style,
    count,
    fraction,
    mark,
    milliseconds,
    percent,
    rating,
    share,
    visible,
    yes_no,
)
from ._rejected import RejectedImport
from .backup import BackupInfo
from .explore import cities as merge_cities
from .importer import ImportResult
from .ladder import LadderResult
from .rollback import RollbackResult
from .status import StatusReport
from .verify import CheckResult, VerifyReport

# Columns that hold identifiers: shown as they are, never with thousands separators.
IDENTIFIERS = ("id", "#")
COUNTS = ("professionals", "count", "rows", "inserted", "updated", "skipped", "rejected", "removed", "restored")


def table(frame: pd.DataFrame, marks: str | None = None, numeric: Sequence[str] = (), name: str = "") -> Styler:
    """The frame (of text already formatted) as a table without its index, every cell escaped for HTML;
    `numeric` columns to the right, `marks` green where it passed, amber on a warning, red where not."""
    text: list[Any] = [c for c in frame.columns if c not in numeric]
    styler = frame.style.hide(axis="index")
    if len(frame):
        styler = styler.set_properties(subset=text, **{"text-align": "left"})
        if numeric:
            right: list[Any] = list(numeric)
            styler = styler.set_properties(subset=right, **{"text-align": "right"})
    styler = styler.set_table_styles([{"selector": "th", "props": [("text-align", "left")]}])
    if name:
        styler = styler.set_table_attributes(f'class="ef-table {html.escape(name)}"')
    if marks is not None and len(frame):
        styler = styler.map(cell_style, subset=[marks])
    return styler.format(escape="html", na_rep="-").format_index(escape="html", axis=1)


def cell(column: str, value: Any, *, every_space: bool = False) -> str:
    """One value of the data as a table cell's text."""
    if value is None:
        return "-" if column not in ("value", "email", "city") else visible(value)
    if column in IDENTIFIERS and isinstance(value, int):
        return str(value)
    if column == "rating":
        return rating(value)
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | float):
        return count(value)
    if isinstance(value, list | tuple):
        return ", ".join(visible(v) for v in value)
    return visible(value, every_space=every_space)


def _frame(rows: Sequence[dict[str, Any]], columns: Sequence[str], names: dict[str, str] | None = None) -> pd.DataFrame:
    """Rows as a frame of formatted text, in `columns` order, renamed by `names`."""
    frame = pd.DataFrame([{c: cell(c, row.get(c)) for c in columns} for row in rows], columns=list(columns))
    return frame.rename(columns=names or {})


# --- verification ------------------------------------------------------------------------------------


def checks_table(report: VerifyReport) -> Styler:
    """The twelve checks, one row each, with a pass/fail mark."""
    frame = pd.DataFrame(
        [
            {
                "#": str(c.number),
                "check": c.title,
                "result": mark(c.passed),
                "observed": visible(c.summary),
                "expected": visible(str(c.expected)),
                "failing": count(c.failing),
                "of rows": share(c.failing, report.rows) if c.failing and c.rule is not None else "-",
            }
            for c in report.checks
        ],
        columns=["#", "check", "result", "observed", "expected", "failing", "of rows"],
    )
    return table(frame, "result", numeric=("failing", "of rows"), name="ef-checks")


def kinds_table(check: CheckResult) -> Styler:
    """A failing check's values grouped by kind: how many rows, their share, an example of each."""
    column = check.rule.column if check.rule else ""
    every_space = bool(check.rule and check.rule.every_space)
    rows = []
    for group in check.groups:
        examples = [e.get(column) for e in group.examples if column in e][:3]
        rows.append(
            {
                "kind": visible(group.kind),
                "rows": count(group.count),
                "of all rows": fraction(group.share) if group.share else "-",
                "for example": ", ".join(visible(v, every_space=every_space) for v in examples) or "-",
            }
        )
    frame = pd.DataFrame(rows, columns=["kind", "rows", "of all rows", "for example"])
    return table(frame, numeric=("rows", "of all rows"), name="ef-kinds")


def examples_table(check: CheckResult) -> Styler:
    """Example rows of every kind of a failing check: id, license, the offending value, the import."""
    column = check.rule.column if check.rule else ""
    every_space = bool(check.rule and check.rule.every_space)
    columns = list(dict.fromkeys(c for group in check.groups for e in group.examples for c in e))
    rows = [
        {"kind": visible(group.kind)} | {c: cell(c, e.get(c), every_space=every_space and c == column) for c in columns}
        for group in check.groups
        for e in group.examples
    ]
    names = {"license_number": "license number", "import_id": "import", "source_path": "source", "value": "value"}
    frame = pd.DataFrame(rows, columns=["kind", *columns]).rename(columns=names)
    return table(frame, name="ef-examples")


def undo_list(check: CheckResult, url: str) -> HTML | None:
    """The commands that would undo each import that wrote an example row of `check`."""
    imports = list(dict.fromkeys(e["import_id"] for g in check.groups for e in g.examples if e.get("import_id")))
    if not imports:
        return None
    items = "".join(f"<li><code>{html.escape(undo_command(i, url))}</code></li>" for i in imports)
    return HTML(f"<p>To undo an import that wrote these rows:</p><ul class='ef-undo'>{items}</ul>")


def rejects_table(rejects: Sequence[RejectedImport], limit: float) -> Styler:
    """Each import that rejected records: how many, their share against the limit, where, and why."""
    rows = [
        {
            "import": visible(r.import_id),
            "source": visible(Path(r.source_path).name),
            "rejected": count(r.rejected),
            "of records": count(r.records),
            "share": fraction(r.share),
            "verdict": f"✘ over {percent(limit)}" if r.over(limit) else f"⚠ within {percent(limit)}",
            "rejects file": visible(r.rejects_path) if r.rejects_path else "-",
            "top reasons": "; ".join(f"{count(n)} × {visible(reason)}" for reason, n in r.reasons)
            or visible(r.unreadable or "-"),
        }
        for r in rejects
    ]
    columns = ["import", "source", "rejected", "of records", "share", "verdict", "rejects file", "top reasons"]
    return table(pd.DataFrame(rows, columns=columns), "verdict", ("rejected", "of records", "share"), "ef-rejects")


def benchmarks_table(report: VerifyReport) -> Styler:
    """Each latency benchmark: median and runs against its limit, with a pass/fail mark."""
    frame = pd.DataFrame(
        [
            {
                "benchmark": b.title,
                "result": mark(b.passed),
                "median": milliseconds(b.median_ms),
                "limit": milliseconds(b.threshold_ms),
                "runs": count(len(b.runs_ms)),
                "slowest": milliseconds(max(b.runs_ms)),
            }
            for b in report.benchmarks
        ],
        columns=["benchmark", "result", "median", "limit", "runs", "slowest"],
    )
    return table(frame, "result", ("median", "limit", "runs", "slowest"), "ef-latency")


def top_cities_table(report: VerifyReport) -> Styler:
    """The top 10 cities as the verification counted them."""
    rows = [
        {"city": r["city"], "state": r["state"], "professionals": r["count"], "rating": r["avg_rating"]}
        for r in report.check("top_cities").observed
    ]
    frame = _frame(rows, ["city", "state", "professionals", "rating"], {"rating": "mean rating"})
    return table(frame, numeric=("professionals", "mean rating"), name="ef-top-cities")


def place_changes_table(report: VerifyReport, top: int = 15) -> Styler | None:
    """The industry and state pairs whose rows changed since the previous verification, largest first."""
    changes = report.changes
    if changes is None or not changes.places:
        return None
    places = sorted(changes.places, key=lambda p: (-abs(p.delta), p.industry, p.state))[:top]
    frame = pd.DataFrame(
        [
            {
                "industry": visible(p.industry),
                "state": visible(p.state),
                "before": count(p.before),
                "now": count(p.now),
                "change": f"{p.delta:+,}",
            }
            for p in places
        ],
        columns=["industry", "state", "before", "now", "change"],
    )
    return table(frame, numeric=("before", "now", "change"), name="ef-place-changes")


def check_changes_table(report: VerifyReport) -> Styler | None:
    """The checks whose verdict changed since the previous verification."""
    changes = report.changes
    if changes is None or not changes.checks:
        return None
    frame = pd.DataFrame(
        [
            {
                "check": c.title,
                "before": "-" if c.before is None else mark(c.before),
                "now": mark(c.now),
                "failing before": count(c.failing_before),
                "failing now": count(c.failing_now),
            }
            for c in changes.checks
        ],
        columns=["check", "before", "now", "failing before", "failing now"],
    )
    return table(frame, "now", ("failing before", "failing now"), "ef-check-changes")


# --- the ledger, the ladder and the cities -------------------------------------------------------------

LEDGER_COLUMNS = {
    "id": "import",
    "source_path": "source",
    "rung": "rung",
    "status": "status",
    "inserted": "inserted",
    "updated": "updated",
    "skipped": "skipped",
    "rejected": "rejected",
    "removed": "removed",
    "seconds": "seconds",
    "started_at": "started (UTC)",
}


def imports_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> Styler:
    """Ledger rows as a table: `columns` of LEDGER_COLUMNS, under their names, sources by file name."""
    shown = [{**r, "source_path": Path(str(r.get("source_path"))).name} for r in rows]
    frame = pd.DataFrame(
        [
            {c: (f"{r[c]:,.2f}" if c == "seconds" and r.get(c) is not None else cell(c, r.get(c))) for c in columns}
            for r in shown
        ],
        columns=list(columns),
    ).rename(columns={c: LEDGER_COLUMNS[c] for c in columns})
    numeric = [LEDGER_COLUMNS[c] for c in columns if c in COUNTS or c == "seconds"]
    return table(frame, "status", numeric, "ef-ledger")


def ledger_table(ledger: StatusReport) -> Styler:
    """The newest imports of the ledger, newest first."""
    return imports_table(ledger.imports, list(LEDGER_COLUMNS))


RUNG_COLUMNS = [
    "rung",
    "file",
    "records",
    "inserted",
    "skipped",
    "rejected",
    "rejected share",
    "seconds",
    "records/s",
    "target/s",
    "verified",
    "verdict",
]


def rung_cells(r: dict[str, Any]) -> dict[str, str]:
    """The cells of one of `LadderResult.rows()`, as the rung tables show them."""
    return {
        "rung": r["rung"],
        "file": visible(Path(r["file"]).name),
        "records": count(r["records"]),
        "inserted": count(r["inserted"]),
        "skipped": count(r["skipped"]),
        "rejected": count(r["rejected"]),
        "rejected share": fraction(r["rejected_share"]),
        "seconds": f"{r['seconds']:,.2f}",
        "records/s": "-" if r["verdict"] == "nothing new" else f"{r['records_per_second']:,.0f}",
        "target/s": "-" if r["target_rate"] is None else f"{r['target_rate']:,.0f}",
        "verified": yes_no(r["verified"]),
        "verdict": r["verdict"],
    }


def rung_table(result: LadderResult) -> Styler:
    """One row per rung: records, rejected share, rate against the old tool's target, verification, verdict."""
    frame = pd.DataFrame([rung_cells(r) for r in result.rows()], columns=RUNG_COLUMNS)
    numeric = ("records", "inserted", "skipped", "rejected", "rejected share", "seconds", "records/s", "target/s")
    return table(frame, "verdict", numeric, "ef-rungs")


BATCH_COLUMNS = ["batch", "records", "inserted", "updated", "skipped", "rejected", "seconds", "records/s", "done"]


def batches_table(result: ImportResult, shown: int = 10) -> Styler:
    """An import's batches (this run's): what each wrote, its seconds and records/s, and the checkpoint
    after it. Of more than `shown`, the first and last halves, with a row saying how many are left out."""
    metrics = result.batch_metrics
    half = shown // 2
    rows: list[dict[str, str]] = [
        {
            "batch": str(m.number),
            "records": count(m.records),
            "inserted": count(m.inserted),
            "updated": count(m.updated),
            "skipped": count(m.skipped),
            "rejected": count(m.rejected),
            "seconds": f"{m.seconds:,.3f}",
            "records/s": f"{m.records_per_second:,.0f}",
            "done": f"{count(m.done)} of {count(m.total)}",
        }
        for m in metrics
    ]
    if len(rows) > shown:
        left_out = {c: "" for c in BATCH_COLUMNS} | {"batch": "…", "records": f"{count(len(rows) - 2 * half)} more"}
        rows = [*rows[:half], left_out, *rows[-half:]]
    numeric = ("records", "inserted", "updated", "skipped", "rejected", "seconds", "records/s", "done")
    return table(pd.DataFrame(rows, columns=BATCH_COLUMNS), numeric=numeric, name="ef-batches")


def city_table(rows: Sequence[dict[str, Any]], top: int = 15) -> Styler:
    """The `top` cities of `explore.city_counts` rows: professionals, featured, mean rating."""
    merged = [
        {
            "city": c["city"],
            "state": c["state"],
            "professionals": c["count"],
            "featured": c["featured"],
            "rating": c["avg_rating"],
        }
        for c in merge_cities(rows)[:top]
    ]
    frame = _frame(merged, ["city", "state", "professionals", "featured", "rating"], {"rating": "mean rating"})
    return table(frame, numeric=("professionals", "featured", "mean rating"), name="ef-cities")


# --- status, backups and rollbacks -------------------------------------------------------------------


def tables_table(report: StatusReport) -> Styler:
    """How many rows each table holds."""
    frame = pd.DataFrame([{"table": t, "rows": count(n)} for t, n in report.tables.items()], columns=["table", "rows"])
    return table(frame, numeric=("rows",), name="ef-tables")


def backups_table(backups: Sequence[BackupInfo]) -> Styler:
    """The backups, newest first: file, time, size and what each holds."""
    frame = pd.DataFrame(
        [
            {
                "backup": visible(Path(b.path).name),
                "taken (UTC)": visible(b.taken_at),
                "MB": f"{b.size_bytes / 1e6:,.2f}",
                "professionals": count(b.rows),
                "imports": count(b.imports),
                "SQL dump": "yes" if b.sql_dump else "-",
                "problem": visible(b.error) if b.error else "-",
            }
            for b in backups
        ],
        columns=["backup", "taken (UTC)", "MB", "professionals", "imports", "SQL dump", "problem"],
    )
    return table(frame, numeric=("MB", "professionals", "imports"), name="ef-backups")


ROLLBACK_IMPORT_COLUMNS = ("id", "source_path", "started_at", "status", "inserted", "updated", "removed")


def rollback_imports_table(result: RollbackResult) -> Styler:
    """The imports a rollback undoes (wholly, or for an industry in part), as the ledger has them."""
    return imports_table(result.imports, ROLLBACK_IMPORT_COLUMNS)


def rollback_rows_table(result: RollbackResult) -> Styler:
    """The rows a rollback removes and restores, by industry and state."""
    frame = _frame(result.by_industry_state, ["industry", "state", "removed", "restored"])
    return table(frame, numeric=("removed", "restored"), name="ef-rollback-rows")


def before_after_table(rows: Sequence[tuple[str, int | None, int | None]]) -> Styler:
    """What a restore changed: each (what, before, after) count."""
    frame = pd.DataFrame(
        [{"": what, "before": count(before), "after": count(after)} for what, before, after in rows],
        columns=["", "before", "after"],
    )
    return table(frame, numeric=("before", "after"), name="ef-before-after")
