"""The batch importer: validate, batch, write each batch with its checkpoint, retry what is transient.

`import_file(target, path)` is the one call. It scans the file first (structure, record count,
SHA-256), picks the rung, and then streams: for a big file a child process reads and validates the
next batch while this one writes the current batch (see batches.py). Each batch, the ledger counters
that describe it and the checkpoint commit in one transaction, so a killed process resumes after the
last committed batch and a replayed batch adds nothing twice (inserts are idempotent on
`license_number`).
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import random
import secrets
import signal
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ._batches import SUBPROCESS_MIN_RECORDS, Batch, read_batches, read_batches_in_subprocess
from .errors import (
    ConfirmationRequired,
    EstateFlowError,
    ImportFailedError,
    QuotaExceededError,
    SourceChangedError,
    TransientError,
)
from .quota import QuotaGuard, plan_import, stop_advice
from .rungs import RUNGS, check_confirmation, rung_for
from .schema import ON_CONFLICT, RECORD_COLUMNS, STORED_COLUMNS
from .sources import SourceInfo, scan
from .targets import CHANGES, InsertRows, Sql, Target

RETRY_ATTEMPTS = 3
RETRY_BASE_SECONDS = 0.5
# Set by tests to kill the process at a chosen point: "<batch number>:before" (inside the batch's
# transaction, before its commit) or "<batch number>:after" (right after the commit).
KILL_HOOK_ENV = "ESTATEFLOW_TEST_KILL_AT"

_UPDATABLE = [c for c in STORED_COLUMNS if c != "license_number"]
CONFLICT_TAILS = {
    "skip": "ON CONFLICT(license_number) DO NOTHING",
    # Rows this same import already wrote (a license twice in one file) are left alone.
    "update": "ON CONFLICT(license_number) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _UPDATABLE)
    + " WHERE professionals.import_id IS NOT excluded.import_id",
    "fail": "",
}
_CAPTURE_BEFORE_IMAGES = (
    "INSERT OR IGNORE INTO ef_before_images (by_import, id, {cols}) "
    "SELECT ?, id, {cols} FROM professionals "
    "WHERE license_number IN (SELECT value FROM json_each(?)) AND import_id IS NOT ?"
).format(cols=", ".join(STORED_COLUMNS))


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
    on_conflict: str
    status: str
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


def _utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_import_id() -> str:
    return f"imp-{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


class _Rejects:
    """The rejects file: the original row, its record number and the reason, appended per batch.

    The ledger records the file's length at each commit; a resumed import cuts the file back to it,
    so rejects of a batch that never committed are not written twice.
    """

    def __init__(self, path: Path, columns: tuple[str, ...], committed_bytes: int) -> None:
        self.path = path
        self.columns = columns
        self.size = committed_bytes
        if path.exists():
            with path.open("r+b") as f:
                f.truncate(committed_bytes)

    def append(self, rejects: list[tuple[int, str, dict[str, Any]]]) -> int:
        if rejects:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8", newline="") as f:
                writer = csv.writer(f)
                if f.tell() == 0:
                    writer.writerow(["record", "reason", *self.columns])
                for number, reason, raw in rejects:
                    writer.writerow([number, reason, *(_cell(raw.get(c)) for c in self.columns)])
                self.size = f.tell()
        return self.size


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    return value if isinstance(value, str | int | float) else json.dumps(value, ensure_ascii=False)


def _kill_hook(batch_number: int) -> tuple[Callable[[], None] | None, bool]:
    """(before_commit callback, kill after commit) for the test hook in `KILL_HOOK_ENV`."""
    spec = os.environ.get(KILL_HOOK_ENV, "")
    number, _, when = spec.partition(":")
    if not number.isdigit() or int(number) != batch_number:
        return None, False

    def kill() -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    return (kill, False) if when == "before" else (None, True)


def _still_running(import_id: str) -> Sql:
    # A batch may only land under an import that is still running. If another command rolled the
    # import back meanwhile, this breaks the NOT NULL on batch_size, and the whole batch fails with it.
    return Sql("UPDATE ef_imports SET batch_size = NULL WHERE id = ? AND status != 'running'", (import_id,))


def _rolled_back_meanwhile(error: BaseException) -> bool:
    return "ef_imports.batch_size" in str(error)


def _batch_statements(
    import_id: str,
    batch: Batch,
    on_conflict: str,
    rejected_total: int,
    rejects_bytes: int,
    seconds: float,
    rows_written: int,
) -> list[Sql | InsertRows]:
    statements: list[Sql | InsertRows] = [_still_running(import_id)]
    if on_conflict == "update":
        statements += [
            Sql(_CAPTURE_BEFORE_IMAGES, (import_id, json.dumps(batch.licenses), import_id)),
            Sql(
                "UPDATE ef_imports SET updated = updated + ?, inserted = inserted - ? WHERE id = ?",
                (CHANGES, CHANGES, import_id),
            ),
        ]
    statements.append(
        InsertRows(
            "professionals",
            STORED_COLUMNS,
            batch.rows,
            tail=CONFLICT_TAILS[on_conflict],
            then=Sql("UPDATE ef_imports SET inserted = inserted + ? WHERE id = ?", (CHANGES, import_id)),
        )
    )
    statements.append(
        Sql(
            "UPDATE ef_imports SET checkpoint = ?, rejected = ?, rejects_bytes = ?, batches = batches + 1,"
            " skipped = ? - ? - inserted - updated, seconds = ?, rows_written = rows_written + ?"
            # A batch replayed after an unknown outcome (D1: applied, answer lost) finds its own
            # checkpoint already there and leaves the counters alone; its rows were skipped as duplicates.
            " WHERE id = ? AND checkpoint < ?",
            (
                batch.end,
                rejected_total,
                rejects_bytes,
                batch.end,
                rejected_total,
                seconds,
                rows_written,
                import_id,
                batch.end,
            ),
        )
    )
    return statements


def _execute_with_retries(
    target: Target,
    statements: list[Sql | InsertRows],
    before_commit: Callable[[], None] | None,
    attempts: int,
    log: Callable[[str], None],
) -> Any:
    for attempt in range(1, attempts + 1):
        try:
            return target.execute(statements, before_commit=before_commit)
        except TransientError as error:
            if attempt == attempts:
                raise
            wait = error.retry_after
            if wait is None:
                wait = RETRY_BASE_SECONDS * 2 ** (attempt - 1) * (0.5 + random.random())
            log(f"transient error ({error}); retry {attempt} of {attempts - 1} in {wait:.1f} s")
            time.sleep(wait)
    raise AssertionError("unreachable")


def _unfinished_import(target: Target, source: SourceInfo) -> dict[str, Any] | None:
    rows = target.query(
        "SELECT * FROM ef_imports WHERE source_path = ? AND status IN ('running', 'failed')"
        " ORDER BY started_at DESC, rowid DESC LIMIT 1",
        (str(source.path.resolve()),),
    )
    return rows[0] if rows else None


def _ledger_row(target: Target, import_id: str) -> dict[str, Any]:
    return target.query("SELECT * FROM ef_imports WHERE id = ?", (import_id,))[0]


def import_file(
    target: Target,
    path: str | Path,
    *,
    batch_size: int | None = None,
    delay_ms: float = 0,
    dry_run: bool = False,
    on_conflict: str = "skip",
    yes: bool = False,
    force: bool = False,
    confirm: Callable[[str], bool] | None = None,
    resume: bool = True,
    rejects_dir: str | Path | None = None,
    retries: int = RETRY_ATTEMPTS,
    progress: Callable[[BatchMetrics], None] | None = None,
    log: Callable[[str], None] | None = None,
    free_tier: bool = False,
    split_days: bool = False,
) -> ImportResult:
    """Import the records of a CSV, JSON Lines or SQL dump file into `target`.

    Without `batch_size`, the file's rung sets it and its safety rule applies (`yes` or `confirm`
    for large files, `force` for extra large ones; ConfirmationRequired otherwise). An unfinished
    import of the same file is resumed after its checkpoint unless `resume=False`; if the file
    changed since, SourceChangedError. Rejected records go to `<import id>.rejects.csv` in
    `rejects_dir` (default: beside the file). `progress` is called after every committed batch.
    `free_tier` (D1) plans the import against today's free-tier row-write budget and refuses one that
    does not fit (ConfirmationRequired) unless `split_days`, which stops cleanly at the budget instead.
    Raises ImportFailedError (with `.result`) when the import stops part way.
    """
    say = log or (lambda _message: None)
    if on_conflict not in ON_CONFLICT:
        raise EstateFlowError(f"on_conflict must be one of {', '.join(ON_CONFLICT)}, not {on_conflict!r}")
    if batch_size is not None and batch_size < 1:
        raise EstateFlowError(f"batch size must be at least 1, not {batch_size}")
    source = scan(path, count_up_to=RUNGS[-1].min_records)
    rung = rung_for(source.records)
    if batch_size is None:
        check_confirmation(rung, source.records, yes=yes, force=force, confirm=confirm)
        batch_size = rung.batch_size
    if dry_run:
        return _dry_run(target, source, rung.name, batch_size, on_conflict)

    previous = _unfinished_import(target, source) if resume else None
    if previous and previous["source_sha256"] != source.sha256:
        raise SourceChangedError(
            f"{source.path} changed since import {previous['id']} stopped at record"
            f" {previous['checkpoint']:,} (SHA-256 differs); not resuming into it. Roll that import back"
            " or run with --no-resume to start a new one."
        )
    if free_tier:
        target = _free_tier_guard(
            target, source.records - (previous or {}).get("checkpoint", 0), batch_size, on_conflict, split_days, say
        )
    if previous:
        import_id = previous["id"]
        started_at = previous["started_at"]
        rejects_path = Path(previous["rejects_path"])
        target.execute([Sql("UPDATE ef_imports SET status = 'running', error = NULL WHERE id = ?", (import_id,))])
        say(f"resuming import {import_id} after record {previous['checkpoint']:,}")
    else:
        import_id = new_import_id()
        started_at = _utc_now()
        rejects_path = Path(rejects_dir or source.path.parent) / f"{import_id}.rejects.csv"
        target.execute(
            [
                Sql(
                    "INSERT INTO ef_imports (id, source_path, source_sha256, target, rung, on_conflict,"
                    " batch_size, status, records_total, rejects_path, started_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, 'running', ?, ?, ?)",
                    (
                        import_id,
                        str(source.path.resolve()),
                        source.sha256,
                        target.url,
                        rung.name,
                        on_conflict,
                        batch_size,
                        source.records,
                        str(rejects_path),
                        started_at,
                    ),
                )
            ]
        )
    ledger = _ledger_row(target, import_id)
    start = ledger["checkpoint"]
    result = ImportResult(
        import_id=import_id,
        source=str(source.path),
        target=target.url,
        rung=rung.name,
        batch_size=batch_size,
        on_conflict=on_conflict,
        status="running",
        records_total=source.records,
        rejects_path=None,
        resumed_from=start,
    )
    rejects = _Rejects(rejects_path, source.columns or RECORD_COLUMNS, ledger["rejects_bytes"])
    rejected_total = ledger["rejected"]
    seconds_before = ledger["seconds"]
    rows_written = 0
    began = time.perf_counter()
    reader = read_batches_in_subprocess if source.records - start >= SUBPROCESS_MIN_RECORDS else read_batches
    batches = reader(source.path, start=start, batch_size=batch_size, import_id=import_id, imported_at=started_at)
    try:
        for number, batch in enumerate(batches, start=ledger["batches"] + 1):
            if result.batch_metrics and delay_ms:
                time.sleep(delay_ms / 1000)
            batch_began = time.perf_counter()
            rejected_total += len(batch.rejects)
            result.reject_reasons.update(reason.split(":")[0] for _, reason, _ in batch.rejects)
            size = rejects.append(batch.rejects)
            statements = _batch_statements(
                import_id,
                batch,
                on_conflict,
                rejected_total,
                size,
                seconds_before + time.perf_counter() - began,
                rows_written,
            )
            before_commit, kill_after = _kill_hook(number)
            outcome = _execute_with_retries(target, statements, before_commit, retries, say)
            if kill_after:
                os.kill(os.getpid(), signal.SIGKILL)
            rows_written = outcome.rows_written
            metrics = _metrics(number, batch, outcome.changes, on_conflict, batch_began, began, source.records)
            result.batch_metrics.append(metrics)
            say(
                f"batch {number}: {metrics.records:,} records in {metrics.seconds:.2f} s"
                f" ({metrics.records_per_second:,.0f}/s): {metrics.inserted:,} inserted, {metrics.updated:,}"
                f" updated, {metrics.skipped:,} skipped, {metrics.rejected:,} rejected"
            )
            if progress is not None:
                progress(metrics)
    except BaseException as error:
        message = "interrupted" if isinstance(error, KeyboardInterrupt) else str(error) or type(error).__name__
        if _rolled_back_meanwhile(error):
            message = "another command rolled this import back while it ran (its last batch was not written)"
        # If the target is unreachable the row stays 'running', which resumes just the same. Reading
        # it back is apart: a target may still answer reads when it refuses writes (D1 over quota).
        with contextlib.suppress(EstateFlowError):
            _finish(
                target,
                import_id,
                "failed",
                seconds_before + time.perf_counter() - began,
                rows_written,
                message,
            )
        with contextlib.suppress(EstateFlowError):
            _fill_from_ledger(result, target, began)
        if not isinstance(error, EstateFlowError | OSError):
            raise
        advice = "Fix the cause and run the same command again to resume."
        if _rolled_back_meanwhile(error):
            advice = "Run the import again to start a new one."
        elif isinstance(error, QuotaExceededError):
            advice = _quota_advice(target, import_id, advice)
        raise ImportFailedError(
            f"import {import_id} stopped at record {result.records_read:,} of {source.records:,}: {message}. {advice}",
            result,
        ) from error
    _finish(target, import_id, "completed", seconds_before + time.perf_counter() - began, rows_written, None)
    _fill_from_ledger(result, target, began)
    return result


def _free_tier_guard(
    target: Target, records: int, batch_size: int, on_conflict: str, split_days: bool, say: Callable[[str], None]
) -> Target:
    """The target behind a guard that keeps to today's D1 free-tier budget (planned first)."""
    if target.kind != "d1":
        say(f"--free-tier: {target.kind} has no row-write quota; nothing to plan")
        return target
    plan = plan_import(target, records, batch_size, on_conflict)
    say(f"free tier: {plan.summary()}")
    if not plan.fits and not split_days:
        raise ConfirmationRequired(plan.refusal(), flag="--split-days")
    return QuotaGuard(target, plan)


def _quota_advice(target: Target, import_id: str, fallback: str) -> str:
    try:
        return stop_advice(target, import_id)
    except EstateFlowError:
        return fallback


def _metrics(
    number: int,
    batch: Batch,
    changes: list[int],
    on_conflict: str,
    batch_began: float,
    began: float,
    total: int,
) -> BatchMetrics:
    # changes follow _batch_statements: the guard, [capture, count] only for "update", the insert, the ledger.
    updated = changes[1] if on_conflict == "update" else 0
    written = changes[-2]
    now = time.perf_counter()
    return BatchMetrics(
        number=number,
        records=batch.records,
        inserted=written - updated,
        updated=updated,
        skipped=len(batch.rows) - written,
        rejected=len(batch.rejects),
        seconds=now - batch_began,
        done=batch.end,
        total=total,
        elapsed=now - began,
    )


def _finish(target: Target, import_id: str, status: str, seconds: float, rows_written: int, error: str | None) -> None:
    target.execute(
        [
            Sql(
                # A completed import has read every record: its checkpoint is the exact count,
                # where the scan of a big file only estimated it.
                "UPDATE ef_imports SET status = ?, finished_at = ?, seconds = ?, error = ?,"
                " rows_written = rows_written + ?,"
                " records_total = CASE WHEN ? = 'completed' THEN checkpoint ELSE records_total END"
                # A rollback by another command while the import ran has the last word.
                " WHERE id = ? AND status = 'running'",
                (status, _utc_now(), seconds, error, rows_written, status, import_id),
            )
        ]
    )


def _fill_from_ledger(result: ImportResult, target: Target, began: float) -> None:
    row = _ledger_row(target, result.import_id or "")
    result.status = row["status"]
    result.records_total = row["records_total"]
    result.error = row["error"]
    result.records_read = row["checkpoint"]
    result.inserted, result.updated = row["inserted"], row["updated"]
    result.skipped, result.rejected = row["skipped"], row["rejected"]
    result.batches = row["batches"]
    result.seconds = time.perf_counter() - began
    if row["rejects_bytes"]:
        result.rejects_path = row["rejects_path"]


def _dry_run(target: Target, source: SourceInfo, rung: str, batch_size: int, on_conflict: str) -> ImportResult:
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
    for batch in read_batches(source.path, start=0, batch_size=batch_size, import_id="", imported_at=_utc_now()):
        result.batches += 1
        result.records_read = batch.end
        result.rejected += len(batch.rejects)
        result.reject_reasons.update(reason.split(":")[0] for _, reason, _ in batch.rejects)
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
