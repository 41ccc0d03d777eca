from __future__ import annotations

import json
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from estateflow_nb import (
    ConfirmationRequired,
    EstateFlowError,
    connect,
    generate_records,
    import_file,
    list_backups,
    rollback,
    verify,
)
from estateflow_nb._forwarding import Forwarding
from estateflow_nb._testing import KILL_HOOK_ENV
from estateflow_nb._time import ledger_time, utc_now
from estateflow_nb.errors import RefusedError
from estateflow_nb.rollback import _bound, chosen_strategy
from estateflow_nb.targets import Limits, Sql, SQLiteTarget, Target

from .conftest import count, invoke, ledger_balances, run_cli, snapshot, write_csv


def ago(hours: float) -> str:
    return ledger_time(utc_now() - timedelta(hours=hours))


def set_started(target: Target, import_id: str, started_at: str) -> None:
    target.execute([Sql("UPDATE ef_imports SET started_at = ? WHERE id = ?", (started_at, import_id))])


def ledger(target: Target) -> dict[str, dict[str, Any]]:
    return {row["id"]: row for row in target.query("SELECT * FROM ef_imports")}


def licenses_of(table: dict[str, tuple[Any, ...]], import_ids: set[str]) -> set[str]:
    """The rows whose newest write is by one of `import_ids` (import_id is the next-to-last column)."""
    return {license for license, row in table.items() if row[-2] in import_ids}


def without(table: dict[str, tuple[Any, ...]], licenses: set[str]) -> dict[str, tuple[Any, ...]]:
    return {k: v for k, v in table.items() if k not in licenses}


def checks_pass(target: Target) -> bool:
    return all(check.passed for check in verify(target, benchmarks=False).checks)


@dataclass
class Directory:
    """A database built from four imports, with the table as it stood after each one."""

    target: SQLiteTarget
    backups: Path
    ids: dict[str, str] = field(default_factory=dict)
    tables: dict[str, dict[str, tuple[Any, ...]]] = field(default_factory=dict)

    def load(self, name: str, records: list[dict[str, Any]], folder: Path, **options: Any) -> str:
        result = import_file(self.target, write_csv(folder / f"{name}.csv", records), **options)
        self.ids[name] = result.import_id or ""
        self.tables[name] = snapshot(self.target)
        return self.ids[name]

    def undo(self, **strategy: Any) -> Any:
        return rollback(self.target, yes=True, backups_dir=self.backups, **strategy)


@pytest.fixture
def directory(target: SQLiteTarget, tmp_path: Path) -> Directory:
    """old (20 rows, 3 days ago), mid (15, 30 hours ago), new (10, 2 hours ago), and fix (an
    --on-conflict update an hour ago that rewrites the city of 6 of old's rows and adds 4)."""
    d = Directory(target, tmp_path / "backups")
    d.tables["empty"] = {}
    old = list(generate_records(20, seed=1))
    d.load("old", old, tmp_path)
    d.load("mid", list(generate_records(15, seed=2, start=100)), tmp_path)
    d.load("new", list(generate_records(10, seed=3, start=200)), tmp_path)
    fixed = [{**r, "city": "Key West"} for r in old[:6]] + list(generate_records(4, seed=4, start=300))
    d.load("fix", fixed, tmp_path, on_conflict="update")
    for name, hours in (("old", 72.5), ("mid", 30.5), ("new", 2.5), ("fix", 1.5)):
        set_started(target, d.ids[name], ago(hours))
    assert count(target) == 49 and checks_pass(target)
    return d


def test_rollback_of_one_import_removes_exactly_its_rows(directory: Directory) -> None:
    d = directory
    final = snapshot(d.target)
    result = d.undo(import_id=d.ids["mid"])
    assert snapshot(d.target) == without(final, licenses_of(final, {d.ids["mid"]}))
    assert (result.status, result.rows_removed, result.rows_restored) == ("rolled_back", 15, 0)
    rows = ledger(d.target)
    assert rows[d.ids["mid"]]["status"] == "rolled_back" and rows[d.ids["mid"]]["rolled_back_at"]
    assert rows[d.ids["mid"]]["removed"] == 15
    assert all(rows[d.ids[n]]["status"] == "completed" and rows[d.ids[n]]["removed"] == 0 for n in ("old", "new"))
    assert ledger_balances(d.target) and checks_pass(d.target)


def test_rolling_back_an_update_import_restores_the_overwritten_rows(directory: Directory) -> None:
    d = directory
    result = d.undo(import_id=d.ids["fix"])
    assert snapshot(d.target) == d.tables["new"]  # ids and every value as before, not just the count
    assert (result.rows_removed, result.rows_restored) == (4, 6)
    assert count(d.target, "SELECT COUNT(*) FROM ef_before_images") == 0
    assert ledger_balances(d.target) and checks_pass(d.target)


def test_rollback_last_hours_gives_back_the_table_before_those_imports(directory: Directory) -> None:
    d = directory
    result = d.undo(last_hours=24)
    assert snapshot(d.target) == d.tables["mid"]
    assert [row["id"] for row in result.imports] == [d.ids["new"], d.ids["fix"]]
    statuses = {name: ledger(d.target)[d.ids[name]]["status"] for name in d.ids}
    assert statuses == {"old": "completed", "mid": "completed", "new": "rolled_back", "fix": "rolled_back"}
    d.undo(last_hours=48)
    assert snapshot(d.target) == d.tables["old"]
    assert ledger_balances(d.target) and checks_pass(d.target)


def test_rollback_by_dates_includes_both_days_and_keeps_later_updates(directory: Directory) -> None:
    d = directory
    for name, started in (
        ("old", "2026-11-01T00:00:00Z"),
        ("mid", "2026-11-15T23:59:59Z"),
        ("new", "2026-11-16T00:00:00Z"),
        ("fix", "2026-11-20T09:00:00Z"),
    ):
        set_started(d.target, d.ids[name], started)
    final = snapshot(d.target)
    result = d.undo(since="2026-11-01", until="2026-11-15")
    assert {row["id"] for row in result.imports} == {d.ids["old"], d.ids["mid"]}
    # old's six rows that fix rewrote keep fix's values: fix was not rolled back.
    assert snapshot(d.target) == without(final, licenses_of(final, {d.ids["old"], d.ids["mid"]}))
    assert count(d.target, "SELECT COUNT(*) FROM professionals WHERE city = 'Key West'") == 6
    rows = ledger(d.target)
    assert (rows[d.ids["old"]]["inserted"], rows[d.ids["old"]]["removed"]) == (20, 20)
    # fix is now the oldest surviving write of those six rows, so the ledger counts them as its own.
    assert (rows[d.ids["fix"]]["inserted"], rows[d.ids["fix"]]["updated"]) == (10, 0)
    assert ledger_balances(d.target) and checks_pass(d.target)
    d.undo(import_id=d.ids["fix"])  # nothing older is left to restore: the six rows go too
    assert snapshot(d.target) == without(final, licenses_of(final, {d.ids["old"], d.ids["mid"], d.ids["fix"]}))
    assert ledger_balances(d.target)


def test_rollback_by_industry_removes_only_that_industry(directory: Directory, tmp_path: Path) -> None:
    d = directory
    solo = [{**r, "industry": "insurance"} for r in generate_records(3, seed=5, start=400)]
    d.load("solo", solo, tmp_path)
    d.load("legal", [{**r, "industry": "legal"} for r in generate_records(2, seed=6, start=500)], tmp_path)
    final = snapshot(d.target)
    insurance = {license for license, row in final.items() if row[7] == "insurance"}
    result = d.undo(industry="Insurance")
    assert snapshot(d.target) == without(final, insurance)
    assert result.rows_removed == len(insurance) == 12
    assert {r["industry"] for r in result.by_industry_state} == {"insurance"}
    # The imports it names are those with an insurance write undone, not every import live when it began.
    wrote = {d.ids[n] for n, table in d.tables.items() if n != "empty" and _wrote(table, d.ids[n], "insurance")}
    assert {r["id"] for r in result.imports} == wrote and d.ids["legal"] not in wrote
    rows = ledger(d.target)
    assert rows[d.ids["solo"]]["status"] == "rolled_back"  # every row it wrote is gone
    finished_at = d.target.scalar("SELECT finished_at FROM ef_rollbacks")
    assert rows[d.ids["solo"]]["rolled_back_at"] == finished_at is not None
    lost = {}
    for previous, name in (("empty", "old"), ("old", "mid"), ("mid", "new"), ("new", "fix")):
        inserted = set(d.tables[name]) - set(d.tables[previous])
        assert rows[d.ids[name]]["status"] == "completed"
        lost[name] = rows[d.ids[name]]["removed"]
        assert lost[name] == len(insurance & inserted)
    assert lost == {"old": 6, "mid": 2, "new": 1, "fix": 0}
    assert ledger_balances(d.target) and checks_pass(d.target)


def _wrote(table: dict[str, tuple[Any, ...]], import_id: str, industry: str) -> bool:
    """Whether `import_id` wrote a row of `industry` (the table as it stood right after that import)."""
    return any(row[-2] == import_id and row[7] == industry for row in table.values())


def test_an_unfinished_import_s_mark_comes_down_to_the_newest_row_it_still_has(directory: Directory) -> None:
    """A failed import whose newest row an industry rollback takes away: its mark says the rows above it
    are not its own, so that the ids new rows take are not counted as its."""
    d = directory
    new = d.ids["new"]
    d.target.execute([Sql("UPDATE ef_imports SET status = 'failed' WHERE id = ?", (new,))])
    newest = d.target.query("SELECT id, industry FROM professionals WHERE import_id = ? ORDER BY id DESC", (new,))
    assert ledger(d.target)[new]["row_mark"] == newest[0]["id"]
    d.undo(industry=newest[0]["industry"])
    kept = [row["id"] for row in newest if row["industry"] != newest[0]["industry"]]
    assert kept and ledger(d.target)[new]["row_mark"] == max(kept) < newest[0]["id"]


def test_reset_empties_everything_and_keeps_its_own_record(directory: Directory) -> None:
    d = directory
    final = snapshot(d.target)
    result = d.undo(reset=True)
    assert result.rows_removed == 49 and len(result.imports) == 4
    for table in ("professionals", "ef_imports", "ef_before_images", "ef_rollback_work"):
        assert count(d.target, f"SELECT COUNT(*) FROM {table}") == 0
    (record,) = d.target.query("SELECT * FROM ef_rollbacks")
    assert record["strategy"] == "reset" and record["rows_removed"] == 49
    assert len(json.loads(record["imports"])) == 4
    with connect(record["backup_path"], create=True) as saved:
        assert snapshot(saved) == final
    assert checks_pass(d.target)


def test_a_reset_records_every_import_it_empties_rolled_back_or_not(directory: Directory) -> None:
    d = directory
    d.undo(import_id=d.ids["new"])
    d.undo(reset=True)
    (record,) = d.target.query("SELECT * FROM ef_rollbacks")
    assert sorted(json.loads(record["imports"])) == sorted(d.ids[n] for n in ("old", "mid", "new", "fix"))


def test_what_a_rollback_of_an_earlier_version_left_in_the_work_table_is_cleared_first(directory: Directory) -> None:
    d = directory
    stray = d.target.scalar("SELECT license_number FROM professionals WHERE import_id = ?", (d.ids["mid"],))
    d.target.execute(
        [
            Sql(
                "INSERT INTO ef_rollback_work (license_number, depth, writer, dead, last_depth) VALUES (?, 0, ?, 1, 0)",
                (stray, d.ids["mid"]),
            )
        ]
    )
    result = d.undo(import_id=d.ids["new"])
    assert result.rows_removed == 10 and stray in snapshot(d.target)
    assert snapshot(d.target) == without(d.tables["fix"], licenses_of(d.tables["new"], {d.ids["new"]}))


def test_each_rollback_is_recorded_with_its_backup(directory: Directory) -> None:
    d = directory
    before = snapshot(d.target)
    result = d.undo(import_id=d.ids["new"])
    (record,) = d.target.query("SELECT * FROM ef_rollbacks")
    assert record["id"] == result.rollback_id and record["strategy"] == "import"
    assert result.rollback_id is not None and result.rollback_id.startswith("rb-")
    assert json.loads(record["arguments"]) == {"import_id": d.ids["new"]}
    assert json.loads(record["imports"]) == [d.ids["new"]]
    assert (record["rows_removed"], record["rows_restored"]) == (10, 0)
    assert record["backup_path"] == result.backup_path and record["finished_at"]
    assert [b.path for b in list_backups(backups_dir=d.backups)] == [result.backup_path]
    with connect(result.backup_path, create=True) as saved:
        assert snapshot(saved) == before


def test_a_chain_of_updates_unwinds_in_any_order(target: SQLiteTarget, tmp_path: Path) -> None:
    """A inserts three rows, B and C rewrite their city; each rollback leaves the newest write that
    survives, and the last one standing takes the rows with it."""
    base = list(generate_records(3, seed=9))

    def load(name: str, city: str | None) -> str:
        rows = [{**r, "city": city} if city else r for r in base]
        options = {"on_conflict": "update"} if city else {}
        return import_file(target, write_csv(tmp_path / f"{name}.csv", rows), **options).import_id or ""

    def cities() -> set[str]:
        return {row[9] for row in snapshot(target).values()}

    a, b, c = load("a", None), load("b", "Bville"), load("c", "Cville")
    original = {r["city"] for r in base}
    for undo, expected in ((b, {"Cville"}), (c, original), (a, set())):
        rollback(target, import_id=undo, yes=True)
        assert cities() == expected and ledger_balances(target)
    assert count(target, "SELECT COUNT(*) FROM ef_before_images") == 0

    a, b = load("a2", None), load("b2", "Bville")
    rollback(target, import_id=a, yes=True)  # B's update stands
    assert cities() == {"Bville"} and ledger_balances(target)
    assert ledger(target)[b]["inserted"] == 3 and ledger(target)[b]["updated"] == 0
    rollback(target, import_id=b, yes=True)
    assert cities() == set() and ledger_balances(target) and checks_pass(target)


def test_rows_that_no_selected_import_wrote_are_never_touched(directory: Directory) -> None:
    d = directory
    d.target.connection.execute(
        "INSERT INTO professionals (first_name, last_name, email, license_number, industry, state, city,"
        " created_at, updated_at, import_id) VALUES ('By', 'Hand', 'h@x.co', 'HAND-1', 'legal', 'TX', 'Austin',"
        " 'x', 'x', NULL), ('Else', 'Where', 'e@x.co', 'ELSE-1', 'legal', 'TX', 'Austin', 'x', 'x', 'imp-other')"
    )
    kept = {k: v for k, v in snapshot(d.target).items() if k in ("HAND-1", "ELSE-1")}
    d.undo(industry="legal")
    d.undo(last_hours=1000)
    assert snapshot(d.target) == kept


def test_dry_run_shows_the_plan_and_changes_nothing(directory: Directory) -> None:
    d = directory
    before, imports = snapshot(d.target), ledger(d.target)
    plan = rollback(d.target, last_hours=24, dry_run=True, backups_dir=d.backups)
    assert plan.dry_run and plan.rollback_id is None and plan.backup_path is None
    assert (plan.rows_removed, plan.rows_restored) == (14, 6)
    assert sum(r["removed"] for r in plan.by_industry_state) == 14
    assert {r["state"] for r in plan.by_industry_state} <= {"FL", "TX", "CA"}
    assert snapshot(d.target) == before and ledger(d.target) == imports
    assert not d.backups.exists() and "nothing was changed" in plan.summary()
    done = d.undo(last_hours=24)
    assert (done.rows_removed, done.rows_restored, done.by_industry_state) == (14, 6, plan.by_industry_state)


def test_refusals_change_nothing(directory: Directory) -> None:
    d = directory
    before = snapshot(d.target)
    asked: list[str] = []
    with pytest.raises(ConfirmationRequired, match="--yes") as refused:
        rollback(d.target, import_id=d.ids["mid"], confirm=lambda q: asked.append(q) or False)
    assert refused.value.flag == "--yes"
    assert d.ids["mid"] in asked[0] and "removes 15 rows" in asked[0]
    with pytest.raises(ConfirmationRequired):
        rollback(d.target, import_id=d.ids["mid"])
    with pytest.raises(EstateFlowError, match="unknown industry 'plumbing'"):
        rollback(d.target, industry="plumbing", yes=True)
    with pytest.raises(EstateFlowError, match="no import 'imp-nope'"):
        rollback(d.target, import_id="imp-nope", yes=True)
    for strategy in ({}, {"last_hours": 2, "industry": "legal"}):
        with pytest.raises(EstateFlowError, match="exactly one"):
            rollback(d.target, yes=True, **strategy)
    with pytest.raises(EstateFlowError, match="not a date"):
        rollback(d.target, since="1st of November", until="2026-11-15", yes=True)
    with pytest.raises(EstateFlowError, match="empty"):
        rollback(d.target, since="2026-11-15", until="2026-11-01", yes=True)
    assert snapshot(d.target) == before and not d.backups.exists()
    d.undo(import_id=d.ids["mid"])
    with pytest.raises(EstateFlowError, match="already rolled back"):
        d.undo(import_id=d.ids["mid"])


def test_nothing_to_roll_back_takes_no_backup(directory: Directory) -> None:
    d = directory
    result = d.undo(last_hours=1)
    assert result.status == "nothing" and "Nothing to roll back" in result.summary()
    assert not d.backups.exists() and count(d.target) == 49


def test_an_unfinished_import_can_be_rolled_back(directory: Directory) -> None:
    d = directory
    d.target.execute([Sql("UPDATE ef_imports SET status = 'running' WHERE id = ?", (d.ids["new"],))])
    assert not checks_pass(d.target)  # check 10: a recent import is unfinished
    d.undo(import_id=d.ids["new"])
    assert checks_pass(d.target)


@pytest.mark.parametrize("when", ["before", "after"])
def test_a_rollback_killed_by_sigkill_is_all_or_nothing(directory: Directory, tmp_path: Path, when: str) -> None:
    d = directory
    before = snapshot(d.target), ledger(d.target)
    d.target.close()
    url = d.target.url
    killed = run_cli(
        "rollback", "last", "24", "--db", url, "--yes", cwd=tmp_path, env={KILL_HOOK_ENV: f"rollback:{when}"}
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert len(list((tmp_path / "backups").glob("backup-*.sqlite"))) == 1
    with connect(url, create=True) as t:
        if when == "before":
            assert (snapshot(t), ledger(t)) == before
            assert count(t, "SELECT COUNT(*) FROM ef_rollbacks") == 0
        else:
            assert snapshot(t) == d.tables["mid"]
            assert {r["status"] for r in ledger(t).values()} == {"completed", "rolled_back"}
            assert count(t, "SELECT COUNT(*) FROM ef_rollbacks") == 1
        assert count(t, "SELECT COUNT(*) FROM ef_rollback_work") == 0
        assert ledger_balances(t)


def test_cli_strategies_confirm_and_print(directory: Directory, tmp_path: Path) -> None:
    d = directory
    url = d.target.url
    refused = invoke("rollback", "import", d.ids["mid"], "--db", url, cwd=tmp_path)
    assert refused.returncode == 2 and refused.stderr.startswith("Refused: ") and "--yes" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    planned = invoke("rollback", "date", "2000-01-01", "2100-01-01", "--db", url, "--dry-run", cwd=tmp_path)
    assert planned.returncode == 0 and "would change" in planned.stdout and count(d.target) == 49
    done = invoke("rollback", "import", d.ids["mid"], "--db", url, "--yes", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["status"] == "rolled_back" and summary["rows_removed"] == 15
    assert Path(tmp_path / summary["backup_path"]).is_file() and summary["backup_path"].startswith("backups/")
    text = invoke("rollback", "industry", "insurance", "--db", url, "--yes", cwd=tmp_path)
    assert text.returncode == 0 and "Rolled back the imported rows of industry insurance" in text.stdout
    unknown = invoke("rollback", "industry", "plumbing", "--db", url, "--yes", cwd=tmp_path)
    assert unknown.returncode == 2 and "unknown industry" in unknown.stderr
    missing = invoke("rollback", "import", "imp-nope", "--db", url, "--yes", cwd=tmp_path)
    assert missing.returncode == 2 and "no import 'imp-nope'" in missing.stderr
    assert invoke("db", "reset", "--db", url, cwd=tmp_path).returncode == 2
    reset = invoke("db", "reset", "--db", url, "--yes", "--json", cwd=tmp_path)
    assert reset.returncode == 0 and json.loads(reset.stdout)["strategy"] == "reset"
    assert count(d.target) == 0


class RemoteTarget(Forwarding):
    """The real SQLite target seen only through the Target interface, as D1 would be, recording
    every execute call."""

    def __init__(self, inner: SQLiteTarget) -> None:
        super().__init__(inner)
        self.url, self.kind = "remote://test", "remote"  # type: ignore[assignment]
        self.limits = Limits(max_params=100, max_sql_bytes=100_000)
        self.calls: list[list[Any]] = []

    def execute(self, statements: Sequence[Any], *, before_commit: Any = None) -> Any:
        self.calls.append(list(statements))
        return self.inner.execute(statements, before_commit=before_commit)

    def size_bytes(self) -> int | None:
        return None

    # What no remote target offers unless it says so: backups and restores of a file.
    copy_into = Target.copy_into
    replace_refusal = Target.replace_refusal
    is_same_file = Target.is_same_file


@pytest.mark.parametrize(
    "strategy",
    [
        {"import_id": "fix"},
        {"last_hours": 24},
        {"since": "2000-01-01", "until": "2100-12-31"},
        {"industry": "mortgage"},
    ],
)
def test_rollback_needs_only_the_target_interface_and_one_execute(
    directory: Directory, strategy: dict[str, Any]
) -> None:
    d = directory
    strategy = {k: d.ids.get(v, v) if isinstance(v, str) else v for k, v in strategy.items()}
    remote = RemoteTarget(d.target)
    with pytest.raises(EstateFlowError, match="backups of remote databases are not supported"):
        rollback(remote, yes=True, **strategy)
    assert remote.calls == []
    rollback(remote, yes=True, backup=False, **strategy)
    (statements,) = remote.calls
    assert all(isinstance(s, Sql) for s in statements)
    assert max(len(s.params) for s in statements) < remote.limits.max_params
    assert max(len(s.text.encode()) for s in statements) < 100_000
    assert ledger_balances(d.target) and checks_pass(d.target)


# --- the strategies' words and bounds, exactly --------------------------------------------------------


def test_flat_settings_choose_a_strategy() -> None:
    assert chosen_strategy() == {}
    assert chosen_strategy(last_hours=0, since=" ", until="", industry="  ", import_id="", reset=False) == {}
    assert chosen_strategy(last_hours=2.5) == {"last_hours": 2.5}
    assert chosen_strategy(since=" 2026-11-01 ", until="2026-11-02") == {"since": "2026-11-01", "until": "2026-11-02"}
    assert chosen_strategy(industry=" legal ", import_id=" imp-1 ") == {"industry": "legal", "import_id": "imp-1"}
    assert chosen_strategy(reset=True) == {"reset": True}


@pytest.mark.parametrize(
    ("value", "upper", "bound"),
    [
        ("2026-11-01", False, "2026-11-01T00:00:00Z"),
        ("2026-11-01", True, "2026-11-02T00:00:00Z"),  # a day is inclusive: up to the next one
        ("20261101", True, "2026-11-02T00:00:00Z"),
        ("2026-11-01T10:00:00", False, "2026-11-01T10:00:00Z"),  # a time without zone is UTC
        ("2026-11-01T10:00:00", True, "2026-11-01T10:00:01Z"),
        ("2026-11-01T10:00:00+05:00", False, "2026-11-01T05:00:00Z"),
        (datetime(2026, 11, 1, 10, tzinfo=timezone(timedelta(hours=-2))), False, "2026-11-01T12:00:00Z"),
        (date(2026, 11, 1), False, "2026-11-01T00:00:00Z"),
        ("0001-01-01", False, "0001-01-01T00:00:00Z"),  # zero-padded: it sorts before 2026
        ("9999-12-31", True, "~"),  # past the last day the ledger can hold: open
        ("0001-01-01T00:00:00+01:00", False, ""),
    ],
)
def test_window_bounds_as_ledger_times(value: Any, upper: bool, bound: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # The machine's own zone never enters: times without zone are UTC.
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        assert _bound(value, "from", upper=upper) == bound
    finally:
        monkeypatch.undo()
        time.tzset()


def test_refusals_say_exactly_what_is_wrong(directory: Directory) -> None:
    d = directory
    with pytest.raises(RefusedError) as caught:
        rollback(d.target, last_hours=2, industry="legal", yes=True)
    assert (
        str(caught.value)
        == "choose exactly one of last_hours, since/until, industry, import_id or reset (got last_hours, industry)"
    )
    with pytest.raises(RefusedError) as caught:
        rollback(d.target, yes=True)
    assert str(caught.value) == "choose exactly one of last_hours, since/until, industry, import_id or reset"
    with pytest.raises(RefusedError, match=r"^from: '1st of November' is not a date \(2026-11-01\) or time"):
        rollback(d.target, since="1st of November", yes=True)
    with pytest.raises(RefusedError, match=r"^the window is empty: 2026-11-15 is after 2026-11-01$"):
        rollback(d.target, since="2026-11-15", until="2026-11-01", yes=True)
    with pytest.raises(RefusedError, match=r"^the window is empty: 2026-11-01 is after 2026-10-31$"):
        rollback(d.target, since="2026-11-01", until="2026-10-31", yes=True)
    for hours in (0, -1, float("nan"), float("inf")):
        with pytest.raises(RefusedError, match=r"^hours must be a number more than 0, not "):
            rollback(d.target, last_hours=hours, yes=True)
    with pytest.raises(RefusedError, match=r"^1e\+09 hours reaches back before the year 1: give fewer hours"):
        rollback(d.target, last_hours=1e9, yes=True)
    with pytest.raises(RefusedError, match=r"^unknown industry 'Plumbing': expected one of real_estate, mortgage, "):
        rollback(d.target, industry="Plumbing", yes=True)
    assert rollback(d.target, industry=" LEGAL ", dry_run=True).arguments == {"industry": "legal"}


def test_a_rollback_shows_itself(directory: Directory) -> None:
    d = directory
    plan = rollback(d.target, import_id=d.ids["mid"], dry_run=True)
    assert (
        repr(plan) == f"<RollbackResult dry_run of import {d.ids['mid']}: would remove 15 rows, restored 0, 1 import>"
    )
    assert list(plan.to_frame()["removed"]) == [r["removed"] for r in plan.by_industry_state]
    assert f"import {d.ids['mid']}" in plan._repr_html_()
    done = d.undo(import_id=d.ids["mid"])
    assert repr(done).startswith(f"<RollbackResult rolled_back of import {d.ids['mid']}: removed 15 rows, restored 0")
    lines = done.summary().splitlines()
    assert lines[0] == f"Rolled back import {d.ids['mid']} ({done.rollback_id}, {done.seconds:.2f} s):"
    assert lines[1] == "  removed 15 rows, restored 0 to earlier values"
    assert lines[2] == "  imports (1):"
    assert lines[-1] == f"  backup taken before: {done.backup_path}"
    assert done.to_dict()["rows_removed"] == 15 and not done.dry_run
