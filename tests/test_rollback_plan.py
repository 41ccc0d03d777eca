"""Plan first, then carry out exactly that plan: `plan_rollback(...)` and `RollbackPlan.apply(target)`.

A plan's fingerprint covers the imports it undoes and the very rows it removes or restores: a database
that changed in between, even in a way that leaves every count of the plan as it was, refuses the
rollback, changes nothing and takes no backup.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from estateflow_nb import (
    ConfirmationRequired,
    connect,
    generate_records,
    import_file,
    list_backups,
    plan_rollback,
    rollback,
    write_records,
)
from estateflow_nb._forwarding import Forwarding
from estateflow_nb.rollback import PLAN_CHANGED, RollbackPlan
from estateflow_nb.targets import Sql

from .conftest import count, snapshot, write_csv


def test_a_plan_is_the_dry_run_with_a_fingerprint(two_imports: tuple[str, str, str]) -> None:
    url, first, second = two_imports
    with connect(url) as target:
        plan = plan_rollback(target, import_id=second)
        again = plan_rollback(target, import_id=second)
        dry = rollback(target, import_id=second, dry_run=True)
        other = plan_rollback(target, import_id=first)
        nothing = plan_rollback(target, since="2001-01-01", until="2001-01-02")
    assert (
        plan.shown.plan() == dry.plan()
        and plan.shown.imports == dry.imports
        and plan.arguments == {"import_id": second}
        and plan.url == url
    )
    assert plan.fingerprint == again.fingerprint != other.fingerprint
    assert len(plan.fingerprint) == 64 and not plan.empty
    assert (plan.shown.rows_removed, plan.shown.rows_restored) == (20, 10)
    assert nothing.empty and nothing.shown.rows_removed == 0 and nothing.shown.imports == []


def test_apply_carries_out_exactly_the_plan(two_imports: tuple[str, str, str], tmp_path: Path) -> None:
    url, first, second = two_imports
    with connect(url) as target:
        plan = plan_rollback(target, import_id=second)
        done = plan.apply(target, backups_dir=tmp_path / "kept")
        assert count(target) == 40 and done.status == "rolled_back"
        assert (done.rows_removed, done.rows_restored) == (plan.shown.rows_removed, plan.shown.rows_restored)
        statuses = {r["id"]: r["status"] for r in target.query("SELECT id, status FROM ef_imports")}
    assert statuses == {first: "completed", second: "rolled_back"}
    (taken,) = list_backups(backups_dir=tmp_path / "kept")
    assert done.backup_path == taken.path and taken.rows == 60


def test_a_plan_whose_rows_changed_is_refused_even_when_every_count_stays(
    two_imports: tuple[str, str, str], tmp_path: Path
) -> None:
    """One row of the import swapped for another of the same industry and state: the imports, the
    counts by industry and state and the ledger are all as planned; the rows are not."""
    url, _first, second = two_imports
    with connect(url) as target:
        (row,) = target.query(
            "SELECT * FROM professionals WHERE import_id = ? AND license_number NOT IN"
            " (SELECT license_number FROM ef_before_images) ORDER BY id LIMIT 1",
            (second,),
        )
    columns = [c for c in row if c != "id"]
    swap = [
        Sql("DELETE FROM professionals WHERE id = ?", (row["id"],)),
        Sql(
            f"INSERT INTO professionals ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
            tuple({**row, "license_number": "SWAPPED-1"}[c] for c in columns),
        ),
    ]
    with connect(url) as target:
        plan = plan_rollback(target, import_id=second)
        target.execute(swap)
        # What a person saw would still match: the plan's text alone would not notice.
        assert rollback(target, import_id=second, dry_run=True).plan() == plan.shown.plan()
        before = snapshot(target)
        with pytest.raises(ConfirmationRequired, match="the database changed since the plan was shown"):
            plan.apply(target, backups_dir=tmp_path / "kept")
        assert snapshot(target) == before
    assert not (tmp_path / "kept").exists()


def test_a_new_import_in_the_window_is_refused(two_imports: tuple[str, str, str], tmp_path: Path) -> None:
    url, _first, _second = two_imports
    with connect(url) as target:
        plan = plan_rollback(target, last_hours=1)
        import_file(target, write_records(tmp_path / "c.csv", 5, start=500))
        before = snapshot(target)
        with pytest.raises(ConfirmationRequired, match="changed since the plan was shown"):
            plan.apply(target, backups_dir=tmp_path / "kept")
        assert snapshot(target) == before and count(target) == 65
    assert not (tmp_path / "kept").exists()


def test_an_update_of_the_planned_rows_is_refused(two_imports: tuple[str, str, str], tmp_path: Path) -> None:
    url, first, _second = two_imports
    with connect(url) as target:
        plan = plan_rollback(target, import_id=first)
        rows = target.query("SELECT * FROM professionals WHERE import_id = ? LIMIT 3", (first,))
        import_file(
            target, write_csv(tmp_path / "moved.csv", [{**r, "city": "Key West"} for r in rows]), on_conflict="update"
        )
        with pytest.raises(ConfirmationRequired, match="changed since the plan was shown"):
            plan.apply(target, backups_dir=tmp_path / "kept")
    assert not (tmp_path / "kept").exists()


def test_a_plan_is_for_its_own_database(two_imports: tuple[str, str, str], tmp_path: Path) -> None:
    url, _first, second = two_imports
    with connect(url) as target:
        plan = plan_rollback(target, import_id=second)
    other = connect(f"sqlite:///{tmp_path / 'other.db'}", create=True)
    with other, pytest.raises(ConfirmationRequired, match=f"this plan is for {url}"):
        plan.apply(other)


def refused(apply: Any) -> ConfirmationRequired:
    with pytest.raises(ConfirmationRequired) as caught:
        apply()
    assert caught.value.flag == "a new plan"
    return caught.value


@pytest.mark.parametrize(
    "strategy",
    [{"industry": "legal"}, {"reset": True}, {"since": "2000-01-01", "until": "2100-12-31"}, {"since": "2000-01-01"}],
)
def test_every_strategy_plans_and_applies_and_is_refused_once_changed(
    two_imports: tuple[str, str, str], tmp_path: Path, strategy: dict[str, Any]
) -> None:
    url, _first, _second = two_imports
    with connect(url) as target:
        plan = plan_rollback(target, **strategy)
        assert plan.arguments == strategy and not plan.empty
        # A new row the plan would touch (a legal one, in the window): refused, nothing changed.
        extra = [{**r, "industry": "legal"} for r in generate_records(2, seed=8, start=900)]
        import_file(target, write_csv(tmp_path / "extra.csv", extra))
        before = snapshot(target)
        assert str(refused(lambda: plan.apply(target, backup=False))) == PLAN_CHANGED
        assert snapshot(target) == before
        planned = plan_rollback(target, **strategy)
        done = planned.apply(target, backup=False)
        assert done.status == "rolled_back" and done.backup_path is None
        assert (done.rows_removed, done.rows_restored) == (planned.shown.rows_removed, planned.shown.rows_restored)
        if "industry" in strategy:
            assert target.scalar("SELECT COUNT(*) FROM professionals WHERE industry = 'legal'") == 0
        else:
            assert count(target) == 0


def test_a_plan_applies_only_what_was_shown(two_imports: tuple[str, str, str]) -> None:
    """A plan whose shown result is not what the rollback would now show is refused by the rollback's
    own question, even with the fingerprint right."""
    url, first, second = two_imports
    with connect(url) as target:
        plan = plan_rollback(target, import_id=second)
        mixed = RollbackPlan(plan.url, plan.arguments, plan_rollback(target, import_id=first).shown, plan.fingerprint)
        assert str(refused(lambda: mixed.apply(target, backup=False))) == PLAN_CHANGED
        assert count(target) == 60
        other = RollbackPlan("sqlite:///elsewhere.db", plan.arguments, plan.shown, plan.fingerprint)
        message = str(refused(lambda: other.apply(target)))
        assert message == f"this plan is for sqlite:///elsewhere.db, not {url}: plan again"
        assert repr(plan).startswith(
            f"<RollbackPlan of import {second}: would remove 20 rows, restore 10, 1 import; fingerprint"
            f" {plan.fingerprint[:12]}>"
        )
        assert list(plan.to_frame().columns)[:2] == ["industry", "state"] and "Key West" not in plan._repr_html_()
        assert f"import {second}" in plan._repr_html_()


def test_a_reset_plan_sees_a_row_swapped_under_it(two_imports: tuple[str, str, str]) -> None:
    """The reset's plan shows the same imports and counts by industry and state after the swap; only its
    fingerprint of every row tells."""
    url, _first, second = two_imports
    with connect(url) as target:
        plan = plan_rollback(target, reset=True)
        (row,) = target.query("SELECT * FROM professionals WHERE import_id = ? ORDER BY id LIMIT 1", (second,))
        columns = [c for c in row if c != "id"]
        target.execute(
            [
                Sql("DELETE FROM professionals WHERE id = ?", (row["id"],)),
                Sql(
                    f"INSERT INTO professionals ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                    tuple({**row, "license_number": "SWAPPED-1"}[c] for c in columns),
                ),
            ]
        )
        assert rollback(target, reset=True, dry_run=True).plan() == plan.shown.plan()
        assert str(refused(lambda: plan.apply(target, backup=False))) == PLAN_CHANGED
        assert count(target) == 60


def test_a_window_plan_covers_its_window_only(two_imports: tuple[str, str, str], tmp_path: Path) -> None:
    url, _first, _second = two_imports
    with connect(url) as target:
        plan = plan_rollback(target, since="2000-01-01", until="2000-01-02")
        assert plan.empty
        import_file(target, write_records(tmp_path / "later.csv", 5, start=700))  # outside the window
        assert plan.apply(target, backup=False).status == "nothing" and count(target) == 65


class WithBookmarks(Forwarding):
    """A target whose provider can return the database to a moment (as D1's Time Travel)."""

    def bookmark(self, at: Any = None) -> str | None:
        return "bm-0001"


def test_a_rollback_names_its_bookmark_and_says_when_no_backup_was_taken(two_imports: tuple[str, str, str]) -> None:
    url, _first, second = two_imports
    with connect(url) as target:
        done = rollback(WithBookmarks(target), import_id=second, yes=True, backup=False)
    assert done.bookmark == "bm-0001"
    assert done.summary().splitlines()[-2:] == [
        "  backup taken before: none",
        "  Time Travel bookmark before: bm-0001 (`estateflow restore --bookmark bm-0001` with the same --db returns"
        " the database there)",
    ]
