"""The schema's version, and the numbered migrations that bring any earlier database up to it.

A database says which schema it has: SQLite in `PRAGMA user_version`, D1 in the `ef_schema` table
(each target reads and writes its own, see `Target.schema_version`). `ensure_schema(target)` runs when
a target is opened:

- at the current version it only reads that number, so a reader never takes a write lock;
- a new, empty database gets the whole current schema and the number, in one transaction, and only
  where creating is allowed (import, ladder); elsewhere it is refused;
- an earlier one gets the migrations after its version, in order, in one transaction;
- a database of a newer version than this code knows is refused rather than guessed at.

Databases made before the schema had a number (version 0) went down more than one line of commits
(the rollback tables were built beside the check indexes, then merged), so every migration is written
against the *shape* it finds, not the version it assumes: it adds a column only when missing and
redefines an index only when its SQL differs. Running all of them on any earlier database is exact.
`tests/fixtures/schemas/` keeps a database made by each earlier schema; the tests migrate each one.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from .errors import NoDatabaseError, TargetError
from .schema import (
    BEFORE_IMAGES_BY_IMPORT_INDEX,
    BEFORE_IMAGES_DDL,
    BEFORE_IMAGES_INDEX,
    IMPORTS_DDL,
    INDEX_STATEMENTS,
    ROLLBACK_WORK_DDL,
    ROLLBACKS_DDL,
    SCHEMA_STATEMENTS,
    VERIFICATIONS_DDL,
)
from .targets._base import Sql, Target


def as_stored(create: str) -> str:
    """A CREATE statement as sqlite_master keeps it (SQLite drops IF NOT EXISTS and leading space)."""
    return create.replace(" IF NOT EXISTS", "", 1).strip()


@dataclass
class Shape:
    """What a database holds, from its sqlite_master, and the statements that change it.

    A migration calls the methods below; each looks at the shape first, does nothing where the
    object is already as wanted, and otherwise records the statement and the change, so that the
    migrations after it see the database as it will be.
    """

    columns: dict[str, list[str]]  # table -> its columns, in order
    indexes: dict[str, str]  # index -> its SQL as stored
    statements: list[str] = field(default_factory=list)

    def create_table(self, name: str, ddl: str) -> None:
        if name not in self.columns:
            self.statements.append(ddl)
            self.columns[name] = re.findall(r"^\s+(\w+) ", ddl, re.M)

    def add_column(self, table: str, column: str, definition: str) -> None:
        if column not in self.columns[table]:
            self.statements.append(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")
            self.columns[table].append(column)

    def ensure_index(self, name: str, create: str) -> None:
        """Create index `name` as `create` says, replacing one of that name defined otherwise."""
        wanted = as_stored(create)
        if self.indexes.get(name) == wanted:
            return
        if name in self.indexes:
            self.statements.append(f"DROP INDEX {name}")
        self.statements.append(create)
        self.indexes[name] = wanted


def read_shape(target: Target) -> Shape:
    objects = target.query(
        "SELECT type, name, sql FROM sqlite_master WHERE type IN ('table', 'index') AND name NOT LIKE 'sqlite/_%'"
        " ESCAPE '/' AND name NOT LIKE '/_cf/_%' ESCAPE '/'"
    )
    tables = [o["name"] for o in objects if o["type"] == "table"]
    columns = {t: [c["name"] for c in target.query(f"PRAGMA table_info({t})")] for t in tables}
    indexes = {o["name"]: o["sql"].strip() for o in objects if o["type"] == "index" and o["sql"]}
    return Shape(columns, indexes)


@dataclass(frozen=True)
class Migration:
    version: int
    what: str
    apply: Callable[[Shape], None]


def _first_release(shape: Shape) -> None:
    # Every database we made has all three; one made by hand around a professionals table gets the
    # ledger beside it, as the first release did.
    shape.create_table("ef_imports", IMPORTS_DDL)
    shape.create_table("ef_before_images", BEFORE_IMAGES_DDL)


def _indexes_for_the_checks(shape: Shape) -> None:
    for name, create in INDEX_STATEMENTS.items():
        shape.ensure_index(name, create)


def _rollback_tables(shape: Shape) -> None:
    shape.ensure_index("idx_before_images_import_id", BEFORE_IMAGES_INDEX)
    shape.create_table("ef_rollbacks", ROLLBACKS_DDL)
    shape.add_column("ef_rollbacks", "bookmark", "TEXT")
    shape.create_table("ef_rollback_work", ROLLBACK_WORK_DDL)


def _verification_history(shape: Shape) -> None:
    shape.create_table("ef_verifications", VERIFICATIONS_DDL)


# What version 5 adds to each table, in order: (column, definition).
LEDGER_COLUMNS = {
    "ef_imports": (
        ("row_mark", "INTEGER NOT NULL DEFAULT 0"),
        ("image_mark", "INTEGER NOT NULL DEFAULT 0"),
        ("claim", "TEXT"),
        ("claim_owner", "TEXT"),
        ("heartbeat_at", "TEXT"),
        ("undone_by", "TEXT"),
    ),
    "ef_rollbacks": (
        ("filled_upto", "TEXT"),
        ("applied_upto", "TEXT"),
        ("claim", "TEXT"),
        ("claim_owner", "TEXT"),
        ("heartbeat_at", "TEXT"),
    ),
}


def _ledger_from_the_rows(shape: Shape) -> None:
    marked = "row_mark" in shape.columns["ef_imports"]
    for table, columns in LEDGER_COLUMNS.items():
        for column, definition in columns:
            shape.add_column(table, column, definition)
    shape.ensure_index("idx_before_images_by_import", BEFORE_IMAGES_BY_IMPORT_INDEX)
    if not marked:
        # An unfinished import's counts already take in every row it wrote and every before-image it
        # kept: its marks start after them.
        shape.statements.append(
            "UPDATE ef_imports SET row_mark = COALESCE((SELECT MAX(id) FROM professionals"
            " WHERE import_id = ef_imports.id), 0), image_mark = COALESCE((SELECT MAX(rowid)"
            " FROM ef_before_images WHERE by_import = ef_imports.id), 0)"
        )


# What version 6 adds to the ledger: a climb's rungs, each an import of a range of its file.
RANGE_COLUMNS = (
    ("first_record", "INTEGER"),
    ("last_record", "INTEGER"),
    ("start_offset", "INTEGER"),
    ("end_offset", "INTEGER"),
    ("rung_verdict", "TEXT"),
)


def _ranges_of_a_climb(shape: Shape) -> None:
    for column, definition in RANGE_COLUMNS:
        shape.add_column("ef_imports", column, definition)


def _deferred_indexes(shape: Shape) -> None:
    shape.add_column("ef_imports", "deferred_indexes", "TEXT")


MIGRATIONS = (
    Migration(1, "the first release: professionals, the ef_imports ledger, before-images", _first_release),
    Migration(
        2, "composite indexes for the directory's searches, partial indexes for the checks", _indexes_for_the_checks
    ),
    Migration(3, "rollback: ef_rollbacks with its Time Travel bookmark, the scratch table", _rollback_tables),
    Migration(4, "verification history: ef_verifications", _verification_history),
    Migration(
        5,
        "counts derived from the rows (row_mark), claims of running imports and rollbacks, parts of a rollback",
        _ledger_from_the_rows,
    ),
    Migration(
        6, "a climb's rungs: the record range and byte offsets of an import, the rung's verdict", _ranges_of_a_climb
    ),
    Migration(7, "the secondary indexes a big import deferred, in its ledger row", _deferred_indexes),
)
SCHEMA_VERSION = MIGRATIONS[-1].version


def plan(shape: Shape, version: int) -> list[str]:
    """The statements that bring a database of `version` and `shape` to SCHEMA_VERSION."""
    for migration in MIGRATIONS:
        if migration.version > version:
            migration.apply(shape)
    return shape.statements


def ensure_schema(target: Target, *, create: bool) -> None:
    """Bring `target` to the current schema (see the module's docstring); reads only when it is there."""
    version = target.schema_version()
    if version == SCHEMA_VERSION:
        return
    if version is not None and version > SCHEMA_VERSION:
        raise TargetError(
            f"{target.url} has schema version {version}, newer than this estateflow_nb knows ({SCHEMA_VERSION}):"
            " upgrade estateflow_nb to use it"
        )
    if version is None:  # nothing of ours there yet
        if not create:
            raise NoDatabaseError(f"no EstateFlow database at {target.url}: run `estateflow import` to create one")
        statements = list(SCHEMA_STATEMENTS)
    else:
        statements = plan(read_shape(target), version)
    target.migrate([Sql(statement) for statement in statements], SCHEMA_VERSION)
