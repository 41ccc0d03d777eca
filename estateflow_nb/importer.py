"""The batch importer: validate, batch, write each batch with its checkpoint, retry what is transient.

`import_file(target, path)` is the one call; `ImportOptions` holds how (batch size, conflicts,
confirmations, resume, retries, the D1 free tier), built once and passed down by the ladder and the
CLI alike. It scans the file first (structure, record count, SHA-256), picks the rung and applies its
safety rule, and then streams: for a big file a child process reads and validates the next batch
while this one writes the current batch (see _batches.py). Each batch goes in one request, or in as
many as the target's time limit takes (see _parts.py), each with the settling of the ledger's counts
and its checkpoint (see _ledger.py). Every statement is safe to run again and the counts come from
the rows, so a killed process resumes after the last checkpoint, and a request applied in part or
twice still ends with exact rows and counts. While it writes, the run holds the import (see
_claims.py): a second run of the same import says it is already running. An import at least as big
as the table (and of at least 50,000 records) loads without the secondary indexes and builds them in
the transaction that completes it (see _deferred_indexes.py). Where each request is a round trip (D1),
the ledger row comes back in the answers of the requests that write it, and the last batch's request
also completes the import: a 100,000-record import is 11 requests, 10 of them its batches.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Unpack

from . import _claims, _deferred_indexes, _ledger
from ._batches import SUBPROCESS_MIN_RECORDS, Batch, ReaderProcess, Reading, early_reader, read_file_batches
from ._confirm import Confirm
from ._import_terms import BatchMetrics, ImportOptions, ImportResult, ImportSettings
from ._parts import Parts, Sizer
from ._predict import predict
from ._rejects import RejectsFile, moved_rejects
from ._retry import with_retries
from ._testing import kill_hooks
from ._time import ledger_time, new_id
from .errors import (
    ConflictError,
    EstateFlowError,
    ImportFailedError,
    QuotaExceededError,
    TargetError,
    TooLargeError,
)
from .quota import free_tier_guard, request_rows, stop_advice_or
from .rungs import RUNGS, Rung, check_confirmation, rung_for
from .schema import RECORD_COLUMNS, OnConflict
from .sources import SourceInfo, scan
from .targets import ExecuteResult, Statement, Target

# The terms of an import live in _import_terms; everything that imports them from here still may.
__all__ = ["BatchMetrics", "ImportOptions", "ImportResult", "ImportSettings", "import_file"]


Log = Callable[[str], None]


def import_file(
    target: Target,
    path: str | Path | SourceInfo,
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
    early = None
    if not isinstance(path, SourceInfo) and not options.dry_run and options.span is None:
        batch_size = options.batch_size or rung_for(SUBPROCESS_MIN_RECORDS).batch_size
        early = early_reader(Path(path), batch_size, new_id("imp"), ledger_time(), target.limits.row_renderer)
    try:
        return _import(target, path, options, early, confirm, progress, log)
    finally:
        if early is not None:
            early.close()


def _import(
    target: Target,
    path: str | Path | SourceInfo,
    options: ImportOptions,
    early: ReaderProcess | None,
    confirm: Confirm | None,
    progress: Callable[[BatchMetrics], None] | None,
    log: Log | None,
) -> ImportResult:
    source = path if isinstance(path, SourceInfo) else scan(path, count_up_to=RUNGS[-1].min_records)
    if options.span is not None:
        source = options.span.of(source)
    rung = rung_for(source.records)
    batch_size = options.batch_size
    if batch_size is None:  # a caller who chose the batch size is taken to know what they are doing
        check_confirmation(rung, source.records, yes=options.yes, force=options.force, confirm=confirm)
        batch_size = rung.batch_size
    if options.dry_run:
        on_conflict = options.on_conflict or "skip"
        planned = ImportResult(None, str(source.path), target.url, rung.name, batch_size, on_conflict, "dry_run", 0)
        planned.records_total, planned.dry_run = source.records, True
        return predict(target, source, options.span, planned, on_conflict)
    run = _Run.open(target, source, rung, batch_size, options, log or _silent, early)
    try:
        for metrics in run.commits():
            if progress is not None:
                progress(metrics)
    except BaseException as error:
        run.fail(error)
        if isinstance(error, EstateFlowError | OSError):
            raise run.stopped(error) from error
        raise
    else:
        return run.finish()
    finally:
        run.release()


def _silent(_message: str) -> None:
    pass


# Records per commit of a big import (from half as many records on) on a target without a per-request
# limit (SQLite): several of the reader's batches stream into one transaction. Fewer commits write each
# index page fewer times (an append of 100,000 records into 500,000 took 12% less CPU in 50,000-record
# commits than in 10,000-record ones, and 7% less again in one commit), and memory stays at one batch.
COMMIT_RECORDS = 100_000


@dataclass(frozen=True)
class _Setup:
    """What a run was opened with."""

    rung: str
    batch_size: int
    options: ImportOptions
    on_conflict: OnConflict  # the import's, as recorded when it started
    import_id: str
    claim: str
    started_at: str
    rejects_path: Path
    deferred: bool  # this run dropped the secondary indexes and builds them when it ends


class _Run:
    """One run of an import: a new ledger row or the unfinished import it resumes, then batch after
    batch, then `finish`, or `fail` with the reason in the ledger (the same command resumes)."""

    @classmethod
    def open(
        cls,
        target: Target,
        source: SourceInfo,
        rung: Rung,
        batch_size: int,
        options: ImportOptions,
        log: Log,
        early: ReaderProcess | None = None,
    ) -> _Run:
        """Start a new import of `source` in the ledger, or take up its unfinished one. A new import
        takes its id and time from `early`, a reader started before the scan, and reads with it."""
        previous = _ledger.unfinished(target, source, options.span) if options.resume else None
        on_conflict = (
            _ledger.resumable(previous, source, options.on_conflict) if previous else options.on_conflict or "skip"
        )
        if options.free_tier:
            left = source.records - (previous or {}).get("checkpoint", 0)
            target = free_tier_guard(target, left, batch_size, on_conflict, options.split_days, log)
        claim = _claims.take()
        try:
            if previous:
                import_id, started_at = previous["id"], previous["started_at"]
                rejects_path = moved_rejects(previous, options.rejects_dir)
                taken = target.execute(
                    [
                        _ledger.take_over(
                            import_id, previous["claim"], claim, batch_size=batch_size, rejects_path=str(rejects_path)
                        ),
                        _ledger.read_back(import_id),
                    ]
                )
                now = _ledger.row(target, import_id, taken)
                if now is None or now["claim"] != claim:  # another run took it between our read and our write
                    raise _ledger.already_running(now or previous)
                log(f"resuming import {import_id} after record {previous['checkpoint']:,}")
            else:
                import_id, started_at = new_id("imp"), ledger_time()
                if early is not None:
                    import_id, started_at = early.reading.import_id, early.reading.imported_at
                # Absolute: the ledger is read from anywhere (a notebook's folder, another shell).
                folder = Path(options.rejects_dir or source.path.parent).resolve()
                rejects_path = folder / f"{import_id}.rejects.csv"
                start = _ledger.start(
                    import_id,
                    source,
                    target.url,
                    rung=rung.name,
                    on_conflict=on_conflict,
                    batch_size=batch_size,
                    rejects_path=str(rejects_path),
                    started_at=started_at,
                    claim=claim,
                    span=options.span,
                )
                now = _ledger.row(target, import_id, target.execute([start, _ledger.read_back(import_id)]))
            left = source.records - (previous["checkpoint"] if previous else 0)
            deferred = _deferred_indexes.worth_deferring(target, left)
            if deferred:
                target.execute(_deferred_indexes.defer(import_id, claim))
                log(f"{left:,} records: the secondary indexes are built once they are in")
            setup = _Setup(
                rung.name, batch_size, options, on_conflict, import_id, claim, started_at, rejects_path, deferred
            )
            # The row as the first request brought it back (deferring the indexes changed nothing it reads).
            run = cls(target, source, setup, log, now)  # which may read the ledger: that may fail too
            run.early = None if previous else early
            _deferred_indexes.raise_cache(target, deferred)
            return run
        except BaseException:
            _claims.release(claim)
            raise

    def __init__(
        self, target: Target, source: SourceInfo, setup: _Setup, log: Log, ledger: dict[str, Any] | None = None
    ) -> None:
        """Carry on from what the ledger says (`ledger`, its row as the run's first request brought it
        back, else read now): the checkpoint, the counters, the rejects file's length."""
        self.target, self.source, self.setup, self.say = target, source, setup, log
        self.import_id, self.claim = setup.import_id, setup.claim
        ledger = ledger or _ledger.row(target, setup.import_id)
        if ledger is None:  # a reset or restore by another command, that very moment
            raise EstateFlowError(f"import {setup.import_id}: its ledger row is gone; run the import again")
        self.result = ImportResult(
            import_id=setup.import_id,
            source=str(source.path),
            target=target.url,
            rung=setup.rung,
            batch_size=setup.batch_size,
            on_conflict=setup.on_conflict,
            status="running",
            records_total=source.records,
            records_read=ledger["checkpoint"],
            resumed_from=ledger["checkpoint"],
        )
        self.rejects = RejectsFile(
            setup.rejects_path,
            source.columns or RECORD_COLUMNS,
            ledger["rejects_bytes"],
            first_record=setup.options.span.first if setup.options.span else 1,
        )
        self.rejected, self.batches_done = ledger["rejected"], ledger["batches"]
        self.seconds_before = ledger["seconds"]
        self.rows_written = 0  # reported by the last batch and not yet in the ledger
        self.read_to: int | None = None  # a range's byte offset after the last record read, where known
        self.sizer = Sizer(setup.batch_size, target.limits.max_query_seconds)
        # Batches per commit: several for a big import in the rung's own batch size (a caller who chose
        # the batch size gets a commit per batch), where the target takes a request of any size and
        # every batch's rows can go in without their licenses first (not "update").
        self.group = 1
        if (
            setup.options.batch_size is None
            and target.limits.max_query_seconds is None
            and setup.on_conflict != "update"
            and not setup.options.delay_ms
            and source.records - self.result.resumed_from >= COMMIT_RECORDS // 2
        ):
            self.group = max(1, COMMIT_RECORDS // setup.batch_size)
        # Where every request is a round trip (D1), the last batch's request also completes the import
        # (see `finish`): one request fewer. Its answer, the completed ledger row, is kept here.
        self.folds_finish = target.limits.round_trips and self.group == 1
        self.finished: ExecuteResult | None = None
        self.early: ReaderProcess | None = None  # see `open`
        self.stop_reason = ""
        self.began = time.perf_counter()

    def _seconds(self) -> float:
        """Of the whole import, earlier runs included."""
        return self.seconds_before + time.perf_counter() - self.began

    def batches(self) -> Iterator[Batch]:
        """Batches from the checkpoint on (of the import's range, if it has one); a big file is read by a
        child process. A range notes the byte offset its reading got to."""
        start, left = self.result.resumed_from, self.source.records - self.result.resumed_from
        how = (self.setup.batch_size, self.import_id, self.setup.started_at, None, self.target.limits.row_renderer)
        reading = Reading(str(self.source.path), start, *how)
        early = self.early if self.early is not None and self.early.reading == reading else None
        for batch in (
            early.batches()
            if early and left >= SUBPROCESS_MIN_RECORDS
            else read_file_batches(
                self.source.path,
                self.setup.options.span,
                child=left >= SUBPROCESS_MIN_RECORDS,
                start=start,
                batch_size=self.setup.batch_size,
                import_id=self.import_id,
                imported_at=self.setup.started_at,
                renderer=self.target.limits.row_renderer,
            )
        ):
            self.read_to = batch.offset
            yield batch

    def commits(self) -> Iterator[BatchMetrics]:
        """Read, validate and write the records left, commit by commit; the metrics of each."""
        batches = self.batches()
        if self.group == 1:
            for batch, last in self._marked(batches):
                yield from self.write(batch, last=last)
            return
        while True:
            # The first batch of a group is read before the group starts (is there one?) and is not
            # held after it went in: a group holds one batch at a time.
            first = [next(batches, None)]
            if first[0] is None:
                return
            yield self._commit_group(_one_then(first, itertools.islice(batches, self.group - 1)))

    def _marked(self, batches: Iterator[Batch]) -> Iterator[tuple[Batch, bool]]:
        """Each batch, and whether the file has no batch after it (asked only where the last request
        completes the import). The reader is asked one batch ahead only from the batch where the scan's
        count says the file ends: a count that was only estimated too high leaves the finish a request
        of its own, one estimated too low is checked against the reader, never trusted."""
        for batch in batches:
            while self.folds_finish and batch.end >= self.source.records:
                after = next(batches, None)
                yield batch, after is None
                if after is None:
                    return
                batch = after
            yield batch, False

    def _commit_group(self, batches: Iterator[Batch]) -> BatchMetrics:
        """Several batches in one transaction, their rows written as they are read (see COMMIT_RECORDS),
        then the settling and the checkpoint after the last of them."""
        began = time.perf_counter()
        number = self.batches_done + 1
        start = self.result.records_read
        group = Batch([], [], [], start)  # its rejects and its end; the rows only pass through
        committed_rejects = self.rejects.size
        rows = 0
        started = False

        def stream() -> Iterator[tuple[Any, ...]]:
            nonlocal rows, started
            started = True
            for batch in batches:
                # Each batch's rejects go after the last one's; the ledger takes the length at the commit.
                self.rejects.commit(self.rejects.append(batch.rejects))
                group.rejects.extend(batch.rejects)
                group.end = batch.end
                rows += len(batch.rows)
                yield from batch.rows

        def done() -> tuple[int, _ledger.Totals]:
            rejected = self.rejected + len(group.rejects)
            return group.end, _ledger.Totals(rejected, self.rejects.size, self._seconds(), self.rows_written)

        write = _ledger.stream_write(self.import_id, self.claim, stream(), self.setup.on_conflict, done)
        before_commit, after_commit = kill_hooks(number)

        def once() -> ExecuteResult:
            if started:  # its rows came from the reader and are gone: the run stops, and a resume redoes it
                raise EstateFlowError("a commit of several batches failed part way; none of it is in")
            return self.target.execute(write.statements, before_commit=before_commit)

        try:
            outcome = with_retries(once, attempts=self.setup.options.retries, log=self.say)
        except BaseException:
            self.rejects.commit(committed_rejects)
            raise
        after_commit()
        return self._committed(group, number, began, outcome, write, rows, group.end - start)

    def write(self, batch: Batch, *, last: bool = False) -> Iterator[BatchMetrics]:
        """Commit `batch` in as many requests as the target's time limit takes (one where it has none),
        each with its counts and checkpoint; the metrics of each once it is in. The request of the
        `last` batch's last part also completes the import."""
        parts = Parts(batch)
        while parts.left:
            part = parts.take(self.sizer.size)
            try:
                metrics = self._commit(part, final=last and part.end == batch.end)
            except TooLargeError as error:
                if not self.sizer.too_large(part.records):
                    raise
                self.say(f"{error}; sending {self.sizer.size:,} records a request instead of {part.records:,}")
                continue
            parts.commit(part)
            yield metrics

    def _commit(self, part: Batch, *, final: bool = False) -> BatchMetrics:
        """One request: `part`, the settling of the counts and the checkpoint, retrying what is transient;
        if `final`, the import's completion too (see `finish`)."""
        if self.result.batch_metrics and self.setup.options.delay_ms:
            time.sleep(self.setup.options.delay_ms / 1000)
        began = time.perf_counter()
        number = self.batches_done + 1
        rejected = self.rejected + len(part.rejects)
        rejects_end = self.rejects.append(part.rejects)
        totals = _ledger.Totals(rejected, rejects_end, self._seconds(), self.rows_written)
        write = _ledger.batch_write(self.import_id, self.claim, part, self.setup.on_conflict, totals)
        statements = write.statements
        if final:
            # This request's own rows_written comes back only after its last write: the ledger keeps what
            # it writes at most, as the free tier's plan reckons it.
            statements = [*statements, *self._completion(request_rows(len(part.rows), self.setup.on_conflict))]
        before_commit, after_commit = kill_hooks(number)
        try:
            outcome = with_retries(
                lambda: self.target.execute(statements, before_commit=before_commit),
                attempts=self.setup.options.retries,
                log=self.say,
            )
        except ConflictError as error:
            raise self._conflict(part, error) from error
        except TargetError:
            done = self._completed(part) if final else None
            if done is None:
                raise
            outcome = ExecuteResult(changes=[0] * len(statements), rows=[[done]])
        if final:
            self.finished = outcome
        after_commit()
        self.rejects.commit(rejects_end)
        self.sizer.fitted(part.records, outcome.server_seconds)
        return self._committed(part, number, began, outcome, write, len(part.rows), part.records)

    def _committed(
        self,
        part: Batch,
        number: int,
        began: float,
        outcome: ExecuteResult,
        write: _ledger.BatchWrite,
        rows: int,
        records: int,
    ) -> BatchMetrics:
        """The run's counters and the metrics once `part` (`records` records, `rows` of them clean) is in."""
        self.rejected += len(part.rejects)
        self.batches_done, self.rows_written = number, outcome.rows_written
        self.result.reject_reasons.update(part.reasons())
        self.result.records_read = part.end
        inserted, updated = write.counts(outcome.changes)
        now = time.perf_counter()
        metrics = BatchMetrics(
            number=number,
            records=records,
            inserted=inserted,
            updated=updated,
            skipped=rows - inserted - updated,
            rejected=len(part.rejects),
            seconds=now - began,
            done=part.end,
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

    def _conflict(self, part: Batch, error: ConflictError) -> EstateFlowError:
        """--on-conflict fail: which license of `part` another import (or none) already holds. A part
        this import already wrote never conflicts (see _ledger.CONFLICT_TAILS), but the checkpoint is
        read first all the same: a part that is in needs no blame."""
        row = _ledger.row(self.target, self.import_id)
        if row is not None and row["checkpoint"] >= part.end:
            return error
        taken = self.target.query(
            "SELECT license_number, import_id FROM professionals WHERE license_number IN"
            " (SELECT value FROM json_each(?)) AND import_id IS NOT ? ORDER BY license_number LIMIT 1",
            (json.dumps(part.licenses), self.import_id),
        )
        if not taken:
            return error
        owner = f"import {taken[0]['import_id']}" if taken[0]["import_id"] else "no import"
        return ConflictError(
            f"license number {taken[0]['license_number']} is already in the table (written by {owner}) and"
            " --on-conflict is fail"
        )

    def finish(self) -> ImportResult:
        """Complete the import, in a request of its own unless the last batch's request did (where each
        request is a round trip). Either way every statement of the completion is safe to send again:
        the counts are settled from the rows, and the completion applies only while this run holds the
        running import; a last request sent again after its answer was lost finds the import completed
        (its guard stops it) and reads that it is (see `_completed`)."""
        if self.finished is None:
            before_commit, after_commit = kill_hooks("finish")
            self.finished = self.target.execute(self._completion(self.rows_written), before_commit=before_commit)
            after_commit()
        self._fill_result(self.finished)
        return self.result

    def _completion(self, rows_written: int) -> list[Statement]:
        """The statements that complete the import, ending with the read of its ledger row; the ledger
        adds `rows_written` (what the request before reported written, or this request's own)."""
        ended = [] if self.setup.options.span is None else [_ledger.range_end(self.import_id, self.claim, self.read_to)]
        # Deferred indexes are built in the same transaction that completes the import: completed
        # always means indexed, and a run killed while building leaves the import running.
        indexes = _deferred_indexes.rebuild() if self.setup.deferred else []
        completed = _ledger.finish(
            self.import_id, self.claim, self.setup.on_conflict, "completed", self._seconds(), rows_written, None
        )
        return [*ended, *indexes, *completed, _ledger.read_back(self.import_id)]

    def _completed(self, part: Batch) -> dict[str, Any] | None:
        """The ledger row, if the import is completed past `part`: an attempt of the last request got
        through whole though its answer was lost (the guard stops the attempt after it) or said it was
        too large. None otherwise, or when the row cannot be read."""
        with contextlib.suppress(EstateFlowError):
            row = _ledger.row(self.target, self.import_id)
            if row is not None and row["status"] == "completed" and row["checkpoint"] >= part.end:
                return row
        return None

    def fail(self, error: BaseException) -> None:
        """Record in the ledger that the import stopped, and why; the result then says so too."""
        message = "interrupted" if isinstance(error, KeyboardInterrupt) else str(error) or type(error).__name__
        # If the target is unreachable the row stays 'running', which resumes just the same. Reading
        # it back is apart: a target may still answer reads when it refuses writes (D1 over quota).
        lost = None
        if isinstance(error, TargetError):
            with contextlib.suppress(EstateFlowError):
                lost = _ledger.ownership(self.target, self.import_id, self.claim)
        self.stop_reason = lost or message
        answer = None
        if lost is None:
            with contextlib.suppress(EstateFlowError):
                answer = self.target.execute(
                    [
                        *_ledger.finish(
                            self.import_id,
                            self.claim,
                            self.setup.on_conflict,
                            "failed",
                            self._seconds(),
                            self.rows_written,
                            message,
                        ),
                        _ledger.read_back(self.import_id),
                    ]
                )
        if self.setup.deferred:  # else the next connect() builds them
            with contextlib.suppress(EstateFlowError):
                self.target.execute(_deferred_indexes.rebuild())
        self.result.status, self.result.error = "failed", self.stop_reason
        with contextlib.suppress(EstateFlowError):
            self._fill_result(answer)

    def release(self) -> None:
        """Let go of the import, and give the connection its own page cache back."""
        try:
            _deferred_indexes.lower_cache(self.target, self.setup.deferred)
        finally:
            _claims.release(self.claim)

    def stopped(self, error: BaseException) -> ImportFailedError:
        """The one-line error for a person: where the import stopped, why, and what to do."""
        advice = "Fix the cause and run the same command again to resume."
        if self.result.status == "rolled_back" or "ledger row is gone" in self.stop_reason:
            advice = "Run the import again to start a new one."
        elif "took this import over" in self.stop_reason:
            advice = "The other run goes on with it."
        elif isinstance(error, QuotaExceededError):
            advice = stop_advice_or(self.target, self.import_id, advice)
        where = f"stopped at record {self.result.records_read:,} of {self.source.records:,}"
        return ImportFailedError(f"import {self.import_id} {where}: {self.stop_reason}. {advice}", self.result)

    def _fill_result(self, answer: ExecuteResult | None = None) -> None:
        """The result from the ledger, where the counts are (a row that is gone leaves it as it was):
        from `answer`, a request that ended with `_ledger.read_back`, where it brought the row back."""
        row = _ledger.row(self.target, self.import_id, answer)
        result = self.result
        result.seconds = time.perf_counter() - self.began
        if row is None:
            return
        result.status, result.records_total, result.error = row["status"], row["records_total"], row["error"]
        result.records_read = row["checkpoint"]
        result.inserted, result.updated = row["inserted"], row["updated"]
        result.skipped, result.rejected = row["skipped"], row["rejected"]
        result.batches, result.end_offset = row["batches"], row["end_offset"]
        if row["rejects_bytes"]:
            result.rejects_path = row["rejects_path"]


def _one_then(first: list[Any], rest: Iterator[Batch]) -> Iterator[Batch]:
    """The batch in `first` (taken out of it), then `rest`. Taken out, so that once it is written
    nothing holds it: a group of batches keeps one batch in memory at a time."""
    yield first.pop()
    yield from rest
