"""The one contract between the sandbox and a vendor's simulator.

A simulator is one module: the vendor's vocabulary and data written from its documentation
(``shared/vendors/``), its routes, and how its live tasks move on. It shares no mapping code
with the gateway, so the simulator can catch the gateway's misreadings instead of repeating
them. The sandbox builds each registered simulator from a ``Setup`` and reads it through
``Simulator`` alone; a fifth vendor is one module and one line in ``app.SIMULATORS``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from starlette.applications import Starlette

from gateway.core.records import Vendor
from gateway.sandbox.common import Clock
from gateway.sandbox.data import Moments, Row, copied
from gateway.sandbox.knobs import Knobs


@dataclass(frozen=True)
class Setup:
    """What a simulator is built from."""

    vendor: Vendor
    size: int  # tasks to generate
    seed: int
    clock: Clock
    moments: Moments  # shared by every vendor, for ties across vendors
    knobs: Knobs
    secret: str | None  # the key the simulator expects; None: no check
    key_style: tuple[str, str | None] | None = None  # (header, scheme) instead of the vendor's

    def rng(self, purpose: str) -> random.Random:
        """A generator of this vendor's own, so one vendor's data never shifts another's."""
        return random.Random(f"{purpose}:{self.seed}:{self.vendor.value}")


class Simulator(Protocol):
    """One vendor's API as the sandbox drives it."""

    vendor: Vendor
    knobs: Knobs
    app: Starlette  # the vendor's routes, faults, key check and control routes
    agents: list[str]  # the ids a client lists per agent (empty: team-wide)

    def __init__(self, setup: Setup) -> None: ...

    @property
    def data(self) -> Any:
        """The live rows as the simulator serves them (call ``changed()`` after editing)."""

    def load(self, records: Sequence[Row]) -> None:
        """Serve exactly these vendor JSON records from now on (copied)."""

    def advance(self, count: int) -> int:
        """Move up to ``count`` live tasks one status step on; returns how many moved."""


class RowStore(Protocol):
    """A vendor's rows that can be replaced wholesale."""

    def put(self, records: list[Row]) -> None: ...


class StoreSimulator:
    """What the simulators share once built: their store is their data, a load replaces its
    rows with a copy of the records, and ``advance`` is their vendor's step."""

    def __init__(
        self,
        setup: Setup,
        agents: list[str],
        store: RowStore,
        app: Starlette,
        step: Callable[[int], int],
    ) -> None:
        self.vendor = setup.vendor
        self.knobs = setup.knobs
        self.agents = agents
        self.store = store
        self.app = app
        self._step = step

    @property
    def data(self) -> Any:
        return self.store

    def load(self, records: Sequence[Row]) -> None:
        self.store.put(copied(records))

    def advance(self, count: int) -> int:
        return self._step(count)
