"""OpenTelemetry tracing, off unless configured: one span per GraphQL operation, a child
span per upstream call, and the W3C trace context sent on to the vendor.

Off means no OpenTelemetry import at all on the hot path: ``Tracing(None)`` hands out
no-op spans.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, MutableMapping
from typing import Any

from gateway.core.records import Vendor


class _NoSpan:
    def set_attribute(self, key: str, value: Any) -> None:
        pass

    def update_name(self, name: str) -> None:
        pass


NO_SPAN = _NoSpan()


class Tracing:
    def __init__(self, tracer_provider: Any | None = None) -> None:
        self.tracer = None
        if tracer_provider is not None:
            self.tracer = tracer_provider.get_tracer("task-gateway")

    @property
    def enabled(self) -> bool:
        return self.tracer is not None

    @contextlib.contextmanager
    def operation_span(self, name: str) -> Iterator[Any]:
        if self.tracer is None:
            yield NO_SPAN
            return
        with self.tracer.start_as_current_span(f"graphql {name}") as span:
            span.set_attribute("graphql.operation.name", name)
            yield span

    @contextlib.contextmanager
    def upstream_span(self, vendor: Vendor, method: str, endpoint: str) -> Iterator[Any]:
        if self.tracer is None:
            yield NO_SPAN
            return
        from opentelemetry.trace import SpanKind

        with self.tracer.start_as_current_span(
            f"{vendor.value} {method} {endpoint}", kind=SpanKind.CLIENT
        ) as span:
            span.set_attribute("gateway.vendor", vendor.value)
            span.set_attribute("http.request.method", method)
            span.set_attribute("gateway.endpoint", endpoint)
            span.set_attribute("gateway.cache.outcome", "miss")
            yield span

    def inject(self, headers: MutableMapping[str, str]) -> None:
        if self.tracer is None:
            return
        from opentelemetry import propagate

        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        headers.update(carrier)


def tracing_from_environment(enabled: bool) -> Tracing:
    """With ``[tracing] enabled = true``: spans go to OTLP if its exporter package is
    installed and ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set, else to the console."""
    if not enabled:
        return Tracing(None)
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    provider = TracerProvider()
    exporter: Any
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()
    except ImportError:
        exporter = ConsoleSpanExporter()
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return Tracing(provider)
