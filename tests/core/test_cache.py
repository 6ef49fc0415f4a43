"""The page cache's policies, against both real backends: memory and a real redis-server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from gateway.core.cache import PageCache, create_backend, fingerprint
from gateway.core.errors import UpstreamUnavailableError
from gateway.core.memory import BoundedMemoryCache
from gateway.core.records import Vendor
from gateway.vendors.base import SourcePage
from tests.redis_server import RedisServer


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class Upstream:
    """Stands in for a vendor page fetch: counts calls and can fail or be slow."""

    def __init__(self) -> None:
        self.calls = 0
        self.fail = False
        self.delay = 0.0

    async def __call__(self) -> SourcePage:
        self.calls += 1
        await asyncio.sleep(self.delay)
        if self.fail:
            raise UpstreamUnavailableError(Vendor.ORQ, "orq failed with HTTP 500", status=500)
        return SourcePage(records=(), next_token=self.calls, total=self.calls)


@pytest.fixture(params=["memory", "redis"])
async def make_cache(request, redis_server: RedisServer) -> AsyncIterator[Callable[..., PageCache]]:
    caches: list[PageCache] = []
    if request.param == "redis":
        if redis_server.process is None:
            redis_server.start()
        redis_server.flush()

    def make(clock: Clock | None = None, **options) -> PageCache:
        url = redis_server.url if request.param == "redis" else None
        cache = PageCache(
            create_backend(url), shared=url is not None, clock=clock or Clock(), **options
        )
        caches.append(cache)
        return cache

    yield make
    for cache in caches:
        await cache.close()


async def test_a_fresh_entry_is_served_and_an_expired_one_refetched(make_cache) -> None:
    clock, upstream = Clock(), Upstream()
    cache = make_cache(clock)
    first = await cache.get_or_fetch("k", upstream, ttl=30)
    second = await cache.get_or_fetch("k", upstream, ttl=30)
    assert (first.from_cache, second.from_cache, upstream.calls) == (False, True, 1)
    assert second.page == first.page
    clock.now += 31
    third = await cache.get_or_fetch("k", upstream, ttl=30)
    assert (third.from_cache, upstream.calls) == (False, 2)


async def test_bypass_asks_the_vendor_and_refreshes_the_entry(make_cache) -> None:
    upstream = Upstream()
    cache = make_cache()
    await cache.get_or_fetch("k", upstream, ttl=30)
    fresh = await cache.get_or_fetch("k", upstream, ttl=30, bypass=True)
    assert (fresh.from_cache, upstream.calls) == (False, 2)
    again = await cache.get_or_fetch("k", upstream, ttl=30)
    assert again.from_cache and again.page.total == 2


async def test_stale_if_error_serves_an_expired_entry_within_the_bound(make_cache) -> None:
    clock, upstream = Clock(), Upstream()
    cache = make_cache(clock, stale_if_error=60)
    await cache.get_or_fetch("k", upstream, ttl=30)
    upstream.fail = True
    clock.now += 31
    stale = await cache.get_or_fetch("k", upstream, ttl=30)
    assert stale.stale and stale.from_cache and stale.page.total == 1
    clock.now += 60
    with pytest.raises(UpstreamUnavailableError):
        await cache.get_or_fetch("k", upstream, ttl=30)


async def test_identical_concurrent_fetches_make_one_upstream_call(make_cache) -> None:
    upstream = Upstream()
    upstream.delay = 0.05
    cache = make_cache()
    results = await asyncio.gather(*(cache.get_or_fetch("k", upstream, ttl=30) for _ in range(200)))
    assert upstream.calls == 1
    assert {r.page.total for r in results} == {1}


async def test_a_failure_reaches_every_joined_caller(make_cache) -> None:
    upstream = Upstream()
    upstream.delay, upstream.fail = 0.05, True
    cache = make_cache()
    results = await asyncio.gather(
        *(cache.get_or_fetch("k", upstream, ttl=30) for _ in range(10)), return_exceptions=True
    )
    assert upstream.calls == 1
    assert all(isinstance(r, UpstreamUnavailableError) for r in results)


async def test_replicas_sharing_redis_collapse_a_burst_into_one_call(
    redis_server: RedisServer,
) -> None:
    if redis_server.process is None:
        redis_server.start()
    redis_server.flush()
    upstream = Upstream()
    upstream.delay = 0.1
    replicas = [PageCache(create_backend(redis_server.url), shared=True) for _ in range(3)]
    results = await asyncio.gather(
        *(replicas[i % 3].get_or_fetch("k", upstream, ttl=30) for i in range(60))
    )
    assert upstream.calls == 1
    assert {r.page.total for r in results} == {1}
    for cache in replicas:
        await cache.close()


async def test_a_generation_bump_hides_older_entries_from_every_replica(
    redis_server: RedisServer,
) -> None:
    if redis_server.process is None:
        redis_server.start()
    redis_server.flush()
    one, two = (PageCache(create_backend(redis_server.url), shared=True) for _ in range(2))
    upstream = Upstream()
    key = one.page_key(Vendor.AGENTEX, await one.generation(Vendor.AGENTEX), "anon", "list")
    await one.get_or_fetch(key, upstream, ttl=30)
    await one.bump_generation(Vendor.AGENTEX)
    new_key = two.page_key(Vendor.AGENTEX, await two.generation(Vendor.AGENTEX), "anon", "list")
    assert new_key != key
    result = await two.get_or_fetch(new_key, upstream, ttl=30)
    assert not result.from_cache and upstream.calls == 2
    await one.close()
    await two.close()


async def test_redis_going_down_degrades_to_no_cache_and_recovers(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    if redis_server.process is None:
        redis_server.start()
    cache = PageCache(create_backend(redis_server.url), shared=True)
    upstream = Upstream()
    await cache.get_or_fetch("k", upstream, ttl=30)
    redis_server.stop()
    try:
        for _ in range(3):
            result = await cache.get_or_fetch("k2", upstream, ttl=30)
            assert not result.from_cache
        assert cache.degraded
        assert sum("cache backend failed" in r.message for r in caplog.records) == 1
    finally:
        redis_server.start()
    await cache.get_or_fetch("k3", upstream, ttl=30)
    hit = await cache.get_or_fetch("k3", upstream, ttl=30)
    assert hit.from_cache and not cache.degraded
    await cache.close()


async def test_the_memory_cache_is_bounded() -> None:
    backend = BoundedMemoryCache(max_entries=10, timeout=None)
    for i in range(25):
        await backend.set(f"k{i}", i, ttl=60)
    assert len(backend._cache) == 10
    assert await backend.get("k24") == 24 and await backend.get("k0") is None


def test_cache_keys_never_hold_a_secret() -> None:
    secret = "sk-live-very-secret"
    key = PageCache.page_key(Vendor.XPANDER, 0, fingerprint(secret), "source?agent=a#1")
    assert secret not in key
    assert fingerprint(secret) != fingerprint("another-key")
