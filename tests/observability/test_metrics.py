"""Prometheus metrics: names, labels, and values that agree with what the gateway did."""

from __future__ import annotations

import re
import time

from prometheus_client.parser import text_string_to_metric_families

from gateway.core.records import Vendor
from gateway.observability.metrics import (
    MAX_ENDPOINTS_PER_VENDOR,
    OTHER_ENDPOINT,
    OTHER_OPERATION,
    Metrics,
)
from gateway.observability.transport import endpoint_template
from tests.conftest import GatewayClient, GatewayFactory

QUERY = "query Recent { tasks(first: 5) { nodes { id vendor } } }"
AGENTEX_ALL = """query Agentex { tasks(first: 100, filter: {vendors: [AGENTEX]}) {
  nodes { id status } } }"""


def samples(client: GatewayClient) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of /metrics, by name and labels (parsed, so the test never depends on
    the order labels are printed in)."""
    text = client.http.get("/metrics").text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(all_samples: dict, name: str, **labels: str) -> float | None:
    return all_samples.get((name, frozenset(labels.items())))


def test_requests_upstream_calls_and_cache_lookups_are_counted(
    make_gateway: GatewayFactory, clean_sandbox
) -> None:
    gateway = make_gateway(metric_operations=("Recent", "Broken"))
    gateway.data(QUERY)
    gateway.data(QUERY)  # answered whole from the response cache
    gateway.data(QUERY.replace("first: 5", "first: 6"))  # pages from the page cache
    gateway.query("query Broken { nope }")
    found = samples(gateway)

    assert value(found, "gateway_graphql_requests_total", operation="Recent", outcome="ok") == 3
    assert value(found, "gateway_graphql_requests_total", operation="Broken", outcome="error")
    assert value(found, "gateway_response_cache_hits_total", operation="Recent") == 1
    assert value(found, "gateway_graphql_request_seconds_count", operation="Recent") == 3

    calls = {
        (dict(labels)["vendor"], dict(labels)["endpoint"], dict(labels)["status"]): count
        for (name, labels), count in found.items()
        if name == "gateway_upstream_calls_total"
    }
    assert calls[("agentex", "/tracker", "200")] >= 1
    assert calls[("xpander", "/v1/agents/{id}/tasks", "200")] >= 1
    assert calls[("orq", "/v2/agents/{id}/tasks", "200")] >= 1
    assert calls[("subnoto", "/public/agent-task/list", "200")] >= 1
    agents = {a for v in Vendor for a in clean_sandbox.agents(v)}
    assert not any(agent in endpoint for _, endpoint, _ in calls for agent in agents)
    for vendor in Vendor:
        upstream = value(found, "gateway_upstream_seconds_count", vendor=vendor.value)
        assert upstream == sum(c for (v, _, _), c in calls.items() if v == vendor.value)
        assert value(found, "gateway_cache_lookups_total", vendor=vendor.value, result="miss")
        assert value(found, "gateway_cache_lookups_total", vendor=vendor.value, result="hit")
        assert value(found, "gateway_cache_lookups_total", vendor=vendor.value, result="stale") == 0
        assert value(found, "gateway_circuit_state", vendor=vendor.value) == 0
    assert value(found, "gateway_singleflight_joins_total", scope="process") is not None
    assert value(found, "gateway_singleflight_joins_total", scope="replicas") == 0
    assert value(found, "gateway_cache_backend_errors_total") == 0
    assert value(found, "gateway_cache_undecodable_total") == 0


def test_unmapped_statuses_are_counted_by_vendor(
    make_gateway: GatewayFactory, clean_sandbox
) -> None:
    """The count only: the values are vendor text, shown to authenticated callers in
    ``Query.vendors``, never in the open ``/metrics``."""
    gateway = make_gateway()
    gateway.data(AGENTEX_ALL)
    [agentex] = [
        v
        for v in gateway.data("{ vendors { vendor unknownStatuses } }")["vendors"]
        if v["vendor"] == "AGENTEX"
    ]
    found = samples(gateway)
    assert agentex["unknownStatuses"] > 0
    assert (
        value(found, "gateway_unmapped_statuses_total", vendor="agentex")
        == agentex["unknownStatuses"]
    )


def test_the_circuit_gauge_follows_the_breaker(make_gateway: GatewayFactory) -> None:
    gateway = make_gateway()
    upstream = gateway.server.server.config.app.state.gateway.service.upstream  # type: ignore[attr-defined]
    breaker = upstream.vendors[Vendor.ORQ].breaker
    breaker.opened_at = time.monotonic()
    assert value(samples(gateway), "gateway_circuit_state", vendor="orq") == 2
    breaker.opened_at -= breaker.reset_seconds
    assert value(samples(gateway), "gateway_circuit_state", vendor="orq") == 1
    breaker.opened_at = None
    assert value(samples(gateway), "gateway_circuit_state", vendor="orq") == 0


def test_failed_upstream_calls_are_labelled_with_their_status(
    make_gateway: GatewayFactory, clean_sandbox
) -> None:
    clean_sandbox.knobs(Vendor.SUBNOTO).fail_next = 1  # one 500, then the retry succeeds
    gateway = make_gateway()
    gateway.data(QUERY)
    found = samples(gateway)
    endpoint = "/public/agent-task/list"
    assert (
        value(
            found, "gateway_upstream_calls_total", vendor="subnoto", endpoint=endpoint, status="500"
        )
        == 1
    )
    assert value(
        found, "gateway_upstream_calls_total", vendor="subnoto", endpoint=endpoint, status="200"
    )


def test_each_app_has_its_own_registry(make_gateway: GatewayFactory) -> None:
    first, second = make_gateway(metric_operations=("Recent",)), make_gateway()
    first.data(QUERY)
    assert value(samples(first), "gateway_graphql_requests_total", operation="Recent", outcome="ok")
    assert not value(
        samples(second), "gateway_graphql_requests_total", operation="Recent", outcome="ok"
    )


def test_only_operation_names_the_operator_listed_become_labels() -> None:
    metrics = Metrics(operations=["RecentTasks"])
    for n in range(50):
        metrics.count_request(f"Op{n}", "ok", 0.01)
    metrics.count_request("RecentTasks", "ok", 0.01)
    metrics.count_request("anonymous", "error", 0.01)
    metrics.count_cached_response("x" * 1000, 0.01)
    labels = {
        s.labels["operation"]
        for family in metrics.registry.collect()
        if family.name in ("gateway_graphql_requests", "gateway_response_cache_hits")
        for s in family.samples
    }
    assert labels == {"RecentTasks", "anonymous", OTHER_OPERATION}


def test_upstream_labels_stay_a_fixed_set() -> None:
    metrics = Metrics()
    for n in range(MAX_ENDPOINTS_PER_VENDOR + 30):
        metrics.count_upstream("agentex", f"/tracker/{n}/x", "200", 0.01)
    metrics.count_upstream("orq", "/tracker", "799", 0.01)
    metrics.count_upstream("orq", "/tracker", "<b>", 0.01)
    metrics.count_upstream("orq", "/tracker", "timeout", 0.01)
    found = {
        (s.labels["vendor"], s.labels["endpoint"], s.labels["status"])
        for family in metrics.registry.collect()
        if family.name == "gateway_upstream_calls"
        for s in family.samples
        if s.name.endswith("_total")
    }
    endpoints = {endpoint for vendor, endpoint, _ in found if vendor == "agentex"}
    assert len(endpoints) == MAX_ENDPOINTS_PER_VENDOR + 1 and OTHER_ENDPOINT in endpoints
    assert {status for vendor, _, status in found if vendor == "orq"} == {
        "error",
        "timeout",
    }


def test_endpoints_are_route_templates_never_raw_ids() -> None:
    assert endpoint_template("/v1/agents/8c1a2b/tasks", "") == "/v1/agents/{id}/tasks"
    assert endpoint_template("/agentex/tracker/trk_42", "/agentex") == "/tracker/{id}"
    assert endpoint_template("/public/agent-task/list", "") == "/public/agent-task/list"
    uuid = "0b9e8d7c-1234-4abc-9def-001122334455"
    assert endpoint_template(f"/v3/runs/{uuid}/steps", "") == "/v3/runs/{id}/steps"
    assert not re.search(r"\d{5,}", endpoint_template("/orders/1234567890", ""))
    # the transport passes the raw path: an id holding "/" stays one segment
    assert endpoint_template("/tracker/a%2Fleak%2Fb", "") == "/tracker/{id}"
