"""A dry run: validate every record of a file (or of a range of it) and ask the target which license
numbers it already has, to predict what an import would do; nothing is written."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

from ._batches import read_file_batches
from ._time import ledger_time
from .schema import OnConflict
from .sources import SourceInfo, Span
from .targets import Target

if TYPE_CHECKING:
    from .importer import ImportResult


def predict(
    target: Target, source: SourceInfo, span: Span | None, result: ImportResult, on_conflict: OnConflict
) -> ImportResult:
    """Fill the dry run's `result` (its batch size set) with what importing `source` (`span` of it) would do."""
    began = time.perf_counter()
    seen: set[str] = set()
    taken = 0  # already in the table: what --on-conflict fail stops at (a license twice in the file is skipped)
    for batch in read_file_batches(
        source.path, span, child=False, start=0, batch_size=result.batch_size, import_id="", imported_at=ledger_time()
    ):
        result.end_offset = batch.offset
        result.batches += 1
        result.records_read = batch.end
        result.rejected += len(batch.rejects)
        result.reject_reasons.update(batch.reasons())
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
                taken += 1
                if on_conflict == "update":
                    result.updated += 1
                else:
                    result.skipped += 1
            else:
                result.inserted += 1
            seen.add(license_number)
    result.seconds = time.perf_counter() - began
    if on_conflict == "fail" and taken:
        result.error = f"{taken:,} license numbers are already taken: on_conflict='fail' would stop"
    return result
