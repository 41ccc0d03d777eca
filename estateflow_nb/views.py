"""What notebooks display besides figures: report headers, tables with pass/fail marks, and `show`.

`show(*things)` displays figures as embedded PNG images (so that an HTML report carries them inside
itself), tables as HTML and anything else as IPython would. The table functions return pandas
DataFrames or Stylers built from the engine's results, nothing computed anew; the header functions
return HTML that says which database, when, which version and the verdict.
"""

from __future__ import annotations

import html
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from IPython.display import HTML, Image, display
from matplotlib.figure import Figure
from pandas.io.formats.style import Styler

from . import __version__, plots
from ._look import COLOURS, MISSED_RUNG, Outcome, Verdict, cell_style, mark, verdict_of, yes_no
from ._time import display_time, parse_time
from .backup import BackupInfo, backups_folder
from .errors import EstateFlowError
from .explore import cities as merge_cities
from .explore import filter_cities
from .ladder import LadderResult
from .rollback import RollbackResult
from .schema import INDUSTRIES
from .status import StatusReport
from .verify import VerifyReport, brief

PNG_DPI = 100

__all__ = [
    "backup_sections",
    "backups_table",
    "benchmarks_table",
    "checks_table",
    "city_sections",
    "city_table",
    "displayable",
    "explore_header",
    "failing_samples",
    "figure_png",
    "figure_title",
    "ladder_header",
    "ladder_sections",
    "ledger_table",
    "plan_only",
    "report_header",
    "rollback_header",
    "rollback_imports_table",
    "rollback_rows_table",
    "rollback_sections",
    "rung_table",
    "show",
    "status_header",
    "tables_table",
    "top_cities_table",
    "verification_sections",
]


def figure_png(fig: Figure) -> bytes:
    """The figure drawn as PNG bytes (Agg, chosen by savefig for the format: no backend is set)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=PNG_DPI, facecolor="white")
    return buffer.getvalue()


def figure_title(fig: Figure) -> str:
    """The figure's title, or its first panel's: what it shows, in words (an image's alternative text)."""
    titles = [fig.get_suptitle(), *(ax.get_title() for ax in fig.axes)]
    return next((t for t in titles if t), "chart")


def displayable(thing: Any) -> Any:
    """What IPython should display for `thing`: a figure becomes an embedded PNG image, titled."""
    if isinstance(thing, Figure):
        return Image(data=figure_png(thing), format="png", alt=figure_title(thing))
    return thing


def show(*things: Any) -> None:
    """Display each of `things` in the current cell's output."""
    for thing in things:
        display(displayable(thing))


def _table(frame: pd.DataFrame, marks: str | None = None, formats: dict[Any, Any] | None = None) -> Styler:
    """The frame as a table without its index, text to the left; `marks` green where it passed, red where not."""
    text: list[Any] = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
    styler = frame.style.hide(axis="index").set_properties(subset=text, **{"text-align": "left"})
    styler = styler.set_table_styles([{"selector": "th", "props": [("text-align", "left")]}])
    if marks is not None:
        styler = styler.map(cell_style, subset=[marks])
    return styler.format(formats or {}, na_rep="-")


def _header(title: str, verdict: Verdict | None, outcome: Outcome, facts: Sequence[tuple[str, str]]) -> HTML:
    """A report's head: the verdict in a box coloured by its outcome (if there is one), the title, then facts."""
    rows = "".join(
        f"<tr><th style='text-align:left;padding:2px 16px 2px 0'>{html.escape(k)}</th>"
        f"<td style='text-align:left'>{html.escape(v)}</td></tr>"
        for k, v in facts
    )
    box = (
        f"<div class='ef-verdict' style='display:inline-block;padding:6px 18px;border-radius:6px;"
        f"background:{COLOURS[outcome]};color:white;font-size:26px;font-weight:bold'>{html.escape(verdict)}</div>"
        if verdict
        else ""
    )
    return HTML(
        f"<div class='ef-report-header' data-verdict='{html.escape(verdict or '')}'>{box}"
        f"<h1 style='margin:10px 0 4px 0'>{html.escape(title)}</h1>"
        f"<table class='ef-facts' style='margin:0'>{rows}</table></div>"
    )


def report_header(report: VerifyReport, *, version: str = __version__) -> HTML:
    """The verification report's header: the verdict first, then database, time, version and counts."""
    checks_passed = sum(c.passed for c in report.checks)
    within = sum(b.passed for b in report.benchmarks)
    latency = f"{within} of {len(report.benchmarks)} within their limits" if report.benchmarks else "not measured"
    return _header(
        "EstateFlow verification report",
        verdict_of(report.passed),
        "pass" if report.passed else "fail",
        [
            ("Database", report.target),
            ("Verified at", display_time(parse_time(report.checked_at))),
            ("estateflow_nb version", version),
            ("Checks", f"{checks_passed} of {len(report.checks)} passed"),
            ("Latency benchmarks", latency),
            ("Verification took", f"{report.seconds:.3f} s"),
        ],
    )


def ladder_header(result: LadderResult, database: str, *, version: str = __version__) -> HTML:
    """The ladder report's header: the verdict, then database, time, version and what ran."""
    records = sum(step.records for step in result.rungs)
    missed = next((step.verdict for step in result.rungs if step.verdict != "pass"), None)
    verdict: Verdict
    outcome: Outcome
    if result.passed:
        verdict, outcome = "LADDER PASSED", "pass"
    elif missed == "dry run":
        verdict, outcome = "DRY RUN", "neutral"
    else:
        verdict, outcome = MISSED_RUNG.get(missed, "STOPPED"), "fail"
    facts = [
        ("Database", database),
        ("Run at", display_time()),
        ("estateflow_nb version", version),
        ("Rungs", ", ".join(step.rung.name for step in result.rungs) or "none"),
        ("Records handled", f"{records:,}"),
    ]
    if result.stopped:
        facts.append(("Stopped", result.stopped))
    return _header("EstateFlow progressive ladder", verdict, outcome, facts)


def explore_header(database: str, rows: Sequence[dict[str, Any]], *, version: str = __version__) -> HTML:
    """The exploration report's header: database, time, version, and how many professionals and cities."""
    merged = merge_cities(rows)
    return _header(
        "EstateFlow ratings and cities",
        None,
        "neutral",
        [
            ("Database", database),
            ("Explored at", display_time()),
            ("estateflow_nb version", version),
            ("Professionals", f"{sum(c['count'] for c in merged):,} in {len(merged):,} cities"),
        ],
    )


def checks_table(report: VerifyReport) -> Styler:
    """The twelve checks, one row each, with a pass/fail mark."""
    frame = pd.DataFrame(
        [
            {
                "#": c.number,
                "check": c.title,
                "result": mark(c.passed),
                "observed": brief(c.observed),
                "expected": str(c.expected),
                "failing": c.failing,
            }
            for c in report.checks
        ],
        columns=["#", "check", "result", "observed", "expected", "failing"],
    )
    return _table(frame, "result", {"failing": "{:,}"})


def failing_samples(report: VerifyReport) -> list[Any]:
    """For each failing check, a heading and its sample of failing rows; one line when none failed."""
    failed = report.failed_checks
    if not failed:
        return [HTML("<p class='ef-no-failures'>No check failed: there are no failing rows to show.</p>")]
    shown: list[Any] = []
    for check in failed:
        shown.append(
            HTML(
                f"<h3 class='ef-failing'>{check.number}. {html.escape(check.title)}: {check.failing:,} failing;"
                f" expected {html.escape(str(check.expected))}. A sample of {len(check.sample)}:</h3>"
            )
        )
        sample = pd.DataFrame([{k: _cell(v) for k, v in row.items()} for row in check.sample])
        shown.append(_table(sample) if len(sample) else HTML("<p>(no sample rows)</p>"))
    return shown


def _cell(value: Any) -> Any:
    return ", ".join(map(str, value)) if isinstance(value, list | tuple) else value


def benchmarks_table(report: VerifyReport) -> Styler:
    """Each latency benchmark: median and runs against its limit, with a pass/fail mark."""
    frame = pd.DataFrame(
        [
            {
                "benchmark": b.title,
                "result": mark(b.passed),
                "median ms": round(b.median_ms, 3),
                "limit ms": b.threshold_ms,
                "runs": len(b.runs_ms),
                "slowest ms": round(max(b.runs_ms), 3),
            }
            for b in report.benchmarks
        ],
        columns=["benchmark", "result", "median ms", "limit ms", "runs", "slowest ms"],
    )
    return _table(frame, "result", {"median ms": "{:.3f}", "slowest ms": "{:.3f}", "limit ms": "{:,.0f}"})


def top_cities_table(report: VerifyReport) -> Styler:
    """The top 10 cities as the verification counted them."""
    rows = report.check("top_cities").observed
    frame = pd.DataFrame(rows, columns=["city", "state", "count", "avg_rating"])
    frame = frame.rename(columns={"count": "professionals", "avg_rating": "mean rating"})
    return _table(frame, formats={"professionals": "{:,}", "mean rating": "{:.2f}"})


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


def _imports_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> Styler:
    """Ledger rows as a table: `columns` of LEDGER_COLUMNS, under their names, sources by file name."""
    names = {column: LEDGER_COLUMNS[column] for column in columns}
    frame = pd.DataFrame(rows, columns=list(names)).rename(columns=names)
    frame["source"] = [Path(str(p)).name for p in frame["source"]]
    counts = [c for c in ("inserted", "updated", "skipped", "rejected", "removed") if c in frame]
    return _table(frame, "status", {"seconds": "{:.2f}", **dict.fromkeys(counts, "{:,}")})


def ledger_table(ledger: StatusReport) -> Styler:
    """The newest imports of the ledger, newest first."""
    return _imports_table(ledger.imports, list(LEDGER_COLUMNS))


def rung_table(result: LadderResult) -> Styler:
    """One row per rung: records, rate against the old tool's target, verification and verdict."""
    rows = result.rows()
    frame = pd.DataFrame(
        [
            {
                "rung": r["rung"],
                "file": Path(r["file"]).name,
                "records": r["records"],
                "inserted": r["inserted"],
                "skipped": r["skipped"],
                "rejected": r["rejected"],
                "seconds": r["seconds"],
                "records/s": r["records_per_second"],
                "target/s": "-" if r["target_rate"] is None else f"{r['target_rate']:.0f}",
                "verified": yes_no(r["verified"]),
                "verdict": r["verdict"],
            }
            for r in rows
        ],
        columns=[
            "rung",
            "file",
            "records",
            "inserted",
            "skipped",
            "rejected",
            "seconds",
            "records/s",
            "target/s",
            "verified",
            "verdict",
        ],
    )
    counts = ("records", "inserted", "skipped", "rejected")
    return _table(frame, "verdict", {"records/s": "{:,.0f}", "seconds": "{:.2f}", **dict.fromkeys(counts, "{:,}")})


def city_table(rows: Sequence[dict[str, Any]], top: int = 15) -> Styler:
    """The `top` cities of `explore.city_counts` rows: professionals, featured, mean rating."""
    merged = merge_cities(rows)[:top]
    frame = pd.DataFrame(
        [
            {
                "city": c["city"],
                "state": c["state"],
                "professionals": c["count"],
                "featured": c["featured"],
                "mean rating": None if c["avg_rating"] is None else round(c["avg_rating"], 2),
            }
            for c in merged
        ],
        columns=["city", "state", "professionals", "featured", "mean rating"],
    )
    return _table(frame, formats={"professionals": "{:,}", "featured": "{:,}", "mean rating": "{:.2f}"})


# --- status, backups and rollbacks -------------------------------------------------------------------


def status_header(report: StatusReport, *, version: str = __version__) -> HTML:
    """The rollback notebook's header: the database, when, which version, what it holds, its newest backup."""
    statuses = ", ".join(f"{n:,} {s}" for s, n in report.by_status.items()) or "none"
    size = "unknown" if report.size_bytes is None else f"{report.size_bytes / 1e6:,.1f} MB"
    newest = report.newest_backup
    facts = [
        ("Database", report.target),
        ("Shown at", display_time()),
        ("estateflow_nb version", version),
        ("Professionals", f"{report.tables.get('professionals', 0):,}"),
        ("Imports", statuses),
        ("Database size", size),
        ("Newest backup", "none" if newest is None else f"{Path(newest['path']).name} ({newest['taken_at']})"),
    ]
    if report.bookmark:
        facts.append(("Time Travel bookmark", f"{report.bookmark['bookmark']} (before {report.bookmark['id']})"))
    return _header("EstateFlow rollback and backups", None, "neutral", facts)


def tables_table(report: StatusReport) -> Styler:
    """How many rows each table holds."""
    frame = pd.DataFrame(list(report.tables.items()), columns=["table", "rows"])
    return _table(frame, formats={"rows": "{:,}"})


def backups_table(backups: Sequence[BackupInfo]) -> Styler:
    """The backups, newest first: file, time, size and what each holds."""
    frame = pd.DataFrame(
        [
            {
                "backup": Path(b.path).name,
                "taken (UTC)": b.taken_at,
                "MB": b.size_bytes / 1e6,
                "professionals": b.rows,
                "imports": b.imports,
                "SQL dump": "yes" if b.sql_dump else "-",
                "problem": b.error or "-",
            }
            for b in backups
        ],
        columns=["backup", "taken (UTC)", "MB", "professionals", "imports", "SQL dump", "problem"],
    )
    return _table(frame, formats={"MB": "{:,.2f}", "professionals": "{:,.0f}", "imports": "{:,.0f}"})


def backup_sections(backups: Sequence[BackupInfo], backups_dir: str | Path | None = None) -> list[Any]:
    """The backups in `backups_dir` as a table, and the rows in each over time once there are two or more."""
    folder = backups_folder(backups_dir)
    if not backups:
        return [
            HTML(
                f"<p class='ef-no-backups'>No backups in {html.escape(str(folder))} yet: every rollback takes one"
                " first, and <code>estateflow backup</code> takes one now.</p>"
            )
        ]
    shown: list[Any] = [
        HTML(f"<p class='ef-backups'>{len(backups):,} backups in {html.escape(str(folder))}, newest first.</p>"),
        backups_table(backups),
    ]
    if sum(b.rows is not None for b in backups) >= 2:
        shown.append(plots.backups_over_time(backups))
    return shown


def rollback_header(result: RollbackResult, database: str, *, version: str = __version__) -> HTML:
    """A rollback's head: plan only, rolled back or nothing to do; what it undoes; the backup taken first."""
    done = result.status == "rolled_back"
    verdict: Verdict
    outcome: Outcome
    if done:
        verdict, outcome, title = "ROLLED BACK", "pass", "Rollback"
    elif result.imports or result.by_industry_state:
        verdict, outcome, title = "PLAN ONLY", "neutral", "Rollback plan"
    else:
        verdict, outcome, title = "NOTHING TO ROLL BACK", "neutral", "Rollback plan"
    facts = [
        ("Database", database),
        ("Rollback of", result.description),
        ("Imports", f"{len(result.imports):,}"),
        ("Rows removed" if done else "Rows it would remove", f"{result.rows_removed:,}"),
        ("Rows restored" if done else "Rows it would restore", f"{result.rows_restored:,}"),
    ]
    if done:
        facts += [
            ("Rollback", str(result.rollback_id)),
            ("Backup taken before", result.backup_path or "none"),
            ("Took", f"{result.seconds:.2f} s"),
        ]
    if result.bookmark:
        facts.append(("Time Travel bookmark before", result.bookmark))
    return _header(title, verdict, outcome, facts)


ROLLBACK_IMPORT_COLUMNS = ("id", "source_path", "started_at", "status", "inserted", "updated", "removed")


def rollback_imports_table(result: RollbackResult) -> Styler:
    """The imports a rollback undoes (wholly, or for an industry in part), as the ledger has them."""
    return _imports_table(result.imports, ROLLBACK_IMPORT_COLUMNS)


def rollback_rows_table(result: RollbackResult) -> Styler:
    """The rows a rollback removes and restores, by industry and state."""
    frame = pd.DataFrame(result.by_industry_state, columns=["industry", "state", "removed", "restored"])
    return _table(frame, formats={"removed": "{:,}", "restored": "{:,}"})


def rollback_sections(result: RollbackResult, database: str, ledger: StatusReport | None = None) -> list[Any]:
    """A rollback's header and its imports; then, for a plan, its rows by industry and state as a table
    and as a chart, and for a rollback done (whose rows are those of the plan shown before it), the
    import ledger as it is afterwards, when `ledger` is given."""
    shown: list[Any] = [rollback_header(result, database)]
    if result.imports:
        shown += [HTML("<h3>Imports</h3>"), rollback_imports_table(result)]
    if result.status != "rolled_back" and result.by_industry_state:
        shown += [
            HTML("<h3>Rows by industry and state</h3>"),
            rollback_rows_table(result),
            plots.rollback_rows(result),
        ]
    if ledger is not None:
        shown += [HTML("<h3>The import ledger now</h3>"), ledger_table(ledger)]
    return shown


def plan_only(plan: RollbackResult | None) -> HTML:
    """What a rollback run without its confirmation ends with: what was planned, and that nothing changed."""
    if plan is None:
        text = (
            "No rollback chosen: set one of last_hours, since and until, industry, import_id or reset to plan one."
            " Nothing was changed."
        )
    elif not (plan.imports or plan.by_industry_state):
        text = f"Nothing to roll back: no rows or imports match {plan.description}. Nothing was changed."
    else:
        text = (
            f"Plan only: nothing was changed. Rolling back {plan.description} would remove"
            f" {plan.rows_removed:,} rows and restore {plan.rows_restored:,}. To carry it out, run with"
            " confirm=True (estateflow report rollback ... -p confirm true), or tick the confirmation in the"
            " panel and press Roll back; a backup is taken first."
        )
    return HTML(f"<p class='ef-plan-only' style='font-size:16px;font-weight:bold'>{html.escape(text)}</p>")


# --- whole sections, shown alike by a notebook's cells and by its panel ------------------------------


def ladder_sections(result: LadderResult, database: str) -> list[Any]:
    """The ladder's header, its rung table and its throughput chart."""
    return [ladder_header(result, database), rung_table(result), plots.throughput(result)]


def verification_sections(
    report: VerifyReport, ledger: StatusReport, featured: Sequence[dict[str, Any]] = ()
) -> list[Any]:
    """The whole verification report, in the order of the verification notebook."""
    return [
        report_header(report),
        HTML("<h2>The twelve checks</h2>"),
        checks_table(report),
        *failing_samples(report),
        HTML("<h2>Latency</h2>"),
        plots.latency(report.benchmarks),
        benchmarks_table(report),
        HTML("<h2>Distributions</h2>"),
        plots.distributions(report, featured),
        HTML("<h2>Ratings</h2>"),
        plots.rating_histogram(report),
        HTML("<h2>Top 10 cities</h2>"),
        plots.top_cities(report),
        top_cities_table(report),
        HTML("<h2>Import ledger</h2>"),
        ledger_table(ledger),
    ]


def city_sections(rows: Sequence[dict[str, Any]], search: str = "", industry: str = "", top: int = 15) -> list[Any]:
    """Cities matching `search` and `industry`: professionals per city, featured per city, a table."""
    if industry and industry not in INDUSTRIES:
        raise EstateFlowError(f"unknown industry {industry!r}: use one of {', '.join(INDUSTRIES)} (or none for all)")
    chosen = filter_cities(rows, search, industry)
    where = " and ".join(
        part for part in (f"city contains {search.strip()!r}" if search.strip() else "", industry) if part
    )
    note = f"{len(merge_cities(chosen)):,} cities" + (f" where {where}" if where else "")
    return [
        HTML(f"<p class='ef-city-filter'>{html.escape(note)}</p>"),
        plots.city_distribution(chosen, top),
        plots.featured_by_city(chosen, top),
        city_table(chosen, top),
    ]
