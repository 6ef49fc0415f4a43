"""One sandbox served once over loopback for the sandbox tests."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from gateway.sandbox import Sandbox, SandboxOptions
from gateway.serving import ServerThread

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def sim() -> Sandbox:
    return Sandbox(SandboxOptions(size=90, seed=5, now=NOW))


@pytest.fixture(scope="module")
def sandbox_server(sim: Sandbox) -> Iterator[str]:
    with ServerThread(sim.app) as server:
        yield server.url


@pytest.fixture(autouse=True)
def _reset(sim: Sandbox) -> None:
    sim.reset_knobs()
    sim.reset_counters()
