"""estateflow_nb: load, verify and roll back EstateFlow's professionals directory.

target = connect("sqlite:///data/estateflow.db")      # or "d1://ACCOUNT/DATABASE"
result = import_file(target, "data/small-100.sql")
report = verify(target)
undone = rollback(target, import_id=result.import_id, yes=True)   # backs up first
"""

__version__ = "0.1.0"

from .backup import BackupInfo, RestoreResult, backup, list_backups, newest_backup, prune_backups, restore
from .errors import (
    AuthError,
    BackupError,
    ConfirmationRequired,
    ConflictError,
    EstateFlowError,
    ImportFailedError,
    QuotaExceededError,
    SourceChangedError,
    SourceError,
    SqlError,
    TargetError,
    TransientError,
    UnsafeDumpError,
)
from .generate import LADDER_FILES, generate_records, write_ladder, write_records
from .importer import BatchMetrics, ImportResult, import_file
from .ladder import LadderResult, RungResult, run_ladder
from .rollback import RollbackResult, rollback
from .rungs import RUNGS, Rung, rung_for
from .schema import RecordRejected, clean_record
from .sources import SourceInfo, read_rows, scan
from .status import StatusReport, status
from .targets import DEFAULT_DB_URL, Target, connect
from .verify import BenchmarkResult, CheckResult, VerifyReport, run_benchmarks, verify

__all__ = [
    "DEFAULT_DB_URL",
    "LADDER_FILES",
    "RUNGS",
    "AuthError",
    "BackupError",
    "BackupInfo",
    "BatchMetrics",
    "BenchmarkResult",
    "CheckResult",
    "ConfirmationRequired",
    "ConflictError",
    "EstateFlowError",
    "ImportFailedError",
    "ImportResult",
    "LadderResult",
    "QuotaExceededError",
    "RecordRejected",
    "RestoreResult",
    "RollbackResult",
    "Rung",
    "RungResult",
    "SourceChangedError",
    "SourceError",
    "SourceInfo",
    "SqlError",
    "StatusReport",
    "Target",
    "TargetError",
    "TransientError",
    "UnsafeDumpError",
    "VerifyReport",
    "backup",
    "clean_record",
    "connect",
    "generate_records",
    "import_file",
    "list_backups",
    "newest_backup",
    "prune_backups",
    "read_rows",
    "restore",
    "rollback",
    "run_benchmarks",
    "run_ladder",
    "rung_for",
    "scan",
    "status",
    "verify",
    "write_ladder",
    "write_records",
]
