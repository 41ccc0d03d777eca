"""Faults the local D1 engine cannot produce on demand, injected in front of it: rate limits, 5xx,
broken connections, timeouts after D1 applied the request, the daily quota, refused credentials.
Each ends in exactly the rows a clean import gives."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from estateflow_nb import (
    ConfirmationRequired,
    ImportFailedError,
    _retry,
    connect,
    generate_records,
    import_file,
    verify,
)
from estateflow_nb._testing import KILL_HOOK_ENV
from estateflow_nb.quota import plan_import
from estateflow_nb.targets import Sql
from estateflow_nb.targets.d1 import D1Target

from .conftest import CLI, ROOT, count, invoke, write_csv
from .d1_fixtures import FaultyTransport, LocalD1Engine, envelope_error
from .test_importer import table_rows

QUOTA_MESSAGE = (
    "Your account has exceeded D1's free tier daily row write limit. Upgrade to a paid plan or wait until"
    " tomorrow (midnight UTC) to continue."
)

TRANSIENT: dict[str, Callable[[], Any]] = {
    "429": lambda: envelope_error(
        429, 971, "Please wait and consider throttling your request speed", {"Retry-After": "0"}
    ),
    "502": lambda: httpx.Response(502, text="<html><body>502 Bad Gateway</body></html>"),
    "overloaded": lambda: envelope_error(500, 7500, "D1 DB is overloaded. Requests queued for too long."),
    "reset": lambda: httpx.ReadError,
    "timeout": lambda: httpx.ReadTimeout,
}
STOPPING: dict[str, Callable[[], Any]] = {
    "quota": lambda: envelope_error(429, 7500, QUOTA_MESSAGE),
    "auth": lambda: envelope_error(401, 10000, "Authentication error"),
}


@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retries without their waits."""
    monkeypatch.setattr(_retry, "SLEEP", lambda seconds: None)


def awkward_source(tmp_path: Path) -> Path:
    """40 records: a reject in batch 2, a duplicate license in batch 3."""
    rows = list(generate_records(40, seed=21))
    rows[12]["email"] = "not-an-email"
    rows[25]["license_number"] = rows[5]["license_number"]
    return write_csv(tmp_path / "pros.csv", rows)


def clean_rows(tmp_path: Path, source: Path) -> list[tuple[Any, ...]]:
    with connect(f"sqlite:///{tmp_path / 'clean.db'}", create=True) as clean:
        import_file(clean, source, batch_size=10)
        return table_rows(clean)


def d1_with(url: str, transport: httpx.BaseTransport, waits: list[float] | None = None) -> D1Target:
    """A target for `url` through `transport`; its read retries wait by adding to `waits`, not sleeping."""
    return D1Target.from_url(
        url, transport=transport, sleep=(waits if waits is not None else []).append, ensure_schema=True, create=True
    )


@pytest.mark.parametrize("stage", ["before", "after"])
@pytest.mark.parametrize("fault", sorted(TRANSIENT))
def test_transient_faults_are_retried_to_the_exact_rows(
    fault: str, stage: str, d1_url: str, tmp_path: Path, no_backoff: None
) -> None:
    source = awkward_source(tmp_path)
    transport = FaultyTransport({2: (stage, TRANSIENT[fault]())})
    logged: list[str] = []
    with d1_with(d1_url, transport) as target:
        result = import_file(target, source, batch_size=10, log=logged.append)
        assert (result.status, result.inserted, result.skipped, result.rejected) == ("completed", 38, 1, 1)
        (ledger,) = target.query("SELECT * FROM ef_imports")
        assert (ledger["inserted"], ledger["batches"], ledger["checkpoint"], ledger["skipped"]) == (38, 4, 40, 1)
        assert count(target) == 38
        assert table_rows(target) == clean_rows(tmp_path, source)
    assert sum("transient error" in line and "retry 1 of 2" in line for line in logged) == 1
    # "after": D1 applied the batch, the answer was lost, the replay added nothing.
    assert len(transport.forwarded) == 4 + (stage == "after")


@pytest.mark.parametrize("stage", ["before", "after"])
@pytest.mark.parametrize("fault", sorted(STOPPING))
def test_quota_and_auth_stop_cleanly_and_the_rerun_resumes_exactly(
    fault: str, stage: str, d1_url: str, tmp_path: Path, no_backoff: None
) -> None:
    source = awkward_source(tmp_path)
    logged: list[str] = []
    with d1_with(d1_url, FaultyTransport({3: (stage, STOPPING[fault]())})) as target:
        with pytest.raises(ImportFailedError) as caught:
            import_file(target, source, batch_size=10, log=logged.append)
        stopped = caught.value.result
        # The third batch is in (applied before its answer was lost) or out; never half.
        committed = 30 if stage == "after" else 20
        assert stopped.records_read == committed and stopped.status == "failed"
        assert count(target) == stopped.inserted == committed - 1 - (committed > 25)
    assert not any("retry" in line for line in logged), "quota and auth errors are not retried"
    message = str(caught.value)
    assert len(message.splitlines()) == 1
    if fault == "quota":
        assert "free-tier daily row write limit is used up" in message and "resets at 00:00 UTC" in message
        assert "rows on D1" in message and f"{40 - committed} records remain" in message
        assert "run the same command again to resume" in message
    else:
        assert "Cloudflare refused the API token (HTTP 401" in message and "CLOUDFLARE_API_TOKEN" in message
    with connect(d1_url, create=True) as target:
        resumed = import_file(target, source, batch_size=10)
        assert resumed.import_id == stopped.import_id and resumed.resumed_from == committed
        assert (resumed.inserted, resumed.skipped, resumed.rejected, resumed.batches) == (38, 1, 1, 4)
        assert table_rows(target) == clean_rows(tmp_path, source)


def test_retry_after_is_honoured(d1_url: str, tmp_path: Path, no_backoff: None) -> None:
    limited = envelope_error(429, 971, "Please wait and consider throttling your request speed", {"Retry-After": "1"})
    logged: list[str] = []
    with d1_with(d1_url, FaultyTransport({1: ("before", limited)})) as target:
        result = import_file(target, awkward_source(tmp_path), batch_size=20, log=logged.append)
    assert result.inserted == 38
    assert next(line for line in logged if "retry" in line).endswith("retry 1 of 2 in 1.0 s")


def test_reads_are_retried_by_the_target(d1_url: str, tmp_path: Path, no_backoff: None) -> None:
    with connect(d1_url, create=True) as target:
        import_file(target, awkward_source(tmp_path), batch_size=10)
    faults = {1: ("before", TRANSIENT["502"]()), 2: ("after", httpx.ReadTimeout), 5: ("before", TRANSIENT["429"]())}
    transport = FaultyTransport(faults, match="FROM professionals")
    waits: list[float] = []
    with d1_with(d1_url, transport, waits) as target:
        report = verify(target, runs=1, max_reject_rate=1.0)  # its awkward records are rejects on purpose
    assert report.passed and report.checks[0].observed == 38
    # Backoff with jitter after the 502 and the timeout; the 429's Retry-After: 0 as it asked.
    assert len(waits) == 3 and 0.25 <= waits[0] <= 0.75 and 0.5 <= waits[1] <= 1.5 and waits[2] == 0.0


class AccountQuota(httpx.BaseTransport):
    """D1's free-tier daily row-write quota, kept in front of the local engine from the rows the engine
    reports written (`meta.rows_written`): past `limit`, every write request gets D1's quota error."""

    def __init__(self, limit: int) -> None:
        self.inner = httpx.HTTPTransport()
        self.limit = limit
        self.written = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        writes = request.url.path.endswith("/query")
        if writes and self.written >= self.limit:
            refused = envelope_error(429, 7500, QUOTA_MESSAGE)
            refused.request = request
            return refused
        response = self.inner.handle_request(request)
        response.read()
        if writes and response.status_code == 200:
            self.written += sum(r["meta"].get("rows_written", 0) for r in response.json()["result"])
        return response


def test_the_daily_quota_stops_the_import_and_the_next_day_resumes_it(d1_url: str, tmp_path: Path) -> None:
    source = write_csv(tmp_path / "pros.csv", generate_records(60, seed=5))
    quota = AccountQuota(limit=200)
    with d1_with(d1_url, quota) as target, pytest.raises(ImportFailedError) as caught:
        import_file(target, source, batch_size=10)
    message = str(caught.value)
    stopped = caught.value.result
    # D1 refuses writes now, the 'failed' mark included, but the ledger can still be read.
    assert stopped.records_read in (30, 40) and stopped.records_read < 60
    assert f"stopped at record {stopped.records_read} of 60" in message
    assert f"{60 - stopped.records_read} records remain" in message and "00:00 UTC" in message
    next_day = AccountQuota(limit=100_000)
    with d1_with(d1_url, next_day) as target:
        resumed = import_file(target, source, batch_size=10)
        assert resumed.resumed_from == stopped.records_read and resumed.inserted == 60 and count(target) == 60


def test_free_tier_plans_splits_across_days_and_resumes(d1_url: str, tmp_path: Path) -> None:
    source = write_csv(tmp_path / "pros.csv", generate_records(60, seed=6))
    meter = AccountQuota(limit=10**9)  # only counts what the engine says was written
    with d1_with(d1_url, meter) as target:
        # Earlier today, by the ledger: all but 250 rows of the free tier's 100,000 are used.
        target.execute(
            [
                Sql(
                    "INSERT INTO ef_imports (id, source_path, source_sha256, target, batch_size, status, rows_written,"
                    " started_at, finished_at) VALUES ('imp-earlier', 'x.csv', 'abc', 'd1', 10, 'completed', ?,"
                    " strftime('%Y-%m-%dT%H:%M:%SZ', 'now'), strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))",
                    (99_750,),
                )
            ]
        )
        with pytest.raises(ConfirmationRequired, match="Split it across 2 days") as refused:
            import_file(target, source, batch_size=10, free_tier=True)
        assert refused.value.flag == "--split-days" and count(target, "SELECT COUNT(*) FROM ef_imports") == 1
        before = meter.written
        with pytest.raises(ImportFailedError, match="stopped before sending it") as caught:
            import_file(target, source, batch_size=10, free_tier=True, split_days=True)
        stopped = caught.value.result
        assert 0 < stopped.records_read < 60 and count(target) == stopped.records_read
        assert meter.written - before <= 250, "the guard kept within today's budget"
        # The ledger holds what D1 reported for the batches; the ledger's own row and its finish are not in it.
        ledger = target.scalar("SELECT rows_written FROM ef_imports WHERE id = ?", (stopped.import_id,))
        assert meter.written - before - 4 <= ledger < meter.written - before
        # The next day: yesterday's imports no longer count against the budget.
        target.execute([Sql("UPDATE ef_imports SET started_at = '2001-01-01T00:00:00Z', finished_at = NULL")])
        resumed = import_file(target, source, batch_size=10, free_tier=True)
        assert resumed.import_id == stopped.import_id and resumed.inserted == 60 and count(target) == 60


def test_the_plan_bounds_what_d1_reports_written(d1_url: str, tmp_path: Path) -> None:
    source = write_csv(tmp_path / "pros.csv", generate_records(1_200, seed=8))
    meter = AccountQuota(limit=10**9)
    with d1_with(d1_url, meter) as target:
        plan = plan_import(target, 1_200, 500)
        before = meter.written
        import_file(target, source, batch_size=500)
        written = meter.written - before
    assert plan.per_record == 6  # the row, its license number and four indexes
    assert written <= plan.estimated_rows <= written * 1.05


@pytest.mark.parametrize(
    ("batch", "when", "checkpoint"),
    # Batch 10 is the last: its request also completes the import.
    [(3, "before", 20), (3, "after", 30), (10, "before", 90), (10, "after", 95)],
)
def test_resume_after_sigkill_on_d1(
    d1_engine: LocalD1Engine, d1_url: str, tmp_path: Path, batch: int, when: str, checkpoint: int
) -> None:
    rows = list(generate_records(95, seed=11))
    for bad in (4, 24, 27, 61):
        rows[bad]["email"] = "broken"
    rows[50]["license_number"] = rows[10]["license_number"]
    source = write_csv(tmp_path / "pros.csv", rows)
    env = {**os.environ, **d1_engine.env(), "PYTHONPATH": str(ROOT), KILL_HOOK_ENV: f"{batch}:{when}"}
    command = ["import", str(source), "--db", d1_url, "--batch-size", "10", "--max-reject-rate", "100%"]
    killed = subprocess.run([*CLI, *command], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert killed.returncode == -signal.SIGKILL
    with connect(d1_url, create=True) as target:
        (row,) = target.query("SELECT * FROM ef_imports")
        assert row["checkpoint"] == checkpoint
        assert count(target) == row["inserted"] == row["checkpoint"] - row["rejected"] - row["skipped"]
        if checkpoint == 95:  # killed once its last request, which completed it, was in: nothing to resume
            assert (row["status"], row["inserted"], row["skipped"], row["rejected"]) == ("completed", 90, 1, 4)
            assert table_rows(target) == clean_rows(tmp_path, source)
            return
        assert row["status"] == "running"
    resumed = invoke(*command, "--json", cwd=tmp_path, env=d1_engine.env())
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads(resumed.stdout)
    assert (summary["inserted"], summary["skipped"], summary["rejected"]) == (90, 1, 4)
    with connect(d1_url, create=True) as target:
        assert table_rows(target) == clean_rows(tmp_path, source)
    with open(summary["rejects_path"], newline="", encoding="utf-8") as f:
        assert [r["record"] for r in csv.DictReader(f)] == ["5", "25", "28", "62"]


class BreaksAt(httpx.BaseTransport):
    """The local engine until the first request whose body holds `match`; from then on every request
    fails to connect, as when the network goes for good."""

    def __init__(self, match: str = "INSERT INTO professionals") -> None:
        self.inner = httpx.HTTPTransport()
        self.match = match.encode()
        self.broken = False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.broken = self.broken or self.match in request.read()
        if self.broken:
            raise httpx.ConnectError("injected: the network is gone", request=request)
        return self.inner.handle_request(request)


def test_a_resume_that_loses_d1_says_where_the_import_stands(d1_url: str, tmp_path: Path, no_backoff: None) -> None:
    source = awkward_source(tmp_path)
    first_stop = FaultyTransport({3: ("before", STOPPING["auth"]())})
    with d1_with(d1_url, first_stop) as target, pytest.raises(ImportFailedError, match="stopped at record 20 of 40"):
        import_file(target, source, batch_size=10)
    with d1_with(d1_url, BreaksAt()) as target, pytest.raises(ImportFailedError) as caught:
        import_file(target, source, batch_size=10)
    message = str(caught.value)
    assert "stopped at record 20 of 40" in message and "the connection failed" in message
    assert caught.value.result.records_read == 20 and len(message.splitlines()) == 1
    with connect(d1_url, create=True) as target:  # the row still says running: the same command resumes
        resumed = import_file(target, source, batch_size=10)
        assert resumed.resumed_from == 20 and table_rows(target) == clean_rows(tmp_path, source)
