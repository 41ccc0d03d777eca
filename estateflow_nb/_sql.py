"""Quoting for the SQL we build ourselves: names and text literals, in SQLite's (and D1's) syntax.

Values from users and files are bound or go through these; nothing else pastes text into SQL.
"""

from __future__ import annotations

from collections.abc import Iterable


def quote_name(name: str) -> str:
    """An identifier in double quotes, any quote inside doubled: `my "odd" table` -> `"my ""odd"" table"`."""
    return '"' + name.replace('"', '""') + '"'


def quote_text(value: str) -> str:
    """A text literal in single quotes, any quote inside doubled. (A NUL ends SQLite's literal:
    text that may hold one is bound, or written as a blob cast to text by the D1 packer.)"""
    return "'" + value.replace("'", "''") + "'"


def text_list(values: Iterable[str]) -> str:
    """`'a', 'b', 'c'`: the inside of an IN (...) list of constants."""
    return ", ".join(map(quote_text, values))
