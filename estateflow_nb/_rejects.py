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
