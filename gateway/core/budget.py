"""Vendor call budgets: the gateway lives within each vendor's rate limit instead of
finding it with 429s.

Per vendor, a rolling window of ``max_requests_per_minute`` calls (orq's plan limit is a
rolling 60 s window) and at most ``max_concurrency`` calls in flight. A call the budget has
no room for is not made and not waited for: ``UpstreamBudgetExhaustedError`` is raised from
inside the page fetch, so the page cache answers from its last good entry (marked stale)
or the vendor is named in ``missingVendors`` with a retry hint.

- **Learning from the vendor** (``learn``, fed by the vendors' transport with every
  response): after a 429 or ``X-RateLimit-Remaining: 0`` nothing is sent until
  ``Retry-After`` / ``X-RateLimit-Reset``; an ``X-RateLimit-Limit`` below the configured
  limit (or any, when none is configured) becomes the limit in force.
- **Priorities**: background calls (the subscription poller, the index sync) may only use
  the window above ``interactive_reserve`` of the limit, and never wait for a concurrency
  slot; interactive calls get the whole window and wait for a slot (bounded by their
  request's deadline: in-flight calls end in milliseconds, a refused one would cost an
  answer).
- **Shared by replicas**: with Redis, every replica draws from one window
  (``budget_redis.SharedWindow``, an atomic script). Redis down: each replica draws from its
  own window with its share, the limit over the replicas it last saw drawing (never more
  than the limit, never unlimited); it asks Redis again after ``REDIS_RETRY_SECONDS``.
  Concurrency is per replica (a slot is held for milliseconds; sharing it would cost a
  Redis round trip per call end).

The window is ``WINDOW_SECONDS`` plus ``MARGIN_SECONDS``: a call is counted when the gateway
sends it and by the vendor when it arrives, so a second of margin keeps differences in
latency from letting one call too many into the vendor's own 60 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import logging
import math
import time
import uuid
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from redis.exceptions import RedisError

from gateway.core.budget_redis import Draw, SharedWindow
from gateway.core.context import Priority
from gateway.core.errors import UpstreamBudgetExhaustedError
from gateway.core.records import Vendor
from gateway.core.store import RedisStore, Store

logger = logging.getLogger("gateway.budget")

WINDOW_SECONDS = 60.0
MARGIN_SECONDS = 1.0
DEFAULT_INTERACTIVE_RESERVE = 0.25
"""A quarter of each vendor's limit is kept for interactive requests: background work
(polls, sync) can never leave a user's request without a call."""
DEFAULT_QUIET_SECONDS = 10.0
"""Silence after a 429 that says neither ``Retry-After`` nor ``X-RateLimit-Reset``."""
MAX_QUIET_SECONDS = 3600.0
"""A vendor's wait is believed up to an hour: a garbled header cannot silence it for days."""
LEARNED_LIMIT_SECONDS = 3600.0
"""How long a limit the vendor sent is kept in Redis after it was last seen."""
REPLICAS_SEEN_SECONDS = 2 * WINDOW_SECONDS
"""A replica counts towards the shares while it drew from the shared window this lately."""
REDIS_RETRY_SECONDS = 2.0
"""After Redis failed, the replica draws its share locally this long before asking again,
so a Redis that hangs costs one timeout, not one per call."""
CONCURRENCY_RETRY_SECONDS = 1.0
"""The retry hint of a background call refused because every slot was busy."""
EPOCH_THRESHOLD = 1e9
"""An ``X-RateLimit-Reset`` above this is a Unix time (seconds; ms above 1e12), below it a
number of seconds."""

ResponseObserver = Callable[[int, Mapping[str, str]], Awaitable[None]]
"""What the vendors' transport calls with each response's status and headers."""


@dataclass(frozen=True, slots=True)
class VendorLimits:
    """What the operator configured for one vendor (None: no limit)."""

    per_minute: int | None = None
    max_concurrency: int | None = None


@dataclass(frozen=True, slots=True)
class BudgetStatus:
    """One vendor's budget as this replica last saw it (``Query.vendors``, ``/metrics``)."""

    limit: int | None
    """Calls per minute in force: the configured or learned limit, or this replica's share
    while Redis is down; None: unlimited."""
    remaining: int | None
    """Calls an interactive request could still make in the window."""
    blocked_until: float | None
    """Unix time until which the vendor asked for silence."""
    retry_after: float | None
    """Seconds until an interactive call may go again; None when one may go now."""
    deferred: Mapping[Priority, int]
    """Calls not made because the budget had no room, per priority."""
    rate_limited: int
    """429s received from the vendor (the goal is none)."""
    max_concurrency: int | None
    in_flight: int
    shared: bool
    """Drawn from the window every replica shares (Redis answering)."""
    replicas: int


class PriorityGate:
    """``size`` calls in flight; interactive callers queue for a slot (first come, first
    served), background callers take one only when it is free and nobody queues."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.free = size
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def in_flight(self) -> int:
        return self.size - self.free

    async def enter(self, priority: Priority) -> bool:
        if self.free > 0 and not self._waiters:
            self.free -= 1
            return True
        if priority is Priority.BACKGROUND:
            return False
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.leave()  # handed a slot in the same instant: pass it on
            else:
                self._waiters.remove(waiter)
            raise
        return True

    def leave(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot passes on, ``free`` unchanged
                return
        self.free += 1


@dataclass
class VendorBudget:
    """One vendor's state in this replica: its own window (the whole budget without Redis,
    a mirror of its grants with Redis, its share when Redis is down) and what the vendor
    said."""

    vendor: Vendor
    limits: VendorLimits
    gate: PriorityGate | None = None
    grants: deque[float] = field(default_factory=deque)
    blocked_until: float = 0.0
    learned_limit: int | None = None
    deferred: Counter[Priority] = field(default_factory=Counter)
    rate_limited: int = 0
    last: Draw | None = None
    """The shared window's last answer (Redis); None without Redis."""
    last_at: float = 0.0

    def limit(self, replicas: int) -> int | None:
        """The limit in force over ``replicas`` (1: the whole of it)."""
        known = [x for x in (self.limits.per_minute, self.learned_limit) if x]
        if not known:
            return None
        return min(known) // replicas


class Budgets:
    """Every vendor's budget behind one narrow interface: ``call`` around each upstream
    request, ``learn`` from each response, ``status``/``peek`` to show it, ``room`` for
    work that is only worth doing with room to spare (the merge's prefetch).

    ``shared``: the window in Redis every replica draws from (``for_store`` makes it on
    the page cache's Redis), or None for this process alone. ``clock``: Unix seconds,
    injectable (tests); without one, the shared window keeps Redis's time."""

    def __init__(
        self,
        limits: Mapping[Vendor, VendorLimits] | None = None,
        *,
        interactive_reserve: float = DEFAULT_INTERACTIVE_RESERVE,
        shared: SharedWindow | None = None,
        clock: Callable[[], float] | None = None,
        window: float = WINDOW_SECONDS + MARGIN_SECONDS,
    ) -> None:
        self.reserve = interactive_reserve
        self.shared = shared
        self.window = window
        self.clock = clock
        self.replica = uuid.uuid4().hex[:12]
        self.replicas = 1
        """Replicas seen drawing lately (Redis): the divisor of the share when it is down."""
        self._redis_retry_at = 0.0
        self.vendors: dict[Vendor, VendorBudget] = {}
        for vendor in Vendor:
            configured = (limits or {}).get(vendor, VendorLimits())
            gate = PriorityGate(configured.max_concurrency) if configured.max_concurrency else None
            self.vendors[vendor] = VendorBudget(vendor, configured, gate)

    @classmethod
    def for_store(
        cls,
        store: Store,
        limits: Mapping[Vendor, VendorLimits] | None = None,
        *,
        interactive_reserve: float = DEFAULT_INTERACTIVE_RESERVE,
    ) -> Budgets:
        """Budgets shared through the page cache's Redis when it has one, else local."""
        budgets = cls(limits, interactive_reserve=interactive_reserve)
        if isinstance(store, RedisStore):
            budgets.shared = SharedWindow(
                store.client, budgets.replica, window=budgets.window, seen=REPLICAS_SEEN_SECONDS
            )
        return budgets

    def now(self) -> float:
        return self.clock() if self.clock is not None else time.time()

    # -- drawing --------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def call(self, vendor: Vendor, priority: Priority) -> AsyncIterator[None]:
        """Hold a slot and one call of the window around one upstream request, or raise
        ``UpstreamBudgetExhaustedError`` at once (nothing sent)."""
        budget = self.vendors[vendor]
        gate = budget.gate
        if gate is not None and not await gate.enter(priority):
            raise self._refused(
                budget, priority, CONCURRENCY_RETRY_SECONDS, "every call slot is in use"
            )
        try:
            await self.take(vendor, priority)
            yield
        finally:
            if gate is not None:
                gate.leave()

    async def take(self, vendor: Vendor, priority: Priority) -> None:
        """One call of ``vendor``'s window for ``priority``, or ``UpstreamBudgetExhaustedError``."""
        budget = self.vendors[vendor]
        background = priority is Priority.BACKGROUND
        now = self.now()
        draw = await self._draw_shared(budget, background, now)
        if draw is not None:
            if draw.granted:
                self._evict(budget, now)
                budget.grants.append(now)  # the mirror a Redis outage falls back on
                return
            why = "the vendor asked to wait" if draw.blocked else "its call budget is spent"
            raise self._refused(budget, priority, draw.wait, why)
        if budget.blocked_until > now:
            raise self._refused(
                budget, priority, budget.blocked_until - now, "the vendor asked to wait"
            )
        limit = budget.limit(self.replicas)
        # Counted even without a limit: one the vendor states later finds them.
        wait = self._wait(budget, math.inf if limit is None else self._cap(limit, background), now)
        if wait is not None:
            raise self._refused(budget, priority, wait, "its call budget is spent")
        budget.grants.append(now)

    def room(self, vendor: Vendor, priority: Priority = Priority.BACKGROUND) -> bool:
        """Whether a call of ``priority`` would likely be granted now, from what this
        replica last saw (no round trip): for optional calls (the merge's prefetch)."""
        status = self.status(vendor)
        if status.retry_after is not None:
            return False
        if status.limit is None or status.remaining is None:
            return True
        reserve = status.limit - self._cap(status.limit, background=True)
        spare = status.remaining - (reserve if priority is Priority.BACKGROUND else 0)
        return spare > 0

    def _cap(self, limit: int, background: bool) -> int:
        return limit - math.ceil(limit * self.reserve) if background else limit

    def _evict(self, budget: VendorBudget, now: float) -> int:
        """Drop the grants past the window; the number left."""
        grants = budget.grants
        while grants and grants[0] <= now - self.window:
            grants.popleft()
        return len(grants)

    def _wait(self, budget: VendorBudget, cap: float, now: float) -> float | None:
        """Seconds until the local window has room under ``cap``; None: it has now."""
        used = self._evict(budget, now)
        if used < cap:
            return None
        return budget.grants[used - int(cap)] + self.window - now if cap > 0 else self.window

    def _refused(
        self, budget: VendorBudget, priority: Priority, wait: float, why: str
    ) -> UpstreamBudgetExhaustedError:
        budget.deferred[priority] += 1
        retry = max(1, math.ceil(wait))
        name = budget.vendor.value
        return UpstreamBudgetExhaustedError(
            budget.vendor,
            f"{name} was not called: {why}; retry in {retry} s",
            retry_after=float(retry),
        )

    async def _draw_shared(
        self, budget: VendorBudget, background: bool, now: float, *, peek: bool = False
    ) -> Draw | None:
        """The shared window's answer, or None without Redis or while it is down."""
        shared = self.shared
        if shared is None or time.monotonic() < self._redis_retry_at:
            return None
        try:
            draw = await shared.draw(
                budget.vendor,
                budget.limits.per_minute,
                self.reserve,
                background,
                peek=peek,
                now=now if self.clock is not None else None,
            )
        except (RedisError, OSError, TimeoutError) as exc:
            self._redis_failed(exc)
            return None
        if self._redis_retry_at:
            self._redis_retry_at = 0.0
            logger.warning("vendor budgets: Redis answers again; drawing from the shared window")
        self.replicas = draw.replicas
        budget.last, budget.last_at = draw, now
        if draw.limit is not None and draw.limit != budget.limits.per_minute:
            budget.learned_limit = draw.limit  # another replica heard it from the vendor
        if draw.blocked:
            budget.blocked_until = max(budget.blocked_until, now + draw.wait)
        return draw

    def _redis_failed(self, exc: BaseException) -> None:
        if not self._redis_retry_at:
            logger.warning(
                "vendor budgets: Redis failed (%s); each replica draws its share (1/%d)",
                type(exc).__name__,
                self.replicas,
            )
        self._redis_retry_at = time.monotonic() + REDIS_RETRY_SECONDS

    # -- learning -------------------------------------------------------------------------
    def observer(self, vendor: Vendor) -> ResponseObserver:
        """The callback the vendor's transport calls with every response."""

        async def observe(status: int, headers: Mapping[str, str]) -> None:
            await self.learn(vendor, status, headers)

        return observe

    async def learn(self, vendor: Vendor, status: int, headers: Mapping[str, str]) -> None:
        """What a response says about the vendor's limit: a lower limit, or a wait. Header
        names in any case (``headers`` may be a plain mapping)."""
        budget = self.vendors[vendor]
        headers = {name.lower(): value for name, value in headers.items()}
        limit = _whole(headers.get("x-ratelimit-limit"))
        remaining = _whole(headers.get("x-ratelimit-remaining"))
        quiet = 0.0
        if status == 429:
            budget.rate_limited += 1
            asked = _wait(headers, self.now())
            quiet = DEFAULT_QUIET_SECONDS if asked is None else asked
        elif remaining == 0:
            quiet = _wait(headers, self.now()) or 0.0
        if limit is None and quiet <= 0:
            return
        quiet = min(quiet, MAX_QUIET_SECONDS)
        if limit is not None and limit > 0:
            budget.learned_limit = limit
        if quiet > 0:
            budget.blocked_until = max(budget.blocked_until, self.now() + quiet)
        if self.shared is None or time.monotonic() < self._redis_retry_at:
            return
        try:
            await self.shared.learn(
                vendor,
                quiet,
                limit if limit and limit > 0 else None,
                LEARNED_LIMIT_SECONDS,
                self.clock() if self.clock is not None else None,
            )
        except (RedisError, OSError, TimeoutError) as exc:
            self._redis_failed(exc)

    # -- showing --------------------------------------------------------------------------
    def status(self, vendor: Vendor) -> BudgetStatus:
        """The budget as last seen, without a round trip (``/metrics`` reads it): with Redis,
        as the shared window answered this replica's last draw."""
        budget = self.vendors[vendor]
        now = self.now()
        shared = self.shared is not None and not self._redis_retry_at
        last = budget.last if shared else None
        wait: float | None
        if last is not None:
            limit, used = last.limit, last.used
            full = last.blocked or (limit is not None and used >= limit)
            wait = last.wait - (now - budget.last_at) if full and not last.granted else None
        else:
            limit = budget.limit(self.replicas)
            wait = None if limit is None else self._wait(budget, limit, now)
            used = len(budget.grants)
        blocked = budget.blocked_until if budget.blocked_until > now else None
        waits = [w for w in (wait, blocked - now if blocked else None) if w and w > 0]
        gate = budget.gate
        return BudgetStatus(
            limit=limit,
            remaining=None if limit is None else max(0, limit - used),
            blocked_until=blocked,
            retry_after=max(waits) if waits else None,
            deferred=dict(budget.deferred),
            rate_limited=budget.rate_limited,
            max_concurrency=budget.limits.max_concurrency,
            in_flight=gate.in_flight if gate else 0,
            shared=shared,
            replicas=self.replicas,
        )

    async def peek(self, vendor: Vendor) -> BudgetStatus:
        """The budget now: with Redis, the shared window is counted first (nothing taken)."""
        await self._draw_shared(self.vendors[vendor], False, self.now(), peek=True)
        return self.status(vendor)


def _whole(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return max(0, int(value.strip()))
    except ValueError:
        return None


def _wait(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds the vendor asked to wait: ``Retry-After`` (seconds or an HTTP date), else
    ``X-RateLimit-Reset`` (a Unix time, or seconds); None when neither says."""
    retry = headers.get("retry-after")
    if retry is not None:
        text = retry.strip()
        try:
            return max(0.0, float(text))
        except ValueError:
            try:
                return max(0.0, email.utils.parsedate_to_datetime(text).timestamp() - now)
            except (TypeError, ValueError, IndexError):
                pass
    reset = headers.get("x-ratelimit-reset")
    if reset is None:
        return None
    try:
        value = float(reset.strip())
    except ValueError:
        return None
    if value > EPOCH_THRESHOLD * 1000:
        value /= 1000
    return max(0.0, value - now) if value > EPOCH_THRESHOLD else max(0.0, value)
