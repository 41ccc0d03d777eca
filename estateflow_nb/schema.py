"""The tables, the allowed values and record validation: the one source of truth for all three.

`clean_record` turns a raw row (a mapping of column name to text or JSON value, as the readers give)
into a tuple of values in `RECORD_COLUMNS` order, or raises `RecordRejected` with the reason. The
importer keeps the reason beside the original row; nothing rejected is lost.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal, get_args

from ._time import LEDGER_FORMAT

INDUSTRIES = ("real_estate", "mortgage", "insurance", "legal", "home_inspection", "appraisal")
STATES = ("FL", "TX", "CA")
SUBSCRIPTION_TIERS = ("free", "basic", "premium", "enterprise")
VERIFICATION_STATUSES = ("pending", "verified", "rejected", "expired")

# The words the engine answers with. Each is a Literal, so mypy catches a misspelt status, and the
# tuple beside it is the same list for a menu or a check at run time.
ImportStatus = Literal["running", "completed", "failed", "rolled_back"]  # an import's row in ef_imports
IMPORT_STATUSES: tuple[ImportStatus, ...] = get_args(ImportStatus)
# What an ImportResult says: the ledger's status, or "dry_run" for a plan that wrote nothing.
ImportResultStatus = ImportStatus | Literal["dry_run"]
# What a license number already in the table does to a record: skip it, update the row, or fail.
OnConflict = Literal["skip", "update", "fail"]
ON_CONFLICT: tuple[OnConflict, ...] = get_args(OnConflict)
# A ladder rung's verdict: its import and verification went through, and at the old tool's pace?
RungVerdict = Literal[
    "pass",
    "nothing new",
    "below target",
    "import failed",
    "too many rejects",
    "verification failed",
    "dry run",
    "rolled back",
]
RollbackStrategy = Literal["last", "date", "industry", "import", "reset"]
# "planned" only while it asks for confirmation.
RollbackStatus = Literal["rolled_back", "dry_run", "nothing", "planned"]
# How the ledger writes times: see _time.
TIMESTAMP_FORMAT = LEDGER_FORMAT

# The columns a source may carry, in the order files are written and records are stored.
RECORD_COLUMNS = (
    "first_name",
    "last_name",
    "email",
    "phone",
    "company",
    "license_number",
    "industry",
    "state",
    "city",
    "rating",
    "review_count",
    "subscription_tier",
    "verification_status",
    "is_featured",
    "created_at",
    "updated_at",
)
REQUIRED_COLUMNS = ("first_name", "last_name", "email", "license_number", "industry", "state", "city")
PROVENANCE_COLUMNS = ("import_id", "imported_at")
# A dump of our own table carries these; they are accepted in a source and replaced by ours.
REPLACED_COLUMNS = ("id", *PROVENANCE_COLUMNS)
KNOWN_SOURCE_COLUMNS = frozenset(RECORD_COLUMNS) | frozenset(REPLACED_COLUMNS)
STORED_COLUMNS = (*RECORD_COLUMNS, *PROVENANCE_COLUMNS)
# Directory searches filter by place and profession and list the best rated first; verification
# groups by the same columns. These composite indexes serve both without touching the table.
INDEXES = {
    "industry": "industry, state, rating",
    "state": "state",
    "city": "city, state, industry, rating",
    "import_id": "import_id",
}

# Row-level rules that verification counts. Each is also the condition of a partial index, so the
# count reads only the (normally empty) set of offending rows; the index's upkeep at insert time
# is the cost of evaluating the rule once per row.
# (Each whitespace character gets its own GLOB: a character class costs SQLite four times as much.)
BAD_EMAIL_SQL = (
    "(email IS NULL OR email NOT GLOB '?*@?*.?*' OR email GLOB '*@*@*'"
    + "".join(f" OR email GLOB '*{space}*'" for space in " \t\n\r")
    + ")"
)
MISSING_REQUIRED_SQL = "(" + " OR ".join(f"{c} IS NULL OR trim({c}) = ''" for c in REQUIRED_COLUMNS) + ")"
# Two spellings of one license ("fl-123 ", "FL-123") are one license to a person, two to UNIQUE.
ODD_LICENSE_SQL = "(license_number != upper(trim(license_number)))"
PARTIAL_INDEXES = {
    "bad_email": ("id", BAD_EMAIL_SQL),
    "missing_required": ("id", MISSING_REQUIRED_SQL),
    "odd_license": ("license_number", ODD_LICENSE_SQL),
}

# The Python twin of BAD_EMAIL_SQL: one "@", no whitespace, text before it and a dot after it.
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+\Z")

PROFESSIONALS_DDL = """
CREATE TABLE IF NOT EXISTS professionals (
    id INTEGER PRIMARY KEY,
    first_name TEXT NOT NULL,
    last_name TEXT NOT NULL,
    email TEXT NOT NULL,
    phone TEXT,
    company TEXT,
    license_number TEXT NOT NULL UNIQUE,
    industry TEXT NOT NULL,
    state TEXT NOT NULL,
    city TEXT NOT NULL,
    rating REAL CHECK (rating IS NULL OR (rating >= 1.0 AND rating <= 5.0)),
    review_count INTEGER NOT NULL DEFAULT 0 CHECK (review_count >= 0),
    subscription_tier TEXT NOT NULL DEFAULT 'free',
    verification_status TEXT NOT NULL DEFAULT 'pending',
    is_featured INTEGER NOT NULL DEFAULT 0 CHECK (is_featured IN (0, 1)),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    import_id TEXT,
    imported_at TEXT
)"""

# One row per import. `checkpoint` is the number of source records fully handled (written,
# skipped or rejected) and committed: a resumed import starts reading after it. The counts are
# derived from the rows themselves (see _ledger.py): `row_mark` is the highest professionals.id
# they have taken in, and `image_mark` the highest rowid of its before-images, so each batch counts
# only the rows and images after them. A run holds the import while it
# writes: `claim` (the run's own id), `claim_owner` (host, process id and start) and `heartbeat_at`
# (its last write) tell a second run whether the first is still alive (see _claims.py).
# `undone_by` is the last rollback whose counts this row took, so that a rollback replayed in part
# counts once. A rung of a climb (see climb.py) imports a range of its file: records `first_record`
# to `last_record` (1-based; both NULL for a whole file), read from byte `start_offset` (NULL: by
# count), and ending at byte `end_offset` once completed, where the next rung starts reading;
# `rung_verdict` is the climb's judgement of it ('passed', or why it failed), NULL until judged.
# `deferred_indexes` (a JSON list of index names, NULL: none) says that a big import dropped those
# secondary indexes to load faster and builds them again when it ends (see _deferred_indexes.py).
IMPORTS_DDL = """
CREATE TABLE IF NOT EXISTS ef_imports (
    id TEXT PRIMARY KEY,
    source_path TEXT NOT NULL,
    source_sha256 TEXT NOT NULL,
    target TEXT NOT NULL,
    rung TEXT,
    on_conflict TEXT NOT NULL DEFAULT 'skip',
    batch_size INTEGER NOT NULL,
    status TEXT NOT NULL DEFAULT 'running',
    records_total INTEGER,
    checkpoint INTEGER NOT NULL DEFAULT 0,
    inserted INTEGER NOT NULL DEFAULT 0,
    updated INTEGER NOT NULL DEFAULT 0,
    skipped INTEGER NOT NULL DEFAULT 0,
    rejected INTEGER NOT NULL DEFAULT 0,
    removed INTEGER NOT NULL DEFAULT 0,
    batches INTEGER NOT NULL DEFAULT 0,
    rows_written INTEGER NOT NULL DEFAULT 0,
    rejects_path TEXT,
    rejects_bytes INTEGER NOT NULL DEFAULT 0,
    seconds REAL NOT NULL DEFAULT 0,
    error TEXT,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    rolled_back_at TEXT,
    row_mark INTEGER NOT NULL DEFAULT 0,
    image_mark INTEGER NOT NULL DEFAULT 0,
    claim TEXT,
    claim_owner TEXT,
    heartbeat_at TEXT,
    undone_by TEXT,
    first_record INTEGER,
    last_record INTEGER,
    start_offset INTEGER,
    end_offset INTEGER,
    rung_verdict TEXT,
    deferred_indexes TEXT
)"""

# What an on_conflict="update" import overwrote: the row as it was, keyed by the import that
# overwrote it, so that rolling that import back can put it back. Columns have no declared type so
# that values are kept exactly as they were stored.
BEFORE_IMAGES_DDL = """
CREATE TABLE IF NOT EXISTS ef_before_images (
    by_import TEXT NOT NULL,
    id INTEGER,
    {columns},
    PRIMARY KEY (by_import, license_number)
)""".format(columns=",\n    ".join(STORED_COLUMNS))

# One row per rollback, reset or restore: what was asked (strategy, JSON arguments), which imports
# it undid (a JSON list), how many rows it deleted and put back to earlier values, the backup taken
# just before it and, on D1, the Time Travel bookmark of the moment before it. A rollback too big for
# one request (D1) runs in parts over license ranges: `filled_upto` and `applied_upto` are how far it
# has got, and its claim columns say which run holds it, as for imports; `finished_at` is set last.
ROLLBACKS_DDL = """
CREATE TABLE IF NOT EXISTS ef_rollbacks (
    id TEXT PRIMARY KEY,
    strategy TEXT NOT NULL,
    arguments TEXT NOT NULL DEFAULT '{}',
    imports TEXT NOT NULL DEFAULT '[]',
    rows_removed INTEGER NOT NULL DEFAULT 0,
    rows_restored INTEGER NOT NULL DEFAULT 0,
    backup_path TEXT,
    bookmark TEXT,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    filled_upto TEXT,
    applied_upto TEXT,
    claim TEXT,
    claim_owner TEXT,
    heartbeat_at TEXT
)"""

# Scratch space of one rollback: the write history of every row it touches, one node per write
# (see rollback.py). Filled and emptied inside the rollback's own transaction, so it is always empty
# between statements lists; a real table because D1 keeps no temporary tables across requests.
ROLLBACK_WORK_DDL = """
CREATE TABLE IF NOT EXISTS ef_rollback_work (
    license_number TEXT NOT NULL,
    depth INTEGER NOT NULL,
    writer TEXT,
    slot TEXT,
    dead INTEGER NOT NULL,
    last_depth INTEGER NOT NULL,
    alive_top INTEGER,
    alive_bottom INTEGER,
    above_alive INTEGER,
    PRIMARY KEY (license_number, depth)
) WITHOUT ROWID"""

# One row per verification, so that a report can say what changed since the one before: when, the
# verdict, the rows, and as JSON each check's result ({name: {passed, failing, observed}}), each
# latency benchmark's median ({name: ms}) and the rows per industry and state ({"industry|state": n}).
VERIFICATIONS_DDL = """
CREATE TABLE IF NOT EXISTS ef_verifications (
    id TEXT PRIMARY KEY,
    checked_at TEXT NOT NULL,
    verdict TEXT NOT NULL,
    rows INTEGER NOT NULL,
    seconds REAL NOT NULL,
    checks TEXT NOT NULL DEFAULT '{}',
    latencies TEXT NOT NULL DEFAULT '{}',
    counts TEXT NOT NULL DEFAULT '{}'
)"""

# The indexes of professionals by name, as each is created.
INDEX_STATEMENTS = {
    **{
        f"idx_professionals_{name}": f"CREATE INDEX IF NOT EXISTS idx_professionals_{name} ON professionals({columns})"
        for name, columns in INDEXES.items()
    },
    **{
        f"idx_professionals_{name}": (
            f"CREATE INDEX IF NOT EXISTS idx_professionals_{name} ON professionals({column}) WHERE {condition}"
        )
        for name, (column, condition) in PARTIAL_INDEXES.items()
    },
}
# A rollback finds the earlier writes of an import it undoes by this column.
BEFORE_IMAGES_INDEX = "CREATE INDEX IF NOT EXISTS idx_before_images_import_id ON ef_before_images(import_id)"
# An import counts the before-images it kept since its last batch (`by_import = ? AND rowid > ?`),
# in the order it kept them: without this the count would read all it ever kept, every batch.
BEFORE_IMAGES_BY_IMPORT_INDEX = "CREATE INDEX IF NOT EXISTS idx_before_images_by_import ON ef_before_images(by_import)"

# Where D1 keeps the schema's version (SQLite keeps it in PRAGMA user_version).
SCHEMA_VERSION_DDL = "CREATE TABLE IF NOT EXISTS ef_schema (version INTEGER NOT NULL)"

# The whole current schema, for a new database (`_migrations` brings earlier ones up to it).
SCHEMA_STATEMENTS = (
    PROFESSIONALS_DDL,
    *INDEX_STATEMENTS.values(),
    IMPORTS_DDL,
    BEFORE_IMAGES_DDL,
    BEFORE_IMAGES_INDEX,
    BEFORE_IMAGES_BY_IMPORT_INDEX,
    ROLLBACKS_DDL,
    ROLLBACK_WORK_DDL,
    VERIFICATIONS_DDL,
)
# The tables a backup must hold to be restored; the others are created empty when missing.
CORE_TABLES = ("professionals", "ef_imports", "ef_before_images")


# No field of a directory entry is this long; the bound also keeps a record far inside D1's 2 MB row.
MAX_TEXT_LENGTH = 10_000
# The largest integer SQLite (and D1) stores: a review count beyond it could not be written.
MAX_INTEGER = 2**63 - 1
# A raw row that a reader could not turn into values (a JSON line nested too deep, a number with more
# digits than Python reads) carries only this key, whose value is the reason it is rejected for.
UNREADABLE = "\x00unreadable"


class RecordRejected(ValueError):
    """A raw row that cannot become a record; the message is the reason kept in the rejects file."""


def _shown(value: Any) -> str:
    """A value quoted for a reason, shortened: a rejected field may be megabytes long."""
    try:
        text = repr(value)
    except ValueError:  # an integer with more digits than Python writes out
        return "a number too long to show"
    return text if len(text) <= 60 else f"{text[:50]}... ({len(text):,} characters)"


def _text(raw: Mapping[str, Any], column: str) -> str | None:
    value = raw.get(column)
    if value is None:
        return None
    if not isinstance(value, str):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise RecordRejected(f"{column}: expected text, got {type(value).__name__}")
        value = _int_text(value, column) if isinstance(value, int) else str(value)
    value = value.strip()
    if len(value) > MAX_TEXT_LENGTH:
        raise RecordRejected(f"{column}: {len(value):,} characters, more than {MAX_TEXT_LENGTH:,}")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # JSON may spell a lone surrogate ("\ud800"); no database stores it
            raise RecordRejected(f"{column}: not valid Unicode text") from None
    return value or None


def _int_text(value: int, column: str) -> str:
    try:
        return str(value)
    except ValueError:  # more digits than Python writes out; far longer than any field anyway
        raise RecordRejected(f"{column}: a number too long to be text") from None


def _choice(raw: Mapping[str, Any], column: str, allowed: tuple[str, ...], default: str | None) -> str:
    value = _text(raw, column)
    if value is None:
        if default is None:
            raise RecordRejected(f"{column}: required")
        return default
    value = value.upper() if column == "state" else value.lower()
    if value not in allowed:
        raise RecordRejected(f"{column}: {_shown(value)} is not one of {', '.join(allowed)}")
    return value


def _not_ascii_digits(value: str, column: str) -> RecordRejected:
    # float() and int() also read other scripts' digits ("５", "٣") and underscores ("1_000"): a
    # directory's numbers are written in ASCII digits, and anything else is more likely a mistake.
    return RecordRejected(f"{column}: {_shown(value)} is not a number in ASCII digits")


def _rating(raw: Mapping[str, Any]) -> float | None:
    # The hot path: text from a CSV. Checks are inline and the common case goes straight through.
    value = raw.get("rating")
    if value is None or value == "":
        return None
    try:
        if type(value) is str:
            if not value.isascii() or "_" in value:
                raise _not_ascii_digits(value, "rating")
        elif isinstance(value, bool) or not isinstance(value, _NUMBERS):
            raise ValueError
        rating = float(value)
    except RecordRejected:
        raise
    except ValueError:
        raise RecordRejected(f"rating: {_shown(value)} is not a number") from None
    except OverflowError:  # an integer beyond any float: far outside the range
        rating = math.inf
    if not 1.0 <= rating <= 5.0:  # NaN fails this too
        raise RecordRejected(f"rating: {_shown(value)} is outside 1.0 to 5.0")
    return rating


def _review_count(raw: Mapping[str, Any]) -> int:
    value = raw.get("review_count")
    if value is None or value == "":
        return 0
    count = -1
    if type(value) is str:
        if not value.isascii() or "_" in value:
            raise _not_ascii_digits(value, "review_count")
        try:  # noqa: SIM105 (contextlib.suppress costs a third of this function, on the hot path)
            count = int(value)
        except ValueError:  # not digits, or more of them than Python reads
            pass
    elif isinstance(value, int) and not isinstance(value, bool):
        count = value
    elif isinstance(value, float) and value.is_integer():
        count = int(value)
    if count < 0:
        raise RecordRejected(f"review_count: {_shown(value)} is not a whole number >= 0")
    if count > MAX_INTEGER:
        raise RecordRejected(f"review_count: {_shown(value)} is more than {MAX_INTEGER:,}, the largest stored")
    return count


_NUMBERS = (str, int, float)
_TRUE = {"1", "true", "yes", "y", "t"}
_FALSE = {"0", "false", "no", "n", "f", ""}


def _flag(raw: Mapping[str, Any]) -> int:
    value = raw.get("is_featured")
    if value is None or value is False or value == 0:
        return 0
    if value is True or value == 1:
        return 1
    text = str(value).strip().lower()
    if text in _TRUE:
        return 1
    if text in _FALSE:
        return 0
    raise RecordRejected(f"is_featured: {_shown(value)} is not 0/1 or true/false")


def _timestamp(raw: Mapping[str, Any], column: str, default: str) -> str:
    value = _text(raw, column)
    if value is None:
        return default
    try:
        datetime.fromisoformat(value)
    except ValueError:
        raise RecordRejected(f"{column}: {_shown(value)} is not an ISO-8601 timestamp") from None
    return value


def clean_record(raw: Mapping[str, Any], now: str) -> tuple[Any, ...]:
    """Validate and normalise one raw row into a tuple in `RECORD_COLUMNS` order.

    `now` (ISO-8601) fills `created_at`/`updated_at` when the source has none. Enumerations are
    case-folded, text is stripped, empty optional text becomes NULL.
    """
    names = []
    for column in ("first_name", "last_name", "license_number", "city"):
        value = _text(raw, column)
        if value is None:
            if UNREADABLE in raw:
                raise RecordRejected(raw[UNREADABLE])
            raise RecordRejected(f"{column}: required")
        names.append(value)
    first_name, last_name, license_number, city = names
    email = _text(raw, "email")
    if email is None:
        raise RecordRejected("email: required")
    if not EMAIL_RE.match(email):
        raise RecordRejected(f"email: {_shown(email)} is not a valid address")
    created_at = _timestamp(raw, "created_at", now)
    return (
        first_name,
        last_name,
        email,
        _text(raw, "phone"),
        _text(raw, "company"),
        license_number,
        _choice(raw, "industry", INDUSTRIES, None),
        _choice(raw, "state", STATES, None),
        city,
        _rating(raw),
        _review_count(raw),
        _choice(raw, "subscription_tier", SUBSCRIPTION_TIERS, "free"),
        _choice(raw, "verification_status", VERIFICATION_STATUSES, "pending"),
        _flag(raw),
        created_at,
        _timestamp(raw, "updated_at", created_at),
    )


def unknown_columns(columns: Any) -> list[str]:
    """The names in `columns` that are not columns of a professionals record, in their order."""
    return [c for c in columns if c not in KNOWN_SOURCE_COLUMNS]
