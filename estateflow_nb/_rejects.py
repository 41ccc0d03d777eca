"""The rejects file of an import: each rejected record's number, the reason and the original row."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from ._batches import Reject


class RejectsFile:
    """`<import id>.rejects.csv`, written batch by batch.

    The ledger records the file's length at each commit. A batch's rejects are written at that
    committed length, not appended: a batch sent again (smaller, after its request was too large, or
    by a resumed run) writes the same bytes at the same place, so no reject is ever written twice,
    even by two runs that overlap for a moment. A resumed import cuts the file back to it.
    """

    def __init__(self, path: Path, columns: tuple[str, ...], committed_bytes: int, *, first_record: int = 1) -> None:
        self.path = path
        self.columns = columns
        # An import of a range of its file counts its records from the range's start; the file names
        # each reject by its record number in the source file.
        self.before = first_record - 1
        size = path.stat().st_size if path.exists() else 0
        # A file shorter than the ledger says (deleted or cut by hand) goes on from what is there.
        self.size = min(committed_bytes, size)
        if size > self.size:
            with path.open("r+b") as f:
                f.truncate(self.size)

    def append(self, rejects: list[Reject]) -> int:
        """Write `rejects` after the committed length (none: nothing, not even the header) and return
        the length the file has with them; `commit` it once the batch is in."""
        if not rejects:
            return self.size
        text = io.StringIO(newline="")
        writer = csv.writer(text)
        if self.size == 0:
            writer.writerow(["record", "reason", *self.columns])
        for number, reason, raw in rejects:
            writer.writerow([number + self.before, reason, *(_cell(raw.get(c)) for c in self.columns)])
        # backslashreplace: a lone surrogate (JSON can spell one) is written as \ud800, never an error.
        data = text.getvalue().encode("utf-8", errors="backslashreplace")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("r+b" if self.path.exists() else "wb") as f:
            f.seek(self.size)
            f.write(data)
        return self.size + len(data)

    def commit(self, length: int) -> None:
        """The batch whose rejects end at `length` is in: the next one's go after them."""
        self.size = length


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


def moved_rejects(previous: dict[str, Any], rejects_dir: str | Path | None) -> Path:
    """The rejects file of a resumed import, in `rejects_dir` when the command names another folder: the
    committed part of the old file goes with it."""
    old = Path(previous["rejects_path"])
    if rejects_dir is None or Path(rejects_dir).resolve() == old.parent.resolve():
        return old
    new = (Path(rejects_dir) / old.name).resolve()
    new.parent.mkdir(parents=True, exist_ok=True)
    kept = old.read_bytes()[: previous["rejects_bytes"]] if old.exists() else b""
    new.write_bytes(kept)
    return new
