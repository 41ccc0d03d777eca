"""ipywidgets panels for the notebooks: each control sets a value one of the notebook's parameters
could set, and each button calls the same engine function the headless path calls.

- `LadderPanel`: pick the database and a rung's file, batch size, dry run, the confirmations; run
  one rung with a progress bar, verify, roll back the last import; the rung table and the
  throughput chart redrawn after every rung.
- `VerifyPanel`: verify a database again and show the whole verification report.
- `CityExplorer`: search cities and filter by industry, redrawing the city charts and table.

Panels are widgets (display one, or use it as a cell's last value). Their outputs are filled with
`Output.append_display_data`, which works from a button's callback and outside a kernel alike.
"""

from __future__ import annotations

import html
import importlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import ipywidgets as w
from IPython.display import HTML

from .errors import EstateFlowError
from .explore import featured_by_industry
from .generate import LADDER_FILES, write_ladder
from .importer import BatchMetrics
from .ladder import LadderResult, RungResult, run_rung
from .plots import throughput
from .rungs import RUNGS
from .schema import INDUSTRIES
from .status import status
from .targets import Target, connect, resolve_url
from .verify import verify
from .views import (
    checks_table,
    city_sections,
    displayable,
    rung_table,
    verification_sections,
)

__all__ = ["CityExplorer", "LadderPanel", "VerifyPanel", "roll_back_last_import"]

ROLLBACK_MODULE = "estateflow_nb.rollback"
_WIDE = w.Layout(width="520px")
_FIT = {"width": "auto"}
_LABEL = {"description_width": "150px"}


def _fill(output: w.Output, things: Sequence[Any]) -> None:
    """Replace what `output` shows with `things` (figures become PNG images)."""
    output.outputs = ()
    for thing in things:
        output.append_display_data(displayable(thing))


def _message(output: w.Output, text: str, *, error: bool = False) -> None:
    colour = "#c62828" if error else "inherit"
    output.outputs = ()
    output.append_display_data(
        HTML(f"<pre class='ef-message' style='color:{colour};white-space:pre-wrap;margin:0'>{html.escape(text)}</pre>")
    )


class _Connections:
    """One open target per database URL, so that pressing a button twice does not reconnect."""

    def __init__(self) -> None:
        self._targets: dict[str, Target] = {}

    def get(self, db: str) -> Target:
        url = resolve_url(db.strip() or None)
        if url not in self._targets:
            self._targets[url] = connect(url)
        return self._targets[url]


def roll_back_last_import(target: Target, *, confirm: bool = False) -> str:
    """Roll back the newest import that is not rolled back yet: only plan it unless `confirm`.

    Returns what happened (or would happen) in a few lines. The rollback engine is loaded when
    needed; where it is not part of this build, this says so and changes nothing.
    """
    try:
        engine = importlib.import_module(ROLLBACK_MODULE)
    except ModuleNotFoundError as missing:
        if missing.name != ROLLBACK_MODULE:
            raise
        return (
            "Rollback is not available in this build: the rollback engine (estateflow_nb.rollback) is not"
            " installed yet. Nothing was changed."
        )
    last = target.query(
        "SELECT id FROM ef_imports WHERE status != 'rolled_back' ORDER BY started_at DESC, rowid DESC LIMIT 1"
    )
    if not last:
        return "Nothing to roll back: the ledger has no import that is not rolled back."
    result = engine.rollback(target, import_id=last[0]["id"], dry_run=not confirm, yes=confirm)
    return str(result.summary())


class LadderPanel(w.VBox):
    """Step through the progressive ladder one rung at a time."""

    def __init__(
        self,
        *,
        db: str = "",
        directory: str = "data",
        file: str = "",
        batch_size: int = 0,
        dry_run: bool = False,
        yes: bool = False,
        force: bool = False,
        runs: int = 5,
    ) -> None:
        self.directory = Path(directory)
        self.ladder_files = [str(self.directory / name) for name, _ in LADDER_FILES]
        self.result = LadderResult()
        self._connections = _Connections()
        self.db = w.Text(value=db, description="database", placeholder=resolve_url(None), layout=_WIDE, style=_LABEL)
        self.file = w.Combobox(
            value=file or self.ladder_files[0],
            options=self.ladder_files,
            description="rung file",
            ensure_option=False,
            layout=_WIDE,
            style=_LABEL,
        )
        self.batch_size = w.BoundedIntText(
            value=batch_size, min=0, max=1_000_000, description="batch size (0: rung's)", style=_LABEL
        )
        self.runs = w.BoundedIntText(value=runs, min=1, max=100, description="benchmark runs", style=_LABEL)
        self.dry_run = w.Checkbox(value=dry_run, description="dry run (write nothing)", indent=False, layout=_FIT)
        large, extra = RUNGS[3], RUNGS[4]
        self.yes = w.Checkbox(
            value=yes, description=f"confirm a large rung ({large.min_records:,}+)", indent=False, layout=_FIT
        )
        self.force = w.Checkbox(
            value=force, description=f"force an extra large rung ({extra.min_records:,}+)", indent=False, layout=_FIT
        )
        self.run_button = w.Button(description="Run rung", button_style="primary", icon="play", layout=_FIT)
        self.verify_button = w.Button(description="Verify", icon="check", layout=_FIT)
        self.rollback_button = w.Button(
            description="Roll back last import", button_style="warning", icon="undo", layout=_FIT
        )
        self.rollback_confirm = w.Checkbox(
            value=False, description="really roll back (unticked: plan only)", indent=False, layout=_FIT
        )
        self.progress = w.IntProgress(value=0, min=0, max=1, description="progress", style=_LABEL, layout=_WIDE)
        self.progress_label = w.Label(value="")
        self.messages = w.Output()
        self.table = w.Output()
        self.chart = w.Output()
        self.chart.add_class("ef-throughput")
        self.table.add_class("ef-rung-table")
        self.messages.add_class("ef-messages")
        self.run_button.on_click(lambda _b: self._guarded(self.run_rung))
        self.verify_button.on_click(lambda _b: self._guarded(self.verify))
        self.rollback_button.on_click(lambda _b: self._guarded(self.roll_back))
        super().__init__(
            [
                w.HTML("<b>Progressive ladder</b>: run a rung, verify, roll back"),
                self.db,
                self.file,
                w.HBox([self.batch_size, self.runs]),
                w.HBox([self.dry_run, self.yes, self.force]),
                w.HBox([self.run_button, self.verify_button, self.rollback_button, self.rollback_confirm]),
                w.HBox([self.progress, self.progress_label]),
                self.messages,
                self.table,
                self.chart,
            ]
        )

    @property
    def target(self) -> Target:
        return self._connections.get(self.db.value)

    def _guarded(self, action: Callable[[], Any]) -> None:
        """Run a button's action; an error the user can cause becomes a one-line message, not a traceback."""
        for button in (self.run_button, self.verify_button, self.rollback_button):
            button.disabled = True
        try:
            action()
        except EstateFlowError as error:
            _message(self.messages, f"{type(error).__name__}: {error}", error=True)
        finally:
            for button in (self.run_button, self.verify_button, self.rollback_button):
                button.disabled = False

    def _on_batch(self, metrics: BatchMetrics) -> None:
        self.progress.max = max(1, metrics.total)
        self.progress.value = min(metrics.done, self.progress.max)
        self.progress_label.value = (
            f"batch {metrics.number}: {metrics.done:,} of {metrics.total:,} records,"
            f" {metrics.records_per_second:,.0f} records/s"
        )

    def run_rung(self) -> RungResult:
        """Import the chosen file as one rung (verifying after it from the small rung on) and redraw."""
        path = Path(self.file.value.strip())
        if str(path) in self.ladder_files and not path.exists():
            write_ladder(self.directory)
        self.progress.value = 0
        self.progress_label.value = f"importing {path.name}"
        _message(self.messages, f"running {path} ...")
        step = run_rung(
            self.target,
            path,
            batch_size=self.batch_size.value or None,
            dry_run=self.dry_run.value,
            yes=self.yes.value,
            force=self.force.value,
            verify_runs=self.runs.value,
            progress=self._on_batch,
        )
        self.result.rungs.append(step)
        summary = step.imported.summary()
        if step.verification is not None:
            summary += f"\n  verification: {'passed' if step.verification.passed else 'FAILED'}"
        _message(self.messages, summary, error=step.verdict in ("import failed", "verification failed"))
        self._redraw()
        if step.verdict == "pass" and str(path) in self.ladder_files:
            following = self.ladder_files.index(str(path)) + 1
            if following < len(self.ladder_files):
                self.file.value = self.ladder_files[following]
        return step

    def _redraw(self) -> None:
        _fill(self.table, [rung_table(self.result)])
        _fill(self.chart, [throughput(self.result)])

    def verify(self) -> None:
        """Verify the database now; the newest rung shows the result in its `verified` column."""
        report = verify(self.target, runs=self.runs.value)
        if self.result.rungs and not self.result.rungs[-1].imported.dry_run:
            self.result.rungs[-1].verification = report
            self._redraw()
        verdict = "All verification checks passed." if report.passed else "Verification FAILED."
        _message(self.messages, f"{verdict} ({report.seconds:.2f} s)", error=not report.passed)
        self.messages.append_display_data(displayable(checks_table(report)))

    def roll_back(self) -> None:
        """Plan (or, with the box ticked, carry out) the rollback of the newest import."""
        text = roll_back_last_import(self.target, confirm=self.rollback_confirm.value)
        self.rollback_confirm.value = False
        _message(self.messages, text)


class VerifyPanel(w.VBox):
    """Verify a database (again) and show the whole verification report below."""

    def __init__(self, *, db: str = "", runs: int = 5) -> None:
        self._connections = _Connections()
        self.db = w.Text(value=db, description="database", placeholder=resolve_url(None), layout=_WIDE, style=_LABEL)
        self.runs = w.BoundedIntText(value=runs, min=1, max=100, description="benchmark runs", style=_LABEL)
        self.verify_button = w.Button(description="Verify", button_style="primary", icon="check")
        self.report = w.Output()
        self.report.add_class("ef-verification")
        self.verify_button.on_click(lambda _b: self.verify())
        super().__init__([w.HBox([self.db, self.runs, self.verify_button]), self.report])

    def verify(self) -> None:
        self.verify_button.disabled = True
        try:
            target = self._connections.get(self.db.value)
            report = verify(target, runs=self.runs.value)
            _fill(self.report, verification_sections(report, status(target), featured_by_industry(target)))
        except EstateFlowError as error:
            _message(self.report, f"{type(error).__name__}: {error}", error=True)
        finally:
            self.verify_button.disabled = False


class CityExplorer(w.VBox):
    """Search cities by name and filter by industry; the city charts and table follow."""

    def __init__(self, rows: Sequence[dict[str, Any]], *, city: str = "", industry: str = "", top: int = 15) -> None:
        self.rows = list(rows)
        self.city = w.Text(value=city, description="city contains", continuous_update=False, style=_LABEL)
        self.industry = w.Dropdown(
            options=[("all industries", ""), *((i.replace("_", " "), i) for i in INDUSTRIES)],
            value=industry,
            description="industry",
            style=_LABEL,
        )
        self.top = w.BoundedIntText(value=top, min=1, max=200, description="cities shown", style=_LABEL)
        self.output = w.Output()
        self.output.add_class("ef-cities")
        for control in (self.city, self.industry, self.top):
            control.observe(lambda _change: self.redraw(), names="value")
        super().__init__([w.HBox([self.city, self.industry, self.top]), self.output])
        self.redraw()

    def redraw(self) -> None:
        _fill(self.output, city_sections(self.rows, self.city.value, self.industry.value, self.top.value))
