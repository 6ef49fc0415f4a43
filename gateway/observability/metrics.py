"""Prometheus metrics. Counters that happen on the hot path (requests, upstream calls) are
observed where they happen; state the gateway already keeps (vendor health, cache stats,
circuit state) is read at scrape time by a collector, so the core carries no metric code.

Each app owns its registry, so several gateways in one process (tests) never clash.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from gateway.core.resilience import CircuitState

if TYPE_CHECKING:
    from gateway.core.upstream import Upstream

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
CIRCUIT_VALUE = {CircuitState.CLOSED: 0, CircuitState.HALF_OPEN: 1, CircuitState.OPEN: 2}
MAX_OPERATION_LABELS = 200
"""Operation names come from clients: past this many distinct ones, the rest count as
``OTHER_OPERATION`` so no caller can grow the registry without bound."""
MAX_OPERATION_LENGTH = 64
OTHER_OPERATION = "_other"


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._operations: set[str] = set()
        self.requests = Counter(
            "gateway_graphql_requests",
            "GraphQL requests by operation name and outcome "
            "(ok, partial: some vendor missing, error).",
            ["operation", "outcome"],
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "gateway_graphql_request_seconds",
            "GraphQL request latency.",
            ["operation"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.upstream_calls = Counter(
            "gateway_upstream_calls",
            "Upstream HTTP calls by vendor, endpoint (route "
            "template) and status (HTTP status, or the transport error).",
            ["vendor", "endpoint", "status"],
            registry=self.registry,
        )
        self.upstream_seconds = Histogram(
            "gateway_upstream_seconds",
            "Upstream call latency per vendor.",
            ["vendor"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )

        self.response_cache_hits = Counter(
            "gateway_response_cache_hits",
            "GraphQL requests answered whole from the response "
            "cache (also counted in gateway_graphql_requests as ok).",
            ["operation"],
            registry=self.registry,
        )

    def operation_label(self, name: str) -> str:
        """``name`` as a label value, bounded in length and in how many distinct ones."""
        name = name[:MAX_OPERATION_LENGTH]
        if name not in self._operations:
            if len(self._operations) >= MAX_OPERATION_LABELS:
                return OTHER_OPERATION
            self._operations.add(name)
        return name

    def count_request(self, operation: str, outcome: str, seconds: float) -> None:
        label = self.operation_label(operation)
        self.requests.labels(label, outcome).inc()
        self.request_seconds.labels(label).observe(seconds)

    def count_cached_response(self, operation: str, seconds: float) -> None:
        self.count_request(operation, "ok", seconds)
        self.response_cache_hits.labels(self.operation_label(operation)).inc()

    def watch(self, upstream: Upstream) -> None:
        """Expose the state ``upstream`` keeps (health, cache, circuits) at scrape time."""
        self.registry.register(StateCollector(upstream))


class StateCollector(Collector):
    """Reads what the gateway already tracks, at scrape time."""

    def __init__(self, upstream: Upstream) -> None:
        self.upstream = upstream

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        cache = CounterMetricFamily(
            "gateway_cache_lookups",
            "Page cache lookups per vendor and result (hit, miss, stale).",
            labels=["vendor", "result"],
        )
        circuit = GaugeMetricFamily(
            "gateway_circuit_state",
            "Circuit per vendor: 0 closed, 1 half-open, 2 open.",
            labels=["vendor"],
        )
        unknown = CounterMetricFamily(
            "gateway_unmapped_statuses",
            "Records with a vendor status the gateway does not map.",
            labels=["vendor", "value"],
        )
        for vendor, health in self.upstream.health.items():
            if not health.enabled:
                continue
            name = vendor.value
            cache.add_metric([name, "hit"], health.cache_hits)
            cache.add_metric([name, "miss"], health.cache_misses)
            cache.add_metric([name, "stale"], health.stale_served)
            breaker = self.upstream.vendors[vendor].breaker
            if breaker is not None:
                circuit.add_metric([name], CIRCUIT_VALUE[breaker.state])
            for value, count in health.unknown_statuses.items():
                unknown.add_metric([name, value], count)
        joins = CounterMetricFamily(
            "gateway_singleflight_joins",
            "Fetches that joined one already under way (here or, with Redis, in a replica).",
            labels=["scope"],
        )
        stats = self.upstream.cache.stats
        joins.add_metric(["process"], stats["joins"])
        joins.add_metric(["replicas"], stats["remote_joins"])
        errors = CounterMetricFamily(
            "gateway_cache_backend_errors", "Cache backend operations that failed."
        )
        errors.add_metric([], stats["errors"])
        yield from (cache, circuit, unknown, joins, errors)
