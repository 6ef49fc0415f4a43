"""One cached, measured page fetch for any vendor: the single road to the connectors' I/O."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field, replace

from gateway.core.budget import Budgets
from gateway.core.cache import PageCache, PageResult, fingerprint
from gateway.core.context import Priority, RequestState, VendorPart
from gateway.core.contract import Credentials, PageToken, Source, SourcePage, VendorConnector
from gateway.core.errors import (
    UpstreamBudgetExhaustedError,
    UpstreamCallLimitError,
    UpstreamError,
    UpstreamSlowError,
    UpstreamTimeoutError,
)
from gateway.core.health import VendorHealth
from gateway.core.ontime import LateCalls
from gateway.core.records import Vendor
from gateway.core.resilience import CircuitBreaker, CircuitState, RetryPolicy

DEFAULT_TTL_SECONDS = 30.0
DEFAULT_FIRST_PAGE_TTL_SECONDS = 10.0


@dataclass(slots=True)
class VendorRuntime:
    """A connector with its cache and failure policies. A listing's first page is where new
    and changed tasks show up first, so it gets its own, usually shorter, TTL."""

    connector: VendorConnector
    ttl: float = DEFAULT_TTL_SECONDS
    first_page_ttl: float = DEFAULT_FIRST_PAGE_TTL_SECONDS
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    breaker: CircuitBreaker | None = None

    def __post_init__(self) -> None:
        if self.breaker is None:
            self.breaker = CircuitBreaker(self.connector.vendor)


class Upstream:
    """The vendors the gateway is configured for, their cache and their health.

    ``max_calls`` bounds the pages one request may ask for (``RequestState.page_reads``,
    cached or not: a bound on what one request can make the gateway and the vendors do).
    Past it a vendor's read fails with ``UPSTREAM_CALL_LIMIT``, which the merge treats as
    any vendor failure: the answer has what was read and names the vendors cut off."""

    def __init__(
        self,
        vendors: Mapping[Vendor, VendorRuntime],
        cache: PageCache,
        *,
        max_calls: int | None = None,
        budgets: Budgets | None = None,
    ) -> None:
        self.vendors = dict(vendors)
        self.cache = cache
        self.max_calls = max_calls
        self.budgets = budgets or Budgets()
        """Each vendor's call budget: every upstream request draws from it (``fetch``)."""
        self.health = {v: VendorHealth(v) for v in Vendor}
        self.late = LateCalls()
        """Calls that outlived their answer's ``answer_within``, finishing in the background."""
        for vendor in Vendor:
            self.health[vendor].enabled = vendor in self.vendors

    def circuit_state(self, vendor: Vendor) -> CircuitState:
        runtime = self.vendors.get(vendor)
        if runtime is None or runtime.breaker is None:
            return CircuitState.CLOSED
        return runtime.breaker.state

    def connector(self, vendor: Vendor) -> VendorConnector:
        return self.vendors[vendor].connector

    def credentials(self, vendor: Vendor, state: RequestState) -> Credentials | None:
        return state.credentials.get(vendor) or self.connector(vendor).settings.credentials

    async def generation(self, vendor: Vendor, state: RequestState) -> int:
        if vendor not in state.generations:
            state.generations[vendor] = await self.cache.generation(vendor)
        return state.generations[vendor]

    async def fetch_page(self, source: Source, token: PageToken, state: RequestState) -> SourcePage:
        """One page of ``source``, from cache when fresh; records how the vendor's part went."""
        vendor = source.vendor
        if not state.take_page_read(self.max_calls):
            raise UpstreamCallLimitError(
                vendor,
                f"this request reached its limit of {self.max_calls} upstream calls before "
                f"{vendor.value} was read through: narrow the filter or ask for fewer tasks",
            )
        runtime = self.vendors[vendor]
        credentials = self.credentials(vendor, state)
        key = self.cache.page_key(
            vendor,
            await self.generation(vendor, state),
            fingerprint(credentials.secret if credentials else None),
            f"{source.key}#{token!r}#{runtime.connector.page_size}",
        )
        health = self.health[vendor]
        part = state.part(vendor)

        async def attempt() -> SourcePage:
            return await runtime.connector.fetch_page(source, token, state.credentials.get(vendor))

        async def fetch() -> SourcePage:
            async def spend() -> SourcePage:
                # Each attempt (retries too) is one call of the vendor's budget; a refusal
                # is raised at once, so the cache answers stale or the vendor is missing.
                async with self.budgets.call(vendor, state.priority):
                    return await attempt()

            started = time.perf_counter()
            assert runtime.breaker is not None
            try:
                page = await runtime.breaker.call(lambda: runtime.retry.run(spend))
            except UpstreamBudgetExhaustedError:
                raise  # nothing was sent: not a failure of the vendor
            except UpstreamError as exc:
                health.record_failure(exc.code, time.perf_counter() - started)
                raise
            health.record_success(time.perf_counter() - started)
            health.skipped_records += page.skipped
            for record in page.records:
                if record.status.value == "UNKNOWN":
                    health.count_unknown_status(record.vendor_status)
            return page

        def read() -> Awaitable[PageResult]:
            return self.cache.get_or_fetch(
                key,
                fetch,
                ttl=runtime.first_page_ttl if token is None else runtime.ttl,
                bypass=state.bypass_cache,
                store=state.cache_store,
                # with ``fresh``, a request that shows staleness (vendorParts) takes the
                # last good page when its vendor's budget is spent; bulk and background
                # reads (exports, the index sync) get the refusal
                stale_if_refused=state.cache_store and state.priority is Priority.INTERACTIVE,
            )

        remaining = state.remaining()
        answer_in = state.answer_remaining()
        try:
            if remaining is not None and remaining <= 0:
                raise TimeoutError
            if answer_in is None:
                async with asyncio.timeout(remaining):
                    result = await read()
            else:
                # A hit is answered in place: only a call (a miss, or ``fresh``) needs a task
                # of its own, to go on past answer_within. A call under way here for the
                # page is joined without a read first, as ``get_or_fetch`` does.
                found = None
                if not state.bypass_cache and not self.cache.flight.running(key):
                    found = await self.cache.last_good(key, fresh_only=True)
                if found is None and answer_in > 0:  # else past answer_within: no new call
                    found = await self.late.within(vendor, key, read, answer_in, remaining)
                result = found if found is not None else await self._late(key, part, state)
        except TimeoutError:
            error = UpstreamTimeoutError(
                vendor, f"{vendor.value} did not answer within the request's deadline"
            )
            health.record_failure(error.code, 0.0)
            raise error from None
        part.calls += 1
        if result.from_cache:
            health.cache_hits += 1
        else:
            health.cache_misses += 1
            part.from_cache = False
        if result.stale:
            health.stale_served += 1
            if isinstance(result.error, UpstreamBudgetExhaustedError) and not part.stale:
                health.stale_answers += 1
            part.stale = True
        if part.fetched_at is None or result.fetched_at < part.fetched_at:
            part.fetched_at = result.fetched_at
        return result.page

    async def _late(self, key: str, part: VendorPart, state: RequestState) -> PageResult:
        """A page whose vendor has not answered within ``answer_within``: from the cache,
        even past its TTL (up to ``cache.stale_if_error``) and shown stale; with nothing
        cached, the vendor is ``UPSTREAM_SLOW`` (its call goes on: ``LateCalls``)."""
        vendor = part.vendor
        found = await self.cache.last_good(key)
        if found is not None and not found.stale and not state.bypass_cache:
            return found  # an ordinary hit: nothing was late
        if not part.slow:
            part.slow = True
            self.health[vendor].slow_parts += 1
        if found is None:
            raise UpstreamSlowError(
                vendor,
                f"{vendor.value} did not answer within graphql.answer_within (its answer is "
                "still awaited, for the next request)",
            )
        if not part.stale:
            self.health[vendor].stale_answers += 1
        return replace(found, stale=True)
