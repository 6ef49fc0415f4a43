"""Operator endpoints: ``/healthz`` (the process is up), ``/readyz`` (config loaded, the
cache reachable, vendors' circuits), ``/metrics`` (Prometheus). Cheap, unauthenticated, and
revealing nothing secret: no URLs, no keys. Never cached by a proxy: each answer is now's."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.core.resilience import CircuitState

if TYPE_CHECKING:
    from gateway.app import Gateway

NO_STORE = {"cache-control": "no-store"}


def ops_routes(gateway: Gateway) -> list[Route]:
    upstream = gateway.service.upstream

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"}, headers=NO_STORE)

    async def readyz(request: Request) -> Response:
        cache_ok = await upstream.cache.ping()
        circuits = {vendor: upstream.circuit_state(vendor) for vendor in upstream.vendors}
        vendors = {
            vendor.name: {
                "circuit": circuit.value,
                "last_call_ok": upstream.health[vendor].last_call_ok,
                "last_error_code": upstream.health[vendor].last_error_code,
            }
            for vendor, circuit in circuits.items()
        }
        # One vendor down is a partial answer, not a reason to take the replica out.
        all_open = bool(circuits) and all(c is CircuitState.OPEN for c in circuits.values())
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
        return JSONResponse(body, status_code=200 if ready else 503, headers=NO_STORE)

    async def metrics(request: Request) -> Response:
        registry = gateway.observer.metrics.registry if gateway.observer.metrics else None
        if registry is None:
            return Response(status_code=404)
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST, headers=NO_STORE)

    return [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]
