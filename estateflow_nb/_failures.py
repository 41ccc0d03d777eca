"""Every failing row of every failing check, into one CSV file per check: `DIR/<check>.csv`.

A report shows a few examples of each kind of failure; these files hold all of them, with the kind,
the offending value, the import that wrote each row and the command that would undo that import.
Rows are read in pages by id, so a check failing on half a million rows writes them in constant
memory, on SQLite and D1 alike.
"""

from __future__ import annotations

import csv
import shlex
from pathlib import Path
from typing import Any

from ._evidence import RowRule
from ._files import atomic_text
from .targets import Target

PAGE = 5_000


def undo_command(import_id: Any, url: str) -> str:
    """The command that rolls back the import that wrote a row (nothing for a row no import wrote)."""
    if not import_id:
        return ""
    return f"estateflow rollback import {shlex.quote(str(import_id))} --db {shlex.quote(url)}"


def _rows(target: Target, rule: RowRule) -> Any:
    """Every row `rule` selects, by id, a page at a time."""
    after = None
    while True:
        page = target.query(
            f"SELECT {rule.kind} AS kind, id, license_number, import_id, {rule.value} AS value"
            f" FROM professionals WHERE ({rule.where}) AND (? IS NULL OR id > ?) ORDER BY id LIMIT ?",
            (*rule.params, after, after, PAGE),
        )
        yield from page
        if len(page) < PAGE:
            return
        after = page[-1]["id"]


def write_failures(target: Target, checks: list[Any], directory: str | Path) -> dict[str, str]:
    """Write `DIR/<check>.csv` for each failing check of `checks` (CheckResults); {check name: path}."""
    folder = Path(directory)
    written: dict[str, str] = {}
    for result in checks:
        if result.passed:
            continue
        path = folder / f"{result.name}.csv"
        with atomic_text(path) as f:
            writer = csv.writer(f)
            if result.rule is not None:
                writer.writerow(["id", "license_number", "import_id", "kind", result.rule.column, "undo"])
                for row in _rows(target, result.rule):
                    undo = undo_command(row["import_id"], target.url)
                    writer.writerow(
                        [row["id"], row["license_number"], row["import_id"], row["kind"], row["value"], undo]
                    )
            else:
                _write_examples(writer, result, target.url)
        written[result.name] = str(path.resolve())
    return written


def _write_examples(writer: Any, result: Any, url: str) -> None:
    """A check whose failures are not rows of the table (imports, counts): every one it found."""
    columns = list(dict.fromkeys(c for group in result.groups for example in group.examples for c in example))
    writer.writerow(["kind", *columns, "undo"])
    for group in result.groups:
        if not group.examples:
            writer.writerow([group.kind, *([""] * len(columns)), ""])
        for example in group.examples:
            undo = undo_command(example.get("import_id"), url)
            writer.writerow([group.kind, *(example.get(c) for c in columns), undo])
