"""Operator endpoints: ``/healthz`` (the process is up), ``/readyz`` (config loaded, the
cache reachable, vendors' circuits), ``/metrics`` (Prometheus). Cheap, unauthenticated, and
revealing nothing secret: no URLs, no keys."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.core.resilience import CircuitState

if TYPE_CHECKING:
    from gateway.app import Gateway


def ops_routes(gateway: Gateway) -> list[Route]:
    upstream = gateway.service.upstream

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        cache_ok = await upstream.cache.ping()
        vendors = {}
        for vendor, runtime in upstream.vendors.items():
            health = upstream.health[vendor]
            vendors[vendor.name] = {
                "circuit": runtime.breaker.state.value if runtime.breaker else "CLOSED",
                "last_call_ok": health.last_call_ok,
                "last_error_code": health.last_error_code,
            }
        all_open = bool(vendors) and all(
            v["circuit"] == CircuitState.OPEN.value for v in vendors.values()
        )
        ready = cache_ok and not all_open
        body = {
            "status": "ready" if ready else "not ready",
            "config": "loaded",
            "cache": {
                "backend": "redis" if upstream.cache.shared else "memory",
                "reachable": cache_ok,
            },
            "vendors": vendors,
        }
        return JSONResponse(body, status_code=200 if ready else 503)

    async def metrics(request: Request) -> Response:
        registry = gateway.observer.metrics.registry if gateway.observer.metrics else None
        if registry is None:
            return Response(status_code=404)
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]
