"""The `estateflow` command: a thin click layer over the engine.

Every command parses its options, calls one engine function and prints what comes back. Errors the
user can cause arrive as EstateFlowError and leave as one line on stderr: exit code 2 when a
confirmation is missing (nothing was done), 1 otherwise.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click

from . import __version__
from ._cli_kit import (
    Group,
    backups_option,
    confirmer,
    db_option,
    dry_run_option,
    free_tier_option,
    json_option,
    max_reject_rate_option,
    progress_bar,
    show,
    split_days_option,
    terminal_bar,
)
from ._cli_undo import COMMANDS
from ._climb_text import rung_line
from .importer import ImportOptions, import_file
from .ladder import RungResult, import_verdict, rejected_share, run_ladder
from .reports import REPORTS
from .schema import ON_CONFLICT, OnConflict
from .status import status
from .targets import connect
from .verify import verify


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
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
    from .generate import write_ladder, write_records  # its tables would cost every other command

    began = time.perf_counter()
    if ladder:
        for path in write_ladder(directory, seed=seed, overwrite=overwrite):
            click.echo(str(path))
        return
    if count is None or out is None:
        raise click.UsageError("give COUNT and --out PATH, or --ladder")
    bar = terminal_bar(total=count)
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
    with connect(db, create=True) as target, progress_bar(not as_json) as bar:
        result = import_file(target, file, options, confirm=confirmer(), progress=bar, log=log)
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
    with connect(db, create=True) as target, progress_bar(not as_json) as bar:
        result = run_ladder(
            target,
            options,
            directory=directory,
            files=(list(files) or None) if len(files) != 1 else None,
            file=files[0] if len(files) == 1 else None,
            steps=steps,
            confirm=confirmer(),
            verify_runs=runs,
            benchmarks=not no_benchmarks,
            backups_dir=backups_dir,
            progress=bar,
            on_rung=announce,
        )
    show(as_json, result.to_dict(), result.table(), passed=result.passed)


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
    show(as_json, report.to_dict(), text, passed=report.passed)


@cli.command("status")
@db_option
@click.option("--limit", default=20, show_default=True, help="How many of the newest imports to list.")
@backups_option
@json_option
def status_(db: str | None, limit: int, backups_dir: Path | None, as_json: bool) -> None:
    """Show table counts, the import ledger, the database size and the newest backup."""
    with connect(db) as target:
        report = status(target, limit=limit, backups_dir=backups_dir)
    show(as_json, report.to_dict(), report.table())


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


for _command in COMMANDS:
    cli.add_command(_command)


def main() -> None:
    cli(prog_name="estateflow")


if __name__ == "__main__":
    main()
