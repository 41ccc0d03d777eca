"""Debian's Chromium driven by Playwright, for the report and JupyterLab tests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
# What a headless Chromium needs here, and nothing that would make it reach out: no background
# networking, component updates or sync. Playwright drives Debian's browser; it never downloads one.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def need_chromium() -> None:
    """Browser tests run wherever Chromium is; under CI they must run, so a missing browser fails them."""
    if CHROMIUM.exists():
        return
    message = f"{CHROMIUM} is missing: `make system-deps` installs Debian's chromium"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@contextmanager
def chromium(profile: Path, width: int, height: int) -> Iterator[tuple[BrowserContext, list[str]]]:
    """A headless Chromium with a fresh profile in `profile`, and the list of every URL it requests."""
    need_chromium()
    requests: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=str(CHROMIUM),
            args=CHROMIUM_ARGS,
            viewport={"width": width, "height": height},
        )
        browser.on("request", lambda request: requests.append(request.url))
        try:
            yield browser, requests
        finally:
            browser.close()
