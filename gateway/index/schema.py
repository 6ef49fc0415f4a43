"""The task index's tables, its BI view, and the versioned migrations that create them.

SQLAlchemy Core (no ORM): the store writes rows it builds itself and reads records back from
their encoded form, so there is nothing for a mapper to do.

**Where things live.** On PostgreSQL everything is in the schema ``task_gateway``: the table
``task_rows`` (one row per task), ``sync_state`` (one row per vendor, owned by the sync),
``schema_version``, and the stable BI view ``task_gateway.tasks`` (the export's ``COLUMNS``,
typed, plus ``raw`` as JSONB). SQLite has no schemas: the same names, unqualified
(``schema_translate_map``, set on the engine by ``engine_options``).

**Times.** ``UtcTime``: ``timestamptz`` on PostgreSQL (microsecond precision, a real type for
BI tools); on SQLite, which has no time type, an integer count of microseconds since the
epoch. Integers were chosen over sortable ISO text because they are exact (no rounding, no
formatting variants), compact (8 bytes against 27) and compare as fast as anything SQLite
has; the SQLite view shows them as ISO text. Either way a Python ``datetime`` goes in and an
aware UTC ``datetime`` comes out, and a comparison with a ``datetime`` literal is converted
by the column's type, so filters written in SQLAlchemy work on both.

**Order.** The gateway's one order is (the order's time, NULLS LAST in both directions, then
``vendor_rank``, then ``id``). The store queries the dated rows and the undated rows as two
ranges, so each index only needs (time [DESC], vendor_rank, id): no NULLS clause (which
SQLite indexes cannot hold). ``id`` sorts bytewise (``COLLATE "C"`` on PostgreSQL, SQLite's
``BINARY``), which is Python's ``str`` order for these ASCII ids.

**Migrations.** ``MIGRATIONS`` is the ordered list of steps; ``migrate`` applies those past
the recorded version, in one transaction, under a PostgreSQL advisory lock so replicas
starting together cannot race (the loser waits, then finds nothing left to do). Add a step
at the end; never edit a released one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    DateTime,
    Dialect,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    Table,
    Text,
    TypeDecorator,
    text,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.types import JSON, TypeEngine

from gateway.core.columns import COLUMNS
from gateway.core.records import EPOCH, MICROSECOND

SCHEMA = "task_gateway"
"""The PostgreSQL schema of every object (translated away on SQLite)."""

MIGRATION_LOCK = 0x7461736B_67770001
"""``pg_advisory_xact_lock`` key held while migrating ("taskgw" + 1)."""


class UtcTime(TypeDecorator[datetime]):
    """An aware UTC time: ``timestamptz`` on PostgreSQL, integer microseconds on SQLite."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(BigInteger())
        return dialect.type_descriptor(postgresql.TIMESTAMP(timezone=True, precision=6))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:  # the gateway's times are aware; be safe with a naive one
            value = value.replace(tzinfo=UTC)
        if dialect.name == "sqlite":
            return micros(value)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return from_micros(int(value))
        moment: datetime = value
        return moment.astimezone(UTC)


def micros(moment: datetime) -> int:
    """Microseconds since the epoch, exactly (as ``records.sort_key`` counts them)."""
    return (moment - EPOCH) // MICROSECOND


def from_micros(value: int) -> datetime:
    return EPOCH + timedelta(microseconds=value)


# ``id`` compares bytewise on every database (Python's order of these ASCII ids); a locale
# collation would ignore '-' and '_' and order differently from the live merge.
IdText = Text().with_variant(postgresql.TEXT(collation="C"), "postgresql")
RawJson = JSON().with_variant(postgresql.JSONB(), "postgresql")

metadata = MetaData()

task_rows = Table(
    "task_rows",
    metadata,
    # -- the BI columns (``gateway.core.columns.COLUMNS``), typed, same names --
    # Not declared unique: the id is a one-to-one function of the primary key (core/ids.py), and
    # a second unique index would let two replicas' concurrent upserts of one new task fail on
    # it (PostgreSQL's ON CONFLICT arbitrates one unique index; the other raises).
    Column("id", IdText, nullable=False),
    Column("vendor", Text, nullable=False),  # ``Vendor.name``, as the exports write it
    Column("native_id", Text, nullable=False),
    Column("agent_id", Text),
    Column("status", Text, nullable=False),
    Column("vendor_status", Text),
    Column("title", Text),
    Column("summary", Text),
    Column("created_at", UtcTime),
    Column("updated_at", UtcTime),
    Column("user_id", Text),
    Column("parent_task_id", Text),
    Column("triggering_agent_id", Text),
    Column("link", Text),
    Column("total_cost", Float(53)),
    Column("total_tokens", BigInteger),
    # -- the index's own columns --
    Column("agent_key", Text, nullable=False),  # ``agent_id or ''``: part of the key
    Column("vendor_rank", SmallInteger, nullable=False),  # position in ``Vendor`` order
    Column("has_metrics", Boolean, nullable=False),  # ``taskStats`` counts these
    Column("raw", RawJson, nullable=False),
    Column("record", LargeBinary, nullable=False),  # the exact TaskRecord (core/codec.py)
    Column("seen_at", Float(53), nullable=False),  # unix time the sync last saw the task
    PrimaryKeyConstraint("vendor", "agent_key", "native_id"),
    schema=SCHEMA,
)
"""One row per task. Primary key (vendor, agent_key, native_id)."""

ORDER_TIMES = ("updated_at", "created_at")

# The order indexes: each order's dated rows in index order, ties by (vendor_rank, id); the
# undated rows in a partial index of their own by (vendor_rank, id) (PostgreSQL does not
# take ``IS NULL`` on an index's first column as fixing it, so it would sort them).
_ties = (task_rows.c.vendor_rank, task_rows.c.id)
for _time in ORDER_TIMES:
    _column = task_rows.c[_time]
    Index(f"ix_task_rows_{_time}_asc", _column, *_ties)
    Index(f"ix_task_rows_{_time}_desc", _column.desc(), *_ties)
    Index(
        f"ix_task_rows_no_{_time}",
        task_rows.c.vendor_rank,
        task_rows.c.id,
        postgresql_where=_column.is_(None),
        sqlite_where=_column.is_(None),
    )
    # The list filters UIs use most (statuses, agentIds), each value a range in the order.
    for _name in ("status", "agent_id"):
        _key = task_rows.c[_name]
        Index(f"ix_task_rows_{_name}_{_time}_asc", _key, _column, *_ties)
        Index(f"ix_task_rows_{_name}_{_time}_desc", _key, _column.desc(), *_ties)
# Lookups by id (node(id), the upsert's "what changed" read) and the other filters (equality:
# one user's, one parent's, ... tasks are few; they are sorted).
# ``seen_at`` has no index on purpose: every sync pass rewrites it on every row it sees, and
# an indexed column would make each of those updates write every index (no HOT update on
# PostgreSQL); the sweep after a full rescan reads the vendor's rows by the primary key.
for _name in ("id", "user_id", "parent_task_id", "triggering_agent_id", "native_id"):
    Index(f"ix_task_rows_{_name}", task_rows.c[_name])
del _ties, _time, _column, _name, _key

sync_state = Table(
    "sync_state",
    metadata,
    Column("vendor", Text, primary_key=True),  # ``Vendor.name``
    Column("state", RawJson, nullable=False),  # the sync's own cursor/watermark data
    Column("first_sync_done", Boolean, nullable=False),
    Column("first_sync_progress", Float(53), nullable=False),
    Column("synced_at", Float(53)),
    Column("last_error", Text),
    Column("last_error_at", Float(53)),
    schema=SCHEMA,
)

schema_version = Table(
    "schema_version",
    metadata,
    Column("version", Integer, primary_key=True),
    Column("applied_at", Float(53), nullable=False),
    schema=SCHEMA,
)

VIEW_COLUMNS = (*COLUMNS, "raw")
"""The BI view's columns, in order: the exports' columns plus the vendor's JSON."""


def _iso_micros(column: str) -> str:
    """SQLite: integer microseconds as ISO-8601 UTC text with six decimals (NULL stays NULL)."""
    seconds = f"({column} / 1000000 - ({column} % 1000000 < 0))"
    fraction = f"printf('%06d', ({column} % 1000000 + 1000000) % 1000000)"
    return f"strftime('%Y-%m-%dT%H:%M:%S', {seconds}, 'unixepoch') || '.' || {fraction} || 'Z'"


def view_sql(dialect: str) -> str:
    """The ``tasks`` view: on PostgreSQL the table's typed columns as they are (timestamptz,
    double precision, bigint, jsonb); on SQLite times shown as ISO text."""
    if dialect == "sqlite":
        columns = [
            f"{_iso_micros(name)} AS {name}" if name in ORDER_TIMES else name
            for name in VIEW_COLUMNS
        ]
        return f"CREATE VIEW tasks AS SELECT {', '.join(columns)} FROM task_rows"
    return (
        f"CREATE OR REPLACE VIEW {SCHEMA}.tasks AS SELECT {', '.join(VIEW_COLUMNS)} "
        f"FROM {SCHEMA}.task_rows"
    )


# -- migrations ------------------------------------------------------------------------------
Step = Callable[[Connection], None]


def _v1_tables(conn: Connection) -> None:
    """Version 1: the tables and their indexes."""
    for table in (task_rows, sync_state):
        table.create(conn)


def _v2_view(conn: Connection) -> None:
    """Version 2: the stable BI view ``tasks``."""
    conn.execute(text(view_sql(conn.dialect.name)))


MIGRATIONS: tuple[Step, ...] = (_v1_tables, _v2_view)
"""Every schema change, in order; version N is ``MIGRATIONS[:N]`` applied."""


def current_version(conn: Connection) -> int:
    """The version recorded in ``schema_version`` (0 for a database never migrated)."""
    conn.execute(text(_version_table_sql(conn.dialect.name)))
    found = conn.execute(schema_version.select().with_only_columns(schema_version.c.version))
    return max((row[0] for row in found), default=0)


def migrate(conn: Connection, steps: Sequence[Step] = MIGRATIONS, *, now: float) -> int:
    """Apply the steps past the recorded version, inside the caller's transaction; returns
    the version reached. On PostgreSQL an advisory lock held to the transaction's end makes
    concurrent openers wait for each other (the second finds the work done)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}"))
    version = current_version(conn)
    if version > len(steps):
        raise RuntimeError(
            f"the task index is at schema version {version}, newer than this gateway "
            f"knows ({len(steps)}): upgrade the gateway"
        )
    for number, step in enumerate(steps[version:], start=version + 1):
        step(conn)
        conn.execute(schema_version.insert().values(version=number, applied_at=now))
    return len(steps)


def _version_table_sql(dialect: str) -> str:
    name = "schema_version" if dialect == "sqlite" else f"{SCHEMA}.schema_version"
    return (
        f"CREATE TABLE IF NOT EXISTS {name} "
        "(version INTEGER PRIMARY KEY, applied_at DOUBLE PRECISION NOT NULL)"
    )


def engine_options(dialect: str) -> dict[str, Any]:
    """Execution options every connection to the index needs (the schema name away on
    SQLite, which has no schemas)."""
    if dialect == "sqlite":
        return {"schema_translate_map": {SCHEMA: None}}
    return {}
