"""The `estateflow` command: a thin click layer over the engine.

Every command parses its options, calls one engine function and prints what comes back. Errors the
user can cause arrive as EstateFlowError and leave as one line on stderr: exit code 2 when a
confirmation is missing (nothing was done), 1 otherwise.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from . import __version__
from ._climb_text import rung_line
from ._rejected import DEFAULT_MAX_REJECT_RATE
from .backup import backup, list_backups, prune_backups, restore
from .errors import ConfirmationRequired, EstateFlowError, ImportFailedError
from .generate import write_ladder, write_records
from .importer import BatchMetrics, ImportOptions, import_file
from .ladder import RungResult, import_verdict, rejected_share, run_ladder
from .reports import REPORTS
from .rollback import rollback
from .schema import INDUSTRIES, ON_CONFLICT, OnConflict
from .status import status
from .targets import connect, resolve_url
from .verify import verify


class _Group(click.Group):
    """Turns the engine's errors, and arguments click refuses, into one-line messages and exit codes
    (the error's `exit_code`: 2 for refused input, 1 for a failed operation)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ConfirmationRequired as error:
            click.echo(f"Refused: {error}", err=True)
            ctx.exit(2)
        except ImportFailedError as error:
            if ctx.meta.get("json"):
                click.echo(json.dumps(error.result.to_dict(), default=str))
            click.echo(f"Error: {error}", err=True)
            ctx.exit(1)
        except EstateFlowError as error:
            click.echo(f"Error: {error}", err=True)
            ctx.exit(error.exit_code)
        except click.UsageError as error:
            # A subcommand's bad argument: one line naming it, not a usage screen.
            where = f"{error.ctx.command_path}: " if error.ctx is not None else ""
            click.echo(f"Error: {where}{error.format_message()}", err=True)
            ctx.exit(2)


def _show(as_json: bool, data: Any, text: str, *, passed: bool = True) -> None:
    """Print JSON or text; exit code 1 when what was shown did not pass."""
    click.echo(json.dumps(data, indent=2, default=str, ensure_ascii=False) if as_json else text)
    if not passed:
        sys.exit(1)


def _interactive() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()


def _confirmer() -> Callable[[str], bool] | None:
    return (lambda question: click.confirm(question, default=False)) if _interactive() else None


def _terminal_bar(total: int) -> Any:
    """A tqdm progress bar when stdout is a terminal, else None."""
    if not sys.stdout.isatty():
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="rec", unit_scale=True, leave=False)


@contextmanager
def _progress_bar(enabled: bool) -> Iterator[Callable[[BatchMetrics], None] | None]:
    """A progress callback for the importer that drives a terminal bar; None when off."""
    bars: list[Any] = []

    def update(metrics: BatchMetrics) -> None:
        if not bars or bars[-1].total != metrics.total:
            bar = _terminal_bar(total=metrics.total)
            bar.update(metrics.done - metrics.records)
            bars.append(bar)
        bars[-1].update(metrics.records)

    try:
        yield update if enabled and sys.stdout.isatty() else None
    finally:
        for bar in bars:
            bar.close()


db_option = click.option(
    "--db",
    metavar="URL",
    envvar="ESTATEFLOW_DB",
    help="Database: sqlite:///PATH (default sqlite:///data/estateflow.db) or d1://ACCOUNT_ID/DATABASE_ID"
    " (token from CLOUDFLARE_API_TOKEN).",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead of text.")
free_tier_option = click.option(
    "--free-tier",
    is_flag=True,
    help="D1 on Cloudflare's free tier: plan the rows this writes (records x (1 + indexes) plus the ledger)"
    " against today's remaining 100,000-row budget, per the ledger, and refuse a plan that does not fit.",
)
split_days_option = click.option(
    "--split-days",
    is_flag=True,
    help="With --free-tier: accept a plan larger than today's budget; stop cleanly before the budget runs out"
    " and resume with the same command after 00:00 UTC.",
)
backups_option = click.option(
    "--backups-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="ESTATEFLOW_BACKUPS",
    help="Folder of the backups (default: backups/ in the working directory, or ESTATEFLOW_BACKUPS).",
)


class _Rate(click.ParamType):
    """A share of records: 0.01 or 1%."""

    name = "RATE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        if isinstance(value, float):
            return value
        text = str(value).strip()
        try:
            rate = float(text[:-1]) / 100 if text.endswith("%") else float(text)
        except ValueError:
            self.fail(f"{value!r} is not a share of records (0.01 or 1%)", param, ctx)
        if not 0 <= rate <= 1:
            self.fail(f"{value!r} is not between 0 and 1 (0% and 100%)", param, ctx)
        return rate


max_reject_rate_option = click.option(
    "--max-reject-rate",
    type=_Rate(),
    default=DEFAULT_MAX_REJECT_RATE,
    show_default=True,
    help="The share of rejected records (0.01 or 1%) above which the import fails (exit code 1); its rows stay in.",
)
yes_option = click.option("--yes", "-y", is_flag=True, help="Go ahead without asking.")
dry_run_option = click.option("--dry-run", is_flag=True, help="Show what would change; change nothing.")


def _undo_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options every destructive command shares."""
    for option in (json_option, backups_option, dry_run_option, yes_option, db_option):
        command = option(command)
    return command


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="estateflow")
def cli() -> None:
    """Load, verify and roll back EstateFlow's professionals directory."""


@cli.command()
@click.argument("count", type=click.IntRange(min=0), required=False)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="File to write (.sql, .csv or .jsonl).")
@click.option("--ladder", is_flag=True, help="Write the four ladder files (10, 100, 1,000, 10,000 records).")
@click.option(
    "--dir",
    "directory",
    default="data",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Folder for --ladder.",
)
@click.option("--seed", default=42, show_default=True, help="Same seed, same bytes.")
@click.option("--start", default=0, show_default=True, help="Index of the first record (shifts license numbers).")
@click.option(
    "--invalid-share",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0, 1),
    help="Share of deliberately broken records, to exercise the rejects file.",
)
@click.option("--overwrite", is_flag=True, help="With --ladder, rewrite files that exist.")
def generate(
    count: int | None,
    out: Path | None,
    ladder: bool,
    directory: str,
    seed: int,
    start: int,
    invalid_share: float,
    overwrite: bool,
) -> None:
    """Write deterministic synthetic records: COUNT of them to --out, or the ladder files."""
    began = time.perf_counter()
    if ladder:
        for path in write_ladder(directory, seed=seed, overwrite=overwrite):
            click.echo(str(path))
        return
    if count is None or out is None:
        raise click.UsageError("give COUNT and --out PATH, or --ladder")
    bar = _terminal_bar(total=count)
    try:
        path = write_records(
            out,
            count,
            seed=seed,
            start=start,
            invalid_share=invalid_share,
            progress=bar.update if bar is not None else None,
        )
    finally:
        if bar is not None:
            bar.close()
    click.echo(f"wrote {count:,} records to {path} in {time.perf_counter() - began:.2f} s")


@cli.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@db_option
@click.option("--batch-size", type=click.IntRange(min=1), help="Records per batch (default: the file's rung).")
@click.option(
    "--delay",
    "delay_ms",
    default=0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Milliseconds to wait between batches.",
)
@click.option("--dry-run", is_flag=True, help="Validate and plan; write nothing.")
@click.option(
    "--on-conflict",
    type=click.Choice(ON_CONFLICT),
    help="A license number already present: skip the record (the default), update the row, or fail."
    " A resumed import keeps what its first run said.",
)
@click.option("--yes", "-y", is_flag=True, help="Confirm a large import without asking.")
@click.option("--force", is_flag=True, help="Allow an extra large import (100,000 records or more).")
@click.option("--no-resume", is_flag=True, help="Start a new import even if one of this file is unfinished.")
@click.option(
    "--rejects-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for <import-id>.rejects.csv (default: beside FILE).",
)
@click.option("--verbose", "-v", is_flag=True, help="Log every batch and retry on stderr.")
@max_reject_rate_option
@free_tier_option
@split_days_option
@json_option
@click.pass_context
def import_(
    ctx: click.Context,
    file: Path,
    db: str | None,
    batch_size: int | None,
    delay_ms: float,
    dry_run: bool,
    on_conflict: OnConflict | None,
    yes: bool,
    force: bool,
    no_resume: bool,
    rejects_dir: Path | None,
    verbose: bool,
    max_reject_rate: float,
    free_tier: bool,
    split_days: bool,
    as_json: bool,
) -> None:
    """Import FILE (.csv, .jsonl or .sql) in batches, resuming an unfinished import of it.

    Exit code 1 if it stops, or if more of its records than --max-reject-rate were rejected."""
    ctx.meta["json"] = as_json
    options = ImportOptions(
        batch_size=batch_size,
        delay_ms=delay_ms,
        dry_run=dry_run,
        on_conflict=on_conflict,
        yes=yes,
        force=force,
        resume=not no_resume,
        rejects_dir=rejects_dir,
        free_tier=free_tier,
        split_days=split_days,
        max_reject_rate=max_reject_rate,
    )
    log = (lambda message: click.echo(message, err=True)) if verbose else None
    with connect(db, create=True) as target, _progress_bar(not as_json) as bar:
        result = import_file(target, file, options, confirm=_confirmer(), progress=bar, log=log)
    failed, verdict = import_verdict(result, max_reject_rate)
    data = {**result.to_dict(), "rejected_share": round(rejected_share(result), 6), "verdict": verdict}
    click.echo(json.dumps(data, default=str) if as_json else f"{result.summary()}\n  {verdict}")
    if failed:
        click.echo(f"Error: import {result.import_id}: {verdict}", err=True)
        sys.exit(1)


@cli.command()
@click.argument("files", nargs=-1, type=click.Path(dir_okay=False, path_type=Path))
@db_option
@click.option(
    "--dir",
    "directory",
    default="data",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Folder of the ladder files (generated there when missing).",
)
@click.option(
    "--rungs",
    "steps",
    metavar="N,N,...",
    help="Climbing one FILE: the rungs' sizes before the last one, which takes the rest [10,100,1000,10000].",
)
@click.option("--yes", "-y", is_flag=True, help="Confirm the large rung without asking.")
@click.option("--force", is_flag=True, help="Allow an extra large rung.")
@click.option(
    "--runs",
    default=5,
    show_default=True,
    type=click.IntRange(min=1),
    help="Timed runs per latency benchmark in each verification.",
)
@click.option("--no-benchmarks", is_flag=True, help="Verify after each rung without the latency benchmarks.")
@dry_run_option
@max_reject_rate_option
@free_tier_option
@split_days_option
@backups_option
@json_option
def ladder(
    files: tuple[Path, ...],
    db: str | None,
    directory: str,
    steps: str | None,
    yes: bool,
    force: bool,
    runs: int,
    no_benchmarks: bool,
    dry_run: bool,
    max_reject_rate: float,
    free_tier: bool,
    split_days: bool,
    backups_dir: Path | None,
    as_json: bool,
) -> None:
    """Climb one FILE in rungs (10, 100, 1,000 and 10,000 records, then the rest), verifying after each;
    or run the ladder of several FILES, or of the generated ladder files: test, small, medium, large.

    A rung that fails (its rejected share over --max-reject-rate, or its verification) stops the climb
    and is undone, after a backup; exit code 1. The same command again continues after the last rung
    that passed. --dry-run shows the plan. A ladder of files also fails on a rung below its target.
    """

    def announce(step: RungResult) -> None:
        if not as_json:
            click.echo(rung_line(step), err=True)

    if steps is not None and len(files) != 1:
        raise click.UsageError("--rungs is for climbing one FILE")
    options = ImportOptions(
        yes=yes,
        force=force,
        dry_run=dry_run,
        free_tier=free_tier,
        split_days=split_days,
        max_reject_rate=max_reject_rate,
    )
    with connect(db, create=True) as target, _progress_bar(not as_json) as bar:
        result = run_ladder(
            target,
            options,
            directory=directory,
            files=(list(files) or None) if len(files) != 1 else None,
            file=files[0] if len(files) == 1 else None,
            steps=steps,
            confirm=_confirmer(),
            verify_runs=runs,
            benchmarks=not no_benchmarks,
            backups_dir=backups_dir,
            progress=bar,
            on_rung=announce,
        )
    _show(as_json, result.to_dict(), result.table(), passed=result.passed)


@cli.command("verify")
@db_option
@click.option("--no-benchmarks", is_flag=True, help="Skip the latency benchmarks.")
@click.option("--runs", default=5, show_default=True, type=click.IntRange(min=1), help="Timed runs per benchmark.")
@click.option(
    "--failures",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write every failing row of every failing check to DIR/<check>.csv.",
    metavar="DIR",
)
@json_option
def verify_(db: str | None, no_benchmarks: bool, runs: int, failures: Path | None, as_json: bool) -> None:
    """Run the twelve checks and the latency benchmarks. Exit code 1 if any fails, or if the table is
    empty (nothing to verify)."""
    with connect(db) as target:
        report = verify(target, benchmarks=not no_benchmarks, runs=runs, failures=failures)
    text = report.table()
    if report.failure_files:
        text += "\n" + "\n".join(f"failing rows of {name}: {path}" for name, path in report.failure_files.items())
    _show(as_json, report.to_dict(), text, passed=report.passed)


@cli.command("status")
@db_option
@click.option("--limit", default=20, show_default=True, help="How many of the newest imports to list.")
@backups_option
@json_option
def status_(db: str | None, limit: int, backups_dir: Path | None, as_json: bool) -> None:
    """Show table counts, the import ledger, the database size and the newest backup."""
    with connect(db) as target:
        report = status(target, limit=limit, backups_dir=backups_dir)
    _show(as_json, report.to_dict(), report.table())


def _rollback(
    db: str | None, yes: bool, dry_run: bool, backups_dir: Path | None, as_json: bool, **strategy: Any
) -> None:
    with connect(db) as target:
        result = rollback(target, **strategy, dry_run=dry_run, yes=yes, confirm=_confirmer(), backups_dir=backups_dir)
    _show(as_json, result.to_dict(), result.summary())


@cli.group("rollback", cls=_Group)
def rollback_() -> None:
    """Undo imports: by age, by dates, by industry, one import, or everything.

    Each strategy shows what it will remove, asks (or takes --yes), backs the database up into the
    backups folder, then changes everything in one transaction. Rows that an undone import overwrote
    (--on-conflict update) get their earlier values back.
    """


@rollback_.command("last")
@click.argument("hours", type=click.FloatRange(min=0, min_open=True), default=24, required=False)
@_undo_options
def rollback_last(hours: float, **options: Any) -> None:
    """Roll back every import that started in the last HOURS hours (default 24)."""
    _rollback(last_hours=hours, **options)


@rollback_.command("date")
@click.argument("start", metavar="FROM")
@click.argument("end", metavar="TO")
@_undo_options
def rollback_date(start: str, end: str, **options: Any) -> None:
    """Roll back the imports that started from FROM to TO, inclusive (UTC dates like 2026-11-01)."""
    _rollback(since=start, until=end, **options)


@rollback_.command("industry", help=f"Roll back the imported rows of industry NAME ({', '.join(INDUSTRIES)}).")
@click.argument("name")
@_undo_options
def rollback_industry(name: str, **options: Any) -> None:
    _rollback(industry=name, **options)


@rollback_.command("import")
@click.argument("import_id", metavar="ID")
@_undo_options
def rollback_import(import_id: str, **options: Any) -> None:
    """Roll back exactly one import (its id is in `estateflow status`)."""
    _rollback(import_id=import_id, **options)


@rollback_.command("reset")
@_undo_options
def rollback_reset(**options: Any) -> None:
    """Empty the database back to the bare schema (a backup is taken first)."""
    _rollback(reset=True, **options)


@cli.group("db", cls=_Group)
def db_() -> None:
    """Whole-database operations (see also backup, backups and restore)."""


@db_.command("reset")
@_undo_options
def db_reset(**options: Any) -> None:
    """Empty the database back to the bare schema (a backup is taken first); same as `rollback reset`."""
    _rollback(reset=True, **options)


@cli.command("backup")
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
    _show(as_json, data, text)


@cli.command("backups")
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
        prune_backups(keep, db=owner, backups_dir=backups_dir, dry_run=dry_run, yes=yes, confirm=_confirmer())
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
    _show(as_json, data, "\n".join(lines))


@cli.command("restore")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path), required=False)
@click.option("--bookmark", help="D1: return the database to this Time Travel bookmark instead of a FILE.")
@click.option("--at", "at", metavar="TIMESTAMP", help="D1: return it to how it was at this UTC time (ISO 8601).")
@_undo_options
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

            done = restore_bookmark(target, bookmark=bookmark, at=at, dry_run=dry_run, yes=yes, confirm=_confirmer())
            _show(as_json, done.to_dict(), done.summary())
            return
        result = restore(target, file, dry_run=dry_run, yes=yes, confirm=_confirmer(), backups_dir=backups_dir)
    _show(as_json, result.to_dict(), result.summary())


@cli.command("report")
@click.argument("name", type=click.Choice(list(REPORTS)))
@db_option
@click.option(
    "-p",
    "--parameter",
    "parameters",
    type=(str, str),
    multiple=True,
    metavar="NAME VALUE",
    help="Set a notebook parameter (repeatable). Unknown names and secrets are refused.",
)
@click.option(
    "--out-dir",
    default="reports",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for the HTML report and the executed notebook.",
)
@click.option("--open", "open_", is_flag=True, help="Open the HTML report in a web browser afterwards.")
def report(name: str, db: str | None, parameters: tuple[tuple[str, str], ...], out_dir: Path, open_: bool) -> None:
    """Run notebook NAME headlessly (papermill) and write it as self-contained HTML; print its path.

    NAME is ladder, verification, explore or rollback (which only plans unless `-p confirm true`). The
    executed notebook is kept beside the HTML.
    """
    from .reports import run_report

    given: dict[str, str] = {}
    for key, value in parameters:
        if key in given:
            raise click.UsageError(f"parameter {key!r} is given twice")
        given[key] = value
    result = run_report(name, db=db, parameters=given, out_dir=out_dir)
    click.echo(f"executed notebook {result.notebook} in {result.seconds:.1f} s", err=True)
    click.echo(str(result.html))
    if open_:
        import webbrowser

        webbrowser.open(result.html.resolve().as_uri())


def main() -> None:
    cli(prog_name="estateflow")


if __name__ == "__main__":
    main()
