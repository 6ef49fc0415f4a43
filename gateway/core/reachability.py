"""Whether each enabled vendor can be reached: what ``/readyz`` reports.

A vendor **cannot be reached** when
- its circuit is open (``resilience.CircuitBreaker``: five calls in a row failed to reach
  it, timed out, got a 5xx or a 429; the gateway stops asking it for a while), or
- its last call did not reach it (``UPSTREAM_UNAVAILABLE``: refused, reset, a 5xx, no free
  connection; or ``UPSTREAM_TIMEOUT``) and a probe fails as well.

A vendor that answered, even with an error (401, another 4xx, malformed JSON), was reached.
A vendor not called yet is probed once. The probe is one read of the first page of the
vendor's default listing, with the gateway's own credentials, past the cache, through the
same circuit breaker as every call (so a successful probe also closes a half-open circuit);
it is made at most once per ``interval`` per vendor, whatever the number of readiness
checks, and only while the vendor's state is unknown or failing: with traffic flowing and
calls succeeding, readiness costs no upstream call. A readiness check waits at most
``wait`` seconds for a probe (kubelet's default probe timeout is 1 s); a probe still under
way counts as not reachable yet, and its result serves the next check.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from gateway.core.context import Priority, RequestState
from gateway.core.contract import ListQuery
from gateway.core.errors import UpstreamError
from gateway.core.records import Vendor
from gateway.core.resilience import CircuitState
from gateway.core.upstream import Upstream

UNREACHED_CODES = frozenset({"UPSTREAM_UNAVAILABLE", "UPSTREAM_TIMEOUT"})
DEFAULT_PROBE_INTERVAL_SECONDS = 5.0
DEFAULT_PROBE_WAIT_SECONDS = 0.5
DEFAULT_PROBE_TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class Reach:
    reachable: bool
    reason: str
    """Why, in a few words for operators: ``"circuit open"``, ``"probe failed"``, …"""


class Reachability:
    def __init__(
        self,
        upstream: Upstream,
        *,
        interval: float = DEFAULT_PROBE_INTERVAL_SECONDS,
        wait: float = DEFAULT_PROBE_WAIT_SECONDS,
        timeout: float = DEFAULT_PROBE_TIMEOUT_SECONDS,
    ) -> None:
        self.upstream = upstream
        self.interval = interval
        self.wait = wait
        self.timeout = timeout
        self._probes: dict[Vendor, tuple[float, asyncio.Task[Reach]]] = {}

    async def check(self, vendor: Vendor) -> Reach:
        if self.upstream.circuit_state(vendor) is CircuitState.OPEN:
            return Reach(False, "circuit open")
        health = self.upstream.health[vendor]
        if health.last_call_ok:
            return Reach(True, "last call succeeded")
        if health.last_call_ok is False and health.last_error_code not in UNREACHED_CODES:
            return Reach(True, "answered with an error")
        probe = self._probe(vendor)
        try:
            return await asyncio.wait_for(asyncio.shield(probe), self.wait)
        except TimeoutError:
            return Reach(False, "probe under way")

    def _probe(self, vendor: Vendor) -> asyncio.Task[Reach]:
        """The vendor's latest probe if it is recent (or still running), else a new one."""
        now = time.monotonic()
        latest = self._probes.get(vendor)
        if latest is not None and (not latest[1].done() or now - latest[0] < self.interval):
            return latest[1]
        task = asyncio.ensure_future(self._read_first_page(vendor))
        self._probes[vendor] = (now, task)
        return task

    async def _read_first_page(self, vendor: Vendor) -> Reach:
        sources = self.upstream.connector(vendor).sources(ListQuery())
        if not sources:
            return Reach(True, "nothing to probe")
        # Background: a probe never takes a call the vendor budget keeps for requests (a
        # refused probe is UPSTREAM_BUDGET_EXHAUSTED: the vendor was not asked, not unreached).
        state = RequestState(
            bypass_cache=True,
            deadline=time.monotonic() + self.timeout,
            priority=Priority.BACKGROUND,
        )
        try:
            await self.upstream.fetch_page(sources[0], None, state)
        except UpstreamError as error:
            if error.code in UNREACHED_CODES:
                return Reach(False, "probe failed")
            return Reach(True, "probe answered with an error")
        return Reach(True, "probe succeeded")
