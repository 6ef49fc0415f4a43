"""The index as queries see it: which vendors it serves, and reads in the merge's terms.

``IndexView`` is what ``TaskService`` holds (``gateway.core.indexed.IndexedTasks``). It keeps
each vendor's sync state in memory: the replica that syncs a vendor updates it as it saves
it, the others read it from the database every ``refresh`` seconds, so a replica that does
not sync still starts serving a vendor within that time of its first sync finishing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence

from gateway.core.contract import ListQuery
from gateway.core.errors import UpstreamUnavailableError
from gateway.core.indexed import After, IndexStatus
from gateway.core.records import TaskRecord, Vendor
from gateway.core.stats import GroupBy, Stats
from gateway.index.store import Keyset, SyncState, TaskIndex

logger = logging.getLogger("gateway.index")

DEFAULT_REFRESH_SECONDS = 2.0
COUNT_EVERY = 5
"""Refreshes between two counts of the rows per vendor (a scan of the whole index)."""

Changes = Callable[[Sequence[TaskRecord]], None]
"""Where detected changes go (``taskChanged``): new or changed tasks, in order."""


class IndexView:
    def __init__(
        self,
        index: TaskIndex,
        vendors: Sequence[Vendor],
        *,
        refresh: float = DEFAULT_REFRESH_SECONDS,
    ) -> None:
        self.index = index
        self.vendors = tuple(vendors)
        self.refresh_seconds = refresh
        self.states: dict[Vendor, SyncState] = {}
        self.on_change: Changes | None = None
        """Set by the app: the sync's changes and fresh reads' changes are published here."""
        self.syncing: set[Vendor] = set()
        """The vendors this replica syncs (holds the lock of), kept by ``IndexSync``."""
        self.counts: dict[Vendor, int] = {}
        """Tasks per vendor in the index, as of the last refresh (``gateway_index_tasks``)."""
        self._refreshes = 0
        self._task: asyncio.Task[None] | None = None

    # -- what the service asks ----------------------------------------------------------
    def serves(self, vendor: Vendor) -> bool:
        state = self.states.get(vendor)
        return state is not None and state.first_sync_done

    def status(self, vendor: Vendor) -> IndexStatus | None:
        state = self.states.get(vendor)
        if state is None:
            return None
        return IndexStatus(
            synced_at=state.synced_at,
            first_sync_done=state.first_sync_done,
            first_sync_progress=state.first_sync_progress,
            last_error=state.last_error,
            last_error_at=state.last_error_at,
            syncing_here=vendor in self.syncing,
        )

    def local(self) -> frozenset[Vendor]:
        """The vendors whose changes this replica's sync publishes: synced here, first
        sync done (``taskChanged`` polls only the others)."""
        return frozenset(v for v in self.syncing if self.serves(v))

    def synced_at(self, vendor: Vendor) -> float | None:
        state = self.states.get(vendor)
        return None if state is None else state.synced_at

    async def read(
        self, query: ListQuery, vendors: Sequence[Vendor], first: int, after: After | None
    ) -> tuple[list[TaskRecord], bool]:
        keyset = None if after is None else Keyset(*after)
        try:
            records, following = await self.index.page(query, vendors, first, keyset)
        except Exception as exc:
            raise self._unreadable(vendors[0]) from exc
        return records, following is not None

    async def count(self, query: ListQuery, vendors: Sequence[Vendor]) -> int:
        try:
            return await self.index.count(query, vendors)
        except Exception as exc:
            raise self._unreadable(vendors[0]) from exc

    async def stats(
        self, query: ListQuery, vendors: Sequence[Vendor], by: Sequence[GroupBy]
    ) -> Stats:
        try:
            return await self.index.stats(query, vendors, by)
        except Exception as exc:
            raise self._unreadable(vendors[0]) from exc

    async def write(self, records: Sequence[TaskRecord]) -> None:
        """A live read's records (``fresh: true``), stored and their changes published;
        a failure to store is logged, never the request's."""
        try:
            changed = await self.index.upsert(records, seen_at=time.time())
        except Exception:
            logger.warning("index: could not store a fresh read", exc_info=True)
            return
        self.publish(changed)

    def publish(self, changed: Sequence[TaskRecord]) -> None:
        if changed and self.on_change is not None:
            self.on_change(changed)

    @staticmethod
    def _unreadable(vendor: Vendor) -> UpstreamUnavailableError:
        logger.warning("index: read failed", exc_info=True)
        return UpstreamUnavailableError(vendor, "the task index could not be read")

    # -- keeping the states current -----------------------------------------------------
    def update(self, vendor: Vendor, state: SyncState) -> None:
        """The sync saved ``state`` for ``vendor`` (this replica syncs it)."""
        self.states[vendor] = state

    async def load(self) -> None:
        for vendor in self.vendors:
            self.states[vendor] = await self.index.load_state(vendor)
        if self._refreshes % COUNT_EVERY == 0:
            self.counts = await self.index.vendor_counts()
        self._refreshes += 1

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._refresh_loop())

    async def _refresh_loop(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_seconds)
            try:
                await self.load()
            except Exception:
                logger.warning("index: could not read the sync state", exc_info=True)

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
