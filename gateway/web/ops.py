"""Operator endpoints: ``/healthz`` (the process is up), ``/readyz`` (config loaded, the
cache reachable, every enabled vendor reachable), ``/metrics`` (Prometheus). Cheap,
unauthenticated, and revealing nothing secret: no URLs, no keys. Never cached by a proxy:
each answer is now's.

``/readyz`` answers 503 while any enabled vendor cannot be reached (``core/reachability.py``
says what that means): a replica whose connection pool or network path to a vendor is broken
is taken out of rotation, and the body names the vendor and why.
"""

from __future__ import annotations

import asyncio

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.core.reachability import Reachability
from gateway.core.upstream import Upstream
from gateway.observability import Observer

NO_STORE = {"cache-control": "no-store"}


def ops_routes(upstream: Upstream, observer: Observer) -> list[Route]:
    """The three endpoints over what they report on: the vendors and cache (``upstream``)
    and the metrics registry (``observer``)."""
    reachability = Reachability(upstream)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"}, headers=NO_STORE)

    async def readyz(request: Request) -> Response:
        cache_ok = await upstream.cache.ping()
        enabled = list(upstream.vendors)
        reaches = await asyncio.gather(*(reachability.check(v) for v in enabled))
        vendors = {
            vendor.name: {
                "reachable": reach.reachable,
                "reason": reach.reason,
                "circuit": upstream.circuit_state(vendor).value,
                "last_call_ok": upstream.health[vendor].last_call_ok,
                "last_error_code": upstream.health[vendor].last_error_code,
            }
            for vendor, reach in zip(enabled, reaches, strict=True)
        }
        ready = cache_ok and all(reach.reachable for reach in reaches)
        body = {
            "status": "ready" if ready else "not ready",
            "config": "loaded",
            "cache": {
                "backend": "redis" if upstream.cache.shared else "memory",
                "reachable": cache_ok,
            },
            "vendors": vendors,
        }
        return JSONResponse(body, status_code=200 if ready else 503, headers=NO_STORE)

    async def metrics(request: Request) -> Response:
        registry = observer.metrics.registry if observer.metrics else None
        if registry is None:
            return Response(status_code=404)
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST, headers=NO_STORE)

    return [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]
