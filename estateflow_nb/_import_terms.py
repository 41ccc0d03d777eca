"""What an import is asked (ImportOptions, or its fields as keyword ImportSettings) and what it
answers (ImportResult, with a BatchMetrics per commit): the terms of `importer.import_file`, apart from
its engine so that each module stays small."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

from ._look import visible
from ._rejected import DEFAULT_MAX_REJECT_RATE
from ._retry import ATTEMPTS
from .errors import EstateFlowError
from .schema import ON_CONFLICT, ImportResultStatus, OnConflict
from .sources import Span

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class ImportOptions:
    """How to import a file: every setting of `import_file` but the callbacks.

    Without `batch_size`, the file's rung sets it and its safety rule applies: `yes` (or a `confirm`
    callback) for large files, `force` for extra large ones. An unfinished import of the same file is
    resumed after its checkpoint unless `resume=False`. Rejected records go to
    `<import id>.rejects.csv` in `rejects_dir` (default: beside the file). `free_tier` (D1) plans the
    import against today's free-tier row-write budget and refuses one that does not fit, unless
    `split_days`, which stops cleanly at the budget instead. `max_reject_rate` is the share of rejected
    records above which the import (or the ladder's rung) fails its verdict, though its rows stay in.

    `on_conflict` changes what an import does, so a resume keeps the one its first run recorded:
    None (the default) takes it, and a different one is refused. What changes only how (batch size,
    delay, rejects folder) may change on resume.
    """

    batch_size: int | None = None
    delay_ms: float = 0  # between batches
    dry_run: bool = False  # validate and predict; write nothing
    on_conflict: OnConflict | None = None  # None: as the resumed import recorded it, else "skip"
    yes: bool = False
    force: bool = False
    resume: bool = True
    rejects_dir: str | Path | None = None
    retries: int = ATTEMPTS  # attempts per batch while the target answers with a transient error
    free_tier: bool = False
    split_days: bool = False
    max_reject_rate: float = DEFAULT_MAX_REJECT_RATE
    span: Span | None = None  # a range of the file's records (a rung of a climb); None: all of them

    def __post_init__(self) -> None:
        if self.on_conflict is not None and self.on_conflict not in ON_CONFLICT:
            raise EstateFlowError(f"on_conflict must be one of {', '.join(ON_CONFLICT)}, not {self.on_conflict!r}")
        if self.batch_size is not None and self.batch_size < 1:
            raise EstateFlowError(f"batch size must be at least 1, not {self.batch_size}")
        if self.retries < 1:
            raise EstateFlowError(f"retries must be at least 1, not {self.retries}")
        if self.delay_ms < 0:
            raise EstateFlowError(f"delay must be 0 ms or more, not {self.delay_ms}")
        if not 0 <= self.max_reject_rate <= 1:
            raise EstateFlowError(f"the largest reject rate is a share from 0 to 1, not {self.max_reject_rate}")

    @classmethod
    def given(cls, options: ImportOptions | None, settings: ImportSettings) -> ImportOptions:
        """`options` (default: every default) with keyword `settings` on top, as every entry point takes them."""
        base = options or cls()
        return replace(base, **settings) if settings else base


class ImportSettings(TypedDict, total=False):
    """The fields of ImportOptions as keyword arguments (`import_file(target, path, batch_size=50)`),
    so that mypy checks them there too."""

    batch_size: int | None
    delay_ms: float
    dry_run: bool
    on_conflict: OnConflict | None
    yes: bool
    force: bool
    resume: bool
    rejects_dir: str | Path | None
    retries: int
    free_tier: bool
    split_days: bool
    max_reject_rate: float
    span: Span | None


@dataclass
class BatchMetrics:
    """One committed batch, for progress bars and throughput charts."""

    number: int
    records: int
    inserted: int
    updated: int
    skipped: int
    rejected: int
    seconds: float
    done: int  # source records handled so far, this batch included: the checkpoint
    total: int
    elapsed: float  # seconds since this run started, at the end of this batch

    @property
    def records_per_second(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0


@dataclass
class ImportResult:
    """What an import (or a dry run) did. Counts cover the whole import, resumed runs included."""

    import_id: str | None
    source: str
    target: str
    rung: str
    batch_size: int
    on_conflict: OnConflict
    status: ImportResultStatus
    records_total: int
    records_read: int = 0
    inserted: int = 0
    updated: int = 0
    skipped: int = 0
    rejected: int = 0
    batches: int = 0
    seconds: float = 0.0  # this run only
    rejects_path: str | None = None
    resumed_from: int = 0
    dry_run: bool = False
    error: str | None = None
    reject_reasons: Counter[str] = field(default_factory=Counter)
    batch_metrics: list[BatchMetrics] = field(default_factory=list)
    end_offset: int | None = None  # of a range: the byte offset after its last record, where known

    @property
    def records_per_second(self) -> float:
        handled = self.records_read - self.resumed_from
        return handled / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["records_per_second"] = round(self.records_per_second, 1)
        data["reject_reasons"] = dict(self.reject_reasons.most_common())
        data["batch_metrics"] = [
            {**asdict(m), "records_per_second": round(m.records_per_second, 1)} for m in self.batch_metrics
        ]
        return data

    def _repr_html_(self) -> str:
        from ._display import import_html

        return import_html(self)

    def to_frame(self) -> pd.DataFrame:
        """This run's batches, one row each: records, inserted, updated, skipped, rejected, seconds,
        records_per_second, done (the checkpoint after it), total, elapsed."""
        from ._frames import batches_frame

        return batches_frame(self.batch_metrics)

    def __repr__(self) -> str:
        head = f"dry run of {visible(self.source)}" if self.dry_run else f"{visible(self.import_id)} {self.status}"
        return (
            f"<ImportResult {head}: {self.records_read:,} read, {self.inserted:,} inserted, {self.updated:,} updated,"
            f" {self.skipped:,} skipped, {self.rejected:,} rejected in {self.seconds:.2f} s>"
        )

    def summary(self) -> str:
        """A few lines for a person: what happened and where the rejects went."""
        verb = "would import" if self.dry_run else "imported"
        head = f"dry run of {self.source}" if self.dry_run else f"import {self.import_id} ({self.status})"
        lines = [
            f"{head}: {self.rung} rung, batch size {self.batch_size:,}",
            f"  records read {self.records_read:,} of {self.records_total:,}"
            + (f" (resumed after {self.resumed_from:,})" if self.resumed_from else ""),
            f"  {verb} {self.inserted:,}, updated {self.updated:,}, skipped {self.skipped:,} (duplicates),"
            f" rejected {self.rejected:,}",
            f"  {self.batches:,} batches in {self.seconds:.2f} s, {self.records_per_second:,.0f} records/s",
        ]
        if self.rejected:
            reasons = "; ".join(f"{n:,} x {r}" for r, n in self.reject_reasons.most_common(3))
            where = f" -> {self.rejects_path}" if self.rejects_path else ""
            lines.append(f"  rejects{where}" + (f" ({reasons})" if reasons else ""))
        if self.error:
            lines.append(f"  stopped: {self.error}")
        return "\n".join(lines)
