"""The Starlette app: routes, middleware, and the lifespan that owns upstream clients and
the cache."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles

from gateway.config import Settings, VendorConfig, load_settings
from gateway.core.cache import PageCache, create_backend
from gateway.core.poller import TaskPoller
from gateway.core.records import Vendor
from gateway.core.service import TaskService
from gateway.core.upstream import Upstream, VendorRuntime
from gateway.graph.schema import build_schema
from gateway.observability import Metrics, Observer, Tracing
from gateway.observability.tracing import tracing_from_environment
from gateway.observability.transport import ObservedTransport
from gateway.vendors.base import VendorSettings
from gateway.vendors.registry import connector_for
from gateway.web.auth import ClientAuthMiddleware
from gateway.web.export import export_routes
from gateway.web.graphiql import ASSETS_DIR, ASSETS_PATH
from gateway.web.graphql import GraphQLView
from gateway.web.limits import BodySizeLimitMiddleware, RateLimitMiddleware
from gateway.web.ops import ops_routes
from gateway.web.persisted import PersistedQueries, load_manifest
from gateway.web.request_id import RequestIdMiddleware
from gateway.web.response_cache import ResponseCache

DEFAULT_POOL_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)
USER_AGENT = "task-gateway/0.1"


@dataclass
class Gateway:
    """Everything the app holds for its lifetime; closed once on shutdown."""

    settings: Settings
    service: TaskService
    clients: list[httpx.AsyncClient]
    observer: Observer

    async def aclose(self) -> None:
        for client in self.clients:
            await client.aclose()
        await self.service.upstream.cache.close()
        await self.observer.aclose()


def build_gateway(settings: Settings, tracing: Tracing | None = None) -> Gateway:
    observer = Observer(Metrics(), tracing or tracing_from_environment(settings.tracing))
    clients: list[httpx.AsyncClient] = []
    runtimes: dict[Vendor, VendorRuntime] = {}
    for config in settings.enabled:
        client = make_client(config, observer)
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
    upstream = Upstream(runtimes, cache)
    if observer.metrics is not None:
        observer.metrics.watch(upstream)
    service = TaskService(upstream, max_first=settings.max_first)
    return Gateway(settings, service, clients, observer)


def make_client(config: VendorConfig, observer: Observer) -> httpx.AsyncClient:
    """One pooled client per vendor, shared by every request for the app's lifetime."""
    transport = ObservedTransport(
        config.vendor,
        httpx.AsyncHTTPTransport(limits=DEFAULT_POOL_LIMITS),
        observer.metrics,
        observer.tracing,
        base_path=urlsplit(config.base_url).path,
    )
    return httpx.AsyncClient(
        base_url=config.base_url,
        timeout=httpx.Timeout(config.timeout, connect=min(config.timeout, 5.0)),
        headers={"user-agent": USER_AGENT},
        transport=transport,
    )


def vendor_settings(config: VendorConfig) -> VendorSettings:
    return VendorSettings(
        vendor=config.vendor,
        base_url=config.base_url,
        credentials=config.credentials,
        agents=config.agents,
        extra_status_map=config.status_map,
    )


def create_app(settings: Settings, *, tracing: Tracing | None = None) -> Starlette:
    gateway = build_gateway(settings, tracing)
    poller = TaskPoller(gateway.service, interval=settings.poll_interval)
    view = GraphQLView(
        gateway.service,
        schema=build_schema(settings.limits),
        graphql_ide="graphiql" if settings.graphiql else None,
        graphiql_query=settings.example_query,
        forward_credentials=settings.forward_vendor_credentials,
        request_deadline=settings.request_deadline,
        persisted=PersistedQueries(
            gateway.service.upstream.cache,
            load_manifest(settings.persisted_queries) if settings.persisted_queries else None,
        ),
        observer=gateway.observer,
        poller=poller,
        responses=response_cache(settings, gateway),
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await poller.close()
        await gateway.aclose()

    app = Starlette(
        routes=[
            Route("/graphql", view, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", view),
            Mount(ASSETS_PATH.rstrip("/"), StaticFiles(directory=ASSETS_DIR), name="assets"),
            *ops_routes(gateway),
            *export_routes(gateway.service),
        ],
        middleware=middleware(settings),
        lifespan=lifespan,
    )
    app.state.gateway = gateway
    app.state.poller = poller
    return app


def response_cache(settings: Settings, gateway: Gateway) -> ResponseCache | None:
    """Identical reads answered from memory for the shortest first-page TTL (off with
    ``graphql.response_cache = false`` or when every TTL is 0)."""
    ttls = [c.first_page_ttl for c in settings.enabled]
    if not settings.response_cache or not ttls or min(ttls) <= 0:
        return None
    upstream = gateway.service.upstream
    return ResponseCache(upstream.cache, tuple(upstream.vendors), ttl=min(ttls))


def middleware(settings: Settings) -> list[Middleware]:
    """Outermost first: request id, CORS (a preflight carries no key), body size, client
    auth, then rate limiting of authenticated callers."""
    stack = [Middleware(RequestIdMiddleware)]
    if settings.cors_origins:
        stack.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(settings.cors_origins),
                allow_methods=["GET", "POST"],
                allow_headers=["*"],
                max_age=600,
            )
        )
    stack.append(Middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes))
    if not settings.open_access:
        stack.append(Middleware(ClientAuthMiddleware, keys=settings.api_keys))
    if settings.rate_per_second > 0:
        stack.append(
            Middleware(
                RateLimitMiddleware, rate=settings.rate_per_second, burst=settings.rate_burst
            )
        )
    return stack


def app_from_environment() -> Starlette:
    """The ``serve`` factory: settings from ``$TASK_GATEWAY_CONFIG`` and the environment,
    loaded in each worker process."""
    from gateway.observability.logging import setup_logging

    setup_logging()
    return create_app(load_settings(None))
