"""Import throughput and memory against the obvious alternatives, measured side by side in one run.

    .venv/bin/python benchmarks/bench_import.py              # 500,000 rows, writes the README table
    .venv/bin/python benchmarks/bench_import.py --rows 100000 --quick --no-readme   # while iterating

Every contender loads the same generated CSV into a fresh database with the same schema, in its own
process: wall time, CPU seconds (user + system of the process and every child it waited for, from
getrusage(RUSAGE_CHILDREN) around the run) and the peak RSS of its whole process tree. The baselines:

- executemany: csv.reader straight into `executemany` in one transaction, no validation: the floor
  of what Python can do with sqlite3, and the yardstick for the ratios;
- sqlite3 shell: `.import --csv` into a staging table, then INSERT ... SELECT into the schema;
- sqlite-utils: `sqlite-utils insert DB professionals FILE --csv`;
- pandas: `read_csv` then `to_sql(..., if_exists="append")`.

Then the append scenario: 100,000 more records into a database that already holds 500,000 (ours
against executemany appending the same rows to a copy of the same database); our import of 500,000
and 1,000,000 rows for the memory curve; and verification of the 500,000-row database: the twelve
checks together (the first time, then again) and each latency benchmark's median.

The baseline, ours and the shell run in turns, three times each (`--repeat`), and so do the two
appends (`--append-repeat`); the fastest run of each is kept. This machine's speed drifts by more
than the differences measured, within minutes: in turns, every contender meets the same moments.
`--quick` leaves out sqlite-utils, pandas (one run each) and the memory curve.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
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
    cpu: float  # user + system seconds of the process tree
    peak_mb: float

    @property
    def rate(self) -> float:
        return self.rows / self.seconds


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(command: list[str], stdin: str | None = None) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds and peak memory (MB) of one command. CPU counts the command and every
    process it waited for (our import's reader). Memory is the RSS of it and all its child processes
    together, sampled every 20 ms, and never less than the main process's own peak as the kernel
    counted it."""
    import psutil

    cpu_before = _children_cpu()
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
    cpu = _children_cpu() - cpu_before
    stderr = process.stderr.read() if process.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{command[0]} failed: {stderr.strip()[-500:]}")
    return seconds, cpu, max(peak, usage.ru_maxrss * 1024) / 2**20


def fresh_db(name: str, *, schema: bool, copy_of: Path | None = None) -> Path:
    """An empty database (with our schema when `schema`), or a copy of the database `copy_of`."""
    path = WORK / name
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    if copy_of is not None:
        shutil.copyfile(copy_of, path)
    elif schema:
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


def source(rows: int, *, start: int = 0) -> Path:
    path = WORK / (f"professionals-{rows}.csv" if not start else f"professionals-{rows}-from-{start}.csv")
    if not path.exists():
        write_records(path, rows, seed=42, start=start)
    return path


def ours(csv_path: Path, rows: int, name: str = "ours", *, into: Path | None = None, expect: int | None = None) -> Run:
    """Our import of `csv_path` into a fresh database, or into a copy of the database `into`."""
    db = fresh_db(f"{name}-{rows}.db", schema=False, copy_of=into)
    command = [str(BIN / "estateflow"), "import", str(csv_path), "--db", str(db), "--force"]
    run = Run(f"estateflow import ({name})", rows, *measure(command))
    assert row_count(db) == (expect or rows), "our import lost rows"
    return run


def executemany(csv_path: Path, rows: int, name: str = "executemany", *, into: Path | None = None) -> Run:
    db = fresh_db(f"{name}.db", schema=False, copy_of=into)
    return Run(
        f"sqlite3 executemany ({'baseline' if into is None else 'appending'})",
        rows,
        *measure([sys.executable, "-c", EXECUTEMANY, str(csv_path), str(db)]),
    )


def shell(csv_path: Path, rows: int) -> Run:
    db = fresh_db("shell.db", schema=True)
    script = (
        f".import --csv {csv_path} staging\n"
        f"BEGIN; INSERT INTO professionals ({COLUMNS}) SELECT {SHELL_SELECT} FROM staging;"
        " DROP TABLE staging; COMMIT;\n"
    )
    return Run("sqlite3 shell .import --csv", rows, *measure(["sqlite3", str(db)], stdin=script))


def sqlite_utils(csv_path: Path, rows: int) -> Run:
    db = fresh_db("sqlite-utils.db", schema=True)
    command = [str(BIN / "sqlite-utils"), "insert", str(db), "professionals", str(csv_path), "--csv"]
    return Run("sqlite-utils insert --csv", rows, *measure(command))


def pandas(csv_path: Path, rows: int) -> Run:
    db = fresh_db("pandas.db", schema=True)
    return Run("pandas read_csv + to_sql", rows, *measure([sys.executable, "-c", PANDAS, str(csv_path), str(db)]))


def in_turns(repeat: int, contenders: list[Callable[[], Run]]) -> list[Run]:
    """Each contender `repeat` times, round by round, and the fastest run of each: this machine's speed
    drifts by more than the differences measured within minutes, and in turns every contender meets the
    same moments."""
    tries: list[list[Run]] = [[] for _ in contenders]
    for _ in range(repeat):
        for once, runs in zip(contenders, tries, strict=True):
            runs.append(once())
    return [min(runs, key=lambda run: run.seconds) for runs in tries]


def checked(
    name: str, contender: Callable[[Path, int], Run], csv_path: Path, rows: int, *, expect: int | None = None
) -> Callable[[], Run]:
    """A run of `contender` that checks WORK/<name>.db holds `expect` rows after it (`rows`: it was new)."""

    def once() -> Run:
        run = contender(csv_path, rows)
        loaded, wanted = row_count(WORK / f"{name}.db"), expect or rows
        assert loaded == wanted, f"{run.name} left {loaded:,} rows, not {wanted:,}"
        return run

    return once


def contenders(csv_path: Path, rows: int, *, repeat: int, quick: bool) -> list[Run]:
    """The baseline, ours and the shell `repeat` times each, in turns, then sqlite-utils and pandas once:
    they take many times longer, and no goal is measured against them."""
    main = [("executemany", executemany), (f"ours-{rows}", ours), ("shell", shell)]
    runs = in_turns(repeat, [checked(name, contender, csv_path, rows) for name, contender in main])
    if not quick:
        runs += [checked(name, c, csv_path, rows)() for name, c in (("sqlite-utils", sqlite_utils), ("pandas", pandas))]
    return runs


def appending(base_rows: int, rows: int, *, repeat: int) -> list[Run]:
    """`rows` more records into a copy of a database of `base_rows` that our import made (kept in WORK)."""
    base = WORK / f"base-{base_rows}.db"
    if not base.exists():
        made = fresh_db(f"making-base-{base_rows}.db", schema=False)
        command = [str(BIN / "estateflow"), "import", str(source(base_rows)), "--db", str(made), "--force"]
        measure(command)
        with connect(str(made)) as target:  # one file, no WAL beside it, to copy
            target.execute([])
        made.rename(base)
    more = source(rows, start=base_rows)

    def baseline(csv_path: Path, rows: int) -> Run:
        return executemany(csv_path, rows, "executemany-append", into=base)

    return in_turns(
        repeat,
        [
            checked("executemany-append", baseline, more, rows, expect=base_rows + rows),
            lambda: ours(more, rows, "append", into=base, expect=base_rows + rows),
        ],
    )


def verification(rows: int) -> list[str]:
    with connect(str(WORK / f"ours-{rows}.db")) as target:
        first = verify(target, runs=9)
        again = verify(target, benchmarks=False)
    lines = []
    # The first run reads from disk what the kernel paged out of its file cache meanwhile (this machine
    # pages out memory left unused: DAMON); the second finds the file cached, as right after an import.
    for when, verified in (("the first time", first), ("again", again)):
        checks = sum(c.seconds for c in verified.checks)
        lines.append(f"| all twelve checks, {when} | {checks * 1000:,.0f} ms | 1,000 ms | {_yes(checks < 1)} |")
    # The limits the verification report judges by (verify.BENCHMARKS), so that the two agree.
    for b in first.benchmarks:
        met = "yes" if b.passed else "no"
        lines.append(f"| {b.title} | {b.median_ms:.2f} ms | {b.threshold_ms:,.0f} ms | {met} |")
    return lines


def _table(runs: list[Run], mine: Run) -> list[str]:
    lines = [
        "| contender | seconds | CPU seconds | records/s | ours / it (speed) | ours / it (CPU) | peak RSS |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for run in runs:
        speed = "-" if run is mine else f"{run.seconds / mine.seconds:.2f}x"
        cpu = "-" if run is mine else f"{mine.cpu / run.cpu:.2f}x"
        lines.append(
            f"| {run.name} | {run.seconds:.2f} | {run.cpu:.2f} | {run.rate:,.0f} | {speed} | {cpu}"
            f" | {run.peak_mb:.0f} MB |"
        )
    return lines


def goals(runs: list[Run], append: list[Run], memory: list[Run]) -> list[str]:
    """Issue 11's goals, each as measured in this run."""
    baseline, mine, shell_run = runs[0], runs[1], runs[2]
    against_shell = shell_run.seconds / mine.seconds
    cpu = mine.cpu / baseline.cpu
    lines = [
        "| goal | measured | target | met |",
        "|---|---:|---:|---|",
        f"| speed against the sqlite3 shell `.import` | {against_shell:.2f}x | >= 1.2x"
        f" | {_yes(against_shell >= 1.2)} |",
        f"| CPU seconds against executemany | {cpu:.2f}x | <= 1.3x | {_yes(cpu <= 1.3)} |",
    ]
    if append:
        speed = append[0].seconds / append[1].seconds
        lines.append(f"| append speed against executemany appending | {speed:.2f}x | >= 1.0x | {_yes(speed >= 1.0)} |")
    if memory:
        peak = max(m.peak_mb for m in memory)
        sizes = " and ".join(f"{m.rows:,}" for m in memory)
        lines.append(
            f"| peak RSS of the process tree, {sizes} rows | {peak:.0f} MB | <= 150 MB | {_yes(peak <= 150)} |"
        )
    return lines


def _yes(met: bool) -> str:
    return "yes" if met else "no"


def report(
    runs: list[Run],
    append: list[Run],
    memory: list[Run],
    verify_lines: list[str],
    rows: int,
    repeat: int = 1,
    append_repeat: int = 1,
) -> str:
    baseline, mine = runs[0], runs[1]
    base_rows = row_count(WORK / "executemany-append.db") - append[1].rows if append else 0
    how = (
        "one run each"
        if repeat == 1
        else f"the fastest of {repeat} runs in turns of the first three, one of the others"
    )
    append_runs = append_repeat if append_repeat > 1 else "one"
    lines = [
        f"Import of {rows:,} generated rows from CSV into a fresh SQLite database, each tool in its own process,"
        f" {how} on this machine"
        f" ({os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end), {time.strftime('%Y-%m-%d')}:",
        "",
        *_table(runs, mine),
        "",
        f"Ours against the plain executemany baseline: {baseline.seconds / mine.seconds:.2f}x its speed on"
        f" {mine.cpu / baseline.cpu:.2f}x its CPU time (with validation, rejects, ledger and per-batch checkpoints).",
    ]
    if append:
        lines += [
            "",
            f"Appending {append[1].rows:,} records to a database of {base_rows:,} rows ({append_runs} runs of each,"
            " taken in turns; the fastest of each):",
            "",
            *_table(append, append[1]),
        ]
    if memory:
        lines += [
            "",
            "| our import | seconds | CPU seconds | records/s | peak RSS |",
            "|---|---:|---:|---:|---:|",
        ]
        lines += [
            f"| {m.rows:,} rows | {m.seconds:.2f} | {m.cpu:.2f} | {m.rate:,.0f} | {m.peak_mb:.0f} MB |" for m in memory
        ]
        if len(memory) == 2:
            growth = memory[1].peak_mb / memory[0].peak_mb - 1
            lines += ["", f"Peak RSS from {memory[0].rows:,} to {memory[1].rows:,} rows: {growth:+.1%}."]
    lines += ["", "Issue 11's goals in this run:", "", *goals(runs, append, memory)]
    if verify_lines:
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
    parser.add_argument("--memory-rows", type=int, nargs=2, default=(500_000, 1_000_000))
    parser.add_argument("--append", type=int, nargs=2, default=(500_000, 100_000), metavar=("PRESENT", "ADDED"))
    parser.add_argument(
        "--repeat", type=int, default=3, help="Runs of the baseline, ours and the shell, in turns; the fastest of each."
    )
    parser.add_argument("--quick", action="store_true", help="Without sqlite-utils, pandas, memory and verification.")
    parser.add_argument("--no-append", action="store_true")
    parser.add_argument(
        "--append-repeat", type=int, default=3, help="Runs of each append, in turns; the fastest of each is kept."
    )
    parser.add_argument("--no-readme", action="store_true", help="Print the table only.")
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    print(f"generating sources in {WORK} ...", flush=True)
    csv_path = source(args.rows)
    runs = contenders(csv_path, args.rows, repeat=args.repeat, quick=args.quick)
    append = [] if args.no_append else appending(*args.append, repeat=args.append_repeat)
    memory = []
    if not args.quick:
        # The main run's figures where it is one of the sizes: the same import, measured once.
        memory = [
            runs[1] if n == args.rows else ours(source(n), n, name="memory") for n in sorted(set(args.memory_rows))
        ]
    verify_lines = [] if args.quick else verification(args.rows)
    table = report(runs, append, memory, verify_lines, args.rows, args.repeat, args.append_repeat)
    print(table)
    if not args.no_readme:
        write_readme("import", table)
        print("\nwritten into README.md")


if __name__ == "__main__":
    main()
