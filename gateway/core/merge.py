"""Merge many upstream listings into one correctly ordered page.

Each source is read by a ``Reader`` that yields its matching tasks in the query's order:
a source the vendor already sorts that way is streamed page by page (only the pages a
client page needs are read); any other source is read whole once and sorted here. The
merge is a k-way merge over the readers' heads; each emitted task carries every reader's
position after it, which is what its cursor encodes.

**The rule of order.** Tasks are ordered by the time shown (``updatedAt`` or
``createdAt``); a missing time is shown as null and sorts after every known time, in both
directions (SQL's NULLS LAST), the same in every page; a time filter never matches it. A
listing that puts nulls first (Agentex ``desc``: ``Source.nulls_first``) is read as two
parts, its dated rows and its null prefix, each by its own reader with its own position, so
the null rows are neither taken for the oldest (which used to stop the read) nor lost.

**Exactness across pages.** Readers resume from positions, never from a time, so ties in
time between sources can never drop or repeat a task. Within one offset-paged source
(``page_number``/``limit``: Agentex, xpander, Subnoto), rows tied on every column the
vendor sorts by may come back in another order on each request, so a tie group straddling a
page boundary could lose a row or repeat one between two page reads. The reader never takes
such a group from the two pages: it reads the whole group again in one response (a page
size and number that cover it, ``tie_window``), keeps exactly the rows with the group's sort
values, and orders them by id; a page's other tie groups are complete and are ordered by id
too. So every position (page and index, or group and index) means the same rows on every
read. The guarantee: while the vendor's data does not change, paging through a listing
returns each task exactly once, however the vendor reorders ties between requests. Its one
limit: a tie group larger than a vendor's maximum page size (50 for xpander and Subnoto;
Agentex has none) cannot be read in one response; it is then taken as the union of the rows
seen, de-duplicated by id, so no task is repeated but one may be missed.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass

from gateway.core.context import RequestState
from gateway.core.contract import (
    ListQuery,
    PageToken,
    PageWindows,
    Source,
    SourcePage,
    window_token,
)
from gateway.core.cursor import DONE, Position, Positions, encode_cursor
from gateway.core.errors import InvalidCursorError, UpstreamError, UpstreamSlowError
from gateway.core.fanout import slowest_first
from gateway.core.ontime import retrieve_outcome
from gateway.core.records import OrderField, TaskRecord

FetchPage = Callable[[Source, PageToken, RequestState], Awaitable[SourcePage]]

FULL_READ_CONCURRENCY = 8
"""Pages of one unsorted source fetched at once when the vendor says how many there are."""

PAGE_COUNTS_MAX = 4096
"""Listings whose page count is remembered (``PageCounts``)."""

SORTED_LISTINGS_MAX = 16
"""Sorted whole listings kept (``SortedListings``); each holds its pages alive."""

SORTED_MARK = "*"
"""The page token of a position in a source that was read whole and sorted here."""

GROUP_MARK = "g"
"""Prefix of the token of a position inside a tie group read again whole (``g<page>.<i>``)."""

ALL, DATED, UNDATED = "all", "dated", "undated"
"""Which rows of a listing a reader takes: all of them, or one part of a nulls-first listing."""

RECENT_PAGES = 4
"""Pages a reader keeps after reading them (``Reader._page``)."""

TIE_WINDOW_SEARCH = 256
"""Page sizes tried when looking for one page that covers a tie group (then: from row 0)."""

Item = tuple[PageToken, int, TaskRecord, bool]
"""A record, where it is (the token of its page or group, its index there), and whether it
is the listing's last (known without another read, so no call is made to learn it)."""


def tie_window(low: int, high: int, max_limit: int | None) -> tuple[int, int] | None:
    """``(page, limit)`` of one page that holds rows ``low..high`` (0-based offsets), the
    smallest such ``limit`` within ``max_limit``; None when no page can (a group larger
    than the vendor's maximum page, or one no allowed size lines up with)."""
    span = high - low + 1
    top = high + 1 if max_limit is None else min(max_limit, high + 1)
    for limit in range(span, min(top, span + TIE_WINDOW_SEARCH) + 1):
        if low // limit == high // limit:
            return low // limit + 1, limit
    if max_limit is None:
        return 1, high + 1  # page 1 of that size always covers it
    return None


def by_id_within_ties(
    records: Sequence[TaskRecord], key: Callable[[TaskRecord], Hashable]
) -> list[TaskRecord]:
    """``records`` in their order, each run of rows tied on ``key`` ordered by id: the same
    list whatever order the vendor gave the ties in."""
    out: list[TaskRecord] = []
    start = 0
    while start < len(records):
        end = start + 1
        value = key(records[start])
        while end < len(records) and key(records[end]) == value:
            end += 1
        run = records[start:end]
        out.extend(sorted(run, key=lambda r: r.global_id) if len(run) > 1 else run)
        start = end
    return out


def _page_number(token: PageToken) -> int:
    """The page number of an offset-paged position's token (a forged one: INVALID_CURSOR)."""
    if token is None:
        return 1
    if isinstance(token, int) and not isinstance(token, bool):
        return token
    raise InvalidCursorError("the cursor is malformed")


def _parse_group(token: str) -> tuple[int, int]:
    page, _, index = token[len(GROUP_MARK) :].partition(".")
    if not (page.isdigit() and index.isdigit()) or int(page) < 1:
        raise InvalidCursorError("the cursor is malformed")
    return int(page), int(index)


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
        windows: PageWindows | None = None,
        part: str = ALL,
        prefetch: Callable[[], bool] | None = None,
    ) -> None:
        self.source = source
        self.prefetch = prefetch
        """Whether reading the next page ahead is worth a vendor call now (the vendor's
        budget has room beyond its interactive reserve); None: always."""
        self.expected_seconds = expected_seconds
        """How long the vendor usually takes to answer: the slowest readers start first."""
        self.query = query
        self.fetch = fetch
        self.state = state
        self.windows = windows
        self.part = part
        self.done = start is DONE
        self.token: PageToken = start.token if start else None
        self.index = start.index if start else 0
        self.failed = False
        self.error: UpstreamError | None = None
        """Why the reader failed (``fill_all``)."""
        self.left = False
        """Left out of the page being merged (``give_up``)."""
        self._head: Item | None = None
        self._items: AsyncIterator[Item | None] | None = None
        self._exhausted = False
        self._pages: dict[PageToken, SourcePage] = {}
        """Pages of a listing read whole, walked again for its tie groups."""
        self._recent: dict[PageToken, SourcePage] = {}
        self._ahead: dict[PageToken, asyncio.Task[SourcePage]] = {}
        """Pages read ahead (``_page_and_maybe_next``), still in flight or not yet used."""
        self._dry_run: list[PageToken] | None = None
        """Set: ``_group`` notes the windows it needs instead of reading them."""
        self.want = 0
        """How many more tasks the page being merged may take (``merge_page`` sets it)."""
        self.head_key: tuple[int, int] = (2, 0)
        """``head().sort_key``, computed once per head: the merge compares it for every
        task it takes, with every other reader's."""

    @property
    def position(self) -> Position | None:
        if self.done:
            return DONE
        return Position(self.token, self.index)

    def head(self) -> TaskRecord | None:
        if self.done or self._head is None:
            return None
        return self._head[2]

    def pop(self) -> TaskRecord:
        assert self._head is not None
        token, index, record, last = self._head
        self._head = None
        self.token, self.index = token, index + 1
        self._exhausted = last
        return record

    @property
    def may_have_more(self) -> bool:
        """Not known to be exhausted: a source left out of the page (``give_up``) has its
        tasks ahead of the cursor still; one that failed otherwise is not waited for."""
        return not (self.done or (self.failed and not self.left) or self._exhausted)

    def fail(self, error: UpstreamError) -> None:
        self.failed = True
        self.error = error

    def give_up(self, start: Position | None) -> None:
        """Leave the merge and go back to ``start``: this page has none of the source's
        tasks, and a cursor taken from it resumes the source where the page began."""
        self.failed = self.left = True
        self._head = None
        self._exhausted = start is DONE
        if start is DONE or start is None:
            self.done = start is DONE
            self.token, self.index = None, 0
        else:
            self.token, self.index = start.token, start.index

    @property
    def needs_fill(self) -> bool:
        return not self.done and not self.failed and self._head is None

    async def fill(self, in_memory: bool = False) -> None:
        """Make ``head()`` the next matching task, reading pages as needed; ``in_memory``:
        only as far as the records already read go (to learn, without a call, whether a
        page is the last)."""
        if self._items is None:
            self._items = self._listing(self.token, self.index)
        async for item in self._items:
            if item is None:  # the listing is about to read from the vendor
                if in_memory:
                    return
                continue
            record = item[2]
            if self._past_range(record):
                break
            if self._in_part(record) and self.query.matches(record):
                self._head = item
                self.head_key = record.sort_key(self.query.order)
                self.token, self.index = item[0], item[1]
                return
        self._exhausted = True
        self.done = True

    def _in_part(self, record: TaskRecord) -> bool:
        if self.part == ALL:
            return True
        missing = record.sort_time(self.query.order.field) is None
        return missing is (self.part == UNDATED)

    def _past_range(self, record: TaskRecord) -> bool:
        """Nothing after this record (in the vendor's order) can match this reader."""
        if not self.source.ordered:
            return False
        q = self.query
        moment = record.sort_time(q.order.field)
        if self.part == UNDATED:
            return moment is not None  # a nulls-first listing: the null prefix is over
        if q.order.field is not OrderField.UPDATED_AT:
            return False
        if moment is None:
            # Nulls after the dated rows (``asc``): none of them matches a time filter.
            return not self.source.nulls_first and q.has_time_filter
        if q.order.descending:
            return q.updated_after is not None and moment < q.updated_after
        return q.updated_before is not None and moment >= q.updated_before

    # -- reading ------------------------------------------------------------------------
    async def _page(self, token: PageToken) -> SourcePage:
        page = self._pages.get(token)
        if page is None:
            page = self._recent.get(token)
        if page is None:
            ahead = self._ahead.pop(token, None)
            page = await (ahead or self.fetch(self.source, token, self.state))
            # Counted when used, so a page read ahead but never needed does not count,
            # however soon it came back.
            note_page(self.state, self.source, token, page)
            # The few pages just read: a tie group's pages are read again right after it,
            # and must not be fetched twice when the cache is bypassed. Kept small, so a
            # streamed export holds a bounded number of pages.
            self._recent[token] = page
            while len(self._recent) > RECENT_PAGES:
                del self._recent[next(iter(self._recent))]
        return page

    async def _page_and_maybe_next(self, token: PageToken, index: int) -> SourcePage:
        """Page ``token``, and with it, at the same time, the next page when the merge may
        need this page's last rows: those may be a tie group that runs on into the next
        page (``_group``), and reading it only then would add a round trip. Only this page
        is awaited: the next one is read beside it, in a task of its own that ``_page``
        awaits if the merge really needs it, so the page is never later than its own
        answer (waiting for both cost the slowest vendor's part 2-5 ms in ``python -m bench
        total``: the second answer comes a moment after the first). Its failure is met only
        there. With the
        vendor's budget tight (``prefetch``), nothing is read ahead: the next page is read
        when needed, and a refused read ahead cannot leave a stale page in place of the
        fresh one the request may read a moment later."""
        windows = self.windows
        if not (
            windows is None
            or self._dry_run is not None
            or not (token is None or isinstance(token, int))
            or index + self.want < windows.page_size - 1
            or (self.prefetch is not None and not self.prefetch())
        ):
            following = (1 if token is None else token) + 1
            if following not in self._ahead and following not in self._recent:
                self._ahead[following] = read_ahead(self.fetch(self.source, following, self.state))
        return await self._page(token)

    async def _listing(self, token: PageToken, index: int) -> AsyncIterator[Item | None]:
        """Every record of the source from ``(token, index)`` on, in the vendor's order
        made exact (see the module docstring), each with its position."""
        yield None
        if not self.source.ordered:
            matching = await self._sorted_whole()
            for i in range(index, len(matching)):
                yield SORTED_MARK, i, matching[i], i == len(matching) - 1
            return
        if isinstance(token, str) and token.startswith(GROUP_MARK):
            page_no, start = _parse_group(token)
            group, after, after_index = await self._group(page_no, start)
            for i in range(index, len(group)):
                yield token, i, group[i], after is None and i == len(group) - 1
            if after is None:
                return
            token, index = after, after_index
            yield None
        while True:
            page = await self._page_and_maybe_next(token, index)
            records: Sequence[TaskRecord] = page.records
            stop = len(records)
            if self.windows is not None:
                records = by_id_within_ties(records, self.windows.tie_key)
                if page.next_token is not None and records:
                    stop = _run_start(records, self.windows.tie_key)
            last = len(records) - 1 if page.next_token is None else -1
            for i in range(index, stop):
                yield token, i, records[i], i == last
            if stop < len(records) and index <= stop:
                # The last tie group runs on into the next page: read it whole.
                yield None
                page_no = _page_number(token)
                group, after, after_index = await self._group(page_no, stop)
                group_token = f"{GROUP_MARK}{page_no}.{stop}"
                for i, record in enumerate(group):
                    yield group_token, i, record, after is None and i == len(group) - 1
                if after is None:
                    return
                token, index = after, after_index
                yield None
                continue
            if page.next_token is None:
                return
            token, index = page.next_token, 0
            yield None

    async def _group(self, page_no: int, start: int) -> tuple[list[TaskRecord], PageToken, int]:
        """The tie group that starts at row ``start`` of page ``page_no`` and runs past its
        end: all its rows (read again in one response), ordered by id, and where the
        listing goes on after it (a page and the index of its first row of another group)."""
        windows = self.windows
        if windows is None:
            raise InvalidCursorError("the cursor is malformed")
        first = await self._page(page_no if page_no > 1 else None)
        tied = by_id_within_ties(first.records, windows.tie_key)
        if start >= len(tied):
            raise InvalidCursorError("the cursor is malformed")
        key = windows.tie_key(tied[start])
        seen = list(tied[start:])
        size = windows.page_size
        low = (page_no - 1) * size + start
        token: PageToken = first.next_token
        index = 0
        high = page_no * size - 1
        crossed = False
        while token is not None:
            page = await self._page(token)
            run = 0
            while run < len(page.records) and windows.tie_key(page.records[run]) == key:
                run += 1
            seen.extend(page.records[:run])
            crossed = crossed or run > 0
            assert isinstance(token, int)
            if run == len(page.records) and page.next_token is not None:
                token = page.next_token
                continue
            index = run
            high = (token - 1) * size + run - 1 + page.skipped if run else (token - 1) * size - 1
            break
        # The next page not starting with the group: it ended with this page, and this one
        # response held all of it. Otherwise read it whole in one response.
        window = tie_window(low, high, windows.max_limit) if crossed else None
        if window is not None and self._dry_run is not None:
            self._dry_run.append(window_token(*window))
        elif window is not None:
            covering = await self._page(window_token(*window))
            seen = [r for r in covering.records if windows.tie_key(r) == key]
        group = sorted({r.global_id: r for r in seen}.values(), key=lambda r: r.global_id)
        return group, token, index

    async def _sorted_whole(self) -> list[TaskRecord]:
        pages = await self.read_pages()
        matching = SORTED_LISTINGS.get(self.query, pages)
        if matching is None:
            order = self.query.order
            exact = await self._exact(pages)
            matching = [r for r in exact if self.query.matches(r)]
            matching.sort(key=lambda r: r.global_id)
            matching.sort(key=lambda r: r.sort_key(order))
            SORTED_LISTINGS.put(self.query, pages, matching)
        return matching

    async def read_first(self) -> SourcePage:
        """The listing's first page (where the vendor's total is)."""
        return await self._page(None)

    async def read_all(self) -> list[TaskRecord]:
        return await self._exact(await self.read_pages())

    async def _exact(self, pages: list[SourcePage]) -> list[TaskRecord]:
        """The records of a listing read whole, with tie groups across page boundaries
        read again whole (the pages already read are reused, not fetched again)."""
        if self.windows is None or len(pages) < 2:
            seen: dict[str, TaskRecord] = {}
            for page in pages:
                for record in page.records:
                    seen.setdefault(record.global_id, record)
            return list(seen.values())
        tokens: list[PageToken] = [None, *(p.next_token for p in pages[:-1])]
        self._pages.update(zip(tokens, pages, strict=True))
        ordered = Source(self.source.vendor, self.source.path, self.source.params, True)
        walker = Reader(
            ordered,
            ListQuery(order=self.query.order),
            None,
            self.fetch,
            self.state,
            windows=self.windows,
        )
        walker._pages = self._pages
        # A first walk over the pages in hand only notes the windows its tie groups need;
        # they are fetched together, and the real walk then reads nothing more.
        walker._dry_run = []
        out: dict[str, TaskRecord] = {}
        async for item in walker._listing(None, 0):
            if item is not None:
                out.setdefault(item[2].global_id, item[2])
        wanted = list(dict.fromkeys(walker._dry_run))
        walker._dry_run = None
        if not wanted:  # no tie group ran across pages: the walk was already exact
            return list(out.values())
        for token, page in zip(
            wanted, await asyncio.gather(*(walker._page(t) for t in wanted)), strict=True
        ):
            self._pages[token] = page
        out.clear()
        async for item in walker._listing(None, 0):
            if item is not None:
                out.setdefault(item[2].global_id, item[2])
        return list(out.values())

    async def read_pages(self) -> list[SourcePage]:
        """Every page of the source: page numbers are fetched concurrently once the first
        page says how many there are (and, when this listing was read whole before, the
        pages it had then are asked for together with the first: one round trip instead of
        two); opaque cursors have to be followed one by one."""
        semaphore = asyncio.Semaphore(FULL_READ_CONCURRENCY)

        async def one(page_no: int) -> SourcePage:
            async with semaphore:
                return await self._page(page_no)

        early: dict[int, asyncio.Future[SourcePage]] = {
            n: asyncio.ensure_future(one(n)) for n in range(2, PAGE_COUNTS.get(self.source) + 1)
        }
        try:
            pages = await self._read_pages(one, early)
        finally:
            # Pages past the end now (the listing shrank): let them finish (another request
            # may share the call), their outcome retrieved, never waited for.
            for task in early.values():
                task.add_done_callback(lambda t: t.cancelled() or t.exception())
        if isinstance(pages[0].next_token, int) or len(pages) == 1:
            PAGE_COUNTS.put(self.source, len(pages))
        return pages

    async def _read_pages(
        self,
        one: Callable[[int], Awaitable[SourcePage]],
        early: dict[int, asyncio.Future[SourcePage]],
    ) -> list[SourcePage]:
        def page(n: int) -> Awaitable[SourcePage]:
            return early.pop(n) if n in early else one(n)

        first = await self._page(None)
        pages = [first]
        token = first.next_token
        if isinstance(token, int) and first.total is not None and first.records:
            per_page = len(first.records) + first.skipped  # what the vendor sent
            last = -(-first.total // per_page)
            pages.extend(await asyncio.gather(*(page(n) for n in range(token, last + 1))))
            return pages
        if isinstance(token, int):
            # Page numbers without a total (Agentex): batches of 2, 4, then 8 pages fetched
            # at once until one holds the last, so counting a listing takes a round trip
            # per batch, not per page (``totalCount`` beside a page: within its time).
            # Calls that read past the end (each answering an empty page) stay fewer than
            # the batch.
            number: PageToken = token
            size = max(2, len(early))
            while isinstance(number, int):
                numbers = range(number, number + size)
                batch = await asyncio.gather(*(page(n) for n in numbers))
                for one_page in batch:
                    pages.append(one_page)
                    if one_page.next_token is None:
                        return pages
                number = batch[-1].next_token
                size = min(size * 2, FULL_READ_CONCURRENCY)
            return pages
        while token is not None:
            next_page = await self._page(token)
            pages.append(next_page)
            token = next_page.next_token
        return pages


class PageCounts:
    """How many pages each page-numbered listing had when it was last read whole (in
    process, bounded): a guess that lets the next whole read ask for them all at once.

    A performance shortcut, kept for its figure: ``python -m bench total --quick``, all
    four vendors without ``totalCount`` against Subnoto alone (the default order reads
    xpander's and orq's listings whole), two runs each alternating on 2026-11-29 (loaded
    machine): 1.56 and 1.32 with it, 2.32 and 1.75 without (one round trip more a listing).
    """

    def __init__(self, max_entries: int = PAGE_COUNTS_MAX) -> None:
        self.max_entries = max_entries
        self._counts: OrderedDict[Source, int] = OrderedDict()

    def get(self, source: Source) -> int:
        return self._counts.get(source, 1)

    def put(self, source: Source, count: int) -> None:
        self._counts[source] = count
        self._counts.move_to_end(source)
        while len(self._counts) > self.max_entries:
            self._counts.popitem(last=False)


PAGE_COUNTS = PageCounts()


def _run_start(records: Sequence[TaskRecord], key: Callable[[TaskRecord], Hashable]) -> int:
    """Where the last run of rows tied on ``key`` starts."""
    value = key(records[-1])
    start = len(records) - 1
    while start > 0 and key(records[start - 1]) == value:
        start -= 1
    return start


READ_AHEAD: set[asyncio.Task[SourcePage]] = set()
"""Read-ahead pages in flight, held so none is collected before it is done (asyncio keeps
only weak references to tasks). One that outlives its request goes on: its page is what the
request for the next page will ask for, and it reaches the cache."""


def read_ahead(fetch: Awaitable[SourcePage]) -> asyncio.Task[SourcePage]:
    """``fetch`` started in a task of its own, held until done; its failure is taken here
    (nobody may ever await it) and met again only by a reader that awaits it."""
    task = asyncio.ensure_future(fetch)
    READ_AHEAD.add(task)

    def settled(done: asyncio.Task[SourcePage]) -> None:
        READ_AHEAD.discard(done)
        retrieve_outcome(done)

    task.add_done_callback(settled)
    return task


async def cancel_reads_ahead() -> None:
    """Cancel this event loop's reads ahead still in flight (at shutdown, before the clients
    they use are closed)."""
    loop = asyncio.get_running_loop()
    mine = [t for t in list(READ_AHEAD) if t.get_loop() is loop]
    for task in mine:
        task.cancel()
    await asyncio.gather(*mine, return_exceptions=True)


def note_page(state: RequestState, source: Source, token: PageToken, page: SourcePage) -> None:
    """Count what a page held for its vendor's part: readable and unreadable records, once
    per page however many readers read it (``TaskService.report_bad_records``)."""
    part = state.part(source.vendor)
    part.pages[f"{source.key}#{token!r}"] = (len(page.records), page.skipped)


class SortedListings:
    """Listings read whole, filtered and sorted once per set of pages, not once per request.

    A vendor that cannot sort by update time is read whole and sorted here; its pages come
    from the page cache as the same objects until they expire, so the sorted result is kept
    for exactly those pages (held here, so their identities stay theirs) and one query. With
    50,000 tasks a vendor, sorting again on every request was most of a cached answer's time.
    Pages from Redis are new objects on every read and simply miss. Keyed by the pages'
    ``id()`` because pages compare by value (comparing 10,000 records would cost what the
    sort saves); an entry holds its pages, so no id in it can be reused while it is kept.

    A performance shortcut, kept for its figure: ``python -m bench page --quick``,
    ``UPDATED_AT`` from the page cache at 10,000 tasks a vendor against 100, two runs each
    alternating on 2026-11-29 (loaded machine): ratio 2.10 and 2.78 (128 and 216 ms) with
    it, 5.15 and 8.38 (379 and 549 ms) without.
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
    The slowest vendor's request is sent first (``gateway.core.fanout``)."""
    pending = [r for r in readers if r.needs_fill]
    if not pending:
        return
    if len(pending) == 1:
        # One reader (the one just taken from, for every task of a page): awaited in place,
        # no task to schedule, so a record already in hand costs no event-loop turn.
        try:
            await pending[0].fill()
        except UpstreamError as exc:
            pending[0].fail(exc)
            state.fail(exc)
        return
    results = await slowest_first([(r.expected_seconds, r.fill()) for r in pending])
    for reader, result in zip(pending, results, strict=True):
        if isinstance(result, UpstreamError):
            reader.fail(result)
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
    order = readers[0].query.order if readers else None
    items: list[MergedItem] = []
    starts = [r.position for r in readers]
    taken_from: list[int] = []
    """The reader each item came from."""
    # Failed in an earlier batch of the same readers (``TaskService.stream``): out for good.
    earlier = frozenset(i for i, r in enumerate(readers) if r.failed)
    for reader in readers:
        reader.want = first
        reader.left = False
    if first > 0:  # a page of none (``totalCount`` alone) asks no vendor
        await fill_all(readers, state)
        _cut_slow(readers, starts, items, taken_from, earlier)
    # Each item carries every reader's position after it was taken; only the reader just
    # taken from moves (and only it can run dry), so the positions are kept up to date
    # one reader at a time instead of being rebuilt for every item.
    positions = [r.position for r in readers]
    taken: int | None = None
    while len(items) < first and order is not None:
        if taken is not None and readers[taken].needs_fill:
            readers[taken].want = first - len(items)
            await fill_all((readers[taken],), state)
            failed = readers[taken].failed
            if failed and _cut_slow(readers, starts, items, taken_from, earlier):
                positions = [r.position for r in readers]
            positions[taken] = readers[taken].position
        best: int | None = None
        best_key: tuple[int, int] = (2, 0)
        for index, reader in enumerate(readers):
            if reader.head() is None:
                continue
            key = reader.head_key
            if key < best_key:  # strict: between equal times, the earlier source first
                best, best_key = index, key
        if best is None:
            break
        record = readers[best].pop()
        positions[best] = readers[best].position
        items.append(MergedItem(record, tuple(positions)))
        taken_from.append(best)
        taken = best
    # No upstream call just to learn whether there is more: a source is read on only as
    # far as the records in hand go; one with a page still unread counts as more (rarely
    # that page then holds no match: the next page comes back empty). A page shorter than
    # ``first`` is always the last.
    for reader in readers:
        if reader.needs_fill and first > 0:
            await reader.fill(in_memory=True)
    has_next = any(r.head() is not None or r.may_have_more for r in readers)
    return MergedPage(items, has_next, tuple(keys), fingerprint)


def _cut_slow(
    readers: Sequence[Reader],
    starts: Sequence[Position | None],
    items: list[MergedItem],
    taken_from: list[int],
    earlier: frozenset[int],
) -> bool:
    """A vendor that did not answer within ``answer_within`` (``UPSTREAM_SLOW``) is left out
    of the page as a whole, also when some of its tasks were already taken (its next page
    came too late): the page keeps its order (the merge of the other sources), and every
    cursor in it resumes that vendor's sources where the page began, so none of its tasks
    is lost or repeated. True when a vendor was cut. Readers that failed in an ``earlier``
    batch are out already."""
    now = [(i, r) for i, r in enumerate(readers) if i not in earlier]
    slow = {r.source.vendor for _, r in now if isinstance(r.error, UpstreamSlowError)}
    cut = [i for i, r in now if r.source.vendor in slow and not r.left]
    if not cut:
        return False
    for i in cut:
        readers[i].give_up(starts[i])
    kept = [k for k, i in enumerate(taken_from) if i not in cut]
    items[:] = [
        MergedItem(
            items[k].record,
            tuple(starts[i] if i in cut else p for i, p in enumerate(items[k].positions)),
        )
        for k in kept
    ]
    taken_from[:] = [taken_from[k] for k in kept]
    return True


def positions_for(keys: Sequence[str], positions: Positions | None) -> list[Position | None]:
    """Each source's start: from the cursor, or the beginning for a source it does not name."""
    if positions is None:
        return [Position(None, 0)] * len(keys)
    return [positions.get(k, Position(None, 0)) for k in keys]
