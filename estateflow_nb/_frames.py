"""Results as pandas DataFrames (`to_frame()`), each column in its proper dtype.

Counts are int64 (Int64 where a value may be missing), measures float64, times datetime64[ns, UTC]
(a time that does not parse becomes NaT rather than failing the frame), flags bool (boolean where
missing), text as pandas itself holds text (`str` from pandas 3 on, object before). The values are
the engine's own, unformatted: the tables of a report format them, a frame is for computing.

pandas is imported here, and this module only from the results' `to_frame` methods: `import
estateflow_nb` never loads pandas.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd

if TYPE_CHECKING:
    from .backup import BackupInfo, RestoreResult
    from .importer import BatchMetrics
    from .reports import ReportResult
    from .time_travel import BookmarkRestoreResult
    from .verify import CheckResult

Kind = Literal["int", "count", "float", "time", "text", "bool", "flag"]
Columns = Mapping[str, Kind]

# Text as this pandas holds it by itself: `str` from pandas 3 on (missing values NaN), object before.
TEXT = pd.Series(["text"]).dtype
_DTYPES: dict[Kind, Any] = {
    "int": "int64",
    "count": pd.Int64Dtype(),
    "float": "float64",
    "bool": "bool",
    "flag": pd.BooleanDtype(),
}


def typed(rows: Iterable[Mapping[str, Any]], columns: Columns) -> pd.DataFrame:
    """A frame of `rows` with exactly `columns`, in order, each converted to its kind's dtype."""
    frame = pd.DataFrame([{c: row.get(c) for c in columns} for row in rows], columns=list(columns))
    for name, kind in columns.items():
        frame[name] = _converted(frame[name], kind)
    return frame


def _converted(values: pd.Series[Any], kind: Kind) -> pd.Series[Any]:
    if kind == "time":
        moments = pd.to_datetime(values.astype(object), utc=True, format="ISO8601", errors="coerce")
        return moments.astype("datetime64[ns, UTC]")  # one unit, whatever pandas inferred from the text
    if kind == "text":
        return values.astype(object).where(values.notna(), None).astype(TEXT)
    return values.astype(_DTYPES[kind])


BATCH_COLUMNS: Columns = {
    "number": "int",
    "records": "int",
    "inserted": "int",
    "updated": "int",
    "skipped": "int",
    "rejected": "int",
    "seconds": "float",
    "records_per_second": "float",
    "done": "int",
    "total": "int",
    "elapsed": "float",
}


def batches_frame(metrics: Iterable[BatchMetrics]) -> pd.DataFrame:
    return typed(({**asdict(m), "records_per_second": m.records_per_second} for m in metrics), BATCH_COLUMNS)


RUNG_COLUMNS: Columns = {
    "rung": "text",
    "file": "text",
    "records": "int",
    "inserted": "int",
    "skipped": "int",
    "rejected": "int",
    "rejected_share": "float",
    "max_reject_rate": "float",
    "seconds": "float",
    "records_per_second": "float",
    "target_rate": "float",
    "verified": "flag",
    "verdict": "text",
}

CHECK_COLUMNS: Columns = {
    "number": "int",
    "name": "text",
    "title": "text",
    "passed": "bool",
    "failing": "int",
    "kinds": "int",
    "observed": "text",
    "expected": "text",
    "seconds": "float",
}


def checks_frame(checks: Iterable[CheckResult]) -> pd.DataFrame:
    """One row per check; `observed` is its one line for people, `expected` as text."""
    rows = ({**asdict(c), "observed": c.summary, "expected": str(c.expected)} for c in checks)
    return typed(rows, CHECK_COLUMNS)


KIND_COLUMNS: Columns = {"kind": "text", "rows": "int", "share": "float"}


def kinds_frame(check: CheckResult) -> pd.DataFrame:
    """A check's failing rows by kind of failure, most common first: how many, and their share of all rows."""
    return typed(({"kind": g.kind, "rows": g.count, "share": g.share} for g in check.groups), KIND_COLUMNS)


LEDGER_COLUMNS: Columns = {
    "id": "text",
    "source_path": "text",
    "status": "text",
    "rung": "text",
    "records_total": "count",
    "checkpoint": "int",
    "inserted": "int",
    "updated": "int",
    "skipped": "int",
    "rejected": "int",
    "removed": "int",
    "batches": "int",
    "seconds": "float",
    "started_at": "time",
    "finished_at": "time",
    "rolled_back_at": "time",
    "error": "text",
}

# A rollback's rows by industry and state, as they were.
PLACE_COLUMNS: Columns = {"industry": "text", "state": "text", "removed": "int", "restored": "int"}

BACKUP_COLUMNS: Columns = {
    "path": "text",
    "taken_at": "time",
    "size_bytes": "int",
    "rows": "count",
    "imports": "count",
    "sql_dump": "text",
    "error": "text",
    "database": "text",
}


def backups_frame(backups: Iterable[BackupInfo]) -> pd.DataFrame:
    return typed((asdict(b) for b in backups), BACKUP_COLUMNS)


RESTORE_COLUMNS: Columns = {
    "path": "text",
    "target": "text",
    "rows": "int",
    "imports": "int",
    "rows_before": "int",
    "imports_before": "int",
    "backup_path": "text",
    "dry_run": "bool",
    "seconds": "float",
}

BOOKMARK_COLUMNS: Columns = {
    "target": "text",
    "bookmark": "text",
    "at": "time",
    "current_bookmark": "text",
    "rows_before": "int",
    "imports_before": "int",
    "dry_run": "bool",
    "restored_bookmark": "text",
    "previous_bookmark": "text",
    "rows": "count",
    "imports": "count",
    "record_id": "text",
    "seconds": "float",
}

REPORT_COLUMNS: Columns = {"name": "text", "html": "text", "notebook": "text", "seconds": "float"}


def one_row(result: RestoreResult | BookmarkRestoreResult | ReportResult, columns: Columns) -> pd.DataFrame:
    """A result of one thing done as a frame of one row (paths as text)."""
    values = {k: str(v) if k in ("html", "notebook") else v for k, v in vars(result).items()}
    return typed([values], columns)
