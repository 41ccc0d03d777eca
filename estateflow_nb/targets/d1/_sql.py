"""SQL for D1's REST API: values written into the SQL as exact literals, and statements packed to D1's limits.

Values are written into the SQL as literals rather than bound, for three reasons: a multi-row INSERT
then carries hundreds of rows instead of the five that D1's 100 bound parameters allow; the REST API
declares `params` as an array of strings (the schema's `params: optional array of string`), so a bound
value arrives as TEXT whatever it was, and only a literal keeps SQLite's types; and `CHANGES` becomes
`changes()`, the count of the statement just before it. Text with NUL characters (which end an SQL
string) travels as `CAST(X'<utf-8 hex>' AS TEXT)`. Floats inside 1e-15..1e15 are written as Python's
shortest round-trip decimal (SQLite's decimal parser is exact in that range and may be one unit in
the last place off outside it; measured on D1's engine with 60,000 random doubles); outside it, as
their exact binary value, `CAST(mantissa AS REAL)` multiplied or divided by powers of two written as
integers, arithmetic that is exact in IEEE doubles. The only values ever bound are strings: text too
long for a 100,000-byte statement.

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


# The largest power of two an integer literal carries (2^63 would be read as a REAL).
_STEP = 62


def _float_literal(value: float) -> str:
    if value != value:
        return "NULL"  # SQLite stores a bound NaN as NULL too
    if value in (math.inf, -math.inf):
        return "9e999" if value > 0 else "-9e999"
    if value == 0 or 1e-15 <= abs(value) <= 1e15:
        return repr(value)
    return _exact_float(value)


def _exact_float(value: float) -> str:
    """`value` as mantissa x 2^exponent in SQL: every step a multiplication or division of a double by a
    power of two whose result is representable, so every step is exact (no decimal is parsed)."""
    fraction, exponent = math.frexp(value)
    mantissa, exponent = int(fraction * 2**53), exponent - 53
    while mantissa % 2 == 0:
        mantissa //= 2
        exponent += 1
    # Multiplying, the partial products grow towards the value; dividing, they shrink towards it: either
    # way each is a multiple of the value's own last bit, and representable.
    op = "*" if exponent > 0 else "/"
    steps, rest = divmod(abs(exponent), _STEP)
    factors = [str(2**_STEP)] * steps + ([str(2**rest)] if rest else [])
    return "(" + f"CAST({mantissa} AS REAL)" + "".join(f" {op} {f}" for f in factors) + ")"


def _int_literal(value: int) -> str:
    if not -(2**63) <= value < 2**63:
        raise SqlError(f"integer {value} does not fit in SQLite's 64 bits")
    return str(int(value))


_LITERALS: dict[type, Callable[[Any], str]] = {
    str: text_literal,
    int: _int_literal,
    float: _float_literal,
    bool: lambda v: "1" if v else "0",
    type(None): lambda v: "NULL",
    bytes: lambda v: "X'" + v.hex() + "'",
}


def sql_literal(value: Any) -> str:
    """`value` as an SQL literal (or exact constant expression) that D1 reads back exactly."""
    render = _LITERALS.get(type(value))
    if render is not None:
        return render(value)
    for kind in (bool, int, float, str):  # subclasses: IntEnum, str enums, numpy scalars that subclass
        if isinstance(value, kind):
            return _LITERALS[kind](kind(value))
    if isinstance(value, bytearray | memoryview):
        return "X'" + bytes(value).hex() + "'"
    raise SqlError(f"cannot send a value of type {type(value).__name__} to D1")


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


def render(sql: str, params: Sequence[Any] = (), changes: str = "changes()") -> tuple[str, list[str]]:
    """`sql` with its parameters written in as literals (CHANGES as `changes`), and the texts left bound
    because the statement would not fit D1's 100,000 bytes otherwise (the longest first)."""
    parts = _split_placeholders(sql)
    if len(parts) - 1 != len(params):
        raise SqlError(f"{len(parts) - 1} placeholders but {len(params)} parameters in: {sql[:80]}")
    if not params:
        return sql, []
    literals = [changes if value is CHANGES else sql_literal(value) for value in params]
    size = _utf8_len(sql) - (len(parts) - 1) + sum(map(_utf8_len, literals))
    bind: set[int] = set()
    if size > MAX_SQL_BYTES:
        longest = sorted(range(len(params)), key=lambda i: -_utf8_len(literals[i]))
        for i in longest:
            if size <= MAX_SQL_BYTES:
                break
            if isinstance(params[i], str):
                bind.add(i)
                size -= _utf8_len(literals[i]) - 1
        if size > MAX_SQL_BYTES:
            raise SqlError(
                f"a statement of {size:,} bytes even with its texts bound: D1 takes {MAX_SQL_BYTES:,} bytes a"
                " statement, and its REST API binds strings only"
            )
    out, bound = [parts[0]], []
    for i, part in enumerate(parts[1:]):
        if i in bind:
            out.append("?")
            bound.append(str(params[i]))
        else:
            out.append(literals[i])
        out.append(part)
    if len(bound) > MAX_PARAMS:
        raise SqlError(f"{len(bound)} bound parameters in one statement; D1 allows {MAX_PARAMS}")
    return "".join(out), bound


def _utf8_len(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8"))


def pack_insert(insert: InsertRows, max_bytes: int = MAX_SQL_BYTES) -> Iterator[tuple[str, list[str]]]:
    """The INSERT statements (SQL, bound parameters) that carry `insert.rows` within `max_bytes` each.

    Rows are written as literals, as many to a statement as fit. A row too long for a statement goes
    alone, with its longest texts bound.
    """
    if len(insert.columns) > MAX_PARAMS:
        raise SqlError(f"{len(insert.columns)} columns; D1 binds at most {MAX_PARAMS} parameters")
    head = f"INSERT INTO {insert.table} ({', '.join(insert.columns)}) VALUES "
    tail = f" {insert.tail}" if insert.tail else ""
    room = max_bytes - _utf8_len(head) - _utf8_len(tail)
    most_rows = max(1, MAX_VALUES_TERMS // (len(insert.columns) + 1))
    group: list[str] = []
    size = -1  # the commas between rows: one fewer than rows
    rendered = insert.rendered
    for row in insert.rows:
        # A row rendered ahead by `render_rows` (in the reader process) is its text already.
        text = row if rendered and type(row) is str else _text_of(row)
        length = _utf8_len(text)
        if length > room:
            if group:
                yield head + ",".join(group) + tail, []
                group, size = [], -1
            # Never a text: `render_rows` leaves a row as values long before its text gets near `room`.
            assert text is not row, "a rendered row longer than a statement"
            yield _bound_row(head, tail, row)
            continue
        if size + 1 + length > room or len(group) == most_rows:
            yield head + ",".join(group) + tail, []
            group, size = [], -1
        group.append(text)
        size += 1 + length
    if group:
        yield head + ",".join(group) + tail, []


def _text_of(row: Sequence[Any]) -> str:
    """`(...)`: the fast path for the common row, else the general one (something to escape or write
    exactly)."""
    return _row_literal(row) or "(" + ", ".join(sql_literal(v) for v in row) + ")"


# A row whose text is longer than this stays values when rendered ahead: `pack_insert` then sends it
# alone with its longest texts bound, if its text would not fit a statement beside the INSERT's head.
RENDERED_MAX_BYTES = MAX_SQL_BYTES // 2


def render_rows(rows: list[tuple[Any, ...]]) -> list[Any]:
    """`rows` rendered ahead for `InsertRows.rendered` (D1's `Limits.row_renderer`): each row as the text
    `pack_insert` would write for it, or its values where that text is longer than RENDERED_MAX_BYTES.

    Run by the reader process (see _batches.py), so that the importer only joins texts into statements
    and decodes one string a row instead of a row's values. Raises SqlError for a value D1 cannot take,
    as `pack_insert` would."""
    texts: list[Any] = []
    for row in rows:
        text = _text_of(row)
        texts.append(text if _utf8_len(text) <= RENDERED_MAX_BYTES else row)
    return texts


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


def _bound_row(head: str, tail: str, row: Sequence[Any]) -> tuple[str, list[str]]:
    """One row as its own INSERT, its longest texts bound until the rest fits."""
    return render(head + "(" + ", ".join("?" * len(row)) + ")" + tail, row)


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
