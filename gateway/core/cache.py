"""The upstream page cache: aiocache underneath, with the policies a gateway needs on top.

- TTL per vendor; entries are kept ``stale_if_error`` seconds past expiry so a failing
  vendor can still be answered from its last good page (marked stale).
- Single-flight: identical concurrent fetches join one upstream call in this process and,
  on a shared backend, across replicas (a short lock key, then the others poll the entry).
- Generations: each vendor's keys carry a generation number kept in the backend, so a
  write (``updateTracker``) makes every older entry unreachable in every replica at once.
- A backend that fails (Redis down) degrades to fetching without a cache, logs once, and
  is used again as soon as it answers.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import pickle
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

from aiocache import RedisCache
from aiocache.base import BaseCache
from aiocache.serializers import PickleSerializer
from redis.asyncio import BlockingConnectionPool

from gateway.core.errors import BadInputError, UpstreamError
from gateway.core.memory import DEFAULT_MAX_ENTRIES, BoundedMemoryCache
from gateway.core.records import Vendor
from gateway.vendors.base import SourcePage

logger = logging.getLogger("gateway.cache")

KEY_PREFIX = "tg:v1"
GENERATION_KEYS = {vendor: f"{KEY_PREFIX}:gen:{vendor.value}" for vendor in Vendor}
REDIS_POOL_SIZE = 64
REDIS_TIMEOUT_SECONDS = 2.0
IDEMPOTENCY_TTL_SECONDS = 24 * 3600.0
T = TypeVar("T")
DEFAULT_LOCK_SECONDS = 5.0
LOCK_POLL_SECONDS = 0.02


@dataclass(frozen=True, slots=True)
class CachedPage:
    page: SourcePage
    fetched_at: float
    expires_at: float


@dataclass(frozen=True, slots=True)
class PageResult:
    """A page and where it came from, so the graph can say how fresh each vendor's part is."""

    page: SourcePage
    fetched_at: float
    from_cache: bool
    stale: bool


def create_backend(url: str | None, max_entries: int = DEFAULT_MAX_ENTRIES) -> BaseCache:
    """``None`` or ``memory://`` for this process only; ``redis://host:port/db`` to share."""
    if not url or url.startswith("memory://"):
        return BoundedMemoryCache(max_entries=max_entries, timeout=None)
    parts = urlsplit(url)
    backend = RedisCache(
        endpoint=parts.hostname or "127.0.0.1",
        port=parts.port or 6379,
        db=int(parts.path.strip("/") or 0),
        password=parts.password,
        ssl=parts.scheme == "rediss",
        serializer=PickleSerializer(),
        timeout=REDIS_TIMEOUT_SECONDS,
        pool_max_size=REDIS_POOL_SIZE,
        # A burst waits for a free connection instead of failing with "too many".
        connection_pool_class=BlockingConnectionPool,
        connection_pool_kwargs={"timeout": REDIS_TIMEOUT_SECONDS},
    )
    return backend


def _counter(value: object) -> int | None:
    """Counters are written by INCR as plain integers, not through the serializer."""
    return None if value is None else int(value)  # type: ignore[call-overload]


def fingerprint(secret: str | None) -> str:
    """A credential's share of a cache key: a digest, never the secret."""
    if not secret:
        return "anon"
    return hashlib.sha256(b"task-gateway:credential:" + secret.encode()).hexdigest()[:20]


class PageCache:
    def __init__(
        self,
        backend: BaseCache,
        *,
        shared: bool,
        stale_if_error: float = 300.0,
        lock_seconds: float = DEFAULT_LOCK_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.backend = backend
        self.shared = shared
        self.stale_if_error = stale_if_error
        self.lock_seconds = lock_seconds
        self.clock = clock
        self._inflight: dict[str, asyncio.Future[PageResult]] = {}
        self._degraded = False
        self._idem_locks: dict[str, asyncio.Lock] = {}
        self.stats: dict[str, int] = {
            "hits": 0,
            "misses": 0,
            "stale": 0,
            "joins": 0,
            "remote_joins": 0,
            "errors": 0,
        }

    # -- backend access that never raises -------------------------------------------------
    async def _call(self, op: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any) -> Any:
        try:
            result = await op(*args, **kwargs)
        except (TimeoutError, OSError, ConnectionError, pickle.PickleError) as exc:
            self._mark_degraded(exc)
            return None
        except Exception as exc:  # redis raises its own tree; all mean "no cache now"
            if exc.__class__.__module__.startswith(("redis", "aiocache")):
                self._mark_degraded(exc)
                return None
            raise
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

    @property
    def degraded(self) -> bool:
        return self._degraded

    async def ping(self) -> bool:
        ok = await self._call(self.backend.exists, f"{KEY_PREFIX}:ping")
        return ok is not None

    # -- generations ----------------------------------------------------------------------
    async def generations(self, vendors: Iterable[Vendor]) -> list[int]:
        """Every vendor's generation, in one read: every response-cache lookup asks, so the
        memory backend is read directly and Redis with one MGET."""
        keys = [GENERATION_KEYS[v] for v in vendors]
        if isinstance(self.backend, BoundedMemoryCache):
            stored = self.backend._cache
            return [int(stored.get(key, 0)) for key in keys]
        values = await self._call(self.backend.multi_get, keys, loads_fn=_counter)
        return [int(value or 0) for value in values] if values is not None else [0] * len(keys)

    async def generation(self, vendor: Vendor) -> int:
        return (await self.generations((vendor,)))[0]

    async def bump_generation(self, vendor: Vendor) -> None:
        """Make every cached page of ``vendor`` unreachable, in every replica sharing it."""
        await self._call(self.backend.increment, GENERATION_KEYS[vendor], 1)

    @staticmethod
    def page_key(vendor: Vendor, generation: int, credential: str, request: str) -> str:
        digest = hashlib.sha256(request.encode()).hexdigest()[:32]
        return f"{KEY_PREFIX}:{vendor.value}:{generation}:{credential}:{digest}"

    # -- the read path --------------------------------------------------------------------
    async def get_or_fetch(
        self,
        key: str,
        fetch: Callable[[], Awaitable[SourcePage]],
        *,
        ttl: float,
        bypass: bool = False,
        store: bool = True,
    ) -> PageResult:
        entry: CachedPage | None = None
        if not bypass and ttl > 0:
            # A fetch already under way here answers without a round trip to the backend.
            joined = await self._join(key)
            if joined is not None:
                return joined
            entry = await self._call(self.backend.get, key)
            if entry is not None and entry.expires_at > self.clock():
                self.stats["hits"] += 1
                return PageResult(entry.page, entry.fetched_at, from_cache=True, stale=False)
        joined = await self._join(key)
        if joined is not None:
            return joined
        future: asyncio.Future[PageResult] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            result = await self._fetch(
                key, fetch, ttl=ttl if store else 0, entry=entry, bypass=bypass
            )
        except asyncio.CancelledError:
            future.cancel()
            raise
        except BaseException as exc:
            if not future.done():
                future.set_exception(exc)
                future.exception()  # retrieved: joiners re-raise it; nobody else must log it
            raise
        else:
            future.set_result(result)
            return result
        finally:
            self._inflight.pop(key, None)

    async def _join(self, key: str) -> PageResult | None:
        """The result of this process's fetch of ``key`` already under way, if any."""
        joined = self._inflight.get(key)
        if joined is None:
            return None
        self.stats["joins"] += 1
        try:
            return await asyncio.shield(joined)
        except asyncio.CancelledError:
            # The owner gave up (its request's deadline); we were not cancelled ourselves,
            # so the caller fetches on its own account.
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise
            return None

    async def _fetch(
        self,
        key: str,
        fetch: Callable[[], Awaitable[SourcePage]],
        *,
        ttl: float,
        entry: CachedPage | None,
        bypass: bool,
    ) -> PageResult:
        lock_key = f"{key}:lock"
        token = uuid.uuid4().hex
        locked = False
        if self.shared and not bypass and ttl > 0:
            locked = await self._acquire(lock_key, token)
            if locked:
                # A peer may have stored the page between our read and our lock.
                latest: CachedPage | None = await self._call(self.backend.get, key)
                if latest is not None and latest.expires_at > self.clock():
                    await self._call(self.backend.delete, lock_key)
                    self.stats["remote_joins"] += 1
                    return PageResult(latest.page, latest.fetched_at, from_cache=True, stale=False)
            else:
                waited = await self._wait_for_peer(key)
                if waited is not None:
                    self.stats["remote_joins"] += 1
                    return PageResult(waited.page, waited.fetched_at, from_cache=True, stale=False)
        self.stats["misses"] += 1
        try:
            page = await fetch()
            now = self.clock()
            if ttl > 0:  # stored before the lock goes, so waiting replicas find it
                cached = CachedPage(page, now, now + ttl)
                await self._call(
                    self.backend.set, key, cached, ttl=max(1, round(ttl + self.stale_if_error))
                )
        except UpstreamError:
            if entry is None and not bypass:
                entry = await self._call(self.backend.get, key)
            if entry is not None and entry.expires_at + self.stale_if_error > self.clock():
                self.stats["stale"] += 1
                return PageResult(entry.page, entry.fetched_at, from_cache=True, stale=True)
            raise
        finally:
            if locked:
                await self._call(self.backend.delete, lock_key)
        return PageResult(page, now, from_cache=False, stale=False)

    async def _acquire(self, lock_key: str, token: str) -> bool:
        try:
            await self.backend.add(lock_key, token, ttl=self.lock_seconds)
        except ValueError:
            return False
        except Exception as exc:
            self._mark_degraded(exc)
            return True  # no backend: nobody else can hold the lock, fetch ourselves
        return True

    async def _wait_for_peer(self, key: str) -> CachedPage | None:
        """Another replica is fetching this page: poll for its entry, up to the lock time."""
        deadline = self.clock() + self.lock_seconds
        while self.clock() < deadline:
            await asyncio.sleep(LOCK_POLL_SECONDS)
            entry: CachedPage | None = await self._call(self.backend.get, key)
            if entry is not None and entry.expires_at > self.clock():
                return entry
            if not await self._call(self.backend.exists, f"{key}:lock"):
                # Released: the page was stored just before, or the peer failed.
                entry = await self._call(self.backend.get, key)
                return entry if entry is not None and entry.expires_at > self.clock() else None
        return None

    # -- idempotent writes ----------------------------------------------------------------
    async def idempotent(
        self,
        idempotency_key: str,
        request: str,
        write: Callable[[], Awaitable[T]],
        ttl: float = IDEMPOTENCY_TTL_SECONDS,
    ) -> T:
        """Run ``write`` once per key: a repeat (also from another replica) gets the stored
        result. The same key with a different request is refused, as Stripe does."""
        digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]
        key = f"{KEY_PREFIX}:idem:{digest}"
        request_digest = hashlib.sha256(request.encode()).hexdigest()
        lock = self._idem_locks.setdefault(key, asyncio.Lock())
        try:
            async with lock:
                stored = await self._call(self.backend.get, key)
                if stored is not None:
                    stored_request, result = stored
                    if stored_request != request_digest:
                        raise BadInputError("this idempotency key was used for a different request")
                    return result  # type: ignore[no-any-return]
                result = await write()
                await self._call(self.backend.set, key, (request_digest, result), ttl=round(ttl))
                return result
        finally:
            if not lock.locked():
                self._idem_locks.pop(key, None)

    async def close(self) -> None:
        await self._call(self.backend.close)
