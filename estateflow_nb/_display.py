"""How each result shows itself as the last line of a notebook cell (`_repr_html_`): compact, in the
look of the reports, built from the reports' own pieces.

A result shows the report's verdict box (smaller), its title, its key figures and its main table:
`_headers.header(..., compact=True)` and the tables of `_tables`, every value escaped there. The key
figures a report's header shares with the result shown alone (the checks and latencies of a
verification, a ladder's records and rejects, a database's imports and newest backup) are made once,
here, and `views` puts them in the reports' headers.

The result classes live in the engine and call in here from their `_repr_html_`, when a notebook asks
(the only way up the layers, and a late one: importing the engine never imports this module, nor
pandas).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._headers import database_facts, escaped, header, rollback_header
from ._look import MISSED_RUNG, Verdict, count, fraction, percent, plural
from ._tables import (
    backups_table,
    batches_table,
    before_after_table,
    checks_table,
    kinds_table,
    ledger_table,
    rollback_imports_table,
    rollback_rows_table,
    rung_table,
)
from ._time import display_time, parse_time
from .targets import describe_url

if TYPE_CHECKING:
    from .backup import Backups, RestoreResult
    from .importer import ImportResult
    from .ladder import LadderResult, RungResult
    from .reports import ReportResult
    from .rollback import RollbackPlan, RollbackResult
    from .status import StatusReport
    from .time_travel import BookmarkRestoreResult
    from .verify import CheckResult, VerifyReport

# A rung's verdict as the box above it says it.
RUNG_VERDICTS: dict[str, Verdict] = {
    "pass": "RUNG PASSED",
    "nothing new": "NOTHING NEW",
    "dry run": "DRY RUN",
    "rolled back": "ROLLED BACK",
    **{k: v for k, v in MISSED_RUNG.items() if k is not None},
}


def shown(kind: str, *parts: Any) -> str:
    """The pieces (a header, tables: anything with HTML of its own) as one block of HTML."""
    html = "".join(part if isinstance(part, str) else _html_of(part) for part in parts if part is not None)
    return f"<div class='ef-result ef-{kind}'>{html}</div>"


def _html_of(part: Any) -> str:
    if hasattr(part, "to_html"):  # a table (a pandas Styler)
        return str(part.to_html())
    return str(part.data)  # IPython's HTML


def _note(text: str) -> str:
    return f"<p class='ef-note' style='margin:4px 0'>{escaped(text)}</p>"


# --- key figures, shared with the reports' headers --------------------------------------------------


def verification_figures(report: VerifyReport) -> list[tuple[str, str]]:
    """The checks passed, the latency benchmarks within their limits, the rejected records."""
    checks_passed = sum(c.passed for c in report.checks)
    within = sum(b.passed for b in report.benchmarks)
    if report.benchmarks:
        latency = f"{within} of {len(report.benchmarks)} within their limits"
    else:
        latency = "not meaningful on an empty table" if report.empty else "not measured"
    over = len(report.rejects_over_limit)
    rejected = sum(r.rejected for r in report.rejects)
    rejects = (
        f"{plural(rejected, 'record')} rejected by {plural(len(report.rejects), 'import')}"
        f" ({over} over the {percent(report.max_reject_rate)} limit)"
        if report.rejects
        else "none"
    )
    return [
        ("Checks", f"{checks_passed} of {len(report.checks)} passed"),
        ("Latency benchmarks", latency),
        ("Rejected records", rejects),
    ]


def ladder_figures(result: LadderResult) -> list[tuple[str, str]]:
    """The rungs climbed, the records they handled and rejected, and why the ladder stopped."""
    records = sum(step.records for step in result.rungs)
    rejected = sum(step.imported.rejected for step in result.rungs)
    read = sum(step.imported.records_read for step in result.rungs)
    facts = [
        ("Rungs", ", ".join(step.rung.name for step in result.rungs) or "none"),
        ("Records handled", count(records)),
        ("Rejected records", f"{count(rejected)} ({fraction(rejected / read) if read else '-'})"),
    ]
    return facts + ([("Stopped", result.stopped)] if result.stopped else [])


def status_figures(report: StatusReport) -> list[tuple[str, str]]:
    """The imports by status and the newest backup (and on D1 the bookmark before the last rollback)."""
    statuses = ", ".join(f"{count(n)} {s}" for s, n in report.by_status.items()) or "none"
    newest = report.newest_backup
    facts = [
        ("Imports", statuses),
        ("Newest backup", "none" if newest is None else f"{Path(newest['path']).name} ({newest['taken_at']})"),
    ]
    if report.bookmark:
        facts.append(("Time Travel bookmark", f"{report.bookmark['bookmark']} (before {report.bookmark['id']})"))
    return facts


# --- imports and the ladder --------------------------------------------------------------------------


def import_verdict_word(result: ImportResult) -> Verdict:
    """An import's box: a dry run, failed or stopped, nothing new, imported (with rejects, or not)."""
    from .ladder import nothing_new

    if result.dry_run:
        return "DRY RUN"
    if result.status != "completed":
        return "IMPORT FAILED" if result.status == "failed" else "STOPPED"
    if nothing_new(result):
        return "NOTHING NEW"
    return "IMPORTED WITH REJECTS" if result.rejected else "IMPORTED"


def import_facts(result: ImportResult) -> list[tuple[str, str]]:
    resumed = f", resumed after {count(result.resumed_from)}" if result.resumed_from else ""
    written = "Would write" if result.dry_run else "Written"
    facts = [
        ("Source", result.source),
        ("Database", describe_url(result.target)),
        ("Rung", f"{result.rung}, batches of {count(result.batch_size)}, on conflict {result.on_conflict}"),
        ("Records", f"{count(result.records_read)} read of {count(result.records_total)}{resumed}"),
        (
            written,
            f"{count(result.inserted)} inserted, {count(result.updated)} updated,"
            f" {count(result.skipped)} skipped as already present",
        ),
    ]
    if result.rejected:
        share = fraction(result.rejected / result.records_read) if result.records_read else "-"
        reasons = "; ".join(f"{count(n)} × {r}" for r, n in result.reject_reasons.most_common(3))
        facts.append(("Rejected", f"{count(result.rejected)} ({share}): {reasons or 'see the rejects file'}"))
        facts.append(("Rejects file", result.rejects_path or "none"))
    facts.append(
        (
            "Took",
            f"{plural(result.batches, 'batch', 'batches')} in {result.seconds:,.2f} s,"
            f" {result.records_per_second:,.0f} records/s",
        )
    )
    return facts + ([("Stopped", result.error)] if result.error else [])


def import_html(result: ImportResult) -> str:
    title = f"Dry run of {Path(result.source).name}" if result.dry_run else f"Import {result.import_id}"
    head = header(title, import_verdict_word(result), import_facts(result), compact=True)
    return shown("import", head, batches_table(result) if result.batch_metrics else None)


def rung_html(rung: RungResult) -> str:
    from .ladder import LadderResult

    verdict = RUNG_VERDICTS.get(rung.verdict, "STOPPED")
    target = "no target" if rung.rung.target_rate is None else f"target {count(rung.rung.target_rate)}/s"
    checked = rung.verification
    facts = [
        ("File", rung.file),
        ("Import", str(rung.imported.import_id)),
        (
            "Records",
            f"{count(rung.records)}, {fraction(rung.rejected_share)} rejected (limit {percent(rung.max_reject_rate)})",
        ),
        ("Pace", f"{rung.records_per_second:,.0f} records/s ({target})"),
        ("Verified", "not verified" if checked is None else f"{checked.verdict} ({count(checked.rows)} rows)"),
    ]
    if rung.error:
        facts.append(("Stopped", rung.error))
    head = header(f"Rung {rung.rung.name}", verdict, facts, compact=True)
    return shown("rung", head, rung_table(LadderResult(rungs=[rung])))


def ladder_html(result: LadderResult) -> str:
    head = header("Progressive ladder", result.verdict, ladder_figures(result), compact=True)
    return shown("ladder", head, rung_table(result) if result.rungs else None)


# --- verification ------------------------------------------------------------------------------------


def verify_html(report: VerifyReport) -> str:
    facts = [
        *database_facts(report.target, report.rows, report.size_bytes),
        *verification_figures(report),
        ("Verified at", f"{display_time(parse_time(report.checked_at))}, in {report.seconds:.2f} s"),
    ]
    if report.failed_checks:
        facts.insert(3, ("Failing", ", ".join(c.title for c in report.failed_checks)))
    head = header("Verification", report.verdict, facts, compact=True)
    failed = report.failed_checks
    hint = (
        f"The failing values by kind: this result's .check({failed[0].name!r}); every check as a DataFrame: .to_frame()"
        if failed
        else None
    )
    return shown("verification", head, checks_table(report), _note(hint) if hint else None)


def check_html(check: CheckResult) -> str:
    facts = [
        ("Observed", check.summary),
        ("Expected", str(check.expected)),
        ("Failing rows", count(check.failing)),
    ]
    if check.kinds > len(check.groups):
        facts.append(("Kinds", f"{count(check.kinds)}, the {len(check.groups)} most common shown"))
    head = header(f"Check {check.number}: {check.title}", "PASSED" if check.passed else "FAILED", facts, compact=True)
    return shown("check", head, kinds_table(check) if check.groups else None)


# --- status, backups, rollbacks, restores, reports -----------------------------------------------------


def status_html(report: StatusReport) -> str:
    facts = [*database_facts(report.target, report.tables.get("professionals", 0), report.size_bytes)]
    head = header("Status", None, facts + status_figures(report), compact=True)
    table = ledger_table(report) if report.imports else None
    return shown("status", head, table, None if report.imports else _note("The ledger holds no import."))


def backups_html(backups: Backups) -> str:
    folders = sorted({str(Path(b.path).parent) for b in backups})
    unreadable = sum(b.error is not None for b in backups)
    facts = [("Backups", f"{count(len(backups))} in {', '.join(folders) or 'the folder'}")]
    if backups:
        facts.append(("Newest", f"{Path(backups[0].path).name} ({backups[0].taken_at})"))
    if unreadable:
        facts.append(("Refused", f"{plural(unreadable, 'file')}: see the problem column"))
    head = header("Backups", None, facts, compact=True)
    return shown("backups", head, backups_table(backups) if backups else None)


def _rollback_tables(result: RollbackResult) -> list[Any]:
    tables: list[Any] = []
    if result.imports:
        tables.append(rollback_imports_table(result))
    if result.by_industry_state:
        tables.append(rollback_rows_table(result))
    return tables


def rollback_html(result: RollbackResult) -> str:
    return shown("rollback", rollback_header(result, None, compact=True), *_rollback_tables(result))


def plan_html(plan: RollbackPlan) -> str:
    head = rollback_header(plan.shown, plan.url, plan=plan, compact=True)
    hint = (
        None if plan.empty else "Nothing changed yet: plan.apply(target) backs up, then rolls back exactly this plan."
    )
    return shown("rollback-plan", head, *_rollback_tables(plan.shown), _note(hint) if hint else None)


def restore_html(result: RestoreResult) -> str:
    facts = [
        ("From", result.path),
        ("Into", describe_url(result.target)),
        ("Backup taken before", result.backup_path or "none"),
    ]
    if not result.dry_run:
        facts.append(("Took", f"{result.seconds:.2f} s"))
    verdict: Verdict = "DRY RUN" if result.dry_run else "RESTORED"
    head = header(f"Restore of {Path(result.path).name}", verdict, facts, compact=True)
    counts = before_after_table(
        [("professionals", result.rows_before, result.rows), ("imports", result.imports_before, result.imports)]
    )
    return shown("restore", head, counts)


def bookmark_html(result: BookmarkRestoreResult) -> str:
    facts = [
        ("Database", describe_url(result.target)),
        ("To bookmark", result.bookmark + (f" (the state at {result.at})" if result.at else "")),
        ("From bookmark", result.current_bookmark),
    ]
    if result.previous_bookmark:
        facts.append(("Undo with", f"estateflow restore --db {result.target} --bookmark {result.previous_bookmark}"))
    if not result.dry_run:
        facts.append(("Took", f"{result.seconds:.2f} s"))
    verdict: Verdict = "DRY RUN" if result.dry_run else "RESTORED"
    head = header("Time Travel restore", verdict, facts, compact=True)
    counts = before_after_table(
        [("professionals", result.rows_before, result.rows), ("imports", result.imports_before, result.imports)]
    )
    return shown("bookmark-restore", head, counts)


def report_html(result: ReportResult) -> str:
    parameters: Sequence[str] = [f"{k}={v!r}" for k, v in result.parameters.items()]
    facts = [
        ("HTML", str(result.html)),
        ("Notebook", str(result.notebook)),
        ("Parameters", ", ".join(parameters) or "none"),
        ("Took", f"{result.seconds:.1f} s"),
    ]
    return shown("report", header(f"EstateFlow {result.name} report", None, facts, compact=True))
