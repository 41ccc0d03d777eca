"""Rejected records as evidence: which imports rejected records, their share, where the rejects file
is, and the reasons most of them share.

The ledger counts every import's rejects and names its rejects file; the file itself holds each
rejected record with its reason. Reasons name the value that was refused ("email: 'a at b.com' is
not a valid address"); `reason_kind` drops that value so that reasons of one kind count together.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .targets import Target

# How many reasons a rejects file is summed up by, and how many of its records are read for it.
TOP_REASONS = 3
MAX_READ = 200_000
# The share of rejected records an import or rung may have before it fails (the CLI's default).
DEFAULT_MAX_REJECT_RATE = 0.01

# "column: <the value, as Python writes it> is ..." -> "column is ..." (a long value is shown as its first
# 50 characters, "..." and its length: see schema._shown)
_VALUE_REASON = re.compile(
    r"^(\w+): (?:.{50}\.\.\. \([\d,]+ characters\)|'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|\S+) (is .+)$", re.S
)


def reason_kind(reason: str) -> str:
    """A reject's reason without the value it names: what the reasons of one kind share."""
    match = _VALUE_REASON.match(reason)
    return f"{match.group(1)} {match.group(2)}" if match else reason


@dataclass
class RejectedImport:
    """An import that rejected records: how many of how many it read, and why (from its rejects file)."""

    import_id: str
    source_path: str
    rejected: int
    records: int  # records read (written, skipped or rejected)
    rejects_path: str | None
    reasons: list[tuple[str, int]] = field(default_factory=list)
    # Why the reasons could not be read from the rejects file (moved, on another machine), if so.
    unreadable: str | None = None

    @property
    def share(self) -> float:
        return self.rejected / self.records if self.records else 0.0

    def over(self, limit: float) -> bool:
        return self.share > limit

    def to_dict(self) -> dict[str, Any]:
        return {
            "import_id": self.import_id,
            "source_path": self.source_path,
            "rejected": self.rejected,
            "records": self.records,
            "share": round(self.share, 6),
            "rejects_path": self.rejects_path,
            "reasons": [{"reason": r, "count": n} for r, n in self.reasons],
            "unreadable": self.unreadable,
        }


def top_reasons(path: str | Path | None, top: int = TOP_REASONS) -> tuple[list[tuple[str, int]], str | None]:
    """The `top` reason kinds of a rejects file with their counts, or why the file could not be read."""
    if not path:
        return [], "no rejects file recorded"
    kinds = Counter[str]()
    try:
        with Path(path).open(encoding="utf-8", errors="replace", newline="") as f:
            reader = csv.DictReader(f)
            for number, row in enumerate(reader):
                if number >= MAX_READ:
                    break
                kinds[reason_kind(str(row.get("reason") or "(no reason)"))] += 1
    except (OSError, csv.Error) as error:
        return [], f"cannot read the rejects file: {getattr(error, 'strerror', None) or error}"
    return kinds.most_common(top), None


def locate(rejects_path: str | None, source_path: str) -> str | None:
    """Where a rejects file is, as an absolute path where it can be found: the ledger may hold it
    relative to the folder the import ran in, which is most often the source file's own."""
    if not rejects_path:
        return None
    path = Path(rejects_path)
    if path.is_absolute():
        return str(path)
    for candidate in (path, Path(source_path).parent / path, Path(source_path).parent / path.name):
        if candidate.is_file():
            return str(candidate.resolve())
    return rejects_path


def rejected_import(
    import_id: str, source_path: str, rejected: int, records: int, rejects_path: str | None
) -> RejectedImport:
    where = locate(rejects_path, source_path)
    reasons, unreadable = top_reasons(where)
    return RejectedImport(import_id, source_path, rejected, records, where, reasons, unreadable)


def imports_with_rejects(target: Target, limit: int = 50) -> list[RejectedImport]:
    """The newest `limit` imports that are not rolled back and rejected records, newest first."""
    rows = target.query(
        "SELECT id, source_path, rejected, checkpoint, rejects_path FROM ef_imports"
        " WHERE rejected > 0 AND status != 'rolled_back' ORDER BY started_at DESC, rowid DESC LIMIT ?",
        (limit,),
    )
    return [
        rejected_import(r["id"], r["source_path"], int(r["rejected"]), int(r["checkpoint"]), r["rejects_path"])
        for r in rows
    ]
