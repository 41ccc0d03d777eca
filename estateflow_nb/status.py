"""What a database holds: table counts, the import ledger, its size, and the newest backup."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._look import visible
from ._sql import quote_name
from .backup import newest_backup
from .targets import Target

if TYPE_CHECKING:
    import pandas as pd

TABLES = ("professionals", "ef_imports", "ef_before_images", "ef_rollbacks")


@dataclass
class StatusReport:
    target: str
    tables: dict[str, int]
    imports: list[dict[str, Any]]  # newest first
    by_status: dict[str, int]
    size_bytes: int | None
    newest_backup: dict[str, Any] | None = None  # path, taken_at, size_bytes
    # D1: the Time Travel bookmark taken before the newest rollback (id, bookmark, started_at).
    bookmark: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "tables": self.tables,
            "imports": self.imports,
            "by_status": self.by_status,
            "size_bytes": self.size_bytes,
            "newest_backup": self.newest_backup,
            "bookmark": self.bookmark,
            **self.extra,
        }

    def _repr_html_(self) -> str:
        from ._display import status_html

        return status_html(self)

    def to_frame(self) -> pd.DataFrame:
        """The ledger's imports shown (the newest first): id, source_path, status, counts, seconds, and
        started_at, finished_at, rolled_back_at as UTC times."""
        from ._frames import LEDGER_COLUMNS, typed

        return typed(self.imports, LEDGER_COLUMNS)

    def __repr__(self) -> str:
        imports = ", ".join(f"{n:,} {s}" for s, n in self.by_status.items()) or "none"
        rows = self.tables.get("professionals", 0)
        return f"<StatusReport {visible(self.target)}: {rows:,} professionals; imports: {visible(imports)}>"

    def table(self) -> str:
        size = "unknown" if self.size_bytes is None else f"{self.size_bytes / 1e6:,.1f} MB"
        lines = [f"Database {self.target} ({size})", ""]
        lines += [f"  {name:<18} {count:>10,} rows" for name, count in self.tables.items()]
        totals = ", ".join(f"{n} {s}" for s, n in self.by_status.items()) or "none"
        lines += ["", f"Imports: {totals}"]
        if self.imports:
            lines.append(f"  {'id':<30} {'started':<20} {'status':<11} {'rows':>9}  source")
            for row in self.imports:
                lines.append(
                    f"  {row['id']:<30} {row['started_at']:<20} {row['status']:<11}"
                    f" {row['inserted'] - row['removed']:>9,}  {row['source_path']}"
                )
        newest = self.newest_backup
        lines += [
            "",
            "Newest backup: none"
            if newest is None
            else f"Newest backup: {newest['path']} ({newest['taken_at']}, {newest['size_bytes'] / 1e6:,.1f} MB)",
        ]
        if self.bookmark:
            lines.append(
                f"Time Travel bookmark before rollback {self.bookmark['id']} ({self.bookmark['started_at']}):"
                f" {self.bookmark['bookmark']}"
            )
        return "\n".join(lines)


def status(target: Target, *, limit: int = 20, backups_dir: str | Path | None = None) -> StatusReport:
    """Counts of every table, the newest `limit` imports, the totals by status and the newest backup of
    this database in `backups_dir` (default: $ESTATEFLOW_BACKUPS or ./backups)."""
    tables = {name: int(target.scalar(f"SELECT COUNT(*) FROM {quote_name(name)}") or 0) for name in TABLES}
    imports = target.query(
        "SELECT id, source_path, status, rung, records_total, checkpoint, inserted, updated, skipped, rejected,"
        " removed, batches, seconds, started_at, finished_at, rolled_back_at, error"
        " FROM ef_imports ORDER BY started_at DESC, rowid DESC LIMIT ?",
        (limit,),
    )
    by_status = {
        row["status"]: int(row["n"])
        for row in target.query("SELECT status, COUNT(*) AS n FROM ef_imports GROUP BY status ORDER BY status")
    }
    newest = newest_backup(db=target, backups_dir=backups_dir)
    backup = None if newest is None else {k: getattr(newest, k) for k in ("path", "taken_at", "size_bytes")}
    bookmarks = target.query(
        "SELECT id, bookmark, started_at FROM ef_rollbacks WHERE bookmark IS NOT NULL"
        " ORDER BY started_at DESC, rowid DESC LIMIT 1"
    )
    return StatusReport(
        target.url, tables, imports, by_status, target.size_bytes(), backup, bookmarks[0] if bookmarks else None
    )
