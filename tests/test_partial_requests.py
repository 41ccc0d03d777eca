"""D1 as its REST contract allows it to be: a batch request applied whole, in part, or twice.

The local engine runs in its non-atomic mode (each statement of a batch committed as it runs) and
loses the answer of one request after applying its first k statements (tests/d1_engine/modes.mjs).
The client cannot tell and sends the request again. For every k, imports and rollbacks must end
with exactly the rows, the ledger and the rollback records of a clean run on SQLite, and verify's
first check (COUNT(*) = SUM(inserted - removed)) must agree.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from estateflow_nb import (
    ConfirmationRequired,
    EstateFlowError,
    ImportFailedError,
    TooLargeError,
    _claims,
    _retry,
    _rollback_run,
    connect,
    generate_records,
    import_file,
    rollback,
    verify,
)
from estateflow_nb._forwarding import Forwarding
from estateflow_nb._time import ledger_time
from estateflow_nb.errors import AuthError, TransientError
from estateflow_nb.targets import ExecuteResult, InsertRows, Limits, Sql, Statement, Target

from .conftest import count, ledger_balances, snapshot, write_csv
from .d1_fixtures import FaultyTransport, LocalD1Engine, envelope_error
from .d1_modes import Modes
from .test_d1_faults import d1_with

LEDGER = "SELECT source_path, status, inserted, updated, skipped, rejected, removed, checkpoint FROM ef_imports"


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_retry, "SLEEP", lambda seconds: None)


def ledger(target: Target) -> list[dict[str, Any]]:
    return target.query(f"{LEDGER} ORDER BY rowid")


def rollbacks(target: Target) -> list[tuple[Any, ...]]:
    rows = target.query("SELECT strategy, rows_removed, rows_restored, finished_at IS NOT NULL FROM ef_rollbacks")
    return [tuple(r.values()) for r in rows]


# --- the scenarios: each a list of steps, run the same on SQLite and on D1 ------------------------------


def import_scenario(tmp_path: Path, mode: str) -> list[tuple[str, Path, dict[str, Any]]]:
    """An earlier import of 3 records, then 30 records in batches of 10: a reject in the first batch,
    a license twice (batches 1 and 2), and the earlier 3 in batch 3 (skipped or updated)."""
    rows = list(generate_records(33, seed=3))
    rows[4]["email"] = "not-an-email"
    rows[17]["license_number"] = rows[2]["license_number"]
    later = [{**r, "city": "Key West"} for r in rows[30:]]
    steps = [("import", write_csv(tmp_path / "earlier.csv", rows[30:]), {"batch_size": 10})]
    if mode == "fail":  # nothing there yet that the file has
        steps = []
    body = rows[:27] + (later if mode != "fail" else list(generate_records(3, seed=4, start=500)))
    steps.append(("import", write_csv(tmp_path / "pros.csv", body), {"batch_size": 10, "on_conflict": mode}))
    return steps


def chain_scenario(tmp_path: Path) -> list[tuple[str, Path, dict[str, Any]]]:
    """A inserts 12 rows, B rewrites the city of 8 of them and adds 2, C rewrites 4 of B's 8 again:
    undoing B leaves C's rows with C's values and makes A's values C's before-images."""
    rows = list(generate_records(14, seed=9))
    b = [{**r, "city": "Bville"} for r in rows[:8]] + rows[12:14]
    c = [{**r, "city": "Cville"} for r in rows[:4]]
    return [
        ("import", write_csv(tmp_path / "a.csv", rows[:12]), {"batch_size": 20}),
        ("import", write_csv(tmp_path / "b.csv", b), {"batch_size": 20, "on_conflict": "update"}),
        ("import", write_csv(tmp_path / "c.csv", c), {"batch_size": 20, "on_conflict": "update"}),
    ]


def play(target: Target, steps: list[tuple[str, Path, dict[str, Any]]]) -> list[str]:
    return [import_file(target, path, **options).import_id or "" for _, path, options in steps]


def end_state(target: Target) -> tuple[Any, ...]:
    """The table (each row's values, with its import as its place in the ledger), the ledger, the
    rollbacks, and whether verify's first check holds: what two runs of one scenario must share."""
    order = {r["id"]: n for n, r in enumerate(target.query("SELECT id FROM ef_imports ORDER BY rowid"))}
    table = {license: (*row[1:-2], order.get(row[-2])) for license, row in snapshot(target).items()}
    return table, ledger(target), rollbacks(target), ledger_balances(target)


@pytest.fixture
def fresh_d1(d1_engine: LocalD1Engine, d1_env: dict[str, str], engine_modes: Modes) -> Iterator[Any]:
    """fresh_d1(rows=()) -> a database of the local engine holding `rows` (see `tables`), which then runs
    batches item by item."""
    opened: list[Target] = []

    def fresh(rows: Sequence[InsertRows] = ()) -> Target:
        engine_modes.set()
        d1_engine.wipe()
        target = connect(d1_engine.url(), create=True)
        if rows:
            target.execute(rows)
        opened.append(target)
        engine_modes.set(atomic=False)
        return target

    yield fresh
    for target in opened:
        target.close()


# --- imports ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("last", [False, True], ids=["middle batch", "last batch with the finish"])
@pytest.mark.parametrize("mode", ["skip", "update", "fail"])
def test_every_prefix_of_a_batch_sent_again_ends_exact(
    mode: str, last: bool, tmp_path: Path, fresh_d1: Any, engine_modes: Modes
) -> None:
    steps = import_scenario(tmp_path, mode)
    with connect(f"sqlite:///{tmp_path / 'clean.db'}", create=True) as clean:
        play(clean, steps)
        expected, clean_rejects = end_state(clean), rejects_of(clean)
    assert expected[3] and clean_rejects
    # Batch 2 of the import: guard, (before-images), INSERT, guard, settle, checkpoint. The last batch (3)
    # also completes the import: settle, complete, read the ledger row back. Sent again once the
    # completion is in, its guard stops it and the import reads that it is complete.
    items = 5 + (mode == "update") + (3 if last else 0)
    for applied in range(items + 1):
        target = fresh_d1()
        play(target, steps[:-1])
        fault = {"match": "INSERT INTO professionals", "skip": 2 if last else 1, "apply": applied}
        engine_modes.set(atomic=False, faults=[fault])
        play(target, steps[-1:])
        assert engine_modes.now()["lost"] == 1, "the answer was lost once, and the batch sent again"
        assert engine_modes.now()["last_items"] == items
        assert end_state(target) == expected, f"after {applied} statements applied, then the batch again"
        assert verify(target, benchmarks=False).checks[0].passed
        assert rejects_of(target) == clean_rejects


def rejects_of(target: Target) -> bytes:
    """The rejects file of the newest import."""
    path = target.scalar("SELECT rejects_path FROM ef_imports ORDER BY rowid DESC LIMIT 1")
    return Path(path).read_bytes() if Path(path).exists() else b""


def test_a_batch_that_stops_part_way_leaves_counts_that_balance(
    tmp_path: Path, fresh_d1: Any, engine_modes: Modes
) -> None:
    """--on-conflict fail meets a license of another import in the second piece of a batch: the first
    piece is in (item by item), and the ledger counts it, before the import stops; rolled back, it is
    all gone."""
    taken = list(generate_records(1, seed=2, start=900))
    rows = list(generate_records(700, seed=2))
    rows[650]["license_number"] = taken[0]["license_number"]  # far enough to be in a later piece
    target = fresh_d1()
    import_file(target, write_csv(tmp_path / "taken.csv", taken))
    with pytest.raises(ImportFailedError, match="is already in the table") as caught:
        import_file(target, write_csv(tmp_path / "pros.csv", rows), batch_size=700, on_conflict="fail")
    stopped = caught.value.result
    (row,) = target.query("SELECT * FROM ef_imports WHERE id = ?", (stopped.import_id,))
    assert row["checkpoint"] == 0 and 0 < row["inserted"] < 650 and row["status"] == "failed"
    assert ledger_balances(target) and verify(target, benchmarks=False).checks[0].passed
    rollback(target, import_id=stopped.import_id, yes=True, backup=False)
    assert ledger_balances(target) and target.scalar("SELECT COUNT(*) FROM professionals") == 1


# --- rollbacks ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", ["middle", "industry", "reset"])
def test_every_prefix_of_a_rollback_sent_again_ends_exact(
    strategy: str, tmp_path: Path, fresh_d1: Any, engine_modes: Modes
) -> None:
    steps = chain_scenario(tmp_path)

    def undo(target: Target, ids: list[str]) -> None:
        chosen = {"middle": {"import_id": ids[1]}, "industry": {"industry": "mortgage"}, "reset": {"reset": True}}
        rollback(target, yes=True, backup=False, **chosen[strategy])

    with connect(f"sqlite:///{tmp_path / 'clean.db'}", create=True) as clean:
        undo(clean, play(clean, steps))
        expected = end_state(clean)
    assert expected[2][0][1] > 0  # the rollback removed rows
    target = fresh_d1()
    ids = play(target, steps)
    before = tables(target)
    tried = 0
    for request in itertools.count():  # each request of the rollback (it writes its row in each)
        items = None
        for applied in itertools.count():
            target = fresh_d1(before)
            engine_modes.set(atomic=False, faults=[{"match": "ef_rollbacks", "skip": request, "apply": applied}])
            undo(target, ids)
            now = engine_modes.now()
            assert end_state(target) == expected, f"request {request + 1}: {applied} of {items} applied, then again"
            assert target.scalar("SELECT COUNT(*) FROM ef_rollback_work") == 0
            if not now["lost"]:  # the rollback has no more requests
                assert tried > 8
                return
            items, tried = now["last_items"], tried + 1
            if applied == items:
                break


def tables(target: Target) -> list[InsertRows]:
    """Every row of the database, as the statements that put them back."""
    kept = []
    for table in ("professionals", "ef_imports", "ef_before_images", "ef_rollbacks"):
        rows = target.query(f"SELECT * FROM {table}")
        if rows:
            kept.append(InsertRows(table, list(rows[0]), [tuple(r.values()) for r in rows]))
    return kept


class StopAt(FaultyTransport):
    """The local engine, with a refused token on the `at`-th request that names `match`: the rollback
    stops there, part way."""

    def __init__(self, match: str, at: int) -> None:
        super().__init__({at: ("before", envelope_error(401, 10000, "Authentication error"))}, match=match)


def test_a_rollback_in_spans_that_stops_is_finished_by_the_same_command(
    tmp_path: Path, fresh_d1: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_rollback_run, "SPAN_ROWS", 3)
    steps = chain_scenario(tmp_path)
    with connect(f"sqlite:///{tmp_path / 'clean.db'}", create=True) as clean:
        ids = play(clean, steps)
        rollback(clean, import_id=ids[1], yes=True, backup=False)
        expected = end_state(clean)
    target = fresh_d1()
    ids = play(target, steps)
    licenses = [r["license_number"] for r in target.query("SELECT license_number FROM professionals ORDER BY 1")]
    # Spans of three rows: the third span's request is refused, and the rollback stops there.
    with d1_with(target.url, StopAt("filled_upto", 3)) as stopping, pytest.raises(EstateFlowError, match="refused"):
        rollback(stopping, import_id=ids[1], yes=True, backup=False)
    (record,) = target.query("SELECT * FROM ef_rollbacks")
    assert record["finished_at"] is None and record["applied_upto"] == licenses[5]
    with pytest.raises(EstateFlowError, match="stopped part way: run that rollback again"):
        rollback(target, import_id=ids[0], yes=True, backup=False)
    with pytest.raises(EstateFlowError, match="stopped part way"):
        rollback(target, import_id=ids[1], dry_run=True)
    # While another machine's run holds it (it wrote a moment ago), nobody else takes it up.
    target.execute(
        [Sql("UPDATE ef_rollbacks SET claim_owner = 'elsewhere/0000 4242 -', heartbeat_at = ?", (ledger_time(),))]
    )
    with pytest.raises(EstateFlowError, match=r"is running \(process 4242 on elsewhere"):
        rollback(target, import_id=ids[1], yes=True, backup=False)
    target.execute([Sql("UPDATE ef_rollbacks SET heartbeat_at = '2001-01-01T00:00:00Z'")])
    done = rollback(target, import_id=ids[1], yes=True, backup=False)
    assert done.rollback_id == record["id"] and done.status == "rolled_back"
    assert (done.rows_removed, done.rows_restored) == (expected[2][0][1], expected[2][0][2])
    assert end_state(target) == expected


class Ceiling(Forwarding):
    """A target of the local engine that refuses as too large any request over `rows` (records of an
    import, or rows changed by a rollback's request), after applying it: the worst D1's storage reset
    allows. With `seconds_per_row`, it says each request took that long a row, as D1's meta.duration."""

    def __init__(self, inner: Target, rows: int, seconds_per_row: float | None = None) -> None:
        super().__init__(inner)
        self.rows, self.seconds_per_row = rows, seconds_per_row
        self.sizes: list[int] = []

    def execute(self, statements: Sequence[Statement], *, before_commit: Any = None) -> ExecuteResult:
        outcome = self.inner.execute(statements, before_commit=before_commit)
        records = sum(len(s.rows) for s in statements if isinstance(s, InsertRows))
        spans = any("filled_upto" in getattr(s, "text", "") for s in statements)
        if not records and not spans:
            return outcome  # the ledger's own small writes
        size = records or sum(outcome.changes)
        self.sizes.append(size)
        if size > self.rows:
            raise TooLargeError("D1: storage operation exceeded timeout which caused object to be reset")
        if self.seconds_per_row is not None:
            outcome.server_seconds = self.seconds_per_row * size
        return outcome


def test_a_request_too_large_goes_again_in_halves_and_ends_exact(
    tmp_path: Path, fresh_d1: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_rollback_run, "SPAN_ROWS", 400)
    # 501 records in batches of 500: the first batch is not the last, whose request completes the import.
    rows = list(generate_records(501, seed=5))
    updated = [{**r, "city": "Key West"} for r in rows[:300]]
    a, b = write_csv(tmp_path / "a.csv", rows), write_csv(tmp_path / "b.csv", updated)
    with connect(f"sqlite:///{tmp_path / 'clean.db'}", create=True) as clean:
        first = import_file(clean, a, batch_size=500)
        import_file(clean, b, batch_size=500, on_conflict="update")
        rollback(clean, import_id=first.import_id, yes=True, backup=False)
        expected = end_state(clean)
    target = fresh_d1()
    ceiling = Ceiling(target, rows=120)
    logged: list[str] = []
    first = import_file(ceiling, a, batch_size=500, log=logged.append)
    # 500 refused (and applied), then halves until one fits; then half again per request that fits.
    assert ceiling.sizes[:6] == [500, 250, 125, 62, 94, 142]
    assert any("sending 250 records a request instead of 500" in line for line in logged)
    # The refused request was applied whole (checkpoint included): the parts sent after it add nothing.
    assert (first.inserted, first.records_read, first.batches) == (501, 501, 2)
    assert first.status == "completed"
    import_file(ceiling, b, batch_size=500, on_conflict="update")
    ceiling.sizes.clear()
    rollback(ceiling, import_id=first.import_id, yes=True, backup=False)
    assert max(ceiling.sizes) > 120 and len(ceiling.sizes) > 2  # a span refused, and smaller ones sent
    assert end_state(target) == expected


def test_a_last_request_refused_as_too_large_after_it_was_applied_ends_completed(tmp_path: Path, fresh_d1: Any) -> None:
    """The last batch's request completes the import; D1 may still say it was too large after applying it
    whole. The import reads that it is complete instead of sending halves its guard would stop."""
    source = write_csv(tmp_path / "p.csv", generate_records(200, seed=7))
    ceiling = Ceiling(fresh_d1(), rows=100)
    result = import_file(ceiling, source, batch_size=200)
    assert ceiling.sizes == [200]
    assert (result.status, result.inserted, result.records_read, result.batches) == ("completed", 200, 200, 1)


def test_requests_are_sized_by_the_time_the_target_says_they_took(tmp_path: Path, fresh_d1: Any) -> None:
    """At 20 ms a record a request of 2,000 takes 40 s, past D1's 30: the next ones aim at a quarter of
    the limit (7.5 s, 375 records), each with its own checkpoint."""
    timed = Ceiling(fresh_d1(), rows=10_000, seconds_per_row=0.02)
    done: list[int] = []
    source = write_csv(tmp_path / "p.csv", generate_records(3_000, seed=6))
    result = import_file(timed, source, batch_size=2_000, progress=lambda m: done.append(m.done))
    assert timed.sizes == [2_000, 375, 375, 250]
    assert done == [2_000, 2_375, 2_750, 3_000]
    assert result.inserted == 3_000 and result.batches == 4


# --- the same rules on a SQLite file whose requests have a time limit -----------------------------------
# In this process, where mutation testing sees them: the rollback in spans, request by request, as on
# D1, each request whole (SQLite's transaction) or not at all.


class InRequests(Forwarding):
    """A SQLite file seen as a target whose requests have a time limit, as D1's have: a rollback goes in
    spans, one request each (_rollback_run). `faults` says what befalls the request of a rollback with
    that number (1, 2, ...): "lost" (applied, then its answer lost: sent again), "part k" (its first k
    statements applied, each committed alone, as D1 may apply a batch, then its answer lost), "refused" (an error
    that is not retried, before it is applied: the rollback stops there) or "too large" (refused for its
    size, before it is applied). With `seconds_per_row`, each request says it took that long a row."""

    def __init__(self, inner: Target, faults: dict[int, str] | None = None, seconds_per_row: float = 0.0) -> None:
        super().__init__(inner)
        self.limits = Limits(max_params=100, max_sql_bytes=100_000, max_query_seconds=30.0)
        self.faults, self.seconds_per_row = dict(faults or {}), seconds_per_row
        self.requests: list[int] = []  # the rows each request of a rollback changed
        self.texts: list[str] = []  # every statement of the rollback
        self.whole = False  # whether a "part k" fault applied every statement of its request

    def execute(self, statements: Sequence[Statement], *, before_commit: Any = None) -> ExecuteResult:
        if not any("ef_rollbacks" in getattr(s, "text", "") for s in statements):
            return self.inner.execute(statements, before_commit=before_commit)  # an import's
        fault = self.faults.pop(len(self.requests) + 1, None)
        self.texts += [getattr(s, "text", "") for s in statements]
        if fault == "refused":
            raise AuthError("injected: the token was refused")
        if fault == "too large":
            self.requests.append(-1)
            raise TooLargeError("injected: too large")
        if fault is not None and fault.startswith("part "):  # its first statements land, each on its own
            applied = statements[: int(fault.split()[1])]
            self.whole = len(applied) == len(statements)
            for statement in applied:
                self.inner.execute([statement])
            raise TransientError("injected: applied in part, and the answer was lost")
        outcome = self.inner.execute(statements, before_commit=before_commit)
        self.requests.append(sum(outcome.changes))
        outcome.server_seconds = self.seconds_per_row * sum(outcome.changes) or None
        if fault == "lost":
            raise TransientError("injected: the answer was lost")
        return outcome


STRATEGIES: dict[str, Any] = {
    "first": lambda ids: {"import_id": ids[0]},
    "middle": lambda ids: {"import_id": ids[1]},
    "last": lambda ids: {"import_id": ids[2]},
    "two": lambda ids: {"since": "2000-01-01"},
    "recent": lambda ids: {"last_hours": 1},
    "window": lambda ids: {"since": "2000-01-01", "until": "2100-12-31"},
    "until": lambda ids: {"until": "2100-12-31"},
    "industry": lambda ids: {"industry": "mortgage"},
    "reset": lambda ids: {"reset": True},
}


def clean_end(tmp_path: Path, strategy: str) -> tuple[Any, ...]:
    """The end of the chain scenario rolled back in one transaction."""
    with connect(f"sqlite:///{tmp_path / 'clean.db'}", create=True) as clean:
        ids = play(clean, chain_scenario(tmp_path))
        rollback(clean, yes=True, backup=False, **STRATEGIES[strategy](ids))
        return end_state(clean)


@pytest.mark.parametrize("strategy", list(STRATEGIES))
@pytest.mark.parametrize("span", [1, 3, 20_000])
def test_a_rollback_in_requests_ends_as_one_transaction_would(
    strategy: str, span: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_rollback_run, "SPAN_ROWS", span)
    expected = clean_end(tmp_path, strategy)
    with connect(f"sqlite:///{tmp_path / 'spans.db'}", create=True) as inner:
        target = InRequests(inner)
        ids = play(target, chain_scenario(tmp_path))
        done = rollback(target, yes=True, backup=False, **STRATEGIES[strategy](ids))
        assert end_state(inner) == expected
        assert (done.rows_removed, done.rows_restored) == expected[2][0][1:3]
        assert inner.scalar("SELECT COUNT(*) FROM ef_rollback_work") == 0
    # Few rows go in one request; spans of one row in one request each, and one more to finish.
    if span == 20_000:
        assert len(target.requests) == (1 if strategy != "reset" else 3)
    elif span == 1 and strategy != "reset":
        assert len(target.requests) >= 12


@contextlib.contextmanager
def rolled_back(
    path: Path, steps: list[tuple[str, Path, dict[str, Any]]], strategy: str, faults: dict[int, str]
) -> Iterator[tuple[Target, InRequests]]:
    """(the SQLite file, the target in requests) after `steps` and then the rollback `strategy`, with
    `faults` befalling its requests."""
    with connect(f"sqlite:///{path}", create=True) as inner:
        ids = play(inner, steps)
        target = InRequests(inner, faults)
        rollback(target, yes=True, backup=False, **STRATEGIES[strategy](ids))
        yield inner, target


# Spans that give each of these rollbacks several requests (the industry's touches few rows).
SPANS = {"middle": 3, "industry": 1, "reset": 3, "recent": 4, "window": 4, "two": 4, "until": 4}


@pytest.mark.parametrize("strategy", ["middle", "industry", "reset"])
def test_every_request_of_a_rollback_whose_answer_is_lost_is_sent_again_and_ends_exact(
    strategy: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_rollback_run, "SPAN_ROWS", SPANS[strategy])
    expected = clean_end(tmp_path, strategy)
    steps = chain_scenario(tmp_path)
    for request in itertools.count(1):
        with rolled_back(tmp_path / f"lost-{request}.db", steps, strategy, {request: "lost"}) as (inner, target):
            assert end_state(inner) == expected, f"the answer of request {request} lost"
            if target.faults:  # the rollback had fewer requests
                assert request > 4
                return


@pytest.mark.parametrize("strategy", list(SPANS))
def test_a_rollback_that_stops_at_any_request_is_finished_by_the_same_call(
    strategy: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_rollback_run, "SPAN_ROWS", SPANS[strategy])
    expected = clean_end(tmp_path, strategy)
    steps = chain_scenario(tmp_path)
    for request in itertools.count(2):  # the first request starts it: refused, nothing happened
        with connect(f"sqlite:///{tmp_path / f'stop-{request}.db'}", create=True) as inner:
            ids = play(inner, steps)
            chosen = STRATEGIES[strategy](ids)
            target = InRequests(inner, {request: "refused"})
            try:
                rollback(target, yes=True, backup=False, **chosen)
            except EstateFlowError as error:
                assert "refused" in str(error)
            else:
                assert request > 4  # the rollback had fewer requests
                return
            (stopped,) = inner.query("SELECT * FROM ef_rollbacks")
            assert stopped["finished_at"] is None
            described = (
                f"rollback {stopped['id']} ({stopped['strategy']} {stopped['arguments']},"
                f" started {stopped['started_at']})"
            )
            with pytest.raises(EstateFlowError) as other:
                rollback(target, import_id=ids[0], yes=True, backup=False)
            assert str(other.value) == (
                f"{described} stopped part way: run that rollback again (the same command, without --dry-run)"
                " to finish it first"
            )
            with pytest.raises(EstateFlowError, match="stopped part way"):
                rollback(target, dry_run=True, **chosen)
            asked: list[str] = []
            with pytest.raises(ConfirmationRequired) as unconfirmed:
                rollback(target, confirm=lambda q, asked=asked: asked.append(q) or False, **chosen)
            assert asked == [f"{described} stopped part way. Finish it?"]
            assert str(unconfirmed.value) == (
                f"finishing {described} (--dry-run shows nothing of it): confirm interactively or pass --yes"
            )
            # While a run on another machine holds it (its heartbeat is fresh), nobody else takes it up.
            held = "UPDATE ef_rollbacks SET claim = 'c', claim_owner = 'elsewhere/0000 4242 -', heartbeat_at = ?"
            inner.execute([Sql(held, (ledger_time(),))])
            with pytest.raises(EstateFlowError) as running:
                rollback(target, yes=True, backup=False, **chosen)
            assert str(running.value) == (
                f"{described} is running (process 4242 on elsewhere, last write"
                f" {inner.scalar('SELECT heartbeat_at FROM ef_rollbacks')}); let it finish, then run this again"
            )
            # Its first run's backup and bookmark are what the finished rollback reports.
            gone = "UPDATE ef_rollbacks SET heartbeat_at = '2001-01-01T00:00:00Z', backup_path = 'b.db', bookmark = 'm'"
            inner.execute([Sql(gone)])
            # Taken up by another run between the read of its row and the take-over: this one stops.
            with pytest.raises(EstateFlowError) as meanwhile:
                rollback(Snatched(target), yes=True, backup=False, **chosen)
            assert str(meanwhile.value) == f"{described} was taken up by another run meanwhile; let it finish"
            inner.execute([Sql(gone)])  # and that run is gone too
            began = time.perf_counter()
            if request % 2:
                done = rollback(target, confirm=lambda q: True, backup=False, **chosen)
            else:
                done = rollback(target, yes=True, backup=False, **chosen)
            took = time.perf_counter() - began
            assert (done.rollback_id, done.status) == (stopped["id"], "rolled_back")
            assert (done.strategy, done.arguments) == (stopped["strategy"], json.loads(stopped["arguments"]))
            what = f"{stopped['strategy']} {stopped['arguments']}"
            assert done.description == f"the rollback that stopped part way ({what})"
            assert (done.rows_removed, done.rows_restored) == expected[2][0][1:3]
            assert (done.backup_path, done.bookmark, done.by_industry_state) == ("b.db", "m", [])
            recorded = [] if strategy == "reset" else json.loads(inner.scalar("SELECT imports FROM ef_rollbacks"))
            assert sorted(row["id"] for row in done.imports) == sorted(recorded)
            assert 0 < done.seconds <= took
            assert inner.scalar("SELECT claim FROM ef_rollbacks") not in _claims._HELD  # given up
            assert end_state(inner) == expected, f"stopped at request {request}, then finished"


class Snatched(Forwarding):
    """A target on which another run takes up a stopped rollback just before this one would."""

    def execute(self, statements: Sequence[Statement], *, before_commit: Any = None) -> ExecuteResult:
        if any("SET claim = ?, claim_owner = ?" in getattr(s, "text", "") for s in statements):
            self.inner.execute([Sql("UPDATE ef_rollbacks SET claim = 'theirs', heartbeat_at = ?", (ledger_time(),))])
        return self.inner.execute(statements, before_commit=before_commit)


@pytest.mark.parametrize(("strategy", "request_number"), [("middle", 1), ("middle", 2), ("industry", 2)])
def test_a_request_applied_in_part_and_sent_again_ends_exact(
    strategy: str, request_number: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each prefix of a request lands (as D1's REST batch may apply part of one, decision 10), its answer
    is lost and the whole request goes again: the rollback ends as in one transaction."""
    monkeypatch.setattr(_rollback_run, "SPAN_ROWS", SPANS[strategy])
    expected = clean_end(tmp_path, strategy)
    steps = chain_scenario(tmp_path)
    for k in itertools.count(1):
        with rolled_back(tmp_path / f"part-{k}.db", steps, strategy, {request_number: f"part {k}"}) as (inner, target):
            assert end_state(inner) == expected, f"the first {k} statements of request {request_number}, then all"
            if target.whole:
                return


def test_an_import_that_lands_while_an_industry_rollback_is_stopped_is_not_undone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The imports an industry rollback may undo are those live when it began, as its row records them."""
    monkeypatch.setattr(_rollback_run, "SPAN_ROWS", 1)
    with connect(f"sqlite:///{tmp_path / 'later.db'}", create=True) as inner:
        play(inner, chain_scenario(tmp_path))
        target = InRequests(inner, {2: "refused"})
        with pytest.raises(EstateFlowError, match="refused"):
            rollback(target, yes=True, backup=False, industry="mortgage")
        later = [{**r, "industry": "mortgage"} for r in generate_records(3, seed=11, start=900)]
        landed = import_file(inner, write_csv(tmp_path / "later.csv", later))
        rollback(target, yes=True, backup=False, industry="mortgage")
        assert count(inner, "SELECT COUNT(*) FROM professionals WHERE import_id = ?", (landed.import_id,)) == 3
        assert inner.scalar("SELECT COUNT(*) FROM professionals WHERE industry = 'mortgage'") == 3


@pytest.mark.parametrize("strategy", ["middle", "reset"])
def test_a_rollback_request_refused_as_too_large_goes_again_in_halves(
    strategy: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_rollback_run, "SPAN_ROWS", 4)
    expected = clean_end(tmp_path, strategy)
    with connect(f"sqlite:///{tmp_path / 'halves.db'}", create=True) as inner:
        ids = play(inner, chain_scenario(tmp_path))
        target = InRequests(inner, {2: "too large", 3: "too large"})
        rollback(target, yes=True, backup=False, **STRATEGIES[strategy](ids))
        assert end_state(inner) == expected
        # A span of four refused, then of two, then one row: that fits, and the size grows back.
        assert target.requests[1:3] == [-1, -1]
        # Refused with nothing smaller to send: the rollback stops, to be finished by the same call.
        ids = play(inner, chain_scenario(tmp_path))
        monkeypatch.setattr(_rollback_run, "SPAN_ROWS", 1)
        stubborn = InRequests(inner, {2: "too large"})
        with pytest.raises(TooLargeError):
            rollback(stubborn, yes=True, backup=False, **STRATEGIES[strategy](ids))


@pytest.mark.parametrize(
    ("strategy", "span", "faults", "seconds", "requests"),
    [
        # Rows each request changed (-1: refused as too large), the start in the first, the finish in the last.
        ("middle", 4, {}, 0.0, [9, 8, 7, 30]),
        ("reset", 4, {}, 0.0, [5, 4, 4, 2, 4, 4, 4, 0, 4]),
        ("middle", 4, {2: "too large", 3: "too large"}, 0.0, [9, -1, -1, 2, 6, 7, 32]),
        ("reset", 4, {2: "too large", 3: "too large"}, 0.0, [5, -1, -1, 1, 2, 4, 3, 4, 4, 4, 0, 4]),
        # 14 rows said to take 140,000 s: the next requests aim at a quarter of 30 s, one row each.
        ("reset", 20_000, {}, 10_000.0, [15, *[1] * 12, 0, 4]),
        ("middle", 20_000, {}, 10_000.0, [48]),
        # 9 rows said to take 9 s: the next spans aim at 7.5 s, three rows.
        ("middle", 4, {}, 1.0, [9, 6, 5, 8, 28]),
        # The last import touches 4 rows and 4 before-images: 8 fit a span of 8 whole, not one of 7.
        ("last", 8, {}, 0.0, [28]),
        ("last", 7, {}, 0.0, [8, 6, 18]),
    ],
)
def test_the_requests_of_a_rollback_one_by_one(
    strategy: str,
    span: int,
    faults: dict[int, str],
    seconds: float,
    requests: list[int],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_rollback_run, "SPAN_ROWS", span)
    with connect(f"sqlite:///{tmp_path / 'one-by-one.db'}", create=True) as inner:
        ids = play(inner, chain_scenario(tmp_path))
        target = InRequests(inner, faults, seconds_per_row=seconds)
        rollback(target, yes=True, backup=False, **STRATEGIES[strategy](ids))
    assert target.requests == requests
    # A rollback in one request takes the whole range: no statement of it asks for a span's bounds.
    spans = any("license_number > " in text for text in target.texts)
    assert spans == (len(requests) > 1 and strategy != "reset")


def test_each_request_of_a_rollback_is_a_point_a_crash_test_can_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ESTATEFLOW_TEST_KILL_AT names `rollback` (the one transaction) or `rollback-N` (the Nth request)."""
    points: list[str | int] = []
    committing: list[str | int] = []

    def hooks(point: str | int) -> tuple[Any, Any]:
        points.append(point)
        return lambda: committing.append(point), lambda: None

    monkeypatch.setattr(_rollback_run, "kill_hooks", hooks)
    monkeypatch.setattr(_rollback_run, "SPAN_ROWS", 4)
    with connect(f"sqlite:///{tmp_path / 'points.db'}", create=True) as inner:
        ids = play(inner, chain_scenario(tmp_path))
        rollback(InRequests(inner), import_id=ids[1], yes=True, backup=False)
        assert points == committing == ["rollback-1", "rollback-2", "rollback-3", "rollback-4"]
        points.clear()
        committing.clear()
        rollback(inner, import_id=ids[2], yes=True, backup=False)
        assert points == committing == ["rollback"]  # the hook runs inside the transaction, before its commit
