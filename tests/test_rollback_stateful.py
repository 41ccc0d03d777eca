"""Imports, re-imports, rollbacks of every kind, backups and restores in any order, against a plain
Python model: for each license number, the list of writes (import, values) not undone, oldest first.

The model is the rule of rollback.py in its simplest form: a row shows its newest write, the ledger
counts it for its oldest (the inserter), and a rollback deletes writes from the lists.

The same machine runs against the local D1 engine too, as D1's REST contract allows it to behave: a
batch's statements run one by one, each committed, rollbacks go in spans of two rows, and answers are
lost after a part of a request was applied (`lose_an_answer`). The client sends the request again,
and table and ledger must still be exactly the model's. (Restore into D1 is Time Travel's, so that
machine takes no backups.)
"""

from __future__ import annotations

import copy
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from estateflow_nb import _retry, _rollback_run, backup, connect, import_file, restore, rollback
from estateflow_nb._time import ledger_time, utc_now
from estateflow_nb.targets import Sql, Target

from .conftest import write_csv
from .d1_fixtures import LocalD1Engine
from .d1_modes import Modes

INDUSTRIES = ("legal", "mortgage", "appraisal")
STATES = ("FL", "TX", "CA")
COLUMNS = ("first_name", "city", "industry", "state")

Values = tuple[str, ...]
# Few license numbers and mostly updates, so that rows pile up writes from several imports.
records = st.lists(st.tuples(st.integers(0, 4), st.integers(0, 5)), min_size=1, max_size=5)
updates = st.sampled_from([True, True, False])


def record(license_index: int, variant: int) -> dict[str, Any]:
    return {
        "first_name": f"F{variant}",
        "last_name": "Model",
        "email": f"p{license_index}@example.com",
        "license_number": f"LIC-{license_index}",
        "industry": INDUSTRIES[variant % 3],
        "state": STATES[variant % 3],
        "city": f"City{variant}",
        "created_at": "2026-01-01T00:00:00Z",
    }


def values(raw: dict[str, Any]) -> Values:
    return tuple(raw[c] for c in COLUMNS)


@dataclass
class Model:
    writes: dict[str, list[tuple[str, Values]]] = field(default_factory=dict)  # license -> live writes
    imports: dict[str, dict[str, str]] = field(default_factory=dict)  # id -> started_at, status

    def table(self) -> dict[str, tuple[Any, ...]]:
        return {lic: (*w[-1][1], w[-1][0]) for lic, w in self.writes.items() if w}

    def undo(self, dead: set[str], industry: str | None = None) -> None:
        """Delete the writes of `dead` imports (or, with `industry`, of that industry) from every list."""
        touched = set()
        for lic, writes in list(self.writes.items()):
            keep = [(i, v) for i, v in writes if i not in dead and (industry is None or v[2] != industry)]
            touched |= {i for i, _ in writes} - {i for i, _ in keep}
            self.writes[lic] = keep
            if not keep:
                del self.writes[lic]
        if industry is not None:  # an import with none of its writes left is wholly undone
            left = {i for writes in self.writes.values() for i, _ in writes}
            dead = touched - left
        for import_id in dead:
            self.imports[import_id]["status"] = "rolled_back"


class RollbackMachine(RuleBasedStateMachine):
    # Whether backups and restores are part of the game (a target that can restore a file).
    takes_backups = True

    def open_target(self) -> Target:
        return connect(f"sqlite:///{self.dir / 'db.sqlite'}", create=True)

    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="ef-stateful-"))
        self.target = self.open_target()
        self.model = Model()
        self.files: list[tuple[Path, list[dict[str, Any]]]] = []
        self.backups: list[tuple[str, Model]] = []
        self.now = utc_now()

    def teardown(self) -> None:
        self.target.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    # --- imports ----------------------------------------------------------------------------------

    def _import(self, path: Path, rows: list[dict[str, Any]], update: bool, batch: int, hours_ago: int) -> None:
        mode = "update" if update else "skip"
        result = import_file(self.target, path, on_conflict=mode, batch_size=batch)
        import_id = result.import_id or ""
        started = ledger_time(self.now - timedelta(hours=hours_ago + 0.5))
        self.target.execute([Sql("UPDATE ef_imports SET started_at = ? WHERE id = ?", (started, import_id))])
        self.model.imports[import_id] = {"started_at": started, "status": "completed"}
        seen = set()
        for raw in rows:
            lic = raw["license_number"]
            if lic in seen:
                continue  # a license twice in one file: the first occurrence counts
            seen.add(lic)
            writes = self.model.writes.setdefault(lic, [])
            if not writes or update:
                writes.append((import_id, values(raw)))

    @initialize(first=records, then=st.lists(records, min_size=2, max_size=3), hours_ago=st.integers(0, 80))
    def start_with_a_chain(
        self, first: list[tuple[int, int]], then: list[list[tuple[int, int]]], hours_ago: int
    ) -> None:
        """A first import and updates of it, so that most examples start with rows written several times."""
        self.import_records(first, False, 3, hours_ago)
        for picked in then:
            self.import_records(picked, True, 3, hours_ago)

    @rule(
        picked=records,
        update=updates,
        batch=st.sampled_from([1, 3, 10]),
        hours_ago=st.integers(0, 80),
    )
    def import_records(self, picked: list[tuple[int, int]], update: bool, batch: int, hours_ago: int) -> None:
        rows = [record(*p) for p in picked]
        path = write_csv(self.dir / f"file{len(self.files)}.csv", rows)
        self.files.append((path, rows))
        self._import(path, rows, update, batch, hours_ago)

    @precondition(lambda self: self.files)
    @rule(data=st.data(), update=updates, hours_ago=st.integers(0, 80))
    def reimport_a_file(self, data: st.DataObject, update: bool, hours_ago: int) -> None:
        path, rows = data.draw(st.sampled_from(self.files))
        self._import(path, rows, update, 3, hours_ago)

    # --- rollbacks ----------------------------------------------------------------------------------

    def _live(self) -> list[str]:
        """In the order they were made: ids are random, so sorting them would make examples unrepeatable."""
        return [i for i, info in self.model.imports.items() if info["status"] != "rolled_back"]

    def _rollback(self, expected_dead: set[str], **strategy: Any) -> None:
        before = copy.deepcopy(self.model)
        options = {"backups_dir": self.dir / "backups", "backup": self.takes_backups}
        result = rollback(self.target, yes=True, **options, **strategy)
        self.model.undo(expected_dead, strategy.get("industry"))
        if result.status == "nothing":
            assert self.model == before
        elif self.takes_backups:
            assert result.backup_path is not None
            self.backups.append((result.backup_path, before))

    @precondition(lambda self: self._live())
    @rule(data=st.data())
    def rollback_one_import(self, data: st.DataObject) -> None:
        import_id = data.draw(st.sampled_from(self._live()))
        self._rollback({import_id}, import_id=import_id)

    @precondition(lambda self: self._live())
    @rule(hours=st.integers(1, 90))
    def rollback_last_hours(self, hours: int) -> None:
        cutoff = ledger_time(utc_now() - timedelta(hours=hours))
        dead = {i for i in self._live() if self.model.imports[i]["started_at"] >= cutoff}
        self._rollback(dead, last_hours=hours)

    @precondition(lambda self: self._live())
    @rule(days_ago=st.integers(0, 4), span=st.integers(0, 2))
    def rollback_dates(self, days_ago: int, span: int) -> None:
        first = self.now.date() - timedelta(days=days_ago)
        last = first + timedelta(days=span)
        dead = {
            i for i in self._live() if first <= date.fromisoformat(self.model.imports[i]["started_at"][:10]) <= last
        }
        self._rollback(dead, since=first.isoformat(), until=last.isoformat())

    @precondition(lambda self: self.model.writes)
    @rule(industry=st.sampled_from(INDUSTRIES))
    def rollback_industry(self, industry: str) -> None:
        self._rollback(set(), industry=industry)

    @rule()
    def reset(self) -> None:
        before = copy.deepcopy(self.model)
        result = rollback(
            self.target, reset=True, yes=True, backups_dir=self.dir / "backups", backup=self.takes_backups
        )
        self.model = Model()
        if result.status != "nothing" and self.takes_backups:
            self.backups.append((result.backup_path or "", before))

    # --- backups ------------------------------------------------------------------------------------

    @precondition(lambda self: self.takes_backups)
    @rule()
    def take_backup(self) -> None:
        path = backup(self.target, backups_dir=self.dir / "backups")
        self.backups.append((str(path), copy.deepcopy(self.model)))

    @precondition(lambda self: self.backups)
    @rule(data=st.data())
    def restore_a_backup(self, data: st.DataObject) -> None:
        path, saved = data.draw(st.sampled_from(self.backups))
        result = restore(self.target, path, yes=True, backups_dir=self.dir / "backups")
        self.backups.append((result.backup_path or "", copy.deepcopy(self.model)))
        self.model = copy.deepcopy(saved)

    # --- what must hold after every step -------------------------------------------------------------

    @invariant()
    def table_equals_the_model(self) -> None:
        rows = self.target.query(f"SELECT license_number, {', '.join(COLUMNS)}, import_id FROM professionals")
        assert {r["license_number"]: tuple(r.values())[1:] for r in rows} == self.model.table()

    @invariant()
    def ledger_agrees_with_the_table(self) -> None:
        t = self.target
        ledger = {r["id"]: r for r in t.query("SELECT id, status, inserted, removed FROM ef_imports")}
        assert {i: r["status"] for i, r in ledger.items()} == {i: m["status"] for i, m in self.model.imports.items()}
        counted = {i: 0 for i in ledger}
        for writes in self.model.writes.values():
            counted[writes[0][0]] += 1  # the oldest surviving write is the inserter
        assert {i: r["inserted"] - r["removed"] for i, r in ledger.items()} == counted
        assert t.scalar("SELECT COUNT(*) FROM professionals") == sum(counted.values())
        images = sum(len(writes) - 1 for writes in self.model.writes.values())
        assert t.scalar("SELECT COUNT(*) FROM ef_before_images") == images
        assert not t.query(
            "SELECT 1 FROM ef_before_images WHERE by_import IN (SELECT id FROM ef_imports WHERE status ="
            " 'rolled_back') OR import_id IN (SELECT id FROM ef_imports WHERE status = 'rolled_back')"
        )
        assert t.scalar("SELECT COUNT(*) FROM ef_rollback_work") == 0

    @invariant()
    def no_license_twice(self) -> None:
        assert (
            self.target.scalar("SELECT COUNT(*) - COUNT(DISTINCT upper(trim(license_number))) FROM professionals") == 0
        )


def test_rollbacks_backups_and_restores_keep_table_and_ledger_exact() -> None:
    run_state_machine_as_test(
        RollbackMachine,
        settings=settings(max_examples=40, stateful_step_count=18, deadline=None, derandomize=True, database=None),
    )


class D1RollbackMachine(RollbackMachine):
    """The machine against the local D1 engine in its non-atomic mode, with answers lost on demand."""

    takes_backups = False
    engine: LocalD1Engine
    modes: Modes

    def open_target(self) -> Target:
        self.modes.set()  # no fault left over from the example before
        self.engine.wipe()
        target = connect(self.engine.url(), create=True)
        self.modes.set(atomic=False)
        return target

    @rule(
        # A batch of an import; any part of a rollback; the part of a rollback that finishes it; a reset's.
        where=st.sampled_from(["INSERT INTO professionals", "filled_upto", "undone_by", "DELETE FROM professionals"]),
        skip=st.integers(0, 2),
        applied=st.integers(0, 40),
    )
    def lose_an_answer(self, where: str, skip: int, applied: int) -> None:
        """The request after the next `skip` that `where` names applies its first `applied` statements,
        and its answer is lost; the imports and rollbacks that follow meet it."""
        self.modes.set(atomic=False, faults=[{"match": where, "skip": skip, "apply": applied}])


@pytest.mark.d1
def test_on_d1_applied_in_part_and_twice_the_end_is_exact(
    d1_engine: LocalD1Engine, d1_env: dict[str, str], engine_modes: Modes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_retry, "SLEEP", lambda seconds: None)
    monkeypatch.setattr(_rollback_run, "SPAN_ROWS", 2)
    engine_modes.set(atomic=False)
    D1RollbackMachine.engine, D1RollbackMachine.modes = d1_engine, engine_modes
    run_state_machine_as_test(
        D1RollbackMachine,
        settings=settings(max_examples=10, stateful_step_count=12, deadline=None, derandomize=True, database=None),
    )
