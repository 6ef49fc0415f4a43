"""The fan-out starts the vendor that usually answers last first."""

from __future__ import annotations

from gateway.core.context import RequestState
from gateway.core.cursor import Position
from gateway.core.merge import Reader, SortedListings, fill_all
from gateway.core.records import Vendor
from gateway.vendors.base import ListQuery, PageToken, Source, SourcePage

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
    clean_sandbox.knobs(Vendor.SUBNOTO).latency_ms = 60
    clean_sandbox.knobs(Vendor.XPANDER).latency_ms = 20
    gateway = make_gateway()
    for _ in range(2):
        gateway.data("{ tasks(first: 5, fresh: true) { nodes { id } } }")
    health = gateway.server.server.config.app.state.gateway.service.upstream.health  # type: ignore[attr-defined]
    typical = {vendor: health[vendor].typical_seconds for vendor in Vendor}
    assert typical[Vendor.SUBNOTO] >= 0.06 and typical[Vendor.XPANDER] >= 0.02
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
