"""The progressive ladder's rungs: batch size and safety rule by the number of records in a file.

From the tool this replaces: under 100 records is a test, then small, medium, large (needs a
confirmation) and extra large (needs --force). The same rules guard `import_file` unless the caller
chooses a batch size, which is taken as knowing what they are doing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ._confirm import Confirm, require_confirmation
from .errors import ConfirmationRequired


@dataclass(frozen=True)
class Rung:
    name: str
    min_records: int
    batch_size: int
    # The old tool's targets in records/second; the test rung only proves the pipeline works.
    target_rate: float | None
    # None, "confirm" (an interactive yes or --yes) or "force" (--force only).
    needs: Literal["confirm", "force"] | None


RUNGS = (
    Rung("test", 0, 10, None, None),
    Rung("small", 100, 100, 50.0, None),
    Rung("medium", 1_000, 1_000, 75.0, None),
    Rung("large", 10_000, 10_000, 100.0, "confirm"),
    Rung("extra_large", 100_000, 10_000, 100.0, "force"),
)

# The generated ladder's files, one per rung below extra large, each record numbered after the last
# file's (see generate.write_ladder).
LADDER_FILES: tuple[tuple[str, int], ...] = (
    ("test-10.sql", 10),
    ("small-100.sql", 100),
    ("medium-1000.sql", 1000),
    ("large-10000.sql", 10000),
)


def rung_for(records: int) -> Rung:
    """The rung a file of `records` records belongs to."""
    return [r for r in RUNGS if records >= r.min_records][-1]


def check_confirmation(
    rung: Rung,
    records: int,
    *,
    yes: bool = False,
    force: bool = False,
    confirm: Confirm | None = None,
) -> None:
    """Raise ConfirmationRequired unless the rung's safety rule is met.

    `confirm`, when given, asks a person (a terminal prompt, a widget); it is only consulted for
    rungs that an interactive yes may pass. Extra large imports take --force and nothing less.
    """
    if rung.needs is None or force:
        return
    if rung.needs == "force":
        raise ConfirmationRequired(
            f"{records:,} records is an extra large import: pass --force to run it", flag="--force"
        )
    large = f"{records:,} records is a large import"
    require_confirmation(f"{large}. Go ahead?", large, yes=yes, confirm=confirm)
