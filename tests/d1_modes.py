"""The local D1 engine's misbehaviour on demand (tests/d1_engine/modes.mjs), for the ledger's tests.

`engine_modes` gives a test a `Modes` to switch the engine into its non-atomic mode (a batch's items
run one by one, each committed) and to arm faults (the next request whose body contains `match`
applies its first `apply` items, then its answer is lost; with `"reads": True`, the next single
statement sent to /raw, a read, runs and its answer is lost); the engine goes back to its faithful
self after the test.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from .d1_fixtures import LocalD1Engine


class Modes:
    def __init__(self, engine: LocalD1Engine) -> None:
        self.engine = engine

    def _call(self, method: str, body: Any = None) -> dict[str, Any]:
        response = httpx.request(
            method,
            f"{self.engine.base_url}/__estateflow/modes",
            json=body,
            headers={"Authorization": f"Bearer {self.engine.token}"},
            timeout=30,
        )
        response.raise_for_status()
        return dict(response.json()["result"])

    def set(self, *, atomic: bool = True, faults: list[dict[str, Any]] | None = None) -> None:
        self._call("POST", {"atomic": atomic, "faults": faults or []})

    def now(self) -> dict[str, Any]:
        """{"atomic": ..., "faults": [not yet used], "lost": answers lost so far}."""
        return self._call("GET")


@pytest.fixture
def engine_modes(d1_engine: LocalD1Engine) -> Iterator[Modes]:
    """The engine's modes for one test, with the API's rate limit off meanwhile: these tests send a
    request again hundreds of times, which the limit would cut short (pacing is tested on its own)."""
    d1_engine.service(reset=True, rate_limit={"requests": 0})
    modes = Modes(d1_engine)
    yield modes
    modes.set()
    d1_engine.service(reset=True)
