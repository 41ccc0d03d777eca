"""A hook for crash tests: kill this process at a chosen point of a write, and nowhere else.

`ESTATEFLOW_TEST_KILL_AT=<point>:before` kills inside the transaction, before its commit;
`<point>:after` right after the commit. Points are a batch number of an import ("3"), the name of
an operation ("rollback"), or a climb's moment between a rung's import and its judgement ("judge-4",
`:after` only). Unset, every hook is a no-op.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable

KILL_HOOK_ENV = "ESTATEFLOW_TEST_KILL_AT"


def _kill() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _nothing() -> None:
    pass


def kill_hooks(point: str | int) -> tuple[Callable[[], None] | None, Callable[[], None]]:
    """(before_commit callback or None, call after the commit) for `point`."""
    spec = os.environ.get(KILL_HOOK_ENV, "")
    where, _, when = spec.rpartition(":")
    if where != str(point):
        return None, _nothing
    return (_kill, _nothing) if when == "before" else (None, _kill if when == "after" else _nothing)
