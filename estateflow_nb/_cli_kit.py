"""What the `estateflow` commands share: the group that turns engine errors into one line and an exit
code, the options several commands take, output, confirmation and the terminal progress bar."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from ._rejected import DEFAULT_MAX_REJECT_RATE
from .errors import ConfirmationRequired, EstateFlowError, ImportFailedError
from .importer import BatchMetrics


class Group(click.Group):
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


def show(as_json: bool, data: Any, text: str, *, passed: bool = True) -> None:
    """Print JSON or text; exit code 1 when what was shown did not pass."""
    click.echo(json.dumps(data, indent=2, default=str, ensure_ascii=False) if as_json else text)
    if not passed:
        sys.exit(1)


def interactive() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()


def confirmer() -> Callable[[str], bool] | None:
    return (lambda question: click.confirm(question, default=False)) if interactive() else None


def terminal_bar(total: int) -> Any:
    """A tqdm progress bar when stdout is a terminal, else None."""
    if not sys.stdout.isatty():
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="rec", unit_scale=True, leave=False)


@contextmanager
def progress_bar(enabled: bool) -> Iterator[Callable[[BatchMetrics], None] | None]:
    """A progress callback for the importer that drives a terminal bar; None when off."""
    bars: list[Any] = []

    def update(metrics: BatchMetrics) -> None:
        if not bars or bars[-1].total != metrics.total:
            bar = terminal_bar(total=metrics.total)
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


class Rate(click.ParamType):
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
    type=Rate(),
    default=DEFAULT_MAX_REJECT_RATE,
    show_default=True,
    help="The share of rejected records (0.01 or 1%) above which the import fails (exit code 1); its rows stay in.",
)
yes_option = click.option("--yes", "-y", is_flag=True, help="Go ahead without asking.")
dry_run_option = click.option("--dry-run", is_flag=True, help="Show what would change; change nothing.")


def undo_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options every destructive command shares."""
    for option in (json_option, backups_option, dry_run_option, yes_option, db_option):
        command = option(command)
    return command
