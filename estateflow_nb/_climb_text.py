"""A climb as text for a terminal: its plan, its rungs, and when one failed, why and what to do next.
Every value that came from the data or a file name is shown with `visible` (control characters
escaped)."""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING

from ._look import count, fraction, percent, plural, visible
from ._rejected import top_reasons
from .ladder import RungResult
from .sources import SourceInfo

if TYPE_CHECKING:
    from .climb import ClimbPlan, ClimbResult, PlannedRung

# How many kinds of reason a failed rung's rejects are summed up by; how wide the lines of text are.
REASONS_SHOWN = 5
WIDTH = 100


def records(first: int, last: int | None) -> str:
    """A range of records for a person: 'records 1,111 to 11,110'."""
    return f"records {first:,} to {'the end' if last is None else f'{last:,}'}"


def _file_line(source: SourceInfo) -> str:
    total = f"{source.records:,} records" if source.exact else f"about {source.records:,} records"
    return f"{visible(str(source.path))} ({total}, SHA-256 {source.sha256[:16]}...)"


def plan_table(plan: ClimbPlan) -> str:
    """The plan: each rung's range, its records and where it stands; with predictions, the rejects
    validation finds (against the limit), what is new, and on D1 the rows it writes."""
    steps = ", ".join(f"{n:,}" for n in plan.steps)
    lines = _wrapped(f"Plan: climb {_file_line(plan.source)} in rungs of {steps}, then the rest", "")
    notes = [plan.changed] if plan.changed else []
    header = f"{'rung':<5} {'range':<22} {'records':>8}  {'state':<10} {'rejects (predicted)':<22} {'new':>8}"
    header += f" {'present':>8}" + (f" {'rows on D1':>11}" if plan.quota is not None else "") + "  import"
    lines += [header, "-" * len(header)]
    for rung in plan.rungs:
        lines.append(_plan_line(rung, plan.max_reject_rate, d1=plan.quota is not None))
    for rung in plan.rungs:
        if rung.predicted is not None and _share(rung) > plan.max_reject_rate:
            reasons = "; ".join(f"{n:,} x {visible(why)}" for why, n in rung.predicted.reject_reasons.most_common(5))
            notes.append(
                f"rung {rung.number} would fail: {fraction(_share(rung))} rejected, over the limit of"
                f" {percent(plan.max_reject_rate)} ({reasons})"
            )
    large = [r for r in plan.to_run if r.rung.needs is not None]
    if large:
        which = ", ".join(f"rung {r.number} ({r.records:,} records: {r.rung.name})" for r in large)
        notes.append(f"{which}: a large rung needs --yes, an extra large one --force")
    if plan.quota is not None:
        notes.append(f"D1 free tier: {plan.quota.summary()}: {_budget(plan)}")
    if not plan.to_run:
        notes.append("Every rung has passed: nothing left to climb.")
    return "\n".join(lines + [line for note in notes for line in _wrapped(note, "  ")])


def _budget(plan: ClimbPlan) -> str:
    """Whether the climb fits today's D1 budget, and if not, in which rung it runs out."""
    assert plan.quota is not None
    if plan.quota.fits:
        return "it fits today"
    spent = 0
    for rung in plan.to_run:
        spent += rung.quota.estimated_rows if rung.quota is not None else 0
        if spent > plan.quota.remaining:
            break
    return f"today's budget runs out in rung {rung.number}: --split-days spreads the climb over days"


def _share(rung: PlannedRung) -> float:
    read = rung.predicted.records_read if rung.predicted is not None else 0
    return rung.predicted.rejected / read if rung.predicted is not None and read else 0.0


def _plan_line(rung: PlannedRung, limit: float, *, d1: bool) -> str:
    span = records(rung.first, rung.last)[len("records ") :]
    state = rung.state
    predicted, new, present = "-", "-", "-"
    if rung.predicted is not None:
        mark = " OVER" if _share(rung) > limit else ""
        predicted = f"{rung.predicted.rejected:,} ({fraction(_share(rung))}){mark}"
        new, present = f"{rung.predicted.inserted:,}", f"{rung.predicted.skipped + rung.predicted.updated:,}"
    line = f"{rung.number:<5} {span:<22} {rung.records:>8,}  {state:<10} {predicted:<22} {new:>8} {present:>8}"
    if d1:
        line += f" {'-' if rung.quota is None else f'{rung.quota.estimated_rows:,}':>11}"
    return f"{line}  {rung.import_id or '-'}"


def rung_line(step: RungResult) -> str:
    """One line per rung as it finishes (the command line prints it as the ladder goes)."""
    if not step.number:  # a ladder file's rung
        return (
            f"{step.rung.name:<8} {step.records:>7,} records  {step.records_per_second:>10,.0f}/s"
            f"  {step.rejected_share:>6.1%} rejected  {step.verdict}"
        )
    where = records(step.first_record or 1, step.last_record)
    verified = "-" if step.verification is None else "verified" if step.verification.passed else "verification FAILED"
    return (
        f"rung {step.number} ({where}): {step.imported.records_read:,} records, {step.rejected_share:.1%} rejected,"
        f" {step.records_per_second:,.0f}/s, {verified}: {step.verdict}"
    )


def result_table(result: ClimbResult) -> str:
    """The climb's rungs, then its verdict; for a failed rung, why and what to do next."""
    if result.plan is not None and result.verdict == "DRY RUN":
        return plan_table(result.plan) + "\nDry run: nothing was written."
    lines = [f"Climb of {visible(result.file)} (SHA-256 {result.sha256[:16]}...)"]
    if result.rungs and (result.rungs[0].number or 1) > 1:
        before = result.rungs[0]
        lines.append(
            f"  continuing after rung {before.number - 1}"
            f" (records 1 to {(before.first_record or 1) - 1:,} passed before)"
        )
    if result.changed:
        lines.append(f"  {result.changed}")
    if not result.rungs:
        return "\n".join([*lines, "", *_closing(result)])
    header = (
        f"{'rung':<5} {'range':<22} {'records':>8} {'rejected':>9} {'seconds':>8} {'records/s':>10}"
        f"  {'verified':<8} verdict"
    )
    lines += [header, "-" * len(header)]
    for row, step in zip(result.rows(), result.rungs, strict=True):
        verified = {None: "-", True: "yes", False: "NO"}[row["verified"]]
        span = records(step.first_record or 1, step.last_record)[len("records ") :]
        rate = "-" if step.nothing_new else f"{row['records_per_second']:,.0f}"
        lines.append(
            f"{step.number:<5} {span:<22} {row['records']:>8,} {fraction(row['rejected_share']):>9}"
            f" {row['seconds']:>8.2f} {rate:>10}  {verified:<8} {row['verdict']}"
        )
    for rejects in result.rejects:
        reasons = "; ".join(f"{count(n)} x {visible(reason)}" for reason, n in rejects.reasons)
        lines.append(
            f"  rejects: {count(rejects.rejected)} ({fraction(rejects.share)}) -> {visible(rejects.rejects_path)}"
            + (f" ({reasons})" if reasons else "")
        )
    lines.append("")
    lines += _closing(result)
    return "\n".join(lines)


def _closing(result: ClimbResult) -> list[str]:
    verdict = result.verdict
    if result.failed is None:
        if verdict == "NOTHING NEW":
            none = "every rung has passed already" if not result.rungs else "every record was already imported"
            return [f"Nothing new: {none}."]
        handled = sum(step.imported.records_read for step in result.rungs)
        how = "passed with warnings (rejects within the limit, above)" if result.rejects else "passed"
        return [f"Climb {how}: {handled:,} records in {plural(len(result.rungs), 'rung')}, each verified."]
    failed = result.failed
    lines = [f"FAILED at rung {failed.number} ({records(failed.first_record or 1, failed.last_record)}):"]
    for line in result.why:  # a reason's own indent shows what it belongs to
        indent = "  " + " " * (len(line) - len(line.lstrip()))
        lines += _wrapped(line.strip(), indent)
    if result.undo is not None:
        kept = result.failed.number - 1
        stay = f"rungs 1 to {kept} stay" if kept > 1 else "rung 1 stays" if kept == 1 else "nothing else was imported"
        undone = (
            f"Undone: import {result.failed.imported.import_id} rolled back ({result.undo.rollback_id},"
            f" {result.undo.rows_removed:,} rows removed) after a backup: {visible(result.undo.backup_path or 'none')};"
            f" {stay}."
        )
        lines += _wrapped(undone, "  ")
    return lines + _wrapped(f"Next: {result.next}", "", "  ")


def _wrapped(text: str, indent: str, more: str | None = None) -> list[str]:
    """`text` in lines of at most WIDTH characters (a path or an id is never broken)."""
    return textwrap.wrap(
        text,
        WIDTH,
        initial_indent=indent,
        subsequent_indent=indent + (more or "  "),
        break_long_words=False,
        break_on_hyphens=False,
    )


def failure_lines(step: RungResult, rung: PlannedRung) -> list[str]:
    """Why rung `step` failed: its import's error, or its rejected share with the reasons and the
    rejects file, and the checks (or latencies) its verification failed."""
    imported = step.imported
    lines: list[str] = []
    if step.error:
        lines.append(f"its import stopped: {visible(step.error)}")
    if step.too_many_rejects:
        lines.append(
            f"{imported.rejected:,} of its {imported.records_read:,} records ({fraction(step.rejected_share)})"
            f" were rejected, over the limit of {percent(step.max_reject_rate)} (--max-reject-rate)"
        )
        reasons, unreadable = top_reasons(imported.rejects_path, REASONS_SHOWN)
        shown = "; ".join(f"{n:,} x {visible(reason)}" for reason, n in reasons) or unreadable or ""
        lines.append(f"  reasons: {shown}")
        lines.append(f"  rejects file: {visible(imported.rejects_path or '(none)')}")
    report = step.verification
    if report is not None and not report.passed:
        others = [r for r in report.rejects_over_limit if r.import_id != imported.import_id]
        only_these = not (report.failed_checks or others or any(not b.passed for b in report.benchmarks))
        lines.append(
            "the verification after it FAILED too, on these rejected records"
            if only_these
            else "the verification after it FAILED:"
        )
        for check in report.failed_checks:
            lines.append(
                f"  check {check.name} failed: {visible(check.summary)} (expected {visible(check.expected)};"
                f" {check.failing:,} failing)"
            )
        for bench in report.benchmarks:
            if not bench.passed:
                lines.append(
                    f"  latency {bench.title}: {bench.median_ms:,.2f} ms,"
                    f" over its limit of {bench.threshold_ms:,.0f} ms"
                )
        for other in others:
            lines.append(
                f"  import {other.import_id} of {visible(other.source_path)} rejected {other.rejected:,} of"
                f" {other.records:,} records ({fraction(other.share)}), over the limit"
            )
    return lines


def next_step(step: RungResult, rung: PlannedRung, source: SourceInfo, *, undone: bool) -> str:
    """What to do after rung `step` failed."""
    done = rung.first - 1
    again = (
        f"then run the same command again: it continues after rung {step.number - 1} (record {done:,})"
        if done
        else "then run the same command again: it starts at record 1"
    )
    name = visible(str(source.path))
    span = records(rung.first, rung.last)
    if not undone:
        at = rung.first - 1 + step.imported.records_read
        return (
            f"fix what stopped it (above) and run the same command again: it resumes rung {step.number}"
            f" after record {at:,}."
        )
    if step.error:
        return f"fix {name} where the error above says, {again}."
    if step.too_many_rejects:
        return (
            f"fix {span} of {name} (the rejects file lists each rejected record with its reason), or allow more"
            f" with --max-reject-rate; {again}."
        )
    report = step.verification
    if report is not None and not report.failed_checks and not report.rejects_over_limit:
        return (
            "the database answered too slowly (the latencies above): run again when it is less busy, or with"
            f" --no-benchmarks to leave the latencies out; {again}."
        )
    return (
        "see what failed (`estateflow verify` shows the failing values with examples; `--failures DIR` writes"
        f" every failing row), fix it in {span} of {name} or in the database, {again}."
    )
