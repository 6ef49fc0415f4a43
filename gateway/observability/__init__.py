"""Metrics, traces and logs: what an operator sees of the gateway and of each vendor."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from gateway.observability.metrics import Metrics
from gateway.observability.tracing import Tracing

logger = logging.getLogger("gateway.request")

MAX_LOGGED_OPERATION_LENGTH = 128


@dataclass(frozen=True)
class RequestRecord:
    """How one GraphQL request went: one log line and the request metrics."""

    request_id: str
    operation: str
    outcome: str
    """ok; partial: some vendor missing from the answer; error."""
    seconds: float
    vendors: list[str] = field(default_factory=list)
    cache: dict[str, str] = field(default_factory=dict)
    """Per vendor: hit, miss or stale."""
    missing_vendors: list[str] = field(default_factory=list)
    error_codes: list[str] = field(default_factory=list)
    response_cache: bool = False
    """Answered whole from the response cache: no vendor, no page cache was asked."""


@dataclass(frozen=True)
class Observer:
    metrics: Metrics | None
    tracing: Tracing

    def request_finished(self, record: RequestRecord) -> None:
        if self.metrics is not None:
            if record.response_cache:
                self.metrics.count_cached_response(record.operation, record.seconds)
            else:
                self.metrics.count_request(record.operation, record.outcome, record.seconds)
        operation = record.operation[:MAX_LOGGED_OPERATION_LENGTH]
        logger.info(
            "graphql %s %s",
            operation,
            record.outcome,
            extra={
                "fields": {
                    "request_id": record.request_id,
                    "operation": operation,
                    "outcome": record.outcome,
                    "duration_ms": round(record.seconds * 1000, 2),
                    "vendors": record.vendors,
                    "cache": record.cache,
                    "response_cache": record.response_cache,
                    "missing_vendors": record.missing_vendors,
                    "error_codes": record.error_codes,
                }
            },
        )

    async def aclose(self) -> None:
        """Flush spans not yet exported (a batch exporter may block on the network)."""
        await asyncio.to_thread(self.tracing.shutdown)


__all__ = ["Metrics", "Observer", "RequestRecord", "Tracing"]
