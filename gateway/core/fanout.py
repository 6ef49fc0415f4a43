"""Asking several vendors at once, the slowest first.

An answer from several vendors is done when the slowest one has answered, so its call should
leave first. Starting every call at once is not enough for that: each call passes through a
dozen awaits before its request is on the wire (cache, single-flight, the on-time task, the
guard transport's task, httpcore's locks), and asyncio runs every ready call's next step in
turn, so the request of the call started first is written only after every other call has
been prepared too. With the default page of the README example that is 13 calls and about
6 ms, all of it added to the slowest vendor's answer.

``slowest_first`` starts the call expected to take longest (``VendorHealth.typical_seconds``)
alone and gives it ``HEAD_START`` seconds, or less if it is done sooner (an answer from the
cache), before starting the others. The others lose that much, but they are the faster ones:
they have more slack than that. Figure: ``python -m bench total`` (2026-11-29, quiet machine):
ratio to the slowest vendor alone 1.075 and 1.078 without the head start, 1.010 and 1.010
with it (two runs each).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from typing import TypeVar

T = TypeVar("T")

HEAD_START = 0.002
"""Seconds the slowest call runs alone: long enough to write its request (under 1 ms of
work on a quiet machine), short against any vendor's latency."""


async def slowest_first(
    calls: Sequence[tuple[float, Awaitable[T]]], head_start: float = HEAD_START
) -> list[T | BaseException]:
    """Each call's result or exception, in the order given. ``calls`` are ``(expected
    seconds, awaitable)``; they are started longest expected first, and the first of them
    ``head_start`` before the others (see the module docstring)."""
    order = sorted(range(len(calls)), key=lambda i: calls[i][0], reverse=True)
    started = [calls[i][1] for i in order]
    if len(calls) > 1 and calls[order[0]][0] > 0:  # else one call, or none timed yet
        first = asyncio.ensure_future(started[0])
        try:
            await asyncio.wait((first,), timeout=head_start)
        except asyncio.CancelledError:
            first.cancel()
            for call in started[1:]:
                _close(call)
            raise
        started[0] = first
    results = await asyncio.gather(*started, return_exceptions=True)
    placed = dict(zip(order, results, strict=True))
    return [placed[i] for i in range(len(calls))]


def _close(call: Awaitable[object]) -> None:
    """A coroutine never started: closed, so it is not reported as never awaited."""
    close = getattr(call, "close", None)
    if close is not None:
        close()
