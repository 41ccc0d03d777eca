"""How long each HTML report takes to render, on 500,000 rows and on a small database.

    .venv/bin/python benchmarks/bench_reports.py              # 500,000 rows, writes the README table
    .venv/bin/python benchmarks/bench_reports.py --rows 50000 --no-readme

Generates the rows (`estateflow generate N --out benchmarks/work/p-N.csv`), imports them with
`--force` into a fresh database under benchmarks/work/, then times each `estateflow report NAME --db
URL` end to end in its own process, as a person would run it: kernel start, the notebook's queries,
the figures, the HTML conversion. The same reports on 1,000 rows show the fixed cost (starting
Python, the kernel, pandas and matplotlib). The rollback report plans the undoing of the imports of
the last 24 hours (all the rows) and changes nothing. The ladder report runs last, since it adds the
11,110 ladder records to the database (its ladder files are written beforehand, not timed).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "benchmarks" / "work"
sys.path.insert(0, str(ROOT))

from benchmarks.readme import write_readme  # noqa: E402
from estateflow_nb import write_ladder  # noqa: E402
from estateflow_nb.reports import REPORTS  # noqa: E402

CLI = [sys.executable, "-m", "estateflow_nb.cli"]
# Report name -> extra parameters; the ladder report needs its confirmation for the large rung, the
# rollback report a strategy to plan (without `confirm` it changes nothing).
EXTRA = {
    "ladder": ["-p", "directory", str(WORK / "ladder"), "-p", "yes", "true"],
    "rollback": ["-p", "last_hours", "24", "-p", "backups_dir", str(WORK / "backups")],
}
ORDER = sorted(REPORTS, key=lambda name: name == "ladder")


def run(*args: str) -> tuple[float, str]:
    began = time.perf_counter()
    done = subprocess.run(
        [*CLI, *args], capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"estateflow {' '.join(args)} failed: {done.stderr.strip()[-800:]}")
    return time.perf_counter() - began, done.stdout


def database(rows: int) -> str:
    """A fresh database holding `rows` generated records, imported the way a user would."""
    source = WORK / f"p-{rows}.csv"
    if not source.exists():
        run("generate", str(rows), "--out", str(source))
    path = WORK / f"reports-{rows}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    url = f"sqlite:///{path}"
    run("import", str(source), "--force", "--db", url)
    return url


def time_reports(url: str) -> dict[str, tuple[float, int]]:
    """Seconds and HTML size of each report against `url`."""
    results = {}
    for name in ORDER:
        seconds, stdout = run("report", name, "--db", url, "--out-dir", str(WORK / "reports"), *EXTRA.get(name, []))
        html = Path(stdout.strip().splitlines()[-1])
        results[name] = (seconds, html.stat().st_size)
        print(f"  {name:<13} {seconds:6.1f} s  {html}", flush=True)
    return results


def table(rows: int, big: dict[str, tuple[float, int]], small: dict[str, tuple[float, int]]) -> str:
    lines = [
        f"| report | {rows:,} rows | 1,000 rows | HTML on {rows:,} rows |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name in ORDER:
        (seconds, size), fixed = big[name], small[name][0]
        lines.append(f"| `estateflow report {name}` | {seconds:.1f} s | {fixed:.1f} s | {size / 1e3:,.0f} kB |")
    lines += [
        "",
        f"Wall time of the whole command on {os.cpu_count()} cores: Python and kernel start, the notebook's",
        "queries and figures, the HTML. The 1,000-row column is the fixed cost. The rollback report plans",
        "undoing every row (the imports of the last 24 hours) and changes nothing.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--no-readme", action="store_true", help="Print the table only.")
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    write_ladder(WORK / "ladder")
    results = {}
    for rows in (args.rows, 1_000):
        print(f"{rows:,} rows: generating and importing ...", flush=True)
        url = database(rows)
        results[rows] = time_reports(url)
    text = table(args.rows, results[args.rows], results[1_000])
    print(text)
    if not args.no_readme:
        write_readme("reports", text)
        print("\nwritten into README.md")


if __name__ == "__main__":
    main()
