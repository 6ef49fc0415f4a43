"""Graceful shutdown: a request in flight when the server is told to stop still gets its
answer, and only then are the upstream clients closed."""

from __future__ import annotations

import threading
from typing import Any

import httpx

from gateway.app import create_app
from gateway.cli import demo_settings
from gateway.core.records import Vendor
from gateway.serving import ServerThread

QUERY = "query Recent { tasks(first: 5) { nodes { id vendor } } }"


class ArrivalSignal:
    """The sandbox, wrapped to say when the gateway's first call to ``prefix`` arrived."""

    def __init__(self, app: Any, prefix: str) -> None:
        self.app = app
        self.prefix = prefix
        self.arrived = threading.Event()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].startswith(self.prefix):
            self.arrived.set()
        await self.app(scope, receive, send)


def test_shutdown_finishes_in_flight_requests_then_closes_clients(sandbox, clean_sandbox) -> None:
    clean_sandbox.knobs(Vendor.ORQ).latency_ms = 300
    signal = ArrivalSignal(sandbox.app, "/orq/")
    with ServerThread(signal) as vendors:
        app = create_app(demo_settings(vendors.url, sandbox))
        server = ServerThread(app).start()
        result: dict[str, httpx.Response] = {}

        def call() -> None:
            result["response"] = httpx.post(
                f"{server.url}/graphql", json={"query": QUERY}, timeout=10
            )

        caller = threading.Thread(target=call)
        caller.start()
        assert signal.arrived.wait(10), "the request never reached orq"
        clients = app.state.gateway.clients
        assert not any(client.is_closed for client in clients)
        server.stop()  # while the request waits on orq
        caller.join(10)
    response = result["response"]
    assert response.status_code == 200
    body = response.json()
    assert "errors" not in body
    assert all(client.is_closed for client in clients)
