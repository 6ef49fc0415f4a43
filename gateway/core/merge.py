"""Merge many upstream listings into one correctly ordered page.

Each source is read by a ``Reader`` that yields its matching tasks in the query's order:
a source the vendor already sorts that way is streamed page by page (only the pages a
client page needs are read); any other source is read whole once and sorted here. The
merge is a k-way merge over the readers' heads; each emitted task carries every reader's
position after it, which is what its cursor encodes. Ties in time keep each source's own
order, and resuming from positions (never from a time) means no task is skipped or
repeated across pages, whatever the ties.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from gateway.core.context import RequestState
from gateway.core.cursor import DONE, Position, Positions, encode_cursor
from gateway.core.errors import UpstreamError
from gateway.core.records import OrderField, TaskRecord
from gateway.vendors.base import ListQuery, PageToken, Source, SourcePage

FetchPage = Callable[[Source, PageToken, RequestState], Awaitable[SourcePage]]

FULL_READ_CONCURRENCY = 8
"""Pages of one unsorted source fetched at once when the vendor says how many there are."""

SORTED_LISTINGS_MAX = 16
"""Sorted whole listings kept (``SortedListings``); each holds its pages alive."""

SORTED_MARK = "*"
"""The page token of a position in a source that was read whole and sorted here."""


class Reader:
    """The matching tasks of one source, in the query's order, from a start position."""

    def __init__(
        self,
        source: Source,
        query: ListQuery,
        start: Position | None,
        fetch: FetchPage,
        state: RequestState,
        expected_seconds: float = 0.0,
    ) -> None:
        self.source = source
        self.expected_seconds = expected_seconds
        """How long the vendor usually takes to answer: the slowest readers start first."""
        self.query = query
        self.fetch = fetch
        self.state = state
        self.done = start is DONE
        self.token: PageToken = start.token if start else None
        self.index = start.index if start else 0
        self.records: Sequence[TaskRecord] | None = None
        self.next_token: PageToken = None
        self.failed = False

    @property
    def position(self) -> Position | None:
        if self.done:
            return DONE
        return Position(self.token, self.index)

    def head(self) -> TaskRecord | None:
        if self.done or self.records is None or self.index >= len(self.records):
            return None
        return self.records[self.index]

    def pop(self) -> TaskRecord:
        record = self.records[self.index]  # type: ignore[index]
        self.index += 1
        self._settle()
        return record

    @property
    def may_have_more(self) -> bool:
        """Not known to be exhausted: not yet read, or a next page to read."""
        if self.done or self.failed:
            return False
        return self.records is None or (self.source.ordered and self.next_token is not None)

    @property
    def needs_fill(self) -> bool:
        return not self.done and not self.failed and self.head() is None

    def _settle(self) -> bool:
        """Skip the buffered tasks that do not match; True once a head is ready or nothing
        further can match, False when the buffer ran out."""
        assert self.records is not None
        while self.index < len(self.records):
            record = self.records[self.index]
            if self._past_range(record):
                self.done = True
                return True
            if self.query.matches(record):
                return True
            self.index += 1
        return False

    async def fill(self) -> None:
        """Make ``head()`` the next matching task, reading pages as needed."""
        while not self.done:
            if self.records is None:
                await self._load()
            if self._settle():
                return
            if self.source.ordered and self.next_token is not None:
                self.token, self.index, self.records = self.next_token, 0, None
            else:
                self.done = True

    def _past_range(self, record: TaskRecord) -> bool:
        """In a stream ordered by update time, nothing after this record can match."""
        q = self.query
        if q.order.field is not OrderField.UPDATED_AT or not self.source.ordered:
            return False
        if q.order.descending:
            return q.updated_after is not None and record.updated_at < q.updated_after
        return q.updated_before is not None and record.updated_at >= q.updated_before

    async def _load(self) -> None:
        if self.source.ordered:
            page = await self.fetch(self.source, self.token, self.state)
            self.records, self.next_token = page.records, page.next_token
            return
        pages = await self.read_pages()
        matching = SORTED_LISTINGS.get(self.query, pages)
        if matching is None:
            order = self.query.order
            matching = [r for page in pages for r in page.records if self.query.matches(r)]
            matching.sort(key=lambda r: r.global_id)
            matching.sort(key=lambda r: r.sort_time(order.field), reverse=order.descending)
            SORTED_LISTINGS.put(self.query, pages, matching)
        self.token, self.records, self.next_token = SORTED_MARK, matching, None

    async def read_all(self) -> list[TaskRecord]:
        return [record for page in await self.read_pages() for record in page.records]

    async def read_pages(self) -> list[SourcePage]:
        """Every page of the source: page numbers are fetched concurrently once the first
        page says how many there are; opaque cursors have to be followed one by one."""
        first = await self.fetch(self.source, None, self.state)
        pages = [first]
        token = first.next_token
        if isinstance(token, int) and first.total is not None and first.records:
            per_page = len(first.records) + first.skipped  # what the vendor sent
            last = -(-first.total // per_page)
            semaphore = asyncio.Semaphore(FULL_READ_CONCURRENCY)

            async def one(page_no: int) -> SourcePage:
                async with semaphore:
                    return await self.fetch(self.source, page_no, self.state)

            pages.extend(await asyncio.gather(*(one(n) for n in range(token, last + 1))))
            return pages
        while token is not None:
            page = await self.fetch(self.source, token, self.state)
            pages.append(page)
            token = page.next_token
        return pages


class SortedListings:
    """Listings read whole, filtered and sorted once per set of pages, not once per request.

    A vendor that cannot sort by update time is read whole and sorted here; its pages come
    from the page cache as the same objects until they expire, so the sorted result is kept
    for exactly those pages (held here, so their identities stay theirs) and one query. With
    50,000 tasks a vendor, sorting again on every request was most of a cached answer's time.
    Pages from Redis are new objects on every read and simply miss.
    """

    def __init__(self, max_entries: int = SORTED_LISTINGS_MAX) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[
            tuple[ListQuery, tuple[int, ...]], tuple[list[SourcePage], list[TaskRecord]]
        ] = OrderedDict()

    def get(self, query: ListQuery, pages: list[SourcePage]) -> list[TaskRecord] | None:
        key = (query, tuple(map(id, pages)))
        entry = self._entries.get(key)
        if entry is None or any(a is not b for a, b in zip(entry[0], pages, strict=True)):
            return None
        self._entries.move_to_end(key)
        return entry[1]

    def put(self, query: ListQuery, pages: list[SourcePage], records: list[TaskRecord]) -> None:
        self._entries[(query, tuple(map(id, pages)))] = (pages, records)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)


SORTED_LISTINGS = SortedListings()


@dataclass(frozen=True, slots=True)
class MergedItem:
    record: TaskRecord
    positions: tuple[Position | None, ...]


@dataclass(frozen=True, slots=True)
class MergedPage:
    items: list[MergedItem]
    has_next_page: bool
    source_keys: tuple[str, ...]
    fingerprint: str

    def cursor(self, item: MergedItem) -> str:
        return encode_cursor(
            self.fingerprint, dict(zip(self.source_keys, item.positions, strict=True))
        )


async def fill_all(readers: Sequence[Reader], state: RequestState) -> None:
    """Fill every reader that needs it, concurrently; a failing one is dropped from the
    merge (its position stays where it was, so its tasks are not lost), the others go on.
    The slowest vendor's request is sent first: the page is done when the last answer is
    in, and every request sent before that one would delay it a little."""
    pending = [r for r in readers if r.needs_fill]
    if not pending:
        return
    pending.sort(key=lambda r: r.expected_seconds, reverse=True)
    results = await asyncio.gather(*(r.fill() for r in pending), return_exceptions=True)
    for reader, result in zip(pending, results, strict=True):
        if isinstance(result, UpstreamError):
            reader.failed = True
            state.fail(result)
        elif isinstance(result, BaseException):
            raise result


async def merge_page(
    readers: Sequence[Reader],
    keys: Sequence[str],
    fingerprint: str,
    first: int,
    state: RequestState,
) -> MergedPage:
    descending = readers[0].query.order.descending if readers else True
    order_field = readers[0].query.order.field if readers else OrderField.UPDATED_AT
    items: list[MergedItem] = []
    if first > 0:  # a page of none (``totalCount`` alone) asks no vendor
        await fill_all(readers, state)
    # Each item carries every reader's position after it was taken; only the reader just
    # taken from moves (and only it can run dry), so the positions are kept up to date
    # one reader at a time instead of being rebuilt for every item.
    positions = [r.position for r in readers]
    taken: int | None = None
    while len(items) < first:
        if taken is not None and readers[taken].needs_fill:
            await fill_all((readers[taken],), state)
            positions[taken] = readers[taken].position
        best: int | None = None
        best_time = None
        for index, reader in enumerate(readers):
            head = reader.head()
            if head is None:
                continue
            head_time = head.sort_time(order_field)
            if best is None or (head_time > best_time if descending else head_time < best_time):  # type: ignore[operator]
                best, best_time = index, head_time
        if best is None:
            break
        record = readers[best].pop()
        positions[best] = readers[best].position
        items.append(MergedItem(record, tuple(positions)))
        taken = best
    # No upstream call just to learn whether there is more: a source with a next page
    # counts as more (rarely that page then holds no match: the next page comes back
    # empty). A page shorter than ``first`` is always the last.
    has_next = any(r.head() is not None or r.may_have_more for r in readers)
    return MergedPage(items, has_next, tuple(keys), fingerprint)


def positions_for(keys: Sequence[str], positions: Positions | None) -> list[Position | None]:
    """Each source's start: from the cursor, or the beginning for a source it does not name."""
    if positions is None:
        return [Position(None, 0)] * len(keys)
    return [positions.get(k, Position(None, 0)) for k in keys]
