"""The connectors' sandbox: one ``Sandbox`` of their own, served once over real loopback HTTP.

Its own (not the shared ``sandbox`` fixture's) because these tests turn fault knobs and PUT
trackers; comparisons always read the live store, so a write never breaks another test.
Agentex gets a key here, as a deployment fronted by a proxy would, so its auth is tested too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass

import httpx
import pytest

from gateway.core.contract import VendorSettings
from gateway.core.records import TaskStatus, Vendor
from gateway.sandbox import SANDBOX_CREDENTIALS, Sandbox, SandboxOptions
from gateway.serving import ServerThread
from gateway.vendors.base import Connector
from gateway.vendors.registry import connector_for, default_credentials

SIZE = 650  # over 200 tasks per orq agent, so every vendor's listings take several pages
SEED = 13
KEYS: dict[Vendor, str] = {
    **{v: k for v, k in SANDBOX_CREDENTIALS.items() if k},
    Vendor.AGENTEX: "sandbox-agentex-key",
}


@pytest.fixture(scope="session")
def vendor_sandbox() -> Sandbox:
    return Sandbox(
        SandboxOptions(size=SIZE, seed=SEED), credentials={Vendor.AGENTEX: KEYS[Vendor.AGENTEX]}
    )


@pytest.fixture(scope="session")
def vendor_url(vendor_sandbox: Sandbox) -> Iterator[str]:
    with ServerThread(vendor_sandbox.app) as server:
        yield server.url


@pytest.fixture
def sb(vendor_sandbox: Sandbox) -> Iterator[Sandbox]:
    """The connectors' sandbox with default knobs and zeroed counters, knobs reset after."""
    vendor_sandbox.reset_knobs()
    vendor_sandbox.reset_counters()
    yield vendor_sandbox
    vendor_sandbox.reset_knobs()


@dataclass
class Make:
    """Builds connectors on the sandbox; their clients close after the test."""

    sandbox: Sandbox
    url: str
    clients: list[httpx.AsyncClient]

    def __call__(
        self,
        vendor: Vendor,
        *,
        secret: str | None = None,
        anonymous: bool = False,
        timeout: float = 5.0,
        agents: tuple[str, ...] | None = None,
        extra_status_map: Mapping[str, TaskStatus] | None = None,
        base_url: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> Connector:
        """A connector as the app builds one: the vendor's settings and a real client. Its
        key is ``secret``, else the one the sandbox accepts, or none if ``anonymous``."""
        key = None if anonymous else secret or KEYS[vendor]
        settings = VendorSettings(
            vendor,
            base_url or f"{self.url}/{vendor.value}",
            default_credentials(vendor, key) if key else None,
            agents=tuple(self.sandbox.agents(vendor)) if agents is None else agents,
            extra_status_map=extra_status_map or {},
        )
        client = httpx.AsyncClient(base_url=settings.base_url, timeout=timeout, transport=transport)
        self.clients.append(client)
        return connector_for(vendor)(settings, client)


@pytest.fixture
async def make(sb: Sandbox, vendor_url: str) -> AsyncIterator[Make]:
    factory = Make(sb, vendor_url, [])
    yield factory
    for client in factory.clients:
        await client.aclose()
