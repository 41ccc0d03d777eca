"""Times and ids: the one place that formats a UTC moment or mints an id.

The ledger writes times as `2026-11-28T10:42:33Z` (whole seconds, UTC): text that sorts in time
order, so windows of imports are selected with plain string comparisons on both targets. File names
and ids use the compact form `20261128T104233Z`, which has no colon (not allowed in Windows names).
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

LEDGER_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
COMPACT_FORMAT = "%Y%m%dT%H%M%SZ"
DISPLAY_FORMAT = "%Y-%m-%d %H:%M:%S UTC"


def utc_now() -> datetime:
    return datetime.now(UTC)


def ledger_time(moment: datetime | None = None) -> str:
    """`moment` (default now) as the ledger writes it; a naive moment is taken as UTC."""
    moment = moment or utc_now()
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime(LEDGER_FORMAT)


def compact_time(moment: datetime | None = None) -> str:
    """`moment` (default now) for a file name or an id."""
    return (moment or utc_now()).astimezone(UTC).strftime(COMPACT_FORMAT)


def display_time(moment: datetime | None = None) -> str:
    """`moment` (default now) for a person: `2026-11-28 10:42:33 UTC`."""
    return (moment or utc_now()).astimezone(UTC).strftime(DISPLAY_FORMAT)


def parse_time(text: str) -> datetime:
    """A time the ledger or a file name wrote (either form), as an aware UTC datetime."""
    for form in (LEDGER_FORMAT, COMPACT_FORMAT):
        try:
            return datetime.strptime(text, form).replace(tzinfo=UTC)
        except ValueError:
            pass
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def new_id(prefix: str) -> str:
    """A new id such as `imp-20261128T104233Z-3fa2c1`: sortable by time, unique by its random tail."""
    return f"{prefix}-{compact_time()}-{secrets.token_hex(3)}"
