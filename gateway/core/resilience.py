"""Retries and circuit breaking per vendor, so one vendor's bad day costs nobody else.

- ``RetryPolicy``: only for idempotent calls (reads and PUT), only on connection errors, 5xx
  and 429; jittered exponential backoff that honours ``Retry-After`` (a longer one than
  ``max_backoff`` is not retried); and a retry budget (a token bucket filled by first
  attempts) so retries can never multiply load in an outage.
- ``CircuitBreaker``: opens after N consecutive failures, fails fast while open, lets one
  probe through after ``reset_seconds`` (half-open), closes on its success.
- Neither counts a vendor budget's refusal (``UPSTREAM_BUDGET_EXHAUSTED``): nothing was sent.
"""

from __future__ import annotations

import asyncio
import enum
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from gateway.core.errors import (
    UpstreamBudgetExhaustedError,
    UpstreamError,
    UpstreamRateLimitedError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)
from gateway.core.records import Vendor

T = TypeVar("T")

DEFAULT_ATTEMPTS = 3
DEFAULT_BACKOFF_SECONDS = 0.1
DEFAULT_MAX_BACKOFF_SECONDS = 2.0
DEFAULT_RETRY_BUDGET_RATIO = 0.2
"""Each first attempt earns 0.2 retries: at most one call in six is a retry."""
DEFAULT_RETRY_BUDGET_MIN = 10.0
DEFAULT_FAILURE_THRESHOLD = 5
DEFAULT_RESET_SECONDS = 30.0


def retryable(error: UpstreamError) -> bool:
    if isinstance(error, UpstreamRateLimitedError | UpstreamTimeoutError):
        return True
    return isinstance(error, UpstreamUnavailableError) and not isinstance(error, CircuitOpenError)


class CircuitOpenError(UpstreamUnavailableError):
    """The vendor failed repeatedly; its calls fail fast until a probe succeeds."""


@dataclass
class RetryPolicy:
    attempts: int = DEFAULT_ATTEMPTS
    backoff: float = DEFAULT_BACKOFF_SECONDS
    max_backoff: float = DEFAULT_MAX_BACKOFF_SECONDS
    budget_ratio: float = DEFAULT_RETRY_BUDGET_RATIO
    budget_max: float = DEFAULT_RETRY_BUDGET_MIN
    tokens: float = field(default=DEFAULT_RETRY_BUDGET_MIN)
    retries: int = 0
    budget_exhausted: int = 0
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep

    def delay(self, attempt: int, error: UpstreamError) -> float:
        if isinstance(error, UpstreamRateLimitedError) and error.retry_after is not None:
            return min(error.retry_after, self.max_backoff)
        base = min(self.max_backoff, self.backoff * 2 ** (attempt - 1))
        return random.uniform(base / 2, base)

    def _too_long(self, error: UpstreamError) -> bool:
        """A vendor asking for a longer wait than ``max_backoff``: no retry (the vendor
        budget keeps every call back until then, and an answer must not wait that long)."""
        return (
            isinstance(error, UpstreamRateLimitedError)
            and error.retry_after is not None
            and error.retry_after > self.max_backoff
        )

    async def run(self, call: Callable[[], Awaitable[T]]) -> T:
        self.tokens = min(self.budget_max, self.tokens + self.budget_ratio)
        attempt = 1
        while True:
            try:
                return await call()
            except UpstreamError as error:
                if attempt >= self.attempts or not retryable(error) or self._too_long(error):
                    raise
                if self.tokens < 1:
                    self.budget_exhausted += 1
                    raise
                self.tokens -= 1
                self.retries += 1
                await self.sleep(self.delay(attempt, error))
                attempt += 1


class CircuitState(enum.Enum):
    CLOSED = "CLOSED"
    OPEN = "OPEN"
    HALF_OPEN = "HALF_OPEN"


@dataclass
class CircuitBreaker:
    vendor: Vendor
    failure_threshold: int = DEFAULT_FAILURE_THRESHOLD
    reset_seconds: float = DEFAULT_RESET_SECONDS
    clock: Callable[[], float] = time.monotonic
    failures: int = 0
    opened_at: float | None = None
    probing: bool = False

    @property
    def state(self) -> CircuitState:
        if self.opened_at is None:
            return CircuitState.CLOSED
        if self.clock() - self.opened_at >= self.reset_seconds:
            return CircuitState.HALF_OPEN
        return CircuitState.OPEN

    async def call(self, call: Callable[[], Awaitable[T]]) -> T:
        state = self.state
        if state is CircuitState.OPEN or (state is CircuitState.HALF_OPEN and self.probing):
            raise CircuitOpenError(
                self.vendor,
                f"{self.vendor.value} is failing; the gateway stopped asking it "
                "for a while (circuit open)",
            )
        self.probing = state is CircuitState.HALF_OPEN
        try:
            result = await call()
        except UpstreamBudgetExhaustedError:
            raise  # the gateway's own refusal: nothing was sent, the vendor did not fail
        except UpstreamError as error:
            if retryable(error) or self.probing:
                self._failed()
            raise
        finally:
            self.probing = False
        self.failures, self.opened_at = 0, None
        return result

    def _failed(self) -> None:
        self.failures += 1
        if self.failures >= self.failure_threshold or self.opened_at is not None:
            self.opened_at = self.clock()
