"""Every error the toolkit raises on purpose, in one tree.

    EstateFlowError            anything below; the CLI prints it as one line, never a traceback
    ├── SourceError            a file cannot be read: format, unknown columns, bad syntax
    │   └── UnsafeDumpError    a SQL dump tries something other than creating tables and inserting rows (*)
    ├── RefusedError           an argument or a path refused before anything was done (*)
    ├── SourceChangedError     an unfinished import's file changed since; it will not be resumed into
    ├── ConfirmationRequired   a rung (or a destructive step) needs --yes or --force
    ├── ImportFailedError      an import stopped; its ledger row is `failed` and it can be resumed
    ├── BackupError            a backup cannot be taken, or a file to restore is not a sound EstateFlow database
    │   └── UnsafeBackupError  a file to restore (or listed) is not exactly an EstateFlow database (*)
    └── TargetError            the database refused or failed
        ├── NoDatabaseError    nothing to open there: only import and ladder create a database
        ├── TransientError     worth retrying: locked, overloaded, network, HTTP 429/5xx
        ├── TooLargeError      the request was too big to finish in time: send the same work in smaller parts
        ├── ConflictError      a license number already exists and on_conflict="fail"
        ├── QuotaExceededError a daily write quota is used up; resume after it resets
        ├── AuthError          the credentials were refused
        └── SqlError           the SQL itself is wrong: a bug, nothing was written by it

Exit codes follow the kind (`exit_code`): 2 for input refused before anything was done (the kinds marked
(*) and ConfirmationRequired), 1 for an operation that failed.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

from ._time import utc_now


class EstateFlowError(Exception):
    """Base class: an error with a message fit to show a user as it is."""

    exit_code = 1  # what the command line exits with: 1 a failed operation, 2 refused input


class SourceError(EstateFlowError):
    """A source file cannot be read as records."""


class RefusedError(EstateFlowError):
    """Input refused before anything was done: an argument out of range, a path that is not a regular file."""

    exit_code = 2


class UnsafeDumpError(SourceError, RefusedError):
    """A SQL dump contains something other than plain CREATE TABLE and INSERT ... VALUES of literals."""


class SourceChangedError(EstateFlowError):
    """The file of an unfinished import changed (different SHA-256)."""


class ConfirmationRequired(EstateFlowError):
    """The step is refused until the user confirms (names the flag that confirms)."""

    exit_code = 2

    def __init__(self, message: str, flag: str) -> None:
        super().__init__(message)
        self.flag = flag


class ImportFailedError(EstateFlowError):
    """An import stopped part way; `result` holds what it did, `__cause__` why it stopped."""

    def __init__(self, message: str, result: Any) -> None:
        super().__init__(message)
        self.result = result  # the importer's ImportResult


class BackupError(EstateFlowError):
    """A backup could not be written, or a file offered for restore is damaged, not SQLite or not ours."""


class UnsafeBackupError(BackupError, RefusedError):
    """A file offered for restore is not exactly an EstateFlow database: not SQLite, damaged, or holding
    objects of its own (triggers, views, other tables); refused before its data was read."""


class TargetError(EstateFlowError):
    """The target database refused a statement or could not be reached."""


class NoDatabaseError(TargetError):
    """There is no database (or none of ours) where one was to be read: nothing was created."""


class TransientError(TargetError):
    """A fault that may pass: retry after `retry_after` seconds if the server said so."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TooLargeError(TargetError):
    """The target gave up on a request because of its size (HTTP 413; D1's storage timeout reset, its
    CPU or memory limit): the documented fix is smaller requests, not the same one again."""


class ConflictError(TargetError):
    """A record's license number is already in the table and on_conflict="fail"."""


class QuotaExceededError(TargetError):
    """The daily row-write quota is exhausted."""


def until_reset(now: datetime | None = None) -> str:
    """When D1's daily quotas reset (00:00 UTC), for messages: 'at 00:00 UTC (in 5 h 12 min)'."""
    now = (now or utc_now()).astimezone(UTC)
    reset = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    minutes = math.ceil((reset - now).total_seconds() / 60)
    return f"at 00:00 UTC (in {minutes // 60} h {minutes % 60} min)"


class AuthError(TargetError):
    """The target refused the credentials."""


class SqlError(TargetError):
    """The statement itself is wrong; retrying will not help."""
