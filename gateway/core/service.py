"""The machinery's one entry point for the graph, the exports and the poller.

``TaskService`` turns a shared query into per-vendor sources, merges them into pages,
counts, finds single tasks by id and writes trackers. It knows nothing of GraphQL, and no
vendor by name: what only some vendors can do (trackers, sub-tasks) it asks the connector
(``TrackerWriter``, ``SubtaskLister``).
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, replace

from gateway.core.context import RequestState
from gateway.core.contract import (
    ListQuery,
    PageToken,
    Source,
    SourcePage,
    SubtaskLister,
    TrackerWriter,
)
from gateway.core.cursor import Position, Positions, decode_cursor, short_hash
from gateway.core.errors import BadInputError, NotFoundError, UpstreamBadRecordsError, UpstreamError
from gateway.core.fanout import slowest_first
from gateway.core.ids import TASK, TRACKER, decode_id
from gateway.core.indexed import INDEXED, IndexedTasks, IndexReader, fail_all, index_source
from gateway.core.locks import lock_name
from gateway.core.merge import ALL, DATED, UNDATED, MergedPage, Reader, merge_page, positions_for
from gateway.core.records import TaskRecord, TrackerRecord, Vendor
from gateway.core.upstream import Upstream

MAX_FIRST = 100
DEFAULT_FIRST = 20
EXPORT_BATCH = 500


@dataclass(frozen=True, slots=True)
class Plan:
    """The sources that answer a query, in a fixed order, with their cursor keys.

    A listing that puts tasks without the sort time first (``Source.nulls_first``) is read
    by two readers, one per ``part`` (its dated rows, then its null prefix, which sorts
    last); without a time filter only, since a time filter never matches a null time."""

    query: ListQuery
    sources: tuple[Source, ...]
    keys: tuple[str, ...]
    vendors: tuple[Vendor, ...]
    fingerprint: str
    parts: tuple[str, ...] = ()

    @property
    def listings(self) -> tuple[Source, ...]:
        """Each upstream listing once (a listing read in two parts is one listing)."""
        return tuple(dict.fromkeys(self.sources))


def _key(source: Source, part: str) -> str:
    """A source's key in cursors (a listing read in parts: one key per part)."""
    return short_hash(source.key if part == ALL else f"{source.key}#{part}")


class TaskService:
    def __init__(
        self, upstream: Upstream, *, max_first: int = MAX_FIRST, index: IndexedTasks | None = None
    ) -> None:
        self.upstream = upstream
        self.max_first = max_first
        self.index = index
        """The task index (``[index] url``), set once it is open; None: every read is live."""

    @property
    def enabled_vendors(self) -> tuple[Vendor, ...]:
        return tuple(v for v in Vendor if v in self.upstream.vendors)

    def vendors_with(self, capability: type) -> tuple[Vendor, ...]:
        """The enabled vendors whose connector has ``capability`` (one of the optional
        protocols of ``gateway.core.contract``, e.g. ``TrackerWriter``)."""
        return tuple(v for v in self.enabled_vendors if self.has(v, capability))

    def has(self, vendor: Vendor, capability: type) -> bool:
        """Whether ``vendor`` is enabled and its connector has ``capability``."""
        return vendor in self.upstream.vendors and isinstance(
            self.upstream.connector(vendor), capability
        )

    def plan(self, query: ListQuery, vendors: Iterable[Vendor] | None = None) -> Plan:
        asked = set(vendors) if vendors is not None else set(Vendor)
        chosen = tuple(v for v in self.enabled_vendors if v in asked)
        sources: list[Source] = []
        parts: list[str] = []
        for vendor in chosen:
            for source in self.upstream.connector(vendor).sources(query):
                if source.ordered and source.nulls_first:
                    split = (DATED,) if query.has_time_filter else (DATED, UNDATED)
                else:
                    split = (ALL,)
                sources.extend([source] * len(split))
                parts.extend(split)
        keys = tuple(_key(s, p) for s, p in zip(sources, parts, strict=True))
        fingerprint = short_hash(repr((query.canonical(), sorted(v.value for v in chosen))))
        return Plan(query, tuple(sources), keys, chosen, fingerprint, tuple(parts))

    def served(self, plan: Plan, state: RequestState, positions: Positions | None = None) -> Plan:
        """The plan as this request reads it: the vendors the index serves (their first full
        sync done) are read from the index, by one index source in place of their listings
        (one query a page, whatever the number of vendors); the others live. A request asking
        for fresh data (``state.live``) reads the vendors live, and one that brought its own
        key for a vendor reads that vendor live (the index holds what the gateway's own keys
        read). A cursor keeps the reading it was made with, so a client paging while a
        vendor's first sync finishes goes on as it started."""
        if self.index is None:
            return plan
        indexed = self._indexed(plan, state, positions)
        if not indexed:
            return plan
        parts = plan.parts or (ALL,) * len(plan.sources)
        sources: list[Source] = []
        kept: list[str] = []
        for source, part in zip(plan.sources, parts, strict=True):
            if source.vendor not in indexed:
                sources.append(source)
                kept.append(part)
            elif INDEXED not in kept:
                sources.append(index_source(indexed))
                kept.append(INDEXED)
        keys = tuple(_key(s, p) for s, p in zip(sources, kept, strict=True))
        return replace(plan, sources=tuple(sources), keys=keys, parts=tuple(kept))

    def indexed_vendors(self, plan: Plan, state: RequestState) -> list[Vendor]:
        """The vendors of ``plan`` this request reads from the index."""
        return self._indexed(plan, state, None)

    def _indexed(
        self, plan: Plan, state: RequestState, positions: Positions | None
    ) -> list[Vendor]:
        index = self.index
        listed = list(dict.fromkeys(s.vendor for s in plan.sources))
        if index is None or not listed:
            return []
        if positions is not None:
            # The cursor names the index source it was made with: the same vendors again.
            for size in range(len(listed), 0, -1):
                for chosen in itertools.combinations(listed, size):
                    if _key(index_source(chosen), INDEXED) in positions:
                        return list(chosen)
            return []  # a cursor of a page read live: live to its end
        return [
            v for v in listed if v not in state.credentials and not state.live and index.serves(v)
        ]

    def check_first(self, first: int | None) -> int:
        if first is None:
            return DEFAULT_FIRST
        if first < 0 or first > self.max_first:
            raise BadInputError(f"`first` must be between 0 and {self.max_first}, got {first}")
        return first

    def _readers(
        self, plan: Plan, positions: Positions | None, state: RequestState
    ) -> list[Reader]:
        starts = positions_for(plan.keys, positions)
        parts = plan.parts or (ALL,) * len(plan.sources)
        return [
            IndexReader(source, plan.query, start, state, self.index)
            if part == INDEXED and self.index is not None
            else self._reader(source, plan.query, start, state, part)
            for source, start, part in zip(plan.sources, starts, parts, strict=True)
        ]

    def _reader(
        self,
        source: Source,
        query: ListQuery,
        start: Position | None,
        state: RequestState,
        part: str = ALL,
    ) -> Reader:
        return Reader(
            source,
            query,
            start,
            self._fetch_and_index
            if self._writes_index(source.vendor, state)
            else self.upstream.fetch_page,
            state,
            self.upstream.health[source.vendor].typical_seconds,
            windows=self.upstream.connector(source.vendor).windows(source),
            part=part,
            prefetch=functools.partial(self.upstream.budgets.room, source.vendor),
        )

    def _writes_index(self, vendor: Vendor, state: RequestState) -> bool:
        """A fresh read with the gateway's own key is written into the index."""
        return self.index is not None and state.live and vendor not in state.credentials

    async def _fetch_and_index(
        self, source: Source, token: PageToken, state: RequestState
    ) -> SourcePage:
        page = await self.upstream.fetch_page(source, token, state)
        if self.index is not None and page.records:
            await self.index.write(page.records)
        return page

    async def page(
        self, plan: Plan, first: int | None, after: str | None, state: RequestState
    ) -> MergedPage:
        """One page of the merged listing, resuming after ``after``."""
        size = self.check_first(first)
        positions = decode_cursor(after, plan.fingerprint) if after else None
        plan = self.served(plan, state, positions)
        readers = self._readers(plan, positions, state)
        page = await merge_page(readers, plan.keys, plan.fingerprint, size, state)
        report_bad_records(state, plan.vendors)
        return page

    async def count(self, plan: Plan, state: RequestState) -> int:
        """The number of matching tasks. Where the vendor's own total is exact for this
        filter, it is read from the listing's first page: the very response the page's
        merge reads (same cache key, one call shared in flight), so it costs no call of its
        own; start this concurrently with ``page`` and the total is free. Otherwise every
        page (cached) is read and the matches counted, tie groups across pages made exact."""
        conditions = plan.query.conditions()
        indexed = self.indexed_vendors(plan, state)
        plan = self.served(plan, state)
        parts = plan.parts or (ALL,) * len(plan.sources)
        live = tuple(
            dict.fromkeys(s for s, p in zip(plan.sources, parts, strict=True) if p != INDEXED)
        )

        async def from_index() -> int:
            assert self.index is not None
            for vendor in indexed:
                state.part(vendor).fetched_at = self.index.synced_at(vendor)
            try:
                return await self.index.count(plan.query, indexed)
            except UpstreamError as exc:
                fail_all(state, indexed, exc)
                raise

        async def one(source: Source) -> int:
            connector = self.upstream.connector(source.vendor)
            reader = self._reader(source, plan.query, None, state)
            if conditions <= connector.exact_filters:
                first = await reader.read_first()
                if first.total is not None:
                    return first.total
            return sum(1 for r in await reader.read_all() if plan.query.matches(r))

        health = self.upstream.health
        counts = [(health[s.vendor].typical_seconds, one(s)) for s in live]
        if indexed:
            counts.append((0.0, from_index()))
        results = await slowest_first(counts)
        total = 0
        for result in results:
            if isinstance(result, UpstreamError):
                state.fail(result)
            elif isinstance(result, BaseException):
                raise result
            else:
                total += result
        report_bad_records(state, plan.vendors)
        return total

    async def stream(
        self, plan: Plan, state: RequestState, batch: int = EXPORT_BATCH
    ) -> AsyncIterator[TaskRecord]:
        """Every matching task in order, a batch at a time: memory stays bounded by the
        vendors' page sizes (plus any source that must be read whole to be sorted)."""
        plan = self.served(plan, state)
        readers = self._readers(plan, None, state)
        while True:
            page = await merge_page(readers, plan.keys, plan.fingerprint, batch, state)
            for item in page.items:
                yield item.record
            if not page.has_next_page:
                report_bad_records(state, plan.vendors)
                return

    # -- single nodes ---------------------------------------------------------------------
    async def find(self, node_id: str, state: RequestState) -> TaskRecord | TrackerRecord | None:
        node = decode_id(node_id)
        if node.vendor not in self.upstream.vendors:
            return None
        if node.kind == TASK and len(node.parts) == 2:
            agent, native = node.parts
            task = await self.find_task(node.vendor, agent or None, native, state)
            return task
        if node.kind == TRACKER and len(node.parts) == 3 and self.has(node.vendor, TrackerWriter):
            agent, task_id, _tracker_id = node.parts
            found = await self.find_task(node.vendor, agent, task_id, state)
            return found.tracker if found else None
        return None

    async def find_task(
        self, vendor: Vendor, agent_id: str | None, native_id: str, state: RequestState
    ) -> TaskRecord | None:
        """A task by its vendor id: the listing narrowed as far as the vendor allows, read
        until it turns up (pages are cached, so lookups in one listing share its calls)."""
        query = ListQuery(
            agent_ids=frozenset([agent_id]) if agent_id else None, native_id=native_id
        )
        plan = self.plan(query, [vendor])
        page = await self.page(plan, 1, None, state)
        errors = [e for e in state.errors if e.vendor is vendor]
        if not page.items and errors:
            raise errors[0]
        return page.items[0].record if page.items else None

    async def subtasks(
        self, parents: Sequence[TaskRecord], state: RequestState
    ) -> list[list[TaskRecord]]:
        """The sub-tasks of each parent; none for a vendor whose tasks have none. Each
        vendor that has them (``SubtaskLister``) names the listing that holds its parents'
        children (``subtasks_query``); it is read once and grouped by parent."""
        listers = self.vendors_with(SubtaskLister)
        wanted: dict[Vendor, list[str]] = {}
        for parent in parents:
            if parent.vendor in listers:
                wanted.setdefault(parent.vendor, []).append(parent.native_id)
        children: dict[tuple[Vendor, str], list[TaskRecord]] = {}
        for vendor, parent_ids in wanted.items():
            lister = self.upstream.connector(vendor)
            assert isinstance(lister, SubtaskLister)
            plan = self.plan(lister.subtasks_query(parent_ids), [vendor])
            async for record in self.stream(plan, state):
                if record.parent_native_id is not None:
                    key = (vendor, record.parent_native_id)
                    children.setdefault(key, []).append(record)
        return [children.get((p.vendor, p.native_id), []) for p in parents]

    async def parent(self, task: TaskRecord, state: RequestState) -> TaskRecord | None:
        if task.parent_native_id is None:
            return None
        return await self.find_task(
            task.vendor, task.triggering_agent_id, task.parent_native_id, state
        )

    # -- writes ---------------------------------------------------------------------------
    async def update_tracker(
        self,
        tracker_id: str,
        state: RequestState,
        *,
        status: str | None = None,
        status_reason: str | None = None,
        last_processed_event_id: str | None = None,
        fields: frozenset[str],
        idempotency_key: str | None = None,
        caller: str = "anon",
    ) -> TrackerRecord:
        """PUT a tracker. The upstream overwrites ``status`` and ``status_reason`` with what
        it is sent, so fields the caller left out are filled from the tracker's current,
        uncached value first; afterwards every cached page of its vendor is dropped. The
        read and the PUT hold the tracker's lock (across replicas with Redis), so two partial
        updates through this gateway never undo each other.

        With an ``idempotency_key``, a repeat of a request that succeeded gets the first
        answer back (for a day) instead of writing again; keys are scoped to ``caller`` (a
        digest of the caller's key and forwarded vendor keys)."""
        update = functools.partial(
            self._update_tracker,
            tracker_id,
            state,
            status=status,
            status_reason=status_reason,
            last_processed_event_id=last_processed_event_id,
            fields=fields,
        )

        async def write() -> TrackerRecord:
            async with self.upstream.cache.lock(lock_name("tracker", *decode_id(tracker_id).parts)):
                return await update()

        if idempotency_key is None:
            return await write()
        request = repr((tracker_id, status, status_reason, last_processed_event_id, sorted(fields)))
        return await self.upstream.cache.idempotent(caller, idempotency_key, request, write)

    async def _update_tracker(
        self,
        tracker_id: str,
        state: RequestState,
        *,
        status: str | None,
        status_reason: str | None,
        last_processed_event_id: str | None,
        fields: frozenset[str],
    ) -> TrackerRecord:
        node = decode_id(tracker_id)
        vendor = node.vendor
        if node.kind != TRACKER or len(node.parts) != 3:
            raise BadInputError("`id` must be the id of a Tracker")
        if vendor not in self.upstream.vendors:
            raise NotFoundError(f"{vendor.value} is not enabled on this gateway")
        connector = self.upstream.connector(vendor)
        if not isinstance(connector, TrackerWriter):
            raise BadInputError("`id` must be the id of a Tracker")
        agent_id, task_id, native_id = node.parts
        credentials = state.credentials.get(vendor)
        if not {"status", "statusReason"} <= fields:
            async with self.upstream.budgets.call(vendor, state.priority):
                current = await connector.get_tracker(agent_id, task_id, credentials)
            if current is None or current.native_id != native_id:
                raise NotFoundError("no such tracker")
            if "status" not in fields:
                status = current.vendor_status
            if "statusReason" not in fields:
                status_reason = current.status_reason

        async def put() -> TrackerRecord:
            # A write draws from the vendor's budget like a read: a spent budget refuses it
            # (UPSTREAM_BUDGET_EXHAUSTED, with a retry hint) rather than earn a 429.
            async with self.upstream.budgets.call(vendor, state.priority):
                return await connector.update_tracker(
                    native_id,
                    status=status,
                    status_reason=status_reason,
                    last_processed_event_id=last_processed_event_id,
                    credentials=credentials,
                )

        try:
            # A PUT is idempotent: retried like a read (connection errors, 5xx, 429).
            updated = await self.upstream.vendors[vendor].retry.run(put)
        finally:
            # Even a failed or unknown outcome may have changed the upstream: never keep
            # serving what the cache held before the attempt.
            await self.upstream.cache.bump_generation(vendor)
        state.generations.pop(vendor, None)
        return updated


def report_bad_records(state: RequestState, vendors: Iterable[Vendor]) -> None:
    """A vendor that sent records the gateway could not read is reported, never silent:
    with some readable, its part stays (``vendorParts.degraded``) and an error
    ``UPSTREAM_BAD_RECORDS`` gives the count; with none readable, the part is missing
    (``missingVendors``), since an empty answer would look complete."""
    for vendor in vendors:
        part = state.parts.get(vendor)
        if part is None or part.error is not None:
            continue
        skipped = part.skipped_records
        if not skipped:
            continue
        readable = part.readable_records
        noun = "record" if skipped == 1 else "records"
        if readable == 0:
            state.fail(
                UpstreamBadRecordsError(
                    vendor,
                    f"{vendor.value} sent {skipped} {noun}, none of which could be read",
                    count=skipped,
                )
            )
        else:
            part.notice = UpstreamBadRecordsError(
                vendor,
                f"{vendor.value} sent {skipped} {noun} that could not be read; they are "
                "left out of this answer",
                count=skipped,
            )
