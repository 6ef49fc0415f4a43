"""The background sync: every enabled vendor's tasks copied into the index, and kept current.

One task per vendor. Each reads the vendor only through ``Upstream.fetch_page`` with
``Priority.BACKGROUND`` (so the vendor budgets rank it below interactive requests), and never
from the page cache (it wants the vendor's data now, and a full read would only push every
other entry out). A vendor's budget running out (``UpstreamBudgetExhaustedError``) is a pause,
not a failure: the read waits for the budget and goes on where it was.

**What is read** is chosen from what each connector declares, never from its name:

- *A full read* of the vendor's default listings (``sources(ListQuery())``), each read in the
  vendor's own order through the merge's ``Reader`` (so a tie group straddling two pages is
  read exactly, as a live answer reads it). The first full read fills the index; its progress
  (which listing, the position in it, as a cursor position) is saved in ``sync_state`` every
  ``FLUSH_ROWS`` rows, so a restarted gateway resumes it: rows written twice are the same rows
  (the key is the task), and nothing before the saved position is read again. Later full reads
  (every ``rescan_interval``) catch whatever the incremental reads below cannot, and detect
  deletions: the rows they did not see are removed (``delete_unseen``).
- *Incrementally*, every ``interval``:
  - where the listing ``UPDATED_AT DESC`` is ``ordered`` (the vendor sorts by update time),
    it is read from its head back to the watermark (the newest update time seen by the last
    pass, less ``OVERLAP``): every change moves a task to the head. A listing that puts tasks
    without an update time first (``Source.nulls_first``) has that null prefix read on every
    pass, as the merge reads it;
  - otherwise (newest created first only): the non-terminal tasks through the vendor's status
    filter (when statuses are among its ``exact_filters``), read whole; the index's
    non-terminal tasks missing from it have moved on (finished, or were deleted), so the head
    of ``CREATED_AT DESC`` is read back to the oldest of them, and at least to the newest
    creation time seen before (new tasks), less ``OVERLAP``.

Changes the index detects (``upsert`` returns what is new or different) feed ``taskChanged``,
except during a vendor's first full read, which is a load, not a change.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from gateway.core.context import Priority, RequestState
from gateway.core.contract import ListQuery, PageToken, Source, SourcePage
from gateway.core.cursor import Position
from gateway.core.errors import UpstreamBudgetExhaustedError, UpstreamError
from gateway.core.merge import Reader
from gateway.core.records import Direction, Order, OrderField, TaskRecord, TaskStatus, Vendor
from gateway.core.upstream import Upstream
from gateway.index.lock import SyncLocks
from gateway.index.store import SyncState, TaskIndex
from gateway.index.view import IndexView

logger = logging.getLogger("gateway.index")

UPDATED_DESC = Order(OrderField.UPDATED_AT, Direction.DESC)
CREATED_DESC = Order(OrderField.CREATED_AT, Direction.DESC)
NON_TERMINAL = frozenset(
    {TaskStatus.PENDING, TaskStatus.RUNNING, TaskStatus.PAUSED, TaskStatus.AWAITING_APPROVAL}
)
"""Tasks still moving: a vendor's status filter for these finds the changes it cannot sort
by update time. ``IDLE`` is left out (orq's idle tasks are its finished ones: every task
would be in the filter); a task that moves on from it is caught by the next full read."""

OVERLAP = timedelta(seconds=60)
"""Incremental reads go this much further back than the last pass saw: rows committed late,
or moved while a pass was reading, are read again (an unchanged row writes nothing)."""

FLUSH_ROWS = 200
"""Rows written (and, in a full read, progress saved) at once."""

DEFAULT_INTERVAL_SECONDS = 30.0
DEFAULT_RESCAN_SECONDS = 6 * 3600.0
MAX_BUDGET_WAIT_SECONDS = 60.0
ERROR_RETRY_SECONDS = 5.0


class Strategy(enum.Enum):
    """How a vendor's changes are found between full reads."""

    UPDATED = "updated"  # the UPDATED_AT DESC listing is ordered: back to a watermark
    CREATED = "created"  # newest created first, plus the non-terminal tasks' status filter
    FULL = "full"  # neither: every pass is a full read


@dataclass(frozen=True)
class SyncSettings:
    interval: float = DEFAULT_INTERVAL_SECONDS
    """Seconds between incremental passes."""
    rescan_interval: float = DEFAULT_RESCAN_SECONDS
    """Seconds between full reads after the first (deletions, and anything missed)."""


@dataclass
class SyncStatus:
    """What the metrics and ``Query.vendors`` show of one vendor's sync in this replica."""

    vendor: Vendor
    strategy: Strategy
    syncing: bool = False
    """This replica holds the vendor's lock."""
    errors: int = 0
    calls: int = 0
    """Pages asked of the vendor by this replica's sync."""
    waiting_for_budget: bool = False


def strategy_for(upstream: Upstream, vendor: Vendor) -> Strategy:
    connector = upstream.connector(vendor)
    by_update = connector.sources(ListQuery(order=UPDATED_DESC))
    if by_update and all(s.ordered for s in by_update):
        return Strategy.UPDATED
    by_creation = connector.sources(ListQuery(order=CREATED_DESC))
    if by_creation and all(s.ordered for s in by_creation):
        return Strategy.CREATED
    return Strategy.FULL


def _time(text: Any) -> datetime | None:
    return datetime.fromisoformat(text) if isinstance(text, str) else None


def _later(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)


@dataclass
class _Read:
    """One listing being read: rows waiting to be written, the newest times seen."""

    batch: list[TaskRecord] = field(default_factory=list)
    newest_updated: datetime | None = None
    newest_created: datetime | None = None
    rows: int = 0
    seen: set[str] = field(default_factory=set)

    def take(self, record: TaskRecord) -> None:
        self.batch.append(record)
        self.rows += 1
        self.seen.add(record.global_id)
        self.newest_updated = _later(self.newest_updated, record.updated_at)
        self.newest_created = _later(self.newest_created, record.created_at)


class VendorSync:
    """The sync of one vendor (run only while this replica holds its lock)."""

    def __init__(
        self,
        vendor: Vendor,
        upstream: Upstream,
        index: TaskIndex,
        view: IndexView,
        settings: SyncSettings,
    ) -> None:
        self.vendor = vendor
        self.upstream = upstream
        self.connector = upstream.connector(vendor)
        self.index = index
        self.view = view
        self.settings = settings
        self.status = SyncStatus(vendor, strategy_for(upstream, vendor))
        self.state = SyncState()
        self._totals: dict[str, int] = {}
        """Each listing's task count, as its first page said (first-sync progress)."""

    # -- vendor reads -----------------------------------------------------------------
    async def _fetch(self, source: Source, token: PageToken, _: RequestState) -> SourcePage:
        """One page, at background priority and uncached; a spent budget is waited out."""
        while True:
            state = RequestState(priority=Priority.BACKGROUND, bypass_cache=True, cache_store=False)
            try:
                page = await self.upstream.fetch_page(source, token, state)
            except UpstreamBudgetExhaustedError as exc:
                self.status.waiting_for_budget = True
                wait = exc.retry_after if exc.retry_after is not None else 1.0
                await asyncio.sleep(min(max(wait, 0.05), MAX_BUDGET_WAIT_SECONDS))
                continue
            self.status.waiting_for_budget = False
            self.status.calls += 1
            if token is None and page.total is not None:
                self._totals[source.key] = page.total
            return page

    def _reader(self, source: Source, start: Position | None, order: Order) -> Reader:
        """``source`` read in the vendor's own order (one the merge would sort is read as it
        comes: a full read needs every row, not an order), tie groups read exactly."""
        as_listed = Source(source.vendor, source.path, source.params, True, source.nulls_first)
        reader = Reader(
            as_listed,
            ListQuery(order=order),
            start or Position(None, 0),  # (None would mean "nothing left to read")
            self._fetch,
            RequestState(priority=Priority.BACKGROUND, bypass_cache=True, cache_store=False),
            windows=self.connector.windows(as_listed),
        )
        reader.want = 0  # no page read ahead: a pass that stops early wastes no call
        return reader

    async def _write(self, read: _Read, *, seen_at: float, publish: bool) -> None:
        if not read.batch:
            return
        changed = await self.index.upsert(read.batch, seen_at=seen_at)
        read.batch.clear()
        if publish:
            self.view.publish(changed)

    async def _save(self) -> None:
        await self.index.save_state(self.vendor, self.state)
        self.view.update(self.vendor, replace(self.state, state=dict(self.state.state)))

    # -- passes ---------------------------------------------------------------------------
    def full_sources(self) -> list[Source]:
        return self.connector.sources(ListQuery())

    async def run_pass(self) -> None:
        """One pass: the (first, resumed or due) full read, else an incremental one."""
        self.state = await self.index.load_state(self.vendor)
        data = self.state.state
        listings = [s.key for s in self.full_sources()]
        if data.get("listings") != listings:
            # New or changed listings (agents configured): the index is complete again
            # only after a full read of them.
            data.clear()
            data["listings"] = listings
            self.state.first_sync_done = False
            self.state.first_sync_progress = 0.0
        due = time.time() - float(data.get("rescanned_at", 0.0)) >= self.settings.rescan_interval
        if (
            not self.state.first_sync_done
            or "full" in data
            or due
            or self.status.strategy is Strategy.FULL
        ):
            await self.full_read()
        elif self.status.strategy is Strategy.UPDATED:
            await self.since_watermark()
        else:
            await self.created_and_moving()
        self.state.synced_at = time.time()
        self.state.last_error = None
        await self._save()

    async def _drain(
        self,
        reader: Reader,
        read: _Read,
        *,
        publish: bool,
        stop: Callable[[TaskRecord], bool] | None = None,
        started: float = 0.0,
        flushed: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """Take ``reader``'s rows until it ends or ``stop`` says a row is past what is
        wanted, written every ``FLUSH_ROWS`` rows (then ``flushed``, which saves progress)
        and at the end; marked seen no earlier than ``started``."""
        while True:
            await reader.fill()
            record = reader.head()
            if record is None or (stop is not None and stop(record)):
                break
            reader.pop()
            read.take(record)
            if len(read.batch) >= FLUSH_ROWS:
                await self._write(read, seen_at=max(time.time(), started), publish=publish)
                if flushed is not None:
                    await flushed()
        await self._write(read, seen_at=max(time.time(), started), publish=publish)

    async def full_read(self) -> None:
        data = self.state.state
        full: dict[str, Any] = data.setdefault(
            "full", {"started": time.time(), "source": 0, "position": None, "rows": 0}
        )
        sources = self.full_sources()
        started = float(full["started"])
        await self._save()
        for number in range(int(full["source"]), len(sources)):
            saved = full["position"]
            start = Position(saved[0], saved[1]) if saved else None
            if start is None:
                full["listing_rows"] = 0
            reader = self._reader(sources[number], start, UPDATED_DESC)
            read = _Read()
            await self._drain(
                reader,
                read,
                publish=self.state.first_sync_done,  # a first sync is a load, not changes
                started=started,
                flushed=functools.partial(self._save_position, full, reader, read, number, sources),
            )
            full["source"], full["position"] = number + 1, None
            self._note_full(full, read, number + 1, sources)
            await self._save()
        deleted = await self.index.delete_unseen(self.vendor, seen_before=started)
        if deleted:
            logger.info("index: %s: %d tasks gone from the vendor", self.vendor.value, len(deleted))
        data.pop("full")
        data["rescanned_at"] = started
        data["watermark"] = full.get("newest_updated")
        data["created_mark"] = full.get("newest_created")
        self.state.first_sync_done = True
        self.state.first_sync_progress = 1.0

    async def _save_position(
        self,
        full: dict[str, Any],
        reader: Reader,
        read: _Read,
        number: int,
        sources: Sequence[Source],
    ) -> None:
        """A full read's progress saved: where a restart resumes it."""
        position = reader.position
        full["position"] = None if position is None else [position.token, position.index]
        self._note_full(full, read, number, sources)
        await self._save()

    def _note_full(
        self, full: dict[str, Any], read: _Read, done: int, sources: Sequence[Source]
    ) -> None:
        """Progress of a full read: the listings done, and the share of the current one read
        where its vendor gives a total (``SourcePage.total``)."""
        full["rows"] = int(full["rows"]) + read.rows
        full["listing_rows"] = int(full.get("listing_rows", 0)) + read.rows
        read.rows = 0
        newest_updated = _later(_time(full.get("newest_updated")), read.newest_updated)
        newest_created = _later(_time(full.get("newest_created")), read.newest_created)
        full["newest_updated"] = newest_updated.isoformat() if newest_updated else None
        full["newest_created"] = newest_created.isoformat() if newest_created else None
        if self.state.first_sync_done:
            return
        share = 0.0
        if done < len(sources):
            total = self._totals.get(sources[done].key)
            if total:
                share = min(1.0, int(full["listing_rows"]) / total)
        self.state.first_sync_progress = min(0.99, (done + share) / max(1, len(sources)))

    async def _head(self, sources: Sequence[Source], order: Order, floor: datetime | None) -> _Read:
        """Each listing from its head, in ``order``, down to the first dated row older
        than ``floor`` (None: every row); written as it goes."""

        def past(record: TaskRecord) -> bool:
            moment = record.sort_time(order.field)
            return floor is not None and moment is not None and moment < floor

        read = _Read()
        for source in sources:
            await self._drain(self._reader(source, None, order), read, publish=True, stop=past)
        return read

    async def since_watermark(self) -> None:
        data = self.state.state
        mark = _time(data.get("watermark"))
        floor = None if mark is None else mark - OVERLAP
        read = await self._head(
            self.connector.sources(ListQuery(order=UPDATED_DESC)), UPDATED_DESC, floor
        )
        newest = _later(mark, read.newest_updated)
        data["watermark"] = newest.isoformat() if newest else None

    async def created_and_moving(self) -> None:
        data = self.state.state
        moving = _Read()
        if "statuses" in self.connector.exact_filters:
            for source in self.connector.sources(ListQuery(statuses=NON_TERMINAL)):
                await self._drain(self._reader(source, None, CREATED_DESC), moving, publish=True)
        mark = _time(data.get("created_mark"))
        floor = mark
        async for record in self.index.stream(ListQuery(statuses=NON_TERMINAL), [self.vendor]):
            if record.global_id not in moving.seen and record.created_at is not None:
                floor = record.created_at if floor is None else min(floor, record.created_at)
        read = await self._head(
            self.connector.sources(ListQuery(order=CREATED_DESC)),
            CREATED_DESC,
            None if floor is None else floor - OVERLAP,
        )
        newest = _later(mark, read.newest_created)
        data["created_mark"] = newest.isoformat() if newest else None

    # -- the loop ------------------------------------------------------------------------
    async def attempt(self) -> bool:
        """One pass; a failure is recorded (``fail``), not raised. True: it succeeded."""
        try:
            await self.run_pass()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            await self.fail(exc)
            return False
        return True

    async def fail(self, error: BaseException) -> None:
        """A pass failed: shown as the vendor's last sync error; the next pass retries
        (a full read from where it saved its progress)."""
        self.status.errors += 1
        if isinstance(error, UpstreamError):
            message = f"{error.code}: {error.message}"
        else:
            message = f"{type(error).__name__}: the sync failed (see the gateway's log)"
            logger.error("index: %s sync failed", self.vendor.value, exc_info=error)
        with contextlib.suppress(Exception):
            self.state = await self.index.load_state(self.vendor)
            self.state.last_error = message
            self.state.last_error_at = time.time()
            await self._save()


class IndexSync:
    """Every enabled vendor's sync, each run only where this replica holds its lock."""

    def __init__(
        self,
        upstream: Upstream,
        index: TaskIndex,
        view: IndexView,
        locks: SyncLocks,
        settings: SyncSettings | None = None,
    ) -> None:
        self.settings = settings or SyncSettings()
        self.index = index
        self.view = view
        self.locks = locks
        self.vendors = {
            vendor: VendorSync(vendor, upstream, index, view, self.settings)
            for vendor in upstream.vendors
        }
        self._tasks: list[asyncio.Task[None]] = []
        self._wake: dict[Vendor, asyncio.Event] = {v: asyncio.Event() for v in self.vendors}

    def start(self) -> None:
        for vendor, sync in self.vendors.items():
            self._tasks.append(
                asyncio.create_task(self._run(sync), name=f"index-sync-{vendor.value}")
            )

    def wake(self, vendor: Vendor | None = None) -> None:
        """Start the next pass now instead of after ``interval`` (tests, operators)."""
        for key, event in self._wake.items():
            if vendor is None or key is vendor:
                event.set()

    async def _run(self, sync: VendorSync) -> None:
        vendor = sync.vendor
        while True:
            held = await self.locks.acquire(vendor) and await self.locks.holds(vendor)
            sync.status.syncing = held
            if held:
                self.view.syncing.add(vendor)
            else:
                self.view.syncing.discard(vendor)
            if held and not await sync.attempt():
                await self._sleep(vendor, min(ERROR_RETRY_SECONDS, self.settings.interval))
                continue
            await self._sleep(vendor, self.settings.interval)

    async def _sleep(self, vendor: Vendor, seconds: float) -> None:
        event = self._wake[vendor]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), seconds)
        event.clear()

    async def close(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.locks.close()
