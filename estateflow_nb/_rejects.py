"""The rejects file of an import: each rejected record's number, the reason and the original row."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from ._batches import Reject


class RejectsFile:
    """`<import id>.rejects.csv`, appended per batch.

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

    def append(self, rejects: list[Reject]) -> int:
        """Write `rejects` (none: nothing, not even the header) and return the file's new length."""
        if rejects:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # backslashreplace: a lone surrogate (JSON can spell one) is written as \ud800, never an error.
            with self.path.open("a", encoding="utf-8", errors="backslashreplace", newline="") as f:
                writer = csv.writer(f)
                if f.tell() == 0:
                    writer.writerow(["record", "reason", *self.columns])
                for number, reason, raw in rejects:
                    writer.writerow([number, reason, *(_cell(raw.get(c)) for c in self.columns)])
                self.size = f.tell()
        return self.size


def _cell(value: Any) -> Any:
    """A raw value as the rejects file can always hold it: text and numbers as they are, a blob as hex,
    JSON structures as JSON (or a note, for one nested too deeply to write)."""
    if value is None:
        return ""
    if isinstance(value, str | int | float):
        return value
    if isinstance(value, bytes):
        return "X'" + value.hex() + "'"
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        return f"({type(value).__name__} that cannot be written as JSON)"
