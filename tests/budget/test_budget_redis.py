"""Vendor budgets shared by replicas through a real Redis: one window for all, what one
replica hears from the vendor holds the others back, and with Redis gone each replica keeps
to its share. Two ``Budgets`` on one Redis are two replicas; the clock is injected (Redis
then counts in the test's time), so nothing waits for real."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from gateway.core.budget import Budgets, VendorLimits
from gateway.core.context import Priority
from gateway.core.errors import UpstreamBudgetExhaustedError
from gateway.core.records import Vendor
from gateway.core.store import RedisStore
from tests.budget.test_budget_local import Clock
from tests.redis_server import RedisServer

ORQ = Vendor.ORQ
BACKGROUND, INTERACTIVE = Priority.BACKGROUND, Priority.INTERACTIVE
Replica = Callable[..., Budgets]


@pytest.fixture
async def replica(redis_url: str) -> AsyncIterator[Replica]:
    stores: list[RedisStore] = []

    def make(limit: int | None, clock: Clock, reserve: float = 0.25) -> Budgets:
        store = RedisStore(redis_url)
        stores.append(store)
        budgets = Budgets.for_store(store, {ORQ: VendorLimits(limit)}, interactive_reserve=reserve)
        budgets.clock = clock
        assert budgets.shared is not None
        return budgets

    yield make
    for store in stores:
        await store.close()


async def take(budget: Budgets, priority: Priority = INTERACTIVE) -> bool:
    try:
        await budget.take(ORQ, priority)
    except UpstreamBudgetExhaustedError:
        return False
    return True


async def test_replicas_racing_for_one_window_get_exactly_the_limit(replica: Replica) -> None:
    clock = Clock()
    one, two = replica(7, clock), replica(7, clock)
    results = await asyncio.gather(*(take(r) for r in (one, two) * 10))
    assert sum(results) == 7
    clock.now += 30
    assert not await take(one) and not await take(two)
    clock.now += 31.001  # the window is 61 s: all seven have left
    results = await asyncio.gather(*(take(r) for r in (one, two) * 5))
    assert sum(results) == 7
    status = (await one.peek(ORQ), await two.peek(ORQ))
    assert [(s.limit, s.remaining, s.shared, s.replicas) for s in status] == [(7, 0, True, 2)] * 2


async def test_background_draws_only_above_the_shared_reserve(replica: Replica) -> None:
    clock = Clock()
    one, two = replica(8, clock, reserve=0.5), replica(8, clock, reserve=0.5)
    assert [await take(r, BACKGROUND) for r in (one, two, one, two, one)] == [True] * 4 + [False]
    assert [await take(r) for r in (two, one, two, one, two)] == [True] * 4 + [False]
    assert one.status(ORQ).deferred == {BACKGROUND: 1}


async def test_a_429_heard_by_one_replica_holds_every_replica_back(replica: Replica) -> None:
    clock = Clock()
    one, two = replica(None, clock), replica(None, clock)
    assert await take(two)
    await one.learn(ORQ, 429, {"retry-after": "20", "x-ratelimit-limit": "30"})
    assert not await take(two) and not await take(one)
    status = await two.peek(ORQ)
    assert status.limit == 30 and status.retry_after is not None and status.blocked_until
    clock.now += 19.9
    assert not await take(two)
    clock.now += 0.2
    assert await take(two) and await take(one)
    # the limit the vendor stated holds for both: 30 in the window, whoever drew
    results = await asyncio.gather(*(take(r) for r in (one, two) * 20))
    assert sum(results) == 30 - 3


async def test_with_redis_gone_each_replica_keeps_to_its_share(
    replica: Replica, redis_server: RedisServer
) -> None:
    clock = Clock()
    one, two = replica(10, clock), replica(10, clock)
    # both drawing, each sees the other: two replicas
    assert await take(one) and await take(two) and await take(one)
    redis_server.stop()
    try:
        # 10 / 2 replicas = 5 each, the calls already made included; never unlimited
        assert [await take(one) for _ in range(5)] == [True] * 3 + [False] * 2
        assert [await take(two) for _ in range(6)] == [True] * 4 + [False] * 2
        status = one.status(ORQ)
        assert (status.limit, status.remaining, status.shared) == (5, 0, False)
    finally:
        redis_server.start()
