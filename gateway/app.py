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
from starlette.types import ASGIApp
from strawberry.subscriptions import (
    GRAPHQL_SSE_PROTOCOL,
    GRAPHQL_TRANSPORT_WS_PROTOCOL,
    GRAPHQL_WS_PROTOCOL,
)

from gateway.config import Settings, VendorConfig, load_settings
from gateway.core.budget import Budgets, ResponseObserver, VendorLimits
from gateway.core.cache import PageCache
from gateway.core.contract import VendorSettings
from gateway.core.merge import cancel_reads_ahead
from gateway.core.poller import TaskPoller
from gateway.core.records import Vendor
from gateway.core.service import TaskService
from gateway.core.store import create_store
from gateway.core.upstream import Upstream, VendorRuntime
from gateway.graph.schema import build_schema
from gateway.index.runtime import IndexRuntime
from gateway.index.sync import SyncSettings
from gateway.observability import Metrics, Observer, Tracing
from gateway.observability.budgets import BudgetCollector
from gateway.observability.index import IndexCollector
from gateway.observability.tracing import tracing_from_environment
from gateway.observability.transport import ObservedTransport
from gateway.vendors.registry import connector_for
from gateway.vendors.transport import GuardedTransport
from gateway.web.auth import ClientAuthMiddleware
from gateway.web.export import export_routes
from gateway.web.export_parquet import parquet_route
from gateway.web.graphiql import ASSETS_DIR, ASSETS_PATH
from gateway.web.graphql import GraphQLView
from gateway.web.limits import BodySizeLimitMiddleware, RateLimitMiddleware
from gateway.web.odata import odata_routes
from gateway.web.ops import ops_routes
from gateway.web.persisted import PersistedQueries, load_manifest
from gateway.web.request_id import RequestIdMiddleware
from gateway.web.response_cache import ResponseCache, ResponseCacheMiddleware

SUBSCRIPTION_PROTOCOLS = (GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL, GRAPHQL_SSE_PROTOCOL)
"""WebSockets of both subprotocols, and Server-Sent Events (graphql-sse, distinct connections:
a POST or GET accepting ``text/event-stream``) for clients and proxies without WebSockets."""
MAX_CALLS_IN_FLIGHT = 100
"""Per vendor: the pool's connections, and the calls let into it at once."""
DEFAULT_POOL_LIMITS = httpx.Limits(
    max_connections=MAX_CALLS_IN_FLIGHT, max_keepalive_connections=20
)
USER_AGENT = "task-gateway/0.1"
RESPONSE_CACHE_SHARE = 4
"""Whole answers may hold a quarter of ``cache.max_bytes`` on top of the pages' bound."""


@dataclass
class Gateway:
    """Everything the app holds for its lifetime; closed once on shutdown."""

    settings: Settings
    service: TaskService
    clients: list[httpx.AsyncClient]
    observer: Observer

    async def aclose(self) -> None:
        await self.service.upstream.late.aclose()  # they use the clients closed next
        await cancel_reads_ahead()
        for client in self.clients:
            await client.aclose()
        await self.service.upstream.cache.close()
        await self.observer.aclose()


def build_gateway(
    settings: Settings,
    tracing: Tracing | None = None,
    pool_limits: httpx.Limits = DEFAULT_POOL_LIMITS,
) -> Gateway:
    observer = Observer(
        Metrics(settings.metric_operations), tracing or tracing_from_environment(settings.tracing)
    )
    backend = create_store(settings.cache_url, settings.cache_max_entries, settings.cache_max_bytes)
    budgets = Budgets.for_store(
        backend,
        {
            c.vendor: VendorLimits(c.max_requests_per_minute, c.max_concurrency)
            for c in settings.enabled
        },
        interactive_reserve=settings.interactive_reserve,
    )
    clients: list[httpx.AsyncClient] = []
    runtimes: dict[Vendor, VendorRuntime] = {}
    for config in settings.enabled:
        client = make_client(config, observer, pool_limits, budgets.observer(config.vendor))
        clients.append(client)
        connector = connector_for(config.vendor)(vendor_settings(config), client)
        runtimes[config.vendor] = VendorRuntime(
            connector, ttl=config.cache_ttl, first_page_ttl=config.first_page_ttl
        )
    cache = PageCache(backend, stale_if_error=settings.stale_if_error)
    upstream = Upstream(runtimes, cache, max_calls=settings.max_upstream_calls, budgets=budgets)
    if observer.metrics is not None:
        observer.metrics.watch(upstream)
        observer.metrics.registry.register(BudgetCollector(upstream))
    service = TaskService(upstream, max_first=settings.max_first)
    return Gateway(settings, service, clients, observer)


def make_client(
    config: VendorConfig,
    observer: Observer,
    limits: httpx.Limits = DEFAULT_POOL_LIMITS,
    on_response: ResponseObserver | None = None,
) -> httpx.AsyncClient:
    """One pooled client per vendor, shared by every request for the app's lifetime. The
    guard in front of the pool keeps cancellation out of it, never lets more calls into it
    than it has connections, bounds each answer's size, and tells ``on_response`` (the
    vendor budget) what each answer says of the vendor's limit (``vendors/transport.py``)."""
    observed = ObservedTransport(
        config.vendor,
        httpx.AsyncHTTPTransport(limits=limits),
        observer.metrics,
        observer.tracing,
        base_path=urlsplit(config.base_url).path,
    )
    transport = GuardedTransport(
        config.vendor,
        observed,
        max_connections=limits.max_connections or MAX_CALLS_IN_FLIGHT,
        max_bytes=config.max_response_bytes,
        on_response=on_response,
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


def create_app(
    settings: Settings,
    *,
    tracing: Tracing | None = None,
    pool_limits: httpx.Limits = DEFAULT_POOL_LIMITS,
) -> Starlette:
    gateway = build_gateway(settings, tracing, pool_limits)
    poller = TaskPoller(gateway.service, interval=settings.poll_interval)
    index = task_index(settings, gateway, poller)
    view = GraphQLView(
        gateway.service,
        schema=build_schema(settings.limits),
        graphql_ide="graphiql" if settings.graphiql else None,
        graphiql_query=settings.example_query,
        subscription_protocols=SUBSCRIPTION_PROTOCOLS,
        forward_credentials=settings.forward_vendor_credentials,
        request_deadline=settings.request_deadline,
        answer_within=settings.answer_within,
        persisted=PersistedQueries(
            gateway.service.upstream.cache,
            load_manifest(settings.persisted_queries) if settings.persisted_queries else None,
            max_entries=settings.apq_max_entries,
            max_document_bytes=settings.limits.max_document_bytes,
        ),
        observer=gateway.observer,
        poller=poller,
    )
    responses = response_cache(settings, gateway)
    graphql_http: ASGIApp = view
    if responses is not None:  # in front of the view, for HTTP (WebSockets pass through)
        graphql_http = ResponseCacheMiddleware(view, cache=responses, observer=gateway.observer)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if index is not None:
            await index.start()
        yield
        await poller.close()
        if index is not None:
            await index.close()  # its sync reads through the clients closed next
        await gateway.aclose()

    app = Starlette(
        routes=[
            # every method: the view answers 405 in GraphQL's shape
            Route("/graphql", graphql_http),
            WebSocketRoute("/graphql", view),
            Mount(ASSETS_PATH.rstrip("/"), StaticFiles(directory=ASSETS_DIR), name="assets"),
            *ops_routes(gateway.service.upstream, gateway.observer),
            *export_routes(gateway.service, settings.forward_vendor_credentials),
            parquet_route(gateway.service, settings.forward_vendor_credentials),
            *odata_routes(
                None if index is None else (lambda: index.view),
                [config.vendor for config in settings.enabled],
                settings.limits.max_document_bytes,
                settings.limits.max_list_items,
            ),
        ],
        middleware=middleware(settings),
        lifespan=lifespan,
    )
    app.state.gateway = gateway
    app.state.poller = poller
    app.state.index = index
    return app


def task_index(settings: Settings, gateway: Gateway, poller: TaskPoller) -> IndexRuntime | None:
    """The task index (``[index] url``), opened with the app; its metrics registered."""
    if settings.index_url is None:
        return None
    runtime = IndexRuntime(
        settings.index_url,
        gateway.service,
        poller,
        SyncSettings(settings.index_interval, settings.index_rescan_interval),
    )
    if gateway.observer.metrics is not None:
        gateway.observer.metrics.registry.register(IndexCollector(runtime))
    return runtime


def response_cache(settings: Settings, gateway: Gateway) -> ResponseCache | None:
    """Identical reads answered from memory for the shortest first-page TTL (off with
    ``graphql.response_cache = false`` or when every TTL is 0)."""
    ttls = [c.first_page_ttl for c in settings.enabled]
    if not settings.response_cache or not ttls or min(ttls) <= 0:
        return None
    upstream = gateway.service.upstream
    return ResponseCache(
        upstream.cache,
        tuple(upstream.vendors),
        ttl=min(ttls),
        max_bytes=settings.cache_max_bytes // RESPONSE_CACHE_SHARE,
    )


def middleware(settings: Settings) -> list[Middleware]:
    """Outermost first: request id, CORS (a preflight carries no key), body size, client
    auth (which also limits failed attempts per address), then rate limiting of
    authenticated callers."""
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
        stack.append(
            Middleware(
                ClientAuthMiddleware,
                keys=settings.api_keys,
                ide=settings.graphiql,
                failed_per_minute=settings.failed_auth_per_minute,
            )
        )
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
