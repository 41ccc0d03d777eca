"""How long backups, rollbacks and a restore take on a big database. Not part of the test suite.

    python benchmarks/bench_rollback.py [--rows 500000]

Builds the database the way an analyst would, with `estateflow generate N --out ...` and
`estateflow import ... --force`, then times, through the Python API unless said otherwise:

- a backup of the whole database (online backup API + integrity check);
- a rollback of a 100-row import in the big database, alone and end to end through the command
  line (process start, plan, backup, rollback);
- a rollback of the big import itself (every row deleted);
- a restore of the backup;
- a rollback of an `--on-conflict update` re-import of the big file (every row put back from its
  before-image).

Rollbacks timed alone run with `backup=False` so that the two costs show apart; a real rollback
pays both. Working files stay under benchmarks/work/ (gitignored).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from estateflow_nb import backup, connect, restore, rollback  # noqa: E402


def estateflow(*args: str, cwd: Path) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("ESTATEFLOW_BACKUPS", None)
    done = subprocess.run(
        [sys.executable, "-m", "estateflow_nb.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    if done.returncode != 0:
        raise SystemExit(f"estateflow {' '.join(args)} failed:\n{done.stderr}")
    return done.stdout


def import_id(output: str) -> str:
    return str(json.loads(output)["import_id"])


def timed(call: Callable[[], Any]) -> tuple[Any, float]:
    began = time.perf_counter()
    value = call()
    return value, time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=500_000, help="records in the big file")
    parser.add_argument("--small", type=int, default=100, help="records in the small import")
    args = parser.parse_args()

    work = ROOT / "benchmarks" / "work" / "rollback"
    big, small = work / f"big-{args.rows}.csv", work / f"small-{args.small}-from-{args.rows}.csv"
    database, backups = work / "bench.db", work / "backups"
    work.mkdir(parents=True, exist_ok=True)
    for stale in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
        stale.unlink(missing_ok=True)
    shutil.rmtree(backups, ignore_errors=True)
    if not big.exists():
        estateflow("generate", str(args.rows), "--out", str(big), cwd=work)
    if not small.exists():
        estateflow("generate", str(args.small), "--out", str(small), "--start", str(args.rows), cwd=work)
    url = f"sqlite:///{database}"

    print(f"building: {args.rows:,} rows with `estateflow import --force`", file=sys.stderr)
    load = ("import", str(big), "--db", url, "--force", "--json")
    big_id, built = timed(lambda: import_id(estateflow(*load, cwd=work)))
    rows: list[tuple[str, int, float]] = [(f"import {args.rows:,} rows (CLI, for scale)", args.rows, built)]

    target = connect(url)
    size = target.size_bytes() or 0
    path, seconds = timed(lambda: backup(target, backups_dir=backups))
    rows.append((f"backup ({size / 1e6:,.0f} MB database)", args.rows, seconds))

    small_id = import_id(estateflow("import", str(small), "--db", url, "--json", cwd=work))
    done, seconds = timed(lambda: rollback(target, import_id=small_id, yes=True, backup=False))
    rows.append((f"rollback of a {args.small}-row import, alone", done.rows_removed, seconds))

    small_id = import_id(estateflow("import", str(small), "--db", url, "--json", cwd=work))
    command = ("rollback", "import", small_id, "--db", url, "--yes", "--backups-dir", str(backups), "--json")
    output, seconds = timed(lambda: json.loads(estateflow(*command, cwd=work)))
    rows.append((f"rollback of a {args.small}-row import, CLI with backup", output["rows_removed"], seconds))

    done, seconds = timed(lambda: rollback(target, import_id=big_id, yes=True, backup=False))
    rows.append((f"rollback of the {args.rows:,}-row import, alone", done.rows_removed, seconds))

    restored, seconds = timed(lambda: restore(target, path, yes=True, backup_first=False))
    rows.append(("restore of the backup", restored.rows, seconds))

    update = ("import", str(big), "--db", url, "--force", "--on-conflict", "update", "--no-resume", "--json")
    update_id = import_id(estateflow(*update, cwd=work))
    done, seconds = timed(lambda: rollback(target, import_id=update_id, yes=True, backup=False))
    rows.append((f"rollback of an update of {args.rows:,} rows, alone", done.rows_restored, seconds))
    target.close()

    print(f"\n{'operation':<52} {'rows':>9} {'seconds':>8} {'rows/s':>11}")
    for name, count, seconds in rows:
        print(f"{name:<52} {count:>9,} {seconds:>8.2f} {count / seconds:>11,.0f}")
    print(f"\nPython {sys.version.split()[0]}, SQLite {__import__('sqlite3').sqlite_version}, {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
