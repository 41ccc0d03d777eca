"""Cloudflare D1 as a target, over Cloudflare's REST API with httpx.

    d1://ACCOUNT_ID/DATABASE_ID     (either part may be left empty and come from the environment)

The API token comes from `CLOUDFLARE_API_TOKEN` and from nowhere else; the account and database may
also come from `CLOUDFLARE_ACCOUNT_ID` and `D1_DATABASE_ID`. The pieces, as httpx keeps its
transports apart from its client:

- `target`: `D1Target`, the `Target` itself: statements, queries, bookmarks, backups. Thin.
- `_sql`: values as exact SQL literals, parameters rendered into SQL, `InsertRows` packed to D1's limits.
- `_http`: the REST client: requests, Cloudflare's envelopes, error classification, the token.
- `_pacer`: one request budget per user, shared by all their processes through a file.
- `_export`: a D1 database out through D1's export API (polling, a pre-signed URL).
- `_dump`: the fallback, paged out through SELECTs, and any dump replayed into a local SQLite file.
"""

from ._dump import DUMP_PAGE_ROWS, load_dump
from ._export import CopyNote, dump_bookmark
from ._http import (
    ACCOUNT_ENV,
    BASE_URL_ENV,
    DATABASE_ENV,
    DEFAULT_BASE_URL,
    RATE_ENV,
    TOKEN_ENV,
    checked_url,
    classify,
)
from ._pacer import CACHE_ENV, RatePacer, SharedPacer, cache_folder, state_path
from ._sql import MAX_PARAMS, MAX_SQL_BYTES, MAX_VALUES_TERMS, pack_insert, render, sql_literal
from .target import MAX_QUERY_SECONDS, D1Target, parse_url, server_seconds

__all__ = [
    "ACCOUNT_ENV",
    "BASE_URL_ENV",
    "CACHE_ENV",
    "DATABASE_ENV",
    "DEFAULT_BASE_URL",
    "DUMP_PAGE_ROWS",
    "MAX_PARAMS",
    "MAX_QUERY_SECONDS",
    "MAX_SQL_BYTES",
    "MAX_VALUES_TERMS",
    "RATE_ENV",
    "TOKEN_ENV",
    "CopyNote",
    "D1Target",
    "RatePacer",
    "SharedPacer",
    "cache_folder",
    "checked_url",
    "classify",
    "dump_bookmark",
    "load_dump",
    "pack_insert",
    "parse_url",
    "render",
    "server_seconds",
    "sql_literal",
    "state_path",
]
