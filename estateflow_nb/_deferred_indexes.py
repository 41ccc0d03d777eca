"""Deferred index builds: a big import drops the secondary indexes, loads, and builds them at the end.

SQLite builds an index from the finished table (one sort) far faster than it keeps it up row by row:
500,000 rows load in 4.8 s with only the unique license index against 7.7 s into the fully indexed
table, index builds included. So an import that brings at least as many records as the table holds,
and at least `DEFER_MIN_RECORDS`, drops the indexes of `schema.INDEX_STATEMENTS` first. The UNIQUE
license index stays: the conflict rules and the idempotent writes stand on it.

Crash safety: the drop and the ledger's note of it (`ef_imports.deferred_indexes`) commit together;
the builds and the clearing of the note commit together with the import's completion. A run killed in
between leaves the note and the missing indexes. `restore(target)`, which `connect()` runs before any
command uses the database, builds every missing index unless a live run has them deferred (a reader
during the load gets correct answers, only slower); the resumed import then decides again, for the
records it has left, whether to defer.

Only targets without a per-request time limit defer: on D1 one request must build each index, and a
big table's index may not fit in its 30 seconds.
"""

from __future__ import annotations

import contextlib
import json

from . import _claims
from .errors import TargetError
from .schema import INDEX_STATEMENTS
from .targets import Sql, Target
from .targets._sqlite import CACHE_SIZE_PRAGMA

DEFER_MIN_RECORDS = 50_000
# SQLite sorts an index's keys in runs as big as the page cache, then merges them: runs of the default
# 2 MiB, which fit the CPU's caches, built 500,000 rows' seven indexes in 2.1 s where a
# 16 MiB cache took 2.7 s. So the builds run with the default cache and give the connection its own back.
_BUILD_CACHE_PRAGMA = "PRAGMA cache_size=-2000"
# An import that keeps the indexes up writes at the end of every city's, industry's, state's and license
# prefix's run in them, all over each index: appending 100,000 records to 500,000 rows touched more pages
# than 16 MiB holds, so they were written out and read back again and again (78,000 writes and 66,000
# reads of pages, against 38,000 and 25,000 in 32 MiB and 35,000 and 23,000 in 48 MiB; strace -c). Such
# an import writes with 32 MiB and gives the connection its own back when it ends. (An import into a new
# database defers the indexes and keeps 16 MiB: its peak memory is issue 11's goal.)
KEPT_CACHE_PRAGMA = "PRAGMA cache_size=-32768"


def worth_deferring(target: Target, records: int) -> bool:
    """Whether an import of `records` more records into `target` loads faster without the indexes."""
    if target.limits.max_query_seconds is not None or records < DEFER_MIN_RECORDS:
        return False
    return records >= int(target.scalar("SELECT COUNT(*) FROM professionals"))


def _raises_cache(target: Target, deferred: bool) -> bool:
    # A pragma of the connection: D1's requests have none.
    return not deferred and target.limits.max_query_seconds is None


def raise_cache(target: Target, deferred: bool) -> None:
    """Give an import that keeps the indexes of a local database up its larger page cache."""
    if _raises_cache(target, deferred):
        target.query(KEPT_CACHE_PRAGMA)  # no transaction: it takes no lock


def lower_cache(target: Target, deferred: bool) -> None:
    """Give the connection of that import its own page cache back. A connection that fails now (closed
    under the import) raises nothing here: the error that stopped the import is the one to see."""
    if _raises_cache(target, deferred):
        with contextlib.suppress(TargetError):
            target.query(CACHE_SIZE_PRAGMA)


def defer(import_id: str, claim: str) -> list[Sql]:
    """Drop the secondary indexes and note it in the import's ledger row, in one transaction."""
    names = list(INDEX_STATEMENTS)
    return [
        *(Sql(f"DROP INDEX IF EXISTS {name}") for name in names),
        Sql(
            "UPDATE ef_imports SET deferred_indexes = ? WHERE id = ? AND claim = ?",
            (json.dumps(names), import_id, claim),
        ),
    ]


def builds() -> list[Sql]:
    """Build every missing secondary index (each statement leaves an index that is there alone)."""
    creates = [Sql(statement) for statement in INDEX_STATEMENTS.values()]
    return [Sql(_BUILD_CACHE_PRAGMA), *creates, Sql(CACHE_SIZE_PRAGMA)]


def rebuild() -> list[Sql]:
    """Build every missing secondary index and clear every note of deferred ones."""
    return [*builds(), Sql("UPDATE ef_imports SET deferred_indexes = NULL WHERE deferred_indexes IS NOT NULL")]


def missing(target: Target) -> list[str]:
    """The secondary indexes that `target` lacks."""
    present = {r["name"] for r in target.query("SELECT name FROM sqlite_master WHERE type = 'index'")}
    return [name for name in INDEX_STATEMENTS if name not in present]


def restore(target: Target) -> None:
    """Build the missing secondary indexes of `target`, unless a live import has them deferred.

    Reads only, when nothing is missing (a reader takes no write lock). Where the build cannot be
    written (a read-only file, a database another writer holds past the busy timeout) the database
    stays as it is: its queries are right without the indexes, only slower, and the next command tries
    again.
    """
    if target.limits.max_query_seconds is not None or not missing(target):
        return
    deferring = target.query(
        "SELECT claim, claim_owner, heartbeat_at FROM ef_imports"
        " WHERE deferred_indexes IS NOT NULL AND status = 'running'"
    )
    if any(not _claims.is_stale(r["claim"], r["claim_owner"], r["heartbeat_at"]) for r in deferring):
        return
    with contextlib.suppress(TargetError):
        target.execute(rebuild())
