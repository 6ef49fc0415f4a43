"""Named mutual exclusion for writes: in this process always, across replicas with Redis.

A tracker's read-then-PUT and an idempotent write must not interleave with another one on
the same name, whichever replica runs it. Each name first takes an asyncio lock here (so
one process never races itself or polls Redis for its own lock), then, with Redis, redis-py's
lock: ``SET NX PX`` with a random token, released by a script that deletes only its own
token. The lease is renewed while the holder works, so a slow write keeps its lock, and a
replica that dies frees it when the lease runs out.

With Redis unreachable the process lock still holds (as without Redis); the store logs that
it is degraded. A lock that stays taken longer than ``wait`` answers ``LockBusyError``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator, Callable

from redis.asyncio import Redis
from redis.asyncio.lock import Lock as RedisLock
from redis.exceptions import LockError, RedisError

from gateway.core.errors import GatewayError

logger = logging.getLogger("gateway.cache")

LEASE_SECONDS = 10.0
"""How long a replica that died keeps others waiting; renewed every third of it."""
WAIT_SECONDS = 30.0
POLL_SECONDS = 0.01
BUSY = "another write to the same record (or with the same idempotency key) is under way; retry"


class LockBusyError(GatewayError):
    code = "CONFLICT"


def lock_name(kind: str, *parts: str) -> str:
    """``kind:<digest of parts>``: ids come from callers, so their length and bytes never
    reach a Redis key as they are."""
    digest = hashlib.sha256("\0".join(parts).encode(errors="surrogatepass")).hexdigest()
    return f"{kind}:{digest[:32]}"


class Locks:
    def __init__(
        self,
        prefix: str,
        redis: Redis | None = None,
        *,
        lease: float = LEASE_SECONDS,
        wait: float = WAIT_SECONDS,
        on_error: Callable[[BaseException], None] | None = None,
    ) -> None:
        self.prefix = prefix
        self.redis = redis
        self.lease = lease
        self.wait = wait
        self.on_error = on_error
        self._local: dict[str, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, name: str, wait: float | None = None) -> AsyncIterator[None]:
        """Hold ``name`` for the body, here and (with Redis) in every replica."""
        lock, users = self._local.get(name) or (asyncio.Lock(), 0)
        self._local[name] = (lock, users + 1)
        try:
            async with asyncio.timeout(self.wait if wait is None else wait):
                await lock.acquire()
        except BaseException as exc:  # also cancelled: the name must not stay registered
            self._release_local(name)
            if isinstance(exc, TimeoutError):
                raise LockBusyError(BUSY) from None
            raise
        try:
            async with self._remote(name, self.wait if wait is None else wait):
                yield
        finally:
            lock.release()
            self._release_local(name)

    def _release_local(self, name: str) -> None:
        lock, users = self._local[name]
        if users <= 1:
            del self._local[name]
        else:
            self._local[name] = (lock, users - 1)

    @contextlib.asynccontextmanager
    async def _remote(self, name: str, wait: float) -> AsyncIterator[None]:
        if self.redis is None:
            yield
            return
        remote = self.redis.lock(
            f"{self.prefix}:lock:{name}",
            timeout=self.lease,
            sleep=POLL_SECONDS,
            blocking_timeout=wait,
            thread_local=False,
        )
        acquired: bool | None
        try:
            acquired = await remote.acquire()
        except RedisError as exc:
            self._failed(exc)
            acquired = None
        if acquired is None:
            yield  # no Redis: nobody else can see a lock either; the process lock holds
            return
        if not acquired:
            raise LockBusyError(BUSY)
        renew = asyncio.create_task(self._renew(remote))
        try:
            yield
        finally:
            renew.cancel()  # not awaited: it only sleeps or renews, and must not delay this
            try:
                await remote.release()
            except LockError:  # the lease ran out (a stalled process): nothing left to free
                logger.warning("a write lock expired before its holder finished")
            except RedisError as exc:
                self._failed(exc)

    async def _renew(self, remote: RedisLock) -> None:
        """Extend the lease while the body runs (a PUT with retries may outlast one)."""
        while True:
            await asyncio.sleep(self.lease / 3)
            try:
                await remote.reacquire()
            except LockError:
                return  # lost: released by the holder or expired; release() says which
            except RedisError as exc:
                self._failed(exc)
                return

    def _failed(self, exc: BaseException) -> None:
        if self.on_error is not None:
            self.on_error(exc)
        else:
            logger.warning("lock backend failed (%s)", type(exc).__name__)
