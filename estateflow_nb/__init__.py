"""estateflow_nb: load, verify and roll back EstateFlow's professionals directory.

target = connect("sqlite:///data/estateflow.db")      # or "d1://ACCOUNT/DATABASE"
result = import_file(target, "data/small-100.sql")
report = verify(target)                               # in a notebook, shows itself: verdict, figures, checks
frame = read_sql(target, "SELECT state, COUNT(*) AS n FROM professionals GROUP BY state")  # read-only
undone = rollback(target, import_id=result.import_id, yes=True)   # backs up first
html = run_report("verification").html               # papermill + nbconvert: reports/verification-*.html

The notebooks' presentation layer (`plots`, `views`, `widgets`, `reports`) is imported on first use:
`import estateflow_nb` stays light enough for the CLI and for the child process of every big import.
"""

import importlib as _importlib

__version__ = "0.1.0"

from .backup import (
    BackupInfo,
    Backups,
    RestoreResult,
    backup,
    backups_folder,
    database_key,
    list_backups,
    newest_backup,
    prune_backups,
    restore,
)
from .climb import Climb, ClimbPlan, ClimbResult, PlannedRung, Standing, climb, parse_steps
from .errors import (
    AuthError,
    BackupError,
    ConfirmationRequired,
    ConflictError,
    EstateFlowError,
    ImportFailedError,
    NoDatabaseError,
    QuotaExceededError,
    RefusedError,
    SourceChangedError,
    SourceError,
    SqlError,
    TargetError,
    TooLargeError,
    TransientError,
    UnsafeBackupError,
    UnsafeDumpError,
    until_reset,
)
from .importer import BatchMetrics, ImportOptions, ImportResult, ImportSettings, import_file
from .ladder import (
    LadderResult,
    RungResult,
    import_verdict,
    nothing_new,
    rejected_share,
    run_from_parameters,
    run_ladder,
    run_rung,
)
from .query import read_sql
from .rollback import RollbackPlan, RollbackResult, chosen_strategy, plan_rollback, rollback
from .rungs import LADDER_FILES, RUNGS, Rung, check_confirmation, rung_for
from .schema import RecordRejected, clean_record, unknown_columns
from .sources import SourceInfo, Span, file_sha256, read_rows, scan, source_format
from .status import StatusReport, status
from .targets import DEFAULT_DB_URL, Target, connect, describe_url, project_path, project_root, resolve_url
from .time_travel import BookmarkRestoreResult, restore_bookmark
from .verify import (
    BenchmarkResult,
    Check,
    CheckResult,
    Evidence,
    Finding,
    VerifyReport,
    brief,
    check,
    run_benchmarks,
    run_checks,
    verify,
)

# Public names that live in heavy modules (matplotlib, papermill): imported when first asked for.
_LAZY = {"ReportResult": "reports", "run_report": "reports"}
# The generator builds its tables when imported (tens of milliseconds): every command would pay them.
_LAZY |= dict.fromkeys(["generate_records", "invalid_count", "write_ladder", "write_records"], "generate")


def __getattr__(name: str) -> object:
    if name in _LAZY:
        value = getattr(_importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DEFAULT_DB_URL",
    "LADDER_FILES",
    "RUNGS",
    "AuthError",
    "BackupError",
    "BackupInfo",
    "Backups",
    "BatchMetrics",
    "BenchmarkResult",
    "BookmarkRestoreResult",
    "Check",
    "CheckResult",
    "Climb",
    "ClimbPlan",
    "ClimbResult",
    "ConfirmationRequired",
    "ConflictError",
    "EstateFlowError",
    "Evidence",
    "Finding",
    "ImportFailedError",
    "ImportOptions",
    "ImportResult",
    "ImportSettings",
    "LadderResult",
    "NoDatabaseError",
    "PlannedRung",
    "QuotaExceededError",
    "RecordRejected",
    "RefusedError",
    "ReportResult",
    "RestoreResult",
    "RollbackPlan",
    "RollbackResult",
    "Rung",
    "RungResult",
    "SourceChangedError",
    "SourceError",
    "SourceInfo",
    "Span",
    "SqlError",
    "Standing",
    "StatusReport",
    "Target",
    "TargetError",
    "TooLargeError",
    "TransientError",
    "UnsafeBackupError",
    "UnsafeDumpError",
    "VerifyReport",
    "backup",
    "backups_folder",
    "brief",
    "check",
    "check_confirmation",
    "chosen_strategy",
    "clean_record",
    "climb",
    "connect",
    "database_key",
    "describe_url",
    "file_sha256",
    "generate_records",
    "import_file",
    "import_verdict",
    "invalid_count",
    "list_backups",
    "newest_backup",
    "nothing_new",
    "parse_steps",
    "plan_rollback",
    "project_path",
    "project_root",
    "prune_backups",
    "read_rows",
    "read_sql",
    "rejected_share",
    "resolve_url",
    "restore",
    "restore_bookmark",
    "rollback",
    "run_benchmarks",
    "run_checks",
    "run_from_parameters",
    "run_ladder",
    "run_report",
    "run_rung",
    "rung_for",
    "scan",
    "source_format",
    "status",
    "unknown_columns",
    "until_reset",
    "verify",
    "write_ladder",
    "write_records",
]
