"""Backups of D1 through its export API, and restores through Time Travel, against the local engine
(D1's own dump behind a pre-signed URL, bookmarks over real snapshots: see tests/d1_engine)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest

from estateflow_nb import (
    ConfirmationRequired,
    EstateFlowError,
    backup,
    connect,
    generate_records,
    import_file,
    restore,
    restore_bookmark,
    rollback,
    status,
    verify,
)
from estateflow_nb._time import utc_now
from estateflow_nb.targets.d1 import D1Target, dump_bookmark

from .conftest import count, invoke, write_csv
from .d1_fixtures import FaultyTransport, LocalD1Engine, RecordingTransport, envelope_error, replay_like_wrangler
from .test_importer import table_rows

TABLES = ("professionals", "ef_imports", "ef_before_images", "ef_rollbacks")


def everything(target: Any) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of our tables, in a stable order, with each value's SQLite type.

    D1's export writes numbers as JavaScript does, so a whole REAL comes back as an INTEGER where the
    column has no declared type to turn it back: only in ef_before_images, whose values only ever go
    back into professionals' typed columns. There a whole number's type reads "number".
    """
    found = {}
    for table in TABLES:
        columns = [row["name"] for row in target.query(f"PRAGMA table_info({table})")]
        typed = ", ".join(f"typeof({c}), {c}" for c in columns)
        rows = [tuple(r.values()) for r in target.query(f"SELECT {typed} FROM {table} ORDER BY rowid")]
        if table == "ef_before_images":
            rows = [tuple(_number(kind, value) for kind, value in zip(r[0::2], r[1::2], strict=True)) for r in rows]
        found[table] = rows
    return found


def _number(kind: str, value: Any) -> tuple[str, Any]:
    return ("number", value) if kind in ("integer", "real") and value == int(value) else (kind, value)


def loaded(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    db = sqlite3.connect(path)
    db.row_factory = lambda cursor, row: dict(zip([d[0] for d in cursor.description], row, strict=True))

    class Local:
        def query(self, sql: str) -> list[dict[str, Any]]:
            return db.execute(sql).fetchall()

    try:
        return everything(Local())
    finally:
        db.close()


def two_imports(target: Any, tmp_path: Path) -> str:
    """An import, then an update of five of its rows and ten more: the second import's id."""
    records = list(generate_records(40, seed=31))
    records[3]["city"] = "Line\nbreak, O'Brien \x00 NUL"
    records[4]["rating"] = 4.0
    import_file(target, write_csv(tmp_path / "a.csv", records[:30]), batch_size=10)
    changed = [{**r, "rating": 3.5} for r in records[:5]] + records[30:]
    return import_file(target, write_csv(tmp_path / "b.csv", changed), batch_size=10, on_conflict="update").import_id


def test_a_backup_goes_through_the_export_api_and_the_token_never_reaches_the_signed_url(
    d1_engine: LocalD1Engine, d1_url: str, tmp_path: Path
) -> None:
    recorder = RecordingTransport()
    with D1Target.from_url(d1_url, transport=recorder, ensure_schema=True, create=True) as target:
        second = two_imports(target, tmp_path)
        expected = everything(target)
        bookmark = target.bookmark()
        path = backup(target, backups_dir=tmp_path / "backups")
        assert target.last_copy is not None and target.last_copy.how == "export"
        rollback(target, import_id=second, yes=True, backup=False)
        undone_on_d1 = table_rows(target)
    exports = [r for r in recorder.sent if r.url.path.endswith("/export")]
    assert [json.loads(r.content)["output_format"] for r in exports] == ["polling", "polling"]
    assert "current_bookmark" in json.loads(exports[1].content)  # the poll names the export it polls
    (download,) = [r for r in recorder.sent if "/__signed/" in r.url.path]
    assert "authorization" not in download.headers and d1_engine.token not in str(download.headers)
    assert d1_engine.observed()["downloads"] == [{"authorization": False}]
    # The export is the database at its at_bookmark, recorded in the dump kept beside the backup.
    dump = path.with_suffix(".sql")
    assert dump_bookmark(dump) == bookmark
    assert loaded(path) == expected
    # The backup restored into SQLite undoes the same import to exactly the same table.
    with connect(f"sqlite:///{tmp_path / 'local.db'}", create=True) as local:
        restore(local, path, yes=True, backup_first=False)
        rollback(local, import_id=second, yes=True, backup=False)
        assert table_rows(local) == undone_on_d1


def test_the_engine_refuses_a_signed_url_fetched_with_credentials(d1_engine: LocalD1Engine, d1_url: str) -> None:
    """As S3 and R2 do: a pre-signed URL is its own credential, and a second one is refused."""
    with connect(d1_url, create=True) as target:
        assert isinstance(target, D1Target)
        answer = target.api.request("POST", "/export", {"output_format": "polling"})
        while answer.get("status") != "complete":
            answer = target.api.request(
                "POST", "/export", {"output_format": "polling", "current_bookmark": answer["at_bookmark"]}
            )
    signed = answer["result"]["signed_url"]
    refused = httpx.get(signed, headers={"Authorization": f"Bearer {d1_engine.token}"})
    assert refused.status_code == 400 and "Only one auth mechanism allowed" in refused.text
    assert httpx.get(signed).status_code == 200


def test_the_dump_kept_loads_in_d1_as_wrangler_would_and_in_sqlite(
    d1_engine: LocalD1Engine, d1_url: str, tmp_path: Path
) -> None:
    with connect(d1_url, create=True) as target:
        two_imports(target, tmp_path)
        expected = everything(target)
        path = backup(target, backups_dir=tmp_path / "backups")
    dump = path.with_suffix(".sql")
    text = dump.read_text(encoding="utf-8")
    assert "\x00" not in text
    assert not any(line.upper().startswith(("BEGIN", "COMMIT", "PRAGMA")) for line in text.splitlines())
    # Into another, empty D1 database, one statement at a time: every statement is one D1 accepts.
    other = d1_engine.databases[1]
    d1_engine.wipe(other)
    with d1_engine.target(other) as copy:
        assert replay_like_wrangler(copy, dump) > 40
        assert everything(copy) == expected


@pytest.mark.parametrize("unavailable", [{"available": False}, {"error": "D1 Export error: cannot export"}])
def test_without_the_export_api_a_backup_pages_out_and_says_so(
    d1_engine: LocalD1Engine, d1_url: str, tmp_path: Path, unavailable: dict[str, Any]
) -> None:
    with connect(d1_url, create=True) as target:
        assert isinstance(target, D1Target)
        two_imports(target, tmp_path)
        expected = everything(target)
        bookmark = target.bookmark()
        d1_engine.service(export=unavailable)
        path = backup(target, backups_dir=tmp_path / "backups")
        assert target.last_copy is not None and target.last_copy.how == "paged"
    dump = path.with_suffix(".sql")
    first = dump.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("-- estateflow:") and "paged out through SELECTs, not one snapshot" in first
    assert dump_bookmark(dump) == bookmark
    assert loaded(path) == expected
    other = d1_engine.databases[1]
    d1_engine.wipe(other)
    with d1_engine.target(other) as copy:
        replay_like_wrangler(copy, dump)
        assert everything(copy) == expected


def test_export_polls_at_once_then_every_second_until_complete(
    d1_engine: LocalD1Engine, d1_url: str, tmp_path: Path
) -> None:
    waits: list[float] = []
    d1_engine.service(export={"polls": 6})
    with D1Target.from_url(d1_url, sleep=waits.append, ensure_schema=True, create=True) as target:
        import_file(target, write_csv(tmp_path / "a.csv", generate_records(20, seed=2)), batch_size=10)
        dump = target.dump_sql(tmp_path / "export.sql")
        assert target.last_copy is not None and target.last_copy.how == "export"
    assert waits == [1.0, 1.0, 1.0]  # six polls answered "not yet": three at once, then one a second
    assert dump.read_text(encoding="utf-8").count('INSERT INTO "professionals"') == 20


def test_restore_to_a_bookmark_returns_exactly_and_can_be_undone(d1_url: str, tmp_path: Path) -> None:
    with connect(d1_url, create=True) as target:
        import_file(target, write_csv(tmp_path / "a.csv", generate_records(30, seed=7)), batch_size=10)
        before = everything(target)
        bookmark = target.bookmark()
        assert bookmark is not None
        import_file(target, write_csv(tmp_path / "b.csv", generate_records(25, seed=7, start=30)), batch_size=10)
        after = everything(target)
        plan = restore_bookmark(target, bookmark=bookmark, dry_run=True)
        assert plan.dry_run and plan.rows_before == 55 and everything(target) == after
        with pytest.raises(ConfirmationRequired, match="--yes"):
            restore_bookmark(target, bookmark=bookmark)
        done = restore_bookmark(target, bookmark=bookmark, yes=True)
        assert (done.rows_before, done.rows) == (55, 30) and done.previous_bookmark
        assert f"--bookmark {done.previous_bookmark}" in done.summary()
        # Exactly the state at the bookmark, and the restore recorded with its way back.
        now = everything(target)
        (record,) = [r for r in now.pop("ef_rollbacks") if "time_travel" in r]
        assert done.previous_bookmark in record
        assert now == {k: v for k, v in before.items() if k != "ef_rollbacks"}
        shown = status(target)
        assert shown.bookmark and shown.bookmark["bookmark"] == done.previous_bookmark
        assert verify(target, benchmarks=False).passed
        # Undone: back to after the second import.
        undone = restore_bookmark(target, bookmark=done.previous_bookmark, yes=True)
        now = everything(target)
        assert [r[3] for r in now.pop("ef_rollbacks")] == ["time_travel"]  # this restore's own record
        assert undone.rows == 55 and now == {k: v for k, v in after.items() if k != "ef_rollbacks"}


def test_restore_at_a_time_and_from_the_command_line(d1_engine: LocalD1Engine, d1_url: str, tmp_path: Path) -> None:
    with connect(d1_url, create=True) as target:
        import_file(target, write_csv(tmp_path / "a.csv", generate_records(20, seed=8)), batch_size=10)
        before = everything(target)
        target.bookmark()  # the engine keeps snapshots of the states it named (D1 keeps every minute)
        moment = utc_now()
        import_file(target, write_csv(tmp_path / "b.csv", generate_records(10, seed=8, start=20)), batch_size=10)
    env = d1_engine.env()
    at = moment.isoformat(timespec="milliseconds")
    shown = invoke("restore", "--db", d1_url, "--at", at, "--dry-run", cwd=tmp_path, env=env)
    assert shown.returncode == 0 and "Dry run:" in shown.stdout and "nothing was changed" in shown.stdout
    refused = invoke("restore", "--db", d1_url, "--at", at, cwd=tmp_path, env=env)
    assert refused.returncode == 2 and refused.stderr.startswith("Refused: ")
    done = invoke("restore", "--db", d1_url, "--at", at, "--yes", "--json", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["rows_before"] == 30 and result["rows"] == 20 and result["previous_bookmark"]
    with connect(d1_url) as target:
        now = everything(target)
        now.pop("ef_rollbacks")
        assert now == {k: v for k, v in before.items() if k != "ef_rollbacks"}
    back = invoke("restore", "--db", d1_url, "--bookmark", result["previous_bookmark"], "--yes", cwd=tmp_path, env=env)
    assert back.returncode == 0 and "to undo this restore: estateflow restore" in back.stdout
    with connect(d1_url) as target:
        assert count(target) == 30


def test_restore_refusals_are_one_line(d1_engine: LocalD1Engine, d1_url: str, tmp_path: Path) -> None:
    env = d1_engine.env()
    sqlite = f"sqlite:///{tmp_path / 'local.db'}"
    connect(sqlite, create=True).close()
    cases = [
        (("restore", "--db", sqlite, "--bookmark", "00000001-00000002-00000000-abc", "--yes"), 1, "no Time Travel"),
        (("restore", "--db", d1_url, "--bookmark", "not a bookmark!", "--yes"), 1, "is not a Time Travel bookmark"),
        (("restore", "--db", "d1://" + d1_engine.account_id, "--at", "2999-01-01T00:00:00Z"), 1, "in the future"),
        (("restore", "--db", d1_url, "--at", "yesterday", "--yes"), 1, "is not a time"),
        (("restore", "--db", d1_url, "--at", "2999-01-01T00:00:00Z", "--yes"), 1, "in the future"),
        (("restore", "--db", d1_url, "--bookmark", "00000001-00000002-00000000-abcd", "--yes"), 1, "not valid"),
        (("restore", "--db", d1_url), 2, "exactly one of FILE, --bookmark or --at"),
        (("restore", "x.sqlite", "--db", d1_url, "--bookmark", "b"), 2, "exactly one of FILE, --bookmark or --at"),
    ]
    for args, code, message in cases:
        done = invoke(*args, cwd=tmp_path, env=env)
        assert done.returncode == code and message in done.stderr, (args, done.stderr)
        assert "Traceback" not in done.stderr and d1_engine.token not in done.stderr


def test_a_restore_waits_for_a_running_import(d1_url: str, tmp_path: Path) -> None:
    """While an import runs (here: between its batches), a restore to a bookmark is refused, naming it."""
    with connect(d1_url, create=True) as target:
        import_file(target, write_csv(tmp_path / "a.csv", generate_records(10, seed=9)), batch_size=10)
        bookmark = target.bookmark()
        assert bookmark
        refusals: list[str] = []

        def try_restore(metrics: Any) -> None:
            if metrics.done == metrics.total:  # the last batch's request completed the import: it runs no more
                return
            with connect(d1_url) as other, pytest.raises(EstateFlowError, match=r"^restore refused: import ") as why:
                restore_bookmark(other, bookmark=bookmark, yes=True)
            refusals.append(str(why.value))

        more = write_csv(tmp_path / "b.csv", generate_records(30, seed=9, start=100))
        import_file(target, more, batch_size=10, progress=try_restore)
        assert len(refusals) == 2 and "is running" in refusals[0]
        assert count(target) == 40  # the import went on undisturbed


def test_a_rollback_says_how_to_return_and_that_works(d1_url: str, tmp_path: Path) -> None:
    with connect(d1_url, create=True) as target:
        first = import_file(target, write_csv(tmp_path / "a.csv", generate_records(20, seed=10)), batch_size=10)
        before = everything(target)
        undone = rollback(target, import_id=first.import_id, yes=True, backups_dir=tmp_path / "backups")
        assert count(target) == 0 and undone.bookmark
        assert f"estateflow restore --bookmark {undone.bookmark}" in undone.summary()
        restore_bookmark(target, bookmark=undone.bookmark, yes=True)
        now = everything(target)
        now.pop("ef_rollbacks")
        assert now == {k: v for k, v in before.items() if k != "ef_rollbacks"}


def test_the_engine_allows_ten_restores_per_ten_minutes(d1_url: str, tmp_path: Path) -> None:
    from estateflow_nb import TransientError

    with connect(d1_url, create=True) as target:
        bookmark = target.bookmark()
        assert bookmark
        for _ in range(10):
            target.restore_to_bookmark(bookmark)
        with pytest.raises(TransientError, match="Too many restores"):
            target.restore_to_bookmark(bookmark)
        assert table_rows(target) == []


def test_a_database_emptied_by_mistake_comes_back_from_its_bookmark(
    d1_engine: LocalD1Engine, d1_url: str, tmp_path: Path
) -> None:
    with connect(d1_url, create=True) as target:
        import_file(target, write_csv(tmp_path / "a.csv", generate_records(15, seed=12)), batch_size=10)
        before = everything(target)
        bookmark = target.bookmark()
        assert bookmark
    d1_engine.wipe()  # every table dropped: nothing of ours is left to open
    assert invoke("status", "--db", d1_url, cwd=tmp_path, env=d1_engine.env()).returncode == 1
    done = invoke("restore", "--db", d1_url, "--bookmark", bookmark, "--yes", cwd=tmp_path, env=d1_engine.env())
    assert done.returncode == 0, done.stderr
    with connect(d1_url) as target:
        now = everything(target)
        now.pop("ef_rollbacks")
        assert now == {k: v for k, v in before.items() if k != "ef_rollbacks"}


def test_the_paged_fallback_asks_for_less_when_d1_says_a_page_is_too_much(
    d1_engine: LocalD1Engine, d1_url: str, tmp_path: Path
) -> None:
    cpu = "D1 DB exceeded its CPU time limit and was reset."
    faults = {n: ("before", envelope_error(400, 7500, cpu)) for n in range(1, 20)}
    transport = FaultyTransport(faults, match="LIMIT 2000")
    with D1Target.from_url(d1_url, transport=transport, ensure_schema=True, create=True) as target:
        import_file(target, write_csv(tmp_path / "a.csv", generate_records(2_500, seed=13)), batch_size=1_000)
        expected = everything(target)
        d1_engine.service(export={"available": False})
        path = backup(target, backups_dir=tmp_path / "backups")
    assert transport.seen >= 4 and loaded(path) == expected  # every table's first page, then pages of 1,000
