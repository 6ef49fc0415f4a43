"""A sandbox of the budget tests' own, behind a tally of what it answered: the oracle for
what reached a vendor and what the vendor refused is the sandbox side, never the gateway's
own counters."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.cli import demo_settings
from gateway.core.records import Vendor
from gateway.sandbox import Sandbox, SandboxOptions
from gateway.sandbox.knobs import CONTROL_PREFIX
from gateway.serving import ServerThread
from tests.conftest import GatewayClient, GatewayFactory


class Tally:
    """Counts every vendor answer by vendor and HTTP status, as the sandbox sent it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.answers: Counter[tuple[str, int]] = Counter()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or CONTROL_PREFIX in path:
            await self.app(scope, receive, send)
            return
        vendor = path.strip("/").split("/", 1)[0]

        async def counted(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.answers[vendor, message["status"]] += 1
            await send(message)

        await self.app(scope, receive, counted)

    def received(self, vendor: Vendor) -> int:
        return sum(n for (name, _), n in self.answers.items() if name == vendor.value)

    def refused(self, vendor: Vendor) -> int:
        return self.answers[vendor.value, 429]


class Budgeted:
    """The sandbox, its tally, and gateways in front of it with budget settings."""

    def __init__(self, sandbox: Sandbox, tally: Tally, factory: GatewayFactory, url: str) -> None:
        self.sandbox = sandbox
        self.tally = tally
        self.factory = factory
        self.settings = demo_settings(url, sandbox)

    def gateway(self, orq: dict[str, Any] | None = None, **changes: Any) -> GatewayClient:
        """A gateway with orq's settings changed (``max_requests_per_minute``, TTLs …)."""
        vendors = dict(self.settings.vendors)
        vendors[Vendor.ORQ] = replace(vendors[Vendor.ORQ], **(orq or {}))
        return self.factory(vendors=vendors, **changes)

    def orq_agents(self) -> int:
        return len(self.sandbox.agents(Vendor.ORQ))


@pytest.fixture(scope="module")
def budgeted_server(make_gateway: GatewayFactory) -> Iterator[tuple[Sandbox, Tally, str]]:
    sandbox = Sandbox(SandboxOptions(size=40, seed=31))
    tally = Tally(sandbox.app)
    with ServerThread(tally) as server:
        yield sandbox, tally, server.url


@pytest.fixture
def budgeted(
    budgeted_server: tuple[Sandbox, Tally, str], make_gateway: GatewayFactory
) -> Iterator[Budgeted]:
    """Default knobs and an empty tally for each test."""
    sandbox, tally, url = budgeted_server
    sandbox.reset_knobs()
    tally.answers.clear()
    yield Budgeted(sandbox, tally, make_gateway, url)
    sandbox.reset_knobs()
