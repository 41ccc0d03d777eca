"""ipywidgets panels for the notebooks: each control sets a value one of the notebook's parameters
could set, and each button calls the same engine function the headless path calls.

- `ClimbPanel` (in _climb_panel.py): climb any one file a rung at a time: the plan, the next rung
  with its table, rejects and verification, undoing a rung.
- `LadderPanel`: pick the database and a rung's file, batch size, dry run, the confirmations and the
  largest reject rate; run one rung with a progress bar, verify, roll back the last import (its plan
  shown as tables first); the rung table (which marks a rung whose import was rolled back since) and
  the throughput chart redrawn after every step.
- `VerifyPanel`: verify a database again and show the whole verification report.
- `ExplorePanel`: the database, a city search and an industry filter; every section of the
  exploration report follows them.
- `RollbackPanel`: choose how to roll back, see the plan, and only then, with a tick, roll it back.

The panels on a database share `_panel.DatabasePanel`: the database box, buttons that are disabled
while one of them runs, and any error shown as one red line with its details a click away.

A rollback from a panel is always planned first (`rollback.plan_rollback`) and carried out only as
planned (`RollbackPlan.apply`): a database that changed in between refuses the rollback instead of
undoing something nobody saw. The panels hold no plan logic of their own.

Panels are widgets (display one, or use it as a cell's last value). Their outputs are filled with
`Output.append_display_data`, which works from a button's callback and outside a kernel alike.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Literal

import ipywidgets as w

from ._climb_panel import ClimbPanel
from ._look import passed_word, verification_line
from ._panel import LABEL, WIDE, DatabasePanel, checkbox, fill, message, progress_bar, show_progress
from ._rejected import DEFAULT_MAX_REJECT_RATE
from .backup import backups_folder
from .errors import EstateFlowError
from .explore import featured_by_industry
from .generate import write_ladder
from .importer import BatchMetrics
from .ladder import LadderResult, RungResult, run_rung
from .plots import throughput
from .rollback import RollbackPlan, RollbackResult, chosen_strategy, plan_rollback
from .rungs import LADDER_FILES, RUNGS
from .schema import INDUSTRIES
from .status import status
from .targets import Target, project_path
from .verify import verify
from .views import (
    checks_table,
    displayable,
    explore_sections,
    rollback_sections,
    rung_table,
    verification_sections,
)

__all__ = ["ClimbPanel", "ExplorePanel", "LadderPanel", "RollbackPanel", "VerifyPanel"]
# Rung verdicts shown in red.
FAILED_RUNG = ("import failed", "verification failed", "too many rejects")


def _live_imports(target: Target, limit: int) -> list[str]:
    """The ids of the newest `limit` imports that are not rolled back yet, newest first."""
    rows = target.query(
        "SELECT id FROM ef_imports WHERE status != 'rolled_back' ORDER BY started_at DESC, rowid DESC LIMIT ?",
        (limit,),
    )
    return [row["id"] for row in rows]


def _file_list(files: str) -> list[str]:
    """The paths of a comma-separated `files` parameter, absolute (from the project root)."""
    return [str(project_path(name.strip())) for name in files.split(",") if name.strip()]


class LadderPanel(DatabasePanel):
    """Step through the progressive ladder one rung at a time: the generated ladder files in
    `directory` (written when first run), or the comma-separated `files` in their order."""

    creates = True

    def __init__(
        self,
        *,
        db: str = "",
        directory: str = "data",
        files: str = "",
        file: str = "",
        batch_size: int = 0,
        dry_run: bool = False,
        yes: bool = False,
        force: bool = False,
        runs: int = 5,
        max_reject_rate: float = DEFAULT_MAX_REJECT_RATE,
    ) -> None:
        self.directory = project_path(directory)
        chosen = _file_list(files)
        self._generated = not chosen  # the generated ladder files, written when a rung first needs them
        self.ladder_files = chosen or [str(self.directory / name) for name, _ in LADDER_FILES]
        self.result = LadderResult()
        self._planned: RollbackPlan | None = None  # the rollback whose plan is on show
        self.messages, self.table, self.chart = w.Output(), w.Output(), w.Output()
        self.messages.add_class("ef-messages")
        self.table.add_class("ef-rung-table")
        self.chart.add_class("ef-throughput")
        self._open(db, self.messages)
        self._rung_controls(file, batch_size, runs, max_reject_rate, dry_run=dry_run, yes=yes, force=force)
        self.run_button = self._button(self.run_rung, "Run rung", button_style="primary", icon="play")
        self.verify_button = self._button(self.verify, "Verify", icon="check")
        self.rollback_button = self._button(
            self.roll_back, "Roll back last import", button_style="warning", icon="undo"
        )
        self.rollback_confirm = checkbox(False, "really roll back the plan shown (unticked: plan only)")
        self.progress, self.progress_label = progress_bar()
        super().__init__(
            [
                w.HTML("<b>Progressive ladder</b>: run a rung, verify, roll back"),
                self.db,
                self.where,
                self.file,
                w.HBox([self.batch_size, self.runs, self.max_reject_rate]),
                w.HBox([self.dry_run, self.yes, self.force]),
                w.HBox([self.run_button, self.verify_button, self.rollback_button, self.rollback_confirm]),
                w.HBox([self.progress, self.progress_label]),
                self.messages,
                self.table,
                self.chart,
            ]
        )

    def _rung_controls(
        self, file: str, batch_size: int, runs: int, max_reject_rate: float, *, dry_run: bool, yes: bool, force: bool
    ) -> None:
        """The rung's file and how to run it: the controls the ladder notebook's parameters stand for."""
        self.file = w.Combobox(
            value=str(project_path(file)) if file else self.ladder_files[0],
            options=self.ladder_files,
            description="rung file",
            ensure_option=False,
            layout=WIDE,
            style=LABEL,
        )
        self.batch_size = w.BoundedIntText(
            value=batch_size, min=0, max=1_000_000, description="batch size (0: rung's)", style=LABEL
        )
        self.runs = w.BoundedIntText(value=runs, min=1, max=100, description="benchmark runs", style=LABEL)
        self.max_reject_rate = w.BoundedFloatText(
            value=max_reject_rate, min=0, max=1, step=0.005, description="largest reject rate", style=LABEL
        )
        self.dry_run = checkbox(dry_run, "dry run (write nothing)")
        large, extra = RUNGS[3], RUNGS[4]
        self.yes = checkbox(yes, f"confirm a large rung ({large.min_records:,}+)")
        self.force = checkbox(force, f"force an extra large rung ({extra.min_records:,}+)")

    def _on_batch(self, metrics: BatchMetrics) -> None:
        show_progress(self.progress, self.progress_label, metrics)

    def _idle(self) -> None:
        """No import is running: no progress left on show from the last one."""
        self.progress.value = 0
        self.progress_label.value = ""

    def _guarded(self, action: Callable[[], Any]) -> None:
        def clearing() -> None:
            try:
                action()
            except Exception:
                self._idle()  # no progress of an import that did not run is left on show
                raise

        super()._guarded(clearing)

    def run_rung(self) -> RungResult:
        """Import the chosen file as one rung (verifying after it from the small rung on) and redraw."""
        path = project_path(self.file.value.strip())
        if self._generated and str(path) in self.ladder_files and not path.exists():
            write_ladder(self.directory)
        self._planned = None  # a rollback planned before this rung is no longer about the last import
        self._idle()
        self.progress_label.value = f"importing {path.name}"
        message(self.messages, f"importing {path}, then verifying (from the small rung on) ...")
        step = run_rung(
            self.target,
            path,
            batch_size=self.batch_size.value or None,
            dry_run=self.dry_run.value,
            yes=self.yes.value,
            force=self.force.value,
            verify_runs=self.runs.value,
            max_reject_rate=self.max_reject_rate.value,
            progress=self._on_batch,
        )
        self.result.rungs.append(step)
        summary = step.imported.summary()
        if step.verification is not None:
            summary += f"\n  verification: {passed_word(step.verification.passed)} ({step.verification.verdict})"
        summary += f"\n  rung verdict: {step.verdict}"
        message(
            self.messages, summary, error=step.verdict in ("import failed", "verification failed", "too many rejects")
        )
        self._redraw()
        if step.verdict in ("pass", "nothing new") and str(path) in self.ladder_files:
            following = self.ladder_files.index(str(path)) + 1
            if following < len(self.ladder_files):
                self.file.value = self.ladder_files[following]
        return step

    def _follow_ledger(self) -> None:
        """Mark the rungs whose import the ledger says was rolled back (here, or anywhere else)."""
        ids = [step.imported.import_id for step in self.result.rungs if step.imported.import_id]
        if not ids:
            return
        undone = {
            row["id"]
            for row in self.target.query(
                "SELECT id FROM ef_imports WHERE status = 'rolled_back' AND id IN (SELECT value FROM json_each(?))",
                (json.dumps(ids),),
            )
        }
        for step in self.result.rungs:
            step.rolled_back = step.imported.import_id in undone

    def _redraw(self) -> None:
        self._follow_ledger()
        fill(self.table, [rung_table(self.result)])
        fill(self.chart, [throughput(self.result)])

    def verify(self) -> None:
        """Verify the database now; the newest rung shows the result in its `verified` column."""
        self._idle()
        message(self.messages, "verifying: the twelve checks and the latency benchmarks ...")
        report = verify(self.target, runs=self.runs.value, max_reject_rate=self.max_reject_rate.value)
        if self.result.rungs and not self.result.rungs[-1].imported.dry_run:
            self.result.rungs[-1].verification = report
            self._redraw()
        line = verification_line(report.passed, warnings=bool(report.rejects), empty=report.empty)
        message(self.messages, f"{line} ({report.seconds:.2f} s)", error=not report.passed)
        self.messages.append_display_data(checks_table(report))

    def roll_back(self) -> None:
        """Show the plan of rolling back the newest import (as tables and a chart); with the box ticked,
        carry out the plan shown.

        The tick acts only on a plan already shown for this database (and no rung run since): without
        one, the plan is shown and nothing changes. The tick is cleared either way.
        """
        target = self.target
        self._idle()
        planned, self._planned = self._planned, None
        ticked, self.rollback_confirm.value = self.rollback_confirm.value, False
        if ticked and planned is not None and planned.url == target.url:
            message(self.messages, "rolling back the plan shown: a backup first, then one transaction ...")
            done = planned.apply(target)
            self._redraw()
            message(self.messages, done.summary())
            for thing in rollback_sections(done, target.url):
                self.messages.append_display_data(displayable(thing))
            return
        newest = _live_imports(target, 1)
        if not newest:
            message(self.messages, "Nothing to roll back: the ledger has no import that is not rolled back.")
            return
        self._planned = plan_rollback(target, import_id=newest[0])
        then = (
            "Not rolled back: the plan below had not been shown yet. Tick the box and press again to roll it back."
            if ticked
            else "Tick 'really roll back' and press again to roll back this plan (a backup is taken first)."
        )
        message(self.messages, f"{self._planned.shown.summary()}\n{then}")
        for thing in rollback_sections(self._planned.shown, target.url, plan=self._planned):
            self.messages.append_display_data(displayable(thing))


class VerifyPanel(DatabasePanel):
    """Verify a database (again) and show the whole verification report below."""

    def __init__(self, *, db: str = "", runs: int = 5, max_reject_rate: float = DEFAULT_MAX_REJECT_RATE) -> None:
        self.report = w.Output()
        self.report.add_class("ef-verification")
        self._open(db, self.report)  # an error shows where the report would have
        self.runs = w.BoundedIntText(value=runs, min=1, max=100, description="benchmark runs", style=LABEL)
        self.max_reject_rate = w.BoundedFloatText(
            value=max_reject_rate, min=0, max=1, step=0.005, description="largest reject rate", style=LABEL
        )
        self.verify_button = self._button(self._draw, "Verify", button_style="primary", icon="check")
        super().__init__(
            [self.db, self.where, w.HBox([self.runs, self.max_reject_rate, self.verify_button]), self.report]
        )

    def verify(self) -> None:
        self._guarded(self._draw)

    def _draw(self) -> None:
        target = self.target
        message(self.report, f"verifying {target.url} ...")
        report = verify(target, runs=self.runs.value, max_reject_rate=self.max_reject_rate.value)
        fill(self.report, verification_sections(report, status(target), featured_by_industry(target)))


class ExplorePanel(DatabasePanel):
    """The exploration report for a database, a city search and an industry filter: every section
    (ratings, reviews, cities) follows the filter, as the headless report does."""

    def __init__(self, *, db: str = "", city: str = "", industry: str = "", top: int = 15, sample: int = 2000) -> None:
        self.output = w.Output()
        self.output.add_class("ef-explore")
        self._open(db, self.output)
        self.city = w.Text(value=city, description="city contains", continuous_update=False, style=LABEL)
        self.industry = w.Dropdown(
            options=[("all industries", ""), *((i.replace("_", " "), i) for i in INDUSTRIES)],
            value=industry if industry in INDUSTRIES else "",
            description="industry",
            style=LABEL,
        )
        self.top = w.BoundedIntText(value=top, min=1, max=200, description="cities shown", style=LABEL)
        self.sample = sample
        self.show_button = self._button(self.redraw, "Show", button_style="primary", icon="search")
        for control in (self.city, self.industry, self.top):
            control.observe(self._watched(self.redraw), names="value")
        super().__init__(
            [self.db, self.where, w.HBox([self.city, self.industry, self.top, self.show_button]), self.output]
        )
        self._guarded(self.redraw)

    def redraw(self) -> None:
        target = self.target
        sections = explore_sections(
            target, city=self.city.value, industry=self.industry.value, top=self.top.value, sample=self.sample
        )
        fill(self.output, sections)


# The panel's ways to roll back: (label, key); the key names the notebook parameter(s) it stands for.
Strategy = Literal["last_hours", "since/until", "import_id", "industry", "reset"]
STRATEGY_CHOICES: tuple[tuple[str, Strategy], ...] = (
    ("imports of the last hours", "last_hours"),
    ("imports between two dates", "since/until"),
    ("one import", "import_id"),
    ("the rows of one industry", "industry"),
    ("everything (reset)", "reset"),
)


class RollbackPanel(DatabasePanel):
    """Choose how to roll back and see the plan; then, and only with the tick, roll back exactly that plan.

    Every control sets a value one of the rollback notebook's parameters could set: the database, one
    strategy and its argument (`last_hours`, `since`/`until`, `import_id`, `industry` or `reset`), the
    backups folder, and the tick (`confirm`). Changing any of the first ones withdraws the plan shown.
    """

    def __init__(
        self,
        *,
        db: str = "",
        last_hours: float = 0,
        since: str = "",
        until: str = "",
        industry: str = "",
        import_id: str = "",
        reset: bool = False,
        backups_dir: str = "",
    ) -> None:
        self._planned: RollbackPlan | None = None
        self.messages, self.output = w.Output(), w.Output()
        self.messages.add_class("ef-messages")
        self.output.add_class("ef-rollback")
        self._open(db, self.messages)
        self._strategy_controls(
            last_hours=last_hours, since=since, until=until, industry=industry, import_id=import_id, reset=reset
        )
        self.backups_dir = w.Text(
            value=backups_dir, description="backups folder", placeholder=str(backups_folder()), style=LABEL
        )
        self.plan_button = self._button(self.plan, "Plan", button_style="primary", icon="list")
        self.confirm = checkbox(False, "I have read this plan: roll it back (a backup is taken first)", disabled=True)
        self.rollback_button = self._button(
            self.roll_back, "Roll back", button_style="danger", icon="undo", disabled=True
        )
        super().__init__(
            [
                w.HTML("<b>Rollback</b>: plan first; roll back only what the plan shows, after ticking the box"),
                self.db,
                self.where,
                self.strategy,
                *self._arguments.values(),
                self.backups_dir,
                w.HBox([self.plan_button, self.confirm, self.rollback_button]),
                self.messages,
                self.output,
            ]
        )
        self._wire()
        self._show_arguments()

    def _strategy_controls(
        self, *, last_hours: float, since: str, until: str, industry: str, import_id: str, reset: bool
    ) -> None:
        """The strategy (the first one the arguments choose) and, in a box of its own, each one's argument."""
        given = chosen_strategy(
            last_hours=last_hours, since=since, until=until, industry=industry, import_id=import_id, reset=reset
        )
        first = next(iter(given), "last_hours")
        self.strategy = w.Dropdown(
            options=STRATEGY_CHOICES,
            value="since/until" if first in ("since", "until") else first,
            description="roll back",
            style=LABEL,
        )
        self.last_hours = w.BoundedFloatText(
            value=last_hours or 24, min=0.01, max=1_000_000, description="hours", style=LABEL
        )
        self.since = w.Text(value=since, description="from (UTC)", placeholder="2026-11-01", style=LABEL)
        self.until = w.Text(value=until, description="to (UTC, included)", placeholder="2026-11-15", style=LABEL)
        self.import_id = w.Combobox(
            value=import_id, options=[], description="import", placeholder="imp-...", ensure_option=False, style=LABEL
        )
        self.industry = w.Dropdown(
            options=[(i.replace("_", " "), i) for i in INDUSTRIES],
            value=industry.strip().lower() if industry.strip().lower() in INDUSTRIES else INDUSTRIES[0],
            description="industry",
            style=LABEL,
        )
        self._arguments: dict[Strategy, w.HBox] = {
            "last_hours": w.HBox([self.last_hours]),
            "since/until": w.HBox([self.since, self.until]),
            "import_id": w.HBox([self.import_id]),
            "industry": w.HBox([self.industry]),
            "reset": w.HBox([]),
        }

    def _wire(self) -> None:
        """Another choice withdraws the plan shown; the tick enables the button."""
        for control in (self.db, self.strategy, self.last_hours, self.since, self.until, self.import_id, self.industry):
            control.observe(lambda _change: self._withdraw_plan(), names="value")
        self.strategy.observe(lambda _change: self._show_arguments(), names="value")
        self.confirm.observe(lambda _change: self._sync(), names="value")

    def arguments(self) -> dict[str, Any]:
        """The `rollback` arguments of the chosen strategy."""
        key = self.strategy.value
        chosen = chosen_strategy(
            last_hours=self.last_hours.value if key == "last_hours" else 0,
            since=self.since.value if key == "since/until" else "",
            until=self.until.value if key == "since/until" else "",
            import_id=self.import_id.value if key == "import_id" else "",
            industry=self.industry.value if key == "industry" else "",
            reset=key == "reset",
        )
        if not chosen:
            raise EstateFlowError(
                "give a date 'from' or 'to' (or both)" if key == "since/until" else "choose an import to roll back"
            )
        return chosen

    def _show_arguments(self) -> None:
        for key, box in self._arguments.items():
            box.layout.display = None if key == self.strategy.value else "none"
        if self.strategy.value == "import_id":
            self._guarded(self._list_imports)

    def _list_imports(self) -> None:
        self.import_id.options = _live_imports(self.target, 200)

    def _withdraw_plan(self) -> None:
        if self._planned is not None:
            self._planned = None
            message(self.messages, "The settings changed: press Plan to see the new plan.")
        self.confirm.value = False
        self._sync()

    def _sync(self) -> None:
        """The tick only with a plan that would change something; the button only with the tick."""
        ready = self._planned is not None and not self._planned.empty
        self.confirm.disabled = not ready
        if not ready:
            self.confirm.value = False
        self.rollback_button.disabled = not (ready and self.confirm.value)

    def _guarded(self, action: Callable[[], Any]) -> None:
        super()._guarded(action)
        self._sync()

    def plan(self) -> RollbackResult:
        """Show what the chosen rollback would undo; nothing is changed."""
        target = self.target
        self._planned = None
        self.confirm.value = False
        self._planned = plan_rollback(target, **self.arguments())
        fill(self.output, rollback_sections(self._planned.shown, target.url, plan=self._planned))
        then = (
            "Nothing to roll back: nothing was changed."
            if self._planned.empty
            else "Plan only: nothing was changed. Tick the box and press Roll back to carry out this plan."
        )
        message(self.messages, then)
        return self._planned.shown

    def roll_back(self) -> RollbackResult | None:
        """Carry out the plan shown, if the box is ticked; then show what was done and the ledger after."""
        if self._planned is None:
            message(self.messages, "Press Plan first: a rollback is carried out only after its plan was shown.")
            return None
        if not self.confirm.value:
            message(self.messages, "Tick the box to confirm the plan first: nothing was changed.", error=True)
            return None
        planned, self._planned = self._planned, None
        self.confirm.value = False
        target = self.target
        folder = self.backups_dir.value.strip()
        backups_dir = str(project_path(folder)) if folder else None
        message(self.messages, "rolling back the plan shown: a backup first, then one transaction ...")
        done = planned.apply(target, backups_dir=backups_dir)
        ledger = status(target, backups_dir=backups_dir)
        for thing in rollback_sections(done, target.url, ledger):  # below the plan it carried out
            self.output.append_display_data(displayable(thing))
        message(self.messages, done.summary())
        if self.strategy.value == "import_id":
            self._list_imports()
        return done
