"""The local D1 engine for the tests and benchmarks, and the fixtures that hand it to D1 tests.

`LocalD1Engine` starts `tests/d1_engine/launch.mjs` (Cloudflare's workerd runtime and D1 engine, run
by Miniflare, behind a Worker that answers D1's REST paths and envelopes) on 127.0.0.1 and a free
port. The session fixture `d1_engine` starts it once; `d1_env` points CLOUDFLARE_API_BASE_URL and a
per-session test token at it for one test only; `d1_url` gives that test an empty database and the
engine's documented behaviour (`LocalD1Engine.service` changes it: rate limit, ceiling, export).
The request pacer's state files go to a folder of the session's own (ESTATEFLOW_CACHE_DIR).

Node and `npm ci` in tests/d1_engine are prerequisites (`make test` runs it). Without them the D1
tests fail with a message saying so: they never skip.
"""

from __future__ import annotations

import json
import os
import queue
import secrets
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from estateflow_nb._sql import quote_name
from estateflow_nb.targets import Sql, connect
from estateflow_nb.targets.d1 import (
    ACCOUNT_ENV,
    BASE_URL_ENV,
    CACHE_ENV,
    DATABASE_ENV,
    RATE_ENV,
    TOKEN_ENV,
    D1Target,
)

ENGINE_DIR = Path(__file__).resolve().parent / "d1_engine"
ACCOUNT_ID = "0e57a7ef10000000000000000000d1d1"
DATABASES = ("00000000-0000-4000-8000-00000000d101", "00000000-0000-4000-8000-00000000d102")
START_SECONDS = 60.0


class EngineUnavailable(RuntimeError):
    """Node or the engine's npm packages are missing, or the engine did not start."""


class LocalD1Engine:
    """The local D1 engine in a child process; `stop()` (or the context manager) ends it."""

    def __init__(
        self,
        token: str | None = None,
        account_id: str = ACCOUNT_ID,
        databases: tuple[str, ...] = DATABASES,
        rate_limit: str = "1200/300",
        cache_dir: Path | None = None,
    ) -> None:
        """`rate_limit` is the API's budget, "REQUESTS/SECONDS" or "off" (Cloudflare's is 1200/300);
        `cache_dir` where clients keep their pacer's state (default: the user's cache folder)."""
        self.token = token or secrets.token_urlsafe(30)
        self.account_id = account_id
        self.databases = databases
        self.rate_limit = rate_limit
        self.cache_dir = cache_dir
        self.base_url = ""
        self._process: subprocess.Popen[str] | None = None

    @staticmethod
    def check_prerequisites() -> str:
        """The path of `node`, or EngineUnavailable saying what to install."""
        node = shutil.which("node")
        if node is None:
            raise EngineUnavailable(
                "the D1 tests need Node.js 20 or newer to run the local D1 engine, and `node` is not on PATH:"
                " install Node.js, then run `make test` (it runs `npm ci` in tests/d1_engine)"
            )
        if not (ENGINE_DIR / "node_modules" / "miniflare" / "package.json").exists():
            raise EngineUnavailable(
                f"the local D1 engine's npm packages are not installed in {ENGINE_DIR}: run `make test`, or"
                f" `npm ci --prefix {ENGINE_DIR}`"
            )
        return node

    def start(self) -> LocalD1Engine:
        node = self.check_prerequisites()
        command = [node, str(ENGINE_DIR / "launch.mjs"), "--account", self.account_id, "--rate-limit", self.rate_limit]
        for database in self.databases:
            command += ["--database", database]
        env = {**os.environ, "D1_ENGINE_TOKEN": self.token}
        self._process = subprocess.Popen(
            command,
            cwd=ENGINE_DIR,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=lambda: lines.put(self._process.stdout.readline()), daemon=True).start()  # type: ignore[union-attr]
        try:
            first = lines.get(timeout=START_SECONDS)
        except queue.Empty:
            self.stop()
            raise EngineUnavailable(f"the local D1 engine printed nothing in {START_SECONDS:.0f} s") from None
        if not first:
            error = self._process.stderr.read() if self._process.stderr else ""  # type: ignore[union-attr]
            self.stop()
            raise EngineUnavailable(f"the local D1 engine did not start: {error.strip()[-2000:]}")
        self.base_url = json.loads(first)["base_url"]
        return self

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        for stream in (process.stdin, process.stdout, process.stderr):
            if stream is not None:
                stream.close()

    def __enter__(self) -> LocalD1Engine:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def url(self, database: str | None = None) -> str:
        return f"d1://{self.account_id}/{database or self.databases[0]}"

    def env(self, database: str | None = None) -> dict[str, str]:
        """The environment a D1 client needs to talk to this engine. The client keeps its own pace off
        (the engine's limit is what the rate-limit tests look at); its pacer's state goes to `cache_dir`."""
        env = {
            BASE_URL_ENV: self.base_url,
            TOKEN_ENV: self.token,
            ACCOUNT_ENV: self.account_id,
            DATABASE_ENV: database or self.databases[0],
            RATE_ENV: "1000000",
        }
        if self.cache_dir is not None:
            env[CACHE_ENV] = str(self.cache_dir)
        return env

    def service(self, **settings: Any) -> dict[str, Any]:
        """Change the engine's service knobs (see tests/d1_engine/service.mjs): `reset=True` first puts
        back the launch settings and empties the counters. Returns the settings now in force."""
        return self._control("POST", settings)["settings"]

    def observed(self) -> dict[str, Any]:
        """What the engine saw: requests counted, 429s given, signed-URL downloads."""
        return self._control("GET", None)["observed"]

    def _control(self, method: str, body: Any) -> dict[str, Any]:
        origin = self.base_url.removesuffix("/client/v4")
        headers = {"Authorization": f"Bearer {self.token}"}
        answer = httpx.request(method, f"{origin}/__engine/service", json=body, headers=headers, timeout=30)
        answer.raise_for_status()
        result: dict[str, Any] = answer.json()["result"]
        return result

    def target(self, database: str | None = None, **kwargs: Any) -> D1Target:
        kwargs.setdefault("ensure_schema", False)
        return D1Target(
            self.account_id, database or self.databases[0], token=self.token, base_url=self.base_url, **kwargs
        )

    def wipe(self, database: str | None = None) -> None:
        """Drop every table of `database` (D1's own internal ones excepted)."""
        with self.target(database) as t:
            tables = t.query(
                "SELECT name FROM sqlite_master WHERE type = 'table'"
                " AND name NOT LIKE 'sqlite/_%' ESCAPE '/' AND name NOT LIKE '/_cf/_%' ESCAPE '/'"
            )
            if tables:
                t.execute([Sql(f"DROP TABLE {quote_name(row['name'])}") for row in tables])


@pytest.fixture(scope="session")
def d1_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalD1Engine]:
    cache = tmp_path_factory.mktemp("cache")
    try:
        engine = LocalD1Engine(cache_dir=cache).start()
    except EngineUnavailable as error:
        pytest.fail(str(error), pytrace=False)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(CACHE_ENV, str(cache))  # targets the tests make themselves pace through it too
        yield engine
    engine.stop()


@pytest.fixture
def d1_env(d1_engine: LocalD1Engine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    """The D1 variables, set for this test only (and returned for child processes), with a pacer state
    of the test's own: a 429 one test provokes pauses nobody else."""
    env = {**d1_engine.env(), CACHE_ENV: str(tmp_path / "cache")}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture
def d1_url(d1_engine: LocalD1Engine, d1_env: dict[str, str]) -> Iterator[str]:
    """The URL of an empty database in the local engine, with the engine's launch settings and a fresh
    rate-limit window (every test's requests count against Cloudflare's 1,200 per 5 minutes alone)."""
    d1_engine.service(reset=True)
    d1_engine.wipe()
    yield d1_engine.url()
    d1_engine.service(reset=True)


@pytest.fixture
def d1_target(d1_url: str) -> Iterator[D1Target]:
    target = connect(d1_url, create=True)
    assert isinstance(target, D1Target)
    yield target
    target.close()


class FaultyTransport(httpx.BaseTransport):
    """The real transport to the local engine, with faults injected in front of it.

    `faults` maps the number of a matching request (1 for the first request whose body contains
    `match`) to a fault and a stage: "before" answers without forwarding (nothing reached D1),
    "after" forwards the request, lets D1 apply it, and then loses the answer to the fault. A fault
    is an httpx exception to raise or an httpx.Response to answer with.
    """

    def __init__(self, faults: dict[int, tuple[str, Any]], match: str = "INSERT INTO professionals") -> None:
        self.inner = httpx.HTTPTransport()
        self.faults = dict(faults)
        self.match = match.encode()
        self.seen = 0
        self.forwarded: list[bytes] = []  # bodies of matching requests that reached the engine

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        fault = None
        if self.match in body:
            self.seen += 1
            fault = self.faults.get(self.seen)
        if fault is not None and fault[0] == "before":
            return _deliver(fault[1], request)
        response = self.inner.handle_request(request)
        response.read()
        if self.match in body:
            self.forwarded.append(body)
        if fault is not None:
            response.close()
            return _deliver(fault[1], request)
        return response

    def close(self) -> None:
        self.inner.close()


def _deliver(fault: Any, request: httpx.Request) -> httpx.Response:
    if isinstance(fault, httpx.Response):
        fault.request = request
        return fault
    raise fault(f"injected {fault.__name__}", request=request)


def envelope_error(status: int, code: int, message: str, headers: dict[str, str] | None = None) -> httpx.Response:
    """An answer in Cloudflare's error envelope."""
    body = {"success": False, "errors": [{"code": code, "message": message}], "messages": [], "result": None}
    return httpx.Response(status, json=body, headers=headers)


class RecordingTransport(httpx.BaseTransport):
    """The real transport to the local engine, keeping every request as it left: method, URL, headers
    and body (tests look at what was sent, and to where)."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.sent: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.sent.append(request)
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


def replay_like_wrangler(target: D1Target, dump: Path, per_request: int = 50) -> int:
    """Run a SQL file statement by statement in a D1 database, as `wrangler d1 execute --file` does:
    each statement must be one D1 accepts (no BEGIN, COMMIT or PRAGMA it refuses, none over 100 KB).
    Returns the number of statements run."""
    import sqlite3

    statements, pending = [], ""
    with dump.open(encoding="utf-8", newline="") as lines:
        for line in lines:
            pending += line
            if line.rstrip().endswith(";") and sqlite3.complete_statement(pending):
                if pending.strip() and not all(
                    part.strip().startswith("--") or not part.strip() for part in pending.splitlines()
                ):
                    statements.append(pending.strip())
                pending = ""
    for start in range(0, len(statements), per_request):
        target.api.request("POST", "/query", {"batch": [{"sql": s} for s in statements[start : start + per_request]]})
    return len(statements)
