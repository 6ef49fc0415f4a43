"""An answer on time (``graphql.answer_within``): a vendor call that outlives the answer it
was made for is left to finish in the background, so its page reaches the cache and the next
request is answered from there.

A request does not wait for a late call: ``Upstream.fetch_page`` answers the vendor's part
from the cache (stale) or names the vendor ``UPSTREAM_SLOW``. The call itself goes on, in a
task of its own, still bounded by the request's hard deadline (``graphql.request_deadline``)
and by the vendor's per-call timeout. A vendor that hangs must not pile up calls, so each
vendor keeps at most ``LATE_CALLS_PER_VENDOR`` of them, one per cache key; a late call past
that bound, or one that merely waits on a call already kept (single-flight's joiners), is
cancelled. Cancelling is safe at any point: the guard transport
(``gateway.vendors.transport``) never lets it reach httpcore mid-exchange.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from gateway.core.records import Vendor

T = TypeVar("T")

LATE_CALLS_PER_VENDOR = 16
"""Late calls kept per vendor: two whole-listing batches (``merge.FULL_READ_CONCURRENCY``
pages each), enough for a cold listing to fill the cache over a request or two, few enough
that a hanging vendor holds a bounded number of connections."""


class LateCalls:
    """The calls that outlived their answer's ``answer_within``, finishing in the background."""

    def __init__(self, per_vendor: int = LATE_CALLS_PER_VENDOR) -> None:
        self.per_vendor = per_vendor
        self.cancelled = 0
        """Late calls cancelled because the vendor had ``per_vendor`` running already."""
        self._running: dict[Vendor, dict[str, asyncio.Task[Any]]] = {v: {} for v in Vendor}

    def running(self, vendor: Vendor) -> int:
        """How many of ``vendor``'s late calls are still going on."""
        return len(self._running[vendor])

    async def within(
        self,
        vendor: Vendor,
        key: str,
        call: Callable[[], Awaitable[T]],
        seconds: float,
        deadline: float | None,
    ) -> T | None:
        """What ``call`` returns (or raises) if it is done within ``seconds``; None if not,
        the call then going on in the background (or cancelled: see the module docstring).
        ``deadline`` (seconds from now) bounds the call wherever it runs: ``TimeoutError``."""

        async def bounded() -> T:
            async with asyncio.timeout(deadline):
                return await call()

        task = asyncio.create_task(bounded())
        try:
            done, _ = await asyncio.wait((task,), timeout=max(0.0, seconds))
        except asyncio.CancelledError:  # the request itself was cancelled: so is its call
            task.cancel()
            task.add_done_callback(retrieve_outcome)
            raise
        if done:
            return task.result()
        self._keep(vendor, key, task)
        return None

    def _keep(self, vendor: Vendor, key: str, task: asyncio.Task[Any]) -> None:
        running = self._running[vendor]
        if key in running or len(running) >= self.per_vendor:
            # A call for this page is kept already (ours only waits on it), or too many are.
            if key not in running:
                self.cancelled += 1
            task.cancel()
            task.add_done_callback(retrieve_outcome)
            return
        running[key] = task

        def finished(done: asyncio.Task[Any]) -> None:
            if running.get(key) is done:
                del running[key]
            retrieve_outcome(done)

        task.add_done_callback(finished)

    async def aclose(self) -> None:
        """Cancel every late call (at shutdown, before the clients they use are closed)."""
        tasks = [t for running in self._running.values() for t in running.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def retrieve_outcome(task: asyncio.Task[Any]) -> None:
    """Take a finished task's outcome that no one may await (a late call, a read ahead, an
    exchange its caller gave up on), so asyncio does not log it as never retrieved: a
    failure is recorded where it happened (``VendorHealth``)."""
    if not task.cancelled():
        task.exception()
