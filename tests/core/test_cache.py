"""The page cache's policies, against both real backends: memory and a real redis-server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import fields
from datetime import UTC

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.core.cache import PageCache, PageResult, fingerprint
from gateway.core.codec import (
    PAGE,
    WRITE,
    CachedPage,
    MetricsV2,
    PageV2,
    StoredWrite,
    TaskV2,
    TrackerV2,
)
from gateway.core.contract import SourcePage
from gateway.core.errors import UpstreamUnavailableError
from gateway.core.locks import LockBusyError
from gateway.core.memory import BoundedMemoryCache
from gateway.core.records import TaskMetrics, TaskRecord, TaskStatus, TrackerRecord, Vendor
from gateway.core.store import create_store
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
        cache = PageCache(create_store(url), clock=clock or Clock(), **options)
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


async def slow_burst(cache: PageCache, upstream: Upstream) -> list[asyncio.Task[PageResult]]:
    """Five callers of one slow page, under way: the first leads, four wait for it."""
    upstream.delay = 0.1
    callers = [asyncio.create_task(cache.get_or_fetch("k", upstream, ttl=30))]
    await asyncio.sleep(0.02)
    callers += [asyncio.create_task(cache.get_or_fetch("k", upstream, ttl=30)) for _ in range(4)]
    await asyncio.sleep(0.02)
    return callers


async def test_a_cancelled_waiter_never_cancels_the_fetch_the_others_wait_for(make_cache) -> None:
    upstream = Upstream()
    callers = await slow_burst(make_cache(), upstream)
    callers[3].cancel()  # a client that left
    results = await asyncio.gather(*callers, return_exceptions=True)
    assert isinstance(results[3], asyncio.CancelledError)
    assert [r.page.total for i, r in enumerate(results) if i != 3] == [1] * 4
    assert upstream.calls == 1


async def test_when_the_leader_is_cancelled_the_waiters_still_get_an_answer(make_cache) -> None:
    """The fetch runs in the task that started it (its deadline ends it, as alone); the
    callers that were waiting for it fetch again, once between them."""
    upstream = Upstream()
    callers = await slow_burst(make_cache(), upstream)
    callers[0].cancel()
    results = await asyncio.gather(*callers, return_exceptions=True)
    assert isinstance(results[0], asyncio.CancelledError)
    assert {r.page.total for r in results[1:]} == {2}
    assert upstream.calls == 2


async def test_replicas_sharing_redis_collapse_a_burst_into_one_call(
    redis_server: RedisServer,
) -> None:
    if redis_server.process is None:
        redis_server.start()
    redis_server.flush()
    upstream = Upstream()
    upstream.delay = 0.1
    replicas = [PageCache(create_store(redis_server.url)) for _ in range(3)]
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
    one, two = (PageCache(create_store(redis_server.url)) for _ in range(2))
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
    cache = PageCache(create_store(redis_server.url))
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


def test_the_memory_cache_is_bounded_in_entries() -> None:
    memory = BoundedMemoryCache(max_entries=10)
    for i in range(25):
        memory.set(f"k{i}", i, size=1, ttl=60)
    assert len(memory) == 10
    assert memory.get("k24") == 24 and memory.get("k0") is None


def test_the_memory_cache_is_bounded_in_bytes_and_keeps_counters() -> None:
    memory = BoundedMemoryCache(max_entries=1000, max_bytes=1000)
    memory.increment("generation")
    for i in range(50):
        memory.set(f"k{i}", i, size=100, ttl=60)
        assert memory.bytes <= 1000
    assert len(memory) == 10 and memory.get("k49") == 49 and memory.get("k39") is None
    assert not memory.set("huge", "x", size=1001, ttl=60) and memory.get("huge") is None
    assert memory.counters(["generation", "other"]) == [1, 0]


def test_cache_keys_never_hold_a_secret() -> None:
    secret = "sk-live-very-secret"
    key = PageCache.page_key(Vendor.XPANDER, 0, fingerprint(secret), "source?agent=a#1")
    assert secret not in key
    assert fingerprint(secret) != fingerprint("another-key")


def test_the_wire_format_carries_every_field_of_a_page() -> None:
    """A field added to a record without its wire twin would be dropped silently."""
    for record, wire in (
        (TaskRecord, TaskV2),
        (TrackerRecord, TrackerV2),
        (TaskMetrics, MetricsV2),
    ):
        assert [f.name for f in fields(record)] == list(wire.__struct_fields__)
    assert [f.name for f in fields(SourcePage)] == [
        name for name in PageV2.__struct_fields__ if name not in ("fetched_at", "expires_at")
    ]


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=10,
)
TIMES = st.datetimes(timezones=st.just(UTC))
TEXT = st.none() | st.text()
TRACKERS = st.builds(
    TrackerRecord,
    native_id=st.text(),
    agent_id=st.text(),
    task_id=st.text(),
    status=st.sampled_from(TaskStatus),
    vendor_status=TEXT,
    status_reason=TEXT,
    last_processed_event_id=TEXT,
    created_at=TIMES,
    updated_at=st.none() | TIMES,
    global_id=st.text(),
)
TASKS = st.builds(
    TaskRecord,
    vendor=st.sampled_from(Vendor),
    native_id=st.text(),
    global_id=st.text(),
    agent_id=TEXT,
    status=st.sampled_from(TaskStatus),
    vendor_status=TEXT,
    title=TEXT,
    summary=TEXT,
    created_at=st.none() | TIMES,
    updated_at=st.none() | TIMES,
    user_id=TEXT,
    metrics=st.none() | st.builds(TaskMetrics, total_cost=st.none() | st.floats(allow_nan=False)),
    tracker=st.none() | TRACKERS,
    raw=st.dictionaries(st.text(), JSON, max_size=4),
)


@settings(max_examples=100, deadline=None)
@given(
    records=st.lists(TASKS, max_size=4),
    token=st.none() | st.integers(0, 10**6) | st.text(),
    tracker=TRACKERS,
)
def test_pages_and_writes_come_back_from_the_wire_as_they_went(records, token, tracker) -> None:
    page = SourcePage(records=tuple(records), next_token=token, total=len(records), skipped=1)
    back = PAGE.decode(PAGE.encode(CachedPage(page, 1.5, 2.5)))
    assert back == CachedPage(page, 1.5, 2.5)
    assert [r.raw for r in back.page.records] == [r.raw for r in records]
    assert WRITE.decode(WRITE.encode(StoredWrite("digest", tracker))) == StoredWrite(
        "digest", tracker
    )


async def test_a_write_lock_is_held_across_replicas_past_its_lease(
    redis_server: RedisServer,
) -> None:
    """A holder slower than the lease keeps the lock (it renews); a replica that waits
    longer than it may gets CONFLICT; once released, the other replica takes it."""
    if redis_server.process is None:
        redis_server.start()
    redis_server.flush()
    one, two = create_store(redis_server.url), create_store(redis_server.url)
    one.locks.lease = two.locks.lease = 0.3
    entered = asyncio.Event()

    async def slow_holder() -> None:
        async with one.lock("tracker:t1"):
            entered.set()
            await asyncio.sleep(1.0)  # over three leases

    holder = asyncio.create_task(slow_holder())
    await entered.wait()
    with pytest.raises(LockBusyError) as refused:
        async with two.lock("tracker:t1", wait=0.6):
            pass
    assert refused.value.code == "CONFLICT"
    await holder
    async with two.lock("tracker:t1", wait=0.5):
        pass
    for store in (one, two):
        await store.close()


async def test_without_redis_a_write_lock_still_serializes_this_process(
    redis_server: RedisServer,
) -> None:
    if redis_server.process is None:
        redis_server.start()
    store = create_store(redis_server.url)
    order: list[str] = []

    async def write(name: str) -> None:
        async with store.lock("tracker:t2"):
            order.append(f"{name}+")
            await asyncio.sleep(0.05)
            order.append(f"{name}-")

    redis_server.stop()
    try:
        await asyncio.gather(write("a"), write("b"))
    finally:
        redis_server.start()
    assert order in (["a+", "a-", "b+", "b-"], ["b+", "b-", "a+", "a-"])
    assert store.degraded
    await store.close()
