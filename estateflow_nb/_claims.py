"""Claims: which run holds an import (or a rollback) while it writes, and whether that run is still alive.

A run writes its own random id (`claim`) into the ledger row it works on, with who it is
(`claim_owner`: host, process id and the process's start time) and when it last wrote
(`heartbeat_at`). Every request it sends starts with `guard(...)`, a statement that fails unless the
row still exists and still carries its claim, so a run that lost its row (rolled back, reset,
restored) or its claim (taken over) writes nothing more.

A second run may take a claim over only when the first is gone, which it judges without any lock the
database would have to offer (D1 has none):

- the owner is on this host: gone when its process no longer exists (or is another process by now,
  or a zombie), so a run killed with SIGKILL is resumable at once;
- the owner is this very process: gone when no run of this process holds that claim now (a
  notebook's kernel that was interrupted);
- the owner is elsewhere: gone when it has not written for `LEASE_SECONDS`.

Taking over is a compare-and-swap on the claim the second run saw, so of two runs that judge the same
stale claim, one wins.
"""

from __future__ import annotations

import os
import socket
from datetime import timedelta
from pathlib import Path

from ._time import ledger_time, new_id, parse_time, utc_now
from .targets import Sql

# A run writes at least once per request, and a request lasts at most D1's 30 s; retries, pacing and
# --delay add waits. Ten minutes without a write from another host means the run is gone.
LEASE_SECONDS = 600

_HELD: set[str] = set()  # claims held by runs of this process


def _host() -> str:
    """This machine: its name and the kernel's boot id (a reboot ends every process)."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()[:8]
    except OSError:
        boot = ""
    return f"{socket.gethostname()}/{boot}" if boot else socket.gethostname()


def _started(pid: int) -> str | None:
    """When process `pid` started (clock ticks since boot), None where /proc cannot say; '' if it is
    a zombie or gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return ""
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return "" if fields[0] in ("Z", "X") else fields[19]


def owner() -> str:
    """Who this process is, as a claim records it: `host pid start`."""
    return f"{_host()} {os.getpid()} {_started(os.getpid()) or '-'}"


def take() -> str:
    """A new claim, held by this process until `release`."""
    claim = new_id("run")
    _HELD.add(claim)
    return claim


def release(claim: str) -> None:
    _HELD.discard(claim)


def _alive_here(pid: int, started: str) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # someone else's process, but it exists
    now = _started(pid)
    return now is None or (now != "" and (started in ("-", now)))


def is_stale(claim: str | None, claim_owner: str | None, heartbeat_at: str | None) -> bool:
    """Whether the run that holds `claim` is gone (see the module's docstring)."""
    if not claim or not claim_owner or claim_owner.count(" ") < 2:
        return True
    host, pid, started = claim_owner.rsplit(" ", 2)
    if host == _host() and pid.isdigit():
        if int(pid) == os.getpid():
            return claim not in _HELD
        return not _alive_here(int(pid), started)
    if not heartbeat_at:
        return True
    return parse_time(heartbeat_at) < utc_now() - timedelta(seconds=LEASE_SECONDS)


def describe(claim_owner: str | None, heartbeat_at: str | None) -> str:
    """The holder of a claim, for a person: 'process 123 on host h, last write 2026-11-28T10:42:33Z'."""
    if not claim_owner or claim_owner.count(" ") < 2:
        return f"another run, last write {heartbeat_at or 'unknown'}"
    host, pid, _ = claim_owner.rsplit(" ", 2)
    return f"process {pid} on {host.split('/')[0]}, last write {heartbeat_at or 'unknown'}"


def free_after(heartbeat_at: str | None) -> str:
    """When a claim from another host lapses, as ledger time."""
    last = parse_time(heartbeat_at) if heartbeat_at else utc_now()
    return ledger_time(last + timedelta(seconds=LEASE_SECONDS))


def guard(table: str, key: str, row_id: str, claim: str, condition: str) -> Sql:
    """A statement that fails (the NOT NULL constraint of `table`.`key`) unless the row `row_id` of
    `table` exists, carries `claim` and meets `condition`: what every request of a run sends first.
    (SQL has no RAISE outside triggers; an insert that breaks a constraint is the portable way to
    stop a batch, and it writes nothing when the row is as it should be.)"""
    return Sql(
        f"INSERT INTO {table} (id, {key}) SELECT NULL, NULL WHERE NOT EXISTS"
        f" (SELECT 1 FROM {table} WHERE id = ? AND claim = ? AND {condition})",
        (row_id, claim),
    )
