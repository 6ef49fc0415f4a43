"""``gateway_vendor_slow``: answers that went out without a vendor, or with its part stale,
because it had not answered within ``graphql.answer_within``; and the vendor's calls still
finishing in the background (``gateway_vendor_late_calls``). Read at scrape time from what
``Upstream`` keeps (``VendorHealth.slow_parts``, ``LateCalls``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from gateway.core.upstream import Upstream


class SlowCollector(Collector):
    def __init__(self, upstream: Upstream) -> None:
        self.upstream = upstream

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        slow = CounterMetricFamily(
            "gateway_vendor_slow",
            "Answers whose part of this vendor was not in within graphql.answer_within: "
            "served stale from the cache, or missing (UPSTREAM_SLOW).",
            labels=["vendor"],
        )
        late = GaugeMetricFamily(
            "gateway_vendor_late_calls",
            "Calls to this vendor that outlived their answer and are finishing in the "
            "background to fill the cache (bounded per vendor).",
            labels=["vendor"],
        )
        for vendor, health in self.upstream.health.items():
            if health.enabled:
                slow.add_metric([vendor.value], health.slow_parts)
                late.add_metric([vendor.value], self.upstream.late.running(vendor))
        yield from (slow, late)
