"""The SQL of a rollback: the write history of the rows it touches, and the statements that undo it.

What they implement, and why, is the rule in rollback.py's docstring. Every statement binds a handful
of parameters (lists travel as one JSON text through `json_each`), which keeps within D1's limits,
and the undo is one list of statements for one `target.execute`: all of it happens or none.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .schema import STORED_COLUMNS, RollbackStrategy
from .targets import Sql, Target

IN_JSON = "IN (SELECT value FROM json_each(?))"
_LIVE_IMPORTS = "SELECT id FROM ef_imports WHERE status != 'rolled_back'"
_IMPORT_COLUMNS = "id, source_path, started_at, status, inserted, updated, removed"
_RESTORE_FROM_IMAGE = ", ".join(f"{c} = i.{c}" for c in STORED_COLUMNS if c != "license_number")
# Scratch space of one rollback, filled and emptied inside its transaction (see schema.py).
_WORK = "ef_rollback_work"


@dataclass(frozen=True)
class Selection:
    """What one rollback undoes: the writes of `import_ids`, or of `industry`, or everything."""

    strategy: RollbackStrategy
    arguments: dict[str, Any]
    description: str
    import_ids: list[str] = field(default_factory=list)
    industry: str | None = None

    @property
    def by_imports(self) -> bool:
        return self.strategy in ("last", "date", "import")


def ledger_rows(target: Target, where: str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
    """The imports a rollback shows, oldest first."""
    return target.query(f"SELECT {_IMPORT_COLUMNS} FROM ef_imports WHERE {where} ORDER BY started_at, rowid", params)


def _history(selection: Selection, depth_limit: int) -> tuple[str, list[Any]]:
    """A WITH clause ending in `nodes(license_number, depth, writer, slot, dead)`: every write of
    every row the rollback touches, depth 0 being the row itself, `slot` the `by_import` key of the
    before-image that holds a deeper one, `dead` 1 for the writes it undoes."""
    if selection.industry is None:
        ids = json.dumps(selection.import_ids)
        # Written as one OR so that SQLite reads both sides off their indexes (MULTI-INDEX OR).
        rows = (
            f"import_id {IN_JSON} OR license_number IN (SELECT license_number FROM ef_before_images"
            f" WHERE by_import {IN_JSON} UNION SELECT license_number FROM ef_before_images WHERE import_id {IN_JSON})"
        )
        rows_params: list[Any] = [ids, ids, ids]
        dead, dead_params = f"writer {IN_JSON}", [ids]
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
    return sql, [*rows_params, depth_limit, *dead_params]


def plan(target: Target, selection: Selection) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(imports, rows by industry and state) that the rollback would undo, as the database is now."""
    if selection.strategy == "reset":
        imports = ledger_rows(target, "1 = 1", ())
        rows = target.query(
            "SELECT industry, state, COUNT(*) AS removed, 0 AS restored FROM professionals"
            " GROUP BY industry, state ORDER BY industry, state"
        )
        return imports, rows
    history, params = _history(selection, max_depth(target))
    rows = target.query(
        f"{history}, per AS (SELECT license_number, MIN(dead) AS all_dead,"
        " MAX(CASE WHEN depth = 0 THEN dead ELSE 0 END) AS top_dead FROM nodes GROUP BY license_number)"
        " SELECT p.industry, p.state, SUM(per.all_dead) AS removed, SUM(1 - per.all_dead) AS restored"
        " FROM per JOIN professionals AS p ON p.license_number = per.license_number WHERE per.top_dead = 1"
        " GROUP BY p.industry, p.state ORDER BY p.industry, p.state",
        params,
    )
    if selection.by_imports:
        imports = ledger_rows(target, f"id {IN_JSON}", (json.dumps(selection.import_ids),))
    else:
        writers = target.query(f"{history} SELECT DISTINCT writer FROM nodes WHERE dead = 1", params)
        imports = ledger_rows(target, f"id {IN_JSON}", (json.dumps([w["writer"] for w in writers]),))
    return imports, rows


def max_depth(target: Target) -> int:
    """How deep a row's history of writes may go: a row cannot have more writes than there are
    imports. The bound only guards the recursion."""
    return int(target.scalar("SELECT COUNT(*) FROM ef_imports") or 0) + 1


def undo_statements(selection: Selection, record: Sql, depth_limit: int, now: str) -> list[Sql]:
    """The rollback as statements for one transaction (see the rule in rollback.py's docstring).

    The history of every touched row goes into `ef_rollback_work` first, with, per row, the depth
    of its old bottom write, of its newest and oldest surviving writes, and for each write the
    depth of the nearest surviving write above it; every later statement reads that, so their order
    only matters where they change the same table.
    """
    history, params = _history(selection, depth_limit)
    work = _WORK
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
        _mark_rolled_back(selection, now),
        Sql(f"DELETE FROM {work}"),
    ]


def _mark_rolled_back(selection: Selection, now: str) -> Sql:
    """The ledger rows of the imports undone: the selected ones, or, for an industry, those with a
    write undone here and none left anywhere."""
    if selection.by_imports:
        return Sql(
            f"UPDATE ef_imports SET status = 'rolled_back', rolled_back_at = ? WHERE id {IN_JSON}"
            " AND status != 'rolled_back'",
            (now, json.dumps(selection.import_ids)),
        )
    return Sql(
        "UPDATE ef_imports SET status = 'rolled_back', rolled_back_at = ?"
        f" WHERE id IN (SELECT writer FROM {_WORK} WHERE dead = 1)"
        " AND NOT EXISTS (SELECT 1 FROM professionals WHERE import_id = ef_imports.id)"
        " AND NOT EXISTS (SELECT 1 FROM ef_before_images WHERE import_id = ef_imports.id)",
        (now,),
    )


def reset_statements(record: Sql, rollback_id: str) -> list[Sql]:
    """Everything emptied, but for the reset's own row in `ef_rollbacks`."""
    return [
        record,
        *(Sql(f"DELETE FROM {table}") for table in ("professionals", "ef_before_images", "ef_imports", _WORK)),
        Sql("DELETE FROM ef_rollbacks WHERE id != ?", (rollback_id,)),
    ]


def rollback_record(
    selection: Selection,
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
        removed = f"{_WORK} WHERE depth = 0 AND alive_top IS NULL"
        restored = f"(SELECT COUNT(*) FROM {_WORK} WHERE depth = alive_top AND depth > 0)"
        if selection.by_imports:
            imports, params = "?", [json.dumps(selection.import_ids)]
        else:
            imports = f"(SELECT json_group_array(writer) FROM (SELECT DISTINCT writer FROM {_WORK} WHERE dead = 1))"
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
