"""The verification report as a person sees it: opened in headless Chromium (Debian's), photographed.

The page must show its verdict at the top, every chart as a rendered image with real pixels, and
load nothing but itself: every request the browser makes is recorded, and any that is not the file
itself, an embedded data URI or localhost fails the test.
"""

from __future__ import annotations

import io
from pathlib import Path
from urllib.parse import urlparse

from PIL import Image

from estateflow_nb.reports import ReportResult

from .browser import chromium

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
