"""What an operator sees: health, readiness, metrics, traces, logs; and a clean shutdown."""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import replace
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from gateway.app import create_app
from gateway.cli import demo_settings
from gateway.core.records import Vendor
from gateway.observability.logging import JsonFormatter
from gateway.observability.tracing import Tracing
from gateway.serving import ServerThread
from tests.conftest import GatewayFactory

QUERY = "query Recent { tasks(first: 5) { nodes { id vendor } } }"


def test_healthz_and_readyz(gateway) -> None:
    assert gateway.http.get("/healthz").json() == {"status": "ok"}
    ready = gateway.http.get("/readyz")
    assert ready.status_code == 200
    body = ready.json()
    assert body["status"] == "ready" and body["cache"]["reachable"] is True
    assert set(body["vendors"]) == {v.name for v in Vendor}
    assert all(v["circuit"] == "CLOSED" for v in body["vendors"].values())
    assert "http" not in ready.text  # no vendor URL, no key


def test_readyz_is_503_while_redis_is_down(
    make_gateway: GatewayFactory, redis_url, redis_server
) -> None:
    gateway = make_gateway(cache_url=redis_url)
    assert gateway.http.get("/readyz").status_code == 200
    redis_server.stop()
    try:
        down = gateway.http.get("/readyz")
        assert down.status_code == 503 and down.json()["cache"]["reachable"] is False
        # ... while queries are still answered, without a cache.
        assert "errors" not in gateway.query(QUERY)
    finally:
        redis_server.start()
    assert gateway.http.get("/readyz").status_code == 200


def test_metrics_name_requests_upstream_calls_cache_and_circuits(
    make_gateway: GatewayFactory, clean_sandbox
) -> None:
    gateway = make_gateway()
    gateway.data(QUERY)
    gateway.data(QUERY)  # answered whole from the response cache
    gateway.data(QUERY.replace("first: 5", "first: 6"))  # pages from the page cache
    text = gateway.http.get("/metrics").text
    assert 'gateway_response_cache_hits_total{operation="Recent"} 1.0' in text
    assert 'gateway_graphql_requests_total{operation="Recent",outcome="ok"} 3.0' in text
    assert "gateway_graphql_request_seconds_bucket" in text
    assert 'gateway_upstream_calls_total{endpoint="/tracker",status="200",vendor="agentex"}' in text
    assert 'endpoint="/v1/agents/{id}/tasks"' in text  # ids never become labels
    assert 'gateway_upstream_seconds_count{vendor="orq"}' in text
    assert 'gateway_cache_lookups_total{result="hit",vendor="subnoto"}' in text
    assert 'gateway_circuit_state{vendor="xpander"} 0.0' in text
    assert 'gateway_unmapped_statuses_total{value="reticulating",vendor="agentex"}' in text or (
        "gateway_unmapped_statuses" in text
    )
    assert "gateway_singleflight_joins_total" in text


class HeaderRecorder:
    """Wraps the sandbox to see what the gateway sent (the trace context)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.traceparents: list[str] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = dict(scope["headers"])
            if b"traceparent" in headers:
                self.traceparents.append(headers[b"traceparent"].decode())
        await self.app(scope, receive, send)


def test_a_span_per_operation_with_a_child_per_upstream_call(sandbox) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    recorder = HeaderRecorder(sandbox.app)
    with ServerThread(recorder) as upstream:
        settings = demo_settings(upstream.url, sandbox)
        with ServerThread(create_app(settings, tracing=Tracing(provider))) as server:
            httpx.post(f"{server.url}/graphql", json={"query": QUERY}).raise_for_status()
    spans = exporter.get_finished_spans()
    [operation] = [s for s in spans if s.name == "graphql Recent"]
    children = [
        s for s in spans if s.parent is not None and s.parent.span_id == operation.context.span_id
    ]
    assert {c.attributes["gateway.vendor"] for c in children} == {v.value for v in Vendor}
    for child in children:
        assert child.attributes["http.response.status_code"] == "200"
        assert child.attributes["gateway.cache.outcome"] == "miss"
    trace_id = format(operation.context.trace_id, "032x")
    assert recorder.traceparents and all(trace_id in t for t in recorder.traceparents)


def test_one_json_log_line_per_request_and_never_a_secret(
    make_gateway: GatewayFactory, settings, clean_sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    client_key = "client-secret-key-0042"
    vendors = dict(settings.vendors)
    vendors[Vendor.ORQ] = replace(
        vendors[Vendor.ORQ],
        credentials=replace(vendors[Vendor.ORQ].credentials, secret="orq-wrong-secret-0099"),
    )
    gateway = make_gateway(open_access=False, api_keys=(client_key,), vendors=vendors)
    caplog.set_level(logging.DEBUG)
    clean_sandbox.knobs(Vendor.SUBNOTO).error_rate = 1.0
    responses = [
        gateway.http.post(
            "/graphql",
            json={"query": QUERY},
            headers={"authorization": f"Bearer {client_key}", "x-request-id": "r-1"},
        ),
        gateway.http.post(
            "/graphql",
            json={"query": "{ nope }"},
            headers={"authorization": f"Bearer {client_key}"},
        ),
        gateway.http.post(
            "/graphql", json={"query": QUERY}, headers={"authorization": "Bearer wrong"}
        ),
    ]
    assert responses[0].headers["x-request-id"] == "r-1"
    lines = [JsonFormatter().format(r) for r in caplog.records]
    [request_line] = [line for line in lines if '"request_id":"r-1"' in line]
    assert '"operation":"Recent"' in request_line and '"outcome":"partial"' in request_line
    assert '"missing_vendors":["ORQ","SUBNOTO"]' in request_line or (
        '"missing_vendors":["SUBNOTO","ORQ"]' in request_line
    )
    assert "UPSTREAM_AUTH" in request_line and "duration_ms" in request_line
    secrets = [
        client_key,
        "orq-wrong-secret-0099",
        *(c.credentials.secret for c in settings.vendors.values() if c.credentials),
    ]
    everything = "\n".join(lines) + "".join(r.text for r in responses)
    for secret in secrets:
        assert secret not in everything


def test_shutdown_finishes_in_flight_requests_and_closes_clients(
    sandbox, sandbox_url, clean_sandbox
) -> None:
    clean_sandbox.knobs(Vendor.ORQ).latency_ms = 400
    app = create_app(demo_settings(sandbox_url, sandbox))
    server = ServerThread(app).start()
    result: dict[str, Any] = {}

    def call() -> None:
        result["response"] = httpx.post(f"{server.url}/graphql", json={"query": QUERY}, timeout=10)

    caller = threading.Thread(target=call)
    caller.start()
    asyncio.run(asyncio.sleep(0.15))  # the request is now waiting on orq
    server.stop()
    caller.join(10)
    assert result["response"].status_code == 200
    assert "errors" not in result["response"].json()
    assert all(client.is_closed for client in app.state.gateway.clients)
