"""Nothing from the data is markup (DESIGN.md decision 9): every value from a file or a database is
escaped in all four reports, the failing values, the widget panels and the terminal tables.

A database is filled with markup in every text column (names, cities, companies, emails, license
numbers, industries, states, tiers, statuses, times), in the ledger (import ids, source paths, the
error, the rejects file's path and reasons), in the paths of the database and of the files, and in
the parameters of the runs. Every HTML output is then parsed as a browser would, looking for live
elements and event attributes, not for one literal string.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest
from bs4 import BeautifulSoup

from estateflow_nb import connect, import_file, run_report, write_records
from estateflow_nb.schema import RECORD_COLUMNS
from estateflow_nb.targets import Sql
from estateflow_nb.widgets import ExplorePanel, LadderPanel, RollbackPanel, VerifyPanel

from .conftest import invoke
from .report_reading import outputs

# Kinds of markup: an element that runs, an event attribute, a way out of an attribute, a link that
# runs, a frame, a style that hides the page, plain formatting, and a way out of a table.
PAYLOADS = [
    "<script>alert('s1')</script>",
    "<img src=x onerror=alert('i2')>",
    '"><svg onload=alert(3)>',
    "<a href=\"javascript:alert('a4')\">a4</a>",
    "<iframe srcdoc=\"<script>alert('f5')</script>\"></iframe>",
    "' onmouseover='alert(6)' x='",
    "<style>body{display:none}</style>",
    "<b>bold7</b>",
    "</td></tr></table><details open ontoggle=alert(8)>",
]
# Where markup may not come from the data (the report's own elements are checked apart).
RUNNING = {"script", "iframe", "frame", "object", "embed", "svg", "math", "form", "input", "button", "base"}
TEXT_COLUMNS = [c for c in RECORD_COLUMNS if c not in ("rating", "review_count", "is_featured")]
HOSTILE_IMPORT = "imp-<img src=x onerror=alert('imp')>"


def live_markup(html: str) -> list[str]:
    """Whatever in `html` would run or change the page: elements that run, event attributes, links that
    run, images not of our charts, styles or bold text from the data."""
    soup = BeautifulSoup(html, "html.parser")
    found = []
    for tag in soup.find_all(True):
        found += [f"<{tag.name} {name}=...>" for name in tag.attrs if name.lower().startswith("on")]
        if tag.name in RUNNING:
            found.append(f"<{tag.name}>")
        for value in tag.attrs.values():
            if "javascript:" in str(value).lower():
                found.append(f"<{tag.name}> javascript: link")
        if tag.name == "img" and not str(tag.get("src", "")).startswith("data:image/png;base64,"):
            found.append(f"<img src={tag.get('src')!r}>")
        if tag.name == "a" and not str(tag.get("href", "")).startswith(("#", "file:")):
            found.append(f"<a href={tag.get('href')!r}>")
        if tag.name == "style" and "body{display:none}" in tag.get_text().replace(" ", ""):
            found.append("<style> from the data")
        if tag.name == "meta" and tag.has_attr("http-equiv"):
            found.append("<meta http-equiv>")
        if tag.name in ("b", "details") and ("bold7" in tag.get_text() or tag.has_attr("ontoggle")):
            found.append(f"<{tag.name}> from the data")
    return found


def shown_payloads(html: str) -> set[str]:
    """The payloads a page shows as text (escaped, so readable as written)."""
    text = BeautifulSoup(html, "html.parser").get_text()
    return {p for p in PAYLOADS if p in text}


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A database under a folder named like markup: clean rows, an import whose id, source, error and
    rejects file are markup, and rows with markup in every text column."""
    folder = tmp_path_factory.mktemp("markup") / "<svg onload=alert('dir')>"
    folder.mkdir()
    url = f"sqlite:///{folder / 'hostile.db'}"
    source = folder / "<img src=x onerror=alert('file')>.csv"
    rows = list(write_rows(source, 150))
    rejects = folder / "<b onclick=alert(9)>rejects.csv"
    gone = folder / "<a href=javascript:alert(11)>gone.csv"  # the hostile import's source, since moved
    with rejects.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["record", "reason", *RECORD_COLUMNS])
        for number, payload in enumerate(PAYLOADS, start=1):
            writer.writerow([number, f"city: {payload!r} is {payload}", *([payload] * len(RECORD_COLUMNS))])
    with connect(url, create=True) as target:
        import_file(target, write_records(folder / "clean.csv", 120))
        statements = [
            Sql(
                "INSERT INTO ef_imports (id, source_path, source_sha256, target, batch_size, status, inserted,"
                " rejected, checkpoint, rejects_path, error, started_at)"
                " VALUES (?, ?, 'abc', ?, 10, 'failed', ?, ?, ?, ?, ?, '2026-11-01T00:00:00Z')",
                (HOSTILE_IMPORT, str(gone), url, len(PAYLOADS), 400, 400 + len(PAYLOADS), str(rejects), PAYLOADS[0]),
            )
        ]
        for number, payload in enumerate(PAYLOADS):
            values = {c: f"{payload} {c} {number}" for c in TEXT_COLUMNS}
            values["email"] = payload  # a malformed email: one of the failing values shown
            values["city"] = payload
            names = [*values, "import_id"]
            statements.append(
                Sql(
                    f"INSERT INTO professionals ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
                    (*values.values(), HOSTILE_IMPORT),
                )
            )
        target.execute(statements)
    return {"url": url, "folder": folder, "source": source, "rows": rows}


def write_rows(path: Path, n: int) -> list[dict[str, Any]]:
    """A CSV of `n` records, every fifth with markup in its city and a broken email (so rejected)."""
    with write_records(path, n, start=5000).open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    for i, line in enumerate(rows):
        if i % 5 == 0:
            line["city"] = PAYLOADS[i % len(PAYLOADS)]
            line["email"] = PAYLOADS[(i + 1) % len(PAYLOADS)]
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(RECORD_COLUMNS))
        writer.writeheader()
        writer.writerows(rows)
    return rows


def html_of(notebook: Path) -> list[str]:
    return [o["data"]["text/html"] for o in outputs(notebook) if "text/html" in o.get("data", {})]


def test_the_four_reports_show_markup_as_text(hostile: dict[str, Any], tmp_path: Path) -> None:
    url, folder = hostile["url"], hostile["folder"]
    out, kept = folder / "reports", folder / "<u onclick=alert(10)>kept"
    done = [
        run_report(
            "verification", db=url, parameters={"runs": "1", "failures": str(folder / "<i>failures</i>")}, out_dir=out
        ),
        run_report("explore", db=url, parameters={"city": PAYLOADS[1][:12]}, out_dir=out),
        run_report(
            "rollback",
            db=url,
            parameters={"import_id": HOSTILE_IMPORT, "backups_dir": str(kept)},
            out_dir=out,
        ),
        run_report(
            "ladder",
            db=url,
            parameters={"files": str(hostile["source"]), "runs": "1", "max_reject_rate": "0.5"},
            out_dir=out,
        ),
    ]
    seen: set[str] = set()
    for result in done:
        page = result.html.read_text(encoding="utf-8")
        assert live_markup(page) == [], result.name
        for html in html_of(result.notebook):  # each output as JupyterLab would render it, too
            assert live_markup(html) == [], result.name
        seen |= shown_payloads(page)
    assert seen == set(PAYLOADS)  # every kind of markup was shown, as text


def test_the_panels_show_markup_as_text(hostile: dict[str, Any], tmp_path: Path) -> None:
    url = hostile["url"]
    verify_panel = VerifyPanel(db=url, runs=1)
    verify_panel.verify_button.click()
    explorer = ExplorePanel(db=url, city="<")
    rollback_panel = RollbackPanel(db=url, import_id=HOSTILE_IMPORT, backups_dir=str(tmp_path / "<b>kept"))
    rollback_panel.plan_button.click()
    ladder = LadderPanel(db=url, files=str(hostile["source"]), runs=1)
    ladder.run_button.click()
    ladder.rollback_button.click()
    shown: set[str] = set()
    for output in (
        verify_panel.report,
        explorer.output,
        rollback_panel.output,
        rollback_panel.messages,
        ladder.messages,
        ladder.table,
    ):
        for data in (o["data"] for o in output.outputs):
            if "text/html" in data:
                assert live_markup(data["text/html"]) == []
                shown |= shown_payloads(data["text/html"])
    assert len(shown) >= 6
    rollback_panel.db.value = "<img src=x onerror=alert(1)>/x.db"
    rollback_panel.plan_button.click()  # an error message made of the data is text too
    (message,) = [o["data"]["text/html"] for o in rollback_panel.messages.outputs]
    assert live_markup(message) == [] and "NoDatabaseError" in message


def test_terminal_tables_show_control_characters_as_escapes(tmp_path: Path) -> None:
    """A value that would colour or move a terminal's cursor is printed as its escape."""
    url = f"sqlite:///{tmp_path / 'ansi.db'}"
    with connect(url, create=True) as target:
        import_file(target, write_records(tmp_path / "p.csv", 30))
        target.execute(
            [Sql("UPDATE professionals SET email = 'x\x1b[2Jy', import_id = 'imp-\x1b[31mred' WHERE id = 1")]
        )
    done = invoke("verify", "--db", url, "--no-benchmarks", cwd=tmp_path)
    assert done.returncode == 1 and "\x1b" not in done.stdout
    assert "x\\x1b[2Jy" in done.stdout
