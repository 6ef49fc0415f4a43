"""The sandbox: the four simulators on one ASGI app, each mounted under its vendor's name
(``/agentex``, ``/xpander``, ``/orq``, ``/subnoto``), with their data, knobs and counters
reachable from tests, and an optional background task that moves live tasks on."""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any, cast

from starlette.applications import Starlette
from starlette.routing import Mount

from gateway.core.records import Vendor
from gateway.sandbox import agentex, orq, subnoto, xpander
from gateway.sandbox.common import Clock
from gateway.sandbox.data import Store, generate
from gateway.sandbox.knobs import DEFAULT_STEPS, Knobs
from gateway.serving import bind_socket, make_server

SANDBOX_CREDENTIALS: dict[Vendor, str | None] = {
    Vendor.AGENTEX: None,  # the open-source server checks no key
    Vendor.XPANDER: "sandbox-xpander-key",
    Vendor.ORQ: "sandbox-orq-token",
    Vendor.SUBNOTO: "sandbox-subnoto-key",
}


@dataclass(frozen=True)
class SandboxOptions:
    """What the ``sandbox`` and ``demo`` commands set at start. The fault knobs here are the
    starting (and ``reset_knobs``) values of every vendor's knobs."""

    size: int = 300  # tasks per vendor
    seed: int = 7
    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    error_rate: float = 0.0
    error_status: int = 500
    rate_limit_rate: float = 0.0
    retry_after_seconds: int = 1
    timeout_rate: float = 0.0
    malformed_rate: float = 0.0
    progress_seconds: float | None = None  # move live tasks on this often
    now: datetime | None = None  # the data's "now"; default the current second
    agentex_header: str = "authorization"  # where Agentex wants its key, if it has one
    agentex_scheme: str | None = "Bearer"

    def knob_settings(self) -> dict[str, Any]:
        return {
            "latency_ms": self.latency_ms,
            "jitter_ms": self.jitter_ms,
            "error_rate": self.error_rate,
            "error_status": self.error_status,
            "rate_limit_rate": self.rate_limit_rate,
            "retry_after_seconds": self.retry_after_seconds,
            "timeout_rate": self.timeout_rate,
            "malformed_rate": self.malformed_rate,
        }


class VendorMount(Mount):
    """A ``Mount`` that also routes paths with a newline in them: its ``.*`` pattern stops at
    one, while a vendor's own router passes such an id to the handler like any other."""

    def __init__(self, path: str, app: Starlette) -> None:
        super().__init__(path, app=app)
        self.path_regex = re.compile(self.path_regex.pattern, re.DOTALL)


class Sandbox:
    def __init__(
        self,
        options: SandboxOptions | None = None,
        credentials: Mapping[Vendor, str | None] | None = None,
    ) -> None:
        self.options = options = options or SandboxOptions()
        keys = {**SANDBOX_CREDENTIALS, **(credentials or {})}
        self.clock = Clock(options.now)
        data = generate(options.size, options.seed, self.clock)
        self._agents = data.agents
        self._stores: dict[Vendor, Store] = {
            Vendor.AGENTEX: data.agentex,
            Vendor.XPANDER: data.xpander,
            Vendor.ORQ: data.orq,
            Vendor.SUBNOTO: data.subnoto,
        }
        self._knobs = {vendor: self._start_knobs(vendor) for vendor in Vendor}
        self._advance: list[Callable[[int], int]] = [
            partial(agentex.advance, data.agentex),
            partial(xpander.advance, data.xpander),
            partial(orq.advance, data.orq),
            partial(subnoto.advance, data.subnoto),
        ]
        k = self._knobs
        self._apps: dict[Vendor, Starlette] = {
            Vendor.AGENTEX: agentex.create_app(
                data.agentex,
                k[Vendor.AGENTEX],
                keys[Vendor.AGENTEX],
                header=options.agentex_header,
                scheme=options.agentex_scheme,
            ),
            Vendor.XPANDER: xpander.create_app(
                data.xpander, k[Vendor.XPANDER], keys[Vendor.XPANDER]
            ),
            Vendor.ORQ: orq.create_app(data.orq, k[Vendor.ORQ], keys[Vendor.ORQ]),
            Vendor.SUBNOTO: subnoto.create_app(
                data.subnoto, k[Vendor.SUBNOTO], keys[Vendor.SUBNOTO]
            ),
        }
        self.app = Starlette(
            routes=[VendorMount(f"/{v.value}", app) for v, app in self._apps.items()],
            lifespan=self._lifespan,
        )

    def _start_knobs(self, vendor: Vendor) -> Knobs:
        knobs = Knobs(rng=random.Random(f"{self.options.seed}:{vendor.value}"))
        knobs.update(self.options.knob_settings())
        return knobs

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        every = self.options.progress_seconds
        task = asyncio.create_task(self._progress(every)) if every else None
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _progress(self, every: float) -> None:
        while True:
            await asyncio.sleep(every)
            self.advance()

    def knobs(self, vendor: Vendor) -> Knobs:
        """The vendor's live knobs: set attributes to change what its next requests meet."""
        return self._knobs[vendor]

    def counters(self, vendor: Vendor) -> dict[str, int]:
        """Requests received per route template, e.g. ``{"GET /tracker": 3}``."""
        return dict(cast(Counter[str], self._apps[vendor].state.counters))

    def reset_counters(self) -> None:
        for app in self._apps.values():
            app.state.counters.clear()

    def reset_knobs(self) -> None:
        for knobs in self._knobs.values():
            knobs.update({**Knobs().settings(), **self.options.knob_settings()})

    def agents(self, vendor: Vendor) -> list[str]:
        """The vendor's agent ids (keys for orq); none for Subnoto, which is team-wide."""
        return list(self._agents[vendor.value])

    def store(self, vendor: Vendor) -> Any:
        """The vendor's rows as the simulator serves them (call ``changed()`` after editing):
        Agentex trackers by id, xpander and orq task lists by agent, Subnoto's one list."""
        return self._stores[vendor]

    def advance(self, n: int = DEFAULT_STEPS) -> int:
        """Move up to ``n`` live tasks of every vendor one status step on, updated now."""
        return sum(step(n) for step in self._advance)


async def serve_sandbox(sandbox: Sandbox, host: str, port: int) -> None:
    """Serve the sandbox in the foreground (the ``task-gateway sandbox`` command)."""
    await make_server(sandbox.app, log_level="info").serve(sockets=[bind_socket(host, port)])
