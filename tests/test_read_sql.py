"""read_sql: a person's own SELECT as a DataFrame, from a SQLite file and from the local D1 engine alike,
read-only by construction: everything that is not one statement that reads is refused in one line, and
the database is exactly as it was (rows, schema, version; on D1 nothing but the schema read is sent)."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from estateflow_nb import (
    EstateFlowError,
    NoDatabaseError,
    RefusedError,
    SqlError,
    Target,
    connect,
    import_file,
    read_sql,
    run_report,
    write_records,
)
from estateflow_nb._frames import TEXT

from .conftest import snapshot
from .report_reading import find, html_outputs

REFUSED = {
    "an insert": "INSERT INTO professionals (first_name) VALUES ('x')",
    "an update": "UPDATE professionals SET rating = 1",
    "a delete": "DELETE FROM professionals",
    "a delete behind a WITH": "WITH gone AS (SELECT id FROM professionals) DELETE FROM professionals",
    "a drop": "DROP TABLE professionals",
    "a new table": "CREATE TABLE x AS SELECT * FROM professionals",
    "two statements": "SELECT 1; DELETE FROM professionals",
    "two reads": "SELECT 1; SELECT 2",
    "a pragma that writes": "PRAGMA user_version = 99",
    "a pragma that reads": "PRAGMA table_info(professionals)",
    "a pragma's table": "SELECT * FROM pragma_table_info('professionals')",
    "an attach": "ATTACH DATABASE '{folder}/attached.db' AS other",
    "a vacuum into a file": "VACUUM INTO '{folder}/copy.db'",
    "a transaction": "BEGIN IMMEDIATE",
    "an extension": "SELECT load_extension('{folder}/x.so')",
    "nothing but a comment": "-- SELECT 1",
}


def _filled(target: Target, tmp_path: Path, n: int = 40) -> None:
    import_file(target, write_records(tmp_path / "rows.csv", n))


def _state(target: Target) -> tuple[Any, ...]:
    """Everything a refused statement might have changed: rows, ledger, schema and its version."""
    schema = target.query("SELECT type, name, sql FROM sqlite_master ORDER BY type, name")
    ledger = target.query("SELECT * FROM ef_imports ORDER BY id")
    return snapshot(target), ledger, schema, target.schema_version()


def test_a_question_comes_back_as_a_dataframe_from_either_target(each_target: Target, tmp_path: Path) -> None:
    _filled(each_target, tmp_path)
    sql = """
        SELECT state, COUNT(*) AS professionals, AVG(rating) AS mean_rating, MAX(is_featured) AS any_featured
        FROM professionals WHERE industry != ? GROUP BY state ORDER BY professionals DESC, state;  -- states
    """
    frame = read_sql(each_target, sql, ("no such industry",))
    engine = each_target.query(
        "SELECT state, COUNT(*) AS n, AVG(rating) AS r FROM professionals GROUP BY state ORDER BY n DESC, state"
    )
    assert list(frame.columns) == ["state", "professionals", "mean_rating", "any_featured"]
    assert frame["state"].tolist() == [row["state"] for row in engine]  # the statement's own order
    assert frame["professionals"].tolist() == [row["n"] for row in engine]
    assert frame["mean_rating"].tolist() == pytest.approx([row["r"] for row in engine])
    assert frame["professionals"].dtype == "int64" and frame["mean_rating"].dtype == "float64"
    assert frame["state"].dtype == TEXT
    assert frame.attrs["estateflow"] | {"sql": ""} == {
        "database": frame.attrs["estateflow"]["database"],
        "sql": "",
        "params": 1,
        "rows": len(engine),
        "limit": 100_000,
        "cut": False,
    }
    # A WITH ... SELECT, a value with a ';' and a quote in a string and as a parameter, and the same
    # column name twice (named as SQLite names them in a subquery).
    odd = "x'; DROP TABLE professionals; --"
    found = read_sql(
        each_target,
        "WITH odd AS (SELECT 'a;b' AS text, ? AS given) SELECT text, given, (SELECT COUNT(*) FROM professionals) AS n,"
        " 1 AS n FROM odd",
        (odd,),
    )
    assert found.to_dict("records") == [{"text": "a;b", "given": odd, "n": 40, "n:1": 1}]
    assert read_sql(each_target, "SELECT id FROM professionals WHERE city = ?", (odd,)).empty
    empty = read_sql(each_target, "SELECT id, city AS place FROM professionals WHERE id < 0")
    assert list(empty.columns) == ["id", "place"] and empty.empty  # the columns, even without a row


def test_everything_but_one_read_is_refused_and_changes_nothing(each_target: Target, tmp_path: Path) -> None:
    _filled(each_target, tmp_path)
    before = _state(each_target)
    requests = getattr(each_target, "api", None)
    for what, sql in REFUSED.items():
        sent = requests.requests if requests is not None else 0
        with pytest.raises(RefusedError) as refused:
            read_sql(each_target, sql.format(folder=tmp_path))
        message = str(refused.value)
        assert message.startswith("read_sql ") and "\n" not in message, what
        if requests is not None:  # D1: only the read of its schema went out, never the statement
            assert requests.requests - sent == 1, what
    assert _state(each_target) == before
    assert not (tmp_path / "attached.db").exists() and not (tmp_path / "copy.db").exists()
    assert "INSERT is refused" in _refusal(each_target, REFUSED["an insert"])
    assert "more than one" in _refusal(each_target, REFUSED["two statements"])
    assert "PRAGMA user_version is refused" in _refusal(each_target, REFUSED["a pragma that writes"])
    assert "ATTACH is refused" in _refusal(each_target, REFUSED["an attach"].format(folder=tmp_path))
    assert "change to the schema" in _refusal(each_target, REFUSED["a drop"])
    with pytest.raises(SqlError, match="no such table: nowhere"):  # a typo is the SQL's fault, said so
        read_sql(each_target, "SELECT * FROM nowhere")


def _refusal(target: Target, sql: str) -> str:
    with pytest.raises(RefusedError) as refused:
        read_sql(target, sql)
    return str(refused.value)


def test_the_rows_are_capped_and_the_cut_is_said(each_target: Target, tmp_path: Path) -> None:
    _filled(each_target, tmp_path, 30)
    with pytest.warns(UserWarning, match="more than 7 rows; only the first 7"):
        cut = read_sql(each_target, "SELECT id FROM professionals ORDER BY id DESC", limit=7)
    every = [row["id"] for row in each_target.query("SELECT id FROM professionals ORDER BY id DESC")]
    assert cut["id"].tolist() == every[:7]
    assert cut.attrs["estateflow"]["cut"] is True and cut.attrs["estateflow"]["rows"] == 7
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # exactly the limit is not cut
        whole = read_sql(each_target, "SELECT id FROM professionals", limit=30)
    assert len(whole) == 30 and whole.attrs["estateflow"]["cut"] is False
    # A question that never ends is cut too: the cap is in the statement, not only in what is kept.
    endless = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT i FROM n"
    with pytest.warns(UserWarning):
        assert read_sql(each_target, endless, limit=5)["i"].tolist() == [1, 2, 3, 4, 5]


def test_arguments_are_checked_before_anything_is_asked(target: Target, tmp_path: Path) -> None:
    for bad, said in (
        ({"sql": ""}, "one SELECT statement"),
        ({"sql": "SELECT ?", "params": {"a": 1}}, "sequence of values"),
        ({"sql": "SELECT ?", "params": "ab"}, "sequence of values"),
        ({"sql": "SELECT 1", "limit": 0}, "at least 1"),
        ({"sql": "SELECT ?"}, "bindings"),
    ):
        with pytest.raises(RefusedError, match=said):
            read_sql(target, **bad)
    missing = tmp_path / "nowhere" / "x.db"
    with pytest.raises(NoDatabaseError):
        read_sql(f"sqlite:///{missing}", "SELECT 1")
    assert not missing.parent.exists()  # reading never creates
    with pytest.raises(EstateFlowError, match="a target or a database URL"):
        read_sql(42, "SELECT 1")  # type: ignore[arg-type]


def test_a_url_is_opened_for_the_question_and_closed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'by-url.db'}"
    with connect(url, create=True) as target:
        _filled(target, tmp_path, 12)
    frame = read_sql(url, "SELECT COUNT(*) AS n FROM professionals")
    assert frame["n"].tolist() == [12] and frame.attrs["estateflow"]["database"] == str(tmp_path / "by-url.db")


def test_the_d1_token_is_nowhere(d1_target: Target, tmp_path: Path) -> None:
    token = os.environ["CLOUDFLARE_API_TOKEN"]
    _filled(d1_target, tmp_path, 10)
    frame = read_sql(d1_target, f"SELECT COUNT(*) AS n FROM professionals WHERE city != '{token}'")
    assert frame["n"].tolist() == [10]
    assert token not in repr(frame.attrs) and "<token>" in frame.attrs["estateflow"]["sql"]
    for sql in (f"SELECT '{token}' FROM nowhere", f"DELETE FROM professionals WHERE city = '{token}'"):
        with pytest.raises(EstateFlowError) as failed:
            read_sql(d1_target, sql)
        assert token not in str(failed.value) and token not in repr(failed.value.__dict__)
    assert isinstance(frame, pd.DataFrame)


# --- the exploration report's own question ------------------------------------------------------------


def test_the_explore_report_asks_its_question_and_shows_the_answer(explore_db: str, tmp_path: Path) -> None:
    out = tmp_path / "reports"
    example = run_report("explore", db=explore_db, parameters={"industry": "legal"}, out_dir=out)
    with connect(explore_db) as target:
        tiers = target.query(
            "SELECT subscription_tier AS tier, COUNT(*) AS n FROM professionals WHERE industry = 'legal'"
            " GROUP BY subscription_tier ORDER BY n DESC, tier"
        )
    soups = html_outputs(example.notebook)
    (answer,) = [s for s in soups if s.select_one("table.dataframe") is not None]
    rows = [[td.get_text(strip=True) for td in tr.select("td")] for tr in answer.select("table.dataframe tbody tr")]
    assert [(r[0], int(r[1])) for r in rows] == [(t["tier"], t["n"]) for t in tiers]  # the industry filter applied
    toc = [a["href"] for a in find(soups, ".ef-toc").select("a")]
    assert (
        toc[-1] == "#question"
        and find(soups, "h2#question").select_one("h2#question").get_text(strip=True) == "Your own question"
    )
    assert "GROUP BY subscription_tier" in find(soups, "pre.ef-sql").select_one("pre.ef-sql").get_text()

    question = "SELECT state, COUNT(*) AS professionals FROM professionals GROUP BY state ORDER BY state"
    asked = run_report("explore", db=explore_db, parameters={"question": question}, out_dir=out)
    soups = html_outputs(asked.notebook)
    assert find(soups, "pre.ef-sql").select_one("pre.ef-sql").get_text() == question
    (answer,) = [s for s in soups if s.select_one("table.dataframe") is not None]
    rows = [[td.get_text(strip=True) for td in tr.select("td")] for tr in answer.select("table.dataframe tbody tr")]
    assert rows == [[r["state"], str(r["professionals"])] for r in read_sql(explore_db, question).to_dict("records")]
    assert find(soups, "p.ef-answer").select_one("p.ef-answer").get_text().startswith(f"{len(rows)} rows from ")

    with connect(explore_db) as target:
        before = _state(target)
    with pytest.raises(EstateFlowError, match=r"stopped in cell .*Your own question.*RefusedError: read_sql only"):
        run_report("explore", db=explore_db, parameters={"question": "DELETE FROM professionals"}, out_dir=out)
    with connect(explore_db) as target:
        assert _state(target) == before
