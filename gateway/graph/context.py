"""What every resolver of one GraphQL request shares: the service, the request's state, and
DataLoaders so related records are fetched once per request, not once per item."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from strawberry.dataloader import DataLoader

from gateway.core.context import RequestState
from gateway.core.records import TaskRecord
from gateway.core.service import TaskService


@dataclass
class GraphContext:
    service: TaskService
    state: RequestState = field(default_factory=RequestState)
    request: Any = None
    response: Any = None
    executed: bool = False
    request_id: str = "-"
    observer: Any = None
    poller: Any = None
    parents: DataLoader[TaskRecord, TaskRecord | None] = field(init=False)
    children: DataLoader[TaskRecord, list[TaskRecord]] = field(init=False)

    def __post_init__(self) -> None:
        self.parents = DataLoader(self._load_parents, cache_key_fn=_record_key)
        self.children = DataLoader(self._load_children, cache_key_fn=_record_key)

    async def _load_parents(self, tasks: list[TaskRecord]) -> list[TaskRecord | None]:
        return list(await asyncio.gather(*(self.service.parent(t, self.state) for t in tasks)))

    async def _load_children(self, tasks: list[TaskRecord]) -> list[list[TaskRecord]]:
        return await self.service.subtasks(tasks, self.state)


def _record_key(record: TaskRecord) -> str:
    return record.global_id
