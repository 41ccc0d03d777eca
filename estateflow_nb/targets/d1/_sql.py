"""SQL for D1's REST API: values written into the SQL as exact literals, and statements packed to D1's limits.

Values are written into the SQL as literals rather than bound, for three reasons: a multi-row INSERT
then carries hundreds of rows instead of the five that D1's 100 bound parameters allow; the REST API
declares `params` as strings, and D1 binds JavaScript numbers as REAL, so literals are the only way to
keep SQLite's types exact; and `CHANGES` becomes `changes()`, which inside one batch is the count of
the statement just before. Text with NUL characters (which end an SQL string) travels as
`CAST(X'<utf-8 hex>' AS TEXT)`. A value that no literal carries exactly is bound instead: text too
long for a 100,000-byte statement, and floats outside 1e-15..1e15 (SQLite's decimal parser is exact
inside that range and may be one unit in the last place off outside it; measured on D1's engine with
60,000 random doubles).

`InsertRows` is packed into multi-row INSERTs of at most 100,000 bytes of UTF-8 each (and at most
`MAX_VALUES_TERMS` values, an engine limit Cloudflare does not list), with its `then` statement
after each one. `compile_batch` turns the statements of one `execute` into the items of one batch
request.
"""

from __future__ import annotations

import functools
import math
import operator
import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from ..._sql import quote_text
from ...errors import SqlError
from .._base import CHANGES, InsertRows, Statement

MAX_PARAMS = 100
MAX_SQL_BYTES = 100_000
# Not in Cloudflare's list of limits, but D1's engine answers "out of memory: SQLITE_NOMEM" for a
# multi-row VALUES past about 21,480 terms, counting rows x (columns + 1): measured 10,746 one-column
# rows and 1,074 nineteen-column rows. Statements stay under this.
MAX_VALUES_TERMS = 18_000


def text_literal(value: str) -> str:
    """Text as an SQL literal that D1 reads back exactly."""
    if "\x00" in value:
        # A NUL ends an SQL string literal, so such text travels as its UTF-8 bytes, cast back to text.
        return "CAST(X'" + value.encode("utf-8").hex() + "' AS TEXT)"
    return quote_text(value)


def _float_literal(value: float) -> str | None:
    if value != value:
        return "NULL"  # SQLite stores a bound NaN as NULL too
    if value in (math.inf, -math.inf):
        return "9e999" if value > 0 else "-9e999"
    if value == 0 or 1e-15 <= abs(value) <= 1e15:
        return repr(value)
    return None


def _int_literal(value: int) -> str:
    if not -(2**63) <= value < 2**63:
        raise SqlError(f"integer {value} does not fit in SQLite's 64 bits")
    return str(int(value))


_LITERALS: dict[type, Callable[[Any], str | None]] = {
    str: text_literal,
    int: _int_literal,
    float: _float_literal,
    bool: lambda v: "1" if v else "0",
    type(None): lambda v: "NULL",
    bytes: lambda v: "X'" + v.hex() + "'",
}


def sql_literal(value: Any) -> str | None:
    """`value` as an SQL literal that D1 reads back exactly, or None when only binding it is exact."""
    render = _LITERALS.get(type(value))
    if render is not None:
        return render(value)
    for kind in (bool, int, float, str):  # subclasses: IntEnum, str enums, numpy scalars that subclass
        if isinstance(value, kind):
            return _LITERALS[kind](kind(value))
    if isinstance(value, bytearray | memoryview):
        return "X'" + bytes(value).hex() + "'"
    raise SqlError(f"cannot send a value of type {type(value).__name__} to D1")


def _json_value(value: Any) -> Any:
    """A value bound as a parameter, as D1's JSON body carries it."""
    if isinstance(value, bytes | bytearray | memoryview):
        raise SqlError("D1's REST API cannot bind a BLOB parameter; it travels only as a literal")
    return value


# Tokens that may hide a '?': strings, quoted names, comments; and the '?' placeholders themselves.
_TOKENS = re.compile(r"""'(?:[^']|'')*'|"(?:[^"]|"")*"|`[^`]*`|\[[^\]]*\]|--[^\n]*|/\*.*?(?:\*/|\Z)|\?\d*""", re.S)


@functools.lru_cache(maxsize=256)
def _split_placeholders(sql: str) -> tuple[str, ...]:
    """The text around each '?' placeholder: n placeholders give n + 1 parts."""
    parts, start = [], 0
    for match in _TOKENS.finditer(sql):
        token = match.group()
        if token.startswith("?"):
            if token != "?":
                raise SqlError(f"numbered parameters ({token}) are not supported on D1: use '?'")
            parts.append(sql[start : match.start()])
            start = match.end()
    parts.append(sql[start:])
    return tuple(parts)


def render(sql: str, params: Sequence[Any] = (), changes: str = "changes()") -> tuple[str, list[Any]]:
    """`sql` with its parameters written in as literals (CHANGES as `changes`), and those left bound."""
    parts = _split_placeholders(sql)
    if len(parts) - 1 != len(params):
        raise SqlError(f"{len(parts) - 1} placeholders but {len(params)} parameters in: {sql[:80]}")
    if not params:
        return sql, []
    out, bound = [parts[0]], []
    for value, part in zip(params, parts[1:], strict=True):
        literal = changes if value is CHANGES else sql_literal(value)
        if literal is None:
            literal = "?"
            bound.append(_json_value(value))
        out.append(literal)
        out.append(part)
    text = "".join(out)
    if _utf8_len(text) > MAX_SQL_BYTES:
        # Too long written out: bind everything that is not CHANGES instead.
        out = [parts[0]]
        bound = []
        for value, part in zip(params, parts[1:], strict=True):
            if value is CHANGES:
                out.append(changes)
            else:
                out.append("?")
                bound.append(_json_value(value))
            out.append(part)
        text = "".join(out)
    if len(bound) > MAX_PARAMS:
        raise SqlError(f"{len(bound)} bound parameters in one statement; D1 allows {MAX_PARAMS}")
    return text, bound


def _utf8_len(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8"))


def pack_insert(insert: InsertRows, max_bytes: int = MAX_SQL_BYTES) -> Iterator[tuple[str, list[Any]]]:
    """The INSERT statements (SQL, bound parameters) that carry `insert.rows` within `max_bytes` each.

    Rows are written as literals, as many to a statement as fit. A row with a value that no literal
    carries exactly, or too long for a statement, goes alone, with just those values bound.
    """
    if len(insert.columns) > MAX_PARAMS:
        raise SqlError(f"{len(insert.columns)} columns; D1 binds at most {MAX_PARAMS} parameters")
    head = f"INSERT INTO {insert.table} ({', '.join(insert.columns)}) VALUES "
    tail = f" {insert.tail}" if insert.tail else ""
    room = max_bytes - _utf8_len(head) - _utf8_len(tail)
    most_rows = max(1, MAX_VALUES_TERMS // (len(insert.columns) + 1))
    group: list[str] = []
    size = -1  # the commas between rows: one fewer than rows
    for row in insert.rows:
        text = _row_literal(row)
        values: list[str | None] = []
        if text is None:  # the general path: something to escape, check or bind
            values = [sql_literal(v) for v in row]
            text = None if None in values else "(" + ", ".join(values) + ")"  # type: ignore[arg-type]
        length = room + 1 if text is None else _utf8_len(text)
        if length > room:
            if group:
                yield head + ",".join(group) + tail, []
                group, size = [], -1
            yield _bound_row(head, tail, row, values or [sql_literal(v) for v in row], room)
            continue
        if size + 1 + length > room or len(group) == most_rows:
            yield head + ",".join(group) + tail, []
            group, size = [], -1
        group.append(text)  # type: ignore[arg-type]
        size += 1 + length
    if group:
        yield head + ",".join(group) + tail, []


class _Template:
    """How to write rows whose values have one sequence of types: a %-format and what fills it."""

    __slots__ = ("fmt", "ints", "reals", "take", "texts")

    def __init__(self, kinds: tuple[type, ...]) -> None:
        parts, take, texts, ints, reals = [], [], [], [], []
        for i, kind in enumerate(kinds):
            if kind is type(None):
                parts.append("NULL")
                continue
            take.append(i)
            if kind is str:
                parts.append("'%s'")
                texts.append(i)
            elif kind is float:
                parts.append("%r")
                reals.append(i)
            else:  # int or bool
                parts.append("%d")
                ints.append(i)
        self.fmt = "(" + ", ".join(parts) + ")"
        self.take = operator.itemgetter(*take) if len(take) > 1 else (lambda row, i=take: tuple(row[j] for j in i))
        self.texts = operator.itemgetter(*texts) if len(texts) > 1 else (lambda row, i=texts: tuple(row[j] for j in i))
        self.ints, self.reals = ints, reals


_TEMPLATES: dict[tuple[type, ...], _Template | None] = {}
_PLAIN = frozenset((str, int, float, bool, type(None)))


def _row_literal(row: Sequence[Any]) -> str | None:
    """The fast path for the common row: `(...)` when no value needs more than its plain form
    (no quote or NUL in its text, no float outside the exact range, no integer past 64 bits)."""
    kinds = tuple(map(type, row))
    template = _TEMPLATES.get(kinds)
    if template is None:
        if kinds in _TEMPLATES or not _PLAIN.issuperset(kinds):
            return None
        template = _TEMPLATES[kinds] = _Template(kinds)
    joined = "".join(template.texts(row))
    if "'" in joined or "\x00" in joined:
        return None
    for i in template.reals:
        value = row[i]
        if not 1e-15 <= abs(value) <= 1e15 and value != 0:  # NaN and the infinities fail this too
            return None
    for i in template.ints:
        if not -(2**63) <= row[i] < 2**63:
            return None
    return template.fmt % template.take(row)


def _bound_row(head: str, tail: str, row: Sequence[Any], values: list[str | None], room: int) -> tuple[str, list[Any]]:
    """One row as its own INSERT, its longest (or inexact) values bound until the rest fits."""
    share = room // max(len(values), 1)
    bound: list[Any] = []
    parts = []
    for value, literal in zip(row, values, strict=True):
        if literal is None or _utf8_len(literal) > share:
            parts.append("?")
            bound.append(_json_value(value))
        else:
            parts.append(literal)
    return head + "(" + ", ".join(parts) + ")" + tail, bound


# --- one batch request -------------------------------------------------------------------------------


def item(sql: str, bound: list[Any]) -> dict[str, Any]:
    """One statement as D1's JSON body carries it."""
    return {"sql": sql, "params": bound} if bound else {"sql": sql}


def compile_batch(statements: Sequence[Statement]) -> tuple[list[dict[str, Any]], list[list[int]]]:
    """The batch items for `statements`, and for each statement the items whose changes are its own."""
    items: list[dict[str, Any]] = []
    owners: list[list[int]] = []
    simple_previous = False  # changes() would name the previous statement exactly
    for statement in statements:
        if isinstance(statement, InsertRows):
            own = _compile_insert(statement, items)
            owners.append(own)
            simple_previous = len(own) == 1 and statement.then is None
            continue
        uses_changes = any(p is CHANGES for p in statement.params)
        if uses_changes and items and not simple_previous:
            raise SqlError(
                "CHANGES after an InsertRows that D1 packs into several statements is not supported:"
                " count it with InsertRows.then"
            )
        changes = "changes()" if items else "0"
        owners.append([len(items)])
        items.append(item(*render(statement.text, statement.params, changes=changes)))
        simple_previous = True
    return items, owners


def _compile_insert(insert: InsertRows, items: list[dict[str, Any]]) -> list[int]:
    """Append the packed pieces of `insert` (each followed by its `then`) to `items`; their positions."""
    own: list[int] = []
    then = None
    for sql, bound in pack_insert(insert):
        own.append(len(items))
        items.append(item(sql, bound))
        if insert.then is not None:
            then = then or render(insert.then.text, insert.then.params)
            items.append(item(*then))
    if not own and insert.then is not None:
        items.append(item(*render(insert.then.text, insert.then.params, changes="0")))
    return own
