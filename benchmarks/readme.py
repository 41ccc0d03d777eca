"""Where benchmarks put their numbers: a marked block of README.md, replaced on every run."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def write_readme(name: str, text: str) -> None:
    """Replace the block between `<!-- bench:NAME -->` and `<!-- /bench:NAME -->` (appended if absent)."""
    content = README.read_text(encoding="utf-8")
    block = f"<!-- bench:{name} -->\n{text}\n<!-- /bench:{name} -->"
    pattern = re.compile(rf"<!-- bench:{name} -->.*?<!-- /bench:{name} -->", re.S)
    README.write_text(pattern.sub(lambda _: block, content) if pattern.search(content) else f"{content}\n{block}\n")
