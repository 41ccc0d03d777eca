"""A database that cannot be written is still read by every reading command, and a write there says
"read-only". Real read-only mounts, in a private mount namespace (`unshare -rm`: no privileges needed,
and root cannot write through them either, unlike a file that is merely chmod 444)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from estateflow_nb import backup, connect, import_file, write_records

from .conftest import ROOT

UNSHARE = shutil.which("unshare")
# In a new user and mount namespace: bind-mount $1 read-only over itself, then run the rest.
READ_ONLY = 'mount --bind -o ro "$1" "$1" && shift && exec "$@"'


@pytest.fixture
def place(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with a database (WAL mode, closed cleanly, so no -wal or -shm beside it), its backup,
    and a source file."""
    assert UNSHARE is not None, "these tests need util-linux's unshare"
    folder = tmp_path_factory.mktemp("read-only")
    url = f"sqlite:///{folder / 'db' / 'estateflow.db'}"
    with connect(url, create=True) as target:
        import_file(target, write_records(folder / "first.csv", 40))
        backup(target, backups_dir=folder / "db" / "backups")
    write_records(folder / "more.csv", 10, start=500)
    assert sorted(p.name for p in (folder / "db").iterdir()) == ["backups", "estateflow.db"]
    return folder


def read_only(mounted: Path, *arguments: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`estateflow ARGUMENTS` with `mounted` (a folder or a file) read-only for the command."""
    assert UNSHARE is not None
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for name in ("ESTATEFLOW_DB", "ESTATEFLOW_BACKUPS"):
        env.pop(name, None)
    command = [UNSHARE, "-rm", "sh", "-c", READ_ONLY, "sh", str(mounted), sys.executable, "-m", "estateflow_nb.cli"]
    return subprocess.run(
        [*command, *arguments], capture_output=True, text=True, cwd=cwd, env=env, stdin=subprocess.DEVNULL, timeout=300
    )


def digest(folder: Path) -> dict[str, str]:
    """The database and its backups, byte for byte. (With only the file read-only, SQLite may leave an
    empty -wal and a -shm beside it: its folder is writable, and those hold no data.)"""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in folder.rglob("*")
        if p.is_file() and not p.name.endswith(("-wal", "-shm"))
    }


@pytest.fixture(params=["the file", "its folder"])
def mounted(request: pytest.FixtureRequest, place: Path) -> Path:
    """What is read-only: the database file alone (its folder can hold a -shm file), or its whole folder."""
    return place / "db" / "estateflow.db" if request.param == "the file" else place / "db"


def test_every_reading_command_reads_a_read_only_database(place: Path, mounted: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{place / 'db' / 'estateflow.db'}"
    backups = place / "db" / "backups"
    before = digest(place / "db")
    status = read_only(mounted, "status", "--db", url, "--backups-dir", str(backups), "--json", cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    report = json.loads(status.stdout)
    assert report["tables"]["professionals"] == 40 and report["newest_backup"] is not None
    verified = read_only(mounted, "verify", "--db", url, "--no-benchmarks", "--json", cwd=tmp_path)
    assert verified.returncode == 0 and json.loads(verified.stdout)["passed"], verified.stderr
    listed = read_only(mounted, "backups", "--db", url, "--backups-dir", str(backups), "--json", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert [b["rows"] for b in json.loads(listed.stdout)["backups"]] == [40]
    planned = read_only(mounted, "rollback", "last", "--db", url, "--dry-run", "--json", cwd=tmp_path)
    assert planned.returncode == 0 and json.loads(planned.stdout)["rows_removed"] == 40, planned.stderr
    out = tmp_path / "reports"
    html = read_only(mounted, "report", "verification", "--db", url, "--out-dir", str(out), cwd=tmp_path)
    assert html.returncode == 0, html.stderr[-3000:]
    assert Path(html.stdout.strip()).is_file() and Path(html.stdout.strip()).parent == out
    assert digest(place / "db") == before


def test_a_write_says_read_only(place: Path, mounted: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{place / 'db' / 'estateflow.db'}"
    backups = tmp_path / "backups"  # writable: only the database is not
    before = digest(place / "db")
    writes = [
        ["import", str(place / "more.csv"), "--db", url],
        ["rollback", "last", "--db", url, "--yes", "--backups-dir", str(backups)],
        ["db", "reset", "--db", url, "--yes", "--backups-dir", str(backups)],
        [
            "restore",
            str(next((place / "db" / "backups").iterdir())),
            "--db",
            url,
            "--yes",
            "--backups-dir",
            str(backups),
        ],
    ]
    for arguments in writes:
        done = read_only(mounted, *arguments, cwd=tmp_path)
        assert done.returncode == 1, (arguments, done.stdout, done.stderr)
        assert done.stderr.startswith("Error: ") and len(done.stderr.splitlines()) == 1, done.stderr
        assert "is read-only: it can be read, not written" in done.stderr, done.stderr
        assert "not a usable SQLite database" not in done.stderr
    assert digest(place / "db") == before
