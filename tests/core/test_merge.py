"""The merge: the fan-out starts the vendor that usually answers last first; the rule of order
(missing times last, both ways); tie groups re-read in one page and ordered by id."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from gateway.core.context import RequestState
from gateway.core.contract import ListQuery, PageToken, PageWindows, Source, SourcePage
from gateway.core.cursor import Position
from gateway.core.merge import Reader, SortedListings, by_id_within_ties, fill_all, tie_window
from gateway.core.records import Direction, Order, OrderField, TaskRecord, TaskStatus, Vendor

BEGIN = Position(None, 0)


async def test_the_slowest_vendor_is_asked_first_and_the_merge_order_is_kept() -> None:
    asked: list[Vendor] = []

    async def fetch(source: Source, token: PageToken, state: RequestState) -> SourcePage:
        asked.append(source.vendor)
        return SourcePage(records=(), next_token=None)

    typical = {Vendor.AGENTEX: 0.02, Vendor.XPANDER: 0.05, Vendor.ORQ: 0.0, Vendor.SUBNOTO: 0.12}
    state = RequestState()
    readers = [
        Reader(Source(vendor, "/t", (), True), ListQuery(), BEGIN, fetch, state, seconds)
        for vendor, seconds in typical.items()
    ]
    await fill_all(readers, state)
    # ORQ has no measurement yet (0): it starts last, after every measured vendor.
    assert asked == [Vendor.SUBNOTO, Vendor.XPANDER, Vendor.AGENTEX, Vendor.ORQ]
    assert [r.source.vendor for r in readers] == list(typical)  # ties still break this way


def test_each_vendor_s_typical_latency_is_learned_from_its_calls(
    make_gateway, clean_sandbox
) -> None:
    # Gaps wide enough that a loaded machine (CPU time added to every call) cannot reorder
    # the vendors: what is checked is the order learned, not a duration.
    clean_sandbox.knobs(Vendor.SUBNOTO).latency_ms = 400
    clean_sandbox.knobs(Vendor.XPANDER).latency_ms = 150
    gateway = make_gateway()
    for _ in range(2):
        gateway.data("{ tasks(first: 5, fresh: true) { nodes { id } } }")
    health = gateway.server.server.config.app.state.gateway.service.upstream.health  # type: ignore[attr-defined]
    typical = {vendor: health[vendor].typical_seconds for vendor in Vendor}
    assert typical[Vendor.SUBNOTO] >= 0.4 and typical[Vendor.XPANDER] >= 0.15
    assert max(typical, key=typical.__getitem__) is Vendor.SUBNOTO
    assert typical[Vendor.AGENTEX] < typical[Vendor.XPANDER]


def test_a_sorted_listing_is_reused_only_for_the_very_same_pages() -> None:
    listings = SortedListings(max_entries=2)
    query, other_query = ListQuery(), ListQuery(user_id="u-1")
    pages = [SourcePage(records=(), next_token=2), SourcePage(records=(), next_token=None)]
    listings.put(query, pages, sorted_records := [])
    assert listings.get(query, list(pages)) is sorted_records
    assert listings.get(other_query, pages) is None  # another filter or order: sorted anew
    refreshed = [pages[0], SourcePage(records=(), next_token=None)]  # one page expired
    assert listings.get(query, refreshed) is None
    listings.put(other_query, pages, [])
    listings.put(query, refreshed, [])
    assert listings.get(query, pages) is None  # bounded: the oldest went first


@given(
    low=st.integers(0, 5_000),
    span=st.integers(1, 300),
    max_limit=st.one_of(st.none(), st.integers(1, 200)),
)
def test_a_tie_window_is_one_page_that_covers_the_whole_group(
    low: int, span: int, max_limit: int | None
) -> None:
    high = low + span - 1
    window = tie_window(low, high, max_limit)
    if window is None:
        # Only when no allowed page size lines up: never without a maximum.
        assert max_limit is not None
        assert all(low // m != high // m for m in range(span, max_limit + 1))
        return
    page, limit = window
    assert page >= 1 and limit >= span
    assert max_limit is None or limit <= max_limit
    assert (page - 1) * limit <= low and high < page * limit


def _record(native_id: str, minute: int | None) -> TaskRecord:
    moment = (
        None if minute is None else datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=minute)
    )
    return TaskRecord(
        vendor=Vendor.AGENTEX,
        native_id=native_id,
        global_id=native_id,
        agent_id="a",
        status=TaskStatus.RUNNING,
        vendor_status=None,
        title=None,
        summary=None,
        created_at=moment,
        updated_at=moment,
    )


@given(st.lists(st.tuples(st.integers(0, 3), st.randoms()), min_size=0, max_size=30))
def test_ties_are_ordered_by_id_whatever_order_the_vendor_gave(
    rows: list[tuple[int, random.Random]],
) -> None:
    records = [_record(f"id-{i:02d}", minute) for i, (minute, _) in enumerate(rows)]
    records.sort(key=lambda r: r.sort_key(Order()))  # the vendor's order, ties as they come
    shuffled = list(records)
    if rows:
        rows[0][1].shuffle(shuffled)
        shuffled.sort(key=lambda r: r.sort_key(Order()))  # stable: ties in a new order
    key = lambda r: r.updated_at  # noqa: E731
    assert by_id_within_ties(records, key) == by_id_within_ties(shuffled, key)
    canonical = by_id_within_ties(shuffled, key)
    assert [r.updated_at for r in canonical] == [r.updated_at for r in records]


def test_a_missing_time_sorts_last_in_both_directions() -> None:
    dated, undated = _record("a", 5), _record("b", None)
    for direction in Direction:
        order = Order(OrderField.UPDATED_AT, direction)
        assert dated.sort_key(order) < undated.sort_key(order)
    early, late = _record("c", 1), _record("d", 2)
    assert late.sort_key(Order()) < early.sort_key(Order())  # DESC: newest first
    ascending = Order(OrderField.UPDATED_AT, Direction.ASC)
    assert early.sort_key(ascending) < late.sort_key(ascending)


async def test_a_page_is_not_held_back_by_the_next_page_read_beside_it() -> None:
    """The next page of an offset listing is read ahead beside the page (its tie group may
    run on into it), but the merge takes the page as soon as the page itself is in; a page
    read ahead is never asked for twice, and is counted only once it is used."""
    pages = {
        None: SourcePage(records=(_record("a", 9), _record("b", 8), _record("c", 7)), next_token=2),
        2: SourcePage(records=(_record("d", 6),), next_token=None),
    }
    second_page_may_answer = asyncio.Event()
    asked: list[PageToken] = []

    async def fetch(source: Source, token: PageToken, state: RequestState) -> SourcePage:
        asked.append(token)
        if token == 2:
            await second_page_may_answer.wait()
        return pages[token]

    state = RequestState()
    windows = PageWindows(page_size=3, max_limit=None, tie_key=lambda r: r.updated_at)
    reader = Reader(Source(Vendor.AGENTEX, "/t", (), True), ListQuery(), BEGIN, fetch, state)
    reader.windows = windows
    reader.want = 3
    async with asyncio.timeout(30):  # a reader waiting for page 2 would never get here
        await reader.fill()
        taken = [reader.pop().native_id]
        await reader.fill()
        taken.append(reader.pop().native_id)
        await asyncio.sleep(0)  # the read ahead starts
        assert asked == [None, 2] and not state.part(Vendor.AGENTEX).pages.get("/t#2")
        second_page_may_answer.set()
        while True:
            await reader.fill()
            if reader.head() is None:
                break
            taken.append(reader.pop().native_id)
    assert taken == ["a", "b", "c", "d"]
    assert asked == [None, 2]
    assert len(state.part(Vendor.AGENTEX).pages) == 2
