"""What we rely on from D1's documented contract, each checked against the local engine (as strict as
the documented service) or, where no engine is needed, on its own: request sizing and its errors, the
durations D1 reports, where the token may go, string-only parameters, and the per-user rate limit."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from estateflow_nb import TargetError, TooLargeError, TransientError, connect, generate_records, import_file
from estateflow_nb.targets import InsertRows, Sql
from estateflow_nb.targets.d1 import (
    CACHE_ENV,
    D1Target,
    RatePacer,
    SharedPacer,
    cache_folder,
    server_seconds,
    state_path,
)

from .conftest import ROOT, write_csv
from .d1_fixtures import LocalD1Engine, RecordingTransport
from .test_importer import table_rows

# --- request sizing: D1's 30 seconds, and the errors whose fix is smaller work -----------------------


def _rows(n: int, start: int = 0) -> InsertRows:
    return InsertRows("t", ["id", "v"], [(i, f"value {i} " + "x" * 40) for i in range(start, start + n)])


def test_a_request_over_the_ceiling_is_too_large_and_applies_nothing(
    d1_engine: LocalD1Engine, d1_target: D1Target
) -> None:
    d1_target.execute([Sql("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")])
    d1_engine.service(ceiling_bytes=20_000)
    with pytest.raises(TooLargeError, match="storage operation exceeded timeout"):
        d1_target.execute([_rows(1_000)])
    assert d1_target.scalar("SELECT COUNT(*) FROM t") == 0
    d1_target.execute([_rows(100)])  # smaller work gets through
    d1_engine.service(ceiling_status=500)  # the same answer as a 5xx is still not worth repeating as it is
    with pytest.raises(TooLargeError):
        d1_target.execute([_rows(1_000, start=100)])
    assert d1_target.scalar("SELECT COUNT(*) FROM t") == 100


def test_under_a_ceiling_backup_export_and_restore_stay_exact(
    d1_engine: LocalD1Engine, d1_url: str, tmp_path: Path
) -> None:
    """What a ceiling on writes leaves alone: reads page in small requests, export and Time Travel are
    requests of their own."""
    from estateflow_nb import backup, restore_bookmark

    with connect(d1_url, create=True) as target:
        assert isinstance(target, D1Target)
        import_file(target, write_csv(tmp_path / "a.csv", generate_records(300, seed=4)), batch_size=100)
        expected = table_rows(target)
        bookmark = target.bookmark()
        assert bookmark
        d1_engine.service(ceiling_bytes=8_000)
        with pytest.raises(TooLargeError):
            target.execute([Sql("DELETE FROM professionals WHERE id IN (" + ",".join(map(str, range(3000))) + ")")])
        path = backup(target, backups_dir=tmp_path / "backups")
        with connect(f"sqlite:///{path}") as copy:
            assert table_rows(copy) == expected
        target.page_sql(tmp_path / "paged.sql")
        target.execute([Sql("DELETE FROM professionals")])
        restore_bookmark(target, bookmark=bookmark, yes=True)
        assert table_rows(target) == expected


def test_a_body_past_our_own_ceiling_is_too_large_before_it_is_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    from estateflow_nb.targets.d1 import _http

    monkeypatch.setattr(_http, "MAX_REQUEST_BYTES", 2_000)
    transport = NoNetwork()
    target = D1Target("acc", "db", token="t", base_url="https://api.example.com", transport=transport)
    with target, pytest.raises(TooLargeError, match="smaller parts"):
        target.execute([_rows(100)])
    assert transport.requests == 0


def test_server_seconds_come_from_what_d1_says_the_statements_took(
    d1_engine: LocalD1Engine, d1_target: D1Target
) -> None:
    assert server_seconds([{"timings": {"sql_duration_ms": 1500.0}, "duration": 9}, {"duration": 500}]) == 2.0
    assert server_seconds([{}, {"duration": None}]) is None
    d1_target.execute([Sql("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")])
    quick = d1_target.execute([_rows(10)])
    assert quick.server_seconds is not None and quick.server_seconds < 5
    # The engine reports 1 s per KB of SQL: 50 KB of statements "took" over 50 s, without waiting for it.
    d1_engine.service(ms_per_kb=1000)
    slow = d1_target.execute([_rows(1_000, start=10)])
    assert slow.server_seconds is not None and slow.server_seconds > 50


# --- where the token goes --------------------------------------------------------------------------


class NoNetwork(httpx.BaseTransport):
    def __init__(self) -> None:
        self.requests = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        return httpx.Response(500)


@pytest.mark.parametrize(
    "base_url",
    [
        "http://api.cloudflare.com/client/v4",
        "http://10.0.0.8:8787/client/v4",
        "http://localhost.example.com/client/v4",
        "http://127.0.0.1.example.com/client/v4",
        "ftp://127.0.0.1/client/v4",
        "//api.cloudflare.com/client/v4",
    ],
)
def test_the_token_is_never_sent_in_clear_beyond_this_machine(base_url: str) -> None:
    transport = NoNetwork()
    with pytest.raises(TargetError, match="only over https") as refused:
        D1Target("acc", "db", token="secret-token-123", base_url=base_url, transport=transport, ensure_schema=True)
    assert transport.requests == 0 and "secret-token-123" not in str(refused.value)
    assert len(str(refused.value).splitlines()) == 1


@pytest.mark.parametrize(
    "base_url",
    [
        "https://api.cloudflare.com/client/v4",
        "http://127.0.0.1:8787/client/v4",
        "http://127.8.9.10:8787/client/v4",
        "http://[::1]:8787/client/v4",
        "http://localhost:8787/client/v4",
    ],
)
def test_https_and_loopback_are_accepted(base_url: str) -> None:
    with D1Target("acc", "db", token="t", base_url=base_url, transport=NoNetwork()) as target:
        assert target.base_url == base_url


def test_the_export_is_fetched_only_over_https_or_from_this_machine(tmp_path: Path) -> None:
    from estateflow_nb.targets.d1._export import download

    transport = NoNetwork()
    with D1Target("acc", "db", token="t", base_url="https://api.example.com", transport=transport) as target:
        with pytest.raises(TargetError, match="only over https"):
            download(target.api, "http://bucket.example.com/dump.sql?X-Amz-Signature=abc", tmp_path / "d.sql", "")
        assert transport.requests == 0 and not (tmp_path / "d.sql").exists()
        with pytest.raises(TransientError, match="HTTP 500"):  # https is fetched (here: a 500, worth a retry)
            download(target.api, "https://bucket.example.com/dump.sql?X-Amz-Signature=abc", tmp_path / "d.sql", "")
        assert transport.requests == 1


def test_a_refused_base_url_stops_the_command_with_one_line(d1_engine: LocalD1Engine, tmp_path: Path) -> None:
    from .conftest import invoke

    env = {**d1_engine.env(), "CLOUDFLARE_API_BASE_URL": "http://example.com/client/v4"}
    done = invoke("status", "--db", d1_engine.url(), cwd=tmp_path, env=env)
    assert done.returncode == 1 and done.stderr.count("\n") == 1 and "only over https" in done.stderr
    assert d1_engine.token not in done.stderr + done.stdout


# --- bound parameters are strings ----------------------------------------------------------------------


def test_the_engine_refuses_parameters_that_are_not_strings(d1_target: D1Target) -> None:
    for params in ([1], [1.5], [None], [True], [[1, 2]]):
        with pytest.raises(TargetError, match="params must be strings"):
            d1_target.api.request("POST", "/query", {"sql": "SELECT ?", "params": params})
    (row,) = d1_target.api.request("POST", "/query", {"sql": "SELECT ? AS v, typeof(?) AS t", "params": ["7", "7"]})
    assert row["results"] == [{"v": "7", "t": "text"}]


def test_everything_we_send_binds_only_strings(d1_url: str, tmp_path: Path) -> None:
    from estateflow_nb import rollback, verify

    recorder = RecordingTransport()
    with D1Target.from_url(d1_url, transport=recorder, ensure_schema=True, create=True) as target:
        records = list(generate_records(30, seed=14))
        records[1]["rating"] = 1.0000000000000002
        import_file(target, write_csv(tmp_path / "a.csv", records), batch_size=10)
        changed = [{**r, "city": "Naples"} for r in records[:10]]
        second = import_file(target, write_csv(tmp_path / "b.csv", changed), batch_size=10, on_conflict="update")
        verify(target, runs=1)
        rollback(target, import_id=second.import_id, yes=True, backups_dir=tmp_path / "backups")
        # A text too long for a statement is bound, as a string; every other value is a literal.
        target.execute(
            [
                Sql("CREATE TABLE scratch (v)"),
                Sql(
                    "INSERT INTO scratch VALUES (?), (?), (?), (?), (?)",
                    ("long " * 30_000, 1e-310, 2**62, None, b"\xff"),
                ),
            ]
        )
        kinds = target.query("SELECT typeof(v) AS t FROM scratch ORDER BY rowid")
        assert [r["t"] for r in kinds] == ["text", "real", "integer", "null", "blob"]
    bodies = [json.loads(r.content) for r in recorder.sent if r.content]
    items = [item for body in bodies for item in body.get("batch", [body])]
    bound = [value for item in items for value in item.get("params", [])]
    assert bound and all(isinstance(value, str) for value in bound)
    assert any(value.startswith("long long") for value in bound)


# --- one request budget per user ----------------------------------------------------------------------


def test_the_engine_answers_429_with_retry_after_past_1200_requests_in_5_minutes(
    d1_engine: LocalD1Engine, d1_target: D1Target, tmp_path: Path
) -> None:
    """Cloudflare's numbers: 1,200 per five minutes, then every call blocked with HTTP 429 and
    retry-after, the seconds until capacity is back. The suite's client does not pace (its own limit is
    set far above), so the engine's limit is what answers."""
    assert d1_engine.service()["rate_limit"] == {"requests": 1200, "window_seconds": 300, "block_seconds": 300}
    sent = d1_engine.observed()["requests"]
    pacer = SharedPacer(tmp_path / "pacer.json", 10_000, 300.0)
    with D1Target.from_url(d1_engine.url(), pacer=pacer, read_attempts=1) as target:
        for _ in range(1_200 - sent):
            target.api.request("GET", "/time_travel/bookmark")
        with pytest.raises(TransientError, match="HTTP 429") as limited:
            target.api.request("GET", "/time_travel/bookmark")
    assert limited.value.retry_after == 300.0
    # Blocked, not only the one request over the limit (asked without our pacer, which now waits).
    path = d1_engine.url().removeprefix("d1://").split("/")
    again = httpx.get(
        f"{d1_engine.base_url}/accounts/{path[0]}/d1/database/{path[1]}",
        headers={"Authorization": f"Bearer {d1_engine.token}"},
    )
    assert again.status_code == 429 and 295 <= int(again.headers["Retry-After"]) <= 300
    # The 429 paused the pacer that every process of this user shares, for the Retry-After.
    state = json.loads((tmp_path / "pacer.json").read_text())
    assert 290 < state["paused_until"] - time.time() <= 300


def test_a_shared_pacer_counts_every_process_of_the_user(tmp_path: Path) -> None:
    now = [1_000.0]
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds

    path = tmp_path / "state.json"
    notebook = SharedPacer(path, 3, 10.0, clock=lambda: now[0], sleep=sleep)
    importer = SharedPacer(path, 3, 10.0, clock=lambda: now[0], sleep=sleep)
    notebook.acquire()
    importer.acquire()
    now[0] += 4.0
    importer.acquire()
    assert waits == [] and notebook.sent_in_window() == 3
    notebook.acquire()  # the 4th of the user's requests in 10 s waits for the first to leave the window
    assert waits == [6.0]
    importer.pause(30.0)  # a 429 that one of them saw
    notebook.acquire()
    assert waits == [6.0, 30.0]


def test_the_pacer_keeps_to_its_window_in_one_process_too() -> None:
    now = [0.0]
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds

    pacer = RatePacer(2, 10.0, clock=lambda: now[0], sleep=sleep)
    pacer.acquire()
    pacer.acquire()
    pacer.pause(3.0)
    pacer.acquire()
    assert waits == [3.0, 7.0]


_CHILD = """
import sys
from pathlib import Path
from estateflow_nb.targets.d1 import SharedPacer
pacer = SharedPacer(Path(sys.argv[1]), 100_000, 300.0)
for _ in range(int(sys.argv[2])):
    pacer.acquire()
"""


def test_processes_sharing_the_pacer_lose_no_count(tmp_path: Path) -> None:
    """Four processes at once, 150 requests each: the file's lock lets none of them overwrite another's."""
    path = tmp_path / "state.json"
    children = [
        subprocess.Popen([sys.executable, "-c", _CHILD, str(path), "150"], cwd=ROOT, env={"PYTHONPATH": str(ROOT)})
        for _ in range(4)
    ]
    assert [child.wait(timeout=120) for child in children] == [0] * 4
    assert SharedPacer(path, 100_000, 300.0).sent_in_window() == 600


# Another process of the same user: prints how long its pacer would wait before its first request.
_WAITER = """
import sys
from pathlib import Path
from estateflow_nb.targets.d1 import SharedPacer

def sleep(seconds):
    print(seconds)
    sys.exit(0)

SharedPacer(Path(sys.argv[1]), 1_000, 300.0, sleep=sleep).acquire()
print("no wait")
sys.exit(1)
"""


def test_a_429_seen_by_one_process_pauses_the_others(d1_engine: LocalD1Engine, d1_url: str, tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    d1_engine.service(rate_limit={"requests": 3, "window_seconds": 60, "block_seconds": 60})
    target = D1Target.from_url(d1_url, pacer=SharedPacer(path, 1_000, 300.0), read_attempts=1)
    with target, pytest.raises(TransientError, match="429"):
        for _ in range(4):
            target.api.request("GET", "")
    waiter = subprocess.run(
        [sys.executable, "-c", _WAITER, str(path)],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert waiter.returncode == 0, waiter.stderr
    # The other process waited out the Retry-After (60 s, less the moments since), before sending anything.
    assert 50 < float(waiter.stdout.split()[0]) <= 60


def test_the_state_file_is_per_token_and_holds_no_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    assert cache_folder() == tmp_path / "cache"
    monkeypatch.delenv(CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_folder() == tmp_path / "xdg" / "estateflow"
    one, other = state_path("token-one", tmp_path), state_path("token-two", tmp_path)
    assert one != other and one == state_path("token-one", tmp_path)
    assert "token" not in one.name
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    target = D1Target("acc", "db", token="token-one", base_url="https://example.com", transport=NoNetwork())
    with target, pytest.raises(TransientError):
        target.api.request("GET", "")
    (written,) = list((tmp_path / "cache").iterdir())
    assert written.name == state_path("token-one", tmp_path / "cache").name
    assert b"token-one" not in written.read_bytes()
    assert oct(written.stat().st_mode & 0o777) == "0o600"


def _rate_limit_from_now(engine: LocalD1Engine, more: int) -> None:
    """From now on, `more` requests in the window and then the documented block (five minutes of 429)."""
    engine.service(reset=True)
    engine.service(rate_limit={"requests": more})


def test_wherever_the_rate_limit_cuts_in_import_rollback_and_backup_end_exact(
    d1_engine: LocalD1Engine, d1_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The engine's real 429 (Retry-After 300) at every request of an import, a rollback and a backup in
    turn: each stops cleanly and, once the block has passed, ends exactly as without it."""
    from estateflow_nb import ImportFailedError, _retry, backup, list_backups, rollback

    monkeypatch.setattr(_retry, "SLEEP", lambda seconds: None)  # the retries' and the pacer's waits
    source = write_csv(tmp_path / "pros.csv", generate_records(40, seed=16))
    with connect(f"sqlite:///{tmp_path / 'clean.db'}", create=True) as clean:
        import_file(clean, source, batch_size=10)
        expected = table_rows(clean)
    cuts, more = 0, 0
    while cuts == more:  # until `more` covers the whole import: every cut point before it was tried
        more += 1
        d1_engine.wipe()
        _rate_limit_from_now(d1_engine, more)
        try:
            with connect(d1_url, create=True) as target:
                import_file(target, source, batch_size=10)
        except (TransientError, ImportFailedError):
            cuts += 1
        d1_engine.service(reset=True)  # five minutes later
        with connect(d1_url, create=True) as target:
            if cuts == more:
                import_file(target, source, batch_size=10)  # the same command resumes it
            assert table_rows(target) == expected, more
            ledger = target.query("SELECT status, inserted FROM ef_imports")
            # (A cut after the import's last write fails the command, and its rerun finds nothing left.)
            assert {r["status"] for r in ledger} == {"completed"} and sum(r["inserted"] for r in ledger) == 40
    # Every request the import sends: the schema check, the lookup, the start, four batches (the last
    # completing the import).
    assert cuts >= 7
    with connect(d1_url) as target:
        (imported,) = target.query("SELECT id FROM ef_imports WHERE inserted > 0")
    for more in range(1, 40):
        _rate_limit_from_now(d1_engine, more)
        with contextlib.suppress(TransientError), connect(d1_url) as target:
            rollback(target, import_id=imported["id"], yes=True, backup=False)
        d1_engine.service(reset=True)
        with connect(d1_url) as target:
            rows = table_rows(target)
        assert rows in (expected, []), more  # all or nothing, wherever the cut
        if not rows:
            break
    with connect(d1_url) as target:
        assert table_rows(target) == []
        import_file(target, source, batch_size=10, resume=False)
        expected_now = table_rows(target)
    for more in range(1, 20):
        _rate_limit_from_now(d1_engine, more)
        try:
            with connect(d1_url) as target:
                path = backup(target, backups_dir=tmp_path / "backups")
        except TransientError:
            assert list_backups(backups_dir=tmp_path / "backups") == []
            assert [p.name for p in (tmp_path / "backups").glob("*")] == []  # no dump, no leftover
            continue
        d1_engine.service(reset=True)
        with connect(f"sqlite:///{path}") as copy:
            assert table_rows(copy) == expected_now
        break
