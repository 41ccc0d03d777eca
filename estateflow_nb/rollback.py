"""Rollback: undo imports exactly, by import, by time window, by industry, or reset to the bare schema.

`rollback(target, import_id=...)` (or `last_hours=`, `since=`/`until=`, `industry=`, `reset=True`)
works out what it would change, asks (`yes=True`, or a `confirm` callback), backs the whole database
up, and then makes every change: in ONE `target.execute` call where the target has no time limit
(SQLite: completely or not at all), and on D1 in requests that each fit its 30 seconds, each safe to
send again, so that it ends exactly as one transaction would; one that stops part way is finished by
the same call again (the statements are in _rollback_sql.py, their order in _rollback_run.py).
Selection is by the `ef_imports` ledger and the `import_id` of the rows, never by business timestamps
such as `created_at`.

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
refusing: the importer captures them in the same request as the batch, at little cost, and the
alternative, restoring a backup, would also throw away every later import.

Records an import *skipped* (their license number was already present) were never written by it:
undoing the import that holds such a row removes the row; run the later import again to load its
version.

For `industry`, an import all of whose writes were undone becomes `rolled_back`; one that keeps
other rows stays as it was, with `removed` counting what it lost. `reset` empties every table and
keeps only its own row in `ef_rollbacks` (which names the backup of what was there).

`ESTATEFLOW_TEST_KILL_AT=rollback:before` (inside the transaction, before its commit) or
`rollback:after` (right after the commit) kills the process there; on a target with a time limit the
points are its requests, `rollback-1`, `rollback-2`, ...: for tests only.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import _claims, _ledger, _rollback_run, _rollback_sql
from ._confirm import Confirm, require_confirmation
from ._look import plural, visible
from ._rollback_sql import IN_JSON, Selection, ledger_rows
from ._time import ledger_time, new_id, utc_now
from .backup import backup as take_backup
from .errors import ConfirmationRequired, EstateFlowError, RefusedError
from .schema import INDUSTRIES, RollbackStatus, RollbackStrategy
from .targets import Sql, Target

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class RollbackResult:
    """What a rollback did, or (status "dry_run") would do, or that there was nothing to do."""

    strategy: RollbackStrategy
    arguments: dict[str, Any]
    description: str
    status: RollbackStatus
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

    def _repr_html_(self) -> str:
        from ._display import rollback_html

        return rollback_html(self)

    def to_frame(self) -> pd.DataFrame:
        """The rows it removes and restores (or would), by industry and state, as the rows were."""
        from ._frames import PLACE_COLUMNS, typed

        return typed(self.by_industry_state, PLACE_COLUMNS)

    def __repr__(self) -> str:
        done = "removed" if self.status == "rolled_back" else "would remove"
        return (
            f"<RollbackResult {self.status} of {visible(self.description)}: {done} {self.rows_removed:,} rows, restored"
            f" {self.rows_restored:,}, {plural(len(self.imports), 'import')}>"
        )

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
            lines.append(
                f"  Time Travel bookmark before: {self.bookmark} (`estateflow restore --bookmark {self.bookmark}`"
                " with the same --db returns the database there)"
            )
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


# Sorts after every ledger time (they start with a digit): the open end of a window.
_AFTER_ALL = "~"


def _bound(value: str | date | datetime, name: str, *, upper: bool) -> str:
    """A window bound as ledger text: a date (2026-11-01 or 20261101) covers its whole day; a time
    without zone is UTC.

    For the upper bound, the first moment after the window (compared with "<"). A bound past the
    ledger's years (0001 to 9999) leaves that side open: "" below every time, "~" above.
    """
    if isinstance(value, str):
        value = _parse_bound(value, name)
    try:
        if isinstance(value, datetime):
            moment = (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)
            moment += timedelta(seconds=1 if upper else 0)
        else:
            moment = datetime(value.year, value.month, value.day, tzinfo=UTC) + timedelta(days=1 if upper else 0)
    except OverflowError:
        return _AFTER_ALL if value.year > 5000 else ""
    # Zero-padded by hand: strftime writes the year 1 as "1", which would sort after "2026".
    return f"{moment.year:04d}-{moment:%m-%dT%H:%M:%S}Z"


def _parse_bound(text: str, name: str) -> date | datetime:
    # A date alone, in either ISO form, is a whole day; datetime.fromisoformat would read 20261129
    # as its first second.
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text.strip())
    except ValueError:
        raise RefusedError(f"{name}: {text!r} is not a date (2026-11-01) or time (2026-11-01T10:00Z)") from None


def _cutoff(hours: float) -> str:
    """The ledger time `hours` ago, for `rollback last`."""
    if not (math.isfinite(hours) and hours > 0):
        raise RefusedError(f"hours must be a number more than 0, not {hours:g}")
    try:
        return ledger_time(utc_now() - timedelta(hours=hours))
    except OverflowError:
        raise RefusedError(
            f"{hours:g} hours reaches back before the year 1: give fewer hours (`rollback reset` undoes everything)"
        ) from None


def _select(
    target: Target,
    last_hours: float | None,
    since: str | date | datetime | None,
    until: str | date | datetime | None,
    industry: str | None,
    import_id: str | None,
    reset: bool,
) -> Selection:
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
        raise RefusedError(
            "choose exactly one of last_hours, since/until, industry, import_id or reset"
            + (f" (got {', '.join(chosen)})" if chosen else "")
        )
    live = "status != 'rolled_back'"
    if last_hours is not None:
        cutoff = _cutoff(last_hours)
        ids = [r["id"] for r in ledger_rows(target, f"started_at >= ? AND {live}", (cutoff,))]
        return Selection("last", {"hours": last_hours}, f"imports started in the last {last_hours:g} hours", ids)
    if since is not None or until is not None:
        low = _bound(since, "from", upper=False) if since is not None else ""
        high = _bound(until, "to", upper=True) if until is not None else _AFTER_ALL
        if low >= high:
            raise RefusedError(f"the window is empty: {since} is after {until}")
        ids = [r["id"] for r in ledger_rows(target, f"started_at >= ? AND started_at < ? AND {live}", (low, high))]
        arguments = {"since": None if since is None else str(since), "until": None if until is None else str(until)}
        span = f"from {since or 'the first import'} to {until or 'now'}"
        return Selection("date", arguments, f"imports started {span}", ids)
    if industry is not None:
        name = industry.strip().lower()
        if name not in INDUSTRIES:
            raise RefusedError(f"unknown industry {industry!r}: expected one of {', '.join(INDUSTRIES)}")
        return Selection("industry", {"industry": name}, f"the imported rows of industry {name}", industry=name)
    if import_id is not None:
        rows = target.query("SELECT id, status, rolled_back_at FROM ef_imports WHERE id = ?", (import_id,))
        if not rows:
            raise RefusedError(f"no import {import_id!r} in the ledger (`estateflow status` lists them)")
        if rows[0]["status"] == "rolled_back":
            raise RefusedError(f"import {import_id} was already rolled back at {rows[0]['rolled_back_at']}")
        return Selection("import", {"import_id": import_id}, f"import {import_id}", [import_id])
    return Selection("reset", {}, "everything (reset to the bare schema)")


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
    confirm: Confirm | None = None,
    backups_dir: str | Path | None = None,
) -> RollbackResult:
    """Undo imports: one of `last_hours`, `since`/`until` (dates are inclusive, whole UTC days),
    `industry`, `import_id`, or `reset=True` to empty the database.

    Shows nothing and changes nothing with `dry_run=True` (the result holds the plan). Otherwise it
    needs `yes=True` or a `confirm(question)` that returns True (ConfirmationRequired if neither),
    takes a backup (unless `backup=False`) and applies the rollback in one transaction (on D1, in
    requests that each fit its time limit). A rollback that stopped part way is finished by the same
    call again, and refuses any other until then. A reset refuses while an import is running.
    """
    began = time.perf_counter()
    started_at = ledger_time()
    stopped = _rollback_sql.unfinished(target)
    if stopped is not None:
        given = {"last_hours": last_hours, "since": since, "until": until, "dry_run": dry_run}
        given.update(industry=industry, import_id=import_id, reset=reset)
        return _finish_stopped(target, stopped, _asked(given), yes=yes, confirm=confirm, began=began)
    selection = _select(target, last_hours, since, until, industry, import_id, reset)
    if selection.strategy == "reset" and not dry_run:
        _ledger.refuse_while_importing(target, "rollback reset")
    result = _planned(target, selection, dry_run)
    if result.status == "planned":
        require_confirmation(
            f"Roll back {selection.description}?\n{result.plan()}\nA backup is taken first. Go ahead?",
            f"rolling back {selection.description} removes {result.rows_removed:,} rows and restores"
            f" {result.rows_restored:,} (--dry-run shows the plan)",
            yes=yes,
            confirm=confirm,
        )
        if backup:
            result.backup_path = str(take_backup(target, backups_dir=backups_dir))
        # On D1 the provider can also return the database to this moment, whatever the local backup.
        result.bookmark = target.bookmark()
        _apply(target, selection, result, started_at)
    result.seconds = time.perf_counter() - began
    return result


def _planned(target: Target, selection: Selection, dry_run: bool) -> RollbackResult:
    """What the rollback would undo, as the database is now: a dry run's answer, "nothing" to do, or the
    plan to confirm and apply."""
    imports, rows = _rollback_sql.plan(target, selection)
    nothing = not imports and not rows
    if selection.strategy == "reset":
        nothing = nothing and not target.scalar("SELECT COUNT(*) FROM ef_before_images")
    status: RollbackStatus = "dry_run" if dry_run else "nothing" if nothing else "planned"
    return RollbackResult(
        strategy=selection.strategy,
        arguments=selection.arguments,
        description=selection.description,
        status=status,
        imports=imports,
        rows_removed=sum(int(r["removed"]) for r in rows),
        rows_restored=sum(int(r["restored"]) for r in rows),
        by_industry_state=rows,
    )


def _apply(target: Target, selection: Selection, result: RollbackResult, started_at: str) -> None:
    """Undo the selection (see _rollback_run), with its record in `ef_rollbacks`; then `result` says
    what was done."""
    rollback_id, claim = new_id("rb"), _claims.take()
    facts = {"backup_path": result.backup_path, "bookmark": result.bookmark, "started_at": started_at}
    try:
        _rollback_run.run(target, selection, rollback_id, claim, facts)
    finally:
        _claims.release(claim)
    _fill_done(target, selection, result, rollback_id)


def _fill_done(target: Target, selection: Selection, result: RollbackResult, rollback_id: str) -> None:
    done = target.query("SELECT imports, rows_removed, rows_restored FROM ef_rollbacks WHERE id = ?", (rollback_id,))[0]
    result.rollback_id, result.status = rollback_id, "rolled_back"
    result.rows_removed, result.rows_restored = done["rows_removed"], done["rows_restored"]
    if selection.strategy != "reset":
        result.imports = ledger_rows(target, f"id {IN_JSON}", (done["imports"],))


def _asked(given: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """(strategy, arguments) as a rollback's row records them, for the keyword arguments of a call;
    None for a dry run, which finishes nothing."""
    if given["dry_run"]:
        return None
    if given["reset"]:
        return "reset", {}
    if given["import_id"] is not None:
        return "import", {"import_id": given["import_id"]}
    if given["industry"] is not None:
        return "industry", {"industry": given["industry"].strip().lower()}
    if given["last_hours"] is not None:
        return "last", {"hours": given["last_hours"]}
    since, until = given["since"], given["until"]
    return "date", {"since": None if since is None else str(since), "until": None if until is None else str(until)}


def _finish_stopped(
    target: Target,
    stopped: dict[str, Any],
    asked: tuple[str, dict[str, Any]] | None,
    *,
    yes: bool,
    confirm: Confirm | None,
    began: float,
) -> RollbackResult:
    """Take up the rollback that stopped part way (or refuse while it runs, or when this call asks for
    another), finish it, and say what it did."""
    strategy, arguments = stopped["strategy"], json.loads(stopped["arguments"])
    described = f"rollback {stopped['id']} ({strategy} {json.dumps(arguments)}, started {stopped['started_at']})"
    if not _claims.is_stale(stopped["claim"], stopped["claim_owner"], stopped["heartbeat_at"]):
        holder = _claims.describe(stopped["claim_owner"], stopped["heartbeat_at"])
        raise EstateFlowError(f"{described} is running ({holder}); let it finish, then run this again")
    if asked is None or (strategy, arguments) != (asked[0], json.loads(json.dumps(asked[1]))):
        raise EstateFlowError(
            f"{described} stopped part way: run that rollback again (the same command, without --dry-run)"
            " to finish it first"
        )
    require_confirmation(
        f"{described} stopped part way. Finish it?",
        f"finishing {described} (--dry-run shows nothing of it)",
        yes=yes,
        confirm=confirm,
    )
    selection = Selection(
        strategy,
        arguments,
        f"{strategy} {json.dumps(arguments)}",
        import_ids=json.loads(stopped["imports"]) if strategy in ("last", "date", "import") else [],
        industry=arguments.get("industry"),
    )
    claim = _claims.take()
    try:
        target.execute([_take_over(stopped, claim)])
        if target.scalar("SELECT claim FROM ef_rollbacks WHERE id = ?", (stopped["id"],)) != claim:
            raise EstateFlowError(f"{described} was taken up by another run meanwhile; let it finish")
        _rollback_run.run(target, selection, stopped["id"], claim, {}, resumed=stopped)
    finally:
        _claims.release(claim)
    result = RollbackResult(
        strategy=strategy,
        arguments=arguments,
        description=f"the rollback that stopped part way ({strategy} {json.dumps(arguments)})",
        status="rolled_back",
        imports=[],
        rows_removed=0,
        rows_restored=0,
        by_industry_state=[],
        backup_path=stopped["backup_path"],
        bookmark=stopped["bookmark"],
    )
    _fill_done(target, selection, result, stopped["id"])
    result.seconds = time.perf_counter() - began
    return result


def _take_over(stopped: dict[str, Any], claim: str) -> Sql:
    """The stopped rollback, held by this run, if nobody took it since it was read."""
    return Sql(
        "UPDATE ef_rollbacks SET claim = ?, claim_owner = ?, heartbeat_at = ? WHERE id = ? AND claim IS ?"
        " AND finished_at IS NULL",
        (claim, _claims.owner(), ledger_time(), stopped["id"], stopped["claim"]),
    )


# --- plan first, then carry out exactly that plan ----------------------------------------------------

PLAN_CHANGED = "the database changed since the plan was shown, so nothing was rolled back: plan again"


@dataclass(frozen=True)
class RollbackPlan:
    """A rollback worked out and shown before anything changes: `shown` is the plan (a dry run's
    result), and `fingerprint` a digest of exactly what it would undo: the imports (their ledger rows)
    and the rows (the ids of the rows it would remove or restore and of the earlier values it would put
    back). `apply` carries it out only while the database still gives the same fingerprint."""

    url: str
    arguments: dict[str, Any]  # the rollback's strategy, as `rollback(...)` takes it
    shown: RollbackResult
    fingerprint: str

    @property
    def empty(self) -> bool:
        """Nothing to roll back."""
        return not (self.shown.imports or self.shown.by_industry_state)

    def _repr_html_(self) -> str:
        from ._display import plan_html

        return plan_html(self)

    def to_frame(self) -> pd.DataFrame:
        """The rows the plan would remove and restore, by industry and state."""
        return self.shown.to_frame()

    def __repr__(self) -> str:
        shown = self.shown
        return (
            f"<RollbackPlan of {visible(shown.description)}: would remove {shown.rows_removed:,} rows, restore"
            f" {shown.rows_restored:,}, {plural(len(shown.imports), 'import')}; fingerprint {self.fingerprint[:12]}>"
        )

    def apply(self, target: Target, *, backups_dir: str | Path | None = None, backup: bool = True) -> RollbackResult:
        """Roll back exactly this plan, a backup first. Refused, nothing changed (ConfirmationRequired),
        on another database or when the database no longer gives this plan's fingerprint."""
        if target.url != self.url:
            raise ConfirmationRequired(f"this plan is for {self.url}, not {target.url}: plan again", flag="a new plan")
        if plan_rollback(target, **self.arguments).fingerprint != self.fingerprint:
            raise ConfirmationRequired(PLAN_CHANGED, flag="a new plan")
        try:
            return rollback(
                target, **self.arguments, confirm=self.shown.confirms, backup=backup, backups_dir=backups_dir
            )
        except ConfirmationRequired:  # it changed between the fingerprint and the rollback's own plan
            raise ConfirmationRequired(PLAN_CHANGED, flag="a new plan") from None


def plan_rollback(
    target: Target,
    *,
    last_hours: float | None = None,
    since: str | date | datetime | None = None,
    until: str | date | datetime | None = None,
    industry: str | None = None,
    import_id: str | None = None,
    reset: bool = False,
) -> RollbackPlan:
    """What rolling back (one of `last_hours`, `since`/`until`, `industry`, `import_id` or `reset`)
    would undo, as a plan to show and then `apply`. Nothing is changed."""
    given = {"last_hours": last_hours, "since": since, "until": until, "industry": industry, "import_id": import_id}
    arguments: dict[str, Any] = {k: v for k, v in given.items() if v is not None} | ({"reset": True} if reset else {})
    selection = _select(target, last_hours, since, until, industry, import_id, reset)
    shown = rollback(target, **arguments, dry_run=True)
    digest = hashlib.sha256()
    digest.update(json.dumps([target.url, shown.imports, shown.by_industry_state], default=str).encode())
    for rows in _touched(target, selection):
        digest.update(json.dumps(rows, default=str).encode())
    return RollbackPlan(target.url, arguments, shown, digest.hexdigest())


def _touched(target: Target, selection: Selection) -> list[list[dict[str, Any]]]:
    """Digests of the rows a rollback would touch: each of (rows, earlier values), as count, sum and
    sum of squares of their ids, which change when any one of them is added, removed or replaced."""
    digest = "COUNT(*) AS n, TOTAL(id) AS ids, TOTAL(id * id) AS squares, MAX(id) AS top"
    if selection.strategy == "reset":
        rows, images = "1 = 1", "1 = 1"
        params: tuple[Any, ...] = ()
    elif selection.industry is not None:
        live = "import_id IN (SELECT id FROM ef_imports WHERE status != 'rolled_back')"
        rows, images = f"industry = ? AND {live}", f"industry = ? AND {live}"
        params = (selection.industry,)
    else:
        rows, images = f"import_id {IN_JSON}", f"(by_import {IN_JSON} OR import_id {IN_JSON})"
        params = (json.dumps(selection.import_ids),)
    image_params = params * images.count("?")
    return [
        target.query(f"SELECT {digest} FROM professionals WHERE {rows}", params),
        target.query(f"SELECT {digest} FROM ef_before_images WHERE {images}", image_params),
    ]
