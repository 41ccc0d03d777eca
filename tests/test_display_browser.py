"""Results shown alone in notebook cells, as a reader sees them: test_display's notebook of results,
executed and converted to HTML, opened in headless Chromium (Debian's) and photographed.

Each result's verdict box is visible, in its outcome's colour, beside its title and above its facts
and its table; a result without a verdict has no box; and the page fetches nothing from the network.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from estateflow_nb._look import COLOURS, outcome_of_verdict
from estateflow_nb.reports import to_html

from . import test_markup
from .browser import chromium
from .test_display import CELLS, executed_results
from .test_report_browser import SHOTS, is_local, rgb

# test_markup's database of markup, as a fixture of this module too (fixtures are found by name).
hostile = test_markup.hostile


def test_each_result_renders_with_its_box_title_facts_and_table(hostile: dict[str, Any], tmp_path: Path) -> None:
    page_file = to_html(executed_results(hostile, tmp_path), tmp_path / "results.html", title="results")
    folder = Path(os.environ.get(SHOTS) or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    with chromium(tmp_path / "profile", 1280, 900) as (browser, requests):
        browser.route(lambda url: not is_local(url), lambda route: route.abort())
        page = browser.new_page()
        page.goto(page_file.as_uri(), wait_until="load")
        page.screenshot(path=str(folder / "results.png"), full_page=True)
        blocks = page.locator("div.ef-result")
        assert blocks.count() == len(CELLS)
        for index, (code, kind, verdict) in enumerate(CELLS):
            block = blocks.nth(index)
            assert f"ef-{kind}" in (block.get_attribute("class") or ""), code
            assert block.is_visible(), code
            title = block.locator(".ef-title").bounding_box()
            facts = block.locator(".ef-facts").bounding_box()
            assert title is not None and facts is not None and facts["y"] >= title["y"] + title["height"] - 1, code
            box = block.locator(".ef-verdict")
            if verdict is None:
                assert box.count() == 0, code
                continue
            where = box.bounding_box()
            assert box.inner_text().strip() == verdict and where is not None, code
            colour = box.evaluate("e => getComputedStyle(e).backgroundColor")
            assert colour == rgb(COLOURS[outcome_of_verdict(verdict)]), code  # type: ignore[arg-type]
            middle = where["y"] + where["height"] / 2
            assert title["y"] <= middle <= title["y"] + title["height"] and title["x"] > where["x"], code  # beside
            table = block.locator("table.ef-table")
            if table.count():
                shown = table.first.bounding_box()
                assert shown is not None and shown["y"] >= facts["y"] + facts["height"] - 1, code  # below the facts
    assert requests and all(is_local(url) for url in requests), [u for u in requests if not is_local(u)]
