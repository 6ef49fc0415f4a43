"""Metrics, traces and logs: what an operator sees of the gateway and of each vendor."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from logging import INFO, getLogger

from gateway.observability.logging import log_fields
from gateway.observability.metrics import Metrics
from gateway.observability.tracing import Tracing

logger = getLogger("gateway.request")

MAX_LOGGED_OPERATION_LENGTH = 128
EMPTY: Mapping[str, str] = {}
"""Never written to: the cache outcomes of a request that asked no vendor."""


@dataclass(frozen=True)
class RequestRecord:
    """How one executed GraphQL request went: one log line and the request metrics."""

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


@dataclass(frozen=True)
class Observer:
    metrics: Metrics | None
    tracing: Tracing

    def request_finished(self, record: RequestRecord) -> None:
        if self.metrics is not None:
            self.metrics.count_request(record.operation, record.outcome, record.seconds)
        self._request_line(
            record.request_id,
            record.operation,
            record.outcome,
            record.seconds,
            vendors=record.vendors,
            cache=record.cache,
            missing_vendors=record.missing_vendors,
            error_codes=record.error_codes,
        )

    def cached_response(self, request_id: str, operation: str, seconds: float) -> None:
        """A request answered whole from the response cache: no vendor, no page cache was
        asked (and no record is built: the whole hit takes a few tens of microseconds)."""
        if self.metrics is not None:
            self.metrics.count_cached_response(operation, seconds)
        self._request_line(request_id, operation, "ok", seconds, response_cache=True)

    def _request_line(
        self,
        request_id: str,
        operation: str,
        outcome: str,
        seconds: float,
        *,
        vendors: Sequence[str] = (),
        cache: Mapping[str, str] = EMPTY,
        response_cache: bool = False,
        missing_vendors: Sequence[str] = (),
        error_codes: Sequence[str] = (),
    ) -> None:
        operation = operation[:MAX_LOGGED_OPERATION_LENGTH]
        log_fields(
            logger,
            INFO,
            f"graphql {operation} {outcome}",
            {
                "request_id": request_id,
                "operation": operation,
                "outcome": outcome,
                "duration_ms": round(seconds * 1000, 2),
                "vendors": vendors,
                "cache": cache,
                "response_cache": response_cache,
                "missing_vendors": missing_vendors,
                "error_codes": error_codes,
            },
        )

    async def aclose(self) -> None:
        """Flush spans not yet exported (a batch exporter may block on the network)."""
        await asyncio.to_thread(self.tracing.shutdown)


__all__ = ["Metrics", "Observer", "RequestRecord", "Tracing"]
