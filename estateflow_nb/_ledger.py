"""The import ledger, `ef_imports`: one row per import, and the statements that keep it true.

A batch commits together with the ledger counters that describe it and its checkpoint (the number of
source records handled), so the ledger is the only truth about an import's progress. Counts are taken
from the rows the statements really changed (`CHANGES`), never from what was sent: a batch applied
twice, or in part, still counts right.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ._batches import Batch
from ._time import ledger_time
from .schema import STORED_COLUMNS, ImportStatus, OnConflict
from .sources import SourceInfo
from .targets import CHANGES, InsertRows, Sql, Target

_UPDATABLE = [c for c in STORED_COLUMNS if c != "license_number"]
CONFLICT_TAILS: dict[OnConflict, str] = {
    "skip": "ON CONFLICT(license_number) DO NOTHING",
    # Rows this same import already wrote (a license twice in one file) are left alone.
    "update": "ON CONFLICT(license_number) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _UPDATABLE)
    + " WHERE professionals.import_id IS NOT excluded.import_id",
    "fail": "",
}
# What an "update" import is about to overwrite, kept so that rolling it back can put it back.
_CAPTURE_BEFORE_IMAGES = (
    "INSERT OR IGNORE INTO ef_before_images (by_import, id, {cols}) "
    "SELECT ?, id, {cols} FROM professionals "
    "WHERE license_number IN (SELECT value FROM json_each(?)) AND import_id IS NOT ?"
).format(cols=", ".join(STORED_COLUMNS))


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
) -> Sql:
    """The ledger row of a new import."""
    return Sql(
        "INSERT INTO ef_imports (id, source_path, source_sha256, target, rung, on_conflict,"
        " batch_size, status, records_total, rejects_path, started_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, 'running', ?, ?, ?)",
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
        ),
    )


def restart(import_id: str) -> Sql:
    """An unfinished import runs again."""
    return Sql("UPDATE ef_imports SET status = 'running', error = NULL WHERE id = ?", (import_id,))


def unfinished(target: Target, source: SourceInfo) -> dict[str, Any] | None:
    """The newest import of this file that neither completed nor was rolled back, if any."""
    rows = target.query(
        "SELECT * FROM ef_imports WHERE source_path = ? AND status IN ('running', 'failed')"
        " ORDER BY started_at DESC, rowid DESC LIMIT 1",
        (str(source.path.resolve()),),
    )
    return rows[0] if rows else None


def row(target: Target, import_id: str) -> dict[str, Any]:
    return target.query("SELECT * FROM ef_imports WHERE id = ?", (import_id,))[0]


def _still_running(import_id: str) -> Sql:
    # A batch may only land under an import that is still running. If another command rolled the
    # import back meanwhile, this breaks the NOT NULL on batch_size, and the whole batch fails with it.
    return Sql("UPDATE ef_imports SET batch_size = NULL WHERE id = ? AND status != 'running'", (import_id,))


def rolled_back_meanwhile(error: BaseException) -> bool:
    """Whether a batch failed because another command rolled its import back (see `_still_running`)."""
    return "ef_imports.batch_size" in str(error)


@dataclass(frozen=True)
class BatchWrite:
    """The statements that write one batch, in order, and which of them say what the batch did."""

    statements: list[Sql | InsertRows]
    insert_at: int  # the rows' insert: its change count is every row written, new or overwritten
    capture_at: int | None  # on_conflict "update": the before-image capture, one change per row overwritten

    def counts(self, changes: Sequence[int]) -> tuple[int, int]:
        """(inserted, updated) rows, from the change count of each statement as the target reports them."""
        updated = 0 if self.capture_at is None else changes[self.capture_at]
        return changes[self.insert_at] - updated, updated


@dataclass(frozen=True)
class Totals:
    """The ledger's running totals once a batch is in."""

    rejected: int  # records rejected so far, this batch included
    rejects_bytes: int  # the rejects file's length once this batch's rejects are in it
    seconds: float  # of the whole import so far, resumed runs included
    # What the target reported written by the batch before this one: each batch brings the previous
    # one's figure into the ledger, and the finish the last one's.
    rows_written: int


def batch_write(import_id: str, batch: Batch, on_conflict: OnConflict, totals: Totals) -> BatchWrite:
    """One batch, the ledger counters that describe it and its checkpoint, for one transaction."""
    statements: list[Sql | InsertRows] = [_still_running(import_id)]
    capture_at = None
    if on_conflict == "update":
        capture_at = len(statements)
        statements += [
            Sql(_CAPTURE_BEFORE_IMAGES, (import_id, json.dumps(batch.licenses), import_id)),
            Sql(
                "UPDATE ef_imports SET updated = updated + ?, inserted = inserted - ? WHERE id = ?",
                (CHANGES, CHANGES, import_id),
            ),
        ]
    insert_at = len(statements)
    statements.append(
        InsertRows(
            "professionals",
            STORED_COLUMNS,
            batch.rows,
            tail=CONFLICT_TAILS[on_conflict],
            then=Sql("UPDATE ef_imports SET inserted = inserted + ? WHERE id = ?", (CHANGES, import_id)),
        )
    )
    statements.append(_checkpoint(import_id, batch.end, totals))
    return BatchWrite(statements, insert_at, capture_at)


def _checkpoint(import_id: str, end: int, totals: Totals) -> Sql:
    return Sql(
        "UPDATE ef_imports SET checkpoint = ?, rejected = ?, rejects_bytes = ?, batches = batches + 1,"
        " skipped = ? - ? - inserted - updated, seconds = ?, rows_written = rows_written + ?"
        # A batch replayed after an unknown outcome (D1: applied, answer lost) finds its own
        # checkpoint already there and leaves the counters alone; its rows were skipped as duplicates.
        " WHERE id = ? AND checkpoint < ?",
        (
            end,
            totals.rejected,
            totals.rejects_bytes,
            end,
            totals.rejected,
            totals.seconds,
            totals.rows_written,
            import_id,
            end,
        ),
    )


def finish(import_id: str, status: ImportStatus, seconds: float, rows_written: int, error: str | None) -> Sql:
    """The end of a run: completed, or failed with the reason (resumable)."""
    return Sql(
        # A completed import has read every record: its checkpoint is the exact count, where the
        # scan of a big file only estimated it.
        "UPDATE ef_imports SET status = ?, finished_at = ?, seconds = ?, error = ?,"
        " rows_written = rows_written + ?,"
        " records_total = CASE WHEN ? = 'completed' THEN checkpoint ELSE records_total END"
        # A rollback by another command while the import ran has the last word.
        " WHERE id = ? AND status = 'running'",
        (status, ledger_time(), seconds, error, rows_written, status, import_id),
    )
