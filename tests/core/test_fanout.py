"""Asking several vendors at once: the call expected to take longest leaves first, alone,
and every caller still gets each call's own result in the order it gave them."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.core.fanout import slowest_first

HOPS = 12
"""Awaits a call passes before its request is written (cache, tasks, transport, locks)."""

expectations = st.lists(st.sampled_from([0.0, 0.02, 0.05, 0.08, 0.12]), min_size=1, max_size=8)


@given(expected=expectations, failing=st.sets(st.integers(0, 7)))
async def test_every_call_s_result_or_error_comes_back_in_the_order_given(
    expected: list[float], failing: set[int]
) -> None:
    async def call(n: int) -> int:
        await asyncio.sleep(0)
        if n in failing:
            raise ValueError(n)
        return n

    results = await slowest_first([(e, call(n)) for n, e in enumerate(expected)])
    for n, result in enumerate(results):
        if n in failing:
            assert isinstance(result, ValueError) and result.args == (n,)
        else:
            assert result == n


@given(expected=expectations.filter(lambda e: max(e) > 0))
async def test_the_slowest_call_is_on_the_wire_before_another_starts(
    expected: list[float],
) -> None:
    events: list[tuple[str, int]] = []

    async def call(n: int) -> None:
        events.append(("start", n))
        for _ in range(HOPS):
            await asyncio.sleep(0)
        events.append(("written", n))
        await asyncio.sleep(0.001)  # the vendor's answer

    # A head start far longer than the twelve steps take, however loaded the machine: the
    # first call is done (answered) long before it ends, which ends it.
    await slowest_first([(e, call(n)) for n, e in enumerate(expected)], head_start=5.0)
    slowest = expected.index(max(expected))  # the first of equals, as given
    starts = [n for kind, n in events if kind == "start"]
    assert starts[0] == slowest
    # Longest expected first, ties in the order given.
    assert starts == sorted(range(len(expected)), key=lambda n: -expected[n])
    if len(expected) > 1:
        assert events.index(("written", slowest)) < events.index(("start", starts[1]))


async def test_a_slowest_call_answered_at_once_holds_nobody_back() -> None:
    """From the cache, the slowest call is done before its head start ends: the others
    start then, not a head start later (a minute here: the test would time out)."""

    async def cached() -> str:
        return "hit"

    async def call() -> str:
        await asyncio.sleep(0)
        return "called"

    async with asyncio.timeout(30):
        results = await slowest_first([(0.02, call()), (0.12, cached())], head_start=60)
    assert results == ["called", "hit"]


async def test_cancelled_during_the_head_start_leaves_nothing_running() -> None:
    cancelled = asyncio.Event()

    async def slow() -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async def never_started() -> None:  # pragma: no cover - closed unstarted
        raise AssertionError("started after its caller was cancelled")

    fan_out = asyncio.ensure_future(
        slowest_first([(0.12, slow()), (0.02, never_started())], head_start=60)
    )
    await asyncio.sleep(0.01)
    fan_out.cancel()
    with pytest.raises(asyncio.CancelledError):
        await fan_out
    await asyncio.wait_for(cancelled.wait(), 5)
