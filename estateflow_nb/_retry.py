"""The one retry loop: exponential backoff with jitter, honouring a server's `Retry-After`.

Only `TransientError` is retried; anything else goes straight up. The wait goes through `sleep`,
given per call or else this module's `SLEEP`, which tests replace to record waits without waiting.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

from .errors import TransientError

T = TypeVar("T")

ATTEMPTS = 3
BASE_SECONDS = 0.5
SLEEP: Callable[[float], None] = time.sleep


def backoff(attempt: int, base_seconds: float = BASE_SECONDS, retry_after: float | None = None) -> float:
    """Seconds to wait after failed attempt number `attempt` (1, 2, ...): what the server asked for,
    else base x 2^(attempt-1), jittered between half and one and a half times that."""
    if retry_after is not None:
        return retry_after
    return base_seconds * 2 ** (attempt - 1) * (0.5 + random.random())


def with_retries(
    call: Callable[[], T],
    *,
    attempts: int = ATTEMPTS,
    base_seconds: float = BASE_SECONDS,
    sleep: Callable[[float], None] | None = None,
    log: Callable[[str], None] | None = None,
) -> T:
    """`call()`, tried up to `attempts` times while it raises TransientError; the last error is raised."""
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except TransientError as error:
            if attempt >= attempts:
                raise
            wait = backoff(attempt, base_seconds, error.retry_after)
            if log is not None:
                log(f"transient error ({error}); retry {attempt} of {attempts - 1} in {wait:.1f} s")
            (sleep or SLEEP)(wait)
    raise ValueError(f"attempts must be at least 1, not {attempts}")
