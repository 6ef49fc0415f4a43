"""``Upstream.fetch_page``, the one road to a vendor: the per-request bound on page reads,
the page cache's TTLs and scoping, and retries and the circuit as a request meets them.

Real connectors against the shared sandbox over loopback HTTP; the sandbox's own request
counters and fault knobs are the oracle for what reached the vendor. The cache's clock and
the retry policy's sleep are injected, so nothing here waits for real.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest

from gateway.core.cache import PageCache
from gateway.core.context import RequestState
from gateway.core.contract import ListQuery, Source
from gateway.core.errors import (
    UpstreamAuthError,
    UpstreamCallLimitError,
    UpstreamRateLimitedError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)
from gateway.core.records import Vendor
from gateway.core.resilience import CircuitBreaker, CircuitOpenError, CircuitState, RetryPolicy
from gateway.core.store import create_store
from gateway.core.upstream import Upstream, VendorRuntime
from gateway.sandbox import Sandbox
from gateway.vendors.registry import default_credentials
from tests.vendors.conftest import Make

XPANDER, ORQ = Vendor.XPANDER, Vendor.ORQ
LATER_PAGE = 2  # xpander pages are numbered; the sandbox answers any page number


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Rig:
    """An ``Upstream`` on real connectors, with the clock and sleeps it was given."""

    upstream: Upstream
    sandbox: Sandbox
    clock: Clock
    slept: list[float] = field(default_factory=list)

    def source(self, vendor: Vendor = XPANDER, n: int = 0) -> Source:
        return self.upstream.connector(vendor).sources(ListQuery())[n]

    def calls(self, vendor: Vendor = XPANDER) -> int:
        """Requests the vendor's simulator received."""
        return sum(self.sandbox.counters(vendor).values())

    def runtime(self, vendor: Vendor = XPANDER) -> VendorRuntime:
        return self.upstream.vendors[vendor]


Build = Callable[..., Rig]


@pytest.fixture
async def build(clean_sandbox: Sandbox, sandbox_url: str) -> AsyncIterator[Build]:
    make = Make(clean_sandbox, sandbox_url, [])
    caches: list[PageCache] = []

    def build(
        vendors: tuple[Vendor, ...] = (XPANDER,),
        *,
        max_calls: int | None = None,
        ttl: float = 60.0,
        first_page_ttl: float = 10.0,
        attempts: int = 3,
        failure_threshold: int = 5,
        reset_seconds: float = 30.0,
    ) -> Rig:
        clock = Clock()
        slept: list[float] = []

        async def sleep(seconds: float) -> None:
            slept.append(seconds)

        runtimes = {
            vendor: VendorRuntime(
                make(vendor),
                ttl=ttl,
                first_page_ttl=first_page_ttl,
                retry=RetryPolicy(attempts=attempts, sleep=sleep),
                breaker=CircuitBreaker(
                    vendor, failure_threshold, reset_seconds=reset_seconds, clock=clock
                ),
            )
            for vendor in vendors
        }
        cache = PageCache(create_store(None), clock=clock)
        caches.append(cache)
        return Rig(Upstream(runtimes, cache, max_calls=max_calls), clean_sandbox, clock, slept)

    yield build
    for cache in caches:
        await cache.close()
    for client in make.clients:
        await client.aclose()


# -- the per-request bound -------------------------------------------------------------------


async def test_a_request_gets_at_most_max_calls_page_reads_cached_or_not(build: Build) -> None:
    rig = build(max_calls=3)
    state = RequestState()
    for _ in range(3):
        await rig.upstream.fetch_page(rig.source(), None, state)
    assert rig.calls() == 1  # one upstream call, two cache hits: all three count
    with pytest.raises(UpstreamCallLimitError) as caught:
        await rig.upstream.fetch_page(rig.source(), None, state)
    assert caught.value.code == "UPSTREAM_CALL_LIMIT" and caught.value.vendor is XPANDER
    assert "3 upstream calls" in caught.value.message
    assert rig.calls() == 1
    # The bound is per request: the next request starts afresh.
    await rig.upstream.fetch_page(rig.source(), None, RequestState())


async def test_the_bound_is_shared_by_every_vendor_of_the_request(build: Build) -> None:
    rig = build((XPANDER, ORQ), max_calls=2)
    state = RequestState()
    await rig.upstream.fetch_page(rig.source(XPANDER), None, state)
    await rig.upstream.fetch_page(rig.source(ORQ), None, state)
    with pytest.raises(UpstreamCallLimitError) as caught:
        await rig.upstream.fetch_page(rig.source(ORQ, 1), None, state)
    assert caught.value.vendor is ORQ
    assert (rig.calls(XPANDER), rig.calls(ORQ)) == (1, 1)


async def test_without_a_bound_a_request_reads_on(build: Build) -> None:
    rig = build(max_calls=None)
    state = RequestState()
    for n in range(3):
        for token in (None, LATER_PAGE):
            await rig.upstream.fetch_page(rig.source(n=n), token, state)
    assert rig.calls() == 6 and state.page_reads == 6


# -- the deadline ----------------------------------------------------------------------------


async def test_a_request_past_its_deadline_does_not_call_the_vendor(build: Build) -> None:
    rig = build()
    state = RequestState(deadline=time.monotonic() - 1)
    with pytest.raises(UpstreamTimeoutError) as caught:
        await rig.upstream.fetch_page(rig.source(), None, state)
    assert caught.value.code == "UPSTREAM_TIMEOUT" and caught.value.vendor is XPANDER
    assert rig.calls() == 0
    assert rig.upstream.health[XPANDER].last_error_code == "UPSTREAM_TIMEOUT"


async def test_a_vendor_slower_than_the_deadline_is_upstream_timeout(build: Build) -> None:
    rig = build()
    rig.sandbox.knobs(XPANDER).latency_ms = 2000
    state = RequestState(deadline=time.monotonic() + 0.2)
    with pytest.raises(UpstreamTimeoutError):
        await rig.upstream.fetch_page(rig.source(), None, state)
    assert rig.upstream.health[XPANDER].failures == 1
    # A slow answer is not an outage: one timeout does not count towards the circuit.
    assert rig.upstream.circuit_state(XPANDER) is CircuitState.CLOSED


# -- the cache -------------------------------------------------------------------------------


async def test_a_page_is_read_once_and_then_served_from_cache(build: Build) -> None:
    rig = build()
    state = RequestState()
    first = await rig.upstream.fetch_page(rig.source(), None, state)
    again = await rig.upstream.fetch_page(rig.source(), None, state)
    assert again == first and rig.calls() == 1
    health, part = rig.upstream.health[XPANDER], state.part(XPANDER)
    assert (health.cache_misses, health.cache_hits) == (1, 1)
    assert part.calls == 2 and not part.from_cache  # one of its pages came from the vendor
    cached_only = RequestState()
    await rig.upstream.fetch_page(rig.source(), None, cached_only)
    assert cached_only.part(XPANDER).from_cache and rig.calls() == 1


async def test_the_first_page_expires_sooner_than_later_pages(build: Build) -> None:
    """New and changed tasks show up on a listing's first page first."""
    rig = build(ttl=100.0, first_page_ttl=5.0)

    async def read_both() -> None:
        state = RequestState()
        await rig.upstream.fetch_page(rig.source(), None, state)
        await rig.upstream.fetch_page(rig.source(), LATER_PAGE, state)

    await read_both()
    assert rig.calls() == 2
    rig.clock.now += 4
    await read_both()
    assert rig.calls() == 2
    rig.clock.now += 2  # 6 s: past the first page's TTL only
    await read_both()
    assert rig.calls() == 3
    rig.clock.now += 100
    await read_both()
    assert rig.calls() == 5


async def test_a_ttl_of_zero_never_caches(build: Build) -> None:
    rig = build(ttl=0, first_page_ttl=0)
    for _ in range(3):
        await rig.upstream.fetch_page(rig.source(), None, RequestState())
    assert rig.calls() == 3


async def test_bypassing_the_cache_reads_the_vendor_and_refreshes_the_cache(build: Build) -> None:
    rig = build()
    await rig.upstream.fetch_page(rig.source(), None, RequestState())
    await rig.upstream.fetch_page(rig.source(), None, RequestState(bypass_cache=True))
    assert rig.calls() == 2
    rig.clock.now += 9  # within the TTL of the bypassing read, past the first one's
    await rig.upstream.fetch_page(rig.source(), None, RequestState())
    assert rig.calls() == 2


async def test_a_bulk_read_does_not_fill_the_cache(build: Build) -> None:
    """Exports read with ``cache_store=False`` so they do not push everything else out."""
    rig = build()
    await rig.upstream.fetch_page(rig.source(), None, RequestState(cache_store=False))
    await rig.upstream.fetch_page(rig.source(), None, RequestState())
    await rig.upstream.fetch_page(rig.source(), None, RequestState())
    assert rig.calls() == 2


async def test_a_bumped_generation_makes_cached_pages_unreachable(build: Build) -> None:
    rig = build()
    await rig.upstream.fetch_page(rig.source(), None, RequestState())
    await rig.upstream.cache.bump_generation(XPANDER)
    await rig.upstream.fetch_page(rig.source(), None, RequestState())
    assert rig.calls() == 2


async def test_a_forwarded_key_never_reads_pages_cached_under_another(build: Build) -> None:
    rig = build()
    await rig.upstream.fetch_page(rig.source(), None, RequestState())
    wrong = RequestState(credentials={XPANDER: default_credentials(XPANDER, "not-the-key")})
    with pytest.raises(UpstreamAuthError) as caught:
        await rig.upstream.fetch_page(rig.source(), None, wrong)
    assert caught.value.code == "UPSTREAM_AUTH"
    assert rig.calls() == 2 and rig.slept == []  # asked the vendor once, not retried


async def test_an_answer_is_as_fresh_as_its_oldest_page(build: Build) -> None:
    rig = build()
    await rig.upstream.fetch_page(rig.source(), None, RequestState())
    fetched = rig.clock.now
    rig.clock.now += 3
    state = RequestState()
    await rig.upstream.fetch_page(rig.source(), LATER_PAGE, state)
    await rig.upstream.fetch_page(rig.source(), None, state)
    assert state.part(XPANDER).fetched_at == fetched


# -- retries and the circuit -----------------------------------------------------------------


async def test_a_failing_read_is_retried_until_it_succeeds(build: Build) -> None:
    rig = build(attempts=3)
    knobs = rig.sandbox.knobs(XPANDER)
    knobs.error_status, knobs.fail_next = 503, 2
    page = await rig.upstream.fetch_page(rig.source(), None, RequestState())
    assert page.records and rig.calls() == 3 and len(rig.slept) == 2
    assert rig.runtime().retry.retries == 2
    assert rig.upstream.health[XPANDER].failures == 0  # the request saw a success


async def test_a_rate_limited_read_waits_as_long_as_the_vendor_asks(build: Build) -> None:
    rig = build(attempts=3)
    knobs = rig.sandbox.knobs(XPANDER)
    knobs.rate_limit_rate, knobs.retry_after_seconds = 1.0, 1
    with pytest.raises(UpstreamRateLimitedError) as caught:
        await rig.upstream.fetch_page(rig.source(), None, RequestState())
    assert caught.value.code == "UPSTREAM_RATE_LIMITED"
    assert rig.calls() == 3 and rig.slept == [1.0, 1.0]
    assert rig.upstream.health[XPANDER].last_error_code == "UPSTREAM_RATE_LIMITED"


async def test_repeated_outages_open_the_circuit_and_a_probe_closes_it(build: Build) -> None:
    rig = build(attempts=1, failure_threshold=2, reset_seconds=30.0)
    rig.sandbox.knobs(XPANDER).error_rate = 1.0
    for _ in range(2):
        with pytest.raises(UpstreamUnavailableError):
            await rig.upstream.fetch_page(rig.source(), None, RequestState())
    assert rig.upstream.circuit_state(XPANDER) is CircuitState.OPEN
    with pytest.raises(CircuitOpenError) as caught:
        await rig.upstream.fetch_page(rig.source(), None, RequestState())
    assert caught.value.code == "UPSTREAM_UNAVAILABLE" and rig.calls() == 2  # failed fast
    rig.sandbox.knobs(XPANDER).error_rate = 0.0
    rig.clock.now += 30
    assert rig.upstream.circuit_state(XPANDER) is CircuitState.HALF_OPEN
    await rig.upstream.fetch_page(rig.source(), None, RequestState())
    assert rig.upstream.circuit_state(XPANDER) is CircuitState.CLOSED and rig.calls() == 3


async def test_an_open_circuit_still_answers_from_the_last_good_page(build: Build) -> None:
    rig = build(attempts=1, failure_threshold=1, ttl=10.0, first_page_ttl=10.0)
    good = await rig.upstream.fetch_page(rig.source(), None, RequestState())
    rig.sandbox.knobs(XPANDER).error_rate = 1.0
    with pytest.raises(UpstreamUnavailableError):
        await rig.upstream.fetch_page(rig.source(), LATER_PAGE, RequestState())
    assert rig.upstream.circuit_state(XPANDER) is CircuitState.OPEN
    rig.clock.now += 20  # expired, within stale-if-error
    state = RequestState()
    assert await rig.upstream.fetch_page(rig.source(), None, state) == good
    assert state.part(XPANDER).stale and rig.upstream.health[XPANDER].stale_served == 1
    assert rig.calls() == 2


async def test_a_callers_wrong_key_never_opens_the_circuit_for_everyone(build: Build) -> None:
    rig = build(attempts=3, failure_threshold=2)
    wrong = {XPANDER: default_credentials(XPANDER, "not-the-key")}
    for _ in range(5):
        with pytest.raises(UpstreamAuthError):
            await rig.upstream.fetch_page(rig.source(), None, RequestState(credentials=wrong))
    assert rig.calls() == 5  # refused once each, never retried
    assert rig.upstream.circuit_state(XPANDER) is CircuitState.CLOSED
    await rig.upstream.fetch_page(rig.source(), None, RequestState())
    assert rig.calls() == 6
