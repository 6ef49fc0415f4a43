"""Tracing: off unless configured; when on, a span per operation, a child per upstream call,
and the trace context handed to the vendor."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from gateway.app import create_app
from gateway.cli import demo_settings
from gateway.config import parse_settings
from gateway.core.records import Vendor
from gateway.observability.tracing import Tracing, tracing_from_environment
from gateway.serving import ServerThread

QUERY = "query Recent { tasks(first: 5) { nodes { id vendor } } }"
ENDPOINTS = {
    "agentex": "/tracker",
    "xpander": "/v1/agents/{id}/tasks",
    "orq": "/v2/agents/{id}/tasks",
    "subnoto": "/public/agent-task/list",
}


class HeaderRecorder:
    """The sandbox, wrapped to see the trace context the gateway sent."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.traceparents: list[str | None] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            value = dict(scope["headers"]).get(b"traceparent")
            self.traceparents.append(value.decode() if value else None)
        await self.app(scope, receive, send)


@pytest.fixture
def recorded(sandbox, clean_sandbox) -> Iterator[tuple[HeaderRecorder, str]]:
    recorder = HeaderRecorder(sandbox.app)
    with ServerThread(recorder) as server:
        yield recorder, server.url


def test_a_span_per_operation_with_a_child_per_upstream_call(sandbox, recorded) -> None:
    recorder, url = recorded
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = create_app(demo_settings(url, sandbox), tracing=Tracing(provider))
    with ServerThread(app) as server:
        httpx.post(f"{server.url}/graphql", json={"query": QUERY}).raise_for_status()
    spans = exporter.get_finished_spans()
    [operation] = [s for s in spans if s.name == "graphql Recent"]
    assert operation.attributes["graphql.operation.name"] == "Recent"
    assert operation.attributes["gateway.outcome"] == "ok"
    assert operation.attributes["gateway.cache.orq"] == "miss"
    children = [s for s in spans if s.parent is not None]
    assert children and len(children) == len(spans) - 1
    assert all(c.parent.span_id == operation.context.span_id for c in children)
    assert {c.attributes["gateway.vendor"] for c in children} == {v.value for v in Vendor}
    for child in children:
        assert child.context.trace_id == operation.context.trace_id
        assert child.attributes["http.response.status_code"] == "200"
        assert child.attributes["gateway.cache.outcome"] == "miss"
        assert child.attributes["gateway.endpoint"] == ENDPOINTS[child.attributes["gateway.vendor"]]
    # Every vendor call carried the trace context of its own span.
    trace_id = format(operation.context.trace_id, "032x")
    sent = {format(c.context.span_id, "016x") for c in children}
    assert len(recorder.traceparents) == len(children)
    for traceparent in recorder.traceparents:
        assert traceparent is not None
        version, trace, parent, _flags = traceparent.split("-")
        assert (version, trace) == ("00", trace_id) and parent in sent
    # A provider handed in is the caller's: the app's shutdown left it working.
    with provider.get_tracer("test").start_as_current_span("after"):
        pass
    assert exporter.get_finished_spans()[-1].name == "after"


def test_tracing_is_off_by_default_and_sends_no_trace_context(sandbox, recorded) -> None:
    recorder, url = recorded
    app = create_app(demo_settings(url, sandbox))
    assert not app.state.gateway.observer.tracing.enabled
    with ServerThread(app) as server:
        httpx.post(f"{server.url}/graphql", json={"query": QUERY}).raise_for_status()
    assert recorder.traceparents and set(recorder.traceparents) == {None}


@pytest.mark.parametrize(
    ("data", "env", "enabled"),
    [
        ({}, {}, False),
        ({"tracing": {"enabled": True}}, {}, True),
        ({}, {"TASK_GATEWAY_TRACING": "1"}, True),
        ({}, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
    ],
)
def test_what_turns_tracing_on(data: dict, env: dict, enabled: bool) -> None:
    settings = parse_settings({"auth": {"open": True}, **data}, env)
    assert settings.tracing is enabled


def test_a_configured_provider_is_owned_and_shut_down(monkeypatch) -> None:
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    monkeypatch.setenv("OTEL_SERVICE_NAME", "gateway-test")
    assert not tracing_from_environment(False).enabled
    tracing = tracing_from_environment(True)
    assert tracing.enabled and tracing.owned
    assert tracing.provider.resource.attributes["service.name"] == "gateway-test"
    tracing.shutdown()
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    assert not tracing_from_environment(True).enabled
