"""D1's REST API over httpx: one request at a time, its envelope opened, its errors classified.

Requests go to `CLOUDFLARE_API_BASE_URL` (default https://api.cloudflare.com/client/v4) followed by
exactly Cloudflare's path, so the same client talks to Cloudflare and to the local engine the tests
run. The token comes from the caller (the target reads it from `CLOUDFLARE_API_TOKEN`); it is kept
in a `_Secret`, scrubbed from every message whatever the server echoes, and sent only over https, or
over plain http to this machine's loopback (the local engine): any other base URL is refused before
the first request. Redirects are never followed.

Errors arrive classified by Cloudflare's own table (debug-d1's list of D1_ERRORs), not by HTTP status
alone, since D1 answers most of its errors with code 7500 (see `classify`): TooLargeError for HTTP 413
and the errors whose documented fix is smaller work; TransientError (with `retry_after`) for HTTP 429,
5xx, timeouts, broken connections and the errors whose documented fix is to retry;
QuotaExceededError for the free tier's daily limits; AuthError for a refused or malformed token;
SqlError only for what SQLite itself rejected; ConflictError for a license number already taken.
Nothing is retried here: only the caller knows whether sending a request again is safe. Every request
waits its turn in the user's shared pacer (`_pacer`), and a 429 pauses that pacer for its Retry-After.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import httpx

from ..._time import utc_now
from ...errors import (
    AuthError,
    ConflictError,
    QuotaExceededError,
    SqlError,
    TargetError,
    TooLargeError,
    TransientError,
    until_reset,
)
from ._pacer import RATE_LIMIT_REQUESTS, Pacer, pacer_for

TOKEN_ENV = "CLOUDFLARE_API_TOKEN"
ACCOUNT_ENV = "CLOUDFLARE_ACCOUNT_ID"
DATABASE_ENV = "D1_DATABASE_ID"
BASE_URL_ENV = "CLOUDFLARE_API_BASE_URL"
RATE_ENV = "ESTATEFLOW_D1_REQUESTS_PER_5_MIN"
DEFAULT_BASE_URL = "https://api.cloudflare.com/client/v4"

# Our own ceiling on one request body, far above what a batch of ours carries (Cloudflare documents
# 100 KB per statement, not a body size): past it the batch is what must shrink.
MAX_REQUEST_BYTES = 50_000_000

# debug-d1's D1_ERRORs whose recommended action is "Retry the operation", and the overloaded ones,
# whose action includes "spreading the load over time" (what backing off does).
_TRANSIENT_MESSAGES = (
    "reset because its code was updated",
    "internal error while starting up d1 db storage",
    "network connection lost",
    "internal error in d1 db storage",
    "cannot resolve d1 db due to transient issue",
    "can't read from request stream because client disconnected",
    "d1 db is overloaded",
)
# debug-d1's D1_ERRORs whose recommended action is to make each query do less ("optimize the queries
# so that each query takes less time", "split the query into smaller shards"): sending the same work
# again would fail the same way.
_TOO_LARGE_MESSAGES = (
    "storage operation exceeded timeout which caused object to be reset",
    "exceeded its memory limit",
    "exceeded its cpu time limit",
)
# What SQLite (or D1's statement layer) says about a statement: only these are SqlError. D1 answers
# every D1 error with code 7500, so the code alone says nothing about whose fault it is.
_SQL_SIGNS = (
    "sqlite_",
    "d1_type_error",
    "d1_column_notfound",
    "d1_exec_error",
    "syntax error",
    "no such table",
    "no such column",
    "has no column named",
    "too many sql variables",
)
# Cloudflare's codes for a refused or malformed credential.
_AUTH_CODES = {6003, 6111, 9106, 9109, 10000, 10001}
# Answers that mean "this endpoint is not here" (not "this database is not here", which is 7404).
_ABSENT_STATUSES = {404, 405, 501}


def checked_url(url: str, what: str) -> str:
    """`url` if the token (or a database's contents) may travel to it: https, or plain http to this
    machine's loopback (127.0.0.0/8, ::1, localhost) for the local engine; else TargetError."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError):
        raise TargetError(f"{what} is not a URL") from None
    host = parsed.host.lower()
    if parsed.scheme == "https" and host:
        return url
    if parsed.scheme == "http" and _loopback(host):
        return url
    shown = f"{parsed.scheme}://{host}" if parsed.scheme else "a URL without a scheme"
    raise TargetError(
        f"{what} points at {shown}: D1 is reached only over https (plain http only to this machine:"
        " 127.0.0.0/8, ::1 or localhost), so nothing was sent"
    )


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# --- the client ------------------------------------------------------------------------------------


class D1Api:
    """The REST API of one D1 database: `request` sends one request and returns its `result`."""

    def __init__(
        self,
        account_id: str,
        database_id: str,
        *,
        token: str,
        base_url: str | None = None,
        transport: httpx.BaseTransport | None = None,
        pacer: Pacer | None = None,
        timeout: float = 120.0,
    ) -> None:
        token = (token or "").strip()
        if token and not re.fullmatch(r"[!-~]+", token):
            raise AuthError(f"{TOKEN_ENV} holds spaces or characters an API token cannot have: copy the token again")
        if not token:
            raise AuthError(f"{TOKEN_ENV} is not set: create a Cloudflare API token with D1 Edit permission, export it")
        base = (base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL).rstrip("/")
        self.base_url = checked_url(base, BASE_URL_ENV)
        self._token = _Secret(token)
        self._pacer = pacer or pacer_for(token, int(os.environ.get(RATE_ENV) or RATE_LIMIT_REQUESTS))
        self.requests = 0  # HTTP requests sent, for benchmarks and tests
        self._path = f"/accounts/{quote(account_id, safe='')}/d1/database/{quote(database_id, safe='')}"
        self._transport = transport
        self._timeout = httpx.Timeout(timeout, connect=15.0)
        self._client = httpx.Client(
            base_url=self.base_url,
            transport=transport,
            timeout=self._timeout,
            follow_redirects=False,  # a redirect would carry the token somewhere nobody checked
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: dict[str, str] | None = None,
        *,
        absent_ok: bool = False,
    ) -> Any:
        """One request to the database's `path`; the `result` of Cloudflare's envelope, or a classified
        TargetError. With `absent_ok`, None when the endpoint itself is not there (HTTP 404 other than
        "database not found", 405, 501)."""
        content = _encode(body)
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
        if absent_ok and response.status_code in _ABSENT_STATUSES and 7404 not in _codes(payload):
            return None
        refused = classify(response.status_code, payload, response.headers)
        if response.status_code == 429 and isinstance(refused, TransientError) and refused.retry_after:
            self._pacer.pause(refused.retry_after)  # every process of this user waits it out, not only this one
        raise _scrub(refused, self._token)

    def plain_client(self) -> httpx.Client:
        """A client for pre-signed URLs: same transport, no Authorization header, no redirects. The
        token never goes to a URL that carries its own signature."""
        return httpx.Client(transport=self._transport, timeout=self._timeout, follow_redirects=False)

    def close(self) -> None:
        self._client.close()

    def __repr__(self) -> str:
        return f"<D1Api {self.base_url}{self._path}>"


def _encode(body: Any) -> bytes | None:
    if body is None:
        return None
    try:
        content = json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
    except UnicodeEncodeError:
        raise TargetError("a value is not valid Unicode (a lone surrogate); it cannot be sent to D1") from None
    if len(content) > MAX_REQUEST_BYTES:
        raise TooLargeError(f"one D1 request would carry {len(content) / 1e6:.0f} MB; send the work in smaller parts")
    return content


# --- the token ------------------------------------------------------------------------------------


class _Secret:
    """A token that does not show itself in repr(), str() or tracebacks' locals."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "<secret>"

    __str__ = __repr__


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
        return max(0.0, (parsedate_to_datetime(value) - utc_now()).total_seconds())
    except (TypeError, ValueError):
        return None


def _codes(payload: Any) -> set[Any]:
    return {e.get("code") for e in _errors(payload)}


def _errors(payload: Any) -> list[dict[str, Any]]:
    errors = payload.get("errors") if isinstance(payload, dict) else None
    found = [e for e in errors or () if isinstance(e, dict)]
    for error in list(found):
        found += [e for e in error.get("error_chain") or () if isinstance(e, dict)]
    return found


def classify(status: int, payload: Any, headers: httpx.Headers | None = None, where: str = "D1") -> TargetError:
    """The error for an answer that was not a success, by Cloudflare's table: the message says what
    happened (D1 answers most errors with code 7500), the status and codes say the rest."""
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
    if status == 413 or any(m in lowered for m in _TOO_LARGE_MESSAGES):
        return TooLargeError(f"{where}: the request was too much to finish at once (HTTP {status}: {text})")
    if status == 429:
        return TransientError(f"{where}: rate limited by Cloudflare (HTTP 429: {text})", retry_after=retry_after)
    if status >= 500 or any(m in lowered for m in _TRANSIENT_MESSAGES):
        return TransientError(f"{where}: D1 is unavailable for now (HTTP {status}: {text})", retry_after=retry_after)
    if status == 404 or 7404 in codes:
        return TargetError(f"{where}: not found (HTTP {status}: {text}); check the account and database IDs")
    if "sqlite_constraint" in lowered:
        if "license_number" in lowered:
            return ConflictError(f"license number already in the table ({text})")
        return TargetError(f"{where}: {text}")
    if status == 400 and any(sign in lowered for sign in _SQL_SIGNS):
        return SqlError(f"{where} rejected the SQL: {text}")
    return TargetError(f"{where}: HTTP {status}: {text}")


def _scrub(error: TargetError, token: _Secret) -> TargetError:
    """Make sure no message carries the token, whatever the server echoed."""
    secret = token.reveal()
    if secret and secret in str(error):
        error.args = (str(error).replace(secret, "<token>"),)
    return error
