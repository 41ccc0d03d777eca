"""Cloudflare D1 as a target: statements as one batch request, queries, size, bookmarks, backups,
Time Travel restores.

    d1://ACCOUNT_ID/DATABASE_ID     (either part may be left empty and come from the environment)

`execute` sends all its statements as one `{"batch": [...]}` request to `/query` (`_sql` says how
values and rows are written into it). Cloudflare documents batches as transactions for the Workers
binding only; for the REST API the schema says "a batch query object" and nothing more, so callers
do not count on all-or-nothing: the importer's writes are idempotent and its counts come from the
rows. What D1 says the statements took (`meta.timings.sql_duration_ms`, else `meta.duration`, in ms)
comes back as `ExecuteResult.server_seconds`, for the caller to size the next request well inside
the 30 seconds every API request must resolve in. Queries go to `/raw`, whose rows come as arrays
beside their column names, in order.

Writes are not retried here: a request that timed out may have been applied, and only the caller
knows whether replaying it is safe (the importer's batches are). Reads are retried here, since
reading twice is harmless; so are the export's requests (`_export`).
"""

from __future__ import annotations

import os
import re
import sqlite3
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TypeVar

import httpx

from ... import _retry
from ..._files import temporary_path
from ..._retry import with_retries
from ...errors import TargetError
from ...schema import SCHEMA_VERSION_DDL
from .._base import BookmarkRestore, ExecuteResult, Limits, Sql, Statement, Target
from ._dump import dump_sql, load_dump
from ._export import CopyNote, ExportUnavailable, export_sql
from ._http import ACCOUNT_ENV, DATABASE_ENV, TOKEN_ENV, D1Api
from ._pacer import Pacer
from ._sql import MAX_PARAMS, MAX_SQL_BYTES, compile_batch, item, render, render_rows

T = TypeVar("T")

MAX_QUERY_SECONDS = 30.0
READ_ATTEMPTS = 4
READ_RETRY_BASE_SECONDS = 0.5

_TIME_TRAVEL_REFUSAL = (
    "restoring a D1 database from a file is not supported: return it to a Time Travel bookmark with"
    " `estateflow restore --db {url} --bookmark BOOKMARK` (or `--at TIMESTAMP`); `estateflow status`"
    " shows the bookmark taken before the last rollback"
)


def parse_url(url: str, environ: dict[str, str] | None = None) -> tuple[str, str]:
    """(account id, database id) of `d1://ACCOUNT/DATABASE`, empty parts filled from the environment."""
    env = os.environ if environ is None else environ
    if not url.startswith("d1://"):
        raise TargetError(f"not a D1 URL: {url!r}; expected d1://ACCOUNT_ID/DATABASE_ID")
    account, _, database = url.removeprefix("d1://").partition("/")
    account = account or env.get(ACCOUNT_ENV, "")
    database = database.strip("/") or env.get(DATABASE_ENV, "")
    if not account or not database:
        raise TargetError(
            f"bad D1 URL {url!r}: expected d1://ACCOUNT_ID/DATABASE_ID (or set {ACCOUNT_ENV} and {DATABASE_ENV})"
        )
    if "/" in database or not re.fullmatch(r"[\w.-]+", account + database):
        raise TargetError(f"bad D1 URL {url!r}: account and database are IDs like 0123abcd..., without '/'")
    return account, database


class D1Target(Target):
    kind: Literal["d1"] = "d1"
    limits = Limits(
        max_params=MAX_PARAMS,
        max_sql_bytes=MAX_SQL_BYTES,
        max_query_seconds=MAX_QUERY_SECONDS,
        round_trips=True,
        row_renderer=f"{render_rows.__module__}:{render_rows.__name__}",
    )

    def __init__(
        self,
        account_id: str,
        database_id: str,
        *,
        token: str,
        base_url: str | None = None,
        transport: httpx.BaseTransport | None = None,
        pacer: Pacer | None = None,
        timeout: float = 120.0,
        read_attempts: int = READ_ATTEMPTS,
        sleep: Callable[[float], None] | None = None,
        ensure_schema: bool = False,
        create: bool = False,
    ) -> None:
        """`sleep` waits between the attempts of a read (default: `_retry.SLEEP`; tests pass one that records).
        `ensure_schema` brings the schema up to date (as `connect()` does), creating it if `create`."""
        self.api = D1Api(
            account_id, database_id, token=token, base_url=base_url, transport=transport, pacer=pacer, timeout=timeout
        )
        self.account_id, self.database_id = account_id, database_id
        self.url = f"d1://{account_id}/{database_id}"
        self.base_url = self.api.base_url
        self.read_attempts = read_attempts
        self._sleep = sleep
        self.last_copy: CopyNote | None = None  # how the last backup left D1
        if ensure_schema:
            from ..._migrations import ensure_schema as bring_up_to_date

            bring_up_to_date(self, create=create)

    def schema_version(self) -> int | None:
        found = {
            row["name"]
            for row in self.query(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ('ef_schema', 'professionals')"
            )
        }
        if "ef_schema" in found:
            return int(self.scalar("SELECT MAX(version) FROM ef_schema") or 0)
        return 0 if "professionals" in found else None

    def migrate(self, statements: Sequence[Sql], version: int) -> None:
        # D1 has no PRAGMA user_version; the number lives in a table of its own, written last, so a
        # migration that stopped part way is found unfinished and planned again from what it left.
        self.execute(
            [
                *statements,
                Sql(SCHEMA_VERSION_DDL),
                Sql("DELETE FROM ef_schema"),
                Sql("INSERT INTO ef_schema (version) VALUES (?)", (version,)),
            ]
        )

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> D1Target:
        """A target for `d1://ACCOUNT/DATABASE`, with the token from CLOUDFLARE_API_TOKEN."""
        account, database = parse_url(url)
        return cls(account, database, token=os.environ.get(TOKEN_ENV, ""), **kwargs)

    @property
    def requests(self) -> int:
        """HTTP requests sent so far, for benchmarks and tests."""
        return self.api.requests

    def _read(self, method: str, path: str, body: Any = None, params: dict[str, str] | None = None) -> Any:
        """A request that is safe to repeat, retried with backoff while the fault is transient."""
        return self._retrying(lambda: self.api.request(method, path, body, params))

    def execute(
        self, statements: Sequence[Statement], *, before_commit: Callable[[], None] | None = None
    ) -> ExecuteResult:
        """Send `statements` as one batch request (which Cloudflare does not promise to apply whole).

        D1 cannot pause between the last statement and the commit, so `before_commit` runs just
        before the request is sent: what it interrupts has not been applied.
        """
        items, owners = compile_batch(statements)
        if before_commit is not None:
            before_commit()
        if not items:
            return ExecuteResult(changes=[0] * len(owners))
        results = self.api.request("POST", "/query", {"batch": items})
        if not isinstance(results, list) or len(results) != len(items):
            raise TargetError(f"D1 answered {len(results or ())} results for {len(items)} statements")
        metas = [r.get("meta") or {} for r in results]
        return ExecuteResult(
            changes=[sum(int(metas[i].get("changes") or 0) for i in own) for own in owners],
            rows_written=sum(int(m.get("rows_written") or 0) for m in metas),
            server_seconds=server_seconds(metas),
            # A statement of one item (every Sql) returns that item's rows; a packed insert none.
            rows=[_rows_of(results[own[0]]) if len(own) == 1 else [] for own in owners],
        )

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        text, bound = render(sql, params, changes="0")
        results = self._read("POST", "/raw", item(text, bound))
        table = (results[-1].get("results") if results else None) or {}
        columns = table.get("columns") or []
        return [dict(zip(columns, row, strict=True)) for row in table.get("rows") or ()]

    def size_bytes(self) -> int | None:
        """The database's size as Cloudflare reports it (`file_size`)."""
        details = self._read("GET", "")
        size = details.get("file_size") if isinstance(details, dict) else None
        return int(size) if size is not None else None

    def bookmark(self, at: datetime | None = None) -> str | None:
        """D1's Time Travel bookmark for now (or the nearest one at or before `at`): restoring to it
        undoes everything after. Record it before a destructive step."""
        params = None
        if at is not None:  # to the millisecond: a second's rounding could name the moment before a write
            moment = at if at.tzinfo else at.replace(tzinfo=UTC)
            params = {"timestamp": moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")}
        result = self._read("GET", "/time_travel/bookmark", params=params)
        return result.get("bookmark") if isinstance(result, dict) else None

    def restore_to_bookmark(self, bookmark: str) -> BookmarkRestore:
        """Return the database to `bookmark` in one step (POST /time_travel/restore?bookmark=...).

        Sent once, never retried: a restore whose answer was lost may have happened, and D1's answer is
        the only place its previous_bookmark (the way back) is given.
        """
        result = self.api.request("POST", "/time_travel/restore", params={"bookmark": bookmark})
        if not isinstance(result, dict) or not result.get("previous_bookmark"):
            raise TargetError("D1 restored without saying the previous bookmark (the way back)")
        return BookmarkRestore(
            bookmark=str(result.get("bookmark") or ""),
            previous_bookmark=str(result["previous_bookmark"]),
            message=str(result.get("message") or ""),
        )

    def close(self) -> None:
        self.api.close()

    # -- backups ------------------------------------------------------------------------------------

    def dump_sql(self, path: str | Path) -> Path:
        """Write the whole database to `path` as a SQL dump: through D1's export API (one snapshot, at
        the bookmark `last_copy` records), or paged out through SELECTs where export is not available."""
        path = Path(path)
        try:
            self.last_copy = export_sql(self.api, path, self.url, retrying=self._retrying, sleep=self._wait)
        except ExportUnavailable as why:
            path.unlink(missing_ok=True)
            self.last_copy = CopyNote("paged", self._bookmark_or_none(), why=str(why))
            dump_sql(self.query, path, self.last_copy.header(self.url))
        return path

    def page_sql(self, path: str | Path) -> Path:
        """The fallback on its own: every table paged out through SELECTs into `path`."""
        return dump_sql(self.query, path)

    def copy_into(self, connection: sqlite3.Connection, scratch_folder: Path) -> Path:
        """A D1 database leaves D1 as a SQL dump (in `scratch_folder`), replayed into `connection`."""
        dump = temporary_path(scratch_folder / "d1-dump.sql")
        try:
            self.dump_sql(dump)
            load_dump(dump, connection)
        except BaseException:
            dump.unlink(missing_ok=True)
            raise
        return dump

    def replace_refusal(self) -> str:
        return _TIME_TRAVEL_REFUSAL.format(url=self.url)

    def _retrying(self, call: Callable[[], T]) -> T:
        """`call` retried as reads are: the export's requests are safe to repeat (a second start only
        begins another export, polls change nothing, the signed URL serves the same file for an hour)."""
        return with_retries(call, attempts=self.read_attempts, base_seconds=READ_RETRY_BASE_SECONDS, sleep=self._sleep)

    def _wait(self, seconds: float) -> None:
        (self._sleep or _retry.SLEEP)(seconds)

    def _bookmark_or_none(self) -> str | None:
        try:
            return self.bookmark()
        except TargetError:
            return None


def _rows_of(result: Any) -> list[dict[str, Any]]:
    rows = result.get("results") if isinstance(result, dict) else None
    return [dict(r) for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []


def server_seconds(metas: Sequence[dict[str, Any]]) -> float | None:
    """What D1 says its statements took, in seconds: `timings.sql_duration_ms` where given, else
    `duration` (both "the duration of the SQL query execution inside the database", in ms, without
    network); None when D1 gave neither."""
    total, said = 0.0, False
    for meta in metas:
        timings = meta.get("timings")
        value = timings.get("sql_duration_ms") if isinstance(timings, dict) else None
        if value is None:
            value = meta.get("duration")
        if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
            total += float(value)
            said = True
    return total / 1000 if said else None
