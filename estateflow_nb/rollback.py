"""Rollback: undo imports exactly, by import, by time window, by industry, or reset to the bare schema.

`rollback(target, import_id=...)` (or `last_hours=`, `since=`/`until=`, `industry=`, `reset=True`)
works out what it would change, asks (`yes=True`, or a `confirm` callback), backs the whole database
up, and then makes every change in ONE `target.execute` call, so it happens completely or not at all
on SQLite and D1 alike. Selection is by the `ef_imports` ledger and the `import_id` of the rows,
never by business timestamps such as `created_at`. Every statement binds a handful of parameters
(lists travel as one JSON text through `json_each`), which keeps within D1's limits.

The rule for rows that several imports wrote (before-images)
------------------------------------------------------------
Each import that writes a row makes one *write* of it. A row's writes form a chain: the row in
`professionals` is the latest (its `import_id` says whose), and `ef_before_images` keeps each earlier
one, keyed by the import that overwrote it (`by_import`). The oldest write is the row's *inserter*:
the ledger counts the row in that import's `inserted`.

A rollback undoes a set of writes: those of the selected imports, or, for `industry`, every write
by an import of a record in that industry. Each row it touches then shows its latest write that is
not undone, and disappears when none is left. With A inserting a row, B updating it, C updating it:

- undo B alone: the row keeps C's values, and C's before-image becomes A's values, so undoing C
  later gives A's values back, never B's;
- undo C: the row gets B's values back (C's before-image);
- undo A while B's update stands: B's values stay and B becomes the inserter (A.removed + 1,
  B.inserted + 1, B.updated - 1), so undoing B later deletes the row;
- undo A, B and C, in any order or all at once: the row is gone.

So the table after undoing a set of imports does not depend on the order or grouping of the
rollbacks, `COUNT(*) FROM professionals == SUM(inserted - removed) FROM ef_imports` holds after
each one (what verify's first check tests), a rolled-back import has `inserted == removed`, and no
before-image mentions a rolled-back import. Before-images are kept rather than the rollback
refusing: the importer captures them in the same transaction as the batch, at little cost, and the
alternative, restoring a backup, would also throw away every later import.

Records an import *skipped* (their license number was already present) were never written by it:
undoing the import that holds such a row removes the row; run the later import again to load its
version.

For `industry`, an import all of whose writes were undone becomes `rolled_back`; one that keeps
other rows stays as it was, with `removed` counting what it lost. `reset` empties every table and
keeps only its own row in `ef_rollbacks` (which names the backup of what was there).

`ESTATEFLOW_TEST_KILL_AT=rollback:before` (inside the transaction, before its commit) or
`rollback:after` (right after the commit) kills the process there: for tests only.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from .backup import backup as take_backup
from .errors import ConfirmationRequired, EstateFlowError
from .importer import KILL_HOOK_ENV
from .schema import INDUSTRIES, STORED_COLUMNS, TIMESTAMP_FORMAT
from .targets import Sql, Target

_IN_JSON = "IN (SELECT value FROM json_each(?))"
_LIVE_IMPORTS = "SELECT id FROM ef_imports WHERE status != 'rolled_back'"
_IMPORT_COLUMNS = "id, source_path, started_at, status, inserted, updated, removed"
_RESTORE_FROM_IMAGE = ", ".join(f"{c} = i.{c}" for c in STORED_COLUMNS if c != "license_number")


@dataclass(frozen=True)
class _Selection:
    """What one rollback undoes: the writes of `import_ids`, or of `industry`, or everything."""

    strategy: str
    arguments: dict[str, Any]
    description: str
    import_ids: list[str] = field(default_factory=list)
    industry: str | None = None

    @property
    def by_imports(self) -> bool:
        return self.strategy in ("last", "date", "import")


@dataclass
class RollbackResult:
    """What a rollback did, or (status "dry_run") would do, or that there was nothing to do."""

    strategy: str
    arguments: dict[str, Any]
    description: str
    status: str  # "rolled_back", "dry_run" or "nothing" ("planned" only while it asks)
    imports: list[dict[str, Any]]  # the ledger rows it undoes (wholly or, for industry, in part)
    rows_removed: int
    rows_restored: int  # rows put back to an earlier import's values
    by_industry_state: list[dict[str, Any]]  # {industry, state, removed, restored}, as the rows were
    rollback_id: str | None = None
    backup_path: str | None = None
    bookmark: str | None = None  # D1 Time Travel: the database as it was just before
    seconds: float = 0.0

    @property
    def dry_run(self) -> bool:
        return self.status == "dry_run"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def plan(self) -> str:
        """What is (or would be) undone: the imports and the rows by industry and state."""
        removes, restores = ("removed", "restored") if self.status == "rolled_back" else ("removes", "restores")
        lines = [f"  {removes} {self.rows_removed:,} rows, {restores} {self.rows_restored:,} to earlier values"]
        if self.imports:
            lines.append(f"  imports ({len(self.imports)}):")
            lines += [
                f"    {row['id']:<30} {row['started_at']:<20} {row['status']:<11}"
                f" {row['inserted'] - row['removed']:>9,} rows  {row['source_path']}"
                for row in self.imports
            ]
        if self.by_industry_state:
            lines.append("  rows by industry and state:")
            lines.append(f"    {'industry':<16} {'state':<5} {'removed':>9} {'restored':>9}")
            lines += [
                f"    {row['industry']:<16} {row['state']:<5} {row['removed']:>9,} {row['restored']:>9,}"
                for row in self.by_industry_state
            ]
        return "\n".join(lines)

    def confirms(self, question: str) -> bool:
        """As `rollback(..., confirm=plan.confirms)` with the same arguments as this dry run: agrees only
        when the rollback about to happen is exactly this plan, so that what a person saw is what is
        undone. If the database has changed since, the rollback is refused (ConfirmationRequired)."""
        return f"\n{self.plan()}\n" in question

    def summary(self) -> str:
        """A few lines for a person."""
        if self.status == "nothing":
            return f"Nothing to roll back: no rows or imports match {self.description}."
        if self.dry_run:
            return f"Dry run: rolling back {self.description} would change this (nothing was changed):\n{self.plan()}"
        head = f"Rolled back {self.description} ({self.rollback_id}, {self.seconds:.2f} s):"
        lines = [head, self.plan(), f"  backup taken before: {self.backup_path or 'none'}"]
        if self.bookmark:
            lines.append(f"  Time Travel bookmark before: {self.bookmark}")
        return "\n".join(lines)


def chosen_strategy(
    *,
    last_hours: float = 0,
    since: str = "",
    until: str = "",
    industry: str = "",
    import_id: str = "",
    reset: bool = False,
) -> dict[str, Any]:
    """The `rollback` arguments among flat settings where 0, "" and False mean "not this strategy"
    (a notebook's parameters, a panel's controls): {} when none is chosen. More than one is left
    for `rollback` to refuse."""
    given = {
        "last_hours": last_hours or None,
        "since": since.strip() or None,
        "until": until.strip() or None,
        "industry": industry.strip() or None,
        "import_id": import_id.strip() or None,
        "reset": reset or None,
    }
    return {name: value for name, value in given.items() if value is not None}


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(TIMESTAMP_FORMAT)


def _bound(value: str | date | datetime, name: str, *, upper: bool) -> str:
    """A window bound as ledger text: a date covers its whole day; a time without zone is UTC.

    For the upper bound, the first moment after the window (compared with "<").
    """
    if isinstance(value, str):
        try:
            parsed: date | datetime = (
                date.fromisoformat(value) if len(value.strip()) == 10 else datetime.fromisoformat(value.strip())
            )
        except ValueError:
            raise EstateFlowError(f"{name}: {value!r} is not a date (2026-11-01) or time (2026-11-01T10:00Z)") from None
        value = parsed
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day, tzinfo=UTC) + timedelta(days=1 if upper else 0)
    elif upper:
        value = value + timedelta(seconds=1)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return _utc(value)


def _ledger_rows(target: Target, where: str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
    return target.query(f"SELECT {_IMPORT_COLUMNS} FROM ef_imports WHERE {where} ORDER BY started_at, rowid", params)


def _select(
    target: Target,
    last_hours: float | None,
    since: str | date | datetime | None,
    until: str | date | datetime | None,
    industry: str | None,
    import_id: str | None,
    reset: bool,
) -> _Selection:
    chosen = [
        name
        for name, given in (
            ("last_hours", last_hours is not None),
            ("since/until", since is not None or until is not None),
            ("industry", industry is not None),
            ("import_id", import_id is not None),
            ("reset", reset),
        )
        if given
    ]
    if len(chosen) != 1:
        raise EstateFlowError(
            "choose exactly one of last_hours, since/until, industry, import_id or reset"
            + (f" (got {', '.join(chosen)})" if chosen else "")
        )
    live = "status != 'rolled_back'"
    if last_hours is not None:
        if not last_hours > 0:
            raise EstateFlowError(f"hours must be more than 0, not {last_hours}")
        cutoff = _utc(datetime.now(UTC) - timedelta(hours=last_hours))
        ids = [r["id"] for r in _ledger_rows(target, f"started_at >= ? AND {live}", (cutoff,))]
        return _Selection("last", {"hours": last_hours}, f"imports started in the last {last_hours:g} hours", ids)
    if since is not None or until is not None:
        low = _bound(since, "from", upper=False) if since is not None else ""
        high = _bound(until, "to", upper=True) if until is not None else "9"
        if low >= high:
            raise EstateFlowError(f"the window is empty: {since} is after {until}")
        ids = [r["id"] for r in _ledger_rows(target, f"started_at >= ? AND started_at < ? AND {live}", (low, high))]
        arguments = {"since": None if since is None else str(since), "until": None if until is None else str(until)}
        span = f"from {since or 'the first import'} to {until or 'now'}"
        return _Selection("date", arguments, f"imports started {span}", ids)
    if industry is not None:
        name = industry.strip().lower()
        if name not in INDUSTRIES:
            raise EstateFlowError(f"unknown industry {industry!r}: expected one of {', '.join(INDUSTRIES)}")
        return _Selection("industry", {"industry": name}, f"the imported rows of industry {name}", industry=name)
    if import_id is not None:
        rows = target.query("SELECT id, status, rolled_back_at FROM ef_imports WHERE id = ?", (import_id,))
        if not rows:
            raise EstateFlowError(f"no import {import_id!r} in the ledger (`estateflow status` lists them)")
        if rows[0]["status"] == "rolled_back":
            raise EstateFlowError(f"import {import_id} was already rolled back at {rows[0]['rolled_back_at']}")
        return _Selection("import", {"import_id": import_id}, f"import {import_id}", [import_id])
    return _Selection("reset", {}, "everything (reset to the bare schema)")


def _history(selection: _Selection, max_depth: int) -> tuple[str, list[Any]]:
    """A WITH clause ending in `nodes(license_number, depth, writer, slot, dead)`: every write of
    every row the rollback touches, depth 0 being the row itself, `slot` the `by_import` key of the
    before-image that holds a deeper one, `dead` 1 for the writes it undoes."""
    if selection.industry is None:
        ids = json.dumps(selection.import_ids)
        # Written as one OR so that SQLite reads both sides off their indexes (MULTI-INDEX OR).
        rows = (
            f"import_id {_IN_JSON} OR license_number IN (SELECT license_number FROM ef_before_images"
            f" WHERE by_import {_IN_JSON} UNION SELECT license_number FROM ef_before_images WHERE import_id {_IN_JSON})"
        )
        rows_params: list[Any] = [ids, ids, ids]
        dead, dead_params = f"writer {_IN_JSON}", [ids]
    else:
        rows = (
            f"(industry = ? AND import_id IN ({_LIVE_IMPORTS})) OR license_number IN (SELECT license_number"
            f" FROM ef_before_images WHERE industry = ? AND import_id IN ({_LIVE_IMPORTS}))"
        )
        rows_params = [selection.industry, selection.industry]
        dead, dead_params = f"industry = ? AND writer IN ({_LIVE_IMPORTS})", [selection.industry]
    sql = (
        "WITH RECURSIVE chain(license_number, depth, writer, slot, industry) AS ("
        f" SELECT license_number, 0, import_id, NULL, industry FROM professionals WHERE {rows}"
        " UNION ALL SELECT i.license_number, c.depth + 1, i.import_id, i.by_import, i.industry FROM chain AS c"
        " JOIN ef_before_images AS i ON i.by_import = c.writer AND i.license_number = c.license_number"
        " WHERE c.depth < ?),"
        f" nodes AS (SELECT license_number, depth, writer, slot, COALESCE({dead}, 0) AS dead FROM chain)"
    )
    return sql, [*rows_params, max_depth, *dead_params]


def _plan(target: Target, selection: _Selection) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(imports, rows by industry and state) that the rollback would undo, as the database is now."""
    if selection.strategy == "reset":
        imports = _ledger_rows(target, "1 = 1", ())
        rows = target.query(
            "SELECT industry, state, COUNT(*) AS removed, 0 AS restored FROM professionals"
            " GROUP BY industry, state ORDER BY industry, state"
        )
        return imports, rows
    history, params = _history(selection, _max_depth(target))
    rows = target.query(
        f"{history}, per AS (SELECT license_number, MIN(dead) AS all_dead,"
        " MAX(CASE WHEN depth = 0 THEN dead ELSE 0 END) AS top_dead FROM nodes GROUP BY license_number)"
        " SELECT p.industry, p.state, SUM(per.all_dead) AS removed, SUM(1 - per.all_dead) AS restored"
        " FROM per JOIN professionals AS p ON p.license_number = per.license_number WHERE per.top_dead = 1"
        " GROUP BY p.industry, p.state ORDER BY p.industry, p.state",
        params,
    )
    if selection.by_imports:
        imports = _ledger_rows(target, f"id {_IN_JSON}", (json.dumps(selection.import_ids),))
    else:
        writers = target.query(f"{history} SELECT DISTINCT writer FROM nodes WHERE dead = 1", params)
        imports = _ledger_rows(target, f"id {_IN_JSON}", (json.dumps([w["writer"] for w in writers]),))
    return imports, rows


def _max_depth(target: Target) -> int:
    # A row cannot have more writes than there are imports; the bound only guards the recursion.
    return int(target.scalar("SELECT COUNT(*) FROM ef_imports") or 0) + 1


def _undo_statements(selection: _Selection, record: Sql, max_depth: int, now: str) -> list[Sql]:
    """The rollback as statements for one transaction (see the rule in the module docstring).

    The history of every touched row goes into `ef_rollback_work` first, with, per row, the depth
    of its old bottom write, of its newest and oldest surviving writes, and for each write the
    depth of the nearest surviving write above it; every later statement reads that, so their order
    only matters where they change the same table.
    """
    history, params = _history(selection, max_depth)
    work = "ef_rollback_work"
    if selection.by_imports:
        mark = Sql(
            f"UPDATE ef_imports SET status = 'rolled_back', rolled_back_at = ? WHERE id {_IN_JSON}"
            " AND status != 'rolled_back'",
            (now, json.dumps(selection.import_ids)),
        )
    else:  # industry: the imports with a write undone here and none left anywhere
        mark = Sql(
            "UPDATE ef_imports SET status = 'rolled_back', rolled_back_at = ?"
            f" WHERE id IN (SELECT writer FROM {work} WHERE dead = 1)"
            " AND NOT EXISTS (SELECT 1 FROM professionals WHERE import_id = ef_imports.id)"
            " AND NOT EXISTS (SELECT 1 FROM ef_before_images WHERE import_id = ef_imports.id)",
            (now,),
        )
    return [
        Sql(f"DELETE FROM {work}"),
        Sql(
            f"{history} INSERT INTO {work} (license_number, depth, writer, slot, dead, last_depth, alive_top,"
            " alive_bottom, above_alive) SELECT license_number, depth, writer, slot, dead, MAX(depth) OVER whole,"
            " MIN(CASE WHEN dead = 0 THEN depth END) OVER whole, MAX(CASE WHEN dead = 0 THEN depth END) OVER whole,"
            " MAX(CASE WHEN dead = 0 THEN depth END) OVER (PARTITION BY license_number ORDER BY depth"
            " ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) FROM nodes"
            " WINDOW whole AS (PARTITION BY license_number)",
            params,
        ),
        record,
        # A row whose newest write is undone takes the values of its newest surviving one.
        Sql(
            f"UPDATE professionals SET {_RESTORE_FROM_IMAGE} FROM {work} AS w JOIN ef_before_images AS i"
            " ON i.by_import = w.slot AND i.license_number = w.license_number"
            " WHERE w.depth = w.alive_top AND w.depth > 0 AND professionals.license_number = w.license_number"
        ),
        # A row with no surviving write goes.
        Sql(
            "DELETE FROM professionals WHERE license_number IN"
            f" (SELECT license_number FROM {work} WHERE depth = 0 AND alive_top IS NULL)"
        ),
        # Before-images of undone writes go, and so does the one just moved into the row.
        Sql(
            "DELETE FROM ef_before_images WHERE (by_import, license_number) IN"
            f" (SELECT slot, license_number FROM {work} WHERE depth > 0 AND (dead = 1 OR depth = alive_top))"
        ),
        # A surviving write that an undone one had overwritten is now the before-image of the
        # nearest surviving write above it.
        Sql(
            f"UPDATE ef_before_images SET by_import = a.writer FROM {work} AS w JOIN {work} AS a"
            " ON a.license_number = w.license_number AND a.depth = w.above_alive"
            " WHERE w.dead = 0 AND w.depth > w.alive_top AND w.above_alive < w.depth - 1"
            " AND ef_before_images.by_import = w.slot AND ef_before_images.license_number = w.license_number"
        ),
        # The ledger: an undone inserter counts its row as removed; when a later write of the row
        # survives, the oldest such write becomes the row's inserter.
        Sql(
            "UPDATE ef_imports SET removed = removed + c.n FROM (SELECT writer, COUNT(*) AS n"
            f" FROM {work} WHERE dead = 1 AND depth = last_depth GROUP BY writer) AS c WHERE ef_imports.id = c.writer"
        ),
        Sql(
            "UPDATE ef_imports SET inserted = inserted + c.n, updated = updated - c.n FROM (SELECT writer,"
            f" COUNT(*) AS n FROM {work} WHERE depth = alive_bottom AND alive_bottom < last_depth GROUP BY writer)"
            " AS c WHERE ef_imports.id = c.writer"
        ),
        mark,
        Sql(f"DELETE FROM {work}"),
    ]


def _reset_statements(record: Sql, rollback_id: str) -> list[Sql]:
    return [
        record,
        *(Sql(f"DELETE FROM {table}") for table in ("professionals", "ef_before_images", "ef_imports")),
        Sql("DELETE FROM ef_rollback_work"),
        Sql("DELETE FROM ef_rollbacks WHERE id != ?", (rollback_id,)),
    ]


def _record(
    selection: _Selection,
    rollback_id: str,
    backup_path: str | None,
    bookmark: str | None,
    started_at: str,
    now: str,
) -> Sql:
    """The rollback's own row in `ef_rollbacks`, counted from the work table (or the whole table on reset)."""
    if selection.strategy == "reset":
        imports, removed, restored = "(SELECT json_group_array(id) FROM ef_imports)", "professionals", "0"
        params: list[Any] = []
    else:
        work = "ef_rollback_work"
        removed = f"{work} WHERE depth = 0 AND alive_top IS NULL"
        restored = f"(SELECT COUNT(*) FROM {work} WHERE depth = alive_top AND depth > 0)"
        if selection.by_imports:
            imports, params = "?", [json.dumps(selection.import_ids)]
        else:
            imports = f"(SELECT json_group_array(writer) FROM (SELECT DISTINCT writer FROM {work} WHERE dead = 1))"
            params = []
    return Sql(
        "INSERT INTO ef_rollbacks (id, strategy, arguments, imports, rows_removed, rows_restored, backup_path,"
        f" bookmark, started_at, finished_at) VALUES (?, ?, ?, {imports}, (SELECT COUNT(*) FROM {removed}),"
        f" {restored}, ?, ?, ?, ?)",
        (
            rollback_id,
            selection.strategy,
            json.dumps(selection.arguments),
            *params,
            backup_path,
            bookmark,
            started_at,
            now,
        ),
    )


def _kill_hook() -> tuple[Callable[[], None] | None, bool]:
    """(before_commit callback, kill after commit) for the test hook in `KILL_HOOK_ENV`."""
    when = os.environ.get(KILL_HOOK_ENV, "")

    def kill() -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    return (kill if when == "rollback:before" else None), when == "rollback:after"


def rollback(
    target: Target,
    *,
    last_hours: float | None = None,
    since: str | date | datetime | None = None,
    until: str | date | datetime | None = None,
    industry: str | None = None,
    import_id: str | None = None,
    reset: bool = False,
    dry_run: bool = False,
    backup: bool = True,
    yes: bool = False,
    confirm: Callable[[str], bool] | None = None,
    backups_dir: str | Path | None = None,
) -> RollbackResult:
    """Undo imports: one of `last_hours`, `since`/`until` (dates are inclusive, whole UTC days),
    `industry`, `import_id`, or `reset=True` to empty the database.

    Shows nothing and changes nothing with `dry_run=True` (the result holds the plan). Otherwise it
    needs `yes=True` or a `confirm(question)` that returns True (ConfirmationRequired if neither),
    takes a backup (unless `backup=False`) and applies the rollback in one transaction.
    """
    began = time.perf_counter()
    started_at = _utc(datetime.now(UTC))
    selection = _select(target, last_hours, since, until, industry, import_id, reset)
    imports, rows = _plan(target, selection)
    result = RollbackResult(
        strategy=selection.strategy,
        arguments=selection.arguments,
        description=selection.description,
        status="dry_run" if dry_run else "planned",
        imports=imports,
        rows_removed=sum(int(r["removed"]) for r in rows),
        rows_restored=sum(int(r["restored"]) for r in rows),
        by_industry_state=rows,
    )
    nothing = not imports and not rows
    if selection.strategy == "reset":
        nothing = nothing and not target.scalar("SELECT COUNT(*) FROM ef_before_images")
    if nothing and not dry_run:
        result.status = "nothing"
    if dry_run or nothing:
        result.seconds = time.perf_counter() - began
        return result
    question = f"Roll back {selection.description}?\n{result.plan()}\nA backup is taken first. Go ahead?"
    if not (yes or (confirm is not None and confirm(question))):
        raise ConfirmationRequired(
            f"rolling back {selection.description} removes {result.rows_removed:,} rows and restores"
            f" {result.rows_restored:,}: confirm interactively or pass --yes (--dry-run shows the plan)",
            flag="--yes",
        )
    if backup:
        result.backup_path = str(take_backup(target, backups_dir=backups_dir))
    # On D1 the provider can also return the database to this moment, whatever the local backup.
    result.bookmark = target.bookmark()
    rollback_id = f"rb-{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"
    now = _utc(datetime.now(UTC))
    record = _record(selection, rollback_id, result.backup_path, result.bookmark, started_at, now)
    if selection.strategy == "reset":
        statements = _reset_statements(record, rollback_id)
    else:
        statements = _undo_statements(selection, record, _max_depth(target), now)
    before_commit, kill_after = _kill_hook()
    target.execute(statements, before_commit=before_commit)
    if kill_after:
        os.kill(os.getpid(), signal.SIGKILL)
    done = target.query("SELECT imports, rows_removed, rows_restored FROM ef_rollbacks WHERE id = ?", (rollback_id,))[0]
    result.rollback_id, result.status = rollback_id, "rolled_back"
    result.rows_removed, result.rows_restored = done["rows_removed"], done["rows_restored"]
    if selection.strategy != "reset":
        result.imports = _ledger_rows(target, f"id {_IN_JSON}", (done["imports"],))
    result.seconds = time.perf_counter() - began
    return result
