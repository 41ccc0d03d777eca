"""What notebooks display besides figures: report headers, tables with pass/fail marks, sections, and
`show`.

`show(*things)` displays figures as embedded PNG images (so that an HTML report carries them inside
itself), tables as HTML and anything else as IPython would. The table functions (in _tables.py)
return pandas Stylers built from the engine's results, nothing computed anew; the header functions
return HTML that says which database (its absolute path, its rows and size), when, which version,
the run's parameters and the command that makes the same report again, and the verdict. Whole
sections (`verification_sections`, ...) are what a notebook and its panel both show, in order, with
a table of contents. Every value from the data is escaped: nothing from a file or a database is
ever markup.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from IPython.display import HTML, Image, display
from matplotlib.figure import Figure

from . import __version__, explore, plots
from ._climb_views import climb_header, climb_table, each_rung, failure_html, plan_note
from ._climb_views import plan_table as climb_plan_table
from ._display import ladder_figures, status_figures, verification_figures
from ._headers import contents, database_facts, escaped, header, rollback_header, run_facts, section
from ._look import count, percent, plural, share
from ._tables import (
    LEDGER_COLUMNS,
    backups_table,
    benchmarks_table,
    check_changes_table,
    checks_table,
    city_table,
    examples_table,
    imports_table,
    kinds_table,
    ledger_table,
    place_changes_table,
    rejects_table,
    rollback_imports_table,
    rollback_rows_table,
    rung_table,
    tables_table,
    top_cities_table,
    undo_list,
)
from ._time import display_time, parse_time
from .backup import BackupInfo, backups_folder
from .climb import ClimbResult
from .explore import cities as merge_cities
from .explore import filter_cities
from .ladder import LadderResult
from .reports import RunFacts
from .rollback import RollbackPlan, RollbackResult
from .status import StatusReport
from .targets import Target, describe_url
from .verify import VerifyReport

PNG_DPI = 100

__all__ = [
    "LEDGER_COLUMNS",
    "backup_sections",
    "backups_table",
    "benchmarks_table",
    "changes_sections",
    "checks_table",
    "city_sections",
    "city_table",
    "climb_plan_table",
    "climb_sections",
    "climb_table",
    "contents",
    "displayable",
    "explore_header",
    "explore_sections",
    "failing_samples",
    "failing_sections",
    "figure_png",
    "figure_title",
    "imports_table",
    "ladder_header",
    "ladder_sections",
    "ledger_table",
    "plan_only",
    "plan_sections",
    "question_sections",
    "rejects_sections",
    "report_header",
    "rollback_header",
    "rollback_imports_table",
    "rollback_rows_table",
    "rollback_sections",
    "rung_table",
    "section",
    "show",
    "status_header",
    "status_sections",
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
    return next((t for t in titles if t), "chart").replace("\\$", "$")


def displayable(thing: Any) -> Any:
    """What IPython should display for `thing`: a figure becomes an embedded PNG image, titled."""
    if isinstance(thing, Figure):
        return Image(data=figure_png(thing), format="png", alt=figure_title(thing))
    return thing


def show(*things: Any) -> None:
    """Display each of `things` in the current cell's output."""
    for thing in things:
        display(displayable(thing))


# --- verification ----------------------------------------------------------------------------------


def report_header(report: VerifyReport, *, run: RunFacts | None = None, version: str = __version__) -> HTML:
    """The verification report's header: the verdict first, then the database, the run, the evidence."""
    history = f"recorded as {report.recorded}" if report.recorded else (report.not_recorded or "not recorded")
    facts = [
        *database_facts(report.target, report.rows, report.size_bytes),
        ("Verified at", display_time(parse_time(report.checked_at))),
        ("estateflow_nb version", version),
        *verification_figures(report),
        *run_facts(run),
        ("History", history),
        ("Verification took", f"{report.seconds:.3f} s"),
    ]
    if report.empty:
        facts.insert(0, ("Nothing to verify", "the professionals table is empty: there is no evidence to pass"))
    return header("EstateFlow verification report", report.verdict, facts)


def failing_sections(report: VerifyReport) -> list[Any]:
    """For each failing check, its failing values grouped by kind (with counts and shares), example
    rows of every kind with the import that wrote them, and how to undo those imports."""
    failed = report.failed_checks
    if not failed:
        return [HTML("<p class='ef-no-failures'>No check failed: there are no failing values to show.</p>")]
    shown: list[Any] = []
    for check in failed:
        of_rows = f" ({share(check.failing, report.rows)} of the rows)" if check.rule is not None else ""
        shown.append(
            HTML(
                f"<h3 class='ef-failing'>{check.number}. {escaped(check.title)}: {count(check.failing)}"
                f" failing{of_rows}; expected {escaped(check.expected)}</h3>"
            )
        )
        if check.groups:
            shown += [kinds_table(check), examples_table(check)]
            undo = undo_list(check, report.target)
            if undo is not None:
                shown.append(undo)
        if check.kinds > len(check.groups):
            shown.append(HTML(f"<p>... and {count(check.kinds - len(check.groups))} more kinds.</p>"))
        written = report.failure_files.get(check.name)
        if written:
            link = Path(written).as_uri()
            shown.append(
                HTML(
                    f"<p class='ef-failures-file'>Every failing row: <a href='{escaped(link)}'>"
                    f"{escaped(written)}</a></p>"
                )
            )
    return shown


# The name the notebooks used before failing values were grouped.
failing_samples = failing_sections


def rejects_sections(rejects: Sequence[Any], limit: float) -> list[Any]:
    """The imports that rejected records, each with its rejects file, count, share and top reasons."""
    if not rejects:
        return [HTML("<p class='ef-no-rejects'>No import rejected a record.</p>")]
    over = sum(r.over(limit) for r in rejects)
    note = (
        f"{plural(len(rejects), 'import')} rejected records: {over} of them more than {percent(limit)} of"
        f" its records (a failure), {len(rejects) - over} within that limit (a warning). Each rejects file"
        " holds every rejected record with its reason."
    )
    return [HTML(f"<p class='ef-rejects-note'>{escaped(note)}</p>"), rejects_table(rejects, limit)]


def changes_sections(report: VerifyReport) -> list[Any]:
    """What changed since the previous verification of this database, and the trend."""
    changes = report.changes
    if changes is None:
        text = "This is the first recorded verification of this database: nothing to compare with yet."
        return [HTML(f"<p class='ef-no-history'>{escaped(text)}</p>")]
    delta = changes.rows_now - changes.rows_before
    since = display_time(parse_time(changes.since.checked_at))
    text = (
        f"Since the previous verification, at {since} ({changes.since.verdict}): {count(changes.rows_before)}"
        f" rows then, {count(changes.rows_now)} now ({delta:+,}); {len(changes.places)} industry and state"
        f" pairs changed; {len(changes.checks)} checks changed their verdict."
    )
    shown: list[Any] = [HTML(f"<p class='ef-changes'>{escaped(text)}</p>")]
    shown += [t for t in (place_changes_table(report), check_changes_table(report)) if t is not None]
    shown.append(plots.history(report))
    return shown


VERIFICATION_CONTENTS = (
    ("checks", "The twelve checks"),
    ("failing", "Failing values"),
    ("rejects", "Rejected records"),
    ("changes", "Since the previous verification"),
    ("latency", "Latency"),
    ("distributions", "Distributions"),
    ("ratings", "Ratings"),
    ("cities", "Top 10 cities"),
    ("ledger", "Import ledger"),
)


def verification_sections(
    report: VerifyReport,
    ledger: StatusReport,
    featured: Sequence[dict[str, Any]] = (),
    bands: Sequence[dict[str, Any]] | None = None,
    *,
    run: RunFacts | None = None,
) -> list[Any]:
    """The whole verification report, in the order of the verification notebook."""
    titles = dict(VERIFICATION_CONTENTS)
    note = "not meaningful on an empty table, not measured" if report.empty else "no latency benchmarks were run"
    return [
        report_header(report, run=run),
        contents(VERIFICATION_CONTENTS),
        section(titles["checks"], "checks"),
        checks_table(report),
        section(titles["failing"], "failing"),
        *failing_sections(report),
        section(titles["rejects"], "rejects"),
        *rejects_sections(report.rejects, report.max_reject_rate),
        section(titles["changes"], "changes"),
        *changes_sections(report),
        section(titles["latency"], "latency"),
        plots.latency(report.benchmarks, note=note),
        *([benchmarks_table(report)] if report.benchmarks else []),
        section(titles["distributions"], "distributions"),
        plots.distributions(report, featured, bands),
        section(titles["ratings"], "ratings"),
        plots.rating_histogram(report),
        section(titles["cities"], "cities"),
        plots.top_cities(report),
        top_cities_table(report),
        section(titles["ledger"], "ledger"),
        ledger_table(ledger),
    ]


# --- the ladder ------------------------------------------------------------------------------------


def ladder_header(
    result: LadderResult, database: str, *, run: RunFacts | None = None, version: str = __version__
) -> HTML:
    """The ladder report's header: the verdict, then database, time, version and what ran."""
    figures = ladder_figures(result)
    stopped = [fact for fact in figures if fact[0] == "Stopped"]
    facts = [
        ("Database", describe_url(database)),
        ("Run at", display_time()),
        ("estateflow_nb version", version),
        *[fact for fact in figures if fact[0] != "Stopped"],
        *run_facts(run),
        *stopped,
    ]
    return header("EstateFlow progressive ladder", result.verdict, facts)


def ladder_sections(result: LadderResult, database: str, *, run: RunFacts | None = None) -> list[Any]:
    """The ladder's header, its rung table, its rejected records, its throughput chart and the checks
    of its last verification (for a climb of one file, `climb_sections`)."""
    if isinstance(result, ClimbResult):
        return climb_sections(result, database, run=run)
    verified = [step.verification for step in result.rungs if step.verification is not None]
    limit = result.rungs[0].max_reject_rate if result.rungs else 0.01
    shown: list[Any] = [
        ladder_header(result, database, run=run),
        contents(
            [
                ("rungs", "Rungs"),
                ("rejects", "Rejected records"),
                ("throughput", "Throughput"),
                ("checks", "The last verification"),
            ]
        ),
        section("Rungs", "rungs"),
        rung_table(result),
        section("Rejected records", "rejects"),
        *rejects_sections(result.rejects, limit),
        section("Throughput", "throughput"),
        plots.throughput(result),
        section("The last verification", "checks"),
    ]
    if verified:
        shown += [
            HTML(f"<p>{escaped(verified[-1].verdict)}</p>"),
            checks_table(verified[-1]),
            *failing_sections(verified[-1]),
        ]
    else:
        shown.append(HTML("<p>No rung was verified (verification starts after the small rung).</p>"))
    return shown


def climb_sections(result: ClimbResult, database: str, *, run: RunFacts | None = None) -> list[Any]:
    """A climb's header, its plan (a dry run), its rungs with their ranges, each rung's verification,
    why a rung failed and what next, the rejected records, the throughput chart, and the checks of the
    last verification (the failed rung's, if one failed)."""
    verified = [step.verification for step in result.rungs if step.verification is not None]
    limit = result.rungs[0].max_reject_rate if result.rungs else 0.01
    shown: list[Any] = [climb_header(result, database, run=run)]
    if result.plan is not None:
        return [*shown, section("The plan", "plan"), plan_note(result.plan), climb_plan_table(result.plan)]
    entries = [("rungs", "Rungs"), ("failure", "Why it stopped"), ("rejects", "Rejected records")]
    shown += [contents([*entries, ("throughput", "Throughput"), ("checks", "The last verification")])]
    shown += [section("Rungs", "rungs"), climb_table(result), each_rung(result)]
    shown += [section("Why it stopped", "failure"), failure_html(result), section("Rejected records", "rejects")]
    undone = [result.undone_rejects] if result.undone_rejects is not None else []
    shown += [*rejects_sections([*result.rejects, *undone], limit), section("Throughput", "throughput")]
    shown.append(plots.throughput(result))
    shown.append(section("The last verification", "checks"))
    if verified:
        shown += [HTML(f"<p>{escaped(verified[-1].verdict)}</p>"), checks_table(verified[-1])]
        shown += failing_sections(verified[-1])
    else:
        shown.append(HTML("<p>No rung was verified: no rung ran.</p>"))
    return shown


# --- exploration ------------------------------------------------------------------------------------


def _filter_text(city: str, industry: str) -> str:
    parts = [f"city contains {city.strip()!r}" if city.strip() else "", industry]
    return " and ".join(p for p in parts if p)


def explore_header(
    database: str,
    rows: Sequence[dict[str, Any]],
    *,
    city: str = "",
    industry: str = "",
    run: RunFacts | None = None,
    version: str = __version__,
) -> HTML:
    """The exploration report's header: database, time, version, the filter, and how many
    professionals and cities it holds."""
    merged = merge_cities(rows)
    chosen = _filter_text(city, industry)
    return header(
        "EstateFlow ratings and cities",
        None,
        [
            ("Database", describe_url(database)),
            ("Explored at", display_time()),
            ("estateflow_nb version", version),
            ("Filter", f"{chosen} (every section)" if chosen else "none: every professional"),
            ("Professionals", f"{count(sum(c['count'] for c in merged))} in {plural(len(merged), 'city', 'cities')}"),
            *run_facts(run),
        ],
    )


def city_sections(rows: Sequence[dict[str, Any]], search: str = "", industry: str = "", top: int = 15) -> list[Any]:
    """Cities matching `search` and `industry`: professionals per city, featured per city, a table."""
    explore.filter_clause("", industry)  # refuses an unknown industry
    chosen = filter_cities(rows, search, industry)
    where = _filter_text(search, industry)
    note = plural(len(merge_cities(chosen)), "city", "cities") + (f" where {where}" if where else "")
    return [
        HTML(f"<p class='ef-city-filter'>{escaped(note)}</p>"),
        plots.city_distribution(chosen, top),
        plots.featured_by_city(chosen, top),
        city_table(chosen, top),
    ]


EXPLORE_CONTENTS = (
    ("ratings", "Ratings by industry and by state"),
    ("reviews", "Rating against review count"),
    ("cities", "Cities and featured professionals"),
    ("question", "Your own question"),
)


def explore_sections(
    target: Target,
    *,
    city: str = "",
    industry: str = "",
    top: int = 15,
    sample: int = 2000,
    run: RunFacts | None = None,
) -> list[Any]:
    """The whole exploration report for one filter (`city` contains, `industry`), which every section follows."""
    cities = explore.city_counts(target, city, industry)
    titles = dict(EXPLORE_CONTENTS)
    return [
        explore_header(target.url, cities, city=city, industry=industry, run=run),
        contents(EXPLORE_CONTENTS),
        section(titles["ratings"], "ratings"),
        plots.ratings_by(explore.rating_counts(target, city, industry)),
        section(titles["reviews"], "reviews"),
        plots.rating_vs_reviews(
            explore.rating_review_sample(target, sample, city, industry),
            explore.reviews_by_rating(target, city, industry),
        ),
        section(titles["cities"], "cities"),
        *city_sections(cities, "", "", top),
    ]


def question_sections(answer: Any) -> list[Any]:
    """A `read_sql` answer as the exploration report's last section: the question asked (its SQL, as
    text), how many rows came back and from where, and the DataFrame itself."""
    asked = answer.attrs.get("estateflow", {})
    rows = plural(int(asked.get("rows", len(answer))), "row")
    cut = f", the first {count(asked['limit'])} only (limit)" if asked.get("cut") else ""
    return [
        section(dict(EXPLORE_CONTENTS)["question"], "question"),
        HTML(
            f"<pre class='ef-sql' style='white-space:pre-wrap'>{escaped(str(asked.get('sql', '')).strip())}</pre>"
            f"<p class='ef-answer'>{escaped(rows)} from {escaped(asked.get('database', 'the database'))}{cut}</p>"
        ),
        answer,
    ]


# --- status, backups and rollbacks -------------------------------------------------------------------


def status_header(report: StatusReport, *, run: RunFacts | None = None, version: str = __version__) -> HTML:
    """The rollback notebook's header: the database, when, which version, what it holds, its newest backup."""
    figures = status_figures(report)
    facts = [
        *database_facts(report.target, report.tables.get("professionals", 0), report.size_bytes),
        ("Shown at", display_time()),
        ("estateflow_nb version", version),
        *figures[:2],
        *run_facts(run),
        *figures[2:],
    ]
    return header("EstateFlow rollback and backups", None, facts)


def backup_sections(backups: Sequence[BackupInfo], backups_dir: str | Path | None = None) -> list[Any]:
    """The backups in `backups_dir` as a table, and the rows in each over time once there are two or more."""
    folder = backups_folder(backups_dir)
    if not backups:
        return [
            HTML(
                f"<p class='ef-no-backups'>No backups in {escaped(folder)} yet: every rollback takes one"
                " first, and <code>estateflow backup</code> takes one now.</p>"
            )
        ]
    shown: list[Any] = [
        HTML(f"<p class='ef-backups'>{plural(len(backups), 'backup')} in {escaped(folder)}, newest first.</p>"),
        backups_table(backups),
    ]
    if sum(b.rows is not None for b in backups) >= 2:
        shown.append(plots.backups_over_time(backups))
    return shown


def rollback_sections(
    result: RollbackResult, database: str, ledger: StatusReport | None = None, *, plan: RollbackPlan | None = None
) -> list[Any]:
    """A rollback's header and its imports; then, for a plan, its rows by industry and state as a table
    and as a chart, and for a rollback done (whose rows are those of the plan shown before it), the
    import ledger as it is afterwards, when `ledger` is given."""
    shown: list[Any] = [rollback_header(result, database, plan=plan)]
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


ROLLBACK_CONTENTS = (
    ("status", "Status and import ledger"),
    ("backups", "Backups"),
    ("rollback", "Rollback"),
)


def status_sections(
    report: StatusReport,
    backups: Sequence[BackupInfo],
    backups_dir: str | Path | None = None,
    *,
    run: RunFacts | None = None,
) -> list[Any]:
    """The rollback report's first part: the header, the tables' rows and the ledger, the backups."""
    titles = dict(ROLLBACK_CONTENTS)
    return [
        status_header(report, run=run),
        contents(ROLLBACK_CONTENTS),
        section(titles["status"], "status"),
        tables_table(report),
        ledger_table(report),
        section(titles["backups"], "backups"),
        *backup_sections(backups, backups_dir),
        section(titles["rollback"], "rollback"),
    ]


def plan_sections(plan: RollbackPlan | None, database: str) -> list[Any]:
    """A plan as a rollback report shows it: its header, imports, rows (table and chart); none without one."""
    return [] if plan is None else rollback_sections(plan.shown, database, plan=plan)


def plan_only(plan: RollbackResult | RollbackPlan | None) -> HTML:
    """What a rollback run without its confirmation ends with: what was planned, and that nothing changed."""
    shown = plan.shown if isinstance(plan, RollbackPlan) else plan
    if shown is None:
        text = (
            "No rollback chosen: set one of last_hours, since and until, industry, import_id or reset to plan one."
            " Nothing was changed."
        )
    elif not (shown.imports or shown.by_industry_state):
        text = f"Nothing to roll back: no rows or imports match {shown.description}. Nothing was changed."
    else:
        text = (
            f"Plan only: nothing was changed. Rolling back {shown.description} would remove"
            f" {count(shown.rows_removed)} rows and restore {count(shown.rows_restored)}. To carry it out, run with"
            " confirm=True (estateflow report rollback ... -p confirm true), or tick the confirmation in the"
            " panel and press Roll back; a backup is taken first."
        )
    return HTML(f"<p class='ef-plan-only' style='font-size:16px;font-weight:bold'>{escaped(text)}</p>")
