"""The verification report as a person sees it: opened in headless Chromium (Debian's), photographed.

The page must show its verdict at the top, every chart as a rendered image with real pixels, and
load nothing but itself: every request the browser makes is recorded, and any that is not the file
itself, an embedded data URI or localhost fails the test.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

from PIL import Image
from playwright.sync_api import Page

from estateflow_nb import connect, generate_records, import_file, run_report, write_records
from estateflow_nb._look import FAIL_COLOUR, NEUTRAL_COLOUR, PASS_COLOUR, PASS_MARK, WARN_COLOUR, outcome_of_verdict
from estateflow_nb._rejected import reason_kind
from estateflow_nb.reports import ReportResult

from .browser import chromium
from .conftest import write_csv
from .report_reading import ladder_verdict

LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "[::1]"}


def is_local(url: str) -> bool:
    parsed = urlparse(url)
    return parsed.scheme in ("file", "data", "about", "blob") or parsed.hostname in LOCAL_HOSTS


def test_report_renders_in_chromium_with_nothing_from_the_network(
    verification_report: ReportResult, tmp_path: Path
) -> None:
    with chromium(tmp_path / "profile", 1280, 900) as (browser, requests):
        # Anything bound for another host is stopped (and is in `requests` all the same).
        browser.route(
            lambda url: not is_local(url),
            lambda route: route.abort(),
        )
        page = browser.new_page()
        page.goto(verification_report.html.as_uri(), wait_until="load")
        shot = tmp_path / "report.png"
        page.screenshot(path=str(shot), full_page=True)

        verdict = page.locator(".ef-verdict")
        assert verdict.is_visible() and verdict.inner_text().strip() == "FAILED"
        verdict_box = verdict.bounding_box()
        assert verdict_box is not None and verdict_box["y"] < 100  # at the top of the page

        pictures = page.locator("img")
        assert pictures.count() == 4
        for index in range(pictures.count()):
            picture = pictures.nth(index)
            assert picture.evaluate("img => img.complete && img.naturalWidth > 400 && img.naturalHeight > 200")
            assert picture.is_visible()
            box = picture.bounding_box()
            assert box is not None and box["y"] > verdict_box["y"]
            rendered = Image.open(io.BytesIO(picture.screenshot())).convert("L")
            histogram = rendered.histogram()
            ink = sum(histogram[:200]) / sum(histogram)  # share of pixels clearly darker than paper
            assert 0.01 < ink < 0.9, f"image {index} ({picture.get_attribute('alt')}) looks blank: {ink:.3f}"
        assert page.get_by_role("cell", name="Total record count", exact=True).is_visible()
    page_shot = Image.open(shot)
    assert page_shot.width == 1280 and page_shot.height > 3000  # the whole report, photographed
    assert requests and all(is_local(url) for url in requests), [u for u in requests if not is_local(u)]


# --- every report, in each of its states, as a reader sees it ------------------------------------------

# Where the screenshots go: a test's own folder, or ESTATEFLOW_SCREENSHOTS to keep them and look.
SHOTS = "ESTATEFLOW_SCREENSHOTS"
OUTCOME_COLOURS = {"pass": PASS_COLOUR, "warn": WARN_COLOUR, "fail": FAIL_COLOUR, "neutral": NEUTRAL_COLOUR}


def rgb(hex_colour: str) -> str:
    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgb({r}, {g}, {b})"


@contextmanager
def opened(result: ReportResult, tmp_path: Path, name: str) -> Iterator[Page]:
    """The report open in Chromium, photographed whole into `name`.png; the page, to ask what it shows."""
    folder = Path(os.environ.get(SHOTS) or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    with chromium(tmp_path / f"profile-{name}", 1280, 900) as (browser, requests):
        page = browser.new_page()
        page.goto(result.html.as_uri(), wait_until="load")
        page.screenshot(path=str(folder / f"{name}.png"), full_page=True)
        yield page
    assert all(is_local(url) for url in requests)
    shot = Image.open(folder / f"{name}.png").convert("L")
    ink = sum(shot.histogram()[:200]) / (shot.width * shot.height)
    assert shot.width == 1280 and 0.005 < ink < 0.5, f"{name}.png looks blank"


def badge(page: Page) -> tuple[str, str]:
    """The verdict a reader sees at the top of the page, and its colour."""
    box = page.locator(".ef-verdict")
    assert box.is_visible()
    where = box.bounding_box()
    assert where is not None and where["y"] < 100
    return box.inner_text().strip(), box.evaluate("e => getComputedStyle(e).backgroundColor")


def cells(page: Page, table: str) -> list[list[str]]:
    rows = page.locator(f"table.{table} tbody tr")
    return [[c.strip() for c in rows.nth(i).locator("td").all_inner_texts()] for i in range(rows.count())]


def verdict_of_the_figures(page: Page, warned: bool) -> str:
    """The verdict the checks and latency marks on the page add up to: PASSED (WITH WARNINGS) or FAILED."""
    marks = [row[2] for row in cells(page, "ef-checks")] + [row[1] for row in cells(page, "ef-latency")]
    if any(mark != PASS_MARK for mark in marks):
        return "FAILED"
    return "PASSED WITH WARNINGS" if warned else "PASSED"


def test_the_verification_report_passes_warns_and_fails_as_its_figures_say(
    tmp_path: Path, explore_db: str, broken_db: str
) -> None:
    clean = f"sqlite:///{tmp_path / 'clean.db'}"
    with connect(clean, create=True) as target:
        import_file(target, write_records(tmp_path / "clean.csv", 300))
    out = tmp_path / "reports"

    with opened(
        run_report("verification", db=clean, parameters={"runs": "3"}, out_dir=out), tmp_path, "verification-pass"
    ) as page:
        shown, colour = badge(page)
        assert shown == verdict_of_the_figures(page, warned=False)
        assert colour == rgb(PASS_COLOUR if shown == "PASSED" else FAIL_COLOUR)
        assert page.locator(".ef-no-failures").is_visible() and page.locator(".ef-no-rejects").is_visible()
        assert page.locator("nav.ef-toc a").count() == 9

    with opened(
        run_report("verification", db=explore_db, parameters={"runs": "3"}, out_dir=out), tmp_path, "verification-warn"
    ) as page:
        shown, colour = badge(page)
        assert shown == verdict_of_the_figures(page, warned=True)
        assert colour == rgb(WARN_COLOUR if shown == "PASSED WITH WARNINGS" else FAIL_COLOUR)
        (rejects,) = cells(page, "ef-rejects")
        assert rejects[2:6] == ["1", "150", "0.7%", "⚠ within 1%"]
        assert rejects[6].endswith(".rejects.csv") and Path(rejects[6]).is_file()  # where the file is
        with Path(rejects[6]).open(encoding="utf-8", newline="") as f:
            (rejected,) = csv.DictReader(f)
        assert rejects[7] == f"1 × {reason_kind(rejected['reason'])}"

    with opened(run_report("verification", db=broken_db, out_dir=out), tmp_path, "verification-fail") as page:
        shown, colour = badge(page)
        assert (shown, colour) == ("FAILED", rgb(FAIL_COLOUR))
        headings = page.locator("h3.ef-failing").all_inner_texts()
        assert [h.split(".")[0] for h in headings] == ["1", "5"]
        kinds = page.locator("table.ef-kinds").nth(1)
        assert kinds.is_visible() and cells(page, "ef-kinds")[-1][:2] == ['no "@"', "1"]
        example = page.locator("table.ef-examples").nth(1)
        assert example.is_visible() and "ada.hand-at-example" in example.inner_text()
        assert page.get_by_role("link", name="Failing values").is_visible()


def ladder_files(folder: Path, broken: int) -> str:
    """A test rung of 20 and a small one of 150 records, `broken` of the small one's ratings out of range."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = list(generate_records(150, seed=8, start=20))
    for row in rows[:broken]:
        row["rating"] = 9.5
    return f"{write_records(folder / 'a.csv', 20)},{write_csv(folder / 'b.csv', rows)}"


def test_the_ladder_report_passes_warns_and_fails(tmp_path: Path) -> None:
    out = tmp_path / "reports"
    for state, broken in (("pass", 0), ("warn", 1), ("fail", 6)):
        db = f"sqlite:///{tmp_path / state / 'ladder.db'}"
        files = ladder_files(tmp_path / state, broken)
        result = run_report("ladder", db=db, parameters={"files": files, "runs": "2"}, out_dir=out)
        with opened(result, tmp_path, f"ladder-{state}") as page:
            shown, colour = badge(page)
            rungs = cells(page, "ef-rungs")
            assert shown == ladder_verdict(rungs) and colour == rgb(OUTCOME_COLOURS[outcome_of_verdict(shown)])  # type: ignore[arg-type]
            assert page.locator(".ef-throughput, img").first.is_visible()
            if state == "pass":
                assert shown in ("LADDER PASSED", "BELOW TARGET", "VERIFICATION FAILED")
                assert page.locator(".ef-no-rejects").is_visible()
            elif state == "warn":
                (rejects,) = cells(page, "ef-rejects")
                assert rejects[2:6] == ["1", "150", "0.7%", "⚠ within 1%"]
                assert rejects[6] == str(Path(rejects[6])) and rejects[7] == "1 × rating is outside 1.0 to 5.0"
            else:
                assert (shown, colour) == ("TOO MANY REJECTS", rgb(FAIL_COLOUR))
                (rejects,) = cells(page, "ef-rejects")
                assert rejects[4:6] == ["4.0%", "✘ over 1%"] and rejects[7] == "6 × rating is outside 1.0 to 5.0"
                stopped = page.locator(".ef-facts tr", has_text="Stopped").inner_text()
                assert "b.csv: 4.0% of its records were rejected, over the limit of 1%" in stopped


def test_the_rollback_report_plans_rolls_back_and_finds_nothing(
    two_imports: tuple[str, str, str], tmp_path: Path
) -> None:
    url, _first, second = two_imports
    out, kept = tmp_path / "reports", str(tmp_path / "kept")
    states = [
        ("plan", {"import_id": second, "backups_dir": kept}, ["PLAN ONLY"]),
        ("rolled-back", {"import_id": second, "confirm": "true", "backups_dir": kept}, ["PLAN ONLY", "ROLLED BACK"]),
        ("nothing", {"since": "2001-01-01", "until": "2001-01-02", "backups_dir": kept}, ["NOTHING TO ROLL BACK"]),
    ]
    for name, parameters, verdicts in states:
        with opened(
            run_report("rollback", db=url, parameters=parameters, out_dir=out), tmp_path, f"rollback-{name}"
        ) as page:
            boxes = page.locator(".ef-verdict")
            assert boxes.all_inner_texts() == verdicts
            colours = [boxes.nth(i).evaluate("e => getComputedStyle(e).backgroundColor") for i in range(boxes.count())]
            assert colours == [rgb(OUTCOME_COLOURS[outcome_of_verdict(v)]) for v in verdicts]  # type: ignore[arg-type]
            first = boxes.first.bounding_box()
            assert first is not None and page.locator("h1").first.bounding_box()["y"] < first["y"]  # after the status
            if name == "plan":
                assert page.locator(".ef-plan-only").inner_text().startswith("Plan only: nothing was changed.")
                assert cells(page, "ef-rollback-rows") and page.locator("img").count() == 1
            if name == "rolled-back":
                facts = page.locator(".ef-facts").last.inner_text()
                assert "Rows removed\t20" in facts and "Backup taken before" in facts


def test_the_explore_report_says_its_filter(tmp_path: Path, explore_db: str) -> None:
    out = tmp_path / "reports"
    for name, parameters in (("all", {}), ("filtered", {"city": "san", "industry": "real_estate"})):
        with opened(
            run_report("explore", db=explore_db, parameters=parameters, out_dir=out), tmp_path, f"explore-{name}"
        ) as page:
            assert page.locator(".ef-verdict").count() == 0  # a picture of the data, not a verdict
            facts = page.locator(".ef-facts").inner_text()
            expected = (
                "city contains 'san' and real_estate (every section)" if parameters else "none: every professional"
            )
            assert f"Filter\t{expected}" in facts
            assert page.locator("img").count() == 4
            names = [row[0] for row in cells(page, "ef-cities")]
            assert names and (not parameters or all("san" in n.casefold() for n in names))
