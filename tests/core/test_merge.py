"""The fan-out starts the vendor that usually answers last first."""

from __future__ import annotations

from gateway.core.context import RequestState
from gateway.core.cursor import Position
from gateway.core.merge import Reader, fill_all
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
