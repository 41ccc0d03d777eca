"""D1's REST API over httpx: one request at a time, its envelope opened, its errors classified.

Requests go to `CLOUDFLARE_API_BASE_URL` (default https://api.cloudflare.com/client/v4) followed by
exactly Cloudflare's path, so the same client talks to Cloudflare and to the local engine the tests
run. The token comes from the caller (the target reads it from `CLOUDFLARE_API_TOKEN`); it is kept
in a `_Secret` and scrubbed from every message, whatever the server echoes.

Errors arrive classified (see `classify`): TransientError (with `retry_after`) for HTTP 429, 5xx,
timeouts, broken connections and D1's transient messages; QuotaExceededError for D1's free-tier daily
limits; AuthError for 401/403 and a malformed token; SqlError for a statement D1 rejects;
ConflictError for a license number already taken. Nothing is retried here: only the caller knows
whether sending a request again is safe. A client-side pacer keeps requests under the API's limit of
1,200 per 5 minutes.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import time
from collections import deque
from collections.abc import Callable
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
    TransientError,
    until_reset,
)

TOKEN_ENV = "CLOUDFLARE_API_TOKEN"
ACCOUNT_ENV = "CLOUDFLARE_ACCOUNT_ID"
DATABASE_ENV = "D1_DATABASE_ID"
BASE_URL_ENV = "CLOUDFLARE_API_BASE_URL"
RATE_ENV = "ESTATEFLOW_D1_REQUESTS_PER_5_MIN"
DEFAULT_BASE_URL = "https://api.cloudflare.com/client/v4"

# Cloudflare's API allows 1,200 requests per 5 minutes per user; the pacer keeps a margin below it.
RATE_LIMIT_REQUESTS = 1_200
RATE_LIMIT_WINDOW = 300.0
RATE_LIMIT_MARGIN = 0.95
# One request carries one transaction; past this the batch size is the thing to change.
MAX_REQUEST_BYTES = 50_000_000

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
        pacer: RatePacer | None = None,
        timeout: float = 120.0,
    ) -> None:
        token = (token or "").strip()
        if token and not re.fullmatch(r"[!-~]+", token):
            raise AuthError(f"{TOKEN_ENV} holds spaces or characters an API token cannot have: copy the token again")
        if not token:
            raise AuthError(f"{TOKEN_ENV} is not set: create a Cloudflare API token with D1 Edit permission, export it")
        self.base_url = (base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL).rstrip("/")
        self._token = _Secret(token)
        self._pacer = pacer or _shared_pacer(self.base_url, self._token)
        self.requests = 0  # HTTP requests sent, for benchmarks and tests
        self._path = f"/accounts/{quote(account_id, safe='')}/d1/database/{quote(database_id, safe='')}"
        self._client = httpx.Client(
            base_url=self.base_url,
            transport=transport,
            timeout=httpx.Timeout(timeout, connect=15.0),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )

    def request(self, method: str, path: str, body: Any = None, params: dict[str, str] | None = None) -> Any:
        """One request to the database's `path`; the `result` of Cloudflare's envelope, or a classified TargetError."""
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
        raise _scrub(classify(response.status_code, payload, response.headers), self._token)

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
        raise SqlError(f"one D1 request would carry {len(content) / 1e6:.0f} MB; use a smaller --batch-size")
    return content


# --- the token ------------------------------------------------------------------------------------


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
        return max(0.0, (parsedate_to_datetime(value) - utc_now()).total_seconds())
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
