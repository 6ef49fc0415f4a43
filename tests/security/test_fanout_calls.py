"""One request cannot start unbounded upstream calls, and cancelled calls never leave a
vendor's connection pool unusable (issue 14, item 3).

Past ``max_upstream_calls`` page reads, a request answers with what it has and names the
vendors cut off (``UPSTREAM_CALL_LIMIT``). A request's deadline that cancels thousands of
calls queued on a small pool, or a churn of calls cancelled at random moments (the way
encode/httpcore#1093 leaks pool slots), leaves the pool answering the next call at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest

from gateway.app import create_app, make_client
from gateway.config import Settings
from gateway.core.records import Vendor
from gateway.observability import Observer
from gateway.observability.tracing import Tracing
from gateway.serving import ServerThread
from tests.conftest import GatewayClient, GatewayFactory

SMALL_POOL = httpx.Limits(max_connections=2, max_keepalive_connections=2)
PAGE = "{ tasks(first: 10) { nodes { id vendor } missingVendors } }"


def limit_errors(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        e for e in body.get("errors", []) if e["extensions"].get("code") == "UPSTREAM_CALL_LIMIT"
    ]


def calls(sandbox: Any) -> int:
    return sum(sum(sandbox.counters(v).values()) for v in Vendor)


@pytest.mark.parametrize("limit", [1, 3, 8])
def test_a_request_stops_at_its_call_limit_and_answers_with_what_it_has(
    make_gateway: GatewayFactory, clean_sandbox, limit: int
) -> None:
    gateway = make_gateway(max_upstream_calls=limit)
    ids = [f"agent-{i}" for i in range(20)]  # one Agentex listing each
    query = """query Q($ids: [String!]) {
        agentex: tasks(first: 5, filter: {vendors: [AGENTEX], agentIds: $ids}) {
          nodes { id } missingVendors }
    }"""
    body = gateway.query(query, {"ids": ids})
    assert body["data"] is not None, "a partial answer, not a failed request"
    errors = limit_errors(body)
    assert errors and errors[0]["extensions"]["vendor"] == "AGENTEX"
    assert str(limit) in errors[0]["message"]
    assert body["data"]["agentex"]["missingVendors"] == ["AGENTEX"]
    assert calls(clean_sandbox) <= limit


@pytest.mark.parametrize(
    "query",
    [
        PAGE,
        "{ tasks(first: 10) { totalCount nodes { id } missingVendors } }",
        "{ taskStats(groupBy: [VENDOR]) { total missingVendors } }",
        "{ a: tasks(first: 3) { nodes { id } missingVendors } "
        "b: tasks(first: 3, orderBy: {field: CREATED_AT}) { nodes { id } missingVendors } }",
    ],
    ids=["page", "totalCount", "taskStats", "aliases"],
)
def test_the_vendors_cut_off_are_named_and_the_rest_is_served(
    make_gateway: GatewayFactory, clean_sandbox, query: str
) -> None:
    limit = 4
    body = make_gateway(max_upstream_calls=limit).query(query)
    assert body["data"] is not None
    cut = {e["extensions"]["vendor"] for e in limit_errors(body)}
    assert cut, "four vendors need more than four page reads"
    for field in body["data"].values():
        # A vendor cut off midway (one agent's listing read, the next not) is named too.
        assert cut <= set(field["missingVendors"])
    assert calls(clean_sandbox) <= limit


def test_the_default_limit_serves_an_ordinary_page(gateway: GatewayClient) -> None:
    body = gateway.query(PAGE)
    assert "errors" not in body and not body["data"]["tasks"]["missingVendors"]


@contextlib.contextmanager
def small_pool_gateway(settings: Settings, **changes: Any) -> Iterator[GatewayClient]:
    app = create_app(replace(settings, **changes), pool_limits=SMALL_POOL)
    client = GatewayClient(ServerThread(app).start())
    try:
        yield client
    finally:
        client.close()


def storm(fields: int, agents: int, tag: str) -> tuple[str, dict[str, Any]]:
    """``fields`` x ``agents`` Agentex listings in one request (one per agent id)."""
    selections = " ".join(
        f"t{f}: tasks(first: 1, filter: {{vendors: [AGENTEX], agentIds: $ids{f}}}) "
        "{ nodes { id } missingVendors }"
        for f in range(fields)
    )
    params = ", ".join(f"$ids{f}: [String!]" for f in range(fields))
    variables = {f"ids{f}": [f"{tag}-{f}-{i}" for i in range(agents)] for f in range(fields)}
    return f"query Storm({params}) {{ {selections} }}", variables


def test_a_deadline_cancelling_thousands_of_queued_calls_leaves_the_pool_usable(
    settings: Settings, clean_sandbox
) -> None:
    """20 fields x 100 agents: 2,000 Agentex listings queued on a pool of 2 connections;
    a handful answer before the 0.5 s deadline cancels the rest, twice. Then an ordinary
    query answers, Agentex included, and the replica is ready."""
    clean_sandbox.knobs(Vendor.AGENTEX).latency_ms = 50
    with small_pool_gateway(settings, request_deadline=0.5) as gateway:
        for round_ in range(2):
            query, variables = storm(20, 100, f"r{round_}")
            body = gateway.query(query, variables)
            assert {e["extensions"]["code"] for e in body["errors"]} == {"UPSTREAM_TIMEOUT"}
        clean_sandbox.knobs(Vendor.AGENTEX).latency_ms = 0
        after = gateway.query(PAGE)
        assert "errors" not in after, after["errors"]
        assert not after["data"]["tasks"]["missingVendors"]
        assert gateway.http.get("/readyz").status_code == 200


def test_calls_cancelled_at_random_moments_never_leak_a_connection(
    settings: Settings, clean_sandbox
) -> None:
    """The churn that reproduces encode/httpcore#1093 within seconds on a bare pool of 4:
    20 callers, each giving up after a random few milliseconds, again and again."""
    clean_sandbox.knobs(Vendor.AGENTEX).jitter_ms = 4
    config = replace(settings.vendors[Vendor.AGENTEX], timeout=2.0)
    rng = random.Random(14)

    async def churn() -> int:
        limits = httpx.Limits(max_connections=4, max_keepalive_connections=4)
        client = make_client(config, Observer(None, Tracing(None)), limits)
        stop = time.monotonic() + 2.0
        cancelled = 0

        async def caller() -> None:
            nonlocal cancelled
            while time.monotonic() < stop:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(client.get("/tracker"), rng.random() * 0.01)
                    continue
                cancelled += 1

        try:
            await asyncio.gather(*(caller() for _ in range(20)))
            # With a leaked slot this waits for the pool timeout (2 s) and fails.
            response = await client.get("/tracker", params={"limit": 1})
            assert response.status_code == 200
        finally:
            await client.aclose()
        return cancelled

    assert asyncio.run(churn()) > 500
