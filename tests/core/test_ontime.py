"""``LateCalls``: what happens to a call its answer stopped waiting for (real asyncio, calls
held on events; ``test_answer_within.py`` has the same over HTTP)."""

from __future__ import annotations

import asyncio

from gateway.core.ontime import LateCalls
from gateway.core.records import Vendor

ORQ = Vendor.ORQ


class Held:
    """A call that waits until released, and says how it ended."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.ended: str | None = None

    async def __call__(self) -> str:
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.ended = "cancelled"
            raise
        self.ended = "done"
        return "page"


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def test_a_call_done_in_time_is_answered_and_a_late_one_goes_on() -> None:
    async def run() -> None:
        late = LateCalls(per_vendor=2)
        quick = Held()
        quick.release.set()
        assert await late.within(ORQ, "k0", quick, 10, None) == "page"
        assert late.running(ORQ) == 0
        held = Held()
        assert await late.within(ORQ, "k1", held, 0, None) is None  # not waited for
        assert late.running(ORQ) == 1 and held.ended is None
        held.release.set()
        await settle()
        assert held.ended == "done" and late.running(ORQ) == 0

    asyncio.run(run())


def test_late_calls_are_bounded_per_vendor_and_one_per_page() -> None:
    async def run() -> None:
        late = LateCalls(per_vendor=2)
        calls = {key: Held() for key in ("a", "b", "c")}
        for key, call in calls.items():
            assert await late.within(ORQ, key, call, 0, None) is None
        await settle()
        assert late.running(ORQ) == 2 and late.cancelled == 1
        assert calls["c"].ended == "cancelled"  # over the bound
        again = Held()
        assert await late.within(ORQ, "a", again, 0, None) is None
        await settle()
        assert again.ended == "cancelled"  # page "a" is being read already
        assert late.running(Vendor.XPANDER) == 0  # another vendor's bound is its own
        for call in calls.values():
            call.release.set()
        await settle()
        assert late.running(ORQ) == 0
        assert [calls[k].ended for k in "ab"] == ["done", "done"]

    asyncio.run(run())


def test_the_hard_deadline_still_ends_a_late_call() -> None:
    async def run() -> None:
        late = LateCalls()
        held = Held()
        assert await late.within(ORQ, "k", held, 0, 0.01) is None
        while late.running(ORQ):
            await asyncio.sleep(0.01)
        assert held.ended == "cancelled"

    asyncio.run(run())


def test_shutdown_cancels_every_late_call() -> None:
    async def run() -> None:
        late = LateCalls()
        held = [Held() for _ in range(3)]
        for n, call in enumerate(held):
            await late.within(ORQ, f"k{n}", call, 0, None)
        await late.aclose()
        assert [c.ended for c in held] == ["cancelled"] * 3

    asyncio.run(run())
