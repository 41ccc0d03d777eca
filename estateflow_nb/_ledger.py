"""The import ledger, `ef_imports`: one row per import, and the statements that keep it true.

Nothing here assumes that a list of statements is one transaction: Cloudflare does not promise it for
a D1 batch sent over REST, which may be applied whole, in part (a prefix of its statements) or, when
its answer was lost and it is sent again, twice. So every statement of a batch is safe to run again,
and the ledger's counts are derived from the rows themselves, never added up from what the target
said it changed:

- rows are written idempotently on `license_number`: a row this import already wrote is left alone;
- `settle` counts what landed: `inserted` grows by this import's rows above `row_mark` (the highest
  row id it has counted; new rows always get higher ids), `updated` by the before-images it kept
  above `image_mark` (likewise). It runs at the end of every batch, and wherever an import stops,
  and adds nothing when nothing new landed;
- `checkpoint` moves the import past the batch's records once, whatever the number of attempts;
- every request starts with the run's guard (see _claims.py), and each packed INSERT is followed by
  it, so rows land only while the import exists, is `running` and is held by this run.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from . import _claims
from ._batches import Batch
from ._time import ledger_time
from .errors import ConfirmationRequired, EstateFlowError, SourceChangedError
from .schema import STORED_COLUMNS, ImportStatus, OnConflict
from .sources import SourceInfo, Span
from .targets import ExecuteResult, InsertRows, Sql, Statement, Target

_UPDATABLE = [c for c in STORED_COLUMNS if c != "license_number"]
CONFLICT_TAILS: dict[OnConflict, str] = {
    "skip": "ON CONFLICT(license_number) DO NOTHING",
    # Rows this same import already wrote (a license twice in one file, or a batch sent again) are
    # left alone.
    "update": "ON CONFLICT(license_number) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _UPDATABLE)
    + " WHERE professionals.import_id IS NOT excluded.import_id",
    # A row of another import (or of none) stops the batch: setting its license to NULL breaks the
    # NOT NULL constraint, which the targets report as a license conflict. A row this import already
    # wrote is left alone, so a batch sent again after a lost answer does not blame itself.
    "fail": "ON CONFLICT(license_number) DO UPDATE SET license_number = NULL"
    " WHERE professionals.import_id IS NOT excluded.import_id",
}
# What an "update" import is about to overwrite, kept so that rolling it back can put it back.
_CAPTURE_BEFORE_IMAGES = (
    "INSERT OR IGNORE INTO ef_before_images (by_import, id, {cols}) "
    "SELECT ?, id, {cols} FROM professionals "
    "WHERE license_number IN (SELECT value FROM json_each(?)) AND import_id IS NOT ?"
).format(cols=", ".join(STORED_COLUMNS))
_RUNNING = "status = 'running'"


def start(
    import_id: str,
    source: SourceInfo,
    target_url: str,
    *,
    rung: str,
    on_conflict: OnConflict,
    batch_size: int,
    rejects_path: str,
    started_at: str,
    claim: str,
    span: Span | None = None,
) -> Sql:
    """The ledger row of a new import (of the range `span` of its file, if given), held by the run
    that holds `claim`."""
    return Sql(
        "INSERT INTO ef_imports (id, source_path, source_sha256, target, rung, on_conflict,"
        " batch_size, status, records_total, rejects_path, started_at, claim, claim_owner, heartbeat_at,"
        " first_record, last_record, start_offset)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, 'running', ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            import_id,
            str(source.path.resolve()),
            source.sha256,
            target_url,
            rung,
            on_conflict,
            batch_size,
            source.records,
            rejects_path,
            started_at,
            claim,
            _claims.owner(),
            started_at,
            *((None, None, None) if span is None else (span.first, span.last, span.offset)),
        ),
    )


def take_over(import_id: str, seen_claim: str | None, claim: str, *, batch_size: int, rejects_path: str) -> Sql:
    """An unfinished import runs again, held by `claim`, if nobody took it since it was read (its claim
    is still `seen_claim`). A resume may change how the import goes on (batch size, rejects folder)."""
    return Sql(
        "UPDATE ef_imports SET status = 'running', error = NULL, claim = ?, claim_owner = ?, heartbeat_at = ?,"
        " batch_size = ?, rejects_path = ? WHERE id = ? AND status IN ('running', 'failed') AND claim IS ?",
        (claim, _claims.owner(), ledger_time(), batch_size, rejects_path, import_id, seen_claim),
    )


def unfinished(target: Target, source: SourceInfo, span: Span | None = None) -> dict[str, Any] | None:
    """The newest import of this file (of the range that starts where `span` does; None: of the whole
    file) that neither completed nor was rolled back, if any."""
    rows = target.query(
        "SELECT * FROM ef_imports WHERE source_path = ? AND status IN ('running', 'failed') AND first_record IS ?"
        " ORDER BY started_at DESC, rowid DESC LIMIT 1",
        (str(source.path.resolve()), None if span is None else span.first),
    )
    return rows[0] if rows else None


def resumable(previous: dict[str, Any], source: SourceInfo, asked: OnConflict | None) -> OnConflict:
    """Check that the unfinished import `previous` may be resumed by a command that asks for `asked`
    (None: nothing said); the on_conflict it goes on with, as its first run recorded it."""
    if previous["source_sha256"] != source.sha256:
        raise SourceChangedError(
            f"{source.path} changed since import {previous['id']} stopped at record"
            f" {previous['checkpoint']:,} (SHA-256 differs); not resuming into it. Roll that import back"
            " or run with --no-resume to start a new one."
        )
    recorded: OnConflict = previous["on_conflict"]
    if asked is not None and asked != recorded:
        raise ConfirmationRequired(
            f"import {previous['id']} of {source.path} stopped at record {previous['checkpoint']:,} and was"
            f" started with --on-conflict {recorded}; this command says --on-conflict {asked}."
            f" Run it with --on-conflict {recorded} (or without --on-conflict) to resume it, or with --no-resume"
            " to start a new import",
            flag="--no-resume",
        )
    if is_live(previous):
        raise already_running(previous)
    return recorded


_ROW = "SELECT * FROM ef_imports WHERE id = ?"


def read_back(import_id: str) -> Sql:
    """The import's ledger row, read as the last statement of a request that writes it: the answer
    brings the row back, one request fewer on D1 than reading it after."""
    return Sql(_ROW, (import_id,))


def row(target: Target, import_id: str, answer: ExecuteResult | None = None) -> dict[str, Any] | None:
    """The import's ledger row: from `answer`, the result of a request that ended with `read_back`, where
    the target returned it; else read now. None when the row is gone."""
    rows = None if answer is None else answer.returned(-1)
    if rows is None:
        rows = target.query(_ROW, (import_id,))
    return rows[0] if rows else None


def is_live(ledger_row: dict[str, Any]) -> bool:
    """Whether the import is running now, in a run that is still alive."""
    return ledger_row["status"] == "running" and not _claims.is_stale(
        ledger_row.get("claim"), ledger_row.get("claim_owner"), ledger_row.get("heartbeat_at")
    )


def already_running(ledger_row: dict[str, Any]) -> EstateFlowError:
    holder = _claims.describe(ledger_row.get("claim_owner"), ledger_row.get("heartbeat_at"))
    return EstateFlowError(
        f"import {ledger_row['id']} of {ledger_row['source_path']} is already running ({holder}); let it finish"
        f" or stop it first. If that process is gone on another machine, it can be resumed after"
        f" {_claims.free_after(ledger_row.get('heartbeat_at'))}"
    )


def running_imports(target: Target) -> list[dict[str, Any]]:
    """The imports that are running now in a live process (a killed one's row may still say `running`)."""
    return [r for r in target.query("SELECT * FROM ef_imports WHERE status = 'running'") if is_live(r)]


def refuse_while_importing(target: Target, action: str) -> None:
    """Raise (naming the import and its process) if an import is running: `action` would pull the rows
    from under it. For reset and restore, which replace what a running import writes into."""
    running = running_imports(target)
    if running:
        first = running[0]
        holder = _claims.describe(first.get("claim_owner"), first.get("heartbeat_at"))
        raise EstateFlowError(
            f"{action} refused: import {first['id']} of {first['source_path']} is running ({holder});"
            " let it finish or stop it (Ctrl-C), then run this again"
        )


def guard(import_id: str, claim: str) -> Sql:
    """Fails unless the import exists, is running and is held by `claim` (see _claims.guard)."""
    return _claims.guard("ef_imports", "source_path", import_id, claim, _RUNNING)


def ownership(target: Target, import_id: str, claim: str) -> str | None:
    """Why this run may no longer write into the import, or None if it still may."""
    found = row(target, import_id)
    if found is None:
        return "its ledger row is gone: another command reset or restored the database while it ran"
    if found["status"] == "rolled_back":
        return "another command rolled this import back while it ran"
    if found["claim"] != claim:
        holder = _claims.describe(found.get("claim_owner"), found.get("heartbeat_at"))
        return f"another run took this import over ({holder})"
    return None


def settle(import_id: str, on_conflict: OnConflict) -> Sql:
    """Bring `inserted`, `updated` and `skipped` up to date with the rows (see the module's docstring).

    Runs any number of times: what it counted once is below the marks it moved. In update mode, a row
    above the mark that this import overwrote rather than inserted (another import's, inserted
    meanwhile) has a before-image and is not counted as inserted.
    """
    fresh = "COUNT(*)"
    if on_conflict == "update":
        fresh = (
            "COALESCE(SUM(NOT EXISTS (SELECT 1 FROM ef_before_images AS b WHERE b.by_import = p.import_id"
            " AND b.license_number = p.license_number)), 0)"
        )
    return Sql(
        "UPDATE ef_imports SET inserted = inserted + n.fresh, row_mark = MAX(row_mark, n.top),"
        " updated = updated + u.kept, image_mark = MAX(image_mark, u.top),"
        " skipped = MAX(0, checkpoint - rejected - inserted - n.fresh - updated - u.kept)"
        f" FROM (SELECT {fresh} AS fresh, COALESCE(MAX(p.id), 0) AS top FROM professionals AS p"
        " WHERE p.import_id = ? AND p.id > (SELECT row_mark FROM ef_imports WHERE id = ?)) AS n,"
        " (SELECT COUNT(*) AS kept, COALESCE(MAX(rowid), 0) AS top FROM ef_before_images"
        " WHERE by_import = ? AND rowid > (SELECT image_mark FROM ef_imports WHERE id = ?)) AS u"
        # Once rolled back, an import's counts are the rollback's to keep.
        " WHERE ef_imports.id = ? AND ef_imports.status IN ('running', 'failed')",
        (import_id, import_id, import_id, import_id, import_id),
    )


@dataclass(frozen=True)
class BatchWrite:
    """The statements that write one batch, in order, and which of them say what the batch did."""

    statements: list[Statement]
    insert_at: int  # the rows' insert: its change count is every row written, new or overwritten
    capture_at: int | None  # on_conflict "update": the before-image capture, one change per row overwritten

    def counts(self, changes: Sequence[int]) -> tuple[int, int]:
        """(inserted, updated) rows by this attempt, from each statement's own change count, for the
        batch's progress line. (The ledger's counts come from the rows: see `settle`.)"""
        updated = 0 if self.capture_at is None else changes[self.capture_at]
        return max(0, changes[self.insert_at] - updated), updated


@dataclass(frozen=True)
class Totals:
    """The ledger's running totals once a batch is in."""

    rejected: int  # records rejected so far, this batch included
    rejects_bytes: int  # the rejects file's length once this batch's rejects are in it
    seconds: float  # of the whole import so far, resumed runs included
    # What the target reported written by the batch before this one: each batch brings the previous
    # one's figure into the ledger, and the finish the last one's.
    rows_written: int


def batch_write(import_id: str, claim: str, batch: Batch, on_conflict: OnConflict, totals: Totals) -> BatchWrite:
    """One batch, the settling of the counts and its checkpoint; each statement safe to run again."""
    held = guard(import_id, claim)
    statements: list[Statement] = [held]
    capture_at = None
    if on_conflict == "update":
        capture_at = len(statements)
        statements.append(Sql(_CAPTURE_BEFORE_IMAGES, (import_id, json.dumps(batch.licenses), import_id)))
    insert_at = len(statements)
    statements.append(
        InsertRows(
            "professionals",
            STORED_COLUMNS,
            batch.rows,
            tail=CONFLICT_TAILS[on_conflict],
            then=held,
            rendered=batch.rendered,
        )
    )
    statements += [settle(import_id, on_conflict), _checkpoint(import_id, claim, batch.end, totals)]
    return BatchWrite(statements, insert_at, capture_at)


class AtBinding(Sequence[Any]):
    """Parameters made when the target binds them, not before: the checkpoint of a streamed group of
    batches (its end, its rejects) is known only once its rows, read while they are written, are in."""

    def __init__(self, make: Callable[[], Sequence[Any]]) -> None:
        self._make = make
        self._values: Sequence[Any] | None = None

    def _bound(self) -> Sequence[Any]:
        if self._values is None:
            self._values = self._make()
        return self._values

    def __getitem__(self, index: Any) -> Any:
        return self._bound()[index]

    def __len__(self) -> int:
        return len(self._bound())


def stream_write(
    import_id: str,
    claim: str,
    rows: Iterable[tuple[Any, ...]],
    on_conflict: OnConflict,
    done: Callable[[], tuple[int, Totals]],
) -> BatchWrite:
    """`batch_write` for rows that stream in while they are written (several of the reader's batches
    in one transaction, on a target without a per-request limit): `done()` gives the checkpoint and the
    totals once they are all in. Not for on_conflict "update", whose before-images need each batch's
    licenses ahead of its rows."""
    assert on_conflict != "update", "update captures before-images batch by batch"
    held = guard(import_id, claim)

    def checkpoint() -> Sequence[Any]:
        return _checkpoint(import_id, claim, *done()).params

    statements: list[Statement] = [
        held,
        InsertRows("professionals", STORED_COLUMNS, rows, tail=CONFLICT_TAILS[on_conflict], then=held),  # type: ignore[arg-type]
        settle(import_id, on_conflict),
        Sql(_CHECKPOINT, AtBinding(checkpoint)),
    ]
    return BatchWrite(statements, 1, None)


_CHECKPOINT = (
    "UPDATE ef_imports SET checkpoint = ?, rejected = ?, rejects_bytes = ?, batches = batches + 1,"
    " skipped = MAX(0, ? - ? - inserted - updated), seconds = ?, rows_written = rows_written + ?, heartbeat_at = ?"
    " WHERE id = ? AND claim = ? AND checkpoint < ?"
)


def _checkpoint(import_id: str, claim: str, end: int, totals: Totals) -> Sql:
    # Only the first attempt that gets here moves the import on: a batch sent again after its answer
    # was lost finds its own checkpoint already there.
    return Sql(
        _CHECKPOINT,
        (
            end,
            totals.rejected,
            totals.rejects_bytes,
            end,
            totals.rejected,
            totals.seconds,
            totals.rows_written,
            ledger_time(),
            import_id,
            claim,
            end,
        ),
    )


def range_end(import_id: str, claim: str, end_offset: int | None) -> Sql:
    """The end of a range import that read all its records: its last record (a range that ran to the
    end of the file learns it now) and the byte offset after it, where the next range starts."""
    return Sql(
        "UPDATE ef_imports SET last_record = first_record + checkpoint - 1, end_offset = ? WHERE id = ? AND claim = ?",
        (end_offset, import_id, claim),
    )


def finish(
    import_id: str,
    claim: str,
    on_conflict: OnConflict,
    status: ImportStatus,
    seconds: float,
    rows_written: int,
    error: str | None,
) -> list[Sql]:
    """The end of a run: the counts settled, then completed, or failed with the reason (resumable)."""
    return [
        settle(import_id, on_conflict),
        Sql(
            # A completed import has read every record: its checkpoint is the exact count, where the
            # scan of a big file only estimated it.
            "UPDATE ef_imports SET status = ?, finished_at = ?, seconds = ?, error = ?,"
            " rows_written = rows_written + ?, claim = NULL, heartbeat_at = ?,"
            " records_total = CASE WHEN ? = 'completed' THEN checkpoint ELSE records_total END"
            # A rollback by another command, or another run that took the import over, has the last word.
            " WHERE id = ? AND status = 'running' AND claim = ?",
            (status, ledger_time(), seconds, error, rows_written, ledger_time(), status, import_id, claim),
        ),
    ]


def settle_unfinished(target: Target) -> list[Sql]:
    """`settle` for every import that is not finished, as a rollback's first statements: rows that a
    stopped import's last batch landed without counting them are counted before anything is undone."""
    rows = target.query("SELECT id, on_conflict FROM ef_imports WHERE status IN ('running', 'failed')")
    return [settle(r["id"], r["on_conflict"]) for r in rows]
