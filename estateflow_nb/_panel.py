"""What every notebook panel shares: the database box, outputs filled in place, buttons that are
disabled while one of them runs, and errors shown where the person is looking.

Every error a button or a control raises becomes one red line in the panel (the error's kind and its
message), with the details (the traceback of an error nobody foresaw) one click away: none is left
for the log console alone. Everything shown is escaped: nothing from the data is markup.
"""

from __future__ import annotations

import html
import traceback
from collections.abc import Callable, Sequence
from typing import Any

import ipywidgets as w
from IPython.display import HTML

from ._look import FAIL_COLOUR
from .errors import EstateFlowError
from .importer import BatchMetrics
from .targets import Target, connect, resolve_url
from .views import displayable

WIDE = w.Layout(width="640px")
FIT = {"width": "auto"}
LABEL = {"description_width": "150px"}


def fill(output: w.Output, things: Sequence[Any]) -> None:
    """Replace what `output` shows with `things` (figures become PNG images)."""
    output.outputs = ()
    for thing in things:
        output.append_display_data(displayable(thing))


def message(output: w.Output, text: str, *, error: bool = False, details: str = "") -> None:
    """One message in `output`, in red for an error, with `details` behind a click."""
    colour = FAIL_COLOUR if error else "inherit"
    more = (
        f"<details class='ef-details'><summary>details</summary><pre style='white-space:pre-wrap'>"
        f"{html.escape(details)}</pre></details>"
        if details
        else ""
    )
    output.outputs = ()
    output.append_display_data(
        HTML(
            f"<div class='ef-message{' ef-error' if error else ''}'><pre style='color:{colour};white-space:pre-wrap;"
            f"margin:0'>{html.escape(text)}</pre>{more}</div>"
        )
    )


def error_line(error: BaseException) -> tuple[str, str]:
    """(one line, details) for an error: its kind and first line; the traceback of one nobody foresaw."""
    lines = str(error).strip().splitlines()
    line = f"{type(error).__name__}: {lines[0] if lines else type(error).__name__}"
    if isinstance(error, EstateFlowError):
        return line, "\n".join(lines[1:])
    return line, "".join(traceback.format_exception(error))


def progress_bar() -> tuple[w.IntProgress, w.Label]:
    """A progress bar for an import's batches, and the line beside it (see `show_progress`)."""
    return w.IntProgress(value=0, min=0, max=1, description="progress", style=LABEL, layout=WIDE), w.Label(value="")


def show_progress(bar: w.IntProgress, label: w.Label, metrics: BatchMetrics) -> None:
    """Where an import stands after the batch `metrics` describes."""
    bar.max = max(1, metrics.total)
    bar.value = min(metrics.done, bar.max)
    label.value = (
        f"batch {metrics.number}: {metrics.done:,} of {metrics.total:,} records, {metrics.records_per_second:,.0f}"
        " records/s"
    )


def checkbox(value: bool, description: str, **options: Any) -> w.Checkbox:
    return w.Checkbox(value=value, description=description, indent=False, layout=FIT, **options)


class DatabasePanel(w.VBox):
    """A panel on one database: the database box (its absolute path shown below it), one open target
    per URL (pressing a button twice does not reconnect), and buttons that are all disabled while one
    of them runs. Any error becomes a red line in `messages`.

    A subclass calls `_open` first, makes its buttons with `_button`, then `super().__init__(children)`.
    """

    creates = False  # only a panel that imports may create its database

    def _open(self, db: str, messages: w.Output) -> None:
        self._targets: dict[str, Target] = {}
        self._buttons: list[w.Button] = []
        self._messages = messages
        self.db = w.Text(value=db, description="database", placeholder=resolve_url(None), layout=WIDE, style=LABEL)
        self.where = w.Label(value="")
        self.where.add_class("ef-where")
        self.db.observe(lambda _change: self._show_where(), names="value")
        self._show_where()

    def _show_where(self) -> None:
        """The absolute path (or D1 database) that the database box names, as connect() will open it."""
        self.where.value = f"= {resolve_url(self.db.value.strip() or None)}"

    @property
    def target(self) -> Target:
        url = resolve_url(self.db.value.strip() or None)
        if url not in self._targets:
            self._targets[url] = connect(url, create=self.creates)
        return self._targets[url]

    def _button(self, action: Callable[[], Any], description: str, **options: Any) -> w.Button:
        """A button that runs `action` through `_guarded`."""
        button = w.Button(description=description, layout=FIT, **options)
        button.on_click(lambda _button: self._guarded(action))
        self._buttons.append(button)
        return button

    def _guarded(self, action: Callable[[], Any]) -> None:
        """Run `action` with every button disabled, an error shown as one red line, then enable them again."""
        for button in self._buttons:
            button.disabled = True
        try:
            action()
        except Exception as error:  # a panel shows every error; the kernel's log is no place for one
            line, details = error_line(error)
            message(self._messages, line, error=True, details=details)
        finally:
            for button in self._buttons:
                button.disabled = False

    def _watched(self, action: Callable[[], Any]) -> Callable[[Any], None]:
        """An observer for a control that runs `action` guarded, as a button would."""
        return lambda _change: self._guarded(action)
