"""The climb's panel for notebook 01 (re-exported by `widgets`): choose any file, see the plan, run
the next rung and see its table, its rejects and its verification, undo a rung, go on.

Each control sets a value one of the ladder notebook's parameters could set (`file`, `rungs`, `yes`,
`force`, `runs`, `max_reject_rate`), and each button calls the engine the headless path calls
(`climb.Climb`). Undoing a rung is a rollback of its import: planned and shown first, carried out only
with the tick, and only as shown (`rollback.plan_rollback`), a backup first.
"""

from __future__ import annotations

import json
from pathlib import Path

import ipywidgets as w
from IPython.display import HTML

from ._climb_text import rung_line
from ._climb_views import climb_table, failure_html, plan_note, plan_table
from ._headers import escaped
from ._look import passed_word
from ._panel import LABEL, WIDE, DatabasePanel, checkbox, fill, message, progress_bar, show_progress
from ._rejected import DEFAULT_MAX_REJECT_RATE, rejected_import
from .climb import DEFAULT_STEPS, Climb
from .errors import RefusedError
from .importer import BatchMetrics, ImportOptions
from .ladder import RungResult
from .plots import throughput
from .rollback import RollbackPlan, plan_rollback
from .rungs import RUNGS
from .targets import project_path
from .views import checks_table, failing_sections, rejects_sections, rollback_sections


class ClimbPanel(DatabasePanel):
    """Climb one file a rung at a time: **Plan**, **Run next rung**, **Undo rung** (see the module)."""

    creates = True

    def __init__(
        self,
        *,
        db: str = "",
        file: str = "",
        rungs: str = ",".join(map(str, DEFAULT_STEPS)),
        yes: bool = False,
        force: bool = False,
        runs: int = 5,
        max_reject_rate: float = DEFAULT_MAX_REJECT_RATE,
    ) -> None:
        self._climb: Climb | None = None
        self._key: tuple[str, str, str] | None = None
        self._planned: RollbackPlan | None = None  # the undo whose plan is on show
        self.messages, self.plan, self.table, self.details, self.chart = (w.Output() for _ in range(5))
        for output, name in zip(
            (self.messages, self.plan, self.table, self.details, self.chart),
            ("ef-messages", "ef-climb-plan", "ef-climb-table", "ef-climb-details", "ef-climb-throughput"),
            strict=True,
        ):
            output.add_class(name)
        self._open(db, self.messages)
        self._controls(file, rungs, runs, max_reject_rate, yes=yes, force=force)
        self.plan_button = self._button(self.show_plan, "Plan", icon="list")
        self.run_button = self._button(self.run_next, "Run next rung", button_style="primary", icon="play")
        self.undo_button = self._button(self.undo, "Undo rung", button_style="warning", icon="undo")
        self.undo_confirm = checkbox(False, "really undo the rung shown (a backup is taken first)")
        self.progress, self.progress_label = progress_bar()
        super().__init__(
            [
                w.HTML("<b>Climb a file</b>: its first 10 records, the next 100, ... then the rest, verified"),
                self.db,
                self.where,
                self.file,
                w.HBox([self.rungs, self.runs, self.max_reject_rate]),
                w.HBox([self.yes, self.force]),
                w.HBox([self.plan_button, self.run_button, self.undo_button, self.undo_confirm]),
                w.HBox([self.progress, self.progress_label]),
                self.messages,
                self.plan,
                self.table,
                self.details,
                self.chart,
            ]
        )

    def _controls(self, file: str, rungs: str, runs: int, rate: float, *, yes: bool, force: bool) -> None:
        self.file = w.Text(
            value=str(project_path(file)) if file else "",
            description="file to climb",
            placeholder="a .csv, .jsonl or .sql file (relative: from the project root)",
            layout=WIDE,
            style=LABEL,
        )
        self.rungs = w.Text(value=rungs, description="rungs (then the rest)", style=LABEL)
        self.runs = w.BoundedIntText(value=runs, min=1, max=100, description="benchmark runs", style=LABEL)
        self.max_reject_rate = w.BoundedFloatText(
            value=rate, min=0, max=1, step=0.005, description="largest reject rate", style=LABEL
        )
        large, extra = RUNGS[3], RUNGS[4]
        self.yes = checkbox(yes, f"confirm a large rung ({large.min_records:,}+)")
        self.force = checkbox(force, f"force an extra large rung ({extra.min_records:,}+)")

    @property
    def climbing(self) -> Climb:
        """The climb of the chosen file on the chosen database, with the controls' settings."""
        path = project_path(self.file.value.strip()) if self.file.value.strip() else None
        if path is None:
            raise RefusedError("choose a file to climb first")
        key = (self.target.url, str(path), self.rungs.value.strip())
        if self._climb is None or key != self._key:
            self._climb, self._key = Climb(self.target, path, steps=self.rungs.value), key
            self._planned = None
        self._climb.options = ImportOptions(
            yes=self.yes.value, force=self.force.value, max_reject_rate=self.max_reject_rate.value
        )
        self._climb.verify_runs, self._climb.progress = self.runs.value, self._on_batch
        return self._climb

    def _on_batch(self, metrics: BatchMetrics) -> None:
        show_progress(self.progress, self.progress_label, metrics)

    def show_plan(self) -> None:
        """The plan: every rung with its range, the rejects validation predicts, what is new (a dry run)."""
        climbing = self.climbing
        message(self.messages, f"planning the climb of {climbing.path} (a dry run: nothing is written) ...")
        plan = climbing.plan(predict=True)
        fill(self.plan, [plan_note(plan), plan_table(plan)])
        message(self.messages, "The plan is below: Run next rung climbs its next rung.")

    def run_next(self) -> RungResult | None:
        """Run the next rung (and verify, and judge it; a failed one is undone), then show it."""
        climbing = self.climbing
        self._planned = None
        message(self.messages, f"climbing {climbing.path}: the next rung, then its verification ...")
        step = climbing.next_rung()
        self.progress.value, self.progress_label.value = 0, ""
        if step is None:
            message(self.messages, "Every rung has passed: nothing left to climb.")
            return None
        result = climbing.result
        failed = result.failed is step
        message(self.messages, rung_line(step) + (f"\n{result.next}" if failed else ""), error=failed)
        fill(self.plan, [plan_note(plan := climbing.plan()), plan_table(plan)])
        self._redraw()
        shown: list[object] = [failure_html(result)] if failed else []
        evidence = step.imported
        if evidence.rejected and evidence.import_id:
            found = rejected_import(
                evidence.import_id, evidence.source, evidence.rejected, evidence.records_read, evidence.rejects_path
            )
            shown += rejects_sections([found], step.max_reject_rate)
        if step.verification is not None:
            report = step.verification
            said = f"Verification after rung {step.number}: {passed_word(report.passed)} ({report.verdict})"
            shown.append(HTML(f"<p class='ef-climb-verified'>{escaped(said)}</p>"))
            shown += [checks_table(report), *failing_sections(report)]
        fill(self.details, shown)
        return step

    def _redraw(self) -> None:
        climbing = self._climb
        if climbing is None:
            return
        ids = [s.imported.import_id for s in climbing.result.rungs if s.imported.import_id]
        undone = {
            row["id"]
            for row in self.target.query(
                "SELECT id FROM ef_imports WHERE status = 'rolled_back' AND id IN (SELECT value FROM json_each(?))",
                (json.dumps(ids),),
            )
        }
        for step in climbing.result.rungs:  # undone here, or by any other command (a failed rung keeps its why)
            step.rolled_back = step.imported.import_id in undone and step is not climbing.result.failed
        fill(self.table, [climb_table(climbing.result)])
        fill(self.chart, [throughput(climbing.result)])

    def undo(self) -> None:
        """Show the plan of undoing the newest rung of this climb; with the box ticked, pressed again,
        carry out the plan shown (a backup first)."""
        climbing = self.climbing
        planned, self._planned = self._planned, None
        ticked, self.undo_confirm.value = self.undo_confirm.value, False
        if ticked and planned is not None and planned.url == self.target.url:
            message(self.messages, "undoing the rung shown: a backup first, then one transaction ...")
            done = planned.apply(self.target)
            self._redraw()
            fill(self.plan, [plan_note(plan := climbing.plan()), plan_table(plan)])
            message(self.messages, done.summary())
            return
        where = climbing.standing()
        row = where.pending or (where.passed[-1] if where.passed else None)
        if row is None:
            message(self.messages, f"Nothing to undo: no rung of {Path(climbing.path).name} is in the ledger.")
            return
        self._planned = plan_rollback(self.target, import_id=row["id"])
        then = (
            "Not undone: the plan below had not been shown yet. Tick the box and press again to undo it."
            if ticked
            else "Tick 'really undo' and press Undo rung again to undo this rung (a backup is taken first)."
        )
        message(self.messages, f"{self._planned.shown.summary()}\n{then}")
        fill(self.details, rollback_sections(self._planned.shown, self.target.url, plan=self._planned))
