"""Keeping under Cloudflare's API rate limit: 1,200 requests per 5 minutes per user, not per process.

The limit is the user's (the token's), "cumulatively regardless of whether the request is made via
the dashboard, API key, or API token", and past it "all API calls for the next five minutes will be
blocked" with HTTP 429 and `retry-after`. So every estateflow process of one user (an import, a
notebook, a report) shares one budget: `SharedPacer` keeps it in a small state file in the user's cache
folder, named by a hash of the token (never the token), read and written under an exclusive `flock`.
A 429 seen by any process pauses all of them until its `Retry-After` has passed.

`RatePacer` is the same rule in memory, for one process: what is used where the cache folder cannot
be written, and what the tests drive with a fake clock.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from ... import _retry

try:
    import fcntl
except ImportError:  # pragma: no cover - not on POSIX: each process paces itself
    fcntl = None  # type: ignore[assignment]

CACHE_ENV = "ESTATEFLOW_CACHE_DIR"
RATE_LIMIT_REQUESTS = 1_200
RATE_LIMIT_WINDOW = 300.0
RATE_LIMIT_MARGIN = 0.95


class Pacer(Protocol):
    def acquire(self) -> None:
        """Wait, if need be, until one more request keeps within the limit; count it."""

    def pause(self, seconds: float) -> None:
        """Send nothing for `seconds` (a 429's Retry-After)."""


class RatePacer:
    """At most `limit` requests in any `window` seconds within this process.

    A sliding window, not a fixed pace: an import may burst as fast as D1 answers until the window is
    full. `clock` and `sleep` are injectable so that the rule is tested without waiting (by default
    the wait is `_retry.SLEEP`'s, the project's one injectable wait).
    """

    def __init__(
        self,
        limit: int,
        window: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        if limit < 1:
            raise ValueError("a pacer needs a limit of at least 1")
        self.limit, self.window = limit, window
        self.clock, self.sleep = clock, sleep or _sleep
        self.sent: deque[float] = deque()
        self.paused_until = 0.0
        self.waited = 0.0
        self._lock = threading.Lock()

    def acquire(self) -> None:
        with self._lock:
            floor = 0.0
            while True:
                now = max(self.clock(), floor)
                wait = _wait_for(self.sent, self.paused_until, self.limit, self.window, now)
                if wait <= 0:
                    return
                self.waited += wait
                self.sleep(wait)
                floor = now + wait  # however the wait went (a test's sleep returns at once), it has passed

    def pause(self, seconds: float) -> None:
        with self._lock:
            self.paused_until = max(self.paused_until, self.clock() + seconds)


def _sleep(seconds: float) -> None:
    _retry.SLEEP(seconds)  # looked up at each wait, so that tests can replace it


def _wait_for(sent: deque[float], paused_until: float, limit: int, window: float, now: float) -> float:
    """Seconds to wait before the next request; 0 after counting it in `sent`."""
    while sent and sent[0] <= now - window:
        sent.popleft()
    if paused_until > now:
        return paused_until - now
    if len(sent) < limit:
        sent.append(now)
        return 0.0
    return sent[0] + window - now


class SharedPacer:
    """`RatePacer`'s rule over a state file that every process of the same user shares.

    The file holds how many requests were sent in each second still inside the window (wall-clock
    seconds rounded up, since processes share no monotonic clock; rounding up keeps a request counted
    a little longer, never shorter) and the time until which a 429 paused everyone: a few kilobytes
    at most. Each acquire locks it, reads, decides, writes and unlocks; waiting happens outside it.
    """

    def __init__(
        self,
        path: Path,
        limit: int,
        window: float,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        if limit < 1:
            raise ValueError("a pacer needs a limit of at least 1")
        self.path, self.limit, self.window = path, limit, window
        self.clock, self.sleep = clock, sleep or _sleep
        self.waited = 0.0
        self._lock = threading.Lock()  # flock is per open file: threads of one process queue here first

    def acquire(self) -> None:
        floor = 0.0
        while True:
            now = max(self.clock(), floor)
            with self._state() as state:
                wait = _bucket_wait(state, self.limit, self.window, now)
            if wait <= 0:
                return
            self.waited += wait
            self.sleep(wait)
            floor = now + wait  # as in RatePacer

    def pause(self, seconds: float) -> None:
        with self._state() as state:
            state["paused_until"] = max(state["paused_until"], self.clock() + seconds)

    def sent_in_window(self) -> int:
        """Requests counted in the current window, by every process (for tests and status)."""
        with self._state() as state:
            now = self.clock()
            return sum(n for second, n in state["sent"] if second > now - self.window)

    @contextmanager
    def _state(self) -> Iterator[dict[str, Any]]:
        with self._lock, open(self.path, "a+", encoding="utf-8") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                handle.seek(0)
                state = _parse(handle.read())
                yield state
                handle.seek(0)
                handle.truncate()
                handle.write(json.dumps(state, separators=(",", ":")))
                handle.flush()
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def _bucket_wait(state: dict[str, Any], limit: int, window: float, now: float) -> float:
    """As `_wait_for`, over per-second counts: seconds to wait, or 0 after counting one more."""
    sent = [[second, n] for second, n in state["sent"] if second > now - window]
    state["sent"] = sent
    if state["paused_until"] > now:
        return float(state["paused_until"] - now)
    if sum(n for _, n in sent) < limit:
        second = math.ceil(now)
        if sent and sent[-1][0] == second:
            sent[-1][1] += 1
        else:
            sent.append([second, 1])
        return 0.0
    return float(sent[0][0] + window - now)


def _parse(text: str) -> dict[str, Any]:
    """The state in the file; a fresh one when it is empty or unreadable (a crash mid-write loses only
    the window's count, never the ability to send)."""
    try:
        state = json.loads(text) if text else {}
        sent = sorted([int(second), int(n)] for second, n in state.get("sent", []))
        return {"sent": sent, "paused_until": float(state.get("paused_until", 0.0))}
    except (ValueError, TypeError, AttributeError):
        return {"sent": [], "paused_until": 0.0}


def cache_folder(environ: dict[str, str] | None = None) -> Path:
    """Where the pacer's state lives: $ESTATEFLOW_CACHE_DIR, else $XDG_CACHE_HOME/estateflow, else
    ~/.cache/estateflow."""
    env = os.environ if environ is None else environ
    if env.get(CACHE_ENV):
        return Path(env[CACHE_ENV])
    base = env.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "estateflow"


def state_path(token: str, folder: Path) -> Path:
    """The state file of the user whose token this is: named by a hash, so the token is not on disk."""
    digest = hashlib.sha256(b"estateflow-d1-pacer\0" + token.encode()).hexdigest()[:32]
    return folder / f"d1-requests-{digest}.json"


_PACERS: dict[tuple[str, int], Pacer] = {}
_PACERS_LOCK = threading.Lock()


def pacer_for(token: str, limit_per_window: int) -> Pacer:
    """The pacer every request with `token` goes through, shared with the user's other processes;
    one in memory where the cache folder cannot be written (then processes pace only themselves)."""
    limit = max(1, int(limit_per_window * RATE_LIMIT_MARGIN))
    folder = cache_folder()
    key = (str(state_path(token, folder)), limit)
    with _PACERS_LOCK:
        pacer = _PACERS.get(key)
        if pacer is None:
            pacer = _PACERS[key] = _make(token, folder, limit)
        return pacer


def _make(token: str, folder: Path, limit: int) -> Pacer:
    if fcntl is None:
        return RatePacer(limit, RATE_LIMIT_WINDOW)
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = state_path(token, folder)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        os.close(fd)
    except OSError:
        return RatePacer(limit, RATE_LIMIT_WINDOW)
    return SharedPacer(path, limit, RATE_LIMIT_WINDOW)
