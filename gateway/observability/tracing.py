"""OpenTelemetry tracing, off unless configured: one span per GraphQL operation, a child
span per upstream call, and the W3C trace context sent on to the vendor.

Off means no OpenTelemetry import at all: ``Tracing(None)`` hands out no-op spans, so the
packages are only needed by a deployment that turns tracing on.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, MutableMapping
from typing import Any

from gateway.core.records import Vendor

logger = logging.getLogger("gateway.tracing")

SERVICE_NAME = "task-gateway"
OTLP_ENDPOINT_ENV = "OTEL_EXPORTER_OTLP_ENDPOINT"


class _NoSpan:
    def set_attribute(self, key: str, value: Any) -> None:
        pass

    def update_name(self, name: str) -> None:
        pass


NO_SPAN = _NoSpan()


class Tracing:
    """Spans from ``tracer_provider``, or none. ``owned``: the gateway made the provider and
    shuts it down (flushing what is batched) when the app stops; a provider handed in by a
    caller (a test, an embedding app) is the caller's to shut down."""

    def __init__(self, tracer_provider: Any | None = None, *, owned: bool = False) -> None:
        self.provider = tracer_provider
        self.owned = owned
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
        """A call that reaches the transport is always a page cache miss (hits never leave
        the process), hence the fixed ``gateway.cache.outcome``."""
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
        """The current span's context as W3C ``traceparent`` (and ``tracestate``)."""
        if self.tracer is None:
            return
        from opentelemetry import propagate

        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        headers.update(carrier)

    def shutdown(self) -> None:
        if self.owned and self.provider is not None:
            self.provider.shutdown()


def tracing_from_environment(enabled: bool) -> Tracing:
    """With ``[tracing] enabled = true`` (or ``$OTEL_EXPORTER_OTLP_ENDPOINT``): spans go to
    OTLP over HTTP when ``opentelemetry-exporter-otlp-proto-http`` is installed (the
    ``otlp`` extra; the exporter reads the standard ``OTEL_EXPORTER_OTLP_*`` variables),
    else to the console. ``OTEL_SERVICE_NAME`` names the service (default task-gateway)."""
    if not enabled or os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return Tracing(None)
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    resource = Resource.create(
        {"service.name": os.environ.get("OTEL_SERVICE_NAME") or SERVICE_NAME}
    )
    provider = TracerProvider(resource=resource)
    exporter: Any
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()
    except ImportError:
        if os.environ.get(OTLP_ENDPOINT_ENV):
            logger.warning(
                "tracing: %s is set but opentelemetry-exporter-otlp-proto-http is not "
                "installed (pip install 'task-gateway[otlp]'); spans go to the console",
                OTLP_ENDPOINT_ENV,
            )
        exporter = ConsoleSpanExporter()
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return Tracing(provider, owned=True)
