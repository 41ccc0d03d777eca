"""The SQL of a rollback: the write history of the rows it touches, and the statements that undo it.

What they implement, and why, is the rule in rollback.py's docstring. Every statement binds a handful
of parameters (lists travel as one JSON text through `json_each`), which keeps within D1's limits.

A rollback is four kinds of step, each a list of statements that is safe to run again whether it
was applied whole, in part (a prefix) or not at all, so that a target without transactions across
a request (D1 over REST) ends exactly as one transaction would:

- `start`: the rollback's row in `ef_rollbacks` (its claim, and for an industry the imports it may
  undo, fixed now), the imports it undoes marked `rolled_back` (no batch of theirs lands after
  this), and the counts of stopped imports settled (see _ledger.settle);
- `fill` a span of license numbers: the write history of its rows into `ef_rollback_work`, read
  before anything in the span is changed (the rollback's row records how far filling got);
- `apply` a span: rows put back or deleted, before-images moved or deleted, from the work table
  alone, which no step changes (and how far applying got);
- `finish`: the ledger's counts (once per import: `undone_by` names the rollback that took them),
  the imports undone, the rollback's own counts, and the work table emptied.

On a target without a time limit all of them are one `target.execute`: one transaction. Elsewhere
each is a request of its own, and spans are cut to fit (see _rollback_run.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from . import _claims
from ._ledger import settle_unfinished
from ._time import ledger_time
from .schema import STORED_COLUMNS, RollbackStrategy
from .targets import Sql, Target

IN_JSON = "IN (SELECT value FROM json_each(?))"
_LIVE_IMPORTS = "SELECT id FROM ef_imports WHERE status != 'rolled_back'"
# The imports an industry rollback may undo: those live when it started, as its row records them.
_RECORDED_IMPORTS = "SELECT value FROM json_each((SELECT imports FROM ef_rollbacks WHERE id = ?))"
_IMPORT_COLUMNS = "id, source_path, started_at, status, inserted, updated, removed"
_RESTORE_FROM_IMAGE = ", ".join(f"{c} = i.{c}" for c in STORED_COLUMNS if c != "license_number")
# Scratch space of one rollback, filled as it goes and emptied by its finish (see schema.py).
_WORK = "ef_rollback_work"
# A span of license numbers (after, upto]: "" is before the first, END after the last.
END = "\U0010ffff"
Span = tuple[str, str]
EVERYTHING: Span = ("", END)
_FILLED = "COALESCE((SELECT filled_upto FROM ef_rollbacks WHERE id = ?), '')"


def _in_span(column: str, span: Span) -> tuple[str, list[Any]]:
    """` AND column in span`, and its parameters; nothing for the whole range, so that the queries keep
    the plans they have without it."""
    if span == EVERYTHING:
        return "", []
    return f" AND {column} > ? AND {column} <= ?", [span[0], span[1]]


def _unfilled(rollback_id: str, span: Span) -> tuple[str, list[Any]]:
    """` AND license_number in span, after what the rollback has filled already`: a fill sent again
    never reads the history of rows that the rollback may have begun to change."""
    if span == EVERYTHING:
        return f" AND {_FILLED} = ''", [rollback_id]
    return f" AND license_number > MAX(?, {_FILLED}) AND license_number <= ?", [span[0], rollback_id, span[1]]


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


def _history(
    selection: Selection, depth_limit: int, *, rollback_id: str | None = None, span: Span = EVERYTHING
) -> tuple[str, list[Any]]:
    """A WITH clause ending in `nodes(license_number, depth, writer, slot, dead)`: every write of
    every row the rollback touches, depth 0 being the row itself, `slot` the `by_import` key of the
    before-image that holds a deeper one, `dead` 1 for the writes it undoes. For a plan (no
    `rollback_id`) the rows as they are now and an industry's imports live now; for the rollback
    `rollback_id`, the rows of `span` it has not filled yet and the imports it recorded."""
    if selection.industry is None:
        ids = json.dumps(selection.import_ids)
        # Written as one OR so that SQLite reads both sides off their indexes (MULTI-INDEX OR).
        rows = (
            f"(import_id {IN_JSON} OR license_number IN (SELECT license_number FROM ef_before_images"
            f" WHERE by_import {IN_JSON} UNION SELECT license_number FROM ef_before_images WHERE import_id {IN_JSON}))"
        )
        rows_params: list[Any] = [ids, ids, ids]
        dead, dead_params = f"writer {IN_JSON}", [ids]
    else:
        live, live_params = (_LIVE_IMPORTS, []) if rollback_id is None else (_RECORDED_IMPORTS, [rollback_id])
        rows = (
            f"((industry = ? AND import_id IN ({live})) OR license_number IN (SELECT license_number"
            f" FROM ef_before_images WHERE industry = ? AND import_id IN ({live})))"
        )
        rows_params = [selection.industry, *live_params, selection.industry, *live_params]
        dead, dead_params = f"industry = ? AND writer IN ({live})", [selection.industry, *live_params]
    within, within_params = ("", []) if rollback_id is None else _unfilled(rollback_id, span)
    sql = (
        "WITH RECURSIVE chain(license_number, depth, writer, slot, industry) AS ("
        f" SELECT license_number, 0, import_id, NULL, industry FROM professionals WHERE {rows}{within}"
        " UNION ALL SELECT i.license_number, c.depth + 1, i.import_id, i.by_import, i.industry FROM chain AS c"
        " JOIN ef_before_images AS i ON i.by_import = c.writer AND i.license_number = c.license_number"
        " WHERE c.depth < ?),"
        f" nodes AS (SELECT license_number, depth, writer, slot, COALESCE({dead}, 0) AS dead FROM chain)"
    )
    return sql, [*rows_params, *within_params, depth_limit, *dead_params]


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


def start(selection: Selection, target: Target, rollback_id: str, claim: str, facts: dict[str, Any]) -> list[Sql]:
    """The rollback's row (held by `claim`), the imports it undoes marked, stopped imports' counts
    settled. `facts` holds backup_path, bookmark, started_at."""
    if selection.strategy == "reset":
        imports, params = "(SELECT json_group_array(id) FROM ef_imports)", []
    elif selection.by_imports:
        imports, params = "?", [json.dumps(selection.import_ids)]
    else:
        imports, params = f"(SELECT json_group_array(id) FROM ({_LIVE_IMPORTS}))", []
    removed = "(SELECT COUNT(*) FROM professionals)" if selection.strategy == "reset" else "0"
    record = Sql(
        "INSERT OR IGNORE INTO ef_rollbacks (id, strategy, arguments, imports, rows_removed, backup_path, bookmark,"
        f" started_at, claim, claim_owner, heartbeat_at) VALUES (?, ?, ?, {imports}, {removed}, ?, ?, ?, ?, ?, ?)",
        (
            rollback_id,
            selection.strategy,
            json.dumps(selection.arguments),
            *params,
            facts["backup_path"],
            facts["bookmark"],
            facts["started_at"],
            claim,
            _claims.owner(),
            facts["started_at"],
        ),
    )
    statements = [*settle_unfinished(target), record]
    if selection.strategy != "reset":
        # What a rollback of an earlier version may have left; never once this one has filled any.
        statements.append(Sql(f"DELETE FROM {_WORK} WHERE {_FILLED} = ''", (rollback_id,)))
    if selection.by_imports:
        statements.append(_mark_rolled_back(selection, facts["started_at"]))
    return statements


def guard(rollback_id: str, claim: str) -> Sql:
    """Fails unless the rollback's row exists and is held by `claim`: every request after the start."""
    return _claims.guard("ef_rollbacks", "strategy", rollback_id, claim, "1 = 1")


def span_step(selection: Selection, rollback_id: str, depth_limit: int, span: Span) -> list[Sql]:
    """Fill and apply `span`, each followed by how far it got: one request's worth. The fill's mark
    comes before the first statement that changes a row, so no prefix of this list that changed one
    can be followed by a fill of the same rows."""
    return [
        *fill(selection, rollback_id, depth_limit, span),
        _progress(rollback_id, "filled_upto", span[1]),
        *apply(span),
        _progress(rollback_id, "applied_upto", span[1]),
    ]


def _progress(rollback_id: str, column: str, upto: str) -> Sql:
    return Sql(
        f"UPDATE ef_rollbacks SET {column} = MAX(COALESCE({column}, ''), ?), heartbeat_at = ? WHERE id = ?",
        (upto, ledger_time(), rollback_id),
    )


def fill(selection: Selection, rollback_id: str, depth_limit: int, span: Span) -> list[Sql]:
    """The write history of the rows of `span` that the rollback has not filled yet, into the work
    table, with, per row, the depth of its old bottom write, of its newest and oldest surviving
    writes, and for each write the depth of the nearest surviving write above it."""
    history, params = _history(selection, depth_limit, rollback_id=rollback_id, span=span)
    unfilled, unfilled_params = _unfilled(rollback_id, span)
    return [
        Sql(f"DELETE FROM {_WORK} WHERE 1 = 1{unfilled}", unfilled_params),
        Sql(
            f"{history} INSERT INTO {_WORK} (license_number, depth, writer, slot, dead, last_depth, alive_top,"
            " alive_bottom, above_alive) SELECT license_number, depth, writer, slot, dead, MAX(depth) OVER whole,"
            " MIN(CASE WHEN dead = 0 THEN depth END) OVER whole, MAX(CASE WHEN dead = 0 THEN depth END) OVER whole,"
            " MAX(CASE WHEN dead = 0 THEN depth END) OVER (PARTITION BY license_number ORDER BY depth"
            " ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) FROM nodes"
            " WINDOW whole AS (PARTITION BY license_number)",
            params,
        ),
    ]


def apply(span: Span) -> list[Sql]:
    """Undo the writes the work table marks dead, for the rows in `span`. Each statement finds nothing
    left to do when run again: what it moved or deleted is no longer where it looks, and a before-image
    is taken only while it still holds the write it is meant to (its import_id is that write's)."""
    w, w_params = _in_span("w.license_number", span)
    plain, plain_params = _in_span("license_number", span)
    return [
        # A row whose newest write is undone takes the values of its newest surviving one.
        Sql(
            f"UPDATE professionals SET {_RESTORE_FROM_IMAGE} FROM {_WORK} AS w JOIN ef_before_images AS i"
            " ON i.by_import = w.slot AND i.license_number = w.license_number AND i.import_id IS w.writer"
            f" WHERE w.depth = w.alive_top AND w.depth > 0 AND professionals.license_number = w.license_number{w}",
            w_params,
        ),
        # A row with no surviving write goes.
        Sql(
            "DELETE FROM professionals WHERE license_number IN"
            f" (SELECT license_number FROM {_WORK} WHERE depth = 0 AND alive_top IS NULL{plain})",
            plain_params,
        ),
        # Before-images of undone writes go, and so does the one just moved into the row.
        Sql(
            "DELETE FROM ef_before_images WHERE (by_import, license_number) IN"
            f" (SELECT slot, license_number FROM {_WORK} WHERE depth > 0 AND (dead = 1 OR depth = alive_top){plain})"
            f" AND import_id IS (SELECT writer FROM {_WORK} AS w"
            " WHERE w.license_number = ef_before_images.license_number AND w.slot = ef_before_images.by_import)",
            plain_params,
        ),
        # A surviving write that an undone one had overwritten is now the before-image of the
        # nearest surviving write above it.
        Sql(
            f"UPDATE ef_before_images SET by_import = a.writer FROM {_WORK} AS w JOIN {_WORK} AS a"
            " ON a.license_number = w.license_number AND a.depth = w.above_alive"
            " WHERE w.dead = 0 AND w.depth > w.alive_top AND w.above_alive < w.depth - 1"
            " AND ef_before_images.by_import = w.slot AND ef_before_images.license_number = w.license_number"
            f" AND ef_before_images.import_id IS w.writer{w}",
            w_params,
        ),
    ]


def finish(selection: Selection, rollback_id: str, now: str) -> list[Sql]:
    """The ledger, the imports undone and the rollback's own row, from the whole work table; then the
    work table emptied. Each import's counts move once (`undone_by`), however often this runs."""
    return [
        # An undone inserter counts its row as removed; when a later write of the row survives, the
        # oldest such write becomes the row's inserter.
        Sql(
            "UPDATE ef_imports SET removed = removed + c.gone, inserted = inserted + c.promoted,"
            " updated = updated - c.promoted, undone_by = ? FROM (SELECT writer,"
            " SUM(CASE WHEN dead = 1 AND depth = last_depth THEN 1 ELSE 0 END) AS gone,"
            " SUM(CASE WHEN depth = alive_bottom AND alive_bottom < last_depth THEN 1 ELSE 0 END) AS promoted"
            f" FROM {_WORK} GROUP BY writer) AS c WHERE ef_imports.id = c.writer AND ef_imports.undone_by IS NOT ?",
            (rollback_id, rollback_id),
        ),
        _mark_rolled_back(selection, now),
        # A before-image of an undone import that no chain reached: kept by a batch that was applied
        # only in part (the capture landed, the overwrite did not). Nothing to put back.
        Sql("DELETE FROM ef_before_images WHERE by_import IN (SELECT id FROM ef_imports WHERE status = 'rolled_back')"),
        # An unfinished import counts its rows and before-images above its marks; if its newest went,
        # new ones may take their ids: its marks come down to the newest it still has.
        Sql(
            "UPDATE ef_imports SET row_mark = COALESCE((SELECT MAX(id) FROM professionals"
            " WHERE import_id = ef_imports.id AND id <= ef_imports.row_mark), 0),"
            " image_mark = COALESCE((SELECT MAX(rowid) FROM ef_before_images"
            " WHERE by_import = ef_imports.id AND rowid <= ef_imports.image_mark), 0)"
            " WHERE status IN ('running', 'failed')"
        ),
        _record_counts(selection, rollback_id, now),
        Sql(f"DELETE FROM {_WORK}"),
    ]


def _mark_rolled_back(selection: Selection, now: str) -> Sql:
    """The ledger rows of the imports undone: the selected ones, or, for an industry, those with a
    write undone here and none left anywhere."""
    if selection.by_imports:
        return Sql(
            f"UPDATE ef_imports SET status = 'rolled_back', rolled_back_at = ?, claim = NULL WHERE id {IN_JSON}"
            " AND status != 'rolled_back'",
            (now, json.dumps(selection.import_ids)),
        )
    return Sql(
        "UPDATE ef_imports SET status = 'rolled_back', rolled_back_at = ?, claim = NULL"
        f" WHERE id IN (SELECT writer FROM {_WORK} WHERE dead = 1)"
        " AND NOT EXISTS (SELECT 1 FROM professionals WHERE import_id = ef_imports.id)"
        " AND NOT EXISTS (SELECT 1 FROM ef_before_images WHERE import_id = ef_imports.id)",
        (now,),
    )


def _record_counts(selection: Selection, rollback_id: str, now: str) -> Sql:
    """The rollback's row, finished: its counts from the work table, and for an industry the imports it
    undid writes of (it recorded those it might)."""
    imports = "imports"
    if selection.industry is not None:
        imports = f"(SELECT json_group_array(writer) FROM (SELECT DISTINCT writer FROM {_WORK} WHERE dead = 1))"
    return Sql(
        f"UPDATE ef_rollbacks SET imports = {imports},"
        f" rows_removed = (SELECT COUNT(*) FROM {_WORK} WHERE depth = 0 AND alive_top IS NULL),"
        f" rows_restored = (SELECT COUNT(*) FROM {_WORK} WHERE depth = alive_top AND depth > 0),"
        " finished_at = ?, heartbeat_at = ? WHERE id = ? AND finished_at IS NULL",
        (now, now, rollback_id),
    )


# --- reset: everything emptied, but for the reset's own row in ef_rollbacks ---------------------------


def reset_part(table: str, rows: int) -> Sql:
    """Delete `rows` rows of `table`. Run until nothing is left; each run deletes what is there, so
    running one again does no harm."""
    return Sql(f"DELETE FROM {table} WHERE rowid IN (SELECT rowid FROM {table} LIMIT ?)", (rows,))


def reset_finish(rollback_id: str, now: str) -> list[Sql]:
    return [
        *(Sql(f"DELETE FROM {table}") for table in ("professionals", "ef_before_images", "ef_imports", _WORK)),
        Sql("DELETE FROM ef_rollbacks WHERE id != ?", (rollback_id,)),
        Sql("UPDATE ef_rollbacks SET finished_at = ?, heartbeat_at = ? WHERE id = ?", (now, now, rollback_id)),
    ]


def unfinished(target: Target) -> dict[str, Any] | None:
    """A rollback that started and did not finish (a part of it failed, or it is running now)."""
    rows = target.query("SELECT * FROM ef_rollbacks WHERE finished_at IS NULL ORDER BY started_at, rowid LIMIT 1")
    return rows[0] if rows else None
