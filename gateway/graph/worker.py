"""Parsing and validating a new document, off the event loop.

Parsing costs about 20 µs a token and validation several times that (measured on the CI
machine: a 2,000-token document took 40 ms to parse and 280 ms to validate), so one new
document could hold the event loop, and every other request with it, for a third of a
second. Both run instead on one worker thread: the loop gets the interpreter back at least
every ``sys.getswitchinterval()`` (5 ms) while the worker runs, and with a single worker a
flood of new documents queues there instead of crowding the loop. Documents seen before
never come here: their parse is cached and their validity remembered.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


@functools.cache
def _worker() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="graphql-documents")


async def off_loop(call: Callable[[], T]) -> T:
    """``call()`` on the document worker; a caller that gives up leaves it to finish."""
    return await asyncio.get_running_loop().run_in_executor(_worker(), call)
