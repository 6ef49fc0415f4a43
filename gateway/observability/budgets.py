"""The vendor budgets in ``/metrics``, read at scrape time from what ``gateway.core.budget``
and the vendors' health already keep (as seen by this replica: with Redis, the shared
window as of this replica's last call to the vendor)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from gateway.core.context import Priority

if TYPE_CHECKING:
    from gateway.core.upstream import Upstream


class BudgetCollector(Collector):
    def __init__(self, upstream: Upstream) -> None:
        self.upstream = upstream

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        limit = GaugeMetricFamily(
            "gateway_vendor_budget_limit",
            "Calls per minute in force per vendor (configured, or lower as the vendor said; "
            "this replica's share while Redis is down). Absent: no limit.",
            labels=["vendor"],
        )
        remaining = GaugeMetricFamily(
            "gateway_vendor_budget_remaining",
            "Calls left in the vendor's rolling minute for interactive requests.",
            labels=["vendor"],
        )
        deferred = CounterMetricFamily(
            "gateway_vendor_calls_deferred",
            "Upstream calls not made because the vendor's budget had no room, by priority.",
            labels=["vendor", "priority"],
        )
        limited = CounterMetricFamily(
            "gateway_vendor_rate_limited",
            "429s received from the vendor (the goal is none).",
            labels=["vendor"],
        )
        stale = CounterMetricFamily(
            "gateway_vendor_stale_answers",
            "Answers with the vendor's part served stale from the cache because its budget "
            "was spent or it was slow.",
            labels=["vendor"],
        )
        budgets = self.upstream.budgets
        for vendor, health in self.upstream.health.items():
            if not health.enabled:
                continue
            name = vendor.value
            status = budgets.status(vendor)
            if status.limit is not None:
                limit.add_metric([name], status.limit)
            if status.remaining is not None:
                remaining.add_metric([name], status.remaining)
            for priority in Priority:
                deferred.add_metric([name, priority.name.lower()], status.deferred.get(priority, 0))
            limited.add_metric([name], status.rate_limited)
            stale.add_metric([name], health.stale_answers)
        yield from (limit, remaining, deferred, limited, stale)
