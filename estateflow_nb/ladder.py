"""The progressive ladder runner: test, small, verify, medium, verify, large, verify.

Each rung imports one ladder file (generated when absent) and, from the small rung on, verifies the
whole database before the next rung may start. The first failed import or verification, or a rung
whose rejected share is over `max_reject_rate`, stops it. Both runners take the import's settings as
`import_file` does: an `ImportOptions`, or its fields as keywords.

Verdicts. A rung that wrote nothing (every record already present) says "nothing new" rather than
claiming a pace it never had to keep. A ladder passes when no rung failed; with rejected records
under the limit it passes with warnings that name each rejects file, its count and its top reasons.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Unpack

from ._confirm import Confirm
from ._look import MISSED_RUNG, Verdict, count, fraction, percent, visible
from ._rejected import DEFAULT_MAX_REJECT_RATE, RejectedImport, rejected_import
from .errors import ConfirmationRequired, ImportFailedError
from .importer import BatchMetrics, ImportOptions, ImportResult, ImportSettings, import_file
from .quota import combine, plan_import
from .rungs import LADDER_FILES, RUNGS, Rung, check_confirmation, rung_for
from .schema import RungVerdict
from .sources import scan
from .targets import Target, project_path
from .verify import VerifyReport, verify

if TYPE_CHECKING:
    import pandas as pd

# The test rung only proves the pipeline; verification starts after the small rung.
VERIFY_AFTER = ("small", "medium", "large", "extra_large")


def rejected_share(result: ImportResult) -> float:
    """The share of an import's records (all of its runs) that were rejected."""
    return result.rejected / result.records_read if result.records_read else 0.0


def nothing_new(result: ImportResult) -> bool:
    """An import that read records and wrote none: every one was already present (or rejected)."""
    return result.status == "completed" and result.records_read > 0 and not (result.inserted or result.updated)


def _rejects_of(result: ImportResult) -> RejectedImport | None:
    """An import's rejected records as evidence (count, share, file, top reasons); None without any."""
    if not result.rejected or result.import_id is None:
        return None
    return rejected_import(result.import_id, result.source, result.rejected, result.records_read, result.rejects_path)


def import_verdict(result: ImportResult, max_reject_rate: float) -> tuple[bool, str]:
    """(failed, a line for a person) of a finished import: its rejected share against the limit,
    or "nothing new" when it wrote nothing."""
    limit = percent(max_reject_rate)
    share = fraction(rejected_share(result))
    if result.dry_run:
        return False, f"rejected share {share} (limit {limit}): a dry run, nothing written"
    if rejected_share(result) > max_reject_rate:
        return True, f"rejected share {share} is over the limit of {limit} (--max-reject-rate): see the rejects file"
    if nothing_new(result):
        return False, f"nothing new: all {count(result.records_read)} records were already present or rejected"
    return False, f"rejected share {share}, within the limit of {limit}"


@dataclass
class RungResult:
    rung: Rung
    file: str
    imported: ImportResult
    verification: VerifyReport | None = None
    error: str | None = None  # why the import stopped part way, if it did
    max_reject_rate: float = DEFAULT_MAX_REJECT_RATE
    rolled_back: bool = False  # its import was rolled back since (a panel follows the ledger)
    # A rung of a climb (see climb.py): its place, and the range of the file's records it imports.
    number: int = 0
    first_record: int | None = None
    last_record: int | None = None

    @property
    def records(self) -> int:
        return self.imported.records_read - self.imported.resumed_from

    @property
    def records_per_second(self) -> float:
        return self.imported.records_per_second

    @property
    def rejected_share(self) -> float:
        return rejected_share(self.imported)

    @property
    def too_many_rejects(self) -> bool:
        return self.rejected_share > self.max_reject_rate

    @property
    def nothing_new(self) -> bool:
        return nothing_new(self.imported)

    @property
    def meets_target(self) -> bool:
        return self.rung.target_rate is None or self.records_per_second >= self.rung.target_rate

    @property
    def verdict(self) -> RungVerdict:
        if self.imported.dry_run:
            return "dry run"
        if self.imported.status != "completed":
            return "import failed"
        if self.rolled_back:
            return "rolled back"
        if self.too_many_rejects:
            return "too many rejects"
        if self.verification is not None and not self.verification.passed:
            return "verification failed"
        if self.nothing_new:
            return "nothing new"
        return "pass" if self.meets_target else "below target"

    def _repr_html_(self) -> str:
        from ._display import rung_html

        return rung_html(self)

    def to_frame(self) -> pd.DataFrame:
        """The rung as one row of `LadderResult.to_frame()`."""
        return LadderResult(rungs=[self]).to_frame()

    def __repr__(self) -> str:
        return (
            f"<RungResult {self.rung.name} {self.verdict}: {self.records:,} records, {self.records_per_second:,.0f}"
            f" records/s, {fraction(self.rejected_share)} rejected, {visible(self.imported.import_id)}>"
        )


# Rung verdicts that neither fail a ladder nor make it pass on their own.
_NEUTRAL: tuple[RungVerdict, ...] = ("nothing new", "dry run", "rolled back")


@dataclass
class LadderResult:
    rungs: list[RungResult] = field(default_factory=list)
    stopped: str | None = None  # why the ladder stopped early, if it did

    @property
    def verdict(self) -> Verdict:
        verdicts = [r.verdict for r in self.rungs]
        missed = next((v for v in verdicts if v != "pass" and v not in _NEUTRAL), None)
        if missed is not None:
            return MISSED_RUNG.get(missed, "STOPPED")
        if self.stopped is not None or not verdicts:
            return "STOPPED"
        if "pass" not in verdicts:
            return "DRY RUN" if all(v == "dry run" for v in verdicts) else "NOTHING NEW"
        return "LADDER PASSED WITH WARNINGS" if self.rejects else "LADDER PASSED"

    @property
    def passed(self) -> bool:
        return self.verdict in ("LADDER PASSED", "LADDER PASSED WITH WARNINGS", "NOTHING NEW")

    @property
    def rejects(self) -> list[RejectedImport]:
        """The rejected records of every rung that is not rolled back, as evidence."""
        found = [_rejects_of(r.imported) for r in self.rungs if not r.rolled_back]
        return [r for r in found if r is not None]

    def to_dict(self) -> dict[str, Any]:
        """What the command line prints with --json."""
        return {
            "verdict": self.verdict,
            "passed": self.passed,
            "stopped": self.stopped,
            "rungs": self.rows(),
            "rejects": [r.to_dict() for r in self.rejects],
        }

    def rows(self) -> list[dict[str, Any]]:
        """One dict per rung, for a table or a DataFrame."""
        return [
            {
                "rung": r.rung.name,
                "file": r.file,
                "records": r.records,
                "inserted": r.imported.inserted,
                "skipped": r.imported.skipped,
                "rejected": r.imported.rejected,
                "rejected_share": round(r.rejected_share, 6),
                "max_reject_rate": r.max_reject_rate,
                "seconds": round(r.imported.seconds, 3),
                "records_per_second": round(r.records_per_second, 1),
                "target_rate": r.rung.target_rate,
                "verified": None if r.verification is None else r.verification.passed,
                "verdict": r.verdict,
            }
            for r in self.rungs
        ]

    def _repr_html_(self) -> str:
        from ._display import ladder_html

        return ladder_html(self)

    def to_frame(self) -> pd.DataFrame:
        """One row per rung, the columns of `rows()`: records, rejected share, seconds, records/s, target,
        verified (True, False, or missing when not verified), verdict."""
        from ._frames import RUNG_COLUMNS, typed

        return typed(self.rows(), RUNG_COLUMNS)

    def __repr__(self) -> str:
        rungs = ", ".join(f"{r.rung.name} {r.verdict}" for r in self.rungs) or "no rungs"
        return f"<LadderResult {self.verdict}: {rungs}>"

    def table(self) -> str:
        header = (
            f"{'rung':<8} {'records':>8} {'rejected':>9} {'seconds':>8} {'records/s':>10} {'target':>7}"
            f"  {'verified':<8} verdict"
        )
        lines = [header, "-" * len(header)]
        for row in self.rows():
            target = "-" if row["target_rate"] is None else f"{row['target_rate']:.0f}"
            verified = {None: "-", True: "yes", False: "NO"}[row["verified"]]
            lines.append(
                f"{row['rung']:<8} {row['records']:>8,} {fraction(row['rejected_share']):>9} {row['seconds']:>8.2f}"
                f" {row['records_per_second']:>10,.0f} {target:>7}  {verified:<8} {row['verdict']}"
            )
        for rejects in self.rejects:
            reasons = "; ".join(f"{count(n)} x {visible(reason)}" for reason, n in rejects.reasons)
            lines.append(
                f"  rejects: {count(rejects.rejected)} ({fraction(rejects.share)}) -> {visible(rejects.rejects_path)}"
                + (f" ({reasons})" if reasons else "")
            )
        lines.append("")
        verdict = self.verdict
        if self.passed:
            lines.append(
                f"{verdict.capitalize()}."
                if verdict != "NOTHING NEW"
                else "Nothing new: every record was already imported."
            )
        else:
            lines.append(f"Ladder stopped ({verdict}): {self.stopped or 'a rung missed its target'}")
        return "\n".join(lines)


def run_ladder(
    target: Target,
    options: ImportOptions | None = None,
    *,
    directory: str | Path = "data",
    files: Sequence[str | Path] | None = None,
    file: str | Path | None = None,
    steps: Sequence[int] | str | None = None,
    confirm: Confirm | None = None,
    verify_runs: int = 5,
    benchmarks: bool = True,
    backups_dir: str | Path | None = None,
    progress: Callable[[BatchMetrics], None] | None = None,
    on_rung: Callable[[RungResult], None] | None = None,
    log: Callable[[str], None] | None = None,
    **settings: Unpack[ImportSettings],
) -> LadderResult:
    """Import each ladder file in turn, verifying after each rung from small on; or climb one `file`.

    With `file`, it is `climb.climb`: the file in rungs of `steps` records (10, 100, 1,000, 10,000,
    then the rest), each verified, a failed one undone after a backup in `backups_dir`; its result is a
    `ClimbResult`. Otherwise `files` default to the four generated ladder files in `directory`. Every rung's safety rule
    (`yes`, `force` or `confirm`) is settled before the first rung runs, and so is the free-tier plan
    (`free_tier`: the whole ladder against today's D1 budget, refused when it does not fit unless
    `split_days`; each rung then stops cleanly at the budget, to be rerun after the reset).
    `on_rung` is called after each rung (and its verification) with its result, for a live table
    or chart. `verify_runs` and `benchmarks` are passed to each verification.
    """
    options = ImportOptions.given(options, settings)
    if file is not None:
        from .climb import DEFAULT_STEPS, climb  # climb.py builds on this module's results

        return climb(
            target,
            file,
            options,
            steps=steps or DEFAULT_STEPS,
            confirm=confirm,
            verify_runs=verify_runs,
            benchmarks=benchmarks,
            backups_dir=backups_dir,
            progress=progress,
            on_rung=on_rung,
            log=log,
        )
    if files is None:
        from .generate import write_ladder  # only here: generating is rare, its tables cost every start

        files = write_ladder(directory)
    paths = [Path(f) for f in files]
    _settle_before_the_first_rung(target, paths, options, confirm)
    settled = replace(options, yes=True)
    result = LadderResult()
    for path in paths:
        step = run_rung(
            target, path, settled, verify_runs=verify_runs, benchmarks=benchmarks, progress=progress, log=log
        )
        if step.error is not None:
            result.stopped = f"{path.name}: {step.error}"
        elif step.too_many_rejects:
            result.stopped = (
                f"{path.name}: {fraction(step.rejected_share)} of its records were rejected, over the limit of"
                f" {percent(step.max_reject_rate)}"
            )
        elif step.verification is not None and not step.verification.passed:
            failed = ", ".join(c.name for c in step.verification.failed_checks) or "latency"
            result.stopped = f"verification failed after the {step.rung.name} rung ({failed})"
        result.rungs.append(step)
        if on_rung is not None:
            on_rung(step)
        if result.stopped:
            break
    return result


def _settle_before_the_first_rung(
    target: Target, paths: list[Path], options: ImportOptions, confirm: Confirm | None
) -> None:
    """Raise now what a rung would refuse later, so that a refusal leaves nothing half done."""
    counts = [scan(path, count_up_to=RUNGS[-1].min_records).records for path in paths]
    if options.batch_size is None:  # as in import_file: a chosen batch size overrides the rungs' rules
        for records in counts:
            check_confirmation(rung_for(records), records, yes=options.yes, force=options.force, confirm=confirm)
    if options.free_tier and not options.split_days and not options.dry_run and target.kind == "d1":
        plan = combine(
            [plan_import(target, n, options.batch_size or rung_for(n).batch_size, options.on_conflict) for n in counts]
        )
        if not plan.fits:
            raise ConfirmationRequired(plan.refusal("the same ladder command"), flag="--split-days")


def run_rung(
    target: Target,
    path: str | Path,
    options: ImportOptions | None = None,
    *,
    confirm: Confirm | None = None,
    verify_runs: int = 5,
    benchmarks: bool = True,
    progress: Callable[[BatchMetrics], None] | None = None,
    log: Callable[[str], None] | None = None,
    **settings: Unpack[ImportSettings],
) -> RungResult:
    """One step of the ladder on one file: import it, then verify the database if its rung calls for it.

    `run_ladder` takes each of its steps here, and a notebook panel steps through the ladder by hand.
    The rung's safety rule applies as in `import_file` (a `batch_size` overrides it); a dry run writes
    nothing and verifies nothing. A failed import does not raise: its result has the verdict "import
    failed", `error` says why, and so does the ledger. `benchmarks=False` verifies with the twelve
    checks alone, without the latency benchmarks.
    """
    options = ImportOptions.given(options, settings)
    error = None
    try:
        imported = import_file(target, path, options, confirm=confirm, progress=progress, log=log)
    except ImportFailedError as failed:
        imported, error = failed.result, str(failed)
    step = RungResult(
        rung_for(imported.records_total), str(path), imported, error=error, max_reject_rate=options.max_reject_rate
    )
    if not options.dry_run and imported.status == "completed" and step.rung.name in VERIFY_AFTER:
        step.verification = verify(
            target, benchmarks=benchmarks, runs=verify_runs, max_reject_rate=options.max_reject_rate
        )
    return step


def run_from_parameters(
    target: Target,
    *,
    directory: str = "data",
    files: str = "",
    file: str = "",
    rungs: str = "",
    batch_size: int = 0,
    dry_run: bool = False,
    yes: bool = False,
    force: bool = False,
    verify_runs: int = 5,
    max_reject_rate: float = DEFAULT_MAX_REJECT_RATE,
) -> LadderResult:
    """What the ladder notebook runs from its parameters: the one `file` climbed in rungs of `rungs`
    records ("10,100,1000,10000" by default; see climb.py; `batch_size` 0: each rung's), or the ladder of
    `files` (comma-separated, in rung order), or of the generated files in `directory`. Relative paths
    are taken from the project root (see `targets.project_path`)."""
    options = ImportOptions(yes=yes, force=force, max_reject_rate=max_reject_rate)
    if file:
        how = replace(options, batch_size=batch_size or None, dry_run=dry_run)
        return run_ladder(target, how, file=project_path(file), steps=rungs or None, verify_runs=verify_runs)
    chosen = [project_path(name.strip()) for name in files.split(",") if name.strip()] or None
    return run_ladder(target, options, directory=project_path(directory), files=chosen, verify_runs=verify_runs)


__all__ = [
    "LADDER_FILES",
    "LadderResult",
    "RungResult",
    "import_verdict",
    "nothing_new",
    "rejected_share",
    "run_from_parameters",
    "run_ladder",
    "run_rung",
]
