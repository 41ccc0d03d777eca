"""How a D1 database leaves D1: its export API, as wrangler's `d1 export` uses it.

    POST .../export {"output_format": "polling"}                       -> {at_bookmark, status?, ...}
    POST .../export {"output_format": "polling", "current_bookmark": B}  again, until status "complete"
    GET  result.signed_url                                              the SQL, WITHOUT the token

`at_bookmark` is "the current time-travel bookmark for your D1 ... Will not change for the duration of
the export task": the dump is the database at that bookmark, one consistent snapshot, and it is
recorded in the dump's first line. "An in-progress export must be continually polled or will
automatically cancel", so polls follow each other at once (as wrangler's do) and then every
`POLL_SECONDS`. The signed URL is "available for one hour" and pre-signed: it is fetched by a client
that has no Authorization header, never by the API client.

The file kept is one that loads as it is with `wrangler d1 execute --file`, the sqlite3 shell and
`estateflow import`: D1's own statements, with its leading `PRAGMA defer_foreign_keys=TRUE;` left out
(our tables have no foreign keys) and any NUL character inside text written as `'||char(0)||'`
(a NUL would end the statement for SQLite's parser; D1's dumper writes it raw).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import httpx

from ...errors import AuthError, QuotaExceededError, TargetError, TooLargeError, TransientError
from ._http import D1Api, checked_url

# Polls answered "not yet" before the client starts waiting between them.
QUICK_POLLS = 3
POLL_SECONDS = 1.0
# An export that has not completed after this long is given up (the signed URL lives an hour).
MAX_EXPORT_SECONDS = 3600.0
# How many times an export whose poll is refused (its task gone, see export_sql) is started again.
MAX_RESTARTS = 2

_HEADER = re.compile(r"^-- estateflow: .*? at Time Travel bookmark (\S+)")
_DEFER = b"PRAGMA defer_foreign_keys=TRUE;"


class ExportUnavailable(Exception):
    """D1's export cannot serve this database: the endpoint is not there, or the export failed."""


@dataclass
class CopyNote:
    """How a D1 database left D1 for a backup: through the export API at `bookmark`, or paged out
    through SELECTs (`why`: the export was not available)."""

    how: str  # "export" or "paged"
    bookmark: str | None
    why: str | None = None

    def header(self, url: str) -> str:
        """The dump's first line: a comment that every reader skips."""
        if self.how == "export":
            return f"-- estateflow: D1 export of {url} at Time Travel bookmark {self.bookmark}\n"
        return (
            f"-- estateflow: {url} paged out through SELECTs, not one snapshot if anything wrote meanwhile"
            f" ({self.why}); started at Time Travel bookmark {self.bookmark or 'unknown'}\n"
        )


def dump_bookmark(path: str | Path) -> str | None:
    """The Time Travel bookmark a dump of ours was taken at (its first line says), or None."""
    with open(path, encoding="utf-8", errors="replace") as f:
        match = _HEADER.match(f.readline())
    return match.group(1) if match and match.group(1) != "unknown" else None


def export_sql(
    api: D1Api,
    path: Path,
    url: str,
    *,
    retrying: Callable[[Callable[[], Any]], Any],
    sleep: Callable[[float], None],
    clock: Callable[[], float] = time.monotonic,
) -> CopyNote:
    """Export the database into `path`, each request through `retrying` (the caller's retries);
    ExportUnavailable when D1 cannot (no export endpoint, a failed export, one too big for D1)."""
    body: dict[str, Any] = {"output_format": "polling"}
    began, polls, restarts = clock(), 0, 0
    while True:
        try:
            answer = retrying(partial(api.request, "POST", "/export", body, absent_ok=True))
        except TooLargeError as error:  # "a large import/export" can exceed D1's CPU limit
            raise ExportUnavailable(str(error)) from None
        except (TransientError, AuthError, QuotaExceededError):
            raise
        except TargetError:
            # A poll refused: the export it polls is not there. D1 documents no answer to a poll sent
            # again after the one that completed the export, and a poll whose answer was lost is sent
            # again: so the export starts over, a new snapshot (at most MAX_RESTARTS times).
            if "current_bookmark" not in body or restarts == MAX_RESTARTS:
                raise
            restarts += 1
            body = {"output_format": "polling"}
            continue
        if answer is None:
            raise ExportUnavailable("D1 has no export endpoint there")
        if not isinstance(answer, dict) or not answer.get("at_bookmark"):
            raise TargetError("D1's export answered without an at_bookmark")
        if answer.get("status") == "error" or answer.get("success") is False:
            raise ExportUnavailable(f"D1's export failed: {answer.get('error') or 'no reason given'}")
        if answer.get("status") == "complete":
            break
        body = {"output_format": "polling", "current_bookmark": answer["at_bookmark"]}
        polls += 1
        if clock() - began > MAX_EXPORT_SECONDS:
            raise TargetError(f"D1's export did not complete in {MAX_EXPORT_SECONDS / 60:.0f} minutes")
        if polls > QUICK_POLLS:
            sleep(POLL_SECONDS)
    signed = (answer.get("result") or {}).get("signed_url")
    if not isinstance(signed, str):
        raise TargetError("D1's export completed without a signed_url")
    note = CopyNote("export", answer["at_bookmark"])
    retrying(lambda: download(api, signed, path, note.header(url)))
    return note


def download(api: D1Api, signed_url: str, path: Path, header: str) -> None:
    """Fetch the pre-signed URL into `path`, behind `header`, without credentials. The URL itself is a
    credential for an hour: it appears in no message."""
    checked_url(signed_url, "D1's export URL")
    try:
        with api.plain_client() as client, client.stream("GET", signed_url) as response:
            if response.status_code != 200:
                fault = TransientError if response.status_code >= 500 else TargetError
                raise fault(f"downloading D1's export failed: HTTP {response.status_code}")
            with open(path, "wb") as out:
                out.write(header.encode())
                _copy(response, out)
    except httpx.TransportError as error:
        raise TransientError(f"downloading D1's export failed ({type(error).__name__})") from None


def _copy(response: httpx.Response, out: Any) -> None:
    chunks = response.iter_bytes()
    head = b""
    for chunk in chunks:  # enough of the start to see whether it is D1's PRAGMA line
        head += chunk
        if len(head) > len(_DEFER) + 2:
            break
    if head.startswith(_DEFER):
        head = head[len(_DEFER) :].lstrip(b"\r\n")
    out.write(_without_nul(head))
    for chunk in chunks:
        out.write(_without_nul(chunk))


def _without_nul(data: bytes) -> bytes:
    # UTF-8 never uses the byte 0 but for NUL itself, and D1's dumper writes NUL only inside text.
    return data.replace(b"\x00", b"'||char(0)||'")
