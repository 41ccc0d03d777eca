from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from estateflow_nb import EstateFlowError, SqlError, TargetError, backup, connect, restore
from estateflow_nb._sql import quote_name, quote_text, text_list
from estateflow_nb.quota import QuotaGuard, plan_import
from estateflow_nb.targets import CHANGES, InsertRows, Sql, SQLiteTarget, Target, resolve_url


def test_connect_understands_urls_and_bare_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    relative = connect("sqlite:///sub/rel.db", create=True)
    assert isinstance(relative, SQLiteTarget) and (tmp_path / "sub" / "rel.db").exists()
    absolute = connect(f"sqlite:///{tmp_path / 'abs.db'}", create=True)
    assert absolute.path == tmp_path / "abs.db"
    bare = connect("bare.db", create=True)
    assert bare.url == f"sqlite:///{tmp_path / 'bare.db'}" and (tmp_path / "bare.db").exists()
    for t in (relative, absolute, bare):
        assert t.scalar("SELECT COUNT(*) FROM ef_imports") == 0
        t.close()


def test_default_url_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ESTATEFLOW_DB", raising=False)
    monkeypatch.delenv("ESTATEFLOW_HOME", raising=False)
    assert resolve_url() == f"sqlite:///{tmp_path / 'data' / 'estateflow.db'}"
    monkeypatch.setenv("ESTATEFLOW_DB", "sqlite:///elsewhere.db")
    assert resolve_url() == f"sqlite:///{tmp_path / 'elsewhere.db'}"
    assert resolve_url("x.db") == f"sqlite:///{tmp_path / 'x.db'}"


@pytest.mark.parametrize("url", ["postgres://host/db", "sqlite://relative.db"])
def test_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(EstateFlowError, match="URL"):
        connect(url, create=True)


def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("this is not sqlite, just text that is long enough to have a header" * 20)
    with pytest.raises(EstateFlowError, match="not a usable SQLite database"):
        connect(str(path), create=True)


def test_execute_is_all_or_nothing(each_target: Target) -> None:
    target = each_target
    target.execute([Sql("CREATE TABLE t (a INTEGER UNIQUE)")])
    with pytest.raises(TargetError, match="UNIQUE"):
        target.execute([Sql("INSERT INTO t VALUES (1)"), Sql("INSERT INTO t VALUES (1)")])
    assert target.scalar("SELECT COUNT(*) FROM t") == 0
    with pytest.raises(SqlError, match="syntax error"):
        target.execute([Sql("INSERT INTO t VALUES (2)"), Sql("INSRT INTO t VALUES (3)")])
    assert target.scalar("SELECT COUNT(*) FROM t") == 0


def test_changes_is_bound_to_the_previous_statement(each_target: Target) -> None:
    target = each_target
    target.execute(
        [
            Sql("CREATE TABLE t (a INTEGER UNIQUE)"),
            Sql("CREATE TABLE n (inserted INTEGER)"),
            Sql("INSERT INTO n VALUES (0)"),
        ]
    )
    rows = [(1,), (2,), (2,), (3,)]
    result = target.execute(
        [
            InsertRows(
                "t",
                ["a"],
                rows,
                tail="ON CONFLICT(a) DO NOTHING",
                then=Sql("UPDATE n SET inserted = inserted + ?", (CHANGES,)),
            ),
            Sql("INSERT INTO t SELECT a + 10 FROM t"),
            Sql("UPDATE n SET inserted = inserted + ?", (CHANGES,)),
        ]
    )
    assert result.changes == [3, 3, 1]
    assert target.scalar("SELECT inserted FROM n") == 6


def test_before_commit_failure_rolls_back(target: SQLiteTarget) -> None:
    target.execute([Sql("CREATE TABLE t (a)")])

    def boom() -> None:
        raise RuntimeError("crash before commit")

    with pytest.raises(RuntimeError):
        target.execute([Sql("INSERT INTO t VALUES (1)")], before_commit=boom)
    assert target.scalar("SELECT COUNT(*) FROM t") == 0
    assert not target.connection.in_transaction


def test_limits_and_size(target: SQLiteTarget) -> None:
    assert target.limits.max_params >= 999
    assert target.size_bytes() and target.size_bytes() > 0


def test_a_quota_guard_forwards_every_method_of_the_interface() -> None:
    """Each method is forwarded by name: one left to the base class would answer for the guard
    (a bookmark of None, a refusal to back up) instead of the target it guards."""
    interface = {name for name, value in vars(Target).items() if callable(value) and not name.startswith("_")}
    built_on_query = {"scalar"}
    below_target = QuotaGuard.__mro__[: QuotaGuard.__mro__.index(Target)]  # the guard and what it builds on
    assert interface - built_on_query <= {name for cls in below_target for name in vars(cls)}


def test_a_quota_guard_backs_up_and_restores_its_sqlite_target(target: SQLiteTarget, tmp_path: Path) -> None:
    target.execute(
        [
            Sql(
                "INSERT INTO ef_imports (id, source_path, source_sha256, target, batch_size, status,"
                " started_at) VALUES ('imp-1', 'a.csv', 'abc', 'x', 10, 'completed', '2026-01-01T00:00:00Z')"
            )
        ]
    )
    guard = QuotaGuard(target, plan_import(target, 10, 10))
    assert guard.is_same_file(target.path) and not guard.is_same_file(tmp_path / "other.db")
    assert guard.replace_refusal() is None and guard.bookmark() is None
    path = backup(guard, backups_dir=tmp_path / "backups")
    target.execute([Sql("DELETE FROM ef_imports")])
    restore(guard, path, yes=True, backup_first=False)
    assert target.scalar("SELECT id FROM ef_imports") == "imp-1"


def test_a_sqlite_file_has_no_time_travel(target: SQLiteTarget) -> None:
    from datetime import UTC, datetime

    from estateflow_nb import restore_bookmark

    assert target.bookmark() is None and target.bookmark(datetime(2026, 1, 1, tzinfo=UTC)) is None
    with pytest.raises(EstateFlowError, match="no Time Travel bookmarks"):
        target.restore_to_bookmark("00000001-00000002-00000000-abcd")
    with pytest.raises(EstateFlowError, match="keeps no Time Travel history"):
        restore_bookmark(target, bookmark="00000001-00000002-00000000-abcd", yes=True)
    assert target.scalar("SELECT COUNT(*) FROM ef_rollbacks") == 0


def test_names_and_texts_are_quoted_as_sqlite_reads_them() -> None:
    """The quoting of the SQL we build: every quote doubled, and SQLite reads back exactly what it was."""
    table, column, text = 'my "odd" table', 'a "b"', "O'Brien's"
    assert quote_name(table) == '"my ""odd"" table"'
    assert quote_text(text) == "'O''Brien''s'"
    assert text_list(["a", "b'c", ""]) == "'a', 'b''c', ''"
    db = sqlite3.connect(":memory:")
    db.execute(f"CREATE TABLE {quote_name(table)} ({quote_name(column)})")
    db.execute(f"INSERT INTO {quote_name(table)} VALUES ({quote_text(text)}), ('other')")
    found = db.execute(
        f"SELECT {quote_name(column)} FROM {quote_name(table)} WHERE {quote_name(column)} IN ({text_list([text, 'x'])})"
    )
    assert found.fetchall() == [(text,)]
