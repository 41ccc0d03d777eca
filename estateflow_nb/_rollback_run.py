"""Carrying out a rollback: in one transaction where the target allows, else request by request.

A target without a time limit (SQLite) gets the whole rollback as one `execute`, one transaction.
A target with one (D1: 30 seconds a request) gets it in requests that each fit: the start, then spans
of license numbers, each filled and applied in one request (see _rollback_sql), the last with the
finish. A rollback that touches few rows is one request there too. Every request is safe to send
again, so transient faults are retried; a span the target refuses as too large is sent again in
halves, growing back as requests fit (the importer's `Sizer`). If it stops part way, the rollback's
row says how far it got, and `run(..., resumed=row)` goes on from there.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from . import _rollback_sql
from ._parts import Sizer
from ._retry import with_retries
from ._rollback_sql import END, EVERYTHING, Selection, Span
from ._testing import kill_hooks
from ._time import ledger_time
from .errors import TooLargeError
from .targets import ExecuteResult, Sql, Target

# Rows a span carries to begin with, on a target with a time limit; the Sizer adjusts it.
SPAN_ROWS = 20_000


def run(
    target: Target,
    selection: Selection,
    rollback_id: str,
    claim: str,
    facts: dict[str, Any],
    *,
    resumed: dict[str, Any] | None = None,
) -> None:
    """Carry out the rollback `rollback_id`, held by `claim`: from its start, or from where its row
    `resumed` says it stopped. `facts` holds backup_path, bookmark and started_at for its row."""
    head = [] if resumed else _rollback_sql.start(selection, target, rollback_id, claim, facts)
    if target.limits.max_query_seconds is None:
        if selection.strategy == "reset":
            body = _rollback_sql.reset_finish(rollback_id, ledger_time())
        else:
            depth = _rollback_sql.max_depth(target)
            body = [
                *_rollback_sql.span_step(selection, rollback_id, depth, EVERYTHING),
                *_rollback_sql.finish(selection, rollback_id, ledger_time()),
            ]
        _send(target, [*head, *body], "rollback")
        return
    steps = _Steps(target, rollback_id, claim, head)
    if selection.strategy == "reset":
        _reset(steps)
    else:
        _spans(steps, selection, (resumed or {}).get("applied_upto") or "")


def _send(target: Target, statements: Sequence[Sql], point: str) -> ExecuteResult:
    """One request, retried while the fault is transient (every step is safe to send again)."""
    before_commit, after_commit = kill_hooks(point)
    outcome = with_retries(lambda: target.execute(statements, before_commit=before_commit))
    after_commit()
    return outcome


class _Steps:
    """The requests of one rollback, each behind its guard, the first with the start in front (it
    makes the row the guard looks for), numbered for the crash-test hook (`rollback-1`, ...)."""

    def __init__(self, target: Target, rollback_id: str, claim: str, head: list[Sql]) -> None:
        self.target, self.rollback_id, self.claim, self.head = target, rollback_id, claim, head
        self.sizer = Sizer(SPAN_ROWS, target.limits.max_query_seconds)
        self.sent = 0

    def send(self, statements: Sequence[Sql]) -> ExecuteResult:
        self.sent += 1
        guard = _rollback_sql.guard(self.rollback_id, self.claim)
        outcome = _send(self.target, [*self.head, guard, *statements], f"rollback-{self.sent}")
        self.head = []
        return outcome


def _spans(steps: _Steps, selection: Selection, done: str) -> None:
    """Fill and apply span after span from `done` on, the finish with the last."""
    target = steps.target
    whole = done == "" and _few(target, selection, steps.sizer.size)
    while True:
        size = steps.sizer.size
        span: Span = EVERYTHING if whole else (done, _boundary(target, done, size))
        last = span[1] == END
        statements = _rollback_sql.span_step(selection, steps.rollback_id, _rollback_sql.max_depth(target), span)
        if last:
            statements += _rollback_sql.finish(selection, steps.rollback_id, ledger_time())
        try:
            outcome = steps.send(statements)
        except TooLargeError:
            if not steps.sizer.too_large(size):
                raise
            whole = False
            continue
        steps.sizer.fitted(size, outcome.server_seconds)
        if last:
            return
        done = span[1]


def _boundary(target: Target, after: str, rows: int) -> str:
    """The license number `rows` rows after `after` in the table, or END when fewer are left."""
    found = target.query(
        "SELECT license_number FROM professionals WHERE license_number > ? ORDER BY license_number LIMIT 1 OFFSET ?",
        (after, rows - 1),
    )
    return str(found[0]["license_number"]) if found else END


def _few(target: Target, selection: Selection, rows: int) -> bool:
    """Whether the rows the rollback may touch fit in one span (counted from the indexes, generously:
    a row with before-images may be counted more than once)."""
    if selection.industry is not None:
        sql = (
            "SELECT (SELECT COUNT(*) FROM professionals WHERE industry = ?)"
            " + (SELECT COUNT(*) FROM ef_before_images WHERE industry = ?)"
        )
        params: tuple[Any, ...] = (selection.industry, selection.industry)
    else:
        ids = json.dumps(selection.import_ids)
        sql = (
            f"SELECT (SELECT COUNT(*) FROM professionals WHERE import_id {_rollback_sql.IN_JSON})"
            f" + (SELECT COUNT(*) FROM ef_before_images WHERE by_import {_rollback_sql.IN_JSON})"
            f" + (SELECT COUNT(*) FROM ef_before_images WHERE import_id {_rollback_sql.IN_JSON})"
        )
        params = (ids, ids, ids)
    return int(target.scalar(sql, params) or 0) <= rows


def _reset(steps: _Steps) -> None:
    """Empty the big tables a part at a time, then everything else with the finish."""
    for table in ("professionals", "ef_before_images"):
        while True:
            size = steps.sizer.size
            try:
                outcome = steps.send([_rollback_sql.reset_part(table, size)])
            except TooLargeError:
                if not steps.sizer.too_large(size):
                    raise
                continue
            steps.sizer.fitted(size, outcome.server_seconds)
            if outcome.changes[-1] < size:
                break
    steps.send(_rollback_sql.reset_finish(steps.rollback_id, ledger_time()))
