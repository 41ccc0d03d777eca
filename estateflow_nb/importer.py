"""The batch importer: validate, batch, write each batch with its checkpoint, retry what is transient.

`import_file(target, path)` is the one call; `ImportOptions` holds how (batch size, conflicts,
confirmations, resume, retries, the D1 free tier), built once and passed down by the ladder and the
CLI alike. It scans the file first (structure, record count, SHA-256), picks the rung and applies its
safety rule, and then streams: for a big file a child process reads and validates the next batch
while this one writes the current batch (see _batches.py). Each batch, the ledger counters that
describe it and the checkpoint commit in one transaction (see _ledger.py), so a killed process
resumes after the last committed batch and a replayed batch adds nothing twice (inserts are
idempotent on `license_number`).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, TypedDict, Unpack

from . import _ledger
from ._batches import SUBPROCESS_MIN_RECORDS, Batch, read_batches, read_batches_in_subprocess
from ._confirm import Confirm
from ._rejected import DEFAULT_MAX_REJECT_RATE
from ._rejects import RejectsFile
from ._retry import ATTEMPTS, with_retries
from ._testing import kill_hooks
from ._time import ledger_time, new_id
from .errors import (
    ConfirmationRequired,
    EstateFlowError,
    ImportFailedError,
    QuotaExceededError,
    SourceChangedError,
)
from .quota import QuotaGuard, plan_import, stop_advice
from .rungs import RUNGS, Rung, check_confirmation, rung_for
from .schema import ON_CONFLICT, RECORD_COLUMNS, ImportResultStatus, OnConflict
from .sources import SourceInfo, scan
from .targets import Target

Log = Callable[[str], None]


@dataclass(frozen=True)
class ImportOptions:
    """How to import a file: every setting of `import_file` but the callbacks.

    Without `batch_size`, the file's rung sets it and its safety rule applies: `yes` (or a `confirm`
    callback) for large files, `force` for extra large ones. An unfinished import of the same file is
    resumed after its checkpoint unless `resume=False`. Rejected records go to
    `<import id>.rejects.csv` in `rejects_dir` (default: beside the file). `free_tier` (D1) plans the
    import against today's free-tier row-write budget and refuses one that does not fit, unless
    `split_days`, which stops cleanly at the budget instead. `max_reject_rate` is the share of rejected
    records above which the import (or the ladder's rung) fails its verdict, though its rows stay in.
    """

    batch_size: int | None = None
    delay_ms: float = 0  # between batches
    dry_run: bool = False  # validate and predict; write nothing
    on_conflict: OnConflict = "skip"
    yes: bool = False
    force: bool = False
    resume: bool = True
    rejects_dir: str | Path | None = None
    retries: int = ATTEMPTS  # attempts per batch while the target answers with a transient error
    free_tier: bool = False
    split_days: bool = False
    max_reject_rate: float = DEFAULT_MAX_REJECT_RATE

    def __post_init__(self) -> None:
        if self.on_conflict not in ON_CONFLICT:
            raise EstateFlowError(f"on_conflict must be one of {', '.join(ON_CONFLICT)}, not {self.on_conflict!r}")
        if self.batch_size is not None and self.batch_size < 1:
            raise EstateFlowError(f"batch size must be at least 1, not {self.batch_size}")
        if self.retries < 1:
            raise EstateFlowError(f"retries must be at least 1, not {self.retries}")
        if self.delay_ms < 0:
            raise EstateFlowError(f"delay must be 0 ms or more, not {self.delay_ms}")
        if not 0 <= self.max_reject_rate <= 1:
            raise EstateFlowError(f"the largest reject rate is a share from 0 to 1, not {self.max_reject_rate}")

    @classmethod
    def given(cls, options: ImportOptions | None, settings: ImportSettings) -> ImportOptions:
        """`options` (default: every default) with keyword `settings` on top, as every entry point takes them."""
        base = options or cls()
        return replace(base, **settings) if settings else base


class ImportSettings(TypedDict, total=False):
    """The fields of ImportOptions as keyword arguments (`import_file(target, path, batch_size=50)`),
    so that mypy checks them there too."""

    batch_size: int | None
    delay_ms: float
    dry_run: bool
    on_conflict: OnConflict
    yes: bool
    force: bool
    resume: bool
    rejects_dir: str | Path | None
    retries: int
    free_tier: bool
    split_days: bool
    max_reject_rate: float


@dataclass
class BatchMetrics:
    """One committed batch, for progress bars and throughput charts."""

    number: int
    records: int
    inserted: int
    updated: int
    skipped: int
    rejected: int
    seconds: float
    done: int  # source records handled so far, this batch included: the checkpoint
    total: int
    elapsed: float  # seconds since this run started, at the end of this batch

    @property
    def records_per_second(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0


@dataclass
class ImportResult:
    """What an import (or a dry run) did. Counts cover the whole import, resumed runs included."""

    import_id: str | None
    source: str
    target: str
    rung: str
    batch_size: int
    on_conflict: OnConflict
    status: ImportResultStatus
    records_total: int
    records_read: int = 0
    inserted: int = 0
    updated: int = 0
    skipped: int = 0
    rejected: int = 0
    batches: int = 0
    seconds: float = 0.0  # this run only
    rejects_path: str | None = None
    resumed_from: int = 0
    dry_run: bool = False
    error: str | None = None
    reject_reasons: Counter[str] = field(default_factory=Counter)
    batch_metrics: list[BatchMetrics] = field(default_factory=list)

    @property
    def records_per_second(self) -> float:
        handled = self.records_read - self.resumed_from
        return handled / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["records_per_second"] = round(self.records_per_second, 1)
        data["reject_reasons"] = dict(self.reject_reasons.most_common())
        data["batch_metrics"] = [
            {**asdict(m), "records_per_second": round(m.records_per_second, 1)} for m in self.batch_metrics
        ]
        return data

    def summary(self) -> str:
        """A few lines for a person: what happened and where the rejects went."""
        verb = "would import" if self.dry_run else "imported"
        head = f"dry run of {self.source}" if self.dry_run else f"import {self.import_id} ({self.status})"
        lines = [
            f"{head}: {self.rung} rung, batch size {self.batch_size:,}",
            f"  records read {self.records_read:,} of {self.records_total:,}"
            + (f" (resumed after {self.resumed_from:,})" if self.resumed_from else ""),
            f"  {verb} {self.inserted:,}, updated {self.updated:,}, skipped {self.skipped:,} (duplicates),"
            f" rejected {self.rejected:,}",
            f"  {self.batches:,} batches in {self.seconds:.2f} s, {self.records_per_second:,.0f} records/s",
        ]
        if self.rejected:
            reasons = "; ".join(f"{n:,} x {r}" for r, n in self.reject_reasons.most_common(3))
            where = f" -> {self.rejects_path}" if self.rejects_path else ""
            lines.append(f"  rejects{where}" + (f" ({reasons})" if reasons else ""))
        if self.error:
            lines.append(f"  stopped: {self.error}")
        return "\n".join(lines)


def import_file(
    target: Target,
    path: str | Path,
    options: ImportOptions | None = None,
    *,
    confirm: Confirm | None = None,
    progress: Callable[[BatchMetrics], None] | None = None,
    log: Log | None = None,
    **settings: Unpack[ImportSettings],
) -> ImportResult:
    """Import the records of a CSV, JSON Lines or SQL dump file into `target`.

    `options` says how (see ImportOptions); keyword `settings` are its fields, and win over it.
    `confirm(question)` asks a person about a large file; `progress` is called after every committed
    batch; `log` receives a line per batch and retry. Raises ConfirmationRequired when the rung's
    safety rule is not met, SourceChangedError when an unfinished import's file changed since, and
    ImportFailedError (with `.result`) when the import stops part way.
    """
    options = ImportOptions.given(options, settings)
    source = scan(path, count_up_to=RUNGS[-1].min_records)
    rung = rung_for(source.records)
    batch_size = options.batch_size
    if batch_size is None:  # a caller who chose the batch size is taken to know what they are doing
        check_confirmation(rung, source.records, yes=options.yes, force=options.force, confirm=confirm)
        batch_size = rung.batch_size
    if options.dry_run:
        return _dry_run(target, source, rung.name, batch_size, options.on_conflict)
    run = _Run.open(target, source, rung, batch_size, options, log or _silent)
    try:
        for number, batch in run.batches():
            if run.result.batch_metrics and options.delay_ms:
                time.sleep(options.delay_ms / 1000)
            metrics = run.write(number, batch)
            if progress is not None:
                progress(metrics)
    except BaseException as error:
        run.fail(error)
        if isinstance(error, EstateFlowError | OSError):
            raise run.stopped(error) from error
        raise
    return run.finish()


def _silent(_message: str) -> None:
    pass


def _reasons(batch: Batch) -> Iterator[str]:
    """What each rejected record broke: the column its reason starts with."""
    return (reason.split(":")[0] for _, reason, _ in batch.rejects)


@dataclass(frozen=True)
class _Setup:
    """What a run was opened with."""

    rung: str
    batch_size: int
    options: ImportOptions
    import_id: str
    started_at: str
    rejects_path: Path


class _Run:
    """One run of an import: a new ledger row or the unfinished import it resumes, then batch after
    batch, then `finish`, or `fail` with the reason in the ledger (the same command resumes)."""

    @classmethod
    def open(
        cls, target: Target, source: SourceInfo, rung: Rung, batch_size: int, options: ImportOptions, log: Log
    ) -> _Run:
        """Start a new import of `source` in the ledger, or pick up its unfinished one."""
        previous = _ledger.unfinished(target, source) if options.resume else None
        if previous and previous["source_sha256"] != source.sha256:
            raise SourceChangedError(
                f"{source.path} changed since import {previous['id']} stopped at record"
                f" {previous['checkpoint']:,} (SHA-256 differs); not resuming into it. Roll that import back"
                " or run with --no-resume to start a new one."
            )
        if options.free_tier:
            left = source.records - (previous or {}).get("checkpoint", 0)
            target = _free_tier_guard(target, left, batch_size, options, log)
        if previous:
            import_id, started_at, rejects_path = previous["id"], previous["started_at"], Path(previous["rejects_path"])
            target.execute([_ledger.restart(import_id)])
            log(f"resuming import {import_id} after record {previous['checkpoint']:,}")
        else:
            import_id, started_at = new_id("imp"), ledger_time()
            rejects_path = Path(options.rejects_dir or source.path.parent) / f"{import_id}.rejects.csv"
            start = _ledger.start(
                import_id,
                source,
                target.url,
                rung=rung.name,
                on_conflict=options.on_conflict,
                batch_size=batch_size,
                rejects_path=str(rejects_path),
                started_at=started_at,
            )
            target.execute([start])
        return cls(target, source, _Setup(rung.name, batch_size, options, import_id, started_at, rejects_path), log)

    def __init__(self, target: Target, source: SourceInfo, setup: _Setup, log: Log) -> None:
        """Carry on from what the ledger says: the checkpoint, the counters, the rejects file's length."""
        self.target, self.source, self.setup, self.say = target, source, setup, log
        self.import_id = setup.import_id
        ledger = _ledger.row(target, setup.import_id)
        self.result = ImportResult(
            import_id=setup.import_id,
            source=str(source.path),
            target=target.url,
            rung=setup.rung,
            batch_size=setup.batch_size,
            on_conflict=setup.options.on_conflict,
            status="running",
            records_total=source.records,
            resumed_from=ledger["checkpoint"],
        )
        self.rejects = RejectsFile(setup.rejects_path, source.columns or RECORD_COLUMNS, ledger["rejects_bytes"])
        self.rejected, self.batches_before = ledger["rejected"], ledger["batches"]
        self.seconds_before = ledger["seconds"]
        self.rows_written = 0  # reported by the last batch and not yet in the ledger
        self.stop_reason = ""
        self.began = time.perf_counter()

    def _seconds(self) -> float:
        """Of the whole import, earlier runs included."""
        return self.seconds_before + time.perf_counter() - self.began

    def batches(self) -> Iterator[tuple[int, Batch]]:
        """(batch number, batch) from the checkpoint on; a big file is read by a child process."""
        start, left = self.result.resumed_from, self.source.records - self.result.resumed_from
        reader = read_batches_in_subprocess if left >= SUBPROCESS_MIN_RECORDS else read_batches
        batches = reader(
            self.source.path,
            start=start,
            batch_size=self.setup.batch_size,
            import_id=self.import_id,
            imported_at=self.setup.started_at,
        )
        return enumerate(batches, start=self.batches_before + 1)

    def write(self, number: int, batch: Batch) -> BatchMetrics:
        """Commit one batch with its ledger counters and checkpoint, retrying what is transient."""
        began = time.perf_counter()
        self.rejected += len(batch.rejects)
        self.result.reject_reasons.update(_reasons(batch))
        totals = _ledger.Totals(self.rejected, self.rejects.append(batch.rejects), self._seconds(), self.rows_written)
        write = _ledger.batch_write(self.import_id, batch, self.setup.options.on_conflict, totals)
        before_commit, after_commit = kill_hooks(number)
        outcome = with_retries(
            lambda: self.target.execute(write.statements, before_commit=before_commit),
            attempts=self.setup.options.retries,
            log=self.say,
        )
        after_commit()
        self.rows_written = outcome.rows_written
        inserted, updated = write.counts(outcome.changes)
        now = time.perf_counter()
        metrics = BatchMetrics(
            number=number,
            records=batch.records,
            inserted=inserted,
            updated=updated,
            skipped=len(batch.rows) - inserted - updated,
            rejected=len(batch.rejects),
            seconds=now - began,
            done=batch.end,
            total=self.source.records,
            elapsed=now - self.began,
        )
        self.result.batch_metrics.append(metrics)
        self.say(
            f"batch {number}: {metrics.records:,} records in {metrics.seconds:.2f} s"
            f" ({metrics.records_per_second:,.0f}/s): {metrics.inserted:,} inserted, {metrics.updated:,}"
            f" updated, {metrics.skipped:,} skipped, {metrics.rejected:,} rejected"
        )
        return metrics

    def finish(self) -> ImportResult:
        self.target.execute([_ledger.finish(self.import_id, "completed", self._seconds(), self.rows_written, None)])
        self._fill_result()
        return self.result

    def fail(self, error: BaseException) -> None:
        """Record in the ledger that the import stopped, and why; the result then says so too."""
        message = "interrupted" if isinstance(error, KeyboardInterrupt) else str(error) or type(error).__name__
        if _ledger.rolled_back_meanwhile(error):
            message = "another command rolled this import back while it ran (its last batch was not written)"
        self.stop_reason = message
        # If the target is unreachable the row stays 'running', which resumes just the same. Reading
        # it back is apart: a target may still answer reads when it refuses writes (D1 over quota).
        with contextlib.suppress(EstateFlowError):
            self.target.execute([_ledger.finish(self.import_id, "failed", self._seconds(), self.rows_written, message)])
        with contextlib.suppress(EstateFlowError):
            self._fill_result()

    def stopped(self, error: BaseException) -> ImportFailedError:
        """The one-line error for a person: where the import stopped, why, and what to do."""
        advice = "Fix the cause and run the same command again to resume."
        if _ledger.rolled_back_meanwhile(error):
            advice = "Run the import again to start a new one."
        elif isinstance(error, QuotaExceededError):
            advice = _quota_advice(self.target, self.import_id, advice)
        where = f"stopped at record {self.result.records_read:,} of {self.source.records:,}"
        return ImportFailedError(f"import {self.import_id} {where}: {self.stop_reason}. {advice}", self.result)

    def _fill_result(self) -> None:
        row = _ledger.row(self.target, self.import_id)
        result = self.result
        result.status, result.records_total, result.error = row["status"], row["records_total"], row["error"]
        result.records_read = row["checkpoint"]
        result.inserted, result.updated = row["inserted"], row["updated"]
        result.skipped, result.rejected = row["skipped"], row["rejected"]
        result.batches = row["batches"]
        result.seconds = time.perf_counter() - self.began
        if row["rejects_bytes"]:
            result.rejects_path = row["rejects_path"]


def _free_tier_guard(target: Target, records: int, batch_size: int, options: ImportOptions, say: Log) -> Target:
    """The target behind a guard that keeps to today's D1 free-tier budget (planned first)."""
    if target.kind != "d1":
        say(f"--free-tier: {target.kind} has no row-write quota; nothing to plan")
        return target
    plan = plan_import(target, records, batch_size, options.on_conflict)
    say(f"free tier: {plan.summary()}")
    if not plan.fits and not options.split_days:
        raise ConfirmationRequired(plan.refusal(), flag="--split-days")
    return QuotaGuard(target, plan)


def _quota_advice(target: Target, import_id: str, fallback: str) -> str:
    try:
        return stop_advice(target, import_id)
    except EstateFlowError:
        return fallback


def _dry_run(target: Target, source: SourceInfo, rung: str, batch_size: int, on_conflict: OnConflict) -> ImportResult:
    """Validate every record and ask the target which license numbers it already has; write nothing."""
    result = ImportResult(
        import_id=None,
        source=str(source.path),
        target=target.url,
        rung=rung,
        batch_size=batch_size,
        on_conflict=on_conflict,
        status="dry_run",
        records_total=source.records,
        dry_run=True,
    )
    began = time.perf_counter()
    seen: set[str] = set()
    for batch in read_batches(source.path, start=0, batch_size=batch_size, import_id="", imported_at=ledger_time()):
        result.batches += 1
        result.records_read = batch.end
        result.rejected += len(batch.rejects)
        result.reject_reasons.update(_reasons(batch))
        existing = {
            row["license_number"]
            for row in target.query(
                "SELECT license_number FROM professionals WHERE license_number IN (SELECT value FROM json_each(?))",
                (json.dumps(batch.licenses),),
            )
        }
        for license_number in batch.licenses:
            if license_number in seen:
                result.skipped += 1
            elif license_number in existing:
                if on_conflict == "update":
                    result.updated += 1
                else:
                    result.skipped += 1
            else:
                result.inserted += 1
            seen.add(license_number)
    result.seconds = time.perf_counter() - began
    if on_conflict == "fail" and result.skipped:
        result.error = f"{result.skipped:,} license numbers are already taken: on_conflict='fail' would stop"
    return result
