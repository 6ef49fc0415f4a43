"""Memory is bounded (issue 14, item 8, cache and APQ parts).

The in-process cache never holds more than ``cache.max_bytes`` (an entry's size is its
encoded size), whatever is written; a page larger than the whole bound is simply not kept,
and answers stay right. Automatic persisted queries keep at most ``apq_max_entries``
documents (the oldest registered go first) of at most ``max_document_bytes`` each, in memory
and in Redis.
"""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.core.memory import BoundedMemoryCache
from gateway.core.records import Vendor
from gateway.graph.schema import QueryLimits
from tests.conftest import GatewayClient, GatewayFactory

OPS = st.lists(
    st.tuples(
        st.sampled_from(["set", "delete", "increment"]),
        st.integers(0, 30),
        st.integers(0, 400),
    ),
    max_size=200,
)


@settings(max_examples=200, deadline=None)
@given(ops=OPS, max_bytes=st.integers(1, 1000), max_entries=st.integers(1, 20))
def test_the_memory_cache_never_holds_more_than_its_bounds(ops, max_bytes, max_entries) -> None:
    memory = BoundedMemoryCache(max_entries=max_entries, max_bytes=max_bytes)
    sizes: dict[str, int] = {}
    counters: dict[str, int] = {}
    for op, number, size in ops:
        key = f"k{number}"
        if op == "set":
            kept = memory.set(key, (key, size), size=size, ttl=60)
            assert kept == (size <= max_bytes)
            sizes.pop(key, None)
            if kept:
                sizes[key] = size
                assert memory.get(key) == (key, size)  # the newest write is always kept
        elif op == "delete":
            memory.delete(key)
            sizes.pop(key, None)
        else:
            counters[key] = counters.get(key, 0) + 1
            memory.increment(key)
        held = {k: s for k, s in sizes.items() if memory.get(k) is not None}
        assert memory.bytes == sum(held.values()) <= max_bytes
        assert len(memory) == len(held) <= max_entries
        # Counters (cache generations) are never evicted, whatever the pressure.
        assert memory.counters(list(counters)) == list(counters.values())


QUERIES = [
    f"{{ tasks(first: {n}, orderBy: {{field: {f}, direction: {d}}}) {{ nodes {{ id title }} }} }}"
    for n in (3, 7, 20)
    for f in ("CREATED_AT", "UPDATED_AT")
    for d in ("ASC", "DESC")
]


def gauge(gateway: GatewayClient, name: str) -> float:
    for line in gateway.http.get("/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


def upstream_calls(sandbox) -> int:
    return sum(sum(sandbox.counters(v).values()) for v in Vendor)


def test_the_page_cache_stays_within_max_bytes_and_answers_stay_right(
    make_gateway: GatewayFactory, clean_sandbox
) -> None:
    bound = 48 * 1024
    small = make_gateway(cache_max_bytes=bound, response_cache=False)
    roomy = make_gateway(response_cache=False)
    for query in QUERIES:
        assert small.data(query) == roomy.data(query)
        assert 0 < gauge(small, "gateway_cache_memory_bytes") <= bound
    assert gauge(roomy, "gateway_cache_memory_bytes") > bound  # the bound did bite


def test_a_page_larger_than_the_bound_is_not_kept(
    make_gateway: GatewayFactory, clean_sandbox
) -> None:
    tiny = make_gateway(cache_max_bytes=1024, response_cache=False)
    query = "{ tasks(first: 30) { nodes { id title summary } } }"
    first = tiny.data(query)
    before = upstream_calls(clean_sandbox)
    assert tiny.data(query) == first
    assert upstream_calls(clean_sandbox) > before, "a page over the bound was served from cache"
    assert gauge(tiny, "gateway_cache_memory_bytes") <= 1024


def apq(gateway: GatewayClient, query: str | None, digest: str) -> dict:
    body: dict = {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": digest}}}
    if query is not None:
        body["query"] = query
    return gateway.http.post("/graphql", json=body).json()


def code(body: dict) -> str | None:
    errors = body.get("errors") or [{}]
    return errors[0].get("extensions", {}).get("code")


@pytest.mark.parametrize("backend", ["memory", "redis"])
def test_persisted_queries_are_bounded_in_count_and_size(
    make_gateway: GatewayFactory, redis_url: str, backend: str
) -> None:
    gateway = make_gateway(
        cache_url=redis_url if backend == "redis" else None,
        apq_max_entries=5,
        limits=QueryLimits(max_document_bytes=2048),
    )
    documents = [f"query Q{i} {{ vendors {{ vendor }} }}" for i in range(8)]
    digests = [hashlib.sha256(d.encode()).hexdigest() for d in documents]
    for document, digest in zip(documents, digests, strict=True):
        assert "errors" not in apq(gateway, document, digest)
    found = [code(apq(gateway, None, digest)) is None for digest in digests]
    assert found == [False] * 3 + [True] * 5  # the oldest three were dropped

    big = "query Big { vendors { vendor } }" + " " * 3000
    big_digest = hashlib.sha256(big.encode()).hexdigest()
    assert "errors" in apq(gateway, big, big_digest)
    assert code(apq(gateway, None, big_digest)) == "PERSISTED_QUERY_NOT_FOUND"
