"""The progressive ladder runner: test, small, verify, medium, verify, large, verify.

Each rung imports one ladder file (generated when absent) and, from the small rung on, verifies the
whole database before the next rung may start. The first failed import or verification stops it.
Both runners take the import's settings as `import_file` does: an `ImportOptions`, or its fields as
keywords.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Unpack

from ._confirm import Confirm
from .errors import ConfirmationRequired, ImportFailedError
from .generate import LADDER_FILES, write_ladder
from .importer import BatchMetrics, ImportOptions, ImportResult, ImportSettings, import_file
from .quota import combine, plan_import
from .rungs import RUNGS, Rung, check_confirmation, rung_for
from .schema import RungVerdict
from .sources import scan
from .targets import Target
from .verify import VerifyReport, verify

# The test rung only proves the pipeline; verification starts after the small rung.
VERIFY_AFTER = ("small", "medium", "large", "extra_large")


@dataclass
class RungResult:
    rung: Rung
    file: str
    imported: ImportResult
    verification: VerifyReport | None = None
    error: str | None = None  # why the import stopped part way, if it did

    @property
    def records(self) -> int:
        return self.imported.records_read - self.imported.resumed_from

    @property
    def records_per_second(self) -> float:
        return self.imported.records_per_second

    @property
    def meets_target(self) -> bool:
        return self.rung.target_rate is None or self.records_per_second >= self.rung.target_rate

    @property
    def verdict(self) -> RungVerdict:
        if self.imported.dry_run:
            return "dry run"
        if self.imported.status != "completed":
            return "import failed"
        if self.verification is not None and not self.verification.passed:
            return "verification failed"
        return "pass" if self.meets_target else "below target"


@dataclass
class LadderResult:
    rungs: list[RungResult] = field(default_factory=list)
    stopped: str | None = None  # why the ladder stopped early, if it did

    @property
    def passed(self) -> bool:
        return self.stopped is None and all(r.verdict == "pass" for r in self.rungs)

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
                "seconds": round(r.imported.seconds, 3),
                "records_per_second": round(r.records_per_second, 1),
                "target_rate": r.rung.target_rate,
                "verified": None if r.verification is None else r.verification.passed,
                "verdict": r.verdict,
            }
            for r in self.rungs
        ]

    def table(self) -> str:
        header = f"{'rung':<8} {'records':>8} {'seconds':>8} {'records/s':>10} {'target':>7}  {'verified':<8} verdict"
        lines = [header, "-" * len(header)]
        for row in self.rows():
            target = "-" if row["target_rate"] is None else f"{row['target_rate']:.0f}"
            verified = {None: "-", True: "yes", False: "NO"}[row["verified"]]
            lines.append(
                f"{row['rung']:<8} {row['records']:>8,} {row['seconds']:>8.2f} {row['records_per_second']:>10,.0f}"
                f" {target:>7}  {verified:<8} {row['verdict']}"
            )
        lines.append("")
        lines.append(
            "Ladder passed." if self.passed else f"Ladder stopped: {self.stopped or 'a rung missed its target'}"
        )
        return "\n".join(lines)


def run_ladder(
    target: Target,
    options: ImportOptions | None = None,
    *,
    directory: str | Path = "data",
    files: Sequence[str | Path] | None = None,
    confirm: Confirm | None = None,
    verify_runs: int = 5,
    benchmarks: bool = True,
    progress: Callable[[BatchMetrics], None] | None = None,
    on_rung: Callable[[RungResult], None] | None = None,
    log: Callable[[str], None] | None = None,
    **settings: Unpack[ImportSettings],
) -> LadderResult:
    """Import each ladder file in turn, verifying after each rung from small on.

    `files` defaults to the four generated ladder files in `directory`. Every rung's safety rule
    (`yes`, `force` or `confirm`) is settled before the first rung runs, and so is the free-tier plan
    (`free_tier`: the whole ladder against today's D1 budget, refused when it does not fit unless
    `split_days`; each rung then stops cleanly at the budget, to be rerun after the reset).
    `on_rung` is called after each rung (and its verification) with its result, for a live table
    or chart. `verify_runs` and `benchmarks` are passed to each verification.
    """
    options = ImportOptions.given(options, settings)
    paths = [Path(f) for f in files] if files is not None else write_ladder(directory)
    _settle_before_the_first_rung(target, paths, options, confirm)
    settled = replace(options, yes=True)
    result = LadderResult()
    for path in paths:
        step = run_rung(
            target, path, settled, verify_runs=verify_runs, benchmarks=benchmarks, progress=progress, log=log
        )
        if step.error is not None:
            result.stopped = f"{path.name}: {step.error}"
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
    step = RungResult(rung_for(imported.records_total), str(path), imported, error=error)
    if not options.dry_run and imported.status == "completed" and step.rung.name in VERIFY_AFTER:
        step.verification = verify(target, benchmarks=benchmarks, runs=verify_runs)
    return step


__all__ = ["LADDER_FILES", "LadderResult", "RungResult", "run_ladder", "run_rung"]
