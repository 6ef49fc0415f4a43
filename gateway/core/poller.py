"""Live task changes without a push API: one shared poll, diffed.

Every change a vendor records moves the task's update time to "now", so it surfaces at the
top of the listing ordered by ``UPDATED_AT DESC``. One poller therefore reads only the
newest ``window`` tasks of every vendor each ``interval`` and diffs them against the last
snapshot (id → status and update time); every subscriber, whatever its filter, is fed from
that one poll and keeps what matches. The poll goes through the page cache, so a change
reaches subscribers within ``interval`` plus the vendor's first-page TTL. The poller runs
only while someone is subscribed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import datetime

from gateway.core.context import RequestState
from gateway.core.records import TaskRecord, TaskStatus, Vendor
from gateway.core.service import TaskService
from gateway.vendors.base import ListQuery

logger = logging.getLogger("gateway.poller")

DEFAULT_INTERVAL_SECONDS = 5.0
DEFAULT_WINDOW = 500
QUEUE_SIZE = 1000


class Subscriber:
    def __init__(self, query: ListQuery, vendors: set[Vendor] | None) -> None:
        self.query = query
        self.vendors = vendors
        self.queue: asyncio.Queue[TaskRecord] = asyncio.Queue(QUEUE_SIZE)

    def offer(self, record: TaskRecord) -> None:
        if self.vendors is not None and record.vendor not in self.vendors:
            return
        if not self.query.matches(record):
            return
        if self.queue.full():  # a consumer this far behind gets the newest changes
            self.queue.get_nowait()
        self.queue.put_nowait(record)


class TaskPoller:
    def __init__(
        self,
        service: TaskService,
        interval: float = DEFAULT_INTERVAL_SECONDS,
        window: int = DEFAULT_WINDOW,
    ) -> None:
        self.service = service
        self.interval = interval
        self.window = window
        self.subscribers: set[Subscriber] = set()
        self.polls = 0
        self._task: asyncio.Task[None] | None = None
        self._snapshot: dict[str, tuple[TaskStatus, datetime]] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def subscribe(
        self, query: ListQuery, vendors: set[Vendor] | None = None
    ) -> AsyncIterator[TaskRecord]:
        subscriber = Subscriber(query, vendors)
        self.subscribers.add(subscriber)
        if not self.running:
            self._snapshot = None
            self._task = asyncio.create_task(self._run())
        try:
            while True:
                yield await subscriber.queue.get()
        finally:
            self.subscribers.discard(subscriber)
            if not self.subscribers:
                await self.close()

    async def _run(self) -> None:
        while self.subscribers:
            try:
                await self.poll()
            except Exception:  # one bad poll must not end live updates
                logger.exception("poll failed")
            await asyncio.sleep(self.interval)

    async def poll(self) -> list[TaskRecord]:
        """Read the newest tasks, push what changed since the last poll (the first poll
        only sets the baseline)."""
        self.polls += 1
        plan = self.service.plan(ListQuery())
        state = RequestState()
        newest: list[TaskRecord] = []
        batch = min(self.window, 100)
        records = self.service.stream(plan, state, batch)
        async with contextlib.aclosing(records):  # type: ignore[type-var]
            async for record in records:
                newest.append(record)
                if len(newest) >= self.window:
                    break
        snapshot = {r.global_id: (r.status, r.updated_at) for r in newest}
        previous, self._snapshot = self._snapshot, snapshot
        if previous is None:
            return []
        changed = [r for r in newest if previous.get(r.global_id) != snapshot[r.global_id]]
        for record in reversed(changed):  # oldest change first
            for subscriber in list(self.subscribers):
                subscriber.offer(record)
        return changed

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
