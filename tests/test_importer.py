from __future__ import annotations

import csv
import dataclasses
import json
import os
import re
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import fields, replace
from pathlib import Path
from typing import Any, get_type_hints

import pytest

from estateflow_nb import (
    ConfirmationRequired,
    EstateFlowError,
    ImportFailedError,
    ImportOptions,
    ImportSettings,
    SourceChangedError,
    Span,
    TransientError,
    UnsafeDumpError,
    _retry,
    connect,
    generate_records,
    import_file,
    importer,
    write_records,
)
from estateflow_nb._forwarding import Forwarding
from estateflow_nb._testing import KILL_HOOK_ENV
from estateflow_nb._time import ledger_time
from estateflow_nb.errors import TargetError, TooLargeError
from estateflow_nb.importer import BatchMetrics, ImportResult
from estateflow_nb.quota import FREE_TIER_ROWS_PER_DAY, plan_import, stop_advice
from estateflow_nb.sources import scan
from estateflow_nb.targets import Sql, SQLiteTarget, Target

from .conftest import CLI, ROOT, count, invoke, write_csv


def ledger(target: Target, import_id: str) -> dict[str, Any]:
    return target.query("SELECT * FROM ef_imports WHERE id = ?", (import_id,))[0]


def table_rows(target: Target) -> list[tuple[Any, ...]]:
    rows = target.query(
        "SELECT license_number, first_name, last_name, email, city, rating, review_count, is_featured"
        " FROM professionals ORDER BY license_number"
    )
    return [tuple(r.values()) for r in rows]


def test_import_writes_every_record_with_its_provenance(target: SQLiteTarget, make_csv: Callable[..., Path]) -> None:
    source = make_csv(45)
    seen: list[int] = []
    result = import_file(target, source, batch_size=10, progress=lambda m: seen.append(m.done))
    assert (result.status, result.inserted, result.skipped, result.rejected) == ("completed", 45, 0, 0)
    assert result.batches == 5 and seen == [10, 20, 30, 40, 45]
    assert [m.records for m in result.batch_metrics] == [10, 10, 10, 10, 5]
    assert sum(m.inserted for m in result.batch_metrics) == 45
    assert all(m.records_per_second > 0 for m in result.batch_metrics)
    assert count(target) == 45
    assert count(target, "SELECT COUNT(*) FROM professionals WHERE import_id = ?", (result.import_id,)) == 45
    row = ledger(target, result.import_id)
    assert row["status"] == "completed" and row["checkpoint"] == 45 and row["batches"] == 5
    assert row["source_sha256"] and row["source_path"] == str(source.resolve()) and row["finished_at"]


def test_options_and_keywords_are_one_and_the_same(target: SQLiteTarget, make_csv: Callable[..., Path]) -> None:
    source = make_csv(30, mutate={4: {"email": "nope"}})
    options = ImportOptions(batch_size=7, dry_run=True)
    by_options = import_file(target, source, options)
    by_keywords = import_file(target, source, batch_size=7, dry_run=True)
    timings = {"seconds": 0, "records_per_second": 0}
    assert by_options.to_dict() | timings == by_keywords.to_dict() | timings
    assert (by_options.batches, by_options.rejected) == (5, 1)
    # Keywords win over the options they come with; the options themselves stay as they were.
    real = import_file(target, source, options, dry_run=False, rejects_dir=source.parent / "rejects")
    assert (real.status, real.batch_size, real.batches, real.inserted) == ("completed", 7, 5, 29)
    assert Path(real.rejects_path or "").parent == source.parent / "rejects"
    assert options.dry_run and count(target) == 29


def test_every_option_can_be_a_keyword() -> None:
    """ImportSettings, the keywords' type, lists exactly the fields of ImportOptions, typed alike."""
    assert get_type_hints(ImportSettings) == {
        f.name: get_type_hints(ImportOptions)[f.name] for f in fields(ImportOptions)
    }


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"on_conflict": "merge"}, "on_conflict must be one of skip, update, fail, not 'merge'"),
        ({"batch_size": 0}, "batch size must be at least 1, not 0"),
        ({"retries": 0}, "retries must be at least 1, not 0"),
        ({"delay_ms": -5}, "delay must be 0 ms or more, not -5"),
        ({"max_reject_rate": 1.5}, "the largest reject rate is a share from 0 to 1, not 1.5"),
        ({"max_reject_rate": -0.1}, "the largest reject rate is a share from 0 to 1, not -0.1"),
    ],
)
def test_bad_options_are_one_clear_error_before_anything_is_read(
    target: SQLiteTarget, tmp_path: Path, settings: dict[str, Any], message: str
) -> None:
    with pytest.raises(EstateFlowError, match=f"^{message}$"):
        ImportOptions(**settings)
    with pytest.raises(EstateFlowError, match=f"^{message}$"):
        import_file(target, tmp_path / "not-even-there.csv", **settings)
    assert count(target, "SELECT COUNT(*) FROM ef_imports") == 0


def test_rejected_records_are_kept_with_their_reason(target: SQLiteTarget, make_csv: Callable[..., Path]) -> None:
    source = make_csv(30, mutate={3: {"email": "nope"}, 17: {"rating": "9"}, 18: {"industry": "plumbing"}})
    result = import_file(target, source, batch_size=10)
    assert (result.inserted, result.rejected) == (27, 3)
    assert result.reject_reasons == {"email": 1, "rating": 1, "industry": 1}
    rejects = Path(result.rejects_path or "")
    assert rejects.parent == source.parent and rejects.name == f"{result.import_id}.rejects.csv"
    with rejects.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [r["record"] for r in rows] == ["4", "18", "19"]
    assert rows[0]["reason"].startswith("email:") and rows[0]["email"] == "nope"
    assert rows[1]["rating"] == "9" and rows[2]["industry"] == "plumbing"
    assert "rejects" in result.summary() and str(rejects) in result.summary()


def test_reimport_and_in_file_duplicates_add_nothing_twice(target: SQLiteTarget, make_csv: Callable[..., Path]) -> None:
    source = make_csv(20, mutate={9: {"license_number": "DUP-1"}, 10: {"license_number": "DUP-1"}})
    first = import_file(target, source, batch_size=7)
    assert (first.inserted, first.skipped) == (19, 1)
    before = table_rows(target)
    again = import_file(target, source, batch_size=7)
    assert again.import_id != first.import_id
    assert (again.inserted, again.skipped) == (0, 20)
    assert table_rows(target) == before


def test_on_conflict_update_overwrites_and_keeps_before_images(each_target: Target, tmp_path: Path) -> None:
    target = each_target
    records = list(generate_records(12, seed=3))
    first = import_file(target, write_csv(tmp_path / "a.csv", records), batch_size=5)
    changed = [{**r, "city": "Key West"} if i < 4 else r for i, r in enumerate(records)]
    changed += list(generate_records(3, seed=3, start=100))
    second = import_file(target, write_csv(tmp_path / "b.csv", changed), batch_size=5, on_conflict="update")
    assert (second.inserted, second.updated, second.skipped) == (3, 12, 0)
    assert count(target) == 15
    assert count(target, "SELECT COUNT(*) FROM professionals WHERE city = 'Key West'") == 4
    assert count(target, "SELECT COUNT(*) FROM professionals WHERE import_id = ?", (second.import_id,)) == 15
    images = target.query(
        "SELECT city, import_id FROM ef_before_images WHERE by_import = ? ORDER BY license_number",
        (second.import_id,),
    )
    assert len(images) == 12 and all(i["import_id"] == first.import_id for i in images)
    assert {i["city"] for i in images} == {r["city"] for r in records}


def test_on_conflict_fail_stops_with_earlier_batches_kept(each_target: Target, make_csv: Callable[..., Path]) -> None:
    target = each_target
    import_file(target, make_csv(5, name="first.csv"))
    source = make_csv(25, name="second.csv", start=100, mutate={22: {"license_number": "FL-X-1"}})
    taken = import_file(target, make_csv(1, name="taken.csv", start=900, mutate={0: {"license_number": "FL-X-1"}}))
    with pytest.raises(ImportFailedError, match="stopped at record 20 of 25") as caught:
        import_file(target, source, batch_size=10, on_conflict="fail")
    result = caught.value.result
    assert result.status == "failed" and result.error == (
        f"license number FL-X-1 is already in the table (written by import {taken.import_id}) and --on-conflict is fail"
    )
    assert count(target) == 5 + 1 + 20
    # A row no import wrote (put in by hand) is named as such.
    target.execute([Sql("UPDATE professionals SET import_id = NULL WHERE license_number = 'FL-X-1'")])
    with pytest.raises(ImportFailedError) as again:
        import_file(target, source, batch_size=10, on_conflict="fail")
    assert (
        again.value.result.error
        == "license number FL-X-1 is already in the table (written by no import) and --on-conflict is fail"
    )


def test_dry_run_writes_nothing_and_predicts_the_import(target: SQLiteTarget, make_csv: Callable[..., Path]) -> None:
    import_file(target, make_csv(10, name="earlier.csv"))
    source = make_csv(
        30,
        name="new.csv",
        mutate={2: {"email": "x"}, 5: {"license_number": "L-5"}, 6: {"license_number": "L-5"}},
    )
    plan = import_file(target, source, batch_size=8, dry_run=True)
    assert plan.dry_run and plan.import_id is None
    assert count(target, "SELECT COUNT(*) FROM ef_imports") == 1 and count(target) == 10
    assert not list(source.parent.glob("*.rejects.csv"))
    real = import_file(target, source, batch_size=8)
    assert (plan.inserted, plan.skipped, plan.rejected) == (real.inserted, real.skipped, real.rejected)
    assert "would import" in plan.summary()


def test_large_file_needs_confirmation_unless_batch_size_given(target: SQLiteTarget, tmp_path: Path) -> None:
    source = write_records(tmp_path / "large.csv", 10_000)
    with pytest.raises(ConfirmationRequired, match="--yes") as refused:
        import_file(target, source)
    assert refused.value.flag == "--yes"
    assert count(target, "SELECT COUNT(*) FROM ef_imports") == 0
    asked: list[str] = []
    with pytest.raises(ConfirmationRequired):
        import_file(target, source, confirm=lambda q: asked.append(q) or False)
    assert asked and "10,000 records" in asked[0]
    result = import_file(target, source, confirm=lambda q: True)
    assert result.rung == "large" and result.batch_size == 10_000 and result.inserted == 10_000


def test_hostile_dump_leaves_the_target_untouched(target: SQLiteTarget, tmp_path: Path) -> None:
    dump = tmp_path / "evil.sql"
    write_records(tmp_path / "good.sql", 600)
    text = (tmp_path / "good.sql").read_text(encoding="utf-8")
    dump.write_text(text.replace("COMMIT;", "DROP TABLE professionals;\nCOMMIT;"), encoding="utf-8")
    with pytest.raises(UnsafeDumpError, match="DROP TABLE"):
        import_file(target, dump)
    assert count(target) == 0 and count(target, "SELECT COUNT(*) FROM ef_imports") == 0


@pytest.mark.parametrize("suffix", [".jsonl", ".sql"])
def test_other_formats_import_the_same_rows(tmp_path: Path, suffix: str) -> None:
    with (
        connect(f"sqlite:///{tmp_path / 'csv.db'}", create=True) as a,
        connect(f"sqlite:///{tmp_path / 'other.db'}", create=True) as b,
    ):
        import_file(a, write_records(tmp_path / "p.csv", 40))
        result = import_file(b, write_records(tmp_path / f"p{suffix}", 40), batch_size=9)
        assert result.inserted == 40
        assert table_rows(a) == table_rows(b)


class FlakyTarget(Forwarding):
    """The real SQLite target behind a fault injector: the first `failures` writes of chosen
    batches raise TransientError before anything is sent, as a network fault would."""

    def __init__(self, inner: SQLiteTarget, fail_batches: dict[int, int]) -> None:
        super().__init__(inner)
        self.fail_batches = dict(fail_batches)
        self.writes = 0

    def execute(self, statements: Sequence[Any], *, before_commit: Any = None) -> Any:
        is_batch = any(type(s).__name__ == "InsertRows" for s in statements)
        if is_batch:
            self.writes += 1
            batch = self.inner.scalar("SELECT MAX(batches) FROM ef_imports WHERE status = 'running'") + 1
            if self.fail_batches.get(batch, 0) > 0:
                self.fail_batches[batch] -= 1
                raise TransientError("D1 DB is overloaded", retry_after=0)
        return self.inner.execute(statements, before_commit=before_commit)


def test_transient_faults_are_retried(
    target: SQLiteTarget, make_csv: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_retry, "SLEEP", lambda seconds: None)
    flaky = FlakyTarget(target, {2: 2, 4: 1})
    logged: list[str] = []
    result = import_file(flaky, make_csv(40), batch_size=10, log=logged.append)
    assert result.status == "completed" and result.inserted == 40 and result.batches == 4
    assert flaky.writes == 4 + 3
    assert sum("retry" in line for line in logged) == 3


def test_persistent_faults_stop_and_the_rerun_resumes(
    target: SQLiteTarget, make_csv: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_retry, "SLEEP", lambda seconds: None)
    source = make_csv(40)
    with pytest.raises(ImportFailedError, match="stopped at record 20 of 40") as caught:
        import_file(FlakyTarget(target, {3: 3}), source, batch_size=10)
    stopped = caught.value.result
    assert str(caught.value) == (
        f"import {stopped.import_id} stopped at record 20 of 40: D1 DB is overloaded."
        " Fix the cause and run the same command again to resume."
    )
    assert (stopped.status, stopped.error, stopped.records_read, stopped.inserted) == (
        "failed",
        "D1 DB is overloaded",
        20,
        20,
    )
    assert ledger(target, stopped.import_id)["status"] == "failed" and count(target) == 20
    assert ledger(target, stopped.import_id)["error"] == "D1 DB is overloaded"
    resumed = import_file(target, source, batch_size=10)
    assert resumed.import_id == stopped.import_id and resumed.resumed_from == 20
    assert (resumed.status, resumed.inserted, resumed.batches) == ("completed", 40, 4)
    assert count(target) == 40


def test_a_changed_file_is_not_resumed_into(
    target: SQLiteTarget, make_csv: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_retry, "SLEEP", lambda seconds: None)
    source = make_csv(30)
    with pytest.raises(ImportFailedError):
        import_file(FlakyTarget(target, {2: 3}), source, batch_size=10)
    make_csv(31)
    with pytest.raises(SourceChangedError, match="changed since import"):
        import_file(target, source, batch_size=10)
    fresh = import_file(target, source, batch_size=10, resume=False)
    assert fresh.resumed_from == 0 and fresh.inserted == 21 and count(target) == 31


@pytest.mark.parametrize("when", ["before", "after"])
def test_resume_after_sigkill_gives_exactly_the_clean_result(tmp_path: Path, when: str) -> None:
    rows = list(generate_records(95, seed=11))
    for bad in (4, 24, 27, 61):  # rejects in batches 1, 3 (the killed one) and 7
        rows[bad]["email"] = "broken"
    rows[50]["license_number"] = rows[10]["license_number"]
    source = write_csv(tmp_path / "pros.csv", rows)
    url = f"sqlite:///{tmp_path / 'killed.db'}"
    env = {**os.environ, KILL_HOOK_ENV: f"3:{when}", "PYTHONPATH": str(ROOT)}
    command = [*CLI, "import", str(source), "--db", url, "--batch-size", "10", "--max-reject-rate", "5%"]
    killed = subprocess.run(command, env=env, capture_output=True, text=True, cwd=tmp_path)
    assert killed.returncode == -signal.SIGKILL
    with connect(url, create=True) as t:
        (row,) = t.query("SELECT * FROM ef_imports")
        assert row["status"] == "running"
        assert row["checkpoint"] == (20 if when == "before" else 30)
        assert count(t) == row["inserted"] == row["checkpoint"] - row["rejected"]
    del env[KILL_HOOK_ENV]
    resumed = subprocess.run([*command, "--json"], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads(resumed.stdout)
    assert summary["import_id"] == row["id"] and summary["resumed_from"] == row["checkpoint"]
    assert (summary["inserted"], summary["skipped"], summary["rejected"]) == (90, 1, 4)
    with connect(f"sqlite:///{tmp_path / 'clean.db'}", create=True) as clean, connect(url, create=True) as t:
        import_file(clean, source, batch_size=10)
        assert table_rows(t) == table_rows(clean)
    with open(summary["rejects_path"], newline="", encoding="utf-8") as f:
        assert [r["record"] for r in csv.DictReader(f)] == ["5", "25", "28", "62"]


def test_an_import_rolled_back_by_another_command_stops_before_its_next_batch(
    target: SQLiteTarget, make_csv: Callable[..., Path]
) -> None:
    from estateflow_nb import rollback

    def roll_back_after_batch_two(metrics: Any) -> None:
        if metrics.number == 2:
            (row,) = target.query("SELECT id FROM ef_imports")
            rollback(target, import_id=row["id"], yes=True, backup=False)

    with pytest.raises(ImportFailedError, match="rolled this import back while it ran") as caught:
        import_file(target, make_csv(40), batch_size=10, progress=roll_back_after_batch_two)
    assert caught.value.result.status == "rolled_back"
    assert count(target) == 0
    (row,) = target.query("SELECT status, inserted, removed, batch_size FROM ef_imports")
    assert (row["status"], row["inserted"], row["removed"], row["batch_size"]) == ("rolled_back", 20, 20, 10)


def test_the_ledger_names_the_rejects_file_by_its_absolute_path(tmp_path: Path) -> None:
    """Read from anywhere (a notebook runs in notebooks/), the ledger's rejects path still finds the file."""
    rows = list(generate_records(30, seed=12))
    rows[3]["email"] = "nope"
    write_csv(tmp_path / "pros.csv", rows)
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    done = invoke("import", "pros.csv", "--db", url, "--max-reject-rate", "0.1", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    with connect(url) as target:
        (recorded,) = [r["rejects_path"] for r in target.query("SELECT rejects_path FROM ef_imports")]
    assert Path(recorded).is_absolute() and Path(recorded).parent == tmp_path and Path(recorded).is_file()


def test_options_at_their_edges_are_accepted() -> None:
    for settings in (
        {"batch_size": 1},
        {"retries": 1},
        {"delay_ms": 0},
        {"max_reject_rate": 0},
        {"max_reject_rate": 1},
    ):
        ImportOptions(**settings)  # type: ignore[arg-type]
    assert ImportOptions.given(None, {}) == ImportOptions()
    base = ImportOptions(batch_size=5, yes=True)
    assert ImportOptions.given(base, {}) is base
    assert ImportOptions.given(base, {"batch_size": 9}) == ImportOptions(batch_size=9, yes=True)


def result_of(**changes: Any) -> ImportResult:
    """A finished import's result as a person reads it, with every count distinct."""
    reasons = Counter({"email": 30, "state": 15, "rating": 4, "city": 1})
    base = ImportResult("imp-1", "pros.csv", "sqlite:///x.db", "small", 100, "skip", "completed", 1500)
    settings = {"records_read": 1500, "inserted": 1200, "updated": 100, "skipped": 150, "rejected": 50}
    settings |= {"batches": 15, "seconds": 2.0, "rejects_path": "/r/imp-1.rejects.csv", "resumed_from": 500}
    return replace(base, **{**settings, "reject_reasons": reasons, **changes})


def test_a_result_says_what_happened_in_lines_for_a_person() -> None:
    result = result_of()
    assert result.records_per_second == 500.0  # the 1,000 records this run read, in 2 s
    assert result.summary().splitlines() == [
        "import imp-1 (completed): small rung, batch size 100",
        "  records read 1,500 of 1,500 (resumed after 500)",
        "  imported 1,200, updated 100, skipped 150 (duplicates), rejected 50",
        "  15 batches in 2.00 s, 500 records/s",
        "  rejects -> /r/imp-1.rejects.csv (30 x email; 15 x state; 4 x rating)",
    ]
    assert repr(result) == (
        "<ImportResult imp-1 completed: 1,500 read, 1,200 inserted, 100 updated, 150 skipped, 50 rejected in 2.00 s>"
    )
    stopped = result_of(status="failed", error="disk full", resumed_from=0, rejects_path=None, seconds=0.0)
    assert stopped.records_per_second == 0.0
    assert stopped.summary().splitlines()[1:] == [
        "  records read 1,500 of 1,500",
        "  imported 1,200, updated 100, skipped 150 (duplicates), rejected 50",
        "  15 batches in 0.00 s, 0 records/s",
        "  rejects (30 x email; 15 x state; 4 x rating)",
        "  stopped: disk full",
    ]
    resumed = result_of(reject_reasons=Counter())  # the reasons of earlier runs are not kept
    assert resumed.summary().splitlines()[-1] == "  rejects -> /r/imp-1.rejects.csv"
    plan = result_of(import_id=None, status="dry_run", dry_run=True, rejected=0, batches=0)
    assert plan.summary().splitlines()[0] == "dry run of pros.csv: small rung, batch size 100"
    assert plan.summary().splitlines()[2].startswith("  would import 1,200,") and len(plan.summary().splitlines()) == 4
    assert repr(plan).startswith("<ImportResult dry run of pros.csv: 1,500 read,")


def test_a_result_as_data_has_rates_and_reasons_in_order() -> None:
    batch = BatchMetrics(1, 100, 90, 5, 3, 2, seconds=0.4, done=100, total=1500, elapsed=0.5)
    idle = replace(batch, number=2, seconds=0.0)
    assert (batch.records_per_second, idle.records_per_second) == (250.0, 0.0)
    data = result_of(seconds=3.0, batch_metrics=[batch, idle]).to_dict()
    assert data["records_per_second"] == 333.3 and data["inserted"] == 1200
    assert list(data["reject_reasons"].items()) == [("email", 30), ("state", 15), ("rating", 4), ("city", 1)]
    assert [m["records_per_second"] for m in data["batch_metrics"]] == [250.0, 0.0]
    assert data["batch_metrics"][0] | {"records_per_second": 0} == {
        "number": 1,
        "records": 100,
        "inserted": 90,
        "updated": 5,
        "skipped": 3,
        "rejected": 2,
        "seconds": 0.4,
        "done": 100,
        "total": 1500,
        "elapsed": 0.5,
        "records_per_second": 0,
    }


def test_each_batch_is_logged_and_free_tier_on_sqlite_plans_nothing(target: SQLiteTarget, tmp_path: Path) -> None:
    logged: list[str] = []
    source = write_records(tmp_path / "p.csv", 25, invalid_share=0.2)
    result = import_file(target, source, batch_size=10, free_tier=True, log=logged.append)
    assert logged[0] == "--free-tier: sqlite has no row-write quota; nothing to plan"
    batches = [re.sub(r"in [0-9.]+ s \([0-9,]+/s\)", "in T", line) for line in logged[1:]]
    per_batch = [(m.inserted, m.rejected) for m in result.batch_metrics]
    assert batches == [
        f"batch {n}: {r} records in T: {i:,} inserted, 0 updated, 0 skipped, {j:,} rejected"
        for n, (r, (i, j)) in enumerate(zip([10, 10, 5], per_batch, strict=True), 1)
    ]
    assert [(m.number, m.records, m.done, m.total) for m in result.batch_metrics] == [
        (1, 10, 10, 25),
        (2, 10, 20, 25),
        (3, 5, 25, 25),
    ]
    assert sum(m.rejected for m in result.batch_metrics) == result.rejected == 5


def test_an_interrupted_import_records_it_and_resumes(target: SQLiteTarget, tmp_path: Path) -> None:
    source = write_records(tmp_path / "p.csv", 30)

    def stop_after_two(metrics: Any) -> None:
        if metrics.number == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        import_file(target, source, batch_size=10, progress=stop_after_two)
    (row,) = target.query("SELECT * FROM ef_imports")
    assert (row["status"], row["error"], row["checkpoint"], row["inserted"]) == ("failed", "interrupted", 20, 20)
    resumed = import_file(target, source, batch_size=10)
    assert (resumed.import_id, resumed.resumed_from, resumed.inserted, resumed.status) == (
        row["id"],
        20,
        30,
        "completed",
    )
    assert (resumed.records_read, resumed.records_total, resumed.batches, resumed.error) == (30, 30, 3, None)


# --- retries, a target that goes away, and the D1 free tier (on SQLite, behind a target that says "d1") ---


def test_backoff_doubles_from_its_base_jittered_between_half_and_one_and_a_half(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for jitter, factor in ((0.0, 0.5), (0.5, 1.0), (1.0, 1.5)):
        monkeypatch.setattr(_retry.random, "random", lambda jitter=jitter: jitter)
        assert [_retry.backoff(n) for n in (1, 2, 3)] == [0.5 * factor, 1.0 * factor, 2.0 * factor]
        assert _retry.backoff(2, base_seconds=3.0) == 6.0 * factor
    assert _retry.backoff(3, retry_after=7.0) == 7.0 and _retry.backoff(1, retry_after=0.0) == 0.0


def test_a_retry_is_logged_with_its_wait(
    target: SQLiteTarget, make_csv: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    waits: list[float] = []
    monkeypatch.setattr(_retry, "SLEEP", waits.append)
    monkeypatch.setattr(_retry.random, "random", lambda: 0.5)
    logged: list[str] = []
    import_file(FlakyTarget(target, {2: 2}), make_csv(20), batch_size=10, log=logged.append)
    assert [line for line in logged if "retry" in line] == [
        "transient error (D1 DB is overloaded); retry 1 of 2 in 0.0 s",
        "transient error (D1 DB is overloaded); retry 2 of 2 in 0.0 s",
    ]
    assert waits == [0.0, 0.0]  # the server's Retry-After (0) wins over the backoff


class GoneAfter(Forwarding):
    """The real target until `writes` batches are in; then every read and write fails, as a database
    that went away does."""

    def __init__(self, inner: Target, writes: int) -> None:
        super().__init__(inner)
        self.left = writes

    def execute(self, statements: Sequence[Any], *, before_commit: Any = None) -> Any:
        if any(type(s).__name__ == "InsertRows" for s in statements):
            if self.left == 0:
                raise TargetError("the database went away")
            self.left -= 1
        return super().execute(statements, before_commit=before_commit)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        if self.left == 0:
            raise TargetError("the database went away")
        return super().query(sql, params)


def test_a_target_that_goes_away_stops_the_import_with_one_line(
    target: SQLiteTarget, make_csv: Callable[..., Path]
) -> None:
    with pytest.raises(ImportFailedError) as caught:
        import_file(GoneAfter(target, 1), make_csv(30), batch_size=10)
    assert str(caught.value).endswith(
        "stopped at record 10 of 30: the database went away. Fix the cause and run the same command again to resume."
    )
    assert ledger(target, caught.value.result.import_id or "")["status"] == "failed"  # the ledger still took it


def test_an_error_without_words_is_named_by_its_kind(target: SQLiteTarget, make_csv: Callable[..., Path]) -> None:
    def wordless(metrics: Any) -> None:
        raise EstateFlowError()

    with pytest.raises(ImportFailedError) as caught:
        import_file(target, make_csv(20), batch_size=10, progress=wordless)
    assert caught.value.result.error == "EstateFlowError"
    assert ledger(target, caught.value.result.import_id or "")["error"] == "EstateFlowError"


class AsD1(Forwarding):
    """The SQLite target under D1's name: what the importer plans against D1's free tier, on a file."""

    def __init__(self, inner: Target) -> None:
        super().__init__(inner)
        self.kind = "d1"


def spent_today(target: Target, rows: int) -> None:
    """A finished import of earlier today that wrote `rows` rows, as the ledger records it."""
    now = ledger_time()
    target.execute(
        [
            Sql(
                "INSERT INTO ef_imports (id, source_path, source_sha256, target, batch_size, status, started_at,"
                " finished_at, rows_written) VALUES ('imp-earlier', 'x.csv', 'x', 'd1', 10, 'completed', ?, ?, ?)",
                (now, now, rows),
            )
        ]
    )


def test_the_free_tier_plans_the_import_and_refuses_one_that_does_not_fit(
    target: SQLiteTarget, make_csv: Callable[..., Path]
) -> None:
    d1 = AsD1(target)
    logged: list[str] = []
    planned = plan_import(target, 30, 10, "skip")
    import_file(d1, make_csv(30), batch_size=10, free_tier=True, log=logged.append)
    assert logged[0] == f"free tier: {planned.summary()}"
    spent_today(target, FREE_TIER_ROWS_PER_DAY - 50)
    source = make_csv(30, name="more.csv", start=100)
    refusal = plan_import(target, 30, 10, "skip").refusal()
    with pytest.raises(ConfirmationRequired) as refused:
        import_file(d1, source, batch_size=10, free_tier=True)
    assert refused.value.flag == "--split-days"
    assert str(refused.value).split(" after the quota resets")[0] == refusal.split(" after the quota resets")[0]
    assert count(target, "SELECT COUNT(*) FROM ef_imports") == 2  # the refused import never started


def test_split_days_stops_at_the_budget_and_says_what_is_left(
    target: SQLiteTarget, make_csv: Callable[..., Path]
) -> None:
    spent_today(target, FREE_TIER_ROWS_PER_DAY - 60)
    source = make_csv(30)
    with pytest.raises(ImportFailedError) as caught:
        import_file(AsD1(target), source, batch_size=5, free_tier=True, split_days=True)
    result = caught.value.result
    assert 0 < result.records_read < 30 and count(target) == result.records_read
    assert str(caught.value).endswith(stop_advice(target, result.import_id or ""))
    assert "records remain: after the reset, run the same command again" in str(caught.value)
    # The quota resets: the resumed import plans only the records it has left.
    target.execute([Sql("DELETE FROM ef_imports WHERE id = 'imp-earlier'")])
    left = plan_import(target, 30 - result.records_read, 5, "skip")
    logged: list[str] = []
    resumed = import_file(AsD1(target), source, batch_size=5, free_tier=True, split_days=True, log=logged.append)
    assert logged[0] == f"free tier: {left.summary()}" and resumed.status == "completed"
    assert logged[1] == f"resuming import {resumed.import_id} after record {result.records_read:,}"


def test_a_resume_moves_the_rejects_file_into_a_folder_that_is_there_or_not_yet(
    target: SQLiteTarget, make_csv: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_retry, "SLEEP", lambda seconds: None)
    source = make_csv(40, mutate={i: {"email": "not-an-email"} for i in (1, 12, 25, 33)})
    there = source.parent / "there"
    there.mkdir()
    with pytest.raises(ImportFailedError):
        import_file(FlakyTarget(target, {2: 3}), source, batch_size=10)
    with pytest.raises(ImportFailedError):  # resumed into a folder that is there, and stopped again
        import_file(FlakyTarget(target, {3: 3}), source, batch_size=10, rejects_dir=there)
    deep = source.parent / "not" / "yet"
    done = import_file(target, source, batch_size=10, rejects_dir=deep)
    assert Path(done.rejects_path or "").parent == deep.resolve()
    assert len(Path(done.rejects_path or "").read_text().splitlines()) == 1 + 4  # the header, each reject once


def test_a_result_shows_itself_as_html_and_as_a_frame(target: SQLiteTarget, make_csv: Callable[..., Path]) -> None:
    result = import_file(target, make_csv(25), batch_size=10)
    assert str(result.import_id) in result._repr_html_()
    assert list(result.to_frame()["records"]) == [10, 10, 5]


def test_a_resume_elsewhere_whose_old_rejects_file_is_gone_starts_a_new_one(
    target: SQLiteTarget, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_retry, "SLEEP", lambda seconds: None)
    source = write_records(tmp_path / "p.csv", 40, invalid_share=0.2)
    with pytest.raises(ImportFailedError) as caught:
        import_file(FlakyTarget(target, {3: 3}), source, batch_size=10)
    Path(ledger(target, caught.value.result.import_id or "")["rejects_path"]).unlink()
    done = import_file(target, source, batch_size=10, rejects_dir=tmp_path / "else")
    lines = Path(done.rejects_path or "").read_text().splitlines()
    assert lines[0].startswith("record,reason,first_name,") and all(line[0].isdigit() for line in lines[1:])
    assert done.status == "completed" and 0 < len(lines) - 1 < done.rejected  # only this run's rejects are left


def test_with_retries_waits_its_backoff_or_what_the_server_asks_and_gives_up_after_its_attempts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_retry.random, "random", lambda: 0.5)  # no jitter
    faults = [TransientError("busy"), TransientError("busy"), TransientError("slow down", retry_after=7.0)]

    def call() -> str:
        if faults:
            raise faults.pop(0)
        return "done"

    waits: list[float] = []
    logged: list[str] = []
    assert _retry.with_retries(call, attempts=4, base_seconds=2.0, sleep=waits.append, log=logged.append) == "done"
    assert waits == [2.0, 4.0, 7.0]
    assert logged == [
        "transient error (busy); retry 1 of 3 in 2.0 s",
        "transient error (busy); retry 2 of 3 in 4.0 s",
        "transient error (slow down); retry 3 of 3 in 7.0 s",
    ]
    monkeypatch.setattr(_retry, "SLEEP", waits.append)
    faults[:] = [TransientError("busy")] * 2
    with pytest.raises(TransientError):
        _retry.with_retries(call, attempts=2)
    assert waits[3:] == [0.5]  # the module's sleep and base, once: the second failure is the last
    with pytest.raises(ValueError, match=r"^attempts must be at least 1, not 0$"):
        _retry.with_retries(lambda: "never called", attempts=0)


class LedgerRowGone(Forwarding):
    """The target as another command resets it the moment an import has started: its row is gone. It
    returns no rows from a write, as a target that cannot read back in the same request, so that the
    import reads its row on its own (the moment the reset lands)."""

    started = False

    def execute(self, statements: Sequence[Any], *, before_commit: Any = None) -> Any:
        self.started = True
        return dataclasses.replace(super().execute(statements, before_commit=before_commit), rows=[])

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        if self.started and sql == "SELECT * FROM ef_imports WHERE id = ?":
            return []
        return super().query(sql, params)


def test_an_import_whose_ledger_row_goes_as_it_starts_says_so(
    target: SQLiteTarget, make_csv: Callable[..., Path]
) -> None:
    with pytest.raises(EstateFlowError, match=r"^import imp-\S+: its ledger row is gone; run the import again$"):
        import_file(LedgerRowGone(target), make_csv(10), batch_size=10)


def test_a_result_names_its_source_target_and_rung(target: SQLiteTarget, make_csv: Callable[..., Path]) -> None:
    source = make_csv(30)
    result = import_file(target, source, batch_size=10)
    assert (result.source, result.target, result.rung, result.on_conflict) == (str(source), target.url, "test", "skip")
    assert (result.records_total, result.batch_size, result.resumed_from) == (30, 10, 0)
    row = ledger(target, result.import_id or "")
    assert (row["rung"], row["source_path"], row["target"], row["on_conflict"]) == (
        "test",
        str(source),
        target.url,
        "skip",
    )


def test_a_rejected_records_values_are_kept_in_the_rejects_file_whatever_their_type(
    target: SQLiteTarget, tmp_path: Path
) -> None:
    good = dict(next(iter(generate_records(1, seed=5))))
    odd = {**good, "license_number": "L-ODD", "company": None, "rating": {"stars": [4, "½"]}, "review_count": 3.5}
    source = tmp_path / "p.jsonl"
    source.write_text(json.dumps(odd, ensure_ascii=False) + "\n", encoding="utf-8")
    result = import_file(target, source, batch_size=10)
    with open(result.rejects_path or "", newline="", encoding="utf-8") as f:
        (row,) = list(csv.DictReader(f))
    assert (row["company"], row["rating"], row["review_count"]) == ("", '{"stars": [4, "½"]}', "3.5")
    dump = tmp_path / "p.sql"
    dump.write_text(
        "CREATE TABLE professionals (first_name, license_number, phone);\n"
        "INSERT INTO professionals VALUES ('Ana', 'L-BLOB', X'00ff');\n",
        encoding="utf-8",
    )
    with open(import_file(target, dump, batch_size=10).rejects_path or "", newline="", encoding="utf-8") as f:
        (row,) = list(csv.DictReader(f))
    assert row["phone"] == "X'00ff'"


def test_the_ledger_counts_rows_written_and_seconds_of_the_whole_import(
    target: SQLiteTarget, make_csv: Callable[..., Path]
) -> None:
    result = import_file(target, make_csv(25), batch_size=10)
    row = ledger(target, result.import_id or "")
    assert row["rows_written"] == 25 + 3 * 2  # every record, and the ledger's own writes of each batch
    # The ledger's time is taken when the import finishes, the result's just after: both on this clock.
    assert 0 <= row["seconds"] <= result.seconds < time.perf_counter()


def test_the_rejects_file_has_the_sources_columns_and_its_record_numbers(target: SQLiteTarget, tmp_path: Path) -> None:
    rows = [dict(r) for r in generate_records(40, seed=9)]
    rows[15]["email"] = "not-an-email"  # record 16 of the file
    columns = ["license_number", "email", "first_name", "last_name", "industry", "state", "city"]
    source = write_csv(tmp_path / "few.csv", rows, columns)
    result = import_file(target, source, batch_size=10, span=Span(first=11, records=20))
    with open(result.rejects_path or "", newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header, *rejects = list(reader)
    assert header == ["record", "reason", *columns]
    assert [(r[0], r[3]) for r in rejects] == [("16", "not-an-email")]


def test_records_carry_the_imports_start_and_are_read_a_batch_at_a_time(
    target: SQLiteTarget, make_csv: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[dict[str, Any]] = []
    read = importer.read_file_batches

    def noted(path: Path, span: Any, **how: Any) -> Any:
        asked.append({"span": span, **how})
        return read(path, span, **how)

    monkeypatch.setattr(importer, "read_file_batches", noted)
    result = import_file(target, make_csv(25), batch_size=10)
    started = ledger(target, result.import_id or "")["started_at"]
    assert [r["imported_at"] for r in target.query("SELECT DISTINCT imported_at FROM professionals")] == [started]
    assert asked == [
        {
            "span": None,
            "child": False,
            "start": 0,
            "batch_size": 10,
            "import_id": result.import_id,
            "imported_at": started,
            "renderer": None,  # SQLite takes the values as they are
        }
    ]


class AtMost(Forwarding):
    """The real target, refusing for its size any request that carries more than `rows` records."""

    def __init__(self, inner: Target, rows: int) -> None:
        super().__init__(inner)
        self.rows = rows

    def execute(self, statements: Sequence[Any], *, before_commit: Any = None) -> Any:
        carried = sum(len(s.rows) for s in statements if type(s).__name__ == "InsertRows")
        if carried > self.rows:
            raise TooLargeError(f"{carried} records are too many")
        return super().execute(statements, before_commit=before_commit)


def test_a_request_too_large_is_halved_until_it_fits_and_a_single_record_too_large_stops(
    target: SQLiteTarget, make_csv: Callable[..., Path]
) -> None:
    logged: list[str] = []
    result = import_file(AtMost(target, 4), make_csv(20), batch_size=10, log=logged.append)
    assert [line for line in logged if "instead of" in line] == [
        "10 records are too many; sending 5 records a request instead of 10",
        "5 records are too many; sending 2 records a request instead of 5",
    ]
    assert (result.status, result.inserted, count(target)) == ("completed", 20, 20)
    with pytest.raises(ImportFailedError, match=r"stopped at record 0 of 5: 1 records are too many\."):
        import_file(AtMost(target, 0), make_csv(5, name="more.csv", start=100), batch_size=10)


def test_a_dry_run_result_names_what_it_would_do(target: SQLiteTarget, make_csv: Callable[..., Path]) -> None:
    source = make_csv(30)
    import_file(target, make_csv(10, name="earlier.csv"))
    plan = import_file(target, source, batch_size=8, dry_run=True)
    assert (plan.import_id, plan.source, plan.target, plan.rung, plan.batch_size) == (
        None,
        str(source),
        target.url,
        "test",
        8,
    )
    assert (plan.on_conflict, plan.status, plan.records_total, plan.dry_run) == ("skip", "dry_run", 30, True)
    assert (plan.inserted, plan.skipped) == (20, 10)  # the first ten are in already
    update = import_file(target, source, batch_size=8, dry_run=True, on_conflict="update")
    assert (update.on_conflict, update.inserted, update.updated) == ("update", 20, 10)
    ranged = import_file(target, source, batch_size=8, dry_run=True, span=Span(first=21, records=10))
    assert (ranged.records_total, ranged.inserted, ranged.skipped) == (10, 10, 0)


def test_the_rung_of_the_scanned_file_asks_for_confirmation(
    target: SQLiteTarget, make_csv: Callable[..., Path]
) -> None:
    """A file as its scan says it is (here: said to be large, and extra large): the rung's rule applies."""
    info = scan(make_csv(20))
    large, extra = replace(info, records=10_000), replace(info, records=100_000)
    with pytest.raises(ConfirmationRequired) as refused:
        import_file(target, large)
    assert (refused.value.flag, str(refused.value)) == (
        "--yes",
        "10,000 records is a large import: confirm interactively or pass --yes",
    )
    asked: list[str] = []
    assert import_file(target, large, confirm=lambda q: asked.append(q) or True).status == "completed"
    assert asked == ["10,000 records is a large import. Go ahead?"]
    assert import_file(target, large, yes=True).status == "completed"
    with pytest.raises(ConfirmationRequired) as refused:
        import_file(target, extra, yes=True, confirm=lambda q: True)
    assert refused.value.flag == "--force"
    assert import_file(target, extra, force=True).rung == "extra_large"


def test_records_that_span_lines_are_counted_as_records(target: SQLiteTarget, tmp_path: Path) -> None:
    rows = [{**r, "company": "Two\nLines"} for r in generate_records(150, seed=4)]
    result = import_file(target, write_csv(tmp_path / "p.csv", rows), batch_size=50)
    assert (result.records_total, result.inserted) == (150, 150)


def test_a_file_with_more_lines_than_records_is_counted_exactly(target: SQLiteTarget, tmp_path: Path) -> None:
    """Quoted fields may span lines: the scan counts records, not lines, up to the top rung's size (an
    estimate from the line count only past it)."""
    rows = list(generate_records(150, seed=9))
    for row in rows:
        row["company"] = "Line one\nline two"
    source = write_csv(tmp_path / "multi.csv", rows)
    assert source.read_text(encoding="utf-8").count("\n") > 2 * 150
    totals: list[int] = []
    result = import_file(target, source, yes=True, progress=lambda metrics: totals.append(metrics.total))
    assert (result.records_total, result.records_read, result.inserted) == (150, 150, 150)
    assert totals == [150, 150]  # what the progress bar counts to, from the first batch on
