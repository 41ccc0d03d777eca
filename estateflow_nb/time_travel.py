"""Returning a whole database to a Time Travel bookmark (Cloudflare D1), the way a rollback goes:
the plan, the confirmation, the restore, and the way back recorded.

    restore_bookmark(target, bookmark="00000085-0000024c-00004c6d-8e61...", yes=True)
    restore_bookmark(target, at="2026-11-28T10:40:00Z", dry_run=True)

D1 keeps every minute of the last 30 days (7 on the free plan) and restores to a bookmark in one
step, "a destructive operation" that "overwrites the database in place" and cancels queries in
flight. A timestamp is turned into its bookmark first (the nearest at or before it), so the plan names
the exact point. The restore asks like a rollback (`yes` or `confirm`) and refuses while an import is
marked running (its next batch would land in the restored database). D1 answers with
`previous_bookmark`, the state just before: restoring to it undoes the restore. It is printed, and
recorded in `ef_rollbacks` (strategy `time_travel`, the `bookmark` column being the way back), which
`estateflow status` shows.

A SQLite file has no history: its restores come from backup files (`backup.restore`).
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from . import _ledger
from ._confirm import Confirm, require_confirmation
from ._look import visible
from ._migrations import ensure_schema
from ._time import ledger_time, new_id, parse_time, utc_now
from .errors import EstateFlowError, NoDatabaseError
from .targets import Sql, Target

if TYPE_CHECKING:
    import pandas as pd

# D1's bookmarks are groups of hex digits joined by '-'; anything else is a typo, not worth a request.
_BOOKMARK = re.compile(r"[0-9A-Za-z]+(?:-[0-9A-Za-z]+)*")


@dataclass
class BookmarkRestoreResult:
    """What a Time Travel restore did, or (dry_run) would do."""

    target: str
    bookmark: str  # where the database goes
    at: str | None  # the timestamp asked for, when the bookmark came from one
    current_bookmark: str  # where it is when planned
    rows_before: int = 0
    imports_before: int = 0
    dry_run: bool = False
    restored_bookmark: str | None = None  # D1's bookmark of the state after the restore
    previous_bookmark: str | None = None  # the state before it: the way back
    rows: int | None = None
    imports: int | None = None
    record_id: str | None = None  # its row in ef_rollbacks
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def _repr_html_(self) -> str:
        from ._display import bookmark_html

        return bookmark_html(self)

    def to_frame(self) -> pd.DataFrame:
        """The restore as one row: the bookmarks, `at` as a UTC time, the counts before and after."""
        from ._frames import BOOKMARK_COLUMNS, one_row

        return one_row(self, BOOKMARK_COLUMNS)

    def __repr__(self) -> str:
        done = "dry run of a restore" if self.dry_run else "restored"
        return f"<BookmarkRestoreResult {done}: {visible(self.target)} to bookmark {visible(self.bookmark)}>"

    def plan(self) -> str:
        """Where the database goes, and what it holds now."""
        where = f"Time Travel bookmark {self.bookmark}" + (f" (the state at {self.at})" if self.at else "")
        return (
            f"{self.target} goes back to {where}, undoing everything written after it (it holds"
            f" {self.rows_before:,} rows and {self.imports_before:,} imports at bookmark {self.current_bookmark})"
        )

    def summary(self) -> str:
        if self.dry_run:
            return f"Dry run: {self.plan()}; nothing was changed."
        lines = [f"Restored in {self.seconds:.2f} s: {self.plan().replace(' it holds', ' it held')}."]
        if self.rows is not None:
            lines.append(f"  it now holds {self.rows:,} rows and {self.imports or 0:,} imports")
        back = f"estateflow restore --db {self.target} --bookmark {self.previous_bookmark}"
        lines.append(f"  to undo this restore: {back}")
        if self.record_id is None:
            lines.append("  (not recorded in ef_rollbacks: the restored database holds none of our tables)")
        return "\n".join(lines)


def restore_bookmark(
    target: Target,
    *,
    bookmark: str | None = None,
    at: str | datetime | None = None,
    dry_run: bool = False,
    yes: bool = False,
    confirm: Confirm | None = None,
) -> BookmarkRestoreResult:
    """Return the database to `bookmark`, or to the state at `at` (exactly one of them).

    Shows the plan and changes nothing with `dry_run=True`. Otherwise needs `yes=True` or a
    `confirm(question)` that answers True (ConfirmationRequired if neither), restores, brings the schema
    of the restored state up to date, and records the restore with its way back.
    """
    began = time.perf_counter()
    started_at = ledger_time()
    if (bookmark is None) == (at is None):
        raise EstateFlowError("give exactly one of a bookmark (--bookmark) or a time (--at) to restore to")
    current = target.bookmark()
    if current is None:
        raise EstateFlowError(
            f"{target.url} keeps no Time Travel history ({target.kind} database): restore a backup file instead"
        )
    moment = _moment(at) if at is not None else None
    chosen = bookmark if moment is None else target.bookmark(moment)
    if not chosen or not _BOOKMARK.fullmatch(chosen):
        raise EstateFlowError(f"{chosen!r} is not a Time Travel bookmark (they look like 00000085-0000024c-...)")
    result = BookmarkRestoreResult(
        target=target.url,
        bookmark=chosen,
        at=ledger_time(moment) if moment else None,
        current_bookmark=current,
        dry_run=dry_run,
    )
    ours = target.schema_version() is not None  # a database emptied by mistake can be restored too
    if ours:
        result.rows_before, result.imports_before = _counts(target)
    if dry_run:
        return result
    if ours:
        _ledger.refuse_while_importing(target, "restore")
    require_confirmation(
        f"Restore? {result.plan()}. Queries in flight are cancelled. Go ahead?",
        f"restoring {target.url} to bookmark {chosen} undoes everything written after it (--dry-run shows the plan)",
        yes=yes,
        confirm=confirm,
    )
    done = target.restore_to_bookmark(chosen)
    result.restored_bookmark, result.previous_bookmark = done.bookmark, done.previous_bookmark
    _record(target, result, started_at)
    result.seconds = time.perf_counter() - began
    return result


def _moment(at: str | datetime) -> datetime:
    try:
        moment = parse_time(at.isoformat() if isinstance(at, datetime) else at.strip())
    except (ValueError, OverflowError):
        raise EstateFlowError(f"{at!r} is not a time: use ISO 8601, e.g. 2026-11-28T10:40:00Z") from None
    if moment > utc_now():
        raise EstateFlowError(f"{ledger_time(moment)} is in the future: Time Travel only goes back")
    return moment


def _counts(target: Target) -> tuple[int, int]:
    rows = target.query("SELECT (SELECT COUNT(*) FROM professionals) AS n, (SELECT COUNT(*) FROM ef_imports) AS i")
    return int(rows[0]["n"]), int(rows[0]["i"])


def _record(target: Target, result: BookmarkRestoreResult, started_at: str) -> None:
    """After the restore: the restored state's schema brought up to date, its counts, and the restore
    recorded with its way back. A state from before our tables existed keeps no record."""
    try:
        ensure_schema(target, create=False)
    except NoDatabaseError:
        return
    result.rows, result.imports = _counts(target)
    result.record_id = new_id("tt")
    arguments = {"bookmark": result.bookmark, "at": result.at, "restored_bookmark": result.restored_bookmark}
    target.execute(
        [
            Sql(
                "INSERT INTO ef_rollbacks (id, strategy, arguments, bookmark, started_at, finished_at)"
                " VALUES (?, 'time_travel', ?, ?, ?, ?)",
                (result.record_id, json.dumps(arguments), result.previous_bookmark, started_at, ledger_time()),
            )
        ]
    )
