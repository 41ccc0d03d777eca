"""File helpers: text files that appear complete or not at all, regular files opened to read (never a FIFO
or a device), leftovers of killed writers removed, and SQLite files opened only to read."""

from __future__ import annotations

import io
import os
import re
import secrets
import sqlite3
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from .errors import RefusedError

# temporary_path's names, and the journal files SQLite may leave beside one: (pid) is the writer.
_TEMPORARY = re.compile(r"^\..+\.(\d+)-[0-9a-f]{8}\.tmp(?:-journal|-wal|-shm)?$")
_KINDS = {stat.S_IFIFO: "a FIFO", stat.S_IFCHR: "a device", stat.S_IFBLK: "a device", stat.S_IFDIR: "a folder"}


def temporary_path(path: str | Path) -> Path:
    """A hidden name beside `path` to write it under before it is complete: `.NAME.<pid>-<random>.tmp`.

    Random so that two writers of the same file do not collide; hidden so that a listing never offers
    it; the process id so that a later command can tell a leftover of a killed process from the file
    of one still writing.
    """
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")


def remove_leftovers(folder: str | Path) -> list[Path]:
    """Remove the temporary files in `folder` whose writer is gone (a backup or dump killed half way)
    and return them. A name whose process still runs is left alone; so is anything that cannot be
    removed (a read-only folder): leftovers are untidy, never a reason to fail."""
    removed: list[Path] = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        match = _TEMPORARY.match(name)
        if match is None or _running(int(match.group(1))):
            continue
        path = Path(folder) / name
        try:
            path.unlink()
        except OSError:
            continue
        removed.append(path)
    return removed


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # another user's process (or a number we cannot ask about): not ours to judge
    return True


def open_regular(path: str | Path) -> io.BufferedReader:
    """Open the regular file at `path` to read, as bytes. A FIFO, a device or a folder is refused with one line
    (RefusedError) rather than blocking forever on its open or first read: it is opened without
    blocking and checked through the open descriptor, so the check and the read are of one file."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        kind = stat.S_IFMT(os.fstat(fd).st_mode)
        if kind != stat.S_IFREG:
            raise RefusedError(f"{path} is {_KINDS.get(kind, 'not a regular file')}, not a file to read")
        os.set_blocking(fd, True)
        return open(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


@contextmanager
def atomic_text(path: str | Path) -> Iterator[TextIO]:
    """A text file to write that becomes `path` only when the block ends without an error.

    It is written under a temporary name in the same folder, synced to disk and renamed; on an error
    it is removed and `path` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_path(path)
    try:
        with temporary.open("x", encoding="utf-8", newline="") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def open_read_only(path: str | Path) -> sqlite3.Connection:
    """The SQLite database at `path`, opened only to read and with `immutable=1`: no locks, and no
    -wal or -shm file created beside it, so reading a file that lives elsewhere writes nothing there."""
    return sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro&immutable=1", uri=True)
