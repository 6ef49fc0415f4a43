"""Reading a vendor's tasks from the task index inside the merge.

With an index (``[index] url``), the vendors whose first full sync is done are read from it
instead of from the vendors: their listings in a plan become one *index source*, read by an
``IndexReader`` that the merge takes like any listing already in the query's order (the
index's order: the time, then vendor, then id). So a page mixing index and live vendors
merges exactly as before, and a cursor holds, for the index source, a keyset (the sort time,
vendor and id of the last task taken) instead of a page and offset: a task that did not
change is never repeated or skipped across pages while the index is updated underneath.

Core knows the index only through the ``IndexedTasks`` protocol (``gateway.index`` provides
it), so nothing here depends on SQL.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from gateway.core.context import RequestState
from gateway.core.contract import ListQuery, PageToken, Source, SourcePage
from gateway.core.cursor import Position
from gateway.core.errors import InvalidCursorError, UpstreamError, UpstreamUnavailableError
from gateway.core.merge import Item, Reader
from gateway.core.records import EPOCH, MICROSECOND, Order, TaskRecord, Vendor

if TYPE_CHECKING:
    from gateway.core.stats import GroupBy, Stats

INDEX_PATH = "index"
"""The path of an index source: never an upstream listing's (those start with ``/``)."""

INDEXED = "indexed"
"""The part of a plan's source read from the index (``merge.ALL`` and the others: live)."""

VENDOR_NAMES = frozenset(v.value for v in Vendor)

INDEX_BATCH_MAX = 1000
"""Rows read from the index at once by one reader."""

After = tuple[datetime | None, Vendor, str]
"""Where an index read resumes: after the task with this sort time, vendor and global id."""


@dataclass(frozen=True, slots=True)
class IndexStatus:
    """One vendor's sync, as ``Query.vendors`` shows it."""

    synced_at: float | None
    """Unix time of the last completed sync pass (any replica)."""
    first_sync_done: bool
    first_sync_progress: float
    """0..1: share of the vendor's listings read by its first full sync."""
    last_error: str | None
    """The last failed pass's error (code and message); None once a pass succeeds."""
    last_error_at: float | None
    syncing_here: bool
    """This replica runs the vendor's sync (holds its lock)."""


class IndexedTasks(Protocol):
    """What the service needs of the task index (``gateway.index.view.IndexView``)."""

    def status(self, vendor: Vendor) -> IndexStatus | None:
        """The vendor's sync state; None when the index does not sync it."""
        ...

    def serves(self, vendor: Vendor) -> bool:
        """The vendor's first full sync is done: queries may read it from the index."""
        ...

    def synced_at(self, vendor: Vendor) -> float | None:
        """Unix time of the vendor's last completed sync pass."""
        ...

    async def read(
        self, query: ListQuery, vendors: Sequence[Vendor], first: int, after: After | None
    ) -> tuple[list[TaskRecord], bool]:
        """Up to ``first`` tasks of ``vendors`` matching ``query`` after ``after``, in the
        gateway's order; and whether more follow."""
        ...

    async def count(self, query: ListQuery, vendors: Sequence[Vendor]) -> int: ...

    async def stats(
        self, query: ListQuery, vendors: Sequence[Vendor], by: Sequence[GroupBy]
    ) -> Stats:
        """``taskStats``'s groups over the index's tasks of ``vendors``."""
        ...

    async def write(self, records: Sequence[TaskRecord]) -> None:
        """Store what a live read (``fresh: true``) just got from a vendor."""
        ...


def index_source(vendors: Sequence[Vendor]) -> Source:
    """The one source that stands for every listing of ``vendors`` read from the index."""
    ordered = [v for v in Vendor if v in vendors]
    return Source(ordered[0], INDEX_PATH, (("vendors", ",".join(v.value for v in ordered)),), True)


def source_vendors(source: Source) -> list[Vendor]:
    """The vendors an index source reads."""
    return [Vendor(name) for name in dict(source.params)["vendors"].split(",")]


def keyset_token(record: TaskRecord, order: Order) -> str:
    """The cursor token of the position just after ``record``: its sort time (integer
    microseconds, ``n`` for none), its vendor and its global id."""
    moment = record.sort_time(order.field)
    head = "n" if moment is None else str((moment - EPOCH) // MICROSECOND)
    return f"{head}|{record.vendor.value}|{record.global_id}"


def parse_keyset(token: PageToken) -> After | None:
    """The ``After`` of a token from ``keyset_token`` (None: from the start); a forged one
    is INVALID_CURSOR, never a crash."""
    if token is None:
        return None
    if not isinstance(token, str):
        raise InvalidCursorError("the cursor is malformed")
    head, _, rest = token.partition("|")
    name, sep, global_id = rest.partition("|")
    if not sep or not global_id or name not in VENDOR_NAMES:
        raise InvalidCursorError("the cursor is malformed")
    vendor = Vendor(name)
    if head == "n":
        return None, vendor, global_id
    digits = head[1:] if head.startswith("-") else head
    if not digits.isdigit() or len(digits) > 18:
        raise InvalidCursorError("the cursor is malformed")
    try:
        return EPOCH + int(head) * MICROSECOND, vendor, global_id
    except OverflowError:
        raise InvalidCursorError("the cursor is malformed") from None


def fail_all(state: RequestState, vendors: Sequence[Vendor], error: UpstreamError) -> None:
    """The index could not be read: every vendor read from it is missing, not only the one
    the error names."""
    for vendor in vendors:
        state.fail(
            error if vendor is error.vendor else UpstreamUnavailableError(vendor, error.message)
        )


async def _no_fetch(source: Source, token: PageToken, state: RequestState) -> SourcePage:
    raise AssertionError("an index reader reads the index, never a vendor")  # pragma: no cover


class IndexReader(Reader):
    """One vendor's matching tasks from the index, in the gateway's order, from a keyset.

    Its position is always "after this task" (index 0 of the keyset's token), so resuming
    reads the index again from that task on, whatever was written in between. Rows are read
    a batch at a time (what the page being merged may take, plus one to know whether more
    follow without another query)."""

    def __init__(
        self,
        source: Source,
        query: ListQuery,
        start: Position | None,
        state: RequestState,
        index: IndexedTasks,
    ) -> None:
        if start is not None and start.index != 0:
            raise InvalidCursorError("the cursor is malformed")
        fetch: Callable[[Source, PageToken, RequestState], Awaitable[SourcePage]] = _no_fetch
        super().__init__(source, query, start, fetch, state)
        self.store = index
        parse_keyset(self.token)  # a forged cursor fails now, not in the middle of a merge

    async def fill(self, in_memory: bool = False) -> None:
        try:
            await super().fill(in_memory)
        except UpstreamError as exc:
            fail_all(self.state, source_vendors(self.source), exc)
            raise

    def pop(self) -> TaskRecord:
        record = super().pop()
        self.token, self.index = keyset_token(record, self.query.order), 0
        return record

    async def _listing(self, token: PageToken, index: int) -> AsyncIterator[Item | None]:
        vendors = source_vendors(self.source)
        for vendor in vendors:
            part = self.state.part(vendor)
            synced = self.store.synced_at(vendor)
            if synced is not None and (part.fetched_at is None or synced < part.fetched_at):
                part.fetched_at = synced
        after = parse_keyset(token)
        while True:
            yield None  # about to query the index
            size = max(1, min(self.want + 1, INDEX_BATCH_MAX))
            records, more = await self.store.read(self.query, vendors, size, after)
            before = token
            for i, record in enumerate(records):
                last = not more and i == len(records) - 1
                yield before, 0, record, last
                before = keyset_token(record, self.query.order)
            if not more or not records:
                return
            token = before
            after = parse_keyset(before)
