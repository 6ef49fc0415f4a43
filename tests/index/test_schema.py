"""The index's schema: automatic, versioned upgrades; concurrent openers; the BI view and
the read-only role the README documents; every order served by an index."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy import select, text

from gateway.core.columns import COLUMNS
from gateway.core.contract import ListQuery
from gateway.core.ids import TASK, encode_id
from gateway.core.records import (
    Direction,
    Order,
    OrderField,
    TaskMetrics,
    TaskRecord,
    TaskStatus,
    Vendor,
)
from gateway.index import schema
from gateway.index.store import Keyset, TaskIndex
from tests.postgres_server import PostgresServer

README = Path(__file__).resolve().parents[2] / "README.md"

RECORD = TaskRecord(
    vendor=Vendor.ORQ,
    native_id="t-1",
    global_id=encode_id(TASK, Vendor.ORQ, "t-1"),
    agent_id=None,
    status=TaskStatus.COMPLETED,
    vendor_status="completed",
    title="A title",
    summary=None,
    created_at=datetime(2026, 11, 28, 9, 15, 0, 123456, tzinfo=UTC),
    updated_at=None,
    link="https://example.test/t-1",
    metrics=TaskMetrics(total_cost=0.125, total_tokens=1234),
    raw={"model": "gpt", "nested": {"a": [1, 2, None]}},
)


@pytest.fixture(params=("sqlite", "postgresql"))
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database of each kind, for one test."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'sub' / 'tasks.db'}"
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return server.create_database()


async def versions(index: TaskIndex) -> list[int]:
    async with index.engine.connect() as conn:
        found = await conn.execute(select(schema.schema_version.c.version))
        return sorted(row[0] for row in found)


async def test_an_index_of_the_previous_version_is_upgraded_when_opened(fresh_url: str) -> None:
    older = await TaskIndex.open(fresh_url, steps=schema.MIGRATIONS[:-1])
    assert await versions(older) == list(range(1, len(schema.MIGRATIONS)))
    await older.upsert([RECORD], seen_at=1.0)
    await older.close()

    index = await TaskIndex.open(fresh_url)
    try:
        assert await versions(index) == list(range(1, len(schema.MIGRATIONS) + 1))
        view = "tasks" if index.dialect == "sqlite" else "task_gateway.tasks"
        async with index.engine.connect() as conn:
            shown = (await conn.execute(text(f"SELECT id, vendor, title FROM {view}"))).all()
        assert [tuple(row) for row in shown] == [(RECORD.global_id, "ORQ", "A title")]
        assert await index.get(Vendor.ORQ, None, "t-1") == RECORD
    finally:
        await index.close()
    again = await TaskIndex.open(fresh_url)  # nothing left to do: nothing done
    assert await versions(again) == list(range(1, len(schema.MIGRATIONS) + 1))
    await again.close()


async def test_an_index_newer_than_the_gateway_is_refused(fresh_url: str) -> None:
    index = await TaskIndex.open(fresh_url)
    await index.close()
    with pytest.raises(RuntimeError, match="newer than this gateway"):
        await TaskIndex.open(fresh_url, steps=schema.MIGRATIONS[:1])


async def test_replicas_opening_at_once_migrate_once(fresh_url: str) -> None:
    opened = await asyncio.gather(*(TaskIndex.open(fresh_url) for _ in range(4)))
    try:
        assert await versions(opened[0]) == list(range(1, len(schema.MIGRATIONS) + 1))
        await asyncio.gather(*(i.upsert([RECORD], seen_at=float(n)) for n, i in enumerate(opened)))
        assert await opened[3].count(ListQuery(), list(Vendor)) == 1
    finally:
        for index in opened:
            await index.close()


async def test_an_unsupported_url_is_refused_without_its_password() -> None:
    with pytest.raises(ValueError) as caught:
        await TaskIndex.open("mysql://user:s3cret-pw@db/x")
    assert "s3cret-pw" not in str(caught.value)


# -- the BI view ---------------------------------------------------------------------------
@pytest.fixture
async def postgres_index(postgres_server: PostgresServer) -> AsyncIterator[tuple[TaskIndex, str]]:
    url = postgres_server.create_database()
    index = await TaskIndex.open(url)
    await index.upsert([RECORD], seen_at=1.0)
    yield index, url
    await index.close()


async def test_the_view_has_the_export_columns_typed_plus_raw(
    postgres_index: tuple[TaskIndex, str],
) -> None:
    index, _ = postgres_index
    async with index.engine.connect() as conn:
        found = await conn.execute(
            text(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = 'task_gateway' AND table_name = 'tasks' "
                "ORDER BY ordinal_position"
            )
        )
        types = dict(found.all())
    assert list(types) == [*COLUMNS, "raw"]
    assert types["created_at"] == types["updated_at"] == "timestamp with time zone"
    assert (types["total_cost"], types["total_tokens"], types["raw"]) == (
        "double precision",
        "bigint",
        "jsonb",
    )
    assert {types[c] for c in COLUMNS if c not in ("created_at", "updated_at")} <= {
        "text",
        "double precision",
        "bigint",
    }


def readme_role_sql() -> str:
    """The role block of the README's "SQL for BI tools", exactly as a reader copies it."""
    section = README.read_text().split("### SQL for BI tools", 1)[1]
    match = re.search(r"```sql\n(CREATE ROLE.*?)```", section, re.S)
    assert match is not None
    return match.group(1)


async def test_the_readme_role_reads_the_view_and_nothing_else(
    postgres_server: PostgresServer, postgres_index: tuple[TaskIndex, str]
) -> None:
    _, url = postgres_index
    database = url.rsplit("/", 1)[1]
    role = f"bi_{uuid.uuid4().hex[:8]}"
    sql = (
        readme_role_sql()
        .replace("bi_reader", role)
        .replace("DATABASE gateway", f"DATABASE {database}")
    )
    postgres_server.psql(sql, database)
    password = re.search(r"PASSWORD '([^']+)'", sql)
    assert password is not None
    conn = await asyncpg.connect(postgres_server.url(database, role, password.group(1)))
    try:
        rows = await conn.fetch("SELECT * FROM task_gateway.tasks")
        assert len(rows) == 1
        row: Any = rows[0]
        assert row["id"] == RECORD.global_id
        assert row["created_at"] == RECORD.created_at and row["updated_at"] is None
        assert (row["total_cost"], row["total_tokens"]) == (0.125, 1234)
        assert await conn.fetchval("SELECT raw->'nested'->'a'->>1 FROM task_gateway.tasks") == "2"
        for statement in (
            "SELECT * FROM task_gateway.task_rows",
            "SELECT * FROM task_gateway.sync_state",
            "DELETE FROM task_gateway.tasks",
            "UPDATE task_gateway.tasks SET title = 'x'",
            "INSERT INTO task_gateway.tasks (id) VALUES ('x')",
            "CREATE TABLE task_gateway.mine (x int)",
        ):
            with pytest.raises(asyncpg.PostgresError):
                await conn.execute(statement)
    finally:
        await conn.close()


async def test_the_sqlite_view_shows_times_as_iso_text(tmp_path: Path) -> None:
    index = await TaskIndex.open(f"sqlite:///{tmp_path / 'tasks.db'}")
    early = TaskRecord(
        **{**{f: getattr(RECORD, f) for f in RECORD.__dataclass_fields__}, "native_id": "t-2",
           "global_id": encode_id(TASK, Vendor.ORQ, "t-2"),
           "updated_at": datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)}
    )  # fmt: skip
    try:
        await index.upsert([RECORD, early], seen_at=1.0)
        async with index.engine.connect() as conn:
            shown = await conn.execute(text("SELECT created_at, updated_at FROM tasks ORDER BY id"))
            assert {tuple(r) for r in shown} == {
                ("2026-11-28T09:15:00.123456Z", None),
                ("2026-11-28T09:15:00.123456Z", "1969-12-31T23:59:59.999999Z"),
            }
    finally:
        await index.close()


# -- plans ---------------------------------------------------------------------------------
KEYSETS = [
    None,
    Keyset(datetime(2026, 1, 1, tzinfo=UTC), Vendor.ORQ, "x"),
    Keyset(None, Vendor.XPANDER, "x"),
]


async def plans(index: TaskIndex, query: ListQuery) -> list[str]:
    """The plan of every read of every page shape (first page, after a dated keyset, after
    an undated one)."""
    out: list[str] = []
    async with index.engine.connect() as conn:
        if index.dialect == "postgresql":
            await conn.execute(text("SET enable_seqscan = off"))
            await conn.execute(text("SET enable_sort = off"))
        translate = schema.engine_options(index.dialect).get("schema_translate_map")
        for after in KEYSETS:
            for statement in (
                s for r in index.reads(query, list(Vendor), after) for s in r.statements
            ):
                sql = statement.limit(21).compile(
                    dialect=conn.dialect,
                    schema_translate_map=translate,
                    render_schema_translate=translate is not None,
                    compile_kwargs={"literal_binds": True},
                )
                prefix = "EXPLAIN QUERY PLAN " if index.dialect == "sqlite" else "EXPLAIN "
                found = await conn.exec_driver_sql(prefix + str(sql))
                out.append("\n".join(str(row[-1]) for row in found))
        if index.dialect == "postgresql":
            await conn.rollback()
    return out


@pytest.mark.parametrize("field", list(OrderField))
@pytest.mark.parametrize("direction", list(Direction))
async def test_every_order_is_read_from_an_index_without_sorting(
    fresh_url: str, field: OrderField, direction: Direction
) -> None:
    """Planners may choose otherwise on tiny tables; with sorting and full scans priced out
    (PostgreSQL) the plan shows that an index yields each read in its order."""
    index = await TaskIndex.open(fresh_url)
    try:
        base = datetime(2026, 1, 1, tzinfo=UTC)
        await index.upsert(
            [
                TaskRecord(v, f"n{i}", encode_id(TASK, v, f"n{i}"), None, TaskStatus.RUNNING, None,
                           None, None, base + timedelta(seconds=i % 7), base)
                for v in Vendor for i in range(30)
            ],
            seen_at=1.0,
        )  # fmt: skip
        for plan in await plans(index, ListQuery(order=Order(field, direction))):
            assert "ix_task_rows_" in plan, plan
            assert "TEMP B-TREE" not in plan and "Sort" not in plan, plan
            assert not re.search(r"SCAN task_rows(?! USING)|Seq Scan", plan), plan
    finally:
        await index.close()
