"""Single-flight: identical concurrent calls make one call, whoever asks and from where.

Both caches use it: the page cache (one upstream fetch per page, here and across replicas)
and the whole-response cache (one execution per identical read, in this process).

- In this process a call under the same key joins the one under way and gets its result or
  its exception. A waiter that is cancelled (its client left, its deadline passed) stops
  waiting and nothing else: the flight goes on for the others. The flight runs in the task
  that started it, so that task's own cancellation (its request's deadline) ends it, as it
  would end a call made alone; the waiters then start again, one of them in the lead.
- Across replicas, when the store is shared and the caller says how to read a peer's result
  (``peer``): the leader takes a short lock key in the store (``SET NX``); a replica that
  finds it taken polls ``peer`` until the result appears or the lock goes, then calls on its
  own account. The store never raises: with it down, every replica calls for itself.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from gateway.core.store import Store

T = TypeVar("T")

DEFAULT_LOCK_SECONDS = 5.0
"""How long a replica waits for a peer's result (and a dead leader blocks the others)."""
POLL_SECONDS = 0.02


class SingleFlight(Generic[T]):
    def __init__(
        self,
        store: Store | None = None,
        *,
        stats: dict[str, int] | None = None,
        lock_seconds: float = DEFAULT_LOCK_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.lock_seconds = lock_seconds
        self.clock = clock
        self.stats = {} if stats is None else stats
        """``joins`` (in process) and ``remote_joins`` (a peer's result), counted here."""
        self.stats.update(joins=0, remote_joins=0)
        self._running: dict[str, asyncio.Future[T]] = {}

    def running(self, key: str) -> bool:
        """Whether a call for ``key`` is under way in this process."""
        return key in self._running

    async def run(
        self,
        key: str,
        call: Callable[[], Awaitable[T]],
        *,
        peer: Callable[[], Awaitable[T | None]] | None = None,
    ) -> T:
        """The result of ``call``, or of an identical one under way (here, or with ``peer``
        in a replica sharing the store)."""
        while (flight := self._running.get(key)) is not None:
            self.stats["joins"] += 1
            try:
                # shield: this waiter's cancellation must not cancel the flight.
                return await asyncio.shield(flight)
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise  # this waiter was cancelled itself
                # the leader was cancelled (its own deadline): start again
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._running[key] = future
        try:
            result = await self._lead(key, call, peer)
        except asyncio.CancelledError:
            future.cancel()
            raise
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: joiners re-raise it; nobody else must log it
            raise
        else:
            future.set_result(result)
            return result
        finally:
            self._running.pop(key, None)

    async def _lead(
        self,
        key: str,
        call: Callable[[], Awaitable[T]],
        peer: Callable[[], Awaitable[T | None]] | None,
    ) -> T:
        store = self.store
        if peer is None or store is None or not store.shared:
            return await call()
        lock_key = f"{key}:lock"
        if not await store.add(lock_key, uuid.uuid4().hex, ttl=self.lock_seconds):
            found = await self._wait_for_peer(store, lock_key, peer)
            if found is not None:
                self.stats["remote_joins"] += 1
                return found
            return await call()
        try:
            found = await peer()  # a peer may have finished between our read and our lock
            if found is not None:
                self.stats["remote_joins"] += 1
                return found
            return await call()  # its result is stored before the lock goes
        finally:
            await store.delete(lock_key)

    async def _wait_for_peer(
        self, store: Store, lock_key: str, peer: Callable[[], Awaitable[T | None]]
    ) -> T | None:
        """Another replica leads: poll for its result, up to the lock time."""
        deadline = self.clock() + self.lock_seconds
        while self.clock() < deadline:
            await asyncio.sleep(POLL_SECONDS)
            found = await peer()
            if found is not None:
                return found
            if not await store.exists(lock_key):
                # Released: the result was stored just before, or the peer failed.
                return await peer()
        return None
