"""The key-value store under the caches: memory or Redis, typed values, and it never raises.

Every cache above (pages, persisted queries, idempotent writes, response-cache generations)
reads and writes through a ``Store``. A store that fails (Redis down) answers "nothing
there" and logs once, so the gateway keeps serving without a cache and uses it again as soon
as it answers. A value read from Redis that does not decode as the kind asked for is a miss
too, counted in ``stats["undecodable"]`` (``gateway_cache_undecodable_total``); nothing read
is ever executed (see ``gateway.core.codec``).
"""

from __future__ import annotations

import abc
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable
from contextlib import AbstractAsyncContextManager
from typing import Any, TypeVar

import msgspec
from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import RedisError

from gateway.core.codec import KEY_PREFIX, Codec, DecodeError
from gateway.core.locks import Locks
from gateway.core.memory import DEFAULT_MAX_BYTES, DEFAULT_MAX_ENTRIES, BoundedMemoryCache

logger = logging.getLogger("gateway.cache")

REDIS_POOL_SIZE = 64
REDIS_TIMEOUT_SECONDS = 2.0
T = TypeVar("T")


class Store(abc.ABC):
    shared: bool
    """True when other replicas see the same entries (Redis)."""

    def __init__(self, locks: Locks) -> None:
        self.locks = locks
        self.stats: dict[str, int] = {"errors": 0, "undecodable": 0}
        self._degraded = False

    @property
    def degraded(self) -> bool:
        return self._degraded

    def lock(self, name: str, wait: float | None = None) -> AbstractAsyncContextManager[None]:
        """Hold ``name`` in this process and, on a shared store, in every replica."""
        return self.locks.hold(name, wait)

    def _encode(self, codec: Codec[T, Any], value: T) -> bytes | None:
        try:
            return codec.encode(value)
        except (msgspec.EncodeError, TypeError, ValueError, OverflowError) as exc:
            self.stats["errors"] += 1
            logger.warning("a cache value could not be encoded (%s); not cached", exc)
            return None

    @abc.abstractmethod
    async def get(self, key: str, codec: Codec[T, Any]) -> T | None: ...

    @abc.abstractmethod
    async def set(self, key: str, value: T, codec: Codec[T, Any], ttl: float) -> None: ...

    @abc.abstractmethod
    async def set_capped(
        self, key: str, value: T, codec: Codec[T, Any], ttl: float, *, index: str, cap: int
    ) -> None:
        """Set ``key`` and keep at most ``cap`` keys in ``index``, dropping the oldest."""

    @abc.abstractmethod
    async def add(self, key: str, token: str, ttl: float) -> bool:
        """Set ``key`` only if absent (a lock). True also when the store cannot answer:
        nobody else can hold a lock in a store that is down."""

    @abc.abstractmethod
    async def delete(self, key: str) -> None: ...

    @abc.abstractmethod
    async def exists(self, key: str) -> bool | None:
        """None when the store cannot answer."""

    @abc.abstractmethod
    async def increment(self, key: str) -> None: ...

    @abc.abstractmethod
    async def counters(self, keys: list[str]) -> list[int]:
        """Counters written by ``increment`` (0 when absent or unreadable)."""

    async def ping(self) -> bool:
        return True

    def bytes_held(self) -> int | None:
        """What this process holds (entries' encoded sizes); None for a shared store."""
        return None

    async def close(self) -> None:
        return None


class MemoryStore(Store):
    """This process only. Values stay objects; their encoded length is their size."""

    shared = False

    def __init__(
        self, max_entries: int = DEFAULT_MAX_ENTRIES, max_bytes: int = DEFAULT_MAX_BYTES
    ) -> None:
        super().__init__(Locks(KEY_PREFIX))
        self.memory = BoundedMemoryCache(max_entries=max_entries, max_bytes=max_bytes)
        self._indexes: dict[str, OrderedDict[str, None]] = {}

    async def get(self, key: str, codec: Codec[T, Any]) -> T | None:
        value: Any = self.memory.get(key)
        return value  # type: ignore[no-any-return]

    async def set(self, key: str, value: T, codec: Codec[T, Any], ttl: float) -> None:
        data = self._encode(codec, value)
        if data is not None:
            self.memory.set(key, value, size=len(key) + len(data), ttl=ttl)

    async def set_capped(
        self, key: str, value: T, codec: Codec[T, Any], ttl: float, *, index: str, cap: int
    ) -> None:
        await self.set(key, value, codec, ttl)
        keys = self._indexes.setdefault(index, OrderedDict())
        keys[key] = None
        keys.move_to_end(key)
        while len(keys) > cap:
            oldest, _ = keys.popitem(last=False)
            self.memory.delete(oldest)

    async def add(self, key: str, token: str, ttl: float) -> bool:
        return self.memory.add(key, token, size=len(key) + len(token), ttl=ttl)

    async def delete(self, key: str) -> None:
        self.memory.delete(key)

    async def exists(self, key: str) -> bool | None:
        return self.memory.exists(key)

    async def increment(self, key: str) -> None:
        self.memory.increment(key)

    async def counters(self, keys: list[str]) -> list[int]:
        return self.memory.counters(keys)

    def bytes_held(self) -> int | None:
        return self.memory.bytes


class RedisStore(Store):
    """Shared by every replica using the same Redis. Values are bytes of ``codec``s."""

    shared = True

    def __init__(self, url: str) -> None:
        # A burst waits for a free connection instead of failing with "too many".
        pool = BlockingConnectionPool.from_url(
            url,
            max_connections=REDIS_POOL_SIZE,
            timeout=REDIS_TIMEOUT_SECONDS,
            socket_timeout=REDIS_TIMEOUT_SECONDS,
            socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
        )
        self.client = Redis(connection_pool=pool)
        super().__init__(Locks(KEY_PREFIX, self.client, on_error=self._mark_degraded))

    async def _call(self, operation: Awaitable[Any]) -> Any:
        try:
            result = await operation
        except (RedisError, OSError, TimeoutError) as exc:
            self._mark_degraded(exc)
            return None
        if self._degraded:
            self._degraded = False
            logger.warning("cache backend is answering again")
        return result

    def _mark_degraded(self, exc: BaseException) -> None:
        self.stats["errors"] += 1
        if not self._degraded:
            self._degraded = True
            logger.warning(
                "cache backend failed (%s); serving without cache until it returns",
                type(exc).__name__,
            )

    def _undecodable(self) -> None:
        """Counted always; logged the first time and every 1,000th, so values planted in
        bulk cannot flood the log (the count is ``gateway_cache_undecodable_total``)."""
        self.stats["undecodable"] += 1
        if self.stats["undecodable"] % 1000 == 1:
            logger.warning(
                "ignored cache values not in this gateway's format (%d so far)",
                self.stats["undecodable"],
            )

    def _decode(self, data: Any, codec: Codec[T, Any]) -> T | None:
        if not isinstance(data, bytes):
            return None
        try:
            return codec.decode(data)
        except (*DecodeError, ValueError, TypeError):
            self._undecodable()
            return None

    async def get(self, key: str, codec: Codec[T, Any]) -> T | None:
        return self._decode(await self._call(self.client.get(key)), codec)

    async def set(self, key: str, value: T, codec: Codec[T, Any], ttl: float) -> None:
        data = self._encode(codec, value)
        if data is not None:
            await self._call(self.client.set(key, data, px=max(1, round(ttl * 1000))))

    async def set_capped(
        self, key: str, value: T, codec: Codec[T, Any], ttl: float, *, index: str, cap: int
    ) -> None:
        data = self._encode(codec, value)
        if data is None:
            return
        milliseconds = max(1, round(ttl * 1000))
        pipe = self.client.pipeline(transaction=True)
        pipe.set(key, data, px=milliseconds)
        pipe.zadd(index, {key: time.time()})
        pipe.pexpire(index, milliseconds)
        pipe.zcard(index)
        answers = await self._call(pipe.execute())
        if answers is None or not isinstance(answers[-1], int) or answers[-1] <= cap:
            return
        dropped = await self._call(self.client.zpopmin(index, answers[-1] - cap))
        names = [name for name, _score in dropped or ()]
        if names:
            await self._call(self.client.delete(*names))

    async def add(self, key: str, token: str, ttl: float) -> bool:
        try:
            added = await self.client.set(key, token, nx=True, px=max(1, round(ttl * 1000)))
        except (RedisError, OSError, TimeoutError) as exc:
            self._mark_degraded(exc)
            return True
        return bool(added)

    async def delete(self, key: str) -> None:
        await self._call(self.client.delete(key))

    async def exists(self, key: str) -> bool | None:
        found = await self._call(self.client.exists(key))
        return None if found is None else bool(found)

    async def increment(self, key: str) -> None:
        await self._call(self.client.incr(key))

    async def counters(self, keys: list[str]) -> list[int]:
        values = await self._call(self.client.mget(keys))
        if values is None:
            return [0] * len(keys)
        return [self._counter(value) for value in values]

    def _counter(self, value: Any) -> int:
        if value is None:
            return 0
        try:
            return int(value)
        except (TypeError, ValueError):
            self._undecodable()
            return 0

    async def ping(self) -> bool:
        return await self._call(self.client.ping()) is not None

    async def close(self) -> None:
        with contextlib.suppress(RedisError, OSError):
            await self.client.aclose()
            await self.client.connection_pool.disconnect()  # ours: aclose leaves it open


def create_store(
    url: str | None,
    max_entries: int = DEFAULT_MAX_ENTRIES,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Store:
    """``None`` or ``memory://`` for this process only; ``redis://host:port/db`` (or
    ``rediss://``) to share with every replica."""
    if not url or url.startswith("memory://"):
        return MemoryStore(max_entries, max_bytes)
    return RedisStore(url)
