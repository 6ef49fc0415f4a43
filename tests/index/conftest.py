"""The task index on both databases it supports: every test taking ``index`` runs twice, on
a SQLite file and on the session's throwaway PostgreSQL cluster (a database per module)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import delete

from gateway.index import schema
from gateway.index.store import TaskIndex

BACKENDS = ("sqlite", "postgresql")


@pytest.fixture(scope="module", params=BACKENDS)
def index_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A fresh database of each kind for the module."""
    if request.param == "sqlite":
        path: Path = tmp_path_factory.mktemp("index") / "tasks.db"
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture(scope="module")
async def index(index_url: str) -> AsyncIterator[TaskIndex]:
    opened = await TaskIndex.open(index_url)
    yield opened
    await opened.close()


async def empty(index: TaskIndex) -> TaskIndex:
    """The index with no rows and no sync state (between hypothesis examples)."""
    async with index.engine.begin() as conn:
        await conn.execute(delete(schema.task_rows))
        await conn.execute(delete(schema.sync_state))
    return index
