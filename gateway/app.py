"""The Starlette app: routes, and the lifespan that owns upstream clients and the cache."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from gateway.config import Settings, VendorConfig
from gateway.core.cache import PageCache, create_backend
from gateway.core.records import Vendor
from gateway.core.service import TaskService
from gateway.core.upstream import Upstream, VendorRuntime
from gateway.graph.schema import build_schema
from gateway.vendors.base import VendorSettings
from gateway.vendors.registry import connector_for
from gateway.web.auth import ClientAuthMiddleware
from gateway.web.export import export_routes
from gateway.web.graphql import GraphQLView
from gateway.web.limits import BodySizeLimitMiddleware, RateLimitMiddleware
from gateway.web.persisted import PersistedQueries, load_manifest

DEFAULT_POOL_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)
USER_AGENT = "task-gateway/0.1"


@dataclass
class Gateway:
    """Everything the app holds for its lifetime; closed once on shutdown."""

    settings: Settings
    service: TaskService
    clients: list[httpx.AsyncClient]

    async def aclose(self) -> None:
        for client in self.clients:
            await client.aclose()
        await self.service.upstream.cache.close()


def build_gateway(settings: Settings) -> Gateway:
    clients: list[httpx.AsyncClient] = []
    runtimes: dict[Vendor, VendorRuntime] = {}
    for config in settings.enabled:
        client = make_client(config)
        clients.append(client)
        connector = connector_for(config.vendor)(vendor_settings(config), client)
        runtimes[config.vendor] = VendorRuntime(
            connector, ttl=config.cache_ttl, first_page_ttl=config.first_page_ttl
        )
    backend = create_backend(settings.cache_url, settings.cache_max_entries)
    cache = PageCache(
        backend,
        shared=bool(settings.cache_url and settings.cache_url.startswith("redis")),
        stale_if_error=settings.stale_if_error,
    )
    service = TaskService(Upstream(runtimes, cache), max_first=settings.max_first)
    return Gateway(settings, service, clients)


def make_client(config: VendorConfig) -> httpx.AsyncClient:
    """One pooled client per vendor, shared by every request for the app's lifetime."""
    return httpx.AsyncClient(
        base_url=config.base_url,
        timeout=httpx.Timeout(config.timeout, connect=min(config.timeout, 5.0)),
        limits=DEFAULT_POOL_LIMITS,
        headers={"user-agent": USER_AGENT},
    )


def vendor_settings(config: VendorConfig) -> VendorSettings:
    return VendorSettings(
        vendor=config.vendor,
        base_url=config.base_url,
        credentials=config.credentials,
        agents=config.agents,
        extra_status_map=config.status_map,
    )


def create_app(settings: Settings) -> Starlette:
    gateway = build_gateway(settings)
    schema = build_schema(settings.limits)
    view = GraphQLView(
        gateway.service,
        schema=schema,
        graphql_ide="graphiql" if settings.graphiql else None,
        graphiql_query=settings.example_query,
        forward_credentials=settings.forward_vendor_credentials,
        request_deadline=settings.request_deadline,
        persisted=PersistedQueries(
            gateway.service.upstream.cache,
            load_manifest(settings.persisted_queries) if settings.persisted_queries else None,
        ),
    )

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await gateway.aclose()

    middleware = [Middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)]
    if settings.cors_origins:
        # Outside auth, so a browser's preflight (which carries no key) is answered.
        middleware.insert(
            0,
            Middleware(
                CORSMiddleware,
                allow_origins=list(settings.cors_origins),
                allow_methods=["GET", "POST"],
                allow_headers=["*"],
                max_age=600,
            ),
        )
    if not settings.open_access:
        middleware.append(Middleware(ClientAuthMiddleware, keys=settings.api_keys))
    if settings.rate_per_second > 0:
        middleware.append(
            Middleware(
                RateLimitMiddleware, rate=settings.rate_per_second, burst=settings.rate_burst
            )
        )
    app = Starlette(
        routes=[
            Route("/graphql", view, methods=["GET", "POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            *export_routes(gateway.service),
        ],
        middleware=middleware,
        lifespan=lifespan,
    )
    app.state.gateway = gateway
    return app


def app_from_environment() -> Starlette:
    """The ``serve`` factory: settings from ``$TASK_GATEWAY_CONFIG`` and the environment,
    loaded in each worker process."""
    from gateway.config import load_settings

    return create_app(load_settings(None))
