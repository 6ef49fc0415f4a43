"""Live task changes without a push API: one shared poll, diffed.

Every change a vendor records moves the task's update time to "now", so it surfaces at the
top of the listing ordered by ``UPDATED_AT DESC``. One poller therefore reads only the
newest ``window`` tasks of every vendor each ``interval`` and diffs them against the last
snapshot (id → status and update time); every subscriber, whatever its filter, is fed from
that one poll and keeps what matches. The poll goes through the page cache, so a change
reaches subscribers within ``interval`` plus the vendor's first-page TTL. The poller runs
only while someone is subscribed.

"One poll" is one per set of vendor keys: a subscriber that brought its own keys
(``X-Vendor-Key-*``) is fed by a poll made with those keys, shared only with subscribers that
brought the same ones, so no caller sees what another's keys can read. Groups exist only
while they have subscribers, so their number is bounded by the open subscriptions.

With the task index (``[index] url``), the changes of the vendors this replica syncs come
from the sync itself (``publish``: what the index found new or different), not from a poll;
the group acting with the gateway's own keys polls only the other vendors (those another
replica syncs, whose reads come from the index, so no vendor call; or those whose first sync
is not done yet), and none at all when there are no others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from datetime import datetime

from gateway.core.cache import fingerprint
from gateway.core.context import Priority, RequestState
from gateway.core.contract import Credentials, ListQuery
from gateway.core.ids import decode_id
from gateway.core.records import TaskRecord, TaskStatus, Vendor, sort_key
from gateway.core.service import TaskService

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


def credentials_key(credentials: Mapping[Vendor, Credentials]) -> str:
    """The poll group of a set of vendor keys: their digests (never the secrets), by vendor."""
    return ",".join(
        f"{vendor.value}={fingerprint(c.secret)}"
        for vendor, c in sorted(credentials.items(), key=lambda item: item[0].value)
    )


class PollGroup:
    """The subscribers acting with one set of vendor keys, and the poll made with them."""

    def __init__(self, credentials: Mapping[Vendor, Credentials]) -> None:
        self.credentials = dict(credentials)
        self.subscribers: set[Subscriber] = set()
        self.task: asyncio.Task[None] | None = None
        self.snapshot: dict[str, tuple[TaskStatus, datetime | None]] | None = None
        self.polled: frozenset[Vendor] | None = None
        """The vendors the snapshot covers (a change of them starts a new baseline)."""

    @property
    def running(self) -> bool:
        return self.task is not None and not self.task.done()


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
        self.groups: dict[str, PollGroup] = {}
        self.polls = 0
        self.fed: Callable[[], frozenset[Vendor]] | None = None
        """With the task index: the vendors whose changes ``publish`` brings (not polled)."""

    @property
    def subscribers(self) -> set[Subscriber]:
        return {s for group in self.groups.values() for s in group.subscribers}

    @property
    def running(self) -> bool:
        return any(group.running for group in self.groups.values())

    async def subscribe(
        self,
        query: ListQuery,
        vendors: set[Vendor] | None = None,
        credentials: Mapping[Vendor, Credentials] | None = None,
    ) -> AsyncIterator[TaskRecord]:
        """Changes matching ``query``, read with ``credentials`` (the caller's vendor keys;
        none: the gateway's own)."""
        subscriber = Subscriber(query, vendors)
        key = credentials_key(credentials or {})
        group = self.groups.get(key)
        if group is None:
            group = self.groups[key] = PollGroup(credentials or {})
        group.subscribers.add(subscriber)
        if not group.running:
            group.snapshot = None
            group.task = asyncio.create_task(self._run(group))
        try:
            while True:
                yield await subscriber.queue.get()
        finally:
            group.subscribers.discard(subscriber)
            if not group.subscribers:
                if self.groups.get(key) is group:
                    del self.groups[key]
                await _stop(group)

    async def _run(self, group: PollGroup) -> None:
        while group.subscribers:
            try:
                await self.poll(group)
            except Exception:  # one bad poll must not end live updates
                logger.exception("poll failed")
            await asyncio.sleep(self.interval)

    async def poll(self, group: PollGroup) -> list[TaskRecord]:
        """Read the newest tasks with the group's keys, push what changed since its last
        poll (the first poll only sets the baseline)."""
        fed = self.fed() if self.fed is not None and not group.credentials else frozenset()
        polled = frozenset(self.service.enabled_vendors) - fed
        if polled != group.polled:
            group.snapshot, group.polled = None, polled
        if not polled:
            return []
        self.polls += 1
        plan = self.service.plan(ListQuery(), polled)
        # Background: the poll uses only what the vendors' budgets leave above the
        # interactive reserve, so requests are served while it waits.
        state = RequestState(credentials=dict(group.credentials), priority=Priority.BACKGROUND)
        newest: list[TaskRecord] = []
        batch = min(self.window, 100)
        records = self.service.stream(plan, state, batch)
        async with contextlib.aclosing(records):  # type: ignore[type-var]
            async for record in records:
                newest.append(record)
                if len(newest) >= self.window:
                    break
        snapshot = {r.global_id: (r.status, r.updated_at) for r in newest}
        previous, group.snapshot = group.snapshot, snapshot
        if previous is None:
            return []
        missed = {error.vendor for error in state.errors}
        if missed:
            # A vendor missing from this poll (its budget left nothing for background work,
            # an outage) keeps its last snapshot: its tasks are not news when it is back.
            snapshot.update(
                (key, seen)
                for key, seen in previous.items()
                if key not in snapshot and decode_id(key).vendor in missed
            )
        changed = [r for r in newest if previous.get(r.global_id) != snapshot[r.global_id]]
        for record in reversed(changed):  # oldest change first
            for subscriber in list(group.subscribers):
                subscriber.offer(record)
        return changed

    def publish(self, records: Sequence[TaskRecord]) -> None:
        """Changes the index's sync found (oldest first): offered to the subscribers acting
        with the gateway's own keys, the keys the index is read with."""
        group = self.groups.get(credentials_key({}))
        if group is None:
            return
        for record in sorted(records, key=lambda r: sort_key(r.updated_at, False)):
            for subscriber in list(group.subscribers):
                subscriber.offer(record)

    async def close(self) -> None:
        groups, self.groups = list(self.groups.values()), {}
        for group in groups:
            await _stop(group)


async def _stop(group: PollGroup) -> None:
    task, group.task = group.task, None
    if task is not None and task is not asyncio.current_task():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
