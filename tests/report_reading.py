"""Reading a report back: the outputs of its executed notebook, parsed, and what a report must be."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import nbformat
from bs4 import BeautifulSoup

from estateflow_nb._tables import RUNG_COLUMNS


def outputs(notebook: Path) -> list[dict[str, Any]]:
    """Every output of every code cell, in order."""
    nb = nbformat.read(str(notebook), as_version=4)
    return [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]


def html_outputs(notebook: Path) -> list[BeautifulSoup]:
    return [
        BeautifulSoup(o["data"]["text/html"], "html.parser")
        for o in outputs(notebook)
        if "text/html" in o.get("data", {})
    ]


def images(notebook: Path) -> list[str]:
    return [o["data"]["image/png"] for o in outputs(notebook) if "image/png" in o.get("data", {})]


def table_rows(soup: BeautifulSoup) -> list[list[str]]:
    """The body rows of the first table in `soup`, as the text of their cells."""
    table = soup.find("table")
    assert table is not None
    body = table.find("tbody") or table
    return [[cell.get_text(strip=True) for cell in row.find_all(["td", "th"])] for row in body.find_all("tr")]


def header_facts(soup: BeautifulSoup) -> dict[str, str]:
    return {row.th.get_text(strip=True): row.td.get_text(strip=True) for row in soup.select(".ef-facts tr")}


def headers(soups: list[BeautifulSoup]) -> list[BeautifulSoup]:
    """Every report header shown, in order."""
    return [soup for soup in soups if soup.select_one(".ef-report-header") is not None]


def verdict(header: BeautifulSoup) -> str:
    return header.select_one(".ef-verdict").get_text(strip=True)


# The rung table's columns, by name.
RUNG = {name: i for i, name in enumerate(RUNG_COLUMNS)}


def ladder_verdict(rungs: list[list[str]], limit: float = 0.01) -> str:
    """The header a ladder report must show for the rung table it shows: each rung's verdict follows
    from its own figures (verified, rejected share against the limit, what it inserted, its records/s
    against its target, which the machine's speed sets), and the ladder passes when every rung does,
    with warnings when one rejected records."""
    for row in rungs:
        share = float(row[RUNG["rejected share"]].rstrip("%")) / 100
        verified, said = row[RUNG["verified"]], row[RUNG["verdict"]]
        rate, target = row[RUNG["records/s"]], row[RUNG["target/s"]]
        if share > limit:
            expected = "too many rejects"
        elif verified == "NO":
            expected = "verification failed"
        elif row[RUNG["inserted"]] == "0":
            expected = "nothing new"
        elif target != "-" and float(rate.replace(",", "")) < float(target):
            expected = "below target"
        else:
            expected = "pass"
        assert said == expected, row
    missed = next((row[RUNG["verdict"]] for row in rungs if row[RUNG["verdict"]] not in ("pass", "nothing new")), None)
    if missed is not None:
        return missed.upper()
    if all(row[RUNG["verdict"]] == "nothing new" for row in rungs):
        return "NOTHING NEW"
    rejected = any(row[RUNG["rejected"]] != "0" for row in rungs)
    return "LADDER PASSED WITH WARNINGS" if rejected else "LADDER PASSED"


def find(soups: list[BeautifulSoup], selector: str) -> BeautifulSoup:
    for soup in soups:
        if soup.select_one(selector) is not None:
            return soup
    raise AssertionError(f"no output has {selector}")


def tables_with(soups: list[BeautifulSoup], first_header: str) -> list[BeautifulSoup]:
    """The outputs whose table's first column header is `first_header`."""
    found = []
    for soup in soups:
        th = soup.select_one("table thead th")
        if th is not None and th.get_text(strip=True) == first_header:
            found.append(soup)
    return found


def assert_self_contained(html: str) -> None:
    """No script at all, and nothing that loads from the network: the only URLs are in CSS comments."""
    assert "<script" not in html.lower()
    without_css_comments = re.sub(r"/\*.*?\*/", "", html, flags=re.DOTALL)
    assert not re.search(r"https?://", without_css_comments), re.findall(r".{60}https?://.{40}", without_css_comments)
    assert not re.search(r"(src|href)\s*=\s*[\"']//", html)


def image_alts(notebook: Path) -> list[str]:
    """The alternative text (the title) of every figure of a report, in order."""
    return [
        str(o.get("metadata", {}).get("image/png", {}).get("alt", ""))
        for o in outputs(notebook)
        if "image/png" in o.get("data", {})
    ]
