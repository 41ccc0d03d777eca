"""The D1 path against the local D1 engine, beside a minimal reference client, in the same run.

    python benchmarks/bench_d1.py [--records 100000] [--repeat 2] [--delay-ms 100]

Both clients start from the same generated CSV file and load it into the same table (the schema's
indexes included) in a fresh database of the local engine (Cloudflare's workerd and D1 engine, see
tests/d1_engine), through Cloudflare's REST request shape:

- estateflow: `import_file` over `D1Target`: validation, rejects file, idempotent upserts, ledger
  counters and checkpoint in the same request as each 10,000-record batch.
- reference: the least a client can do: read the CSV, write each 10,000 rows as plain multi-row
  INSERTs (values quoted as literals, 100 KB a statement) and send them as one batch request. No
  validation, no ledger, no idempotency.

Each runs at local speed and again with `--delay-ms` of added round-trip time (an httpx transport
that waits that long before each request: the simulated network). Reported: records/s and requests
per 10,000 records, best of `--repeat`, with the CPU seconds of the client's own process and of the
processes it started and waited for (estateflow's reader; the local engine is not counted): on a
machine of two cores the engine and the client compete for them. Targets: estateflow at least 0.95x the
reference locally (issue 11) and 0.7x with the delay or non-atomic batches, at most 1.1 requests per 10,000
records, at least 10,000 records/s with the delay.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from estateflow_nb import import_file, write_records  # noqa: E402
from estateflow_nb.schema import RECORD_COLUMNS, SCHEMA_STATEMENTS  # noqa: E402
from estateflow_nb.targets.d1 import MAX_SQL_BYTES, D1Target  # noqa: E402
from tests.d1_fixtures import LocalD1Engine  # noqa: E402
from tests.d1_modes import Modes  # noqa: E402

WORK = ROOT / "benchmarks" / "work"
BATCH = 10_000


class CpuClock:
    """CPU seconds of this process, and of the child processes waited for, since it was made."""

    def __init__(self) -> None:
        self.own, self.children = time.process_time(), _children_cpu()

    def read(self) -> tuple[float, float]:
        return time.process_time() - self.own, _children_cpu() - self.children


def _children_cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


class DelayedTransport(httpx.BaseTransport):
    """The network: `delay` seconds of round trip added before each request; counts requests."""

    def __init__(self, delay: float) -> None:
        self.inner = httpx.HTTPTransport()
        self.delay = delay
        self.requests = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        if self.delay:
            time.sleep(self.delay)
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


@dataclass
class Run:
    client: str
    delay_ms: float
    records: int
    seconds: float
    requests: int
    cpu_seconds: float = 0.0  # the client's own process
    child_cpu_seconds: float = 0.0  # the processes it started and waited for (estateflow's reader)

    @property
    def records_per_second(self) -> float:
        return self.records / self.seconds

    @property
    def requests_per_10k(self) -> float:
        return self.requests * 10_000 / self.records


def run_estateflow(engine: LocalD1Engine, source: Path, records: int, delay: float) -> Run:
    engine.wipe()
    transport = DelayedTransport(delay)
    with D1Target(
        engine.account_id,
        engine.databases[0],
        token=engine.token,
        base_url=engine.base_url,
        transport=transport,
        ensure_schema=True,
        create=True,
    ) as target:
        connected = transport.requests  # the schema check every connect makes
        began, clock = time.perf_counter(), CpuClock()
        result = import_file(target, source, batch_size=BATCH, force=True, resume=False, rejects_dir=WORK)
        seconds = time.perf_counter() - began
        cpu = clock.read()
        # Everything the import sent: ledger lookups, batches, the finish.
        requests = transport.requests - connected
        stored = target.scalar("SELECT COUNT(*) FROM professionals")
    assert result.inserted == records == stored, (result.inserted, stored)
    return Run("estateflow", delay * 1000, records, seconds, requests, *cpu)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'" if text != "" else "NULL"


def run_reference(engine: LocalD1Engine, source: Path, records: int, delay: float) -> Run:
    """The minimal client: plain multi-row INSERT batches, one request per 10,000 rows."""
    engine.wipe()
    transport = DelayedTransport(delay)
    path = f"/accounts/{engine.account_id}/d1/database/{engine.databases[0]}/query"
    headers = {"Authorization": f"Bearer {engine.token}"}
    with httpx.Client(base_url=engine.base_url, transport=transport, headers=headers, timeout=120) as client:
        client.post(path, json={"batch": [{"sql": s} for s in SCHEMA_STATEMENTS]}).raise_for_status()
        transport.requests = 0
        head = f"INSERT INTO professionals ({', '.join(RECORD_COLUMNS)}, import_id, imported_at) VALUES "
        began, clock = time.perf_counter(), CpuClock()
        sent = 0

        def send(rows: list[str]) -> None:
            statements, group, size = [], [], len(head)
            for row in rows:
                if size + len(row.encode()) + 1 > MAX_SQL_BYTES:
                    statements.append(head + ",".join(group))
                    group, size = [], len(head)
                group.append(row)
                size += len(row.encode()) + 1
            statements.append(head + ",".join(group))
            answer = client.post(path, json={"batch": [{"sql": s} for s in statements]})
            answer.raise_for_status()

        with source.open(newline="", encoding="utf-8") as f:
            batch: list[str] = []
            for record in csv.DictReader(f):
                values = [_literal(record[c]) for c in RECORD_COLUMNS]
                batch.append("(" + ", ".join(values) + ", 'reference', '2026-01-01T00:00:00Z')")
                if len(batch) == BATCH:
                    send(batch)
                    sent += len(batch)
                    batch = []
            if batch:
                send(batch)
                sent += len(batch)
        seconds = time.perf_counter() - began
        cpu = clock.read()
        requests = transport.requests
        stored = client.post(path, json={"sql": "SELECT COUNT(*) AS n FROM professionals"}).json()
    assert sent == records == stored["result"][0]["results"][0]["n"]
    return Run("reference", delay * 1000, records, seconds, requests, *cpu)


def best(runs: list[Run]) -> Run:
    return min(runs, key=lambda r: r.seconds)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=100_000, help="records in the generated file")
    parser.add_argument("--repeat", type=int, default=2, help="runs of each client per delay; the best counts")
    parser.add_argument("--delay-ms", type=float, default=100.0, help="added round-trip time for the second round")
    args = parser.parse_args()

    WORK.mkdir(parents=True, exist_ok=True)
    source = WORK / f"bench-d1-{args.records}.csv"
    if not source.exists():
        write_records(source, args.records, seed=2026)
    results: dict[tuple[str, float, bool], Run] = {}
    with LocalD1Engine() as engine:
        # The last round runs each batch's items one by one, each committed (the engine's non-atomic
        # mode, which Cloudflare's contract allows): what the ledger's idempotent batches cost there.
        for delay, atomic in ((0.0, True), (args.delay_ms / 1000, True), (0.0, False)):
            Modes(engine).set(atomic=atomic)
            clients: list[tuple[str, Callable[..., Run]]] = [
                ("reference", run_reference),
                ("estateflow", run_estateflow),
            ]
            runs: dict[str, list[Run]] = {name: [] for name, _ in clients}
            for _ in range(args.repeat):  # alternate, so that neither client gets the warmer engine
                for name, run in clients:
                    runs[name].append(run(engine, source, args.records, delay))
            for name, found in runs.items():
                results[(name, delay * 1000, atomic)] = best(found)
        Modes(engine).set()

    print(f"D1 path against the local D1 engine: {args.records:,} records, batches of {BATCH:,}, best of {args.repeat}")
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} cores)")
    print()
    header = f"{'client':<11} {'added RTT':>9} {'batches':>10} {'seconds':>8} {'records/s':>10}"
    header += f" {'requests':>8} {'req/10k':>8} {'CPU s':>6} {'+reader':>7}"
    print(header)
    print("-" * len(header))
    for (_, _, atomic), run in results.items():
        print(
            f"{run.client:<11} {run.delay_ms:>6.0f} ms {'atomic' if atomic else 'non-atomic':>10} {run.seconds:>8.2f}"
            f" {run.records_per_second:>10,.0f} {run.requests:>8} {run.requests_per_10k:>8.2f}"
            f" {run.cpu_seconds:>6.2f} {run.child_cpu_seconds:>7.2f}"
        )
    local_ours, local_ref = results[("estateflow", 0.0, True)], results[("reference", 0.0, True)]
    slow_ours = results[("estateflow", args.delay_ms, True)]
    slow_ref = results[("reference", args.delay_ms, True)]
    loose_ours, loose_ref = results[("estateflow", 0.0, False)], results[("reference", 0.0, False)]
    ratio = local_ours.records_per_second / local_ref.records_per_second
    ratio_slow = slow_ours.records_per_second / slow_ref.records_per_second
    ratio_loose = loose_ours.records_per_second / loose_ref.records_per_second
    checks = [
        (f"estateflow / reference throughput (local): {ratio:.2f}x", ratio >= 0.95),
        (f"estateflow / reference throughput ({args.delay_ms:.0f} ms RTT): {ratio_slow:.2f}x", ratio_slow >= 0.7),
        (f"estateflow / reference throughput (non-atomic batches): {ratio_loose:.2f}x", ratio_loose >= 0.7),
        (
            f"estateflow requests per 10,000 records: {local_ours.requests_per_10k:.2f}",
            local_ours.requests_per_10k <= 1.1,
        ),
        (
            f"estateflow records/s with {args.delay_ms:.0f} ms RTT: {slow_ours.records_per_second:,.0f}",
            slow_ours.records_per_second >= 10_000,
        ),
    ]
    print()
    for text, met in checks:
        print(f"  {'met ' if met else 'MISSED'}  {text}")
    (WORK / "bench_d1.json").write_text(
        json.dumps(
            [
                asdict(r)
                | {"atomic": atomic, "records_per_second": r.records_per_second, "requests_per_10k": r.requests_per_10k}
                for (_, _, atomic), r in results.items()
            ],
            indent=2,
        )
    )
    return 0 if all(met for _, met in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
