"""Retry policy: only what is worth retrying, honouring Retry-After, within a budget."""

from __future__ import annotations

import pytest

from gateway.core.errors import (
    UpstreamAuthError,
    UpstreamRateLimitedError,
    UpstreamUnavailableError,
)
from gateway.core.records import Vendor
from gateway.core.resilience import RetryPolicy


class Failing:
    def __init__(self, error: Exception, times: int) -> None:
        self.error, self.times, self.calls = error, times, 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.times:
            raise self.error
        return "ok"


def policy(**options) -> tuple[RetryPolicy, list[float]]:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    return RetryPolicy(sleep=sleep, **options), slept


async def test_a_5xx_is_retried_with_growing_jittered_backoff() -> None:
    retry, slept = policy(backoff=0.1)
    call = Failing(UpstreamUnavailableError(Vendor.ORQ, "down", status=503), times=2)
    assert await retry.run(call) == "ok" and call.calls == 3
    assert 0.05 <= slept[0] <= 0.1 and 0.1 <= slept[1] <= 0.2


async def test_retry_after_is_honoured_and_a_401_is_not_retried() -> None:
    retry, slept = policy()
    call = Failing(UpstreamRateLimitedError(Vendor.ORQ, "slow down", retry_after=1.5), times=1)
    assert await retry.run(call) == "ok" and slept == [1.5]
    auth = Failing(UpstreamAuthError(Vendor.ORQ, "no", status=401), times=1)
    with pytest.raises(UpstreamAuthError):
        await retry.run(auth)
    assert auth.calls == 1


async def test_the_retry_budget_stops_retries_multiplying_load_in_an_outage() -> None:
    retry, _ = policy(budget_max=10, tokens=10)
    outage = UpstreamUnavailableError(Vendor.ORQ, "down", status=500)
    calls = 0
    for _ in range(100):
        call = Failing(outage, times=99)
        with pytest.raises(UpstreamUnavailableError):
            await retry.run(call)
        calls += call.calls
    # 100 failing requests: the bucket's 10 plus 0.2 per request, not 2 retries each.
    assert calls <= 100 + 10 + 100 * 0.2 + 1
    assert retry.budget_exhausted > 0
