"""Climb one file: the progressive ladder on an analyst's own data.

`climb(target, "agents-2026-12.csv")` imports the file in rungs: its first 10 records, the next 100,
the next 1,000, the next 10,000, then the rest (`DEFAULT_STEPS`, or the caller's `steps`). Each rung
is an import of its own, of a range of the file (`ImportOptions.span`), with its first and last
record and the file's SHA-256 in the ledger, so that it can be listed and undone by its id. After
each rung the whole database is verified (the twelve checks and the latencies) and the rung's
rejected share is weighed against `max_reject_rate`. A rung that fails either is undone exactly (its
import rolled back, after a backup), the rungs before it stay, and the climb stops, saying which
rung failed, why, and what to do next.

Where a climb stands is kept in the ledger, not in a process: a file's rungs are its range imports
that are not rolled back, and the way up is the chain of those the climb judged passed
(`rung_verdict`), from record 1 on. The next rung starts after the last of them, at the byte offset
where it ended (see _offsets.py), unless the file changed since (another SHA-256): then the climb
says so and finds the place by counting records. So the same command, run again, continues after
the last rung that passed; a rung killed half way is resumed as any import is, and one that was
imported but not yet judged (killed before its verification) is judged before the climb goes on.

A rung that could not be imported because the target failed (the network, D1's daily quota) is not
undone: it stays resumable, and the same command resumes it. One stopped by its data (a file that
cannot be read there, a license that `on_conflict="fail"` refuses) is undone like any failed rung.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Unpack

from ._climb_plan import (
    DEFAULT_STEPS,
    PASSED,
    ClimbPlan,
    PlannedRung,
    Standing,
    parse_steps,
    plan_rungs,
    standing,
)
from ._climb_text import failure_lines, next_step, result_table
from ._confirm import Confirm, require_confirmation
from ._look import Verdict, visible
from ._rejected import RejectedImport, rejected_import
from ._testing import kill_hooks
from .errors import (
    ConfirmationRequired,
    ConflictError,
    ImportFailedError,
    SourceChangedError,
    SourceError,
)
from .importer import BatchMetrics, ImportOptions, ImportResult, ImportSettings, import_file
from .ladder import LadderResult, RungResult
from .quota import QuotaPlan, combine, plan_import
from .rollback import RollbackResult, rollback
from .rungs import RUNGS
from .sources import SourceInfo, scan
from .targets import Sql, Target
from .verify import verify


@dataclass
class ClimbResult(LadderResult):
    """What a climb did: its rungs (this run's; `plan` has every rung), and if one failed, which, why
    (`why`), whether it was undone (`undo`, with the backup taken first) and what to do next (`next`).

    A climb passes when no rung failed; a rung slower than the old tool's pace does not fail it (the
    rung's verdict says so). Its verdict is FAILED when a rung failed."""

    file: str = ""
    sha256: str = ""
    plan: ClimbPlan | None = None
    failed: RungResult | None = None
    undo: RollbackResult | None = None
    why: list[str] = field(default_factory=list)
    next: str = ""
    changed: str | None = None

    @property
    def verdict(self) -> Verdict:
        if self.failed is not None:
            return "FAILED"
        run = [r for r in self.rungs if not r.imported.dry_run]
        if self.rungs and not run:
            return "DRY RUN"
        if not any(r.imported.inserted or r.imported.updated for r in run):
            return "NOTHING NEW"
        return "LADDER PASSED WITH WARNINGS" if self.rejects else "LADDER PASSED"

    @property
    def passed(self) -> bool:
        return self.failed is None

    @property
    def rejects(self) -> list[RejectedImport]:
        """As a ladder's, but not those of the rung the climb undid (`undone_rejects`; `why` names them)."""
        undone = self.undone_rejects
        return [r for r in super().rejects if undone is None or r.import_id != undone.import_id]

    @property
    def undone_rejects(self) -> RejectedImport | None:
        """The rejected records of the rung the climb undid, if it rejected any."""
        step = self.failed if self.undo is not None else None
        if step is None or not step.imported.rejected or step.imported.import_id is None:
            return None
        done = step.imported
        return rejected_import(done.import_id or "", done.source, done.rejected, done.records_read, done.rejects_path)

    def rows(self) -> list[dict[str, Any]]:
        rows = super().rows()
        for row, step in zip(rows, self.rungs, strict=True):
            row.update(number=step.number, first_record=step.first_record, last_record=step.last_record)
            row["import_id"] = step.imported.import_id
        return rows

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "sha256": self.sha256,
            "verdict": self.verdict,
            "passed": self.passed,
            "changed": self.changed,
            "rungs": self.rows(),
            "rejects": [r.to_dict() for r in self.rejects],
            "failed": None if self.failed is None else self.failed.number,
            "why": self.why,
            "undone": None if self.undo is None else self.undo.to_dict(),
            "next": self.next,
            "plan": None if self.plan is None else self.plan.to_dict(),
        }

    def table(self) -> str:
        return result_table(self)

    def _repr_html_(self) -> str:
        from ._climb_views import climb_html

        return climb_html(self)

    def __repr__(self) -> str:
        where = f"failed at rung {self.failed.number}" if self.failed is not None else f"{len(self.rungs)} rungs"
        return f"<ClimbResult {self.verdict}: {visible(self.file)}, {where}>"


class Climb:
    """The climb of one file on one target, a rung at a time (`next_rung`, `undo_rung`), or to the top
    (`run`). The file is scanned once (again only if it changes); `result` gathers the rungs run here.

    `options` (or its fields as keywords) is how each rung is imported, as `import_file` takes it;
    `steps` the rung sizes before the last rung (the rest). `confirm`, `yes` and `force` settle the
    large rungs' safety rule; `verify_runs` and `benchmarks` go to each verification; `backups_dir` is
    where the backup before undoing a rung goes.
    """

    def __init__(
        self,
        target: Target,
        file: str | Path,
        options: ImportOptions | None = None,
        *,
        steps: Sequence[int] | str = DEFAULT_STEPS,
        confirm: Confirm | None = None,
        verify_runs: int = 5,
        benchmarks: bool = True,
        backups_dir: str | Path | None = None,
        progress: Callable[[BatchMetrics], None] | None = None,
        log: Callable[[str], None] | None = None,
        **settings: Unpack[ImportSettings],
    ) -> None:
        self.target, self.path = target, Path(file)
        self.options = ImportOptions.given(options, settings)
        self.steps = parse_steps(steps)
        self.confirm, self.verify_runs, self.benchmarks = confirm, verify_runs, benchmarks
        self.backups_dir, self.progress, self.log = backups_dir, progress, log
        self._scanned: tuple[int, int] | None = None
        self.source = self._scan()
        self.result = ClimbResult(file=str(self.source.path), sha256=self.source.sha256)

    def _scan(self) -> SourceInfo:
        """The file as scanned, once; again when its size or modification time changed since."""
        stat = os.stat(self.path) if self.path.exists() else None
        mark = None if stat is None else (stat.st_size, stat.st_mtime_ns)
        if self._scanned is None or mark != self._scanned:
            self.source = scan(self.path, count_up_to=RUNGS[-1].min_records)
            self._scanned = mark
        return self.source

    def standing(self) -> Standing:
        """Where the climb stands now, from the ledger."""
        return standing(self.target, self._scan())

    def plan(self, *, predict: bool = False) -> ClimbPlan:
        """Every rung of the climb as it stands now; with `predict`, a dry run of each rung to run (what
        validation rejects, what is new) and, on D1, the rows it writes against today's budget."""
        source = self._scan()
        where = standing(self.target, source)
        rungs = plan_rungs(source, where, self.steps)
        plan = ClimbPlan(source, rungs, self.steps, self.options.max_reject_rate, where.changed)
        if predict:
            plan.rungs = self._predicted(source, rungs)
        if self.target.kind == "d1" and plan.to_run:
            plan.rungs = [r if r.state == "passed" else replace(r, quota=self._quota(r)) for r in plan.rungs]
            plan.quota = combine([r.quota for r in plan.to_run if r.quota is not None])
        return plan

    def _quota(self, rung: PlannedRung) -> QuotaPlan:
        batch = self.options.batch_size or rung.rung.batch_size
        return plan_import(self.target, rung.records, batch, self.options.on_conflict)

    def _predicted(self, source: SourceInfo, rungs: list[PlannedRung]) -> list[PlannedRung]:
        """Each rung to run with its dry run, each starting where the one before ended."""
        predicted: list[PlannedRung] = []
        offset = None
        for rung in rungs:
            if rung.state in ("passed", "to judge"):
                predicted.append(rung)
                continue
            if rung.offset is None and offset is not None:
                rung = replace(rung, offset=offset)
            dry = import_file(self.target, source, replace(self.options, span=rung.span, dry_run=True, force=True))
            offset = dry.end_offset
            predicted.append(replace(rung, predicted=dry))
        return predicted

    def settle(self, plan: ClimbPlan) -> None:
        """Raise now what a rung would refuse later (its safety rule, the free tier's budget), so that a
        refusal leaves nothing half done."""
        to_run = [r for r in plan.to_run if r.state != "to judge"]
        if self.options.batch_size is None:  # as in import_file: a chosen batch size overrides the rules
            _confirm_rungs(to_run, self.options, self.confirm)
        if self.options.free_tier and not self.options.split_days and self.target.kind == "d1" and to_run:
            together = combine([self._quota(r) for r in to_run])
            if not together.fits:
                raise ConfirmationRequired(together.refusal("the same ladder command"), flag="--split-days")

    def next_rung(self, *, settled: bool = False) -> RungResult | None:
        """Run (or judge, or resume) the next rung and judge it; undo it if it failed. None when every
        rung has passed. Unless `settled`, its safety rule is settled first."""
        plan = self.plan()
        rung = next((r for r in plan.rungs if r.state != "passed"), None)
        if rung is None:
            return None
        if not settled:
            self.settle(replace(plan, rungs=[rung]))
        result = self.result  # a rung run after one failed (the file fixed since, say) starts afresh
        result.failed, result.stopped, result.undo, result.why, result.next = None, None, None, [], ""
        self.result.changed = self.result.changed or plan.changed
        self.result.file, self.result.sha256 = str(self.source.path), self.source.sha256
        imported = self._imported(rung)
        kill_hooks(f"judge-{rung.number}")[1]()  # crash tests: between a rung's import and its judgement
        step = self._judged(rung, imported)
        self.result.rungs.append(step)
        return step

    def _imported(self, rung: PlannedRung) -> tuple[ImportResult, str | None, bool]:
        """(the rung's import, why it stopped if it did, whether that is the data's fault)."""
        if rung.state == "to judge":
            row = self.target.query("SELECT * FROM ef_imports WHERE id = ?", (rung.import_id,))[0]
            return _from_ledger(row), None, False
        options = replace(self.options, span=rung.span, yes=True, force=True)
        try:
            return import_file(self.target, self.source, options, progress=self.progress, log=self.log), None, False
        except ImportFailedError as failed:
            cause = failed.__cause__
            return failed.result, str(failed), isinstance(cause, SourceError | ConflictError)
        except SourceChangedError:
            raise SourceChangedError(
                f"{self.source.path} changed since rung {rung.number} (import {rung.import_id}) stopped part way"
                f" (another SHA-256): undo that rung (`estateflow rollback import {rung.import_id}`), then run the"
                " same command again to climb the file as it is now"
            ) from None

    def _judged(self, rung: PlannedRung, imported: tuple[ImportResult, str | None, bool]) -> RungResult:
        """The rung's result: verified after its import, weighed, recorded in the ledger; undone if it failed."""
        result, error, data_fault = imported
        step = RungResult(
            rung.rung,
            str(self.source.path),
            result,
            error=error,
            max_reject_rate=self.options.max_reject_rate,
            number=rung.number,
            first_record=rung.first,
            last_record=rung.first + result.records_read - 1 if result.status == "completed" else rung.last,
        )
        if result.status == "completed":
            step.verification = verify(
                self.target,
                benchmarks=self.benchmarks,
                runs=self.verify_runs,
                max_reject_rate=self.options.max_reject_rate,
            )
        failed = step.verdict in ("too many rejects", "verification failed") or (error is not None and data_fault)
        if result.import_id is not None and result.status == "completed":
            verdict = step.verdict if failed else PASSED
            self.target.execute(
                [Sql("UPDATE ef_imports SET rung_verdict = ? WHERE id = ?", (verdict, result.import_id))]
            )
        if failed or error is not None:
            self._fail(step, rung, undo=failed)
        return step

    def _fail(self, step: RungResult, rung: PlannedRung, *, undo: bool) -> None:
        result = self.result
        result.failed, result.stopped = step, f"rung {step.number} failed"
        result.why = failure_lines(step, rung)
        if undo and step.imported.import_id is not None:
            result.undo = rollback(
                self.target, import_id=step.imported.import_id, yes=True, backups_dir=self.backups_dir
            )
            step.rolled_back = False  # undone by the climb: its verdict stays why it failed
        result.next = next_step(step, rung, self.source, undone=result.undo is not None)

    def run(self, on_rung: Callable[[RungResult], None] | None = None) -> ClimbResult:
        """Every rung still to climb, in order, until one fails or the file ends; the safety rules of all
        of them are settled before the first. `on_rung` is called with each rung once it is judged."""
        self.settle(self.plan())
        while self.result.failed is None:
            step = self.next_rung(settled=True)
            if step is None:
                break
            if on_rung is not None:
                on_rung(step)
        return self.result

    def undo_rung(self, *, yes: bool = False, confirm: Confirm | None = None) -> RollbackResult | None:
        """Undo the newest rung of the climb (passed, unjudged or unfinished), after a backup: the climb
        then goes on from the rung before it. None when no rung is left to undo."""
        where = self.standing()
        row = where.pending or (where.passed[-1] if where.passed else None)
        if row is None:
            return None
        undone = rollback(self.target, import_id=row["id"], yes=yes, confirm=confirm, backups_dir=self.backups_dir)
        for step in self.result.rungs:
            step.rolled_back = step.rolled_back or step.imported.import_id == row["id"]
        return undone


def _confirm_rungs(rungs: list[PlannedRung], options: ImportOptions, confirm: Confirm | None) -> None:
    """The safety rule of every rung to run, settled at once: --force for an extra large one, one
    question (or --yes) for the large ones."""
    if options.force:
        return
    extra = [r for r in rungs if r.rung.needs == "force"]
    if extra:
        raise ConfirmationRequired(
            f"rung {extra[0].number} ({extra[0].records:,} records) is an extra large import: pass --force to run it",
            flag="--force",
        )
    large = [r for r in rungs if r.rung.needs == "confirm"]
    if large:
        which = " and ".join(f"rung {r.number} ({r.records:,} records)" for r in large)
        require_confirmation(
            f"{which}: large imports. Go ahead?", f"{which}: large imports", yes=options.yes, confirm=confirm
        )


def _from_ledger(row: dict[str, Any]) -> ImportResult:
    """An import that completed earlier, as its result (for a rung judged after it was imported)."""
    return ImportResult(
        import_id=row["id"],
        source=row["source_path"],
        target=row["target"],
        rung=row["rung"] or "",
        batch_size=row["batch_size"],
        on_conflict=row["on_conflict"],
        status=row["status"],
        records_total=row["records_total"] or 0,
        records_read=row["checkpoint"],
        inserted=row["inserted"],
        updated=row["updated"],
        skipped=row["skipped"],
        rejected=row["rejected"],
        batches=row["batches"],
        seconds=row["seconds"],
        rejects_path=row["rejects_path"] if row["rejects_bytes"] else None,
        end_offset=row["end_offset"],
    )


def climb(
    target: Target,
    file: str | Path,
    options: ImportOptions | None = None,
    *,
    steps: Sequence[int] | str = DEFAULT_STEPS,
    confirm: Confirm | None = None,
    verify_runs: int = 5,
    benchmarks: bool = True,
    backups_dir: str | Path | None = None,
    progress: Callable[[BatchMetrics], None] | None = None,
    on_rung: Callable[[RungResult], None] | None = None,
    log: Callable[[str], None] | None = None,
    **settings: Unpack[ImportSettings],
) -> ClimbResult:
    """Climb `file` to the top, or to the first rung that fails (see the module's docstring). With
    `dry_run`, nothing is written: the result's `plan` is the climb's, each rung with its dry run."""
    climbing = Climb(
        target,
        file,
        options,
        steps=steps,
        confirm=confirm,
        verify_runs=verify_runs,
        benchmarks=benchmarks,
        backups_dir=backups_dir,
        progress=progress,
        log=log,
        **settings,
    )
    if climbing.options.dry_run:
        plan = climbing.plan(predict=True)
        climbing.result.plan, climbing.result.changed = plan, plan.changed
        climbing.result.rungs = [
            RungResult(
                r.rung, str(plan.source.path), r.predicted, number=r.number, first_record=r.first, last_record=r.last
            )
            for r in plan.rungs
            if r.predicted is not None
        ]
        return climbing.result
    return climbing.run(on_rung)


__all__ = [
    "DEFAULT_STEPS",
    "Climb",
    "ClimbPlan",
    "ClimbResult",
    "PlannedRung",
    "Standing",
    "climb",
    "parse_steps",
]
