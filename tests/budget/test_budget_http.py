"""Vendor budgets over real HTTP: gateways in front of the sandbox, whose orq plays its plan
limit (``per_minute``: a rolling minute, 429 with ``Retry-After`` and ``X-RateLimit-*``).
What reached orq and what it refused is counted on the sandbox's side (``Tally``).

Every test runs well inside one minute, so the sandbox's window never rolls during it: a
budget kept is a count the sandbox never exceeds, whatever the timing."""

from __future__ import annotations

import asyncio
import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import websockets

from gateway.app import build_gateway
from gateway.core.budget import Budgets
from gateway.core.context import Priority
from gateway.core.poller import PollGroup, TaskPoller
from gateway.core.records import Vendor
from tests.budget.conftest import Budgeted
from tests.conftest import GatewayClient

ORQ = Vendor.ORQ
ORQ_TASKS = """query($fresh: Boolean!, $f: TaskFilter) {
  tasks(first: 5, fresh: $fresh, filter: $f) {
    missingVendors nodes { id }
    vendorParts { vendor ok stale fromCache fetchedAt errorCode } } }"""
ONLY_ORQ = {"vendors": ["ORQ"]}
VENDORS = """{ vendors { vendor lastErrorCode circuitState budget {
  limitPerMinute remaining retryAfterSeconds deferredInteractive deferredBackground
  rateLimited shared } } }"""


def ask(gateway: GatewayClient, fresh: bool, f: dict[str, Any] | None = None) -> dict[str, Any]:
    return gateway.query(ORQ_TASKS, {"fresh": fresh, "f": f or ONLY_ORQ})


def orq_part(body: dict[str, Any]) -> dict[str, Any]:
    parts = body["data"]["tasks"]["vendorParts"]
    return next(p for p in parts if p["vendor"] == "ORQ")


def budget_errors(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [e["extensions"] for e in body.get("errors", [])]


def assert_served_within_budget(body: dict[str, Any]) -> str:
    """Each answer: orq's part fresh, stale from the cache, or missing for want of budget
    with a retry hint; never a refusal by orq itself."""
    tasks = body["data"]["tasks"]
    if "ORQ" not in tasks["missingVendors"]:
        return "stale" if orq_part(body)["stale"] else "served"
    (extensions,) = budget_errors(body)
    assert extensions["code"] == "UPSTREAM_BUDGET_EXHAUSTED", extensions
    assert extensions["vendor"] == "ORQ" and extensions["retryAfter"] >= 1
    return "missing"


def budgets_of(gateway: GatewayClient) -> Budgets:
    budgets: Budgets = gateway.server.server.config.app.state.gateway.service.upstream.budgets
    return budgets


def orq_budget(gateway: GatewayClient) -> dict[str, Any]:
    vendors = gateway.data(VENDORS)["vendors"]
    return next(v for v in vendors if v["vendor"] == "ORQ")


def test_sustained_load_under_the_vendors_limit_is_never_refused(budgeted: Budgeted) -> None:
    limit = 2 * budgeted.orq_agents()
    budgeted.sandbox.knobs(ORQ).per_minute = limit
    gateway = budgeted.gateway(
        {"max_requests_per_minute": limit, "cache_ttl": 0.05, "first_page_ttl": 0.05}
    )

    def client(n: int) -> list[str]:
        return [assert_served_within_budget(ask(gateway, fresh=i % 3 == 0)) for i in range(n)]

    with ThreadPoolExecutor(4) as pool:
        outcomes = [o for answers in pool.map(client, [8] * 4) for o in answers]
    assert budgeted.tally.refused(ORQ) == 0
    assert budgeted.tally.received(ORQ) == limit  # the budget was used, not exceeded
    # some answered from orq, some without a call: stale from the cache, or missing
    assert "served" in outcomes and set(outcomes) - {"served"}
    status = orq_budget(gateway)
    assert status["budget"]["remaining"] == 0 and status["budget"]["rateLimited"] == 0
    assert status["lastErrorCode"] != "UPSTREAM_BUDGET_EXHAUSTED"
    assert status["circuitState"] == "CLOSED"  # refusals of our own never trip it


def test_the_limit_orq_states_is_learned_without_configuration(budgeted: Budgeted) -> None:
    limit = budgeted.orq_agents() + 2
    budgeted.sandbox.knobs(ORQ).per_minute = limit
    gateway = budgeted.gateway({"cache_ttl": 0, "first_page_ttl": 0})
    outcomes = [assert_served_within_budget(ask(gateway, fresh=True)) for _ in range(6)]
    assert budgeted.tally.refused(ORQ) == 0
    assert budgeted.tally.received(ORQ) == limit
    assert outcomes[0] == "served" and outcomes[-1] == "missing"
    assert orq_budget(gateway)["budget"]["limitPerMinute"] == limit


def test_after_a_429_nothing_is_sent_until_retry_after_has_passed(budgeted: Budgeted) -> None:
    knobs = budgeted.sandbox.knobs(ORQ)
    knobs.rate_limit_rate, knobs.retry_after_seconds = 1.0, 30
    gateway = budgeted.gateway({"cache_ttl": 0, "first_page_ttl": 0})
    first = ask(gateway, fresh=True)
    assert first["data"]["tasks"]["missingVendors"] == ["ORQ"]
    assert budget_errors(first)[0]["code"] == "UPSTREAM_RATE_LIMITED"
    heard = budgeted.tally.refused(ORQ)
    assert heard == budgeted.tally.received(ORQ) == budgeted.orq_agents()  # no retry: 30 s
    knobs.rate_limit_rate = 0.0
    for _ in range(5):
        assert assert_served_within_budget(ask(gateway, fresh=True)) == "missing"
    assert budgeted.tally.received(ORQ) == heard  # nothing sent in the 30 s
    budget = orq_budget(gateway)["budget"]
    assert budget["rateLimited"] == heard and 25 <= budget["retryAfterSeconds"] <= 30
    budgets = budgets_of(gateway)
    budgets.clock = lambda: time.time() + 30.5  # the vendor's 30 s are over
    assert assert_served_within_budget(ask(gateway, fresh=True)) == "served"
    assert budgeted.tally.refused(ORQ) == heard


def test_fresh_does_not_bypass_a_spent_budget_stale_then_missing(budgeted: Budgeted) -> None:
    agents = budgeted.orq_agents()
    gateway = budgeted.gateway({"max_requests_per_minute": agents, "cache_ttl": 60})
    cached = ask(gateway, fresh=False)
    assert assert_served_within_budget(cached) == "served"
    assert budgeted.tally.received(ORQ) == agents  # the whole budget
    fresh = ask(gateway, fresh=True)
    part = orq_part(fresh)
    assert part["ok"] and part["stale"] and part["fetchedAt"] == orq_part(cached)["fetchedAt"]
    assert fresh["data"]["tasks"]["nodes"] == cached["data"]["tasks"]["nodes"]
    assert "errors" not in fresh
    # nothing cached for another listing (a status filter pushed down): missing, with a hint
    other = ask(gateway, fresh=True, f={"vendors": ["ORQ"], "statuses": ["FAILED"]})
    assert assert_served_within_budget(other) == "missing"
    assert budgeted.tally.received(ORQ) == agents and budgeted.tally.refused(ORQ) == 0
    budget = orq_budget(gateway)["budget"]
    assert budget["deferredInteractive"] >= agents + 1 and budget["remaining"] == 0
    metrics = gateway.http.get("/metrics").text
    assert 'gateway_vendor_stale_answers_total{vendor="orq"} 1.0' in metrics
    assert f'gateway_vendor_budget_limit{{vendor="orq"}} {float(agents)}' in metrics
    assert 'gateway_vendor_calls_deferred_total{priority="interactive",vendor="orq"}' in metrics
    assert 'gateway_vendor_rate_limited_total{vendor="orq"} 0.0' in metrics


def test_two_replicas_on_one_redis_keep_the_sum_within_the_limit(
    budgeted: Budgeted, redis_url: str
) -> None:
    agents = budgeted.orq_agents()
    limit = 3 * agents
    budgeted.sandbox.knobs(ORQ).per_minute = limit
    orq = {"max_requests_per_minute": limit, "cache_ttl": 0, "first_page_ttl": 0}
    replicas = [budgeted.gateway(orq, cache_url=redis_url) for _ in range(2)]

    def client(gateway: GatewayClient) -> list[str]:
        return [assert_served_within_budget(ask(gateway, fresh=True)) for _ in range(6)]

    with ThreadPoolExecutor(4) as pool:
        outcomes = [o for answers in pool.map(client, replicas * 2) for o in answers]
    assert budgeted.tally.refused(ORQ) == 0
    assert budgeted.tally.received(ORQ) == limit
    assert "missing" in outcomes
    assert all(orq_budget(r)["budget"]["shared"] for r in replicas)


def test_a_429_heard_by_one_replica_holds_the_other_back(
    budgeted: Budgeted, redis_url: str
) -> None:
    knobs = budgeted.sandbox.knobs(ORQ)
    knobs.rate_limit_rate, knobs.retry_after_seconds = 1.0, 30
    orq = {"cache_ttl": 0, "first_page_ttl": 0}
    one, two = (budgeted.gateway(orq, cache_url=redis_url) for _ in range(2))
    assert budget_errors(ask(one, fresh=True))[0]["code"] == "UPSTREAM_RATE_LIMITED"
    heard = budgeted.tally.received(ORQ)
    knobs.rate_limit_rate = 0.0
    assert assert_served_within_budget(ask(two, fresh=True)) == "missing"
    assert budgeted.tally.received(ORQ) == heard


def test_interactive_requests_are_served_while_the_poller_waits(budgeted: Budgeted) -> None:
    agents = budgeted.orq_agents()
    # 2 polls' worth of calls; half kept for interactive requests: one poll, then it waits
    gateway = budgeted.gateway(
        {"max_requests_per_minute": 2 * agents, "cache_ttl": 0, "first_page_ttl": 0},
        interactive_reserve=0.5,
        poll_interval=0.05,
    )
    url = gateway.url.replace("http://", "ws://") + "/graphql"

    async def subscribed_until_the_poller_waits() -> None:
        async with websockets.connect(url, subprotocols=["graphql-transport-ws"]) as socket:
            await socket.send(json.dumps({"type": "connection_init"}))
            assert json.loads(await socket.recv())["type"] == "connection_ack"
            subscription = {"query": "subscription { taskChanged { id } }"}
            await socket.send(json.dumps({"id": "1", "type": "subscribe", "payload": subscription}))
            while not budgets_of(gateway).status(ORQ).deferred:
                await asyncio.sleep(0.02)

    asyncio.run(asyncio.wait_for(subscribed_until_the_poller_waits(), 20))
    assert budgeted.tally.received(ORQ) == agents  # one poll, then nothing more
    budget = orq_budget(gateway)["budget"]
    assert budget["deferredBackground"] >= 1 and budget["deferredInteractive"] == 0
    answer = ask(gateway, fresh=True)
    assert assert_served_within_budget(answer) == "served"
    assert not orq_part(answer)["fromCache"]
    assert budgeted.tally.received(ORQ) == 2 * agents and budgeted.tally.refused(ORQ) == 0


async def test_a_vendor_the_poller_had_to_skip_is_not_news_when_it_is_back(
    budgeted: Budgeted,
) -> None:
    vendors = dict(budgeted.settings.vendors)
    vendors[ORQ] = replace(vendors[ORQ], cache_ttl=0, first_page_ttl=0)
    gateway = build_gateway(replace(budgeted.settings, vendors=vendors))
    try:
        poller, group = TaskPoller(gateway.service), PollGroup({})
        assert await poller.poll(group) == []  # the baseline
        budgets = gateway.service.upstream.budgets
        await budgets.learn(ORQ, 429, {"retry-after": "30"})  # orq asks for silence
        sent = budgeted.tally.received(ORQ)
        assert await poller.poll(group) == []
        assert budgeted.tally.received(ORQ) == sent  # the poll went without orq
        assert budgets.status(ORQ).deferred[Priority.BACKGROUND] == budgeted.orq_agents()
        budgets.clock = lambda: time.time() + 31
        assert await poller.poll(group) == []  # orq back, nothing of it changed
        assert budgeted.tally.received(ORQ) > sent
    finally:
        await gateway.aclose()
