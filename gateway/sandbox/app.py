"""The sandbox: the four simulators on one ASGI app, each under its vendor's path prefix."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.core.records import Vendor
from gateway.sandbox.agentex import AgentexSimulator
from gateway.sandbox.data import generate
from gateway.sandbox.knobs import Knobs, Simulator
from gateway.sandbox.orq import OrqSimulator
from gateway.sandbox.subnoto import SubnotoSimulator
from gateway.sandbox.xpander import XpanderSimulator
from gateway.serving import bind_socket, make_server

SANDBOX_CREDENTIALS: dict[Vendor, str | None] = {
    Vendor.AGENTEX: None,
    Vendor.XPANDER: "sandbox-xpander-key",
    Vendor.ORQ: "sandbox-orq-token",
    Vendor.SUBNOTO: "sandbox-subnoto-key",
}


class PrefixDispatch:
    """Each vendor's app under its path prefix. (Starlette's ``Mount`` cannot match a path
    with a newline in it, which a vendor's own server routes like any other id.)"""

    def __init__(self, apps: dict[str, ASGIApp], fallback: ASGIApp) -> None:
        self.apps = apps
        self.fallback = fallback  # lifespan, and paths of no vendor

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            path = scope["path"]
            for prefix, app in self.apps.items():
                if path.startswith(prefix + "/"):
                    root = scope.get("root_path", "") + prefix
                    await app({**scope, "root_path": root}, receive, send)
                    return
            if scope["type"] == "http":
                await PlainTextResponse("Not Found", 404)(scope, receive, send)
                return
        await self.fallback(scope, receive, send)


@dataclass(frozen=True)
class SandboxOptions:
    size: int = 300
    seed: int = 7
    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    error_rate: float = 0.0
    error_status: int = 500
    rate_limit_rate: float = 0.0
    timeout_rate: float = 0.0
    malformed_rate: float = 0.0
    progress_seconds: float | None = None
    now: datetime | None = None

    def knobs(self) -> Knobs:
        return Knobs(
            latency_ms=self.latency_ms,
            jitter_ms=self.jitter_ms,
            error_rate=self.error_rate,
            error_status=self.error_status,
            rate_limit_rate=self.rate_limit_rate,
            timeout_rate=self.timeout_rate,
            malformed_rate=self.malformed_rate,
        )


class Sandbox:
    def __init__(
        self,
        options: SandboxOptions | None = None,
        credentials: dict[Vendor, str | None] | None = None,
    ) -> None:
        self.options = options or SandboxOptions()
        creds = credentials or SANDBOX_CREDENTIALS
        self.data = generate(
            self.options.size, self.options.seed, self.options.now or datetime.now(UTC)
        )
        seed = self.options.seed
        self.simulators: dict[Vendor, Simulator] = {
            Vendor.AGENTEX: AgentexSimulator(
                self.data.trackers,
                self.data.events,
                self.options.knobs(),
                creds[Vendor.AGENTEX],
                seed,
            ),
            Vendor.XPANDER: XpanderSimulator(
                self.data.xpander, self.options.knobs(), creds[Vendor.XPANDER], seed
            ),
            Vendor.ORQ: OrqSimulator(self.data.orq, self.options.knobs(), creds[Vendor.ORQ], seed),
            Vendor.SUBNOTO: SubnotoSimulator(
                self.data.subnoto, self.options.knobs(), creds[Vendor.SUBNOTO], seed
            ),
        }
        self.app = PrefixDispatch(
            {f"/{v.value}": s.app() for v, s in self.simulators.items()},
            Starlette(lifespan=self._lifespan),
        )

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        task = None
        if self.options.progress_seconds:
            task = asyncio.create_task(self._progress(self.options.progress_seconds))
        yield
        if task is not None:
            task.cancel()

    async def _progress(self, every: float) -> None:
        while True:
            await asyncio.sleep(every)
            self.advance(3)

    def knobs(self, vendor: Vendor) -> Knobs:
        return self.simulators[vendor].knobs

    def counters(self, vendor: Vendor) -> dict[str, int]:
        return dict(self.simulators[vendor].counters)

    def reset_counters(self) -> None:
        for simulator in self.simulators.values():
            simulator.counters.clear()

    def reset_knobs(self) -> None:
        for simulator in self.simulators.values():
            simulator.knobs.__dict__.update(self.options.knobs().__dict__)

    def agents(self, vendor: Vendor) -> list[str]:
        return list(self.data.agents[vendor.value])

    def store(self, vendor: Vendor) -> Any:
        return {
            Vendor.AGENTEX: self.data.trackers,
            Vendor.XPANDER: self.data.xpander,
            Vendor.ORQ: self.data.orq,
            Vendor.SUBNOTO: self.data.subnoto,
        }[vendor]

    def advance(self, n: int = 3) -> int:
        """Move up to ``n`` live tasks of every vendor one status step on, updated now."""
        return sum(s.advance_and_forget(n) for s in self.simulators.values())


async def serve_sandbox(sandbox: Sandbox, host: str, port: int) -> None:
    await make_server(sandbox.app, log_level="info").serve(sockets=[bind_socket(host, port)])
