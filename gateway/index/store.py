"""The task index's store: every vendor's tasks in SQL, read in the gateway's one order.

``TaskIndex`` writes what the sync (or a ``fresh: true`` read) hands it and answers the same
questions the live merge answers, with the same meaning: ``ListQuery.matches`` for filters,
and the one total order (the order's time, a missing time last in both directions, then
vendor in ``Vendor`` order, then ``global_id``). Pages are keyset pages: a ``Keyset`` is the
(sort time, vendor, global id) of the last row returned, and the next page is everything
strictly after it in that order, so a task that did not change is never repeated or skipped
however the index changes between two reads.

Each page is at most three index range reads, never an OFFSET: the rows tied with the
keyset's time after its (vendor, id); the dated rows strictly past that time; then the
undated rows (the index's NULL range), in (vendor, id) order. Each is an ordered index scan
that stops after the rows asked for, so a page costs the same at 100 rows as at 200,000.
``agentIds``/``statuses`` of a few values are read one value at a time from indexes that
lead with that column and merged here, since an ``IN`` would return the values' ranges one
after another and make the database sort every matching row for each page.

SQLite is one process (writes serialized by a lock here; WAL so reads never wait); PostgreSQL
is shared by every replica (``INSERT ... ON CONFLICT`` upserts).
"""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

import orjson
from sqlalchemy import (
    Column,
    ColumnElement,
    Select,
    case,
    delete,
    event,
    false,
    func,
    literal_column,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from gateway.core.codec import RECORD, DecodeError
from gateway.core.columns import COLUMNS, typed_row
from gateway.core.contract import ListQuery
from gateway.core.records import OrderField, TaskRecord, Vendor
from gateway.core.stats import Group, GroupBy, Stats
from gateway.index import schema
from gateway.index.schema import task_rows

VENDOR_RANK = {vendor: rank for rank, vendor in enumerate(Vendor)}
"""A vendor's place in the order between equal times: its position in ``Vendor``."""
_BY_RANK = list(Vendor)

WRITE_BATCH = 500
"""Rows written (and looked up) per statement."""

SPLIT_MAX = 8
"""At most this many values of ``agentIds``/``statuses`` are read as one range each."""

INT64 = 2**63
"""A token count outside a 64-bit integer is left out of its column (the record keeps it)."""

SQLITE_BEGIN = "task_index_sqlite_begin"
"""Execution option naming the statement that begins a SQLite transaction."""

_ORDER_COLUMN = {OrderField.UPDATED_AT: "updated_at", OrderField.CREATED_AT: "created_at"}
_NUL_ESCAPE = re.compile(r"(?<!\\)((?:\\\\)*)\\u0000")


@dataclass(frozen=True, slots=True)
class Read:
    """One range of a page, in the order: one statement, or one per value of a split list
    filter, whose rows ``key`` merges."""

    statements: list[Select[Any]]
    timed: bool
    """Ordered by the time first (the dated rows), or by (vendor_rank, id) alone."""
    descending: bool

    def key(self, row: Any) -> tuple[int, int, str]:
        """The order of a row (record, time, vendor_rank, id) within this range."""
        if not self.timed:
            return (0, row[2], row[3])
        moment = schema.micros(row[1])
        return (-moment if self.descending else moment, row[2], row[3])


class Keyset(NamedTuple):
    """Where a page ended: the last row's sort time (None: it had none), vendor and id."""

    time: datetime | None
    vendor: Vendor
    global_id: str


@dataclass
class SyncState:
    """A vendor's row in ``sync_state``; ``state`` is the sync's own (JSON) data."""

    state: dict[str, Any] = field(default_factory=dict)
    first_sync_done: bool = False
    first_sync_progress: float = 0.0
    synced_at: float | None = None
    last_error: str | None = None
    last_error_at: float | None = None


def async_url(url: str) -> URL:
    """The operator's URL (``sqlite:///path``, ``postgresql://…``) with the async driver.
    An unsupported database is a ``ValueError`` that never shows the password."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return parsed.set(drivername="sqlite+aiosqlite")
    if backend in ("postgresql", "postgres"):
        return parsed.set(drivername="postgresql+asyncpg")
    raise ValueError(
        f"index.url: {parsed.render_as_string(hide_password=True)!r} is neither "
        "sqlite:///path nor postgresql://..."
    )


def _json(value: Any) -> str:
    """JSON text for the ``raw``/``state`` columns. PostgreSQL's jsonb cannot hold ``\\u0000``:
    it becomes U+FFFD there (the ``record`` column keeps the exact value)."""
    try:
        encoded = orjson.dumps(value).decode()
    except TypeError:  # an integer beyond 64 bits, which orjson refuses
        encoded = json.dumps(value, ensure_ascii=False)
    if "\\u0000" in encoded:
        encoded = _NUL_ESCAPE.sub(lambda m: m.group(1) + "\\ufffd", encoded)
    return encoded


def _no_nul(value: str) -> str:
    """PostgreSQL text cannot hold NUL: the typed columns (and filters) use U+FFFD."""
    return value.replace("\x00", "\ufffd") if "\x00" in value else value


def _sqlite_engine_setup(engine: AsyncEngine) -> None:
    """SQLite as a real transactional store: the driver's own implicit transactions off
    (SQLAlchemy's documented recipe, so BEGIN/COMMIT are ours and DDL is transactional),
    WAL so readers never wait for the writer, and a busy timeout."""

    @event.listens_for(engine.sync_engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in ("busy_timeout=30000", "journal_mode=WAL", "synchronous=NORMAL"):
            _pragma(cursor, pragma)
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(conn: Any) -> None:
        begin = conn.get_execution_options().get(SQLITE_BEGIN, "BEGIN")
        if begin:  # "": none (reads, ``TaskIndex._reading``)
            conn.exec_driver_sql(begin)


def _pragma(cursor: Any, pragma: str, attempts: int = 100) -> None:
    """Run ``PRAGMA pragma``, retrying while the file is locked: switching a new database to
    WAL needs it exclusively, and SQLite answers "database is locked" at once (without its
    busy handler) when another connection opens it at the same moment (replicas starting
    together). This runs in the driver's thread, so waiting blocks no event loop."""
    for attempt in range(attempts):
        try:
            cursor.execute(f"PRAGMA {pragma}")
            return
        except sqlite3.OperationalError as exc:
            busy = exc.sqlite_errorcode in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
            if not busy or attempt == attempts - 1:
                raise
            time.sleep(0.05)


class TaskIndex:
    """The index: open with ``await TaskIndex.open(url)``, close with ``await close()``.

    ``engine`` (SQLAlchemy async engine, schema translation set) and ``rows`` (the
    ``task_rows`` table) are public for readers that build their own SQL (OData)."""

    rows = task_rows

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self._postgres = self.dialect == "postgresql"
        self._write_lock = asyncio.Lock()

    @classmethod
    async def open(cls, url: str, *, steps: Sequence[schema.Step] = schema.MIGRATIONS) -> TaskIndex:
        """Connect, and create or upgrade the schema to ``len(steps)`` (``schema.migrate``;
        ``steps`` other than all of them: tests building an older version)."""
        target = async_url(url)
        dialect = target.get_backend_name()
        if dialect == "sqlite" and target.database not in (None, "", ":memory:"):
            Path(target.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(
            target,
            execution_options=schema.engine_options(dialect),
            json_serializer=_json,
            json_deserializer=orjson.loads,
        )
        if dialect == "sqlite":
            _sqlite_engine_setup(engine)
        index = cls(engine)
        try:
            await index.migrate(steps)
        except BaseException:
            await engine.dispose()
            raise
        return index

    async def migrate(self, steps: Sequence[schema.Step] = schema.MIGRATIONS) -> int:
        """Bring the schema to ``len(steps)`` (``open`` does this); returns the version."""
        async with self._writing() as conn:
            return await conn.run_sync(lambda c: schema.migrate(c, steps, now=time.time()))

    async def close(self) -> None:
        await self.engine.dispose()

    @asynccontextmanager
    async def _reading(self) -> AsyncIterator[AsyncConnection]:
        """A connection for reads. On SQLite without BEGIN: each statement reads its own
        snapshot (a page's reads are disjoint ranges of the order, so they need no common
        one), which saves the driver's thread two round trips."""
        async with self.engine.connect() as conn:
            if not self._postgres:
                await conn.execution_options(**{SQLITE_BEGIN: ""})
            yield conn

    @asynccontextmanager
    async def _writing(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction; on SQLite one at a time (it has one writer anyway, and a
        deferred transaction upgraded to a write while another commits fails at once)."""
        if self._postgres:
            async with self.engine.begin() as conn:
                yield conn
            return
        async with self._write_lock, self.engine.connect() as conn:
            # IMMEDIATE: take the write lock at BEGIN, so another process's writer makes this
            # one wait (busy_timeout) instead of failing when a read turns into a write.
            await conn.execution_options(**{SQLITE_BEGIN: "BEGIN IMMEDIATE"})
            async with conn.begin():
                yield conn

    # -- writes ----------------------------------------------------------------------------
    def _text(self, value: str) -> str:
        return _no_nul(value) if self._postgres else value

    def _row(self, record: TaskRecord, seen_at: float) -> dict[str, Any]:
        values = dict(zip(COLUMNS, typed_row(record), strict=True))
        if self._postgres:
            for name, value in values.items():
                if isinstance(value, str):
                    values[name] = _no_nul(value)
        tokens = values["total_tokens"]
        if tokens is not None and not -INT64 <= tokens < INT64:
            values["total_tokens"] = None
        values["agent_key"] = self._text(record.agent_id or "")
        values["vendor_rank"] = VENDOR_RANK[record.vendor]
        values["has_metrics"] = record.metrics is not None
        values["raw"] = record.raw
        values["record"] = RECORD.encode(record)
        values["seen_at"] = seen_at
        return values

    def _insert(self) -> Any:
        """``INSERT ... ON CONFLICT (key) DO UPDATE`` every other column."""
        statement = (pg_insert if self._postgres else sqlite_insert)(task_rows)
        keys = [c.name for c in task_rows.primary_key.columns]
        return statement.on_conflict_do_update(
            index_elements=keys,
            set_={c.name: statement.excluded[c.name] for c in task_rows.c if c.name not in keys},
        )

    async def upsert(self, records: Sequence[TaskRecord], *, seen_at: float) -> list[TaskRecord]:
        """Write ``records`` (all marked seen at ``seen_at``); returns those that are new or
        differ in anything from what the index held (in the order given; a task given twice
        counts once, as its last version)."""
        given = {r.global_id: r for r in records}
        # Rows are written in id order, so two writers (a replica's sync and another's
        # ``fresh`` read) lock shared rows in the same order and cannot deadlock.
        latest = [given[i] for i in sorted(given)]
        changed: list[TaskRecord] = []
        async with self._writing() as conn:
            for chunk in _chunks(latest, WRITE_BATCH):
                found = await conn.execute(
                    select(task_rows.c.id, task_rows.c.record).where(
                        task_rows.c.id.in_([r.global_id for r in chunk])
                    )
                )
                held: dict[str, bytes] = {row.id: row.record for row in found}
                fresh = [r for r in chunk if _differs(held.get(r.global_id), r)]
                if fresh:
                    await conn.execute(self._insert(), [self._row(r, seen_at) for r in fresh])
                fresh_ids = {r.global_id for r in fresh}
                same = [r.global_id for r in chunk if r.global_id not in fresh_ids]
                if same:
                    await conn.execute(
                        update(task_rows).where(task_rows.c.id.in_(same)).values(seen_at=seen_at)
                    )
                changed.extend(fresh)
        place = {global_id: n for n, global_id in enumerate(given)}
        return sorted(changed, key=lambda r: place[r.global_id])

    async def delete_unseen(
        self,
        vendor: Vendor,
        *,
        seen_before: float,
        agent_ids: Sequence[str] | None = None,
    ) -> list[TaskRecord]:
        """Remove ``vendor``'s rows (only those of ``agent_ids``, when given) not seen since
        ``seen_before`` (the start of a full rescan): the vendor deleted them. Returns them."""
        where = [task_rows.c.vendor == vendor.name, task_rows.c.seen_at < seen_before]
        if agent_ids is not None:
            where.append(task_rows.c.agent_key.in_([self._text(a) for a in agent_ids]))
        async with self._writing() as conn:
            gone = await conn.execute(delete(task_rows).where(*where).returning(task_rows.c.record))
            return [RECORD.decode(row.record) for row in gone]

    # -- reads -----------------------------------------------------------------------------
    def _conditions(
        self, query: ListQuery, vendors: Sequence[Vendor], *, split: str | None = None
    ) -> list[ColumnElement[bool]]:
        """``query.matches`` as SQL (NULL never equals anything, as None never matches
        there), plus the vendors asked for; without the list filter on ``split`` (the
        column a page reads one value at a time, ``_split``)."""
        c = task_rows.c
        where: list[ColumnElement[bool]] = []
        wanted = set(vendors)
        if not wanted:
            where.append(false())
        elif len(wanted) < len(Vendor):
            where.append(c.vendor_rank.in_(sorted(VENDOR_RANK[v] for v in wanted)))
        if query.statuses is not None and split != "status":
            where.append(c.status.in_(sorted(s.value for s in query.statuses)))
        if query.agent_ids is not None and split != "agent_id":
            where.append(c.agent_id.in_(sorted(self._text(a) for a in query.agent_ids)))
        for column, value in (
            (c.user_id, query.user_id),
            (c.parent_task_id, query.parent_task_id),
            (c.triggering_agent_id, query.triggering_agent_id),
            (c.native_id, query.native_id),
        ):
            if value is not None:
                where.append(column == self._text(value))
        if query.updated_after is not None:
            where.append(c.updated_at >= query.updated_after)
        if query.updated_before is not None:
            where.append(c.updated_at < query.updated_before)
        return where

    async def page(
        self,
        query: ListQuery,
        vendors: Sequence[Vendor],
        first: int,
        after: Keyset | None = None,
    ) -> tuple[list[TaskRecord], Keyset | None]:
        """Up to ``first`` matching tasks after ``after`` in the gateway's order, and the
        keyset to continue from (None when nothing follows)."""
        if first <= 0:
            return [], None
        want = first + 1  # one more than asked: whether anything follows
        rows: list[Any] = []  # Row(record, time, vendor_rank, id)
        async with self._reading() as conn:
            for read in self.reads(query, vendors, after):
                need = want - len(rows)
                found: list[Any] = []
                for statement in read.statements:
                    found += (await conn.execute(statement.limit(need))).all()
                if len(read.statements) > 1:  # one range per value: merge them
                    found = sorted(found, key=read.key)[:need]
                rows += found
                if len(rows) >= want:
                    break
        records = [RECORD.decode(row.record) for row in rows[:first]]
        if len(rows) <= first:
            return records, None
        last = rows[first - 1]
        return records, Keyset(last[1], _BY_RANK[last.vendor_rank], last.id)

    def reads(
        self, query: ListQuery, vendors: Sequence[Vendor], after: Keyset | None
    ) -> list[Read]:
        """The index range reads that make the page after ``after``, in order (each to be
        limited to the rows still wanted): the rows tied with the keyset's time past its
        (vendor, id); the dated rows past that time; the undated rows (past the keyset's
        (vendor, id) when it was undated). A list filter of a few values (``_split``) makes
        each read one range per value, merged. Public so tests can EXPLAIN them."""
        split = self._split(query)
        where = self._conditions(query, vendors, split=split and split[0].name)
        moment = task_rows.c[_ORDER_COLUMN[query.order.field]]
        descending = query.order.descending
        tail = (task_rows.c.vendor_rank, task_rows.c.id)

        def read(*extra: ColumnElement[bool], timed: bool) -> Read:
            order = [moment.desc() if descending else moment] if timed else []
            statement = (
                select(task_rows.c.record, moment, *tail)
                .where(*where, *extra)
                .order_by(*order, *tail)
            )
            if split is None:
                return Read([statement], timed, descending)
            column, values = split
            return Read([statement.where(column == v) for v in values], timed, descending)

        reads: list[Read] = []
        undated: list[ColumnElement[bool]] = [moment.is_(None)]
        if after is None:
            reads.append(read(moment.is_not(None), timed=True))
        else:
            past_key = tuple_(*tail) > tuple_(VENDOR_RANK[after.vendor], after.global_id)
            if after.time is None:
                undated.append(past_key)
            else:
                past_time = moment < after.time if descending else moment > after.time
                reads.append(read(moment == after.time, past_key, timed=False))
                reads.append(read(past_time, timed=True))
        if not self._never_undated(query):
            reads.append(read(*undated, timed=False))
        return reads

    def _split(self, query: ListQuery) -> tuple[Column[Any], list[str]] | None:
        """The list filter a page reads one value at a time, if any: ``agentIds`` (else
        ``statuses``) with 2 to ``SPLIT_MAX`` values. One index range per value, each in the
        order (``(agent_id|status, time, vendor_rank, id)`` indexes), merged here, instead
        of every matching row sorted for each page: an ``IN`` over an index's first column
        gives its rows value by value, not in the order."""
        if query.agent_ids is not None:
            if 1 < len(query.agent_ids) <= SPLIT_MAX:
                return task_rows.c.agent_id, sorted(self._text(a) for a in query.agent_ids)
            return None  # one agent: an equality the index serves; many: one IN
        if query.statuses is not None and 1 < len(query.statuses) <= SPLIT_MAX:
            return task_rows.c.status, sorted(s.value for s in query.statuses)
        return None

    @staticmethod
    def _never_undated(query: ListQuery) -> bool:
        """A time filter never matches a task without an update time: no NULL range to read."""
        return query.order.field is OrderField.UPDATED_AT and query.has_time_filter

    async def count(self, query: ListQuery, vendors: Sequence[Vendor]) -> int:
        statement = select(func.count()).select_from(task_rows)
        statement = statement.where(*self._conditions(query, vendors))
        async with self._reading() as conn:
            return int((await conn.execute(statement)).scalar_one())

    async def stream(
        self, query: ListQuery, vendors: Sequence[Vendor], batch: int = WRITE_BATCH
    ) -> AsyncIterator[TaskRecord]:
        """Every matching task in order, ``batch`` at a time (keyset pages: constant memory,
        and a long export never holds a transaction open)."""
        after: Keyset | None = None
        while True:
            records, after = await self.page(query, vendors, batch, after)
            for record in records:
                yield record
            if after is None:
                return

    async def get(self, vendor: Vendor, agent_id: str | None, native_id: str) -> TaskRecord | None:
        statement = select(task_rows.c.record).where(
            task_rows.c.vendor == vendor.name,
            task_rows.c.agent_key == self._text(agent_id or ""),
            task_rows.c.native_id == self._text(native_id),
        )
        async with self._reading() as conn:
            found = (await conn.execute(statement)).scalar_one_or_none()
        return None if found is None else RECORD.decode(found)

    async def vendor_counts(self) -> dict[Vendor, int]:
        """Rows per vendor (the ``gateway_index_tasks`` gauge); vendors with none are 0."""
        statement = select(task_rows.c.vendor, func.count()).group_by(task_rows.c.vendor)
        async with self._reading() as conn:
            found = {row[0]: int(row[1]) for row in await conn.execute(statement)}
        return {vendor: found.get(vendor.name, 0) for vendor in Vendor}

    # -- stats -----------------------------------------------------------------------------
    def _day(self) -> ColumnElement[Any]:
        """The UTC day (YYYY-MM-DD) of the last update, as ``stats.group_key`` writes it."""
        if self._postgres:
            return func.to_char(func.timezone("UTC", task_rows.c.updated_at), "YYYY-MM-DD")
        return literal_column(
            "date(updated_at / 1000000 - (updated_at % 1000000 < 0), 'unixepoch')"
        )

    def _duration(self) -> ColumnElement[Any]:
        """Seconds (PostgreSQL) or microseconds (SQLite) from creation to last update; NULL
        unless both are known."""
        if self._postgres:
            return func.extract("epoch", task_rows.c.updated_at - task_rows.c.created_at)
        return literal_column("updated_at - created_at")

    async def stats(
        self, query: ListQuery, vendors: Sequence[Vendor], by: Sequence[GroupBy]
    ) -> Stats:
        """``gateway.core.stats.task_stats``'s figures by SQL GROUP BY: the same groups,
        keys, counts and sums, in the same order."""
        c = task_rows.c
        keys: dict[GroupBy, ColumnElement[Any]] = {
            GroupBy.VENDOR: c.vendor,
            GroupBy.STATUS: c.status,
            GroupBy.AGENT: c.agent_id,
            GroupBy.DAY: self._day(),
        }
        group_columns = [keys[dimension].label(f"k{i}") for i, dimension in enumerate(by)]
        duration = self._duration()
        statement: Select[Any] = select(
            *group_columns,
            func.count().label("count"),
            func.sum(c.total_cost).label("total_cost"),
            func.sum(c.total_tokens).label("total_tokens"),
            func.sum(case((c.has_metrics, 1), else_=0)).label("with_metrics"),
            func.sum(duration).label("duration"),
            func.count(duration).label("with_duration"),
        ).where(*self._conditions(query, vendors))
        if by:
            statement = statement.group_by(*(keys[dimension] for dimension in by))
        async with self._reading() as conn:
            found = (await conn.execute(statement)).all()
        scale = 1.0 if self._postgres else 1e6
        groups: list[Group] = []
        total = 0
        for row in found:
            if not row.count:
                continue  # no GROUP BY over no rows still answers one row
            groups.append(
                Group(
                    key=dict(zip(by, row[: len(by)], strict=True)),
                    count=int(row.count),
                    total_cost=float(row.total_cost or 0.0),
                    total_tokens=int(row.total_tokens or 0),
                    with_metrics=int(row.with_metrics or 0),
                    duration_seconds=float(row.duration or 0) / scale,
                    with_duration=int(row.with_duration),
                )
            )
            total += int(row.count)
        groups.sort(key=lambda g: tuple("" if v is None else v for v in g.key.values()))
        return Stats(groups, total)

    # -- sync state ------------------------------------------------------------------------
    async def load_state(self, vendor: Vendor) -> SyncState:
        """The vendor's sync state (a fresh ``SyncState`` before its first sync)."""
        table = schema.sync_state
        async with self._reading() as conn:
            row = (
                await conn.execute(select(table).where(table.c.vendor == vendor.name))
            ).one_or_none()
        if row is None:
            return SyncState()
        return SyncState(
            state=row.state,
            first_sync_done=row.first_sync_done,
            first_sync_progress=row.first_sync_progress,
            synced_at=row.synced_at,
            last_error=row.last_error,
            last_error_at=row.last_error_at,
        )

    async def save_state(self, vendor: Vendor, state: SyncState) -> None:
        table = schema.sync_state
        values = {
            "vendor": vendor.name,
            "state": state.state,
            "first_sync_done": state.first_sync_done,
            "first_sync_progress": state.first_sync_progress,
            "synced_at": state.synced_at,
            "last_error": None if state.last_error is None else self._text(state.last_error),
            "last_error_at": state.last_error_at,
        }
        statement = (pg_insert if self._postgres else sqlite_insert)(table).values(values)
        statement = statement.on_conflict_do_update(
            index_elements=["vendor"],
            set_={k: statement.excluded[k] for k in values if k != "vendor"},
        )
        async with self._writing() as conn:
            await conn.execute(statement)


def _differs(held: bytes | None, record: TaskRecord) -> bool:
    """Whether ``record`` is new or changed against the encoded record the index holds."""
    if held is None:
        return True
    if held == RECORD.encode(record):
        return False
    try:
        old = RECORD.decode(held)
    except DecodeError:  # written by another format: rewrite it
        return True
    return old != record or old.raw != record.raw


def _chunks(items: Sequence[TaskRecord], size: int) -> Iterator[Sequence[TaskRecord]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
