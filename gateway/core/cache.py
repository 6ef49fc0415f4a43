"""The upstream page cache: a ``Store`` underneath, with the policies a gateway needs on top.

- TTL per vendor; entries are kept ``stale_if_error`` seconds past expiry so a failing
  vendor can still be answered from its last good page (marked stale).
- Single-flight (``gateway.core.flight``): identical concurrent fetches join one upstream
  call in this process and, on a shared backend, across replicas (a short lock key, then
  the others poll the entry).
- Generations: each vendor's keys carry a generation number kept in the backend, so a
  write (``updateTracker``) makes every older entry unreachable in every replica at once.
- A backend that fails (Redis down) degrades to fetching without a cache, logs once, and
  is used again as soon as it answers: the ``Store`` never raises, so nothing here catches
  a backend error.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass

from gateway.core.codec import KEY_PREFIX, PAGE, WRITE, CachedPage, StoredWrite
from gateway.core.contract import Credentials, SourcePage
from gateway.core.errors import BadInputError, UpstreamBudgetExhaustedError, UpstreamError
from gateway.core.flight import DEFAULT_LOCK_SECONDS, SingleFlight
from gateway.core.records import TrackerRecord, Vendor
from gateway.core.store import Store

GENERATION_KEYS = {vendor: f"{KEY_PREFIX}:gen:{vendor.value}" for vendor in Vendor}
IDEMPOTENCY_TTL_SECONDS = 24 * 3600.0

__all__ = [
    "KEY_PREFIX",
    "CachedPage",
    "PageCache",
    "PageResult",
    "caller_fingerprint",
    "fingerprint",
]


@dataclass(frozen=True, slots=True)
class PageResult:
    """A page and where it came from, so the graph can say how fresh each vendor's part is."""

    page: SourcePage
    fetched_at: float
    from_cache: bool
    stale: bool
    error: UpstreamError | None = None
    """Why a stale page was served: the fetch's failure (a spent budget, a vendor error)."""


def fingerprint(secret: str | None) -> str:
    """A credential's share of a cache key: a digest, never the secret."""
    if not secret:
        return "anon"
    digest = hashlib.sha256(b"task-gateway:credential:" + secret.encode(errors="surrogatepass"))
    return digest.hexdigest()[:20]


def caller_fingerprint(client_key: str | None, credentials: Mapping[Vendor, Credentials]) -> str:
    """Who asks, as a digest: the client key and every vendor key the caller forwards.
    Scopes what one caller stored (idempotent writes) away from every other caller."""
    if not client_key and not credentials:
        return "anon"
    vendors = sorted(credentials, key=lambda v: v.value)
    return fingerprint(repr((client_key, [(v.value, credentials[v].secret) for v in vendors])))


class PageCache:
    def __init__(
        self,
        store: Store,
        *,
        stale_if_error: float = 300.0,
        lock_seconds: float = DEFAULT_LOCK_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.stale_if_error = stale_if_error
        self.lock_seconds = lock_seconds
        self.clock = clock
        self.stats = store.stats
        """One dict with the store's own counts (errors, undecodable), the single-flight's
        (joins, remote_joins) and the lookups', read by /metrics."""
        self.stats.update(hits=0, misses=0, stale=0)
        self.flight: SingleFlight[PageResult] = SingleFlight(
            store, stats=self.stats, lock_seconds=lock_seconds, clock=clock
        )

    @property
    def shared(self) -> bool:
        return self.store.shared

    @property
    def degraded(self) -> bool:
        return self.store.degraded

    async def ping(self) -> bool:
        return await self.store.ping()

    def lock(self, name: str, wait: float | None = None) -> AbstractAsyncContextManager[None]:
        """Hold ``name`` (e.g. ``tracker:<id>``) in this process and, with Redis, in every
        replica: for writes that read first and must not interleave."""
        return self.store.lock(name, wait)

    # -- generations ----------------------------------------------------------------------
    async def generations(self, vendors: Iterable[Vendor]) -> list[int]:
        """Every vendor's generation, in one read (every response-cache lookup asks)."""
        return await self.store.counters([GENERATION_KEYS[v] for v in vendors])

    async def generation(self, vendor: Vendor) -> int:
        return (await self.generations((vendor,)))[0]

    async def bump_generation(self, vendor: Vendor) -> None:
        """Make every cached page of ``vendor`` unreachable, in every replica sharing it."""
        await self.store.increment(GENERATION_KEYS[vendor])

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
        stale_if_refused: bool = True,
    ) -> PageResult:
        """The page under ``key``: fresh from the cache, else fetched (once, however many
        ask). A failed fetch is answered by the last good entry within ``stale_if_error``;
        with ``bypass`` only a vendor budget's refusal is, and only ``stale_if_refused``."""
        entry: CachedPage | None = None
        # A fetch already under way here answers without a round trip to the backend.
        if not bypass and ttl > 0 and not self.flight.running(key):
            entry = await self.store.get(key, PAGE)
            if entry is not None and entry.expires_at > self.clock():
                self.stats["hits"] += 1
                return self._cached(entry)
        ttl = ttl if store else 0
        shared = not bypass and ttl > 0
        return await self.flight.run(
            key,
            lambda: self._fetch(
                key, fetch, ttl=ttl, entry=entry, bypass=bypass, stale_if_refused=stale_if_refused
            ),
            peer=(lambda: self._fresh_entry(key)) if shared else None,
        )

    def _cached(self, entry: CachedPage) -> PageResult:
        return PageResult(entry.page, entry.fetched_at, from_cache=True, stale=False)

    async def last_good(self, key: str, *, fresh_only: bool = False) -> PageResult | None:
        """The entry under ``key`` while it may be served (fresh, or within
        ``stale_if_error`` past expiry; ``stale`` says which): what a vendor's part is
        answered from when the vendor has not answered in time (``answer_within``).
        ``fresh_only``: a hit or nothing, as ``get_or_fetch`` would find it first."""
        entry = await self.store.get(key, PAGE)
        now = self.clock()
        if entry is None or entry.expires_at + self.stale_if_error <= now:
            return None
        if fresh_only and entry.expires_at <= now:
            return None
        stale = entry.expires_at <= now
        self.stats["stale" if stale else "hits"] += 1
        return PageResult(entry.page, entry.fetched_at, from_cache=True, stale=stale)

    async def _fresh_entry(self, key: str) -> PageResult | None:
        """A replica's fetch of ``key``, once it has stored it (``SingleFlight``'s peer)."""
        entry = await self.store.get(key, PAGE)
        if entry is not None and entry.expires_at > self.clock():
            return self._cached(entry)
        return None

    async def _fetch(
        self,
        key: str,
        fetch: Callable[[], Awaitable[SourcePage]],
        *,
        ttl: float,
        entry: CachedPage | None,
        bypass: bool,
        stale_if_refused: bool,
    ) -> PageResult:
        """One upstream call; stored (before a replica's lock goes, so waiting replicas find
        it), or answered from the last good entry within ``stale_if_error`` if it fails."""
        self.stats["misses"] += 1
        try:
            page = await fetch()
            now = self.clock()
            if ttl > 0:
                cached = CachedPage(page, now, now + ttl)
                await self.store.set(key, cached, PAGE, ttl=ttl + self.stale_if_error)
        except UpstreamError as exc:
            # ``fresh: true`` (bypass) skips the entry unless the vendor was not even asked
            # (its budget spent): then the last good page beats no page.
            refused = stale_if_refused and isinstance(exc, UpstreamBudgetExhaustedError)
            if entry is None and (not bypass or refused):
                entry = await self.store.get(key, PAGE)
            if entry is not None and entry.expires_at + self.stale_if_error > self.clock():
                self.stats["stale"] += 1
                return PageResult(
                    entry.page, entry.fetched_at, from_cache=True, stale=True, error=exc
                )
            raise
        return PageResult(page, now, from_cache=False, stale=False)

    # -- idempotent writes ----------------------------------------------------------------
    async def idempotent(
        self,
        caller: str,
        idempotency_key: str,
        request: str,
        write: Callable[[], Awaitable[TrackerRecord]],
        ttl: float = IDEMPOTENCY_TTL_SECONDS,
    ) -> TrackerRecord:
        """Run ``write`` once per caller and key: a repeat (also from another replica, which
        waits for the first to finish) gets the stored result. ``caller`` is a digest of who
        asks (``caller_fingerprint``), so another caller's key never answers with someone
        else's result. The same key with a different request is refused, as Stripe does."""
        digest = hashlib.sha256(f"{caller}\0{idempotency_key}".encode()).hexdigest()[:32]
        key = f"{KEY_PREFIX}:idem:{digest}"
        request_digest = hashlib.sha256(request.encode()).hexdigest()
        async with self.store.lock(f"idempotency:{digest}"):
            stored = await self.store.get(key, WRITE)
            if stored is not None:
                if stored.request != request_digest:
                    raise BadInputError("this idempotency key was used for a different request")
                return stored.tracker
            result = await write()
            await self.store.set(key, StoredWrite(request_digest, result), WRITE, ttl=ttl)
            return result

    async def close(self) -> None:
        await self.store.close()
