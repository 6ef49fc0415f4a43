"""Per-operation observation: a span, the request metrics, and one log line per request
with its id, operation, duration, vendors called, cache outcomes and error codes."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

from strawberry.extensions import SchemaExtension

logger = logging.getLogger("gateway.request")


class Observe(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        context = self.execution_context.context
        observer = getattr(context, "observer", None)
        started = time.perf_counter()
        name = "anonymous"
        if observer is None:
            yield
            return
        with observer.tracing.operation_span(name) as span:
            yield
            name = self.execution_context.operation_name or "anonymous"
            span.update_name(f"graphql {name}")
            span.set_attribute("graphql.operation.name", name)
            seconds = time.perf_counter() - started
            result = self.execution_context.result
            errors = (result.errors or []) if result is not None else []
            codes = sorted({(e.extensions or {}).get("code", "?") for e in errors})
            state = context.state
            missing = [p.vendor.name for p in state.parts.values() if p.error is not None]
            outcome = "partial" if missing else ("error" if errors else "ok")
            cache = {
                p.vendor.name: "stale" if p.stale else ("hit" if p.from_cache else "miss")
                for p in state.parts.values()
                if p.error is None and p.calls
            }
            for vendor, value in cache.items():
                span.set_attribute(f"gateway.cache.{vendor.lower()}", value)
            if observer.metrics is not None:
                observer.metrics.requests.labels(name, outcome).inc()
                observer.metrics.request_seconds.labels(name).observe(seconds)
            logger.info(
                "graphql %s %s",
                name,
                outcome,
                extra={
                    "fields": {
                        "request_id": context.request_id,
                        "operation": name,
                        "outcome": outcome,
                        "duration_ms": round(seconds * 1000, 2),
                        "vendors": sorted(p.vendor.name for p in state.parts.values()),
                        "cache": cache,
                        "missing_vendors": missing,
                        "error_codes": codes,
                    }
                },
            )
