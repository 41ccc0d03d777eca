"""The ladder notebook in a real JupyterLab, in a real browser, pressed as an analyst would.

`jupyter lab` starts on 127.0.0.1 with its own temporary configuration, settings and workspace;
Playwright drives Debian's Chromium to open the ladder notebook, run all cells, and press the
panel's "Run rung" button. The rows must reach the database and the throughput chart must appear.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import sqlite3
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from estateflow_nb.reports import REPORTS

from .browser import chromium, need_chromium
from .conftest import ROOT

NOTEBOOK = REPORTS["ladder"]
START_SECONDS = 90
# Generous: a cold kernel imports pandas and matplotlib, and CI runs on two cores.
CELL_SECONDS = 120


@dataclass
class Lab:
    url: str
    token: str
    root: Path
    db: Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_json(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    need_chromium()
    root = tmp_path / "lab"
    root.mkdir()
    shutil.copy(ROOT / "notebooks" / NOTEBOOK, root / NOTEBOOK)
    config, settings = tmp_path / "config", tmp_path / "settings"
    # Nothing from the internet: no update checks, no news, no announcements, no extension index.
    write_json(
        config / "jupyter_server_config.json",
        {
            "LabApp": {
                "check_for_updates_class": "jupyterlab.NeverCheckForUpdate",
                "news_url": None,
                "extension_manager": "readonly",
            }
        },
    )
    write_json(
        settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings",
        {"fetchNews": "false", "checkForUpdates": False},
    )
    db = tmp_path / "lab.db"
    token, port = secrets.token_hex(16), free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),  # the kernel imports this checkout
        "ESTATEFLOW_DB": f"sqlite:///{db}",
        "JUPYTER_CONFIG_DIR": str(config),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(settings),
        "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "workspaces"),
        "IPYTHONDIR": str(tmp_path / "ipython"),
    }
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={port}",
            "--port-retries=0",
            "--allow-root",  # CI runs as root
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={root}",
        ],
        env=env,
        cwd=root,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    log: list[str] = []
    ready = threading.Event()

    def read_log() -> None:
        assert server.stderr is not None
        for line in server.stderr:
            log.append(line)
            if f"127.0.0.1:{port}/lab" in line:
                ready.set()
        ready.set()  # the server ended: stop waiting

    threading.Thread(target=read_log, daemon=True).start()
    url = f"http://127.0.0.1:{port}"
    try:
        assert ready.wait(START_SECONDS) and server.poll() is None, "jupyter lab did not start:\n" + "".join(log)
        yield Lab(url, token, root, db)
    finally:
        try:
            request = urllib.request.Request(f"{url}/api/shutdown?token={token}", method="POST")
            urllib.request.urlopen(request, timeout=10).close()
            server.wait(timeout=30)
        except Exception:
            server.terminate()
            server.wait(timeout=30)


def click_menu(page: Page, menu: str, item: str) -> None:
    page.get_by_role("menuitem", name=menu, exact=True).click()
    page.get_by_role("menuitem", name=item, exact=True).click()


def test_ladder_notebook_runs_a_rung_in_jupyterlab(lab: Lab, tmp_path: Path) -> None:
    with chromium(tmp_path / "profile", 1400, 1000) as (browser, requests):
        page = browser.new_page()
        page.set_default_timeout(CELL_SECONDS * 1000)
        page.goto(f"{lab.url}/lab/tree/{NOTEBOOK}?token={lab.token}")
        # The notebook is open on the project's kernel, and the kernel is ready.
        page.locator(".jp-Notebook").first.wait_for()
        # (expect() has its own timeout, five seconds unless told: a cold kernel may need longer.)
        wait = CELL_SECONDS * 1000
        expect(page.locator(".jp-KernelName").first).to_have_text("Python (estateflow)", timeout=wait)
        expect(page.locator(".jp-Notebook-ExecutionIndicator").first).to_have_attribute(
            "data-status", "idle", timeout=wait
        )

        click_menu(page, "Run", "Run All Cells")
        run = page.get_by_role("button", name="Run rung")
        run.wait_for(state="visible")
        # The database box names the file by its absolute path, as the kernel (in the notebook's folder) opens it.
        assert page.locator(".ef-where").first.inner_text() == f"= sqlite:///{lab.db}"
        assert page.get_by_role("button", name="Verify").is_visible()
        assert page.get_by_role("button", name="Roll back last import").is_visible()
        # The headless cell's code is not on show: its input is collapsed to JupyterLab's placeholder.
        cells = page.locator(".jp-CodeCell").evaluate_all(
            "cells => cells.map(c => [c.textContent, c.querySelector('.jp-InputPlaceholder') !== null])"
        )
        assert [collapsed for text, collapsed in cells] == [False, False, False, True]
        assert "LadderPanel(" in cells[2][0] and not any("run_from_parameters(" in text for text, _ in cells)
        run.click()

        chart = page.locator(".ef-throughput img")
        chart.wait_for(state="visible")
        assert chart.evaluate("img => img.complete && img.naturalWidth > 400")
        table = page.locator(".ef-rung-table table")
        assert "test-10.sql" in table.inner_text()
        page.screenshot(path=str(tmp_path / "jupyterlab.png"), full_page=False)
    with sqlite3.connect(lab.db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM professionals").fetchone() == (10,)
        assert conn.execute("SELECT rung, status FROM ef_imports").fetchall() == [("test", "completed")]
    assert (lab.root / "data" / "test-10.sql").exists()
    outside = [u for u in requests if not u.startswith((lab.url, "data:", "blob:", "about:"))]
    assert not outside, outside
