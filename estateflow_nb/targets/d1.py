"""Cloudflare D1 as a target, over Cloudflare's REST API with httpx.

    d1://ACCOUNT_ID/DATABASE_ID     (either part may be left empty and come from the environment)

The API token comes from `CLOUDFLARE_API_TOKEN` and from nowhere else; the account and database may
also come from `CLOUDFLARE_ACCOUNT_ID` and `D1_DATABASE_ID`. Requests go to
`CLOUDFLARE_API_BASE_URL` (default https://api.cloudflare.com/client/v4) followed by exactly
Cloudflare's path, so the same client talks to Cloudflare and to the local engine the tests run.

How statements travel. `execute` sends all its statements as one `{"batch": [...]}` request to
`/query`, which D1 runs as one transaction: a batch and its checkpoint commit together or not at all.
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
after each one. Queries go to `/raw`, whose rows come as arrays beside their
column names, in order.

Errors arrive classified (see `classify`): TransientError (with `retry_after`) for HTTP 429, 5xx,
timeouts, broken connections and D1's transient messages; QuotaExceededError for D1's free-tier daily
limits; AuthError for 401/403 and a malformed token; SqlError for a statement D1 rejects;
ConflictError for a license number already taken. Writes are not retried here: a request that timed
out may have been applied, and only the caller knows whether replaying it is safe (the importer's
batches are). Reads are retried here, since reading twice is harmless. A client-side pacer keeps
requests under the API's limit of 1,200 per 5 minutes.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import math
import operator
import os
import random
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from .._files import atomic_text
from ..errors import (
    AuthError,
    ConflictError,
    QuotaExceededError,
    SqlError,
    TargetError,
    TransientError,
    until_reset,
)
from ..schema import SCHEMA_STATEMENTS
from ._base import CHANGES, ExecuteResult, InsertRows, Limits, Sql, Statement, Target

TOKEN_ENV = "CLOUDFLARE_API_TOKEN"
ACCOUNT_ENV = "CLOUDFLARE_ACCOUNT_ID"
DATABASE_ENV = "D1_DATABASE_ID"
BASE_URL_ENV = "CLOUDFLARE_API_BASE_URL"
RATE_ENV = "ESTATEFLOW_D1_REQUESTS_PER_5_MIN"
DEFAULT_BASE_URL = "https://api.cloudflare.com/client/v4"

MAX_PARAMS = 100
MAX_SQL_BYTES = 100_000
MAX_ROW_BYTES = 2_000_000
MAX_QUERY_SECONDS = 30.0
# Not in Cloudflare's list of limits, but D1's engine answers "out of memory: SQLITE_NOMEM" for a
# multi-row VALUES past about 21,480 terms, counting rows x (columns + 1): measured 10,746 one-column
# rows and 1,074 nineteen-column rows. Statements stay under this.
MAX_VALUES_TERMS = 18_000
# Cloudflare's API allows 1,200 requests per 5 minutes per user; the pacer keeps a margin below it.
RATE_LIMIT_REQUESTS = 1_200
RATE_LIMIT_WINDOW = 300.0
RATE_LIMIT_MARGIN = 0.95
# One request carries one transaction; past this the batch size is the thing to change.
MAX_REQUEST_BYTES = 50_000_000
READ_ATTEMPTS = 4
READ_RETRY_BASE_SECONDS = 0.5
DUMP_PAGE_ROWS = 2_000
DUMP_ROWS_PER_INSERT = 200

_TRANSIENT_MESSAGES = (
    "d1 db is overloaded",
    "network connection lost",
    "reset because its code was updated",
    "internal error while starting up d1 db storage",
    "internal error in d1 db storage",
    "cannot resolve d1 db due to transient issue",
    "can't read from request stream because client disconnected",
)
# Cloudflare's codes for a refused or malformed credential.
_AUTH_CODES = {6003, 6111, 9106, 9109, 10000, 10001}


def _utc_now() -> datetime:
    return datetime.now(UTC)


# --- URLs and credentials --------------------------------------------------------------------------


def parse_url(url: str, environ: dict[str, str] | None = None) -> tuple[str, str]:
    """(account id, database id) of `d1://ACCOUNT/DATABASE`, empty parts filled from the environment."""
    env = os.environ if environ is None else environ
    if not url.startswith("d1://"):
        raise TargetError(f"not a D1 URL: {url!r}; expected d1://ACCOUNT_ID/DATABASE_ID")
    account, _, database = url.removeprefix("d1://").partition("/")
    account = account or env.get(ACCOUNT_ENV, "")
    database = database.strip("/") or env.get(DATABASE_ENV, "")
    if not account or not database:
        raise TargetError(
            f"bad D1 URL {url!r}: expected d1://ACCOUNT_ID/DATABASE_ID (or set {ACCOUNT_ENV} and {DATABASE_ENV})"
        )
    if "/" in database or not re.fullmatch(r"[\w.-]+", account + database):
        raise TargetError(f"bad D1 URL {url!r}: account and database are IDs like 0123abcd..., without '/'")
    return account, database


class _Secret:
    """A token that does not show itself in repr(), str() or tracebacks' locals."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def fingerprint(self) -> str:
        return hashlib.sha256(self._value.encode()).hexdigest()[:16]

    def __repr__(self) -> str:
        return "<secret>"

    __str__ = __repr__


# --- SQL literals ----------------------------------------------------------------------------------


def _text_literal(value: str) -> str:
    if "\x00" in value:
        # A NUL ends an SQL string literal, so such text travels as its UTF-8 bytes, cast back to text.
        return "CAST(X'" + value.encode("utf-8").hex() + "' AS TEXT)"
    return "'" + value.replace("'", "''") + "'"


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
    str: _text_literal,
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


# --- pacing ----------------------------------------------------------------------------------------


class RatePacer:
    """At most `limit` requests in any `window` seconds: waits before a request that would exceed it.

    A sliding window, not a fixed pace: an import may burst as fast as D1 answers until the window is
    full. `clock` and `sleep` are injectable so that the rule is tested without waiting.
    """

    def __init__(
        self,
        limit: int,
        window: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if limit < 1:
            raise ValueError("a pacer needs a limit of at least 1")
        self.limit, self.window = limit, window
        self.clock, self.sleep = clock, sleep
        self.sent: deque[float] = deque()
        self.waited = 0.0
        self._lock = threading.Lock()

    def acquire(self) -> None:
        with self._lock:
            while True:
                now = self.clock()
                while self.sent and self.sent[0] <= now - self.window:
                    self.sent.popleft()
                if len(self.sent) < self.limit:
                    self.sent.append(now)
                    return
                wait = self.sent[0] + self.window - now
                self.waited += wait
                self.sleep(wait)


_PACERS: dict[tuple[str, str], RatePacer] = {}
_PACERS_LOCK = threading.Lock()


def _shared_pacer(base_url: str, token: _Secret) -> RatePacer:
    """One pacer per API and token in this process: the rate limit is per user, not per target."""
    limit = int(os.environ.get(RATE_ENV) or RATE_LIMIT_REQUESTS)
    key = (base_url, token.fingerprint())
    with _PACERS_LOCK:
        pacer = _PACERS.get(key)
        if pacer is None or pacer.limit != max(1, int(limit * RATE_LIMIT_MARGIN)):
            pacer = _PACERS[key] = RatePacer(max(1, int(limit * RATE_LIMIT_MARGIN)), RATE_LIMIT_WINDOW)
        return pacer


# --- answers ---------------------------------------------------------------------------------------


def _retry_after(headers: httpx.Headers) -> float | None:
    value = headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, (parsedate_to_datetime(value) - _utc_now()).total_seconds())
    except (TypeError, ValueError):
        return None


def _errors(payload: Any) -> list[dict[str, Any]]:
    errors = payload.get("errors") if isinstance(payload, dict) else None
    found = [e for e in errors or () if isinstance(e, dict)]
    for error in list(found):
        found += [e for e in error.get("error_chain") or () if isinstance(e, dict)]
    return found


def classify(status: int, payload: Any, headers: httpx.Headers | None = None, where: str = "D1") -> TargetError:
    """The error for an answer that was not a success: kind by Cloudflare's codes, status and message."""
    errors = _errors(payload)
    codes = {e.get("code") for e in errors}
    text = "; ".join(f"{e.get('message', '').strip()} [code {e.get('code')}]" for e in errors) or f"HTTP {status}"
    lowered = text.lower()
    retry_after = _retry_after(headers) if headers is not None else None
    if "free tier daily row" in lowered or "exceeded d1's free tier" in lowered:
        kind = "row read" if "row read" in lowered else "row write"
        return QuotaExceededError(
            f"{where}: the account's free-tier daily {kind} limit is used up ({text}); it resets {until_reset()}"
        )
    if status in (401, 403) or codes & _AUTH_CODES:
        return AuthError(
            f"{where}: Cloudflare refused the API token (HTTP {status}: {text}). Check that {TOKEN_ENV} holds a"
            " current token with D1 Edit permission on this account."
        )
    if status == 429:
        return TransientError(f"{where}: rate limited by Cloudflare (HTTP 429: {text})", retry_after=retry_after)
    if status >= 500 or any(m in lowered for m in _TRANSIENT_MESSAGES):
        return TransientError(f"{where}: D1 is unavailable for now (HTTP {status}: {text})", retry_after=retry_after)
    if status == 404 or 7404 in codes:
        return TargetError(f"{where}: not found (HTTP {status}: {text}); check the account and database IDs")
    if "sqlite_constraint" in lowered and "license_number" in lowered:
        return ConflictError(f"license number already in the table ({text})")
    if status == 400 and (7500 in codes or "sqlite_" in lowered):
        if "sqlite_constraint" in lowered:
            return TargetError(f"{where}: {text}")
        return SqlError(f"{where} rejected the SQL: {text}")
    return TargetError(f"{where}: HTTP {status}: {text}")


def _scrub(error: TargetError, token: _Secret) -> TargetError:
    """Make sure no message carries the token, whatever the server echoed."""
    secret = token.reveal()
    if secret and secret in str(error):
        error.args = (str(error).replace(secret, "<token>"),)
    return error


# --- the target ------------------------------------------------------------------------------------


class D1Target(Target):
    kind = "d1"
    limits = Limits(max_params=MAX_PARAMS, max_sql_bytes=MAX_SQL_BYTES, max_query_seconds=MAX_QUERY_SECONDS)

    def __init__(
        self,
        account_id: str,
        database_id: str,
        *,
        token: str,
        base_url: str | None = None,
        transport: httpx.BaseTransport | None = None,
        pacer: RatePacer | None = None,
        timeout: float = 120.0,
        read_attempts: int = READ_ATTEMPTS,
        ensure_schema: bool = True,
    ) -> None:
        token = (token or "").strip()
        if token and not re.fullmatch(r"[!-~]+", token):
            raise AuthError(f"{TOKEN_ENV} holds spaces or characters an API token cannot have: copy the token again")
        if not token:
            raise AuthError(f"{TOKEN_ENV} is not set: create a Cloudflare API token with D1 Edit permission, export it")
        self.account_id, self.database_id = account_id, database_id
        self.url = f"d1://{account_id}/{database_id}"
        self.base_url = (base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL).rstrip("/")
        self._token = _Secret(token)
        self._pacer = pacer or _shared_pacer(self.base_url, self._token)
        self.read_attempts = read_attempts
        self.requests = 0  # HTTP requests sent, for benchmarks and tests
        self._path = f"/accounts/{quote(account_id, safe='')}/d1/database/{quote(database_id, safe='')}"
        self._client = httpx.Client(
            base_url=self.base_url,
            transport=transport,
            timeout=httpx.Timeout(timeout, connect=15.0),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        if ensure_schema:
            self.execute([Sql(statement) for statement in SCHEMA_STATEMENTS])

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> D1Target:
        """A target for `d1://ACCOUNT/DATABASE`, with the token from CLOUDFLARE_API_TOKEN."""
        account, database = parse_url(url)
        return cls(account, database, token=os.environ.get(TOKEN_ENV, ""), **kwargs)

    # -- HTTP ---------------------------------------------------------------------------------------

    def _request(self, method: str, path: str, body: Any = None, params: dict[str, str] | None = None) -> Any:
        """One request; the `result` of Cloudflare's envelope, or a classified TargetError."""
        content = None
        if body is not None:
            try:
                content = json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
            except UnicodeEncodeError:
                raise TargetError("a value is not valid Unicode (a lone surrogate); it cannot be sent to D1") from None
            if len(content) > MAX_REQUEST_BYTES:
                raise SqlError(f"one D1 request would carry {len(content) / 1e6:.0f} MB; use a smaller --batch-size")
        self._pacer.acquire()
        self.requests += 1
        try:
            response = self._client.request(method, self._path + path, content=content, params=params)
        except httpx.TimeoutException as error:
            fault = TransientError(f"D1: no answer in time ({type(error).__name__}); it may have been applied")
            raise _scrub(fault, self._token) from None
        except httpx.TransportError as error:
            fault = TransientError(f"D1: the connection failed ({type(error).__name__}: {error})")
            raise _scrub(fault, self._token) from None
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if response.status_code == 200 and isinstance(payload, dict) and payload.get("success"):
            return payload.get("result")
        raise _scrub(classify(response.status_code, payload, response.headers), self._token)

    def _read(self, method: str, path: str, body: Any = None, params: dict[str, str] | None = None) -> Any:
        """A request that is safe to repeat, retried with backoff while the fault is transient."""
        for attempt in range(1, self.read_attempts + 1):
            try:
                return self._request(method, path, body, params)
            except TransientError as error:
                if attempt == self.read_attempts:
                    raise
                wait = error.retry_after
                if wait is None:
                    wait = READ_RETRY_BASE_SECONDS * 2 ** (attempt - 1) * (0.5 + random.random())
                time.sleep(wait)
        raise AssertionError("unreachable")

    # -- Target -------------------------------------------------------------------------------------

    def _compile(self, statements: Sequence[Statement]) -> tuple[list[dict[str, Any]], list[list[int]]]:
        """The batch items for `statements`, and for each statement the items whose changes are its own."""
        items: list[dict[str, Any]] = []
        owners: list[list[int]] = []
        simple_previous = False  # changes() would name the previous statement exactly
        for statement in statements:
            if isinstance(statement, InsertRows):
                own: list[int] = []
                then = None
                for sql, bound in pack_insert(statement):
                    own.append(len(items))
                    items.append(_item(sql, bound))
                    if statement.then is not None:
                        then = then or render(statement.then.text, statement.then.params)
                        items.append(_item(*then))
                if not own and statement.then is not None:
                    items.append(_item(*render(statement.then.text, statement.then.params, changes="0")))
                owners.append(own)
                simple_previous = len(own) == 1 and statement.then is None
            else:
                uses_changes = any(p is CHANGES for p in statement.params)
                if uses_changes and items and not simple_previous:
                    raise SqlError(
                        "CHANGES after an InsertRows that D1 packs into several statements is not supported:"
                        " count it with InsertRows.then"
                    )
                changes = "changes()" if items else "0"
                owners.append([len(items)])
                items.append(_item(*render(statement.text, statement.params, changes=changes)))
                simple_previous = True
        return items, owners

    def execute(
        self, statements: Sequence[Statement], *, before_commit: Callable[[], None] | None = None
    ) -> ExecuteResult:
        """Send `statements` as one batch request, which D1 commits as one transaction.

        D1 cannot pause between the last statement and the commit, so `before_commit` runs just
        before the request is sent: what it interrupts has not been applied.
        """
        items, owners = self._compile(statements)
        if before_commit is not None:
            before_commit()
        if not items:
            return ExecuteResult(changes=[0] * len(owners))
        results = self._request("POST", "/query", {"batch": items})
        if not isinstance(results, list) or len(results) != len(items):
            raise TargetError(f"D1 answered {len(results or ())} results for {len(items)} statements")
        metas = [r.get("meta") or {} for r in results]
        return ExecuteResult(
            changes=[sum(int(metas[i].get("changes") or 0) for i in own) for own in owners],
            rows_written=sum(int(m.get("rows_written") or 0) for m in metas),
        )

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        text, bound = render(sql, params, changes="0")
        results = self._read("POST", "/raw", _item(text, bound))
        table = (results[-1].get("results") if results else None) or {}
        columns = table.get("columns") or []
        return [dict(zip(columns, row, strict=True)) for row in table.get("rows") or ()]

    def size_bytes(self) -> int | None:
        """The database's size as Cloudflare reports it (`file_size`)."""
        details = self._read("GET", "")
        size = details.get("file_size") if isinstance(details, dict) else None
        return int(size) if size is not None else None

    def bookmark(self, at: datetime | None = None) -> str | None:
        """D1's Time Travel bookmark for now (or the nearest one at or before `at`): restoring to it
        undoes everything after. Record it before a destructive step."""
        params = {"timestamp": at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")} if at else None
        result = self._read("GET", "/time_travel/bookmark", params=params)
        return result.get("bookmark") if isinstance(result, dict) else None

    def close(self) -> None:
        self._client.close()

    # -- backups ------------------------------------------------------------------------------------

    def dump_sql(self, path: str | Path) -> Path:
        """Write every table (schema, rows, indexes) to `path` as a SQL dump, paging through D1.

        The dump is what the sqlite3 shell's `.dump` writes and what `sources.read_rows` reads: CREATE
        TABLE, multi-row INSERTs with exact literals (integers as written, reals as SQLite quotes them,
        text with NULs as CAST(X'..' AS TEXT), line breaks through replace() as .dump writes
        them), CREATE INDEX, all in one transaction. D1's internal tables
        (`_cf_*`, `sqlite_*`) are left out. Written under a temporary name and renamed when complete.
        """
        schema = self.query(
            "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL AND type IN ('table', 'index')"
            " AND name NOT LIKE 'sqlite/_%' ESCAPE '/' AND name NOT LIKE '/_cf/_%' ESCAPE '/'"
            " ORDER BY CASE type WHEN 'table' THEN 0 ELSE 1 END, rowid"
        )
        with atomic_text(path) as out:
            out.write("PRAGMA foreign_keys=OFF;\nBEGIN TRANSACTION;\n")
            for entry in schema:
                if entry["type"] == "table":
                    out.write(f"{entry['sql']};\n")
                    self._dump_rows(entry["name"], out, paged="WITHOUT ROWID" not in entry["sql"].upper())
            for entry in schema:
                if entry["type"] == "index":
                    out.write(f"{entry['sql']};\n")
            out.write("COMMIT;\n")
        return Path(path)

    def _dump_rows(self, table: str, out: Any, *, paged: bool = True) -> None:
        """Rows in pages by rowid; a WITHOUT ROWID table (only our scratch tables) in one read."""
        name = _quoted_name(table)
        columns = [row["name"] for row in self.query(f"PRAGMA table_info({name})")]
        if not columns:
            return
        # Each value comes with its type: integers as text (JSON numbers lose digits past 2^53),
        # reals as SQLite's own round-trip quote(), blobs as hex, text as itself.
        exprs = ", ".join(
            f"typeof({c}), CASE typeof({c}) WHEN 'integer' THEN CAST({c} AS TEXT) WHEN 'real' THEN quote({c})"
            f" WHEN 'blob' THEN hex({c}) ELSE {c} END"
            for c in map(_quoted_name, columns)
        )
        last = None
        while True:
            where = "" if last is None else f" WHERE rowid > {int(last)}"
            # Named: SQLite calls a bare rowid by the name of an INTEGER PRIMARY KEY column ("id") if there is one.
            if paged:
                rows = self.query(
                    f"SELECT rowid AS rowid, {exprs} FROM {name}{where} ORDER BY rowid LIMIT {DUMP_PAGE_ROWS}"
                )
            else:
                rows = self.query(f"SELECT NULL AS rowid, {exprs} FROM {name}")
            values = [
                "(" + ", ".join(_dump_literal(kind, value) for kind, value in _pairs(list(row.values())[1:])) + ")"
                for row in rows
            ]
            for start in range(0, len(values), DUMP_ROWS_PER_INSERT):
                out.write(f"INSERT INTO {name} VALUES{','.join(values[start : start + DUMP_ROWS_PER_INSERT])};\n")
            if not paged or len(rows) < DUMP_PAGE_ROWS:
                return
            last = rows[-1]["rowid"]


def _item(sql: str, bound: list[Any]) -> dict[str, Any]:
    return {"sql": sql, "params": bound} if bound else {"sql": sql}


def _quoted_name(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _pairs(values: list[Any]) -> Iterator[tuple[str, Any]]:
    return zip(values[0::2], values[1::2], strict=True)


def _dump_literal(kind: str, value: Any) -> str:
    if kind == "null":
        return "NULL"
    if kind in ("integer", "real"):
        return str(value)
    if kind == "blob":
        return f"X'{value}'"
    return _dump_text(str(value))


def _dump_text(value: str) -> str:
    """Text for a dump file, read line by line: the sqlite3 shell drops a CR before a line end, so
    (as its own .dump does) CR and LF are written as markers that replace() turns back."""
    literal = _text_literal(value)
    if "\x00" in value or ("\r" not in value and "\n" not in value):
        return literal
    for char, code, name in (("\r", 13, "r"), ("\n", 10, "n")):
        if char in value:
            marker = next(m for m in _markers(name) if m not in value)
            literal = f"replace({literal.replace(char, marker)},'{marker}',char({code}))"
    return literal


def _markers(name: str) -> Iterator[str]:
    yield "\\" + name
    for i in itertools.count():
        yield f"\\{name}{i}"
