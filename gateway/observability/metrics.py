"""Prometheus metrics. Counters that happen on the hot path (requests, upstream calls) are
observed where they happen; state the gateway already keeps (vendor health, cache stats,
circuit state) is read at scrape time by a collector, so the core carries no metric code.

Each app owns its registry, so several gateways in one process (tests) never clash.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from gateway.core.resilience import CircuitState
from gateway.observability.slow import SlowCollector

if TYPE_CHECKING:
    from gateway.core.upstream import Upstream

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
CIRCUIT_VALUE = {CircuitState.CLOSED: 0, CircuitState.HALF_OPEN: 1, CircuitState.OPEN: 2}
ANONYMOUS = "anonymous"
OTHER_OPERATION = "_other"
"""``/metrics`` is open to anyone, so no label carries text a caller or a vendor chose:
operation names are labels only when the operator listed them (``graphql.metric_operations``),
every other name counts as ``_other``."""
MAX_ENDPOINTS_PER_VENDOR = 20
"""Endpoint labels are route templates the connectors build; past this many per vendor (an
id the template missed), the rest count as ``OTHER_ENDPOINT``."""
OTHER_ENDPOINT = "_other"
UPSTREAM_OUTCOMES = frozenset({"timeout", "unreachable", "cancelled", "error"})


class Metrics:
    def __init__(self, operations: Iterable[str] = ()) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.operations = frozenset(operations) | {ANONYMOUS}
        self._endpoints: dict[str, set[str]] = {}
        self.requests = RequestCollector()
        self.registry.register(self.requests)
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

    def operation_label(self, name: str) -> str:
        """``name`` if the operator listed it, else ``_other``: a fixed set of labels."""
        return name if name in self.operations else OTHER_OPERATION

    def count_request(self, operation: str, outcome: str, seconds: float) -> None:
        self.requests.count(self.operation_label(operation), outcome, seconds)

    def count_cached_response(self, operation: str, seconds: float) -> None:
        self.requests.count(self.operation_label(operation), "ok", seconds, cached=True)

    def count_upstream(self, vendor: str, endpoint: str, status: str, seconds: float) -> None:
        """One upstream call. ``status`` is an HTTP status or a transport outcome; anything
        else (a vendor's odd code) counts as ``error``, so the label set stays fixed."""
        seen = self._endpoints.setdefault(vendor, set())
        if endpoint not in seen:
            if len(seen) >= MAX_ENDPOINTS_PER_VENDOR:
                endpoint = OTHER_ENDPOINT
            else:
                seen.add(endpoint)
        if status not in UPSTREAM_OUTCOMES and not (
            len(status) == 3 and status.isdigit() and status[0] in "12345"
        ):
            status = "error"
        self.upstream_calls.labels(vendor, endpoint, status).inc()
        self.upstream_seconds.labels(vendor).observe(seconds)

    def watch(self, upstream: Upstream) -> None:
        """Expose the state ``upstream`` keeps (health, cache, circuits) at scrape time.

        The one place collectors are registered: a module of metrics read at scrape time
        (``slow.py``, budgets, the index) adds its one line here."""
        self.registry.register(StateCollector(upstream))
        self.registry.register(SlowCollector(upstream))


class RequestCollector(Collector):
    """GraphQL request counts and latencies as plain integers, turned into metric families
    at scrape time: a performance shortcut, kept for its figure. Every request passes here,
    a response-cache hit among them; prometheus_client's ``Counter``/``Histogram`` children
    take a lock and look up their labels on every call (a hit counts three of them). The
    event loop is the only writer; a scrape reads copies.

    What it buys: in process, a response-cache hit took 61 µs median with this and 80 µs
    with prometheus_client's counter, histogram and counter in its place (x1.30; 12
    interleaved rounds of 1,000 hits, 2026-11-29, loaded machine); 8 of ~40 µs a hit in
    the cProfile of 2026-11-23 (``bench/README.md``, "Per-hit work"). With this and
    ``logging.write_past_logging`` both off, server CPU per hit under wrk went 156 -> 201 µs
    (bench/'s cache harness, six alternating rounds, same day).
    """

    def __init__(self, buckets: tuple[float, ...] = LATENCY_BUCKETS) -> None:
        self.bounds = (*buckets, math.inf)
        self.requests: dict[tuple[str, str], int] = {}
        self.cached: dict[str, int] = {}
        self.buckets: dict[str, list[int]] = {}
        self.seconds: dict[str, float] = {}

    def count(self, operation: str, outcome: str, seconds: float, cached: bool = False) -> None:
        key = (operation, outcome)
        self.requests[key] = self.requests.get(key, 0) + 1
        if cached:
            self.cached[operation] = self.cached.get(operation, 0) + 1
        counts = self.buckets.get(operation)
        if counts is None:
            counts = self.buckets[operation] = [0] * len(self.bounds)
        counts[bisect.bisect_left(self.bounds, seconds)] += 1
        self.seconds[operation] = self.seconds.get(operation, 0.0) + seconds

    def collect(self) -> Iterator[CounterMetricFamily | HistogramMetricFamily]:
        requests = CounterMetricFamily(
            "gateway_graphql_requests",
            "GraphQL requests by operation name and outcome "
            "(ok, partial: some vendor missing, error).",
            labels=["operation", "outcome"],
        )
        for (operation, outcome), count in list(self.requests.items()):
            requests.add_metric([operation, outcome], count)
        latency = HistogramMetricFamily(
            "gateway_graphql_request_seconds", "GraphQL request latency.", labels=["operation"]
        )
        for operation, counts in list(self.buckets.items()):
            cumulative, total = [], 0
            for bound, count in zip(self.bounds, list(counts), strict=True):
                total += count
                cumulative.append(("+Inf" if math.isinf(bound) else repr(bound), total))
            latency.add_metric([operation], cumulative, self.seconds.get(operation, 0.0))
        cached = CounterMetricFamily(
            "gateway_response_cache_hits",
            "GraphQL requests answered whole from the response "
            "cache (also counted in gateway_graphql_requests as ok).",
            labels=["operation"],
        )
        for operation, count in list(self.cached.items()):
            cached.add_metric([operation], count)
        yield from (requests, latency, cached)


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
            "Records with a vendor status the gateway does not map (the values themselves: "
            "Query.vendors, for authenticated callers).",
            labels=["vendor"],
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
            unknown.add_metric([name], health.unknown_status_total)
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
        undecodable = CounterMetricFamily(
            "gateway_cache_undecodable",
            "Values read from the cache backend that were not in this gateway's format "
            "(garbage, another format or version, a planted value): ignored as misses.",
        )
        undecodable.add_metric([], stats["undecodable"])
        held = GaugeMetricFamily(
            "gateway_cache_memory_bytes",
            "Bytes the in-process cache holds (encoded sizes; bounded by cache.max_bytes).",
        )
        held.add_metric([], self.upstream.cache.store.bytes_held() or 0)
        yield from (cache, circuit, unknown, joins, errors, undecodable, held)
