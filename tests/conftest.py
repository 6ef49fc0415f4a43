"""Shared fixtures: the sandbox and a gateway, each started once, over real loopback HTTP."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest

from gateway.app import create_app
from gateway.cli import demo_settings
from gateway.config import Settings
from gateway.core.merge import READ_AHEAD
from gateway.core.records import Vendor
from gateway.sandbox import Sandbox, SandboxOptions
from gateway.serving import ServerThread, stop_all
from tests.postgres_server import PostgresServer
from tests.redis_server import RedisServer

SANDBOX_SIZE = 120


@pytest.fixture(scope="session")
def sandbox() -> Sandbox:
    return Sandbox(SandboxOptions(size=SANDBOX_SIZE, seed=11))


@pytest.fixture(scope="session")
def sandbox_url(sandbox: Sandbox) -> Iterator[str]:
    with ServerThread(sandbox.app) as server:
        yield server.url


@pytest.fixture
def clean_sandbox(sandbox: Sandbox) -> Iterator[Sandbox]:
    """The sandbox with default knobs and zeroed counters, restored after the test. The
    gateways live for the session: a page an earlier test's gateway is still reading ahead
    is let finish first, so it is not counted as this test's call."""
    sandbox.reset_knobs()
    deadline = time.monotonic() + 10
    while any(not t.done() for t in list(READ_AHEAD)) and time.monotonic() < deadline:
        time.sleep(0.01)
    sandbox.reset_counters()
    yield sandbox
    sandbox.reset_knobs()


@pytest.fixture(scope="session")
def settings(sandbox: Sandbox, sandbox_url: str) -> Settings:
    return demo_settings(sandbox_url, sandbox)


class GatewayClient:
    """A gateway served over loopback and a client for it."""

    def __init__(self, server: ServerThread) -> None:
        self.server = server
        self.url = server.url
        self.http = httpx.Client(base_url=server.url, timeout=30)

    def query(
        self, query: str, variables: dict[str, Any] | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        response = self.http.post(
            "/graphql", json={"query": query, "variables": variables}, **kwargs
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def data(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        body = self.query(query, variables)
        assert "errors" not in body, body["errors"]
        data: dict[str, Any] = body["data"]
        return data

    def close(self) -> None:
        self.http.close()
        self.server.stop()


GatewayFactory = Callable[..., GatewayClient]


@pytest.fixture(scope="session")
def make_gateway(settings: Settings) -> Iterator[GatewayFactory]:
    """Start a fresh gateway (its own empty cache), optionally with changed settings."""
    started: list[GatewayClient] = []

    def make(**changes: Any) -> GatewayClient:
        client = GatewayClient(ServerThread(create_app(replace(settings, **changes))).start())
        started.append(client)
        return client

    yield make
    # All at once (one after another, ~50 gateways took 9-10 s), and one that a test left a
    # stream open to is made to exit after a grace (uvicorn would wait for it for ever).
    for client in started:
        client.http.close()
    stop_all(client.server for client in started)


@pytest.fixture(scope="session")
def gateway(make_gateway: GatewayFactory) -> GatewayClient:
    """One long-lived gateway for read-only tests that do not count upstream calls."""
    return make_gateway()


def vendor_settings(settings: Settings, vendor: Vendor, **changes: Any) -> Settings:
    vendors = dict(settings.vendors)
    vendors[vendor] = replace(vendors[vendor], **changes)
    return replace(settings, vendors=vendors)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """A running, empty Redis."""
    if redis_server.process is None:
        redis_server.start()
    redis_server.flush()
    return redis_server.url


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL cluster (tests/postgres_server.py), started once a session."""
    server = PostgresServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def postgres_url(postgres_server: PostgresServer) -> str:
    """A fresh, empty PostgreSQL database for the test module."""
    return postgres_server.create_database()


class OwnSandbox:
    """A sandbox of the test module's own, for tests that change vendor data (writes,
    progressing tasks), so the shared sandbox stays as every other test expects it."""

    def __init__(
        self, sandbox: Sandbox, server: ServerThread, factory: GatewayFactory, settings: Settings
    ) -> None:
        self.sandbox = sandbox
        self.server = server
        self.factory = factory
        self.settings = settings

    def gateway(self, **changes: Any) -> GatewayClient:
        return self.factory(**{"vendors": self.settings.vendors, **changes})


@pytest.fixture(scope="module")
def own(make_gateway: GatewayFactory) -> Iterator[OwnSandbox]:
    sandbox = Sandbox(SandboxOptions(size=60, seed=23))
    with ServerThread(sandbox.app) as server:
        yield OwnSandbox(sandbox, server, make_gateway, demo_settings(server.url, sandbox))
