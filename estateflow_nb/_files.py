"""File helpers: text files that appear complete or not at all, and SQLite files opened only to read."""

from __future__ import annotations

import os
import secrets
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO


def temporary_path(path: str | Path) -> Path:
    """A hidden name beside `path` to write it under before it is complete: `.NAME.<pid>-<random>.tmp`.

    Random so that two writers of the same file do not collide; hidden so that a listing never offers
    it; the process id so that a later command can tell a leftover of a killed process from the file
    of one still writing.
    """
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")


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
