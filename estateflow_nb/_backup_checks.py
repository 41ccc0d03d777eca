"""What a SQLite file from elsewhere must be before its data is read: a backup to restore or to list.

A file is ours when its `sqlite_master` holds exactly the objects of a schema version that
`_migrations` brings up to today's: the same tables with the same SQL (so the same columns, types,
defaults and constraints), the same indexes with the same SQL, and nothing else (no trigger, no view,
no other table). A trigger in a restored file would run inside every later import; a view named
professionals would run whenever the file is counted. The check reads `sqlite_master` and the header's
user_version only, before any query touches a row.

Every read of such a file runs under hard limits and a budget of SQLite steps (a progress handler)
proportional to the file's size, many times what an integrity check of a sound file takes: a second
wall, so that even a file that got past the check cannot hang a command.

Which objects each version has: the schemas made before versions were kept (version 0) are frozen
below as they were released; each later version's objects are what its migrations make of those, of
what a new database got at an earlier version (`FRESH_AT`), and today's version also what
`schema.SCHEMA_STATEMENTS` creates in a new database.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

from ._files import open_read_only
from ._migrations import MIGRATIONS, SCHEMA_VERSION, as_stored, read_shape
from .errors import UnsafeBackupError
from .schema import IMPORTS_DDL, SCHEMA_STATEMENTS, SCHEMA_VERSION_DDL

Objects = frozenset[tuple[str, str, str]]  # (type, name, sql) of every table and index that has SQL

STEPS_PER_CALL = 1_000
STEPS_PER_BYTE = 4  # an integrity check of a sound file takes about 0.26
STEPS_AT_LEAST = 10_000_000
_LIMITS = {
    sqlite3.SQLITE_LIMIT_LENGTH: 16 << 20,
    sqlite3.SQLITE_LIMIT_SQL_LENGTH: 1 << 20,
    sqlite3.SQLITE_LIMIT_EXPR_DEPTH: 100,
    sqlite3.SQLITE_LIMIT_ATTACHED: 0,
}

# --- the schemas before versions were kept, frozen as released -----------------------------------------

_PROFESSIONALS = """CREATE TABLE professionals (
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
_IMPORTS = """CREATE TABLE ef_imports (
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
    rolled_back_at TEXT
)"""
_STORED = (
    "first_name, last_name, email, phone, company, license_number, industry, state, city, rating, review_count,"
    " subscription_tier, verification_status, is_featured, created_at, updated_at, import_id, imported_at"
)
_BEFORE_IMAGES = (
    "CREATE TABLE ef_before_images (\n    by_import TEXT NOT NULL,\n    id INTEGER,\n    "
    + ",\n    ".join(_STORED.split(", "))
    + ",\n    PRIMARY KEY (by_import, license_number)\n)"
)
_ROLLBACKS_WITHOUT_BOOKMARK = """CREATE TABLE ef_rollbacks (
    id TEXT PRIMARY KEY,
    strategy TEXT NOT NULL,
    arguments TEXT NOT NULL DEFAULT '{}',
    imports TEXT NOT NULL DEFAULT '[]',
    rows_removed INTEGER NOT NULL DEFAULT 0,
    rows_restored INTEGER NOT NULL DEFAULT 0,
    backup_path TEXT,
    started_at TEXT NOT NULL,
    finished_at TEXT
)"""
_ROLLBACKS = _ROLLBACKS_WITHOUT_BOOKMARK.replace("    started_at", "    bookmark TEXT,\n    started_at")
_ROLLBACK_WORK = """CREATE TABLE ef_rollback_work (
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
_SPACES = "".join(f" OR email GLOB '*{space}*'" for space in " \t\n\r")
_REQUIRED = " OR ".join(
    f"{c} IS NULL OR trim({c}) = ''"
    for c in ("first_name", "last_name", "email", "license_number", "industry", "state", "city")
)
_FIRST_INDEXES = (
    "CREATE INDEX idx_professionals_industry ON professionals(industry, rating)",
    "CREATE INDEX idx_professionals_state ON professionals(state)",
    "CREATE INDEX idx_professionals_city ON professionals(city, rating)",
    "CREATE INDEX idx_professionals_import_id ON professionals(import_id)",
)
_CHECK_INDEXES = (
    "CREATE INDEX idx_professionals_industry ON professionals(industry, state, rating)",
    "CREATE INDEX idx_professionals_state ON professionals(state)",
    "CREATE INDEX idx_professionals_city ON professionals(city, state, industry, rating)",
    "CREATE INDEX idx_professionals_import_id ON professionals(import_id)",
    "CREATE INDEX idx_professionals_bad_email ON professionals(id) WHERE (email IS NULL OR email NOT GLOB"
    f" '?*@?*.?*' OR email GLOB '*@*@*'{_SPACES})",
    f"CREATE INDEX idx_professionals_missing_required ON professionals(id) WHERE ({_REQUIRED})",
    "CREATE INDEX idx_professionals_odd_license ON professionals(license_number)"
    " WHERE (license_number != upper(trim(license_number)))",
)
_BEFORE_IMAGES_INDEX = "CREATE INDEX idx_before_images_import_id ON ef_before_images(import_id)"
_ROLLBACK_TABLES = (_BEFORE_IMAGES_INDEX, _ROLLBACKS, _ROLLBACK_WORK)

# The commits that made them (tests/fixtures/schemas/ holds a database of each).
UNVERSIONED: dict[str, tuple[str, ...]] = {
    "the first release (51fb539)": (_PROFESSIONALS, *_FIRST_INDEXES, _IMPORTS, _BEFORE_IMAGES),
    "the check indexes (7568d75)": (_PROFESSIONALS, *_CHECK_INDEXES, _IMPORTS, _BEFORE_IMAGES),
    "the rollback branch (78bbd6f)": (
        _PROFESSIONALS,
        *_FIRST_INDEXES,
        _IMPORTS,
        _BEFORE_IMAGES,
        _BEFORE_IMAGES_INDEX,
        _ROLLBACKS_WITHOUT_BOOKMARK,
        _ROLLBACK_WORK,
    ),
    "both merged (8e2979d)": (_PROFESSIONALS, *_CHECK_INDEXES, _IMPORTS, _BEFORE_IMAGES, *_ROLLBACK_TABLES),
}
# --- the schemas new databases got at a version, frozen where a later version changed them -------------

# ef_imports as version 5 created it in a new database. Version 6 adds its columns with ALTER TABLE,
# which leaves the SQL of a database made at version 5 unlike a new one's.
_IMPORTS_V5 = """
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
    undone_by TEXT
)"""
# version -> the statements of a new database at that version. Every statement but the frozen ones is
# today's, unchanged since (tests/fixtures/schemas/v5-*.db checks it): a version that changes another
# freezes that one here too.
_IMPORTS_V6 = IMPORTS_DDL.replace(",\n    deferred_indexes TEXT", "")
FRESH_AT: dict[int, tuple[str, ...]] = {
    5: tuple(_IMPORTS_V5 if statement == IMPORTS_DDL else statement for statement in SCHEMA_STATEMENTS),
    6: tuple(_IMPORTS_V6 if statement == IMPORTS_DDL else statement for statement in SCHEMA_STATEMENTS),
}
# D1 keeps the version in a table; a backup of a D1 database carries it.
_VERSION_TABLE = ("table", "ef_schema", as_stored(SCHEMA_VERSION_DDL))


def _objects_of(conn: sqlite3.Connection) -> Objects:
    # SQLite's own tables (sqlite_sequence, sqlite_stat1) count too: no database of ours has them.
    # The indexes SQLite makes for UNIQUE and PRIMARY KEY have no SQL: the table's SQL implies them.
    rows = conn.execute(
        "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL AND type IN ('table', 'index')"
    ).fetchall()
    return frozenset((str(t), str(n), str(s).strip()) for t, n, s in rows)


def _made(statements: tuple[str, ...], version: int) -> Objects:
    """The objects a database has after `statements`, then the migrations up to `version`."""
    from .targets import SQLiteTarget  # the migrations speak to a target

    target = SQLiteTarget(":memory:")
    try:
        for statement in statements:
            target.connection.execute(statement)
        shape = read_shape(target)
        for migration in MIGRATIONS:
            if migration.version <= version:
                migration.apply(shape)
        for statement in shape.statements:
            target.connection.execute(statement)
        return _objects_of(target.connection)
    finally:
        target.close()


@cache
def known_shapes(version: int) -> tuple[Objects, ...]:
    """Every set of objects a database of ours at `version` may hold (the version table aside)."""
    shapes = {_made(statements, version) for statements in UNVERSIONED.values()}
    shapes |= {_made(statements, version) for made_at, statements in FRESH_AT.items() if made_at <= version}
    if version == SCHEMA_VERSION:
        shapes.add(_made(SCHEMA_STATEMENTS, version))
    return tuple(shapes)


class _Steps:
    """The progress handler: stops any statement once the connection has used its budget of steps."""

    def __init__(self, budget: int) -> None:
        self.calls = 0
        self.stop_at = budget // STEPS_PER_CALL

    def __call__(self) -> int:
        self.calls += 1
        return int(self.calls > self.stop_at)


@contextmanager
def untrusted(path: Path, *, budget: int | None = None) -> Iterator[sqlite3.Connection]:
    """The SQLite file at `path`, opened only to read, under limits and a budget of steps (default:
    proportional to its size). SQLite's errors come out as UnsafeBackupError with one line."""
    steps = _Steps(budget if budget is not None else STEPS_AT_LEAST + STEPS_PER_BYTE * path.stat().st_size)
    try:
        conn = open_read_only(path)
    except sqlite3.Error as error:
        raise UnsafeBackupError(f"{path} is not a usable SQLite database ({error})") from None
    try:
        for limit, value in _LIMITS.items():
            conn.setlimit(limit, value)
        conn.execute("PRAGMA trusted_schema = OFF")
        conn.set_progress_handler(steps, STEPS_PER_CALL)
        yield conn
    except sqlite3.Error as error:
        if str(error) == "interrupted":
            raise UnsafeBackupError(
                f"{path}: reading it takes more than {steps.stop_at * STEPS_PER_CALL:,} steps, far more than a"
                " backup of its size needs: refused"
            ) from None
        raise UnsafeBackupError(f"{path} is not a usable SQLite database ({error})") from None
    finally:
        conn.close()


def check_objects(conn: sqlite3.Connection, path: Path) -> int:
    """The schema version of the file open in `conn` if its objects are exactly ours; else
    UnsafeBackupError naming what is not. Reads sqlite_master and the header only."""
    kinds = conn.execute(
        "SELECT type, name FROM sqlite_master WHERE type NOT IN ('table', 'index') ORDER BY rowid LIMIT 1"
    ).fetchall()
    if kinds:
        kind, name = kinds[0]
        raise UnsafeBackupError(f"{path} is not an EstateFlow database: it has a {kind} {name!r} of its own")
    found = _objects_of(conn)
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    tables = {name for kind, name, _ in found if kind == "table"}
    if not version and _VERSION_TABLE in found:  # a copy of a D1 database: its version is in ef_schema
        version = int(conn.execute("SELECT COALESCE(MAX(version), 0) FROM ef_schema").fetchone()[0])
    if version > SCHEMA_VERSION:  # in the header or, for a copy of D1, in ef_schema
        raise UnsafeBackupError(
            f"{path} has schema version {version}, newer than this estateflow_nb knows ({SCHEMA_VERSION})"
        )
    ours = found - {_VERSION_TABLE}
    shapes = known_shapes(version)
    if ours in shapes:
        return version
    raise UnsafeBackupError(f"{path} is not an EstateFlow database: {_difference(ours, shapes, tables)}")


def _difference(found: Objects, shapes: tuple[Objects, ...], tables: set[str]) -> str:
    """What keeps `found` from the nearest known shape, in a few words."""
    if "professionals" not in tables:
        return "it has no professionals table"
    nearest = min(shapes, key=lambda shape: len(shape ^ found))
    names = {(kind, name): sql for kind, name, sql in nearest}
    for kind, name, _sql in sorted(found - nearest):
        if (kind, name) in names:
            return f"its {kind} {name} is defined otherwise than ours"
        return f"it has a {kind} {name!r} of its own"
    kind, name, _ = sorted(nearest - found)[0]
    return f"it lacks the {kind} {name}"


def counts(conn: sqlite3.Connection) -> tuple[int, int]:
    """(professionals, imports) of a file whose objects passed `check_objects`."""
    row: Any = conn.execute("SELECT (SELECT COUNT(*) FROM professionals), (SELECT COUNT(*) FROM ef_imports)").fetchone()
    return int(row[0]), int(row[1])
