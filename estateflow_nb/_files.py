"""Files that appear complete or not at all."""

from __future__ import annotations

import os
import secrets
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
