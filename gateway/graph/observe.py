"""Per-operation observation: a span, the request metrics, and one log line per request
with its id, operation, duration, vendors called, cache outcomes and error codes."""

from __future__ import annotations

import time
from collections.abc import Iterator

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

from gateway.graph.errors import pre_execution_code
from gateway.observability import Observer, RequestRecord


class Observe(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        context = self.execution_context.context
        observer: Observer | None = getattr(context, "observer", None)
        if observer is None:
            yield
            return
        started = time.perf_counter()
        codes: set[str] = set()
        with observer.tracing.operation_span("anonymous") as span:
            try:
                yield
            except GraphQLError as exc:  # a syntax error leaves through here, not the result
                codes.add(pre_execution_code(exc))
                raise
            except Exception:
                codes.add("INTERNAL_SERVER_ERROR")
                raise
            finally:
                name = self.execution_context.operation_name or "anonymous"
                span.update_name(f"graphql {name}")
                span.set_attribute("graphql.operation.name", name)
                result = self.execution_context.result
                errors = (result.errors or []) if result is not None else []
                codes.update(str((e.extensions or {}).get("code", "?")) for e in errors)
                parts = context.state.parts.values()
                missing = sorted(p.vendor.name for p in parts if p.error is not None)
                outcome = "partial" if missing else ("error" if codes else "ok")
                cache = {
                    p.vendor.name: "stale" if p.stale else ("hit" if p.from_cache else "miss")
                    for p in parts
                    if p.error is None and p.calls
                }
                for vendor, value in cache.items():
                    span.set_attribute(f"gateway.cache.{vendor.lower()}", value)
                span.set_attribute("gateway.outcome", outcome)
                observer.request_finished(
                    RequestRecord(
                        request_id=context.request_id,
                        operation=name,
                        outcome=outcome,
                        seconds=time.perf_counter() - started,
                        vendors=sorted(p.vendor.name for p in parts),
                        cache=cache,
                        missing_vendors=missing,
                        error_codes=sorted(codes),
                    )
                )
