"""Reports: papermill runs of the real notebooks on small generated data, read back from their outputs.

The numbers a report shows are compared with what the engine answers for the same database; the
HTML is checked for what makes it a report (no code, no script, nothing from the network).
"""

from __future__ import annotations

import json
import re
import shlex
import sys
from pathlib import Path

import nbformat
import pytest
from bs4 import BeautifulSoup
from click.testing import CliRunner

import estateflow_nb
from estateflow_nb import (
    EstateFlowError,
    backup,
    connect,
    explore,
    list_backups,
    rollback,
    status,
    verify,
    write_records,
)
from estateflow_nb._look import FAIL_MARK, PASS_MARK
from estateflow_nb.cli import cli
from estateflow_nb.reports import REPORTS, ReportResult, check_parameters, run_report
from estateflow_nb.targets import Sql, describe_url

from .conftest import ROOT, count, invoke, run_cli, snapshot
from .d1_fixtures import LocalD1Engine
from .report_reading import (
    RUNG,
    assert_self_contained,
    find,
    header_facts,
    headers,
    html_outputs,
    image_alts,
    images,
    ladder_verdict,
    outputs,
    table_rows,
    tables_with,
    verdict,
)

STAMPED = r"\d{8}T\d{6}Z(-\d+)?"


# --- the verification report ---------------------------------------------------------------------------


def test_verification_report_files_and_parameters(verification_report: ReportResult, broken_db: str) -> None:
    html, notebook = verification_report.html, verification_report.notebook
    assert re.fullmatch(rf"verification-{STAMPED}\.html", html.name)
    assert notebook == html.with_suffix(".ipynb") and notebook.exists()
    nb = nbformat.read(str(notebook), as_version=4)
    assert nb.metadata.papermill.parameters == {"db": broken_db, "interactive": False}
    assert nb.metadata.kernelspec.name == "estateflow"
    assert "widgets" not in nb.metadata  # headless: results, never controls


def test_verification_report_shows_what_the_engine_finds(verification_report: ReportResult, broken_db: str) -> None:
    with connect(broken_db, create=True) as target:
        engine = verify(target, runs=1, history=False)
        ledger = status(target)
    soups = html_outputs(verification_report.notebook)

    header = find(soups, ".ef-report-header")
    assert header.select_one(".ef-verdict").get_text(strip=True) == "FAILED"
    facts = header_facts(header)
    assert facts["Database"] == describe_url(broken_db) == broken_db.removeprefix("sqlite:///")
    assert facts["Holds"].startswith(f"{engine.rows:,} professionals, ") and facts["Holds"].endswith(" MB")
    assert facts["estateflow_nb version"] == estateflow_nb.__version__
    assert facts["Checks"] == f"{sum(c.passed for c in engine.checks)} of 12 passed" == "10 of 12 passed"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", facts["Verified at"])
    assert facts["Command"] == f"estateflow report verification --db {broken_db}"
    assert facts["Parameters"].startswith(f"db='{broken_db}', runs=5, sample_size=3")
    assert facts["History"].startswith("recorded as ver-")
    contents = [a.get_text() for a in find(soups, ".ef-toc").select("a")]
    assert contents[:3] == ["The twelve checks", "Failing values", "Rejected records"]
    for link in find(soups, ".ef-toc").select("a"):  # every entry leads to its section
        assert find(soups, f"h2{link['href']}").get_text(strip=True) == link.get_text()

    (checks,) = tables_with(soups, "#")
    rows = table_rows(checks)
    assert [int(r[0]) for r in rows] == list(range(1, 13))
    for row, check in zip(rows, engine.checks, strict=True):
        assert row[1] == check.title
        assert row[2] == ("✔\u00a0pass" if check.passed else "✘\u00a0FAIL"), check.name
        assert row[3] == check.summary, check.name
        assert row[5] == f"{check.failing:,}", check.name
    assert rows[4][3] == f"1 of {engine.rows:,} rows malformed"  # what "observed" says for emails

    failing = [s.get_text(" ", strip=True) for s in soups if s.select_one("h3.ef-failing")]
    assert [t.split(".")[0] for t in failing] == ["1", "5"]  # total count, email format
    kinds = [t for t in tables_with(soups, "kind") if t.select_one(".ef-kinds")]
    assert table_rows(kinds[-1]) == [['no "@"', "1", f"{1 / engine.rows:.1%}", "ada.hand-at-example"]]
    examples = [s for s in soups if s.select_one(".ef-examples") and "HAND-1" in s.get_text()]
    assert len(examples) == 2  # the hand-made row is an example of both failing checks
    undo = [li.get_text() for s in soups for li in s.select(".ef-undo li")]
    first_import = ledger.imports[0]["id"]
    assert f"estateflow rollback import {first_import} --db {broken_db}" not in undo  # the hand-made row has no import

    (cities,) = tables_with(soups, "city")
    top = engine.check("top_cities").observed
    assert [r[:4] for r in table_rows(cities)] == [
        [c["city"], c["state"], f"{c['count']:,}", f"{c['avg_rating']:.1f}"] for c in top
    ]

    (ledger_table,) = tables_with(soups, "import")
    assert [r[0] for r in table_rows(ledger_table)] == [row["id"] for row in ledger.imports]

    (latency,) = tables_with(soups, "benchmark")
    assert [r[0] for r in table_rows(latency)] == [b.title for b in engine.benchmarks]
    assert [r[3] for r in table_rows(latency)] == [f"{b.threshold_ms:,.0f} ms" for b in engine.benchmarks]
    # The verdict is the notebook's own: two checks fail, whatever the latencies.
    marks = [r[2] for r in rows] + [r[1] for r in table_rows(latency)]
    assert marks.count(FAIL_MARK) >= 2

    # Latency, distributions, rating histogram, top cities: each an embedded PNG (and no history yet).
    assert [alt.split(":")[0] for alt in image_alts(verification_report.notebook)] == [
        "Latency",
        "Distributions of 301 professionals",
        "Rating distribution",
        "Top 10 cities by professionals",
    ]


def test_verification_report_html_is_self_contained_without_code(verification_report: ReportResult) -> None:
    html = verification_report.html.read_text(encoding="utf-8")
    assert_self_contained(html)
    soup = BeautifulSoup(html, "html.parser")
    pictures = soup.select("img")
    assert all(img["src"].startswith("data:image/png;base64,") for img in pictures)
    assert len(pictures) == 4
    assert soup.title.get_text() == "EstateFlow verification report"
    text = soup.get_text(" ")
    # No code and no prompts; the notebook's introduction and its panel are for people at the notebook.
    assert "views.show" not in text and "report = verify" not in text and "In\xa0[" not in text
    assert "The verdict first, then the twelve checks" not in text and "VerifyPanel" not in text
    # The verdict comes first.
    first = soup.select_one("main").find(string=re.compile(r"\S"))
    assert first is not None and first.strip() == "FAILED"
    assert "Distributions" in text and "Import ledger" in text


def test_an_empty_database_is_nothing_to_verify(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    connect(url, create=True).close()
    done = invoke("verify", "--db", url, cwd=tmp_path)
    assert done.returncode == 1 and "Verification FAILED: nothing to verify." in done.stdout
    assert "Latency: not meaningful on an empty table" in done.stdout
    result = run_report("verification", db=url, out_dir=tmp_path / "reports")
    soups = html_outputs(result.notebook)
    header = find(soups, ".ef-report-header")
    facts = header_facts(header)
    assert verdict(header) == "NOTHING TO VERIFY" and facts["Latency benchmarks"] == "not meaningful on an empty table"
    assert facts["Holds"].startswith("0 professionals")
    assert not tables_with(soups, "benchmark")
    assert "Latency" in image_alts(result.notebook)  # a chart that says why it has no bars


def test_a_report_takes_relative_paths_from_the_project_root(
    broken_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The kernel runs in notebooks/, as JupyterLab's do; `data/x.db` and `-p failures out` still mean
    the project root's, and the failures the report wrote are linked from it."""
    home = tmp_path / "project"
    (home / "data").mkdir(parents=True)
    (home / "data" / "x.db").write_bytes(Path(broken_db.removeprefix("sqlite:///")).read_bytes())
    monkeypatch.setenv("ESTATEFLOW_HOME", str(home))
    before = sorted((ROOT / "notebooks").iterdir())
    result = run_report("verification", db="data/x.db", parameters={"failures": "out", "runs": "1"}, out_dir=tmp_path)
    assert result.parameters["db"] == f"sqlite:///{home / 'data' / 'x.db'}"
    assert result.parameters["failures"] == str(home / "out")
    assert sorted(p.name for p in (home / "out").iterdir()) == ["email_format.csv", "total_count.csv"]
    assert sorted((ROOT / "notebooks").iterdir()) == before  # nothing written beside the notebooks
    links = [a["href"] for s in html_outputs(result.notebook) for a in s.select(".ef-failures-file a")]
    assert links == [(home / "out" / name).as_uri() for name in ("total_count.csv", "email_format.csv")]
    facts = header_facts(find(html_outputs(result.notebook), ".ef-report-header"))
    command = shlex.split(facts["Command"])
    assert command == [
        "estateflow", "report", "verification", "--db", f"sqlite:///{home / 'data' / 'x.db'}",
        "-p", "runs", "1", "-p", "failures", str(home / "out"),
    ]  # fmt: skip


# --- the ladder report, through the command line -------------------------------------------------------


def test_ladder_report_from_the_command_line(tmp_path: Path) -> None:
    """`estateflow report ladder` runs the whole ladder headless; `--open` hands the HTML to a browser.

    The one test that runs the whole default ladder (11,110 records, four rungs) from end to end;
    every other test runs a ladder of small files."""
    opened = tmp_path / "opened.txt"
    browser = tmp_path / "browser.py"
    browser.write_text(f"import sys, pathlib; pathlib.Path({str(opened)!r}).write_text(sys.argv[1])\n")
    db = f"sqlite:///{tmp_path / 'ladder.db'}"
    parameters = ["-p", "directory", str(tmp_path / "data"), "-p", "yes", "true", "-p", "runs", "1"]
    done = run_cli(
        *["report", "ladder", "--db", db, *parameters, "--out-dir", str(tmp_path / "reports"), "--open"],
        cwd=tmp_path,
        env={"BROWSER": f"{sys.executable} {browser} %s"},
    )
    assert done.returncode == 0, done.stderr
    html = Path(done.stdout.strip().splitlines()[-1])
    assert html.parent == tmp_path / "reports" and re.fullmatch(rf"ladder-{STAMPED}\.html", html.name)
    assert opened.read_text() == html.resolve().as_uri()
    assert "executed notebook" in done.stderr and "WARNING" not in done.stderr

    with connect(db, create=True) as target:
        ledger = target.query("SELECT rung, checkpoint, inserted FROM ef_imports ORDER BY started_at, rowid")
        assert target.scalar("SELECT COUNT(*) FROM professionals") == 11_110
        assert all(check.passed for check in verify(target, benchmarks=False).checks)
    soups = html_outputs(html.with_suffix(".ipynb"))
    header = find(soups, ".ef-report-header")
    assert header_facts(header)["Records handled"] == "11,110"
    (rungs,) = tables_with(soups, "rung")
    rows = table_rows(rungs)
    assert verdict(header) == ladder_verdict(rows)
    assert [r[0] for r in rows] == [row["rung"] for row in ledger] == ["test", "small", "medium", "large"]
    assert [r[RUNG["records"]] for r in rows] == [f"{row['checkpoint']:,}" for row in ledger]
    assert [r[RUNG["inserted"]] for r in rows] == [f"{row['inserted']:,}" for row in ledger]
    assert [r[RUNG["rejected share"]] for r in rows] == ["0.0%"] * 4
    assert [r[RUNG["target/s"]] for r in rows] == ["-", "50", "75", "100"]
    assert rows[0][RUNG["verified"]] == "-" and all(r[RUNG["verified"]] in ("yes", "NO") for r in rows[1:])
    assert find(soups, ".ef-no-rejects").get_text(strip=True) == "No import rejected a record."
    assert len(images(html.with_suffix(".ipynb"))) == 1  # the throughput chart
    # The last verification's checks close the report.
    (checks,) = tables_with(soups, "#")
    assert len(table_rows(checks)) == 12
    assert_self_contained(html.read_text(encoding="utf-8"))

    # Run again, the same command: every record is already there, so the ladder says "nothing new".
    again = invoke("report", "ladder", "--db", db, *parameters, "--out-dir", str(tmp_path / "reports"), cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    soups = html_outputs(Path(again.stdout.strip().splitlines()[-1]).with_suffix(".ipynb"))
    (rungs,) = tables_with(soups, "rung")
    assert verdict(find(soups, ".ef-report-header")) == ladder_verdict(table_rows(rungs)) == "NOTHING NEW"
    assert [r[RUNG["records/s"]] for r in table_rows(rungs)] == ["-"] * 4


# --- the exploration report ---------------------------------------------------------------------------


def test_explore_report_filters_cities_as_the_engine_does(explore_db: str, tmp_path: Path) -> None:
    """The filter applies to every section, and the header says which filter is on."""
    result = run_report("explore", db=explore_db, parameters={"city": "san", "top": "5"}, out_dir=tmp_path)
    assert result.parameters == {"db": explore_db, "city": "san", "top": 5, "interactive": False}
    with connect(explore_db, create=True) as target:
        every = explore.cities(explore.city_counts(target))
        ratings = explore.rating_counts(target, city="san")
    chosen = [c for c in every if "san" in c["city"].casefold()]
    assert chosen, "the generated data should have a San Antonio, San Diego or San Francisco"
    soups = html_outputs(result.notebook)
    facts = header_facts(find(soups, ".ef-report-header"))
    assert facts["Filter"] == "city contains 'san' (every section)"
    assert facts["Professionals"] == f"{sum(c['count'] for c in chosen):,} in {len(chosen):,} cities"
    assert facts["Command"] == f"estateflow report explore --db {explore_db} -p city san -p top 5"
    assert find(soups, ".ef-city-filter").get_text(strip=True) == f"{len(chosen)} cities"
    (cities,) = tables_with(soups, "city")
    assert table_rows(cities) == [
        [c["city"], c["state"], f"{c['count']:,}", f"{c['featured']:,}", f"{c['avg_rating']:.1f}"] for c in chosen[:5]
    ]
    # Ratings by industry and state (of San ... cities only), rating against reviews, cities, featured by city.
    alts = image_alts(result.notebook)
    assert len(alts) == 4 and alts[1].startswith(f"Rating against review count ({sum(r['count'] for r in ratings):,}")
    assert_self_contained(result.html.read_text(encoding="utf-8"))


# --- the rollback report ------------------------------------------------------------------------------


def test_rollback_report_shows_the_plan_and_changes_nothing(two_imports: tuple[str, str, str], tmp_path: Path) -> None:
    url, first, second = two_imports
    kept = tmp_path / "kept"
    with connect(url, create=True) as target:
        backup(target, backups_dir=kept)
        backup(target, backups_dir=kept)
        before, ledger = snapshot(target), status(target, backups_dir=kept)
        plan = rollback(target, import_id=second, dry_run=True)
    backups = list_backups(backups_dir=kept)
    result = run_report(
        "rollback", db=url, parameters={"import_id": second, "backups_dir": str(kept)}, out_dir=tmp_path / "reports"
    )
    assert result.parameters == {"db": url, "import_id": second, "backups_dir": str(kept), "interactive": False}
    with connect(url, create=True) as target:
        assert snapshot(target) == before and status(target).imports == ledger.imports
        assert count(target, "SELECT COUNT(*) FROM ef_rollbacks") == 0
    assert list_backups(backups_dir=kept) == backups

    soups = html_outputs(result.notebook)
    state, planned = headers(soups)
    facts = header_facts(state)
    assert facts["Database"] == describe_url(url) and facts["Holds"].startswith(f"{len(before):,} professionals")
    assert len(before) == 60
    assert facts["Imports"] == "2 completed" and facts["Newest backup"].startswith(Path(backups[0].path).name)
    (tables,) = tables_with(soups, "table")
    assert table_rows(tables) == [[name, f"{n:,}"] for name, n in ledger.tables.items()]
    ledger_shown, plan_imports = tables_with(soups, "import")
    assert [r[0] for r in table_rows(ledger_shown)] == [second, first]
    (listed,) = tables_with(soups, "backup")
    assert [[r[0], r[3]] for r in table_rows(listed)] == [[Path(b.path).name, "60"] for b in backups]

    assert verdict(planned) == "PLAN ONLY"
    facts = header_facts(planned)
    assert facts["Rollback of"] == f"import {second}" and re.fullmatch(r"[0-9a-f]{16}", facts["Plan fingerprint"])
    assert (
        (facts["Rows it would remove"], facts["Rows it would restore"])
        == (
            f"{plan.rows_removed:,}",
            f"{plan.rows_restored:,}",
        )
        == ("20", "10")
    )
    assert table_rows(plan_imports) == [[second, "b.csv", plan.imports[0]["started_at"], "completed", "20", "10", "0"]]
    (rows,) = tables_with(soups, "industry")
    assert table_rows(rows) == [
        [r["industry"], r["state"], f"{r['removed']:,}", f"{r['restored']:,}"] for r in plan.by_industry_state
    ]
    note = find(soups, ".ef-plan-only").get_text(" ", strip=True)
    assert note.startswith("Plan only: nothing was changed.") and "would remove 20 rows and restore 10" in note
    assert len(images(result.notebook)) == 2  # rows per backup over time, the plan's rows
    html = result.html.read_text(encoding="utf-8")
    assert_self_contained(html)
    assert "RollbackPanel" not in html and "Choose how to roll back" not in html


def test_rollback_report_with_confirm_rolls_back_the_plan(two_imports: tuple[str, str, str], tmp_path: Path) -> None:
    """`estateflow report rollback -p confirm true`: the plan, then the rollback, with its backup first."""
    url, first, second = two_imports
    kept = tmp_path / "kept"
    with connect(url, create=True) as target:
        plan = rollback(target, import_id=second, dry_run=True)
    parameters = ["-p", "import_id", second, "-p", "confirm", "true", "-p", "backups_dir", str(kept)]
    done = invoke("report", "rollback", "--db", url, *parameters, "--out-dir", str(tmp_path / "reports"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    notebook = Path(done.stdout.strip().splitlines()[-1]).with_suffix(".ipynb")

    (taken,) = list_backups(backups_dir=kept)
    assert taken.rows == 60 and taken.imports == 2
    with connect(url, create=True) as target:
        assert count(target) == 60 - plan.rows_removed == 40
        assert count(target, "SELECT COUNT(*) FROM professionals WHERE city = 'Key West'") == 0
        (undone,) = target.query("SELECT * FROM ef_rollbacks")
        statuses = {r["id"]: r["status"] for r in target.query("SELECT id, status FROM ef_imports")}
    assert statuses == {first: "completed", second: "rolled_back"}
    assert (undone["rows_removed"], undone["rows_restored"]) == (plan.rows_removed, plan.rows_restored)
    assert undone["backup_path"] == taken.path

    soups = html_outputs(notebook)
    _state, planned, rolled = headers(soups)
    assert (verdict(planned), verdict(rolled)) == ("PLAN ONLY", "ROLLED BACK")
    facts = header_facts(rolled)
    assert (facts["Rows removed"], facts["Rows restored"]) == ("20", "10")
    assert facts["Rollback"] == undone["id"] and facts["Backup taken before"] == taken.path
    *_, undone_imports, ledger_now = tables_with(soups, "import")
    assert [(r[0], r[3]) for r in table_rows(undone_imports)] == [(second, "rolled_back")]
    assert [(r[0], r[3]) for r in table_rows(ledger_now)] == [(second, "rolled_back"), (first, "completed")]
    assert not [s for s in soups if s.select_one(".ef-plan-only")]


# --- the notebooks on D1 ------------------------------------------------------------------------------


def test_ladder_verification_and_rollback_reports_on_d1(d1_engine: LocalD1Engine, d1_url: str, tmp_path: Path) -> None:
    """The same notebooks on the local D1 engine, on a ladder of three small files (test, small and
    medium rungs): the token reaches the kernel through its environment only, and appears in no
    executed notebook, report or backup."""
    out = tmp_path / "reports"
    files = [
        write_records(tmp_path / "a.sql", 10),
        write_records(tmp_path / "b.sql", 100, start=10),
        write_records(tmp_path / "c.sql", 1000, start=110),
    ]
    ladder = run_report(
        "ladder",
        db=d1_url,
        parameters={"files": ",".join(map(str, files)), "runs": "1"},
        out_dir=out,
    )
    with connect(d1_url, create=True) as target:
        assert count(target) == 1_110
        ledger = target.query("SELECT id, rung, checkpoint, inserted FROM ef_imports ORDER BY started_at, rowid")
    assert [row["rung"] for row in ledger] == ["test", "small", "medium"]
    soups = html_outputs(ladder.notebook)
    header = find(soups, ".ef-report-header")
    assert (
        header_facts(header)["Database"] == describe_url(d1_url) and header_facts(header)["Records handled"] == "1,110"
    )
    (rungs,) = tables_with(soups, "rung")
    assert verdict(header) == ladder_verdict(table_rows(rungs))
    shown_rungs = table_rows(rungs)
    assert [[r[0], r[1], r[2], r[3]] for r in shown_rungs] == [
        [row["rung"], f.name, f"{row['checkpoint']:,}", f"{row['inserted']:,}"]
        for row, f in zip(ledger, files, strict=True)
    ]
    verified = [r[RUNG["verified"]] for r in shown_rungs]
    assert verified[0] == "-" and all(v in ("yes", "NO") for v in verified[1:])

    verification = run_report("verification", db=d1_url, parameters={"runs": "1"}, out_dir=out)
    with connect(d1_url, create=True) as target:
        engine = verify(target, benchmarks=False, history=False)
        shown = status(target)
    soups = html_outputs(verification.notebook)
    facts = header_facts(find(soups, ".ef-report-header"))
    assert facts["Database"] == describe_url(d1_url) and facts["Checks"] == "12 of 12 passed"
    (checks,) = tables_with(soups, "#")
    assert [[r[1], r[2], r[3], r[5]] for r in table_rows(checks)] == [
        [c.title, PASS_MARK if c.passed else FAIL_MARK, c.summary, f"{c.failing:,}"] for c in engine.checks
    ]
    # The verdict is the notebook's own: every check and every latency benchmark of its run within limits.
    (latency,) = tables_with(soups, "benchmark")
    marks = [r[2] for r in table_rows(checks)] + [r[1] for r in table_rows(latency)]
    passed = all(mark == PASS_MARK for mark in marks)
    assert verdict(find(soups, ".ef-report-header")) == ("PASSED" if passed else "FAILED")
    (ledger_table,) = tables_with(soups, "import")
    assert [r[0] for r in table_rows(ledger_table)] == [row["id"] for row in shown.imports]

    last = ledger[-1]["id"]  # the medium rung
    kept = tmp_path / "kept"
    undo = run_report(
        "rollback", db=d1_url, parameters={"import_id": last, "confirm": "true", "backups_dir": str(kept)}, out_dir=out
    )
    with connect(d1_url, create=True) as target:
        assert count(target) == 110
        (undone,) = target.query("SELECT id, rows_removed, bookmark FROM ef_rollbacks")
    (taken,) = list_backups(backups_dir=kept)
    assert taken.rows == 1_110 and taken.sql_dump
    rolled = headers(html_outputs(undo.notebook))[-1]
    facts = header_facts(rolled)
    assert verdict(rolled) == "ROLLED BACK" and facts["Rows removed"] == f"{undone['rows_removed']:,}" == "1,000"
    assert facts["Time Travel bookmark before"] == undone["bookmark"] and facts["Backup taken before"] == taken.path

    for result in (ladder, verification, undo):
        parameters = nbformat.read(str(result.notebook), as_version=4).metadata.papermill.parameters
        assert not {name for name in parameters if "token" in name.casefold() or "cloudflare" in name.casefold()}
    written = [p for p in [*out.rglob("*"), *kept.rglob("*")] if p.is_file()]
    assert len([p for p in written if p.suffix in (".ipynb", ".html")]) == 6
    for path in written:
        assert d1_engine.token.encode() not in path.read_bytes(), path


# --- failures and refusals ---------------------------------------------------------------------------


def test_a_failing_cell_names_the_cell_and_keeps_the_partial_notebook(tmp_path: Path) -> None:
    damaged = f"sqlite:///{tmp_path / 'damaged.db'}"
    with connect(damaged, create=True) as target:
        target.execute([Sql("DROP TABLE ef_imports")])  # opens as ours; the checks then fail on it
    with pytest.raises(EstateFlowError) as failed:
        run_report("verification", db=damaged, out_dir=tmp_path)
    message = str(failed.value)
    assert "\n" not in message
    assert "stopped in cell In [" in message and "'Verify: the twelve checks" in message
    assert "SqlError: SQLite: no such table: ef_imports" in message
    (partial,) = tmp_path.glob("verification-*.ipynb")
    assert f"partial notebook: {partial}" in message
    assert not list(tmp_path.glob("*.html"))
    errors = [o for o in outputs(partial) if o["output_type"] == "error"]
    assert errors and errors[0]["ename"] == "SqlError"


def test_a_report_on_a_database_that_is_not_there_refuses_before_running(tmp_path: Path) -> None:
    with pytest.raises(EstateFlowError, match="unknown database URL 'nowhere://at-all'"):
        run_report("verification", db="nowhere://at-all", out_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []  # no kernel started, no partial notebook


@pytest.mark.parametrize("name", ["token", "CLOUDFLARE_API_TOKEN", "api_key", "db_password", "mySecret", "KeyFile"])
def test_secret_parameter_names_are_refused(name: str) -> None:
    with pytest.raises(EstateFlowError, match=f"refused parameter '{name}': secrets are never notebook parameters"):
        check_parameters("verification", {name: "x"})


def test_unknown_and_ill_typed_parameters_are_refused() -> None:
    with pytest.raises(
        EstateFlowError, match="the ladder report has no parameter 'batchsize'; it takes: db, directory"
    ):
        check_parameters("ladder", {"batchsize": "10"})
    with pytest.raises(EstateFlowError, match="reports always run with interactive=False"):
        check_parameters("ladder", {"interactive": "true"})
    with pytest.raises(EstateFlowError, match="parameter 'yes' takes true or false, not 'maybe'"):
        check_parameters("ladder", {"yes": "maybe"})
    with pytest.raises(EstateFlowError, match="parameter 'runs' takes a whole number"):
        check_parameters("verification", {"runs": "many"})
    typed = check_parameters("ladder", {"yes": "TRUE", "batch_size": "1,000", "file": "x.csv"})
    assert typed == {"yes": True, "batch_size": 1000, "file": "x.csv", "interactive": False}
    with pytest.raises(EstateFlowError, match="given twice"):
        run_report("verification", db="sqlite:///a.db", parameters={"db": "sqlite:///b.db"})


def test_the_command_refuses_in_one_line_before_running_anything(tmp_path: Path) -> None:
    runner = CliRunner()
    for args, message in [
        (["-p", "api_token", "x"], "Error: refused parameter 'api_token'"),
        (["-p", "colour", "red"], "Error: the verification report has no parameter 'colour'"),
    ]:
        result = runner.invoke(cli, ["report", "verification", "--out-dir", str(tmp_path), *args])
        assert result.exit_code == 1
        assert result.output.startswith(message) and result.output.count("\n") == 1
    assert not list(tmp_path.iterdir())
    unknown = runner.invoke(cli, ["report", "weather"])
    assert unknown.exit_code == 2 and "'weather' is not one of" in unknown.output


def test_every_report_has_its_notebook() -> None:
    assert set(REPORTS) == {"ladder", "verification", "explore", "rollback"}
    for name, notebook in REPORTS.items():
        assert (ROOT / "notebooks" / notebook).exists(), name
    assert json.loads((ROOT / "notebooks" / REPORTS["verification"]).read_text())["metadata"]["kernelspec"]["name"] == (
        "estateflow"
    )
