"""An httpx transport that observes every upstream call: metrics, a child span with the
trace context propagated to the vendor, and the call in the request's log line.

It wraps the real transport (httpx's ``_transports/base.py`` seam), so connectors stay
unaware of it.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import TYPE_CHECKING

import httpx

from gateway.core.records import Vendor
from gateway.observability.tracing import Tracing

if TYPE_CHECKING:
    from gateway.observability.metrics import Metrics

_ID_AFTER = re.compile(r"/(agents|tracker)/[^/]+")
_ID_LIKE = re.compile(r"/(?=[^/]*\d)[^/]{8,}(?=/|$)")
"""A segment of 8 characters or more with a digit in it (uuids, numbers, hex keys): what an
endpoint a future connector adds most likely carries as an id."""


def endpoint_template(path: str, base_path: str) -> str:
    """``/v1/agents/8c1a…/tasks`` → ``/v1/agents/{id}/tasks``: ids never become labels."""
    if base_path and path.startswith(base_path):
        path = path[len(base_path) :]
    path = _ID_AFTER.sub(lambda m: f"/{m.group(1)}/{{id}}", path)
    return _ID_LIKE.sub("/{id}", path) or "/"


class ObservedTransport(httpx.AsyncBaseTransport):
    def __init__(
        self,
        vendor: Vendor,
        inner: httpx.AsyncBaseTransport,
        metrics: Metrics | None,
        tracing: Tracing,
        base_path: str = "",
    ) -> None:
        self.vendor = vendor
        self.inner = inner
        self.metrics = metrics
        self.tracing = tracing
        self.base_path = base_path.rstrip("/")

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        # The raw (still percent-encoded) path: an id holding "/" stays one segment.
        endpoint = endpoint_template(request.url.raw_path.split(b"?")[0].decode(), self.base_path)
        started = time.perf_counter()
        status = "error"
        with self.tracing.upstream_span(self.vendor, request.method, endpoint) as span:
            self.tracing.inject(request.headers)
            try:
                response = await self.inner.handle_async_request(request)
            except httpx.TimeoutException:
                status = "timeout"
                raise
            except asyncio.CancelledError:
                status = "cancelled"  # the request's deadline passed, or it was abandoned
                raise
            except httpx.TransportError:
                status = "unreachable"
                raise
            else:
                status = str(response.status_code)
                return response
            finally:
                seconds = time.perf_counter() - started
                span.set_attribute("http.response.status_code", status)
                if self.metrics is not None:
                    self.metrics.count_upstream(self.vendor.value, endpoint, status, seconds)

    async def aclose(self) -> None:
        await self.inner.aclose()
