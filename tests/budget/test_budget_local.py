"""The vendor budget's window in one process, on an injected clock (nothing waits for real):
never more than the limit in any window, background work kept out of the interactive
reserve, and what a vendor's headers teach it. The oracle is the list of grants the test
itself saw, counted per window here."""

from __future__ import annotations

import asyncio
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.core.budget import Budgets, PriorityGate, VendorLimits
from gateway.core.cache import PageCache
from gateway.core.context import Priority
from gateway.core.contract import SourcePage
from gateway.core.errors import UpstreamBudgetExhaustedError
from gateway.core.records import Vendor
from gateway.core.store import create_store

ORQ = Vendor.ORQ
WINDOW = 61.0  # the budget's window: 60 s and a second of margin
BACKGROUND, INTERACTIVE = Priority.BACKGROUND, Priority.INTERACTIVE


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def budgets(limit: int | None, clock: Clock, reserve: float = 0.25, **more: int) -> Budgets:
    return Budgets(
        {ORQ: VendorLimits(limit, more.get("concurrency"))},
        interactive_reserve=reserve,
        clock=clock,
    )


async def granted(budget: Budgets, priority: Priority = INTERACTIVE) -> bool:
    try:
        await budget.take(ORQ, priority)
    except UpstreamBudgetExhaustedError as refused:
        assert refused.code == "UPSTREAM_BUDGET_EXHAUSTED"
        assert refused.retry_after is not None and refused.retry_after >= 1
        return False
    return True


steps = st.lists(
    st.tuples(st.floats(0, 20, allow_nan=False), st.sampled_from([BACKGROUND, INTERACTIVE])),
    max_size=120,
)


@settings(max_examples=60, deadline=None)
@given(
    limit=st.integers(1, 12),
    reserve=st.sampled_from([0.0, 0.25, 0.5, 1.0]),
    steps=steps,
)
def test_no_window_ever_holds_more_than_the_limit_and_background_keeps_out_of_the_reserve(
    limit: int, reserve: float, steps: list[tuple[float, Priority]]
) -> None:
    clock = Clock()
    budget = budgets(limit, clock, reserve)
    background_cap = limit - math.ceil(limit * reserve)
    grants: list[float] = []

    async def run() -> None:
        for pause, priority in steps:
            clock.now += pause
            in_window = [t for t in grants if t > clock.now - WINDOW]
            cap = background_cap if priority is BACKGROUND else limit
            ok = await granted(budget, priority)
            # granted exactly when the window has room for this priority
            assert ok == (len(in_window) < cap)
            if ok:
                grants.append(clock.now)

    asyncio.run(run())
    for t in grants:
        assert sum(1 for u in grants if t - WINDOW < u <= t) <= limit


async def test_the_window_rolls_a_call_comes_free_as_the_oldest_leaves() -> None:
    clock = Clock()
    budget = budgets(2, clock)
    assert await granted(budget)
    clock.now += 10
    assert await granted(budget)
    clock.now += 20
    with pytest.raises(UpstreamBudgetExhaustedError) as refused:
        await budget.take(ORQ, INTERACTIVE)
    assert refused.value.retry_after == math.ceil(WINDOW - 30)  # when the first leaves
    clock.now += WINDOW - 30
    assert await granted(budget)
    status = budget.status(ORQ)
    assert (status.limit, status.remaining, status.retry_after) == (2, 0, 10)
    assert status.deferred == {INTERACTIVE: 1}


async def test_without_a_limit_every_call_goes() -> None:
    budget = budgets(None, Clock())
    assert all([await granted(budget) for _ in range(500)])
    assert budget.status(ORQ).limit is None and budget.room(ORQ)


@pytest.mark.parametrize(
    ("status", "headers", "quiet"),
    [
        (429, {"Retry-After": "30"}, 30),
        (429, {"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, None),  # a date long past
        (429, {"X-RateLimit-Reset": "1700000045"}, 45),  # a Unix time
        (429, {"X-RateLimit-Reset": "12"}, 12),  # seconds
        (429, {}, 10),  # no hint: the default
        (200, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1700000020"}, 20),
        (200, {"X-RateLimit-Remaining": "3", "X-RateLimit-Reset": "1700000020"}, None),
        (429, {"Retry-After": "99999999"}, 3600),  # believed up to an hour
        (429, {"Retry-After": "soon"}, 10),
    ],
)
async def test_the_vendor_asks_for_silence_and_nothing_goes_until_it_ends(
    status: int, headers: dict[str, str], quiet: float | None
) -> None:
    clock = Clock()
    budget = budgets(None, clock)
    await budget.learn(ORQ, status, headers)
    assert budget.status(ORQ).rate_limited == (1 if status == 429 else 0)
    if not quiet:
        assert await granted(budget)
        return
    assert not await granted(budget) and not await granted(budget, BACKGROUND)
    clock.now += quiet - 0.5
    assert not await granted(budget)
    clock.now += 0.5
    assert await granted(budget)


async def test_a_lower_stated_limit_is_the_one_in_force() -> None:
    clock = Clock()
    budget = budgets(10, clock)
    await budget.learn(ORQ, 200, {"X-RateLimit-Limit": "3", "X-RateLimit-Remaining": "2"})
    assert [await granted(budget) for _ in range(4)] == [True, True, True, False]
    assert budget.status(ORQ).limit == 3
    # a higher one never raises the configured limit
    await budget.learn(ORQ, 200, {"X-RateLimit-Limit": "50"})
    assert budget.status(ORQ).limit == 10


async def test_calls_made_before_a_limit_was_stated_count_against_it() -> None:
    budget = budgets(None, Clock())
    for _ in range(3):
        assert await granted(budget)
    await budget.learn(ORQ, 200, {"X-RateLimit-Limit": "4"})
    assert [await granted(budget) for _ in range(2)] == [True, False]


async def test_background_never_waits_for_a_slot_and_interactive_goes_first() -> None:
    gate = PriorityGate(1)
    assert await gate.enter(INTERACTIVE)
    assert not await gate.enter(BACKGROUND)  # busy: refused at once
    waiting = asyncio.create_task(gate.enter(INTERACTIVE))
    await asyncio.sleep(0)
    assert not waiting.done()
    gate.leave()
    assert await waiting and gate.in_flight == 1
    assert not await gate.enter(BACKGROUND)
    gate.leave()
    assert gate.in_flight == 0 and await gate.enter(BACKGROUND)


async def test_a_cancelled_waiter_gives_its_slot_back() -> None:
    gate = PriorityGate(1)
    assert await gate.enter(INTERACTIVE)
    waiting = asyncio.create_task(gate.enter(INTERACTIVE))
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    gate.leave()
    assert gate.in_flight == 0


async def test_a_call_refused_for_a_slot_is_deferred_with_a_hint() -> None:
    budget = budgets(None, Clock(), concurrency=1)
    async with budget.call(ORQ, INTERACTIVE):
        assert budget.status(ORQ).in_flight == 1
        with pytest.raises(UpstreamBudgetExhaustedError) as refused:
            async with budget.call(ORQ, BACKGROUND):
                pass
    assert refused.value.retry_after == 1
    assert budget.status(ORQ).deferred == {BACKGROUND: 1}
    assert budget.status(ORQ).in_flight == 0


@pytest.mark.parametrize(
    ("bypass", "stale_if_refused", "stale"),
    [
        (False, False, True),  # an ordinary read (the poller too): the last good page
        (True, True, True),  # `fresh: true` of a GraphQL request: the last good page
        (True, False, False),  # a bulk or background read asking the vendor (export, sync)
    ],
)
async def test_a_refused_page_is_answered_stale_unless_the_reader_cannot_show_it(
    bypass: bool, stale_if_refused: bool, stale: bool
) -> None:
    clock = Clock()
    cache = PageCache(create_store(None), stale_if_error=300, clock=clock)
    good = SourcePage((), None, total=7)

    async def fetched() -> SourcePage:
        return good

    async def refused() -> SourcePage:
        raise UpstreamBudgetExhaustedError(ORQ, "spent", retry_after=5)

    await cache.get_or_fetch("k", fetched, ttl=10)
    clock.now += 60  # expired, within stale_if_error
    read = cache.get_or_fetch(
        "k", refused, ttl=10, bypass=bypass, stale_if_refused=stale_if_refused
    )
    if not stale:
        with pytest.raises(UpstreamBudgetExhaustedError):
            await read
        return
    result = await read
    assert result.stale and result.page == good
    assert isinstance(result.error, UpstreamBudgetExhaustedError)
