"""File helpers: text files that appear complete or not at all, and SQLite files opened only to read."""

from __future__ import annotations

import os
import secrets
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO


@contextmanager
def atomic_text(path: str | Path) -> Iterator[TextIO]:
    """A text file to write that becomes `path` only when the block ends without an error.

    It is written under a temporary name in the same folder, synced to disk and renamed; on an error
    it is removed and `path` is left as it was. Random only in the temporary name, so that two
    writers of the same file do not collide; hidden, so that a listing of data/ never offers it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
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
