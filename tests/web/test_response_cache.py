"""Whole-response caching: fast for identical reads, never wrong."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import replace

import pytest

from gateway.config import Settings, VendorConfig
from gateway.core.records import Vendor
from tests.conftest import GatewayClient, GatewayFactory

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


def read_update_read(gateway: GatewayClient) -> tuple[str, str]:
    """Read the trackers twice (the answer is cached), change one, read again: the status
    written and the status then read."""
    tracker = gateway.data(TRACKERS)["trackers"]["nodes"][0]
    gateway.data(TRACKERS)
    new = "paused" if tracker["vendorStatus"] != "paused" else "running"
    gateway.data(
        "mutation($i: UpdateTrackerInput!) { updateTracker(input: $i) { id } }",
        {"i": {"id": tracker["id"], "status": new}},
    )
    after = {t["id"]: t for t in gateway.data(TRACKERS)["trackers"]["nodes"]}
    return new, after[tracker["id"]]["vendorStatus"]


def test_never_served_after_an_update(own) -> None:
    written, read = read_update_read(own.gateway())
    assert read == written


def test_not_used_while_redis_is_down_so_a_write_is_still_seen(
    own, redis_url, redis_server
) -> None:
    """With Redis down the vendors' generations cannot be read or bumped: an answer cached
    then would outlive the write it cannot see."""
    gateway = own.gateway(cache_url=redis_url)
    redis_server.stop()
    try:
        written, read = read_update_read(gateway)
    finally:
        redis_server.start()
    assert read == written


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


def with_ttl(settings: Settings, seconds: float) -> dict[Vendor, VendorConfig]:
    vendors = {
        v: replace(c, cache_ttl=seconds, first_page_ttl=seconds)
        for v, c in settings.vendors.items()
    }
    return vendors


def in_thread(gateway: GatewayClient, query: str) -> tuple[threading.Thread, list[bytes]]:
    answers: list[bytes] = []
    thread = threading.Thread(
        target=lambda: answers.append(gateway.http.post("/graphql", json={"query": query}).content)
    )
    thread.start()
    return thread, answers


def test_identical_concurrent_reads_execute_once(
    make_gateway: GatewayFactory, clean_sandbox
) -> None:
    """A burst of one query on a cold gateway: one execution, the others share its answer."""
    gateway = make_gateway(metric_operations=("Page",))  # a label only when listed
    for vendor in Vendor:
        clean_sandbox.knobs(vendor).latency_ms = 300
    started = [in_thread(gateway, QUERY) for _ in range(8)]
    for thread, _ in started:
        thread.join()
    answers = [answer for _, answers in started for answer in answers]
    assert len(answers) == 8 and len(set(answers)) == 1 and b'"errors"' not in answers[0]
    metrics = gateway.http.get("/metrics").text
    assert 'gateway_graphql_requests_total{operation="Page",outcome="ok"} 8.0' in metrics
    assert 'gateway_response_cache_hits_total{operation="Page"} 7.0' in metrics


def test_an_expired_answer_is_served_while_one_request_recomputes_it(own) -> None:
    """After expiry the first request recomputes; the ones arriving meanwhile get the
    expired answer at once instead of queueing behind it; then everyone sees the new one."""
    gateway = own.gateway(vendors=with_ttl(own.settings, 1.0))
    query = "query Page { tasks(first: 20) { nodes { id status updatedAt } } }"
    old = gateway.http.post("/graphql", json={"query": query}).content
    assert own.sandbox.advance(40) > 0  # vendor data changes behind the gateway's back
    time.sleep(1.2)  # the answer and its pages expire
    for vendor in Vendor:
        own.sandbox.knobs(vendor).latency_ms = 600
    try:
        leader, recomputed = in_thread(gateway, query)
        time.sleep(0.2)
        follower = gateway.http.post("/graphql", json={"query": query}).content
        leader.join()
    finally:
        own.sandbox.reset_knobs()
    assert follower == old
    assert recomputed[0] != old and b'"errors"' not in recomputed[0]
    assert gateway.http.post("/graphql", json={"query": query}).content == recomputed[0]


# -- what is cached is read from the parsed request, never from its text -------------------

TASKS = "tasks(first: 3) { nodes { id } }"
WORD_IN_TEXT = [  # "fresh" appears, but no `fresh` argument is true: cacheable
    (f"{{ fresh: {TASKS} }}", None),
    ('{ tasks(first: 3, filter: {userId: "fresh"}) { nodes { id } } }', None),
    (f"# fresh: true\n{{ {TASKS} }}", None),
    (f"query fresh {{ {TASKS} }}", None),
    ("query($fresh: Int) { tasks(first: $fresh) { nodes { fresh: id } } }", {"fresh": 3}),
    ("{ tasks(first: 3, fresh: false) { nodes { id } } }", None),
    ("query($f: Boolean!) { tasks(first: 3, fresh: $f) { nodes { id } } }", {"f": False}),
    ("query($f: Boolean! = false) { tasks(first: 3, fresh: $f) { nodes { id } } }", None),
]
FRESH = [  # a `fresh` argument that is true, however it gets there: never cached
    ("query($f: Boolean!) { tasks(first: 3, fresh: $f) { nodes { id } } }", {"f": True}),
    ("query($f: Boolean = true) { tasks(first: 3, fresh: $f) { nodes { id } } }", None),
    ("query($f: Boolean = false) { tasks(first: 3, fresh: $f) { nodes { id } } }", {"f": True}),
    (
        f"query($f: Boolean!) {{ a: {TASKS} b: tasks(first: 2, fresh: $f) {{ nodes {{ id }} }} }}",
        {"f": True},
    ),
    ("{ tasks(first: 3, fresh: true) { nodes { id } } }", None),
]


@pytest.fixture(scope="module")
def reads(make_gateway: GatewayFactory) -> GatewayClient:
    return make_gateway()


def answered_from_cache(
    gateway: GatewayClient, query: str, variables: dict | None, method: str
) -> bool:
    """Ask twice: whether the second answer came whole from the response cache (no vendor
    call and no page-cache lookup)."""

    def ask() -> dict:
        if method == "GET":
            params = {"query": query}
            if variables is not None:
                params["variables"] = json.dumps(variables)
            response = gateway.http.get("/graphql", params=params)
        else:
            response = gateway.http.post("/graphql", json={"query": query, "variables": variables})
        assert response.status_code == 200, response.text
        body = response.json()
        assert "errors" not in body, body["errors"]
        return body

    first = ask()
    pages = gateway.server.server.config.app.state.gateway.service.upstream.cache
    # This gateway's own page-cache traffic (every lookup and every vendor call it makes),
    # not the sandbox's counters: the session's other gateways may still be finishing
    # calls of earlier tests in the background.
    before = dict(pages.stats)
    assert ask() == first
    return dict(pages.stats) == before


@pytest.mark.parametrize("method", ["POST", "GET"])
@pytest.mark.parametrize(("query", "variables"), WORD_IN_TEXT)
def test_the_word_fresh_in_an_alias_string_or_name_does_not_stop_caching(
    reads: GatewayClient, clean_sandbox, query: str, variables: dict | None, method: str
) -> None:
    assert answered_from_cache(reads, query, variables, method)


@pytest.mark.parametrize("method", ["POST", "GET"])
@pytest.mark.parametrize(("query", "variables"), FRESH)
def test_fresh_through_a_variable_or_its_default_is_never_cached(
    reads: GatewayClient, clean_sandbox, query: str, variables: dict | None, method: str
) -> None:
    assert not answered_from_cache(reads, query, variables, method)


def test_whole_answers_are_bounded_in_bytes(make_gateway: GatewayFactory, clean_sandbox) -> None:
    """A quarter of ``cache.max_bytes`` holds the stored answers: past it the oldest go, and
    an answer larger than all of it is not kept. Whether an answer came from the response
    cache shows in the page cache: a whole-answer hit does no page work at all."""
    bound = 6_000
    gateway = make_gateway(cache_max_bytes=4 * bound)
    pages = gateway.server.server.config.app.state.gateway.service.upstream.cache

    def answered_whole(body: dict[str, object]) -> tuple[bool, int]:
        before = pages.stats["hits"] + pages.stats["misses"]
        response = gateway.http.post("/graphql", json=body)
        assert response.status_code == 200 and b'"errors"' not in response.content
        return pages.stats["hits"] + pages.stats["misses"] == before, len(response.content)

    def page(n: int) -> dict[str, object]:
        return {"query": "query P($n: Int!) { tasks(first: $n) { nodes { id } } }",
                "variables": {"n": n}}  # fmt: skip

    _, size = answered_whole(page(100))
    assert size > bound and not answered_whole(page(100))[0]  # asked again: it was not kept
    sizes = [answered_whole(page(n))[1] for n in (20, 21, 22)]
    assert sum(sizes) > bound >= sizes[1] + sizes[2]  # the three cannot all be kept
    assert answered_whole(page(22))[0] and answered_whole(page(21))[0]  # newest kept
    assert not answered_whole(page(20))[0]  # oldest dropped
