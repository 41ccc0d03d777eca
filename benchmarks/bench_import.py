"""Import throughput and memory against the obvious alternatives, measured side by side in one run.

    .venv/bin/python benchmarks/bench_import.py              # 500,000 rows, writes the README table
    .venv/bin/python benchmarks/bench_import.py --rows 50000 --no-readme

Every contender loads the same generated CSV into a fresh database with the same schema, in its own
process (wall time and that process's peak RSS, from wait4). The baselines:

- executemany: csv.reader straight into `executemany` in one transaction, no validation: the floor
  of what Python can do with sqlite3, and the yardstick for the ratios;
- sqlite3 shell: `.import --csv` into a staging table, then INSERT ... SELECT into the schema;
- sqlite-utils: `sqlite-utils insert DB professionals FILE --csv`;
- pandas: `read_csv` then `to_sql(..., if_exists="append")`.

Then our import of 100,000 and 1,000,000 rows for the memory curve, and verification of the
500,000-row database: the twelve checks together and each latency benchmark's median.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "benchmarks" / "work"
BIN = Path(sys.executable).parent
sys.path.insert(0, str(ROOT))

from benchmarks.readme import write_readme  # noqa: E402
from estateflow_nb import connect, verify, write_records  # noqa: E402
from estateflow_nb.schema import RECORD_COLUMNS, SCHEMA_STATEMENTS  # noqa: E402

COLUMNS = ", ".join(RECORD_COLUMNS)
EXECUTEMANY = """
import csv, sqlite3, sys
from estateflow_nb.schema import SCHEMA_STATEMENTS
conn = sqlite3.connect(sys.argv[2], isolation_level=None)
for statement in SCHEMA_STATEMENTS:
    conn.execute(statement)
with open(sys.argv[1], newline="", encoding="utf-8") as f:
    rows = csv.reader(f)
    header = next(rows)
    conn.execute("BEGIN")
    conn.executemany(
        f"INSERT INTO professionals ({', '.join(header)}) VALUES ({', '.join('?' * len(header))})", rows
    )
    conn.execute("COMMIT")
"""
PANDAS = """
import sqlite3, sys
import pandas as pd
conn = sqlite3.connect(sys.argv[2])
pd.read_csv(sys.argv[1], keep_default_na=False, na_values=[""]).to_sql(
    "professionals", conn, if_exists="append", index=False
)
conn.commit()
"""
# Optional text columns: '' from the CSV becomes NULL, as every other contender stores it.
SHELL_SELECT = ", ".join(f"NULLIF({c}, '')" if c in ("phone", "company", "rating") else c for c in RECORD_COLUMNS)


@dataclass
class Run:
    name: str
    rows: int
    seconds: float
    peak_mb: float

    @property
    def rate(self) -> float:
        return self.rows / self.seconds


def measure(command: list[str], stdin: str | None = None) -> tuple[float, float]:
    """Wall seconds and peak memory (MB) of one command: the RSS of it and all its child processes
    together (our import reads in a second process), sampled every 20 ms, and never less than the
    main process's own peak as the kernel counted it."""
    import psutil

    began = time.perf_counter()
    process = psutil.Popen(
        command,
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        text=True,
    )
    if stdin is not None:
        assert process.stdin is not None
        process.stdin.write(stdin)
        process.stdin.close()
    peak = 0
    while True:
        try:
            tree = [process, *process.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in tree))
        except psutil.Error:
            pass  # a process ended between listing and reading it
        try:
            finished, status, usage = os.wait4(process.pid, os.WNOHANG)
        except ChildProcessError:
            break
        if finished:
            break
        time.sleep(0.02)
    seconds = time.perf_counter() - began
    stderr = process.stderr.read() if process.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{command[0]} failed: {stderr.strip()[-500:]}")
    return seconds, max(peak, usage.ru_maxrss * 1024) / 2**20


def fresh_db(name: str, *, schema: bool) -> Path:
    path = WORK / name
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    if schema:
        import sqlite3

        conn = sqlite3.connect(path)
        for statement in SCHEMA_STATEMENTS:
            conn.execute(statement)
        conn.commit()
        conn.close()
    return path


def row_count(path: Path) -> int:
    with connect(str(path)) as target:
        return int(target.scalar("SELECT COUNT(*) FROM professionals"))


def source(rows: int) -> Path:
    path = WORK / f"professionals-{rows}.csv"
    if not path.exists():
        write_records(path, rows, seed=42)
    return path


def ours(csv_path: Path, rows: int, name: str = "ours") -> Run:
    db = fresh_db(f"{name}-{rows}.db", schema=False)
    seconds, peak = measure([str(BIN / "estateflow"), "import", str(csv_path), "--db", str(db), "--force"])
    assert row_count(db) == rows, "our import lost rows"
    return Run(f"estateflow import ({name})", rows, seconds, peak)


def contenders(csv_path: Path, rows: int) -> list[Run]:
    runs = []
    db = fresh_db("executemany.db", schema=False)
    runs.append(
        Run(
            "sqlite3 executemany (baseline)",
            rows,
            *measure([sys.executable, "-c", EXECUTEMANY, str(csv_path), str(db)]),
        )
    )
    runs.append(ours(csv_path, rows))
    db = fresh_db("shell.db", schema=True)
    script = (
        f".import --csv {csv_path} staging\n"
        f"BEGIN; INSERT INTO professionals ({COLUMNS}) SELECT {SHELL_SELECT} FROM staging;"
        " DROP TABLE staging; COMMIT;\n"
    )
    runs.append(Run("sqlite3 shell .import --csv", rows, *measure(["sqlite3", str(db)], stdin=script)))
    db = fresh_db("sqlite-utils.db", schema=True)
    command = [str(BIN / "sqlite-utils"), "insert", str(db), "professionals", str(csv_path), "--csv"]
    runs.append(Run("sqlite-utils insert --csv", rows, *measure(command)))
    db = fresh_db("pandas.db", schema=True)
    runs.append(Run("pandas read_csv + to_sql", rows, *measure([sys.executable, "-c", PANDAS, str(csv_path), str(db)])))
    for run, name in zip(runs, ("executemany", "ours", "shell", "sqlite-utils", "pandas"), strict=True):
        path = WORK / (f"{name}.db" if name != "ours" else f"ours-{rows}.db")
        assert row_count(path) == rows, f"{run.name} loaded {row_count(path)} rows, not {rows}"
    return runs


def verification(rows: int) -> list[str]:
    with connect(str(WORK / f"ours-{rows}.db")) as target:
        report = verify(target, runs=9)
    checks = sum(c.seconds for c in report.checks)
    lines = [
        f"| all twelve checks | {checks * 1000:,.0f} ms | 1,000 ms | {'yes' if checks < 1 else 'no'} |",
    ]
    # The limits the verification report judges by (verify.BENCHMARKS), so that the two agree.
    for b in report.benchmarks:
        met = "yes" if b.passed else "no"
        lines.append(f"| {b.title} | {b.median_ms:.2f} ms | {b.threshold_ms:,.0f} ms | {met} |")
    return lines


def report(runs: list[Run], memory: list[Run], verify_lines: list[str], rows: int) -> str:
    baseline = runs[0]
    by_name = {r.name: r for r in runs}
    mine = by_name["estateflow import (ours)"]
    lines = [
        f"Import of {rows:,} generated rows from CSV into a fresh SQLite database, each tool in its own process,"
        f" one run on this machine ({os.cpu_count()} cores), {time.strftime('%Y-%m-%d')}:",
        "",
        "| contender | seconds | records/s | ours / it | peak RSS |",
        "|---|---:|---:|---:|---:|",
    ]
    for run in runs:
        ratio = "-" if run is mine else f"{run.seconds / mine.seconds:.2f}x"
        lines.append(f"| {run.name} | {run.seconds:.2f} | {run.rate:,.0f} | {ratio} | {run.peak_mb:.0f} MB |")
    lines += [
        "",
        f"Ours against the plain executemany baseline: {baseline.seconds / mine.seconds:.2f}x its speed"
        " (with validation, rejects, ledger and per-batch checkpoints).",
        "",
        "| our import | seconds | records/s | peak RSS |",
        "|---|---:|---:|---:|",
    ]
    lines += [f"| {m.rows:,} rows | {m.seconds:.2f} | {m.rate:,.0f} | {m.peak_mb:.0f} MB |" for m in memory]
    if len(memory) == 2:
        growth = memory[1].peak_mb / memory[0].peak_mb - 1
        lines += ["", f"Peak RSS from {memory[0].rows:,} to {memory[1].rows:,} rows: {growth:+.1%}."]
    lines += [
        "",
        f"Verification of the {rows:,}-row database (median of 9 runs per benchmark):",
        "",
        "| measure | observed | limit | met |",
        "|---|---:|---:|---|",
        *verify_lines,
        "",
        "The latency limits are the ones the verification report judges by; the twelve checks' 1,000 ms is a",
        "goal of ours, not a limit of the report.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--memory-rows", type=int, nargs=2, default=(100_000, 1_000_000))
    parser.add_argument("--no-readme", action="store_true", help="Print the table only.")
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    print(f"generating sources in {WORK} ...", flush=True)
    csv_path = source(args.rows)
    memory_sources = [source(n) for n in args.memory_rows]
    runs = contenders(csv_path, args.rows)
    memory = [ours(path, n, name="memory") for path, n in zip(memory_sources, args.memory_rows, strict=True)]
    table = report(runs, memory, verification(args.rows), args.rows)
    print(table)
    if not args.no_readme:
        write_readme("import", table)
        print("\nwritten into README.md")


if __name__ == "__main__":
    main()
