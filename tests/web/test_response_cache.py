"""Whole-response caching: fast for identical reads, never wrong."""

from __future__ import annotations

from gateway.core.records import Vendor
from tests.conftest import GatewayFactory

QUERY = "query Page { tasks(first: 10) { nodes { id status vendorStatus } } }"
TRACKERS = "{ trackers(first: 2) { nodes { id vendorStatus } } }"


def calls(sandbox) -> int:
    return sum(sum(sandbox.counters(v).values()) for v in Vendor)


def test_an_identical_read_is_answered_without_any_upstream_or_page_work(
    make_gateway: GatewayFactory, clean_sandbox
) -> None:
    gateway = make_gateway()
    first = gateway.http.post("/graphql", json={"query": QUERY})
    app = gateway.server.server.config.app
    before = app.state.gateway.service.upstream.cache.stats["hits"]
    second = gateway.http.post("/graphql", json={"query": QUERY})
    assert second.content == first.content
    assert app.state.gateway.service.upstream.cache.stats["hits"] == before


def test_never_served_after_an_update(own) -> None:
    gateway = own.gateway()
    tracker = gateway.data(TRACKERS)["trackers"]["nodes"][0]
    gateway.data(TRACKERS)
    new = "paused" if tracker["vendorStatus"] != "paused" else "running"
    gateway.data(
        "mutation($i: UpdateTrackerInput!) { updateTracker(input: $i) { id } }",
        {"i": {"id": tracker["id"], "status": new}},
    )
    after = {t["id"]: t for t in gateway.data(TRACKERS)["trackers"]["nodes"]}
    assert after[tracker["id"]]["vendorStatus"] == new


def test_never_shared_between_callers_or_served_to_fresh(
    make_gateway: GatewayFactory, clean_sandbox
) -> None:
    gateway = make_gateway(forward_vendor_credentials=True)
    query = "{ tasks(first: 3, filter: {vendors: [SUBNOTO]}) { nodes { id } } }"
    ok = gateway.query(query)
    assert ok["data"]["tasks"]["nodes"] and "errors" not in ok
    other = gateway.query(query, headers={"x-vendor-key-subnoto": "not-the-key"})
    assert other["errors"][0]["extensions"]["code"] == "UPSTREAM_AUTH"
    before = calls(clean_sandbox)
    gateway.query(query, headers={"cache-control": "no-cache"})
    assert calls(clean_sandbox) > before
