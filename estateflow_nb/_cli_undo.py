"""The `estateflow` commands that undo: rollback (by age, dates, industry, import, everything), db
reset, backup, backups and restore. Registered on the group in cli.py."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from ._cli_kit import (
    Group,
    backups_option,
    confirmer,
    db_option,
    dry_run_option,
    json_option,
    show,
    undo_options,
    yes_option,
)
from .backup import backup, list_backups, prune_backups, restore
from .rollback import rollback
from .schema import INDUSTRIES
from .targets import connect, resolve_url


def _rollback(
    db: str | None, yes: bool, dry_run: bool, backups_dir: Path | None, as_json: bool, **strategy: Any
) -> None:
    with connect(db) as target:
        result = rollback(target, **strategy, dry_run=dry_run, yes=yes, confirm=confirmer(), backups_dir=backups_dir)
    show(as_json, result.to_dict(), result.summary())


@click.group("rollback", cls=Group)
def rollback_() -> None:
    """Undo imports: by age, by dates, by industry, one import, or everything.

    Each strategy shows what it will remove, asks (or takes --yes), backs the database up into the
    backups folder, then changes everything in one transaction. Rows that an undone import overwrote
    (--on-conflict update) get their earlier values back.
    """


@rollback_.command("last")
@click.argument("hours", type=click.FloatRange(min=0, min_open=True), default=24, required=False)
@undo_options
def rollback_last(hours: float, **options: Any) -> None:
    """Roll back every import that started in the last HOURS hours (default 24)."""
    _rollback(last_hours=hours, **options)


@rollback_.command("date")
@click.argument("start", metavar="FROM")
@click.argument("end", metavar="TO")
@undo_options
def rollback_date(start: str, end: str, **options: Any) -> None:
    """Roll back the imports that started from FROM to TO, inclusive (UTC dates like 2026-11-01)."""
    _rollback(since=start, until=end, **options)


@rollback_.command("industry", help=f"Roll back the imported rows of industry NAME ({', '.join(INDUSTRIES)}).")
@click.argument("name")
@undo_options
def rollback_industry(name: str, **options: Any) -> None:
    _rollback(industry=name, **options)


@rollback_.command("import")
@click.argument("import_id", metavar="ID")
@undo_options
def rollback_import(import_id: str, **options: Any) -> None:
    """Roll back exactly one import (its id is in `estateflow status`)."""
    _rollback(import_id=import_id, **options)


@rollback_.command("reset")
@undo_options
def rollback_reset(**options: Any) -> None:
    """Empty the database back to the bare schema (a backup is taken first)."""
    _rollback(reset=True, **options)


@click.group("db", cls=Group)
def db_() -> None:
    """Whole-database operations (see also backup, backups and restore)."""


@db_.command("reset")
@undo_options
def db_reset(**options: Any) -> None:
    """Empty the database back to the bare schema (a backup is taken first); same as `rollback reset`."""
    _rollback(reset=True, **options)


@click.command("backup")
@db_option
@click.option("--sql", is_flag=True, help="Also write a plain SQL dump beside the backup.")
@backups_option
@json_option
def backup_(db: str | None, sql: bool, backups_dir: Path | None, as_json: bool) -> None:
    """Back the whole database up into the backups folder (SQLite's online backup API)."""
    began = time.perf_counter()
    with connect(db) as target:
        path = backup(target, backups_dir=backups_dir, sql=sql)
    dump = path.with_suffix(".sql") if sql else None
    data = {"path": str(path), "sql_dump": str(dump) if dump else None, "size_bytes": path.stat().st_size}
    text = f"backed up to {path}" + (f" and {dump}" if dump else "") + f" in {time.perf_counter() - began:.2f} s"
    show(as_json, data, text)


@click.command("backups")
@db_option
@click.option("--all", "every", is_flag=True, help="Every database's backups in the folder, not one database's.")
@click.option("--keep", type=click.IntRange(min=1), help="Delete all but the newest N backups (asks first).")
@yes_option
@dry_run_option
@backups_option
@json_option
def backups_(
    db: str | None, every: bool, keep: int | None, yes: bool, dry_run: bool, backups_dir: Path | None, as_json: bool
) -> None:
    """List a database's backups with size, time and row counts, newest first; --keep N prunes the oldest.

    The database is --db (default as for every command); --all lists (and prunes) the whole folder.
    """
    owner = None if every else resolve_url(db)
    pruned = (
        prune_backups(keep, db=owner, backups_dir=backups_dir, dry_run=dry_run, yes=yes, confirm=confirmer())
        if keep is not None
        else []
    )
    found = list_backups(db=owner, backups_dir=backups_dir)
    lines = [f"{'backup':<64} {'taken (UTC)':<20} {'size':>10} {'rows':>10} {'imports':>8}"]
    for info in found:
        rows = info.error or f"{info.rows:>10,} {info.imports:>8,}"
        lines.append(f"{info.path:<64} {info.taken_at:<20} {info.size_bytes / 1e6:>7,.1f} MB {rows}")
    if not found:
        lines = [f"no backups of {owner} yet" if owner else "no backups yet"]
    others = len(list_backups(backups_dir=backups_dir, counts=False)) - len(found) if owner else 0
    if others:
        lines.append(
            f"({others:,} more in the folder are of other databases, or from before backups named theirs: --all)"
        )
    verb = "would delete" if dry_run else "deleted"
    lines += [f"{verb} {path}" for path in pruned]
    data = {"backups": [info.to_dict() for info in found], "pruned": [str(p) for p in pruned], "dry_run": dry_run}
    show(as_json, data, "\n".join(lines))


@click.command("restore")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path), required=False)
@click.option("--bookmark", help="D1: return the database to this Time Travel bookmark instead of a FILE.")
@click.option("--at", "at", metavar="TIMESTAMP", help="D1: return it to how it was at this UTC time (ISO 8601).")
@undo_options
def restore_(
    file: Path | None,
    bookmark: str | None,
    at: str | None,
    db: str | None,
    yes: bool,
    dry_run: bool,
    backups_dir: Path | None,
    as_json: bool,
) -> None:
    """Replace the database with backup FILE (checked first; the current database is backed up), or
    return a D1 database to a Time Travel --bookmark or --at a time (the output says how to undo it)."""
    if sum(x is not None for x in (file, bookmark, at)) != 1:
        raise click.UsageError("give exactly one of FILE, --bookmark or --at")
    # Time Travel replaces the whole database, whatever it holds now (even nothing of ours).
    with connect(db, schema=file is not None) as target:
        if file is None:
            from .time_travel import restore_bookmark

            done = restore_bookmark(target, bookmark=bookmark, at=at, dry_run=dry_run, yes=yes, confirm=confirmer())
            show(as_json, done.to_dict(), done.summary())
            return
        result = restore(target, file, dry_run=dry_run, yes=yes, confirm=confirmer(), backups_dir=backups_dir)
    show(as_json, result.to_dict(), result.summary())


COMMANDS = (rollback_, db_, backup_, backups_, restore_)
