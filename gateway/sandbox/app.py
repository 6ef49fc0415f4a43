"""The sandbox: the registered simulators on one ASGI app, each mounted under its vendor's
name (``/agentex``, ``/xpander``, ``/orq``, ``/subnoto``), with their data, knobs and counters
reachable from tests, and an optional background task that moves live tasks on.

``SIMULATORS`` is the only list of vendors here: everything else goes through the
``Simulator`` protocol.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
from collections import Counter
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from starlette.applications import Starlette
from starlette.routing import Mount

from gateway.core.records import Vendor
from gateway.sandbox import agentex, orq, subnoto, xpander
from gateway.sandbox.common import Clock
from gateway.sandbox.data import Moments, Row
from gateway.sandbox.knobs import DEFAULT_STEPS, Knobs
from gateway.sandbox.simulator import Setup, Simulator
from gateway.serving import bind_socket, make_server

SIMULATORS: tuple[type[Simulator], ...] = (
    agentex.Agentex,
    xpander.Xpander,
    orq.Orq,
    subnoto.Subnoto,
)

# The keys the sandbox expects by default, as a client sends them after the scheme.
SANDBOX_CREDENTIALS: dict[Vendor, str | None] = {
    Vendor.AGENTEX: None,  # the open-source server checks no key
    Vendor.XPANDER: "sandbox-xpander-key",
    Vendor.ORQ: "sandbox-orq-token",
    Vendor.SUBNOTO: "sandbox-subnoto-access:sandbox-subnoto-secret",  # the API proxy's pair
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
    per_minute: int = 0
    shuffle_ties: bool = False
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
            "per_minute": self.per_minute,
            "shuffle_ties": self.shuffle_ties,
        }

    def key_styles(self) -> dict[Vendor, tuple[str, str | None]]:
        """Where a simulator wants its key when the operator moved it (Agentex, behind a
        deployment's own proxy); the others keep their vendor's header."""
        return {Vendor.AGENTEX: (self.agentex_header, self.agentex_scheme)}


class VendorMount(Mount):
    """A ``Mount`` that also routes paths with a newline in them: its ``.*`` pattern stops at
    one, while a vendor's own router passes such an id to the handler like any other."""

    def __init__(self, path: str, app: Starlette) -> None:
        super().__init__(path, app=app)
        self.path_regex = re.compile(self.path_regex.pattern, re.DOTALL)


class Sandbox:
    """Every registered simulator, served on one app.

    ``data`` (vendor JSON records per vendor, as each list endpoint shows them) replaces the
    generated records of the vendors it names; ``load`` does the same on a running sandbox,
    so a test can serve exactly the records it generated."""

    def __init__(
        self,
        options: SandboxOptions | None = None,
        credentials: Mapping[Vendor, str | None] | None = None,
        data: Mapping[Vendor, Sequence[Row]] | None = None,
    ) -> None:
        self.options = options = options or SandboxOptions()
        keys = {**SANDBOX_CREDENTIALS, **(credentials or {})}
        self.clock = Clock(options.now)
        moments = Moments(options.seed, self.clock.start)
        styles = options.key_styles()
        self._simulators: dict[Vendor, Simulator] = {}
        for factory in SIMULATORS:
            vendor = factory.vendor
            knobs = Knobs(rng=random.Random(f"{options.seed}:{vendor.value}"))
            knobs.update(options.knob_settings())
            setup = Setup(
                vendor=vendor,
                size=options.size,
                seed=options.seed,
                clock=self.clock,
                moments=moments,
                knobs=knobs,
                secret=keys.get(vendor),
                key_style=styles.get(vendor),
            )
            self._simulators[vendor] = factory(setup)
        if data:
            self.load(data)
        self.app = Starlette(
            routes=[VendorMount(f"/{v.value}", s.app) for v, s in self._simulators.items()],
            lifespan=self._lifespan,
        )

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
        return self._simulators[vendor].knobs

    def counters(self, vendor: Vendor) -> dict[str, int]:
        """Requests received per route template, e.g. ``{"GET /tracker": 3}``."""
        return dict(cast(Counter[str], self._simulators[vendor].app.state.counters))

    def reset_counters(self) -> None:
        for simulator in self._simulators.values():
            simulator.app.state.counters.clear()

    def reset_knobs(self) -> None:
        for simulator in self._simulators.values():
            simulator.knobs.update({**Knobs().settings(), **self.options.knob_settings()})

    def agents(self, vendor: Vendor) -> list[str]:
        """The vendor's agent ids (keys for orq); none for Subnoto, which is team-wide. They
        depend on the seed alone, so a client can be configured for a sandbox of any size,
        and stay the same whatever records are loaded."""
        return list(self._simulators[vendor].agents)

    def store(self, vendor: Vendor) -> Any:
        """The vendor's rows as the simulator serves them (call ``changed()`` after editing):
        Agentex trackers by id, xpander and orq task lists by agent, Subnoto's one list."""
        return self._simulators[vendor].data

    def load(self, data: Mapping[Vendor, Sequence[Row]]) -> None:
        """Serve exactly these records (vendor JSON, as each list shows them) for the vendors
        named; the others keep theirs. Listings cached by the simulators are dropped."""
        for vendor, records in data.items():
            self._simulators[vendor].load(records)

    def advance(self, n: int = DEFAULT_STEPS) -> int:
        """Move up to ``n`` live tasks of every vendor one status step on, updated now."""
        return sum(simulator.advance(n) for simulator in self._simulators.values())


async def serve_sandbox(sandbox: Sandbox, host: str, port: int) -> None:
    """Serve the sandbox in the foreground (the ``task-gateway sandbox`` command)."""
    await make_server(sandbox.app, log_level="info").serve(sockets=[bind_socket(host, port)])
