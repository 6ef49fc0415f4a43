"""The sandbox under test: one ``Sandbox`` served once over real loopback HTTP.

Tests that change data (a tracker PUT, ``advance``) compare against the live store, so they
may share the server; tests about the generated data itself build their own ``Sandbox``
(no server) with the same options.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from gateway.core.records import Vendor
from gateway.sandbox import SANDBOX_CREDENTIALS, Sandbox, SandboxOptions
from gateway.serving import ServerThread

SIZE = 60
SEED = 5
# Fixed, so the generated data is reproducible (the sandbox clock starts here and moves on
# with real time, so a PUT or ``advance`` stamps a time later than any generated one).
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
OPTIONS = SandboxOptions(size=SIZE, seed=SEED, now=NOW)

XPANDER_KEY = {"x-api-key": str(SANDBOX_CREDENTIALS[Vendor.XPANDER])}
ORQ_AUTH = {"authorization": f"Bearer {SANDBOX_CREDENTIALS[Vendor.ORQ]}"}
SUBNOTO_AUTH = {"authorization": f"Bearer {SANDBOX_CREDENTIALS[Vendor.SUBNOTO]}"}
SUBNOTO_LIST = "/subnoto/public/agent-task/list"


def parse_time(value: str) -> datetime:
    """An ISO-8601 timestamp as the vendors send it (``Z`` or an offset), timezone-aware."""
    moment = datetime.fromisoformat(value)
    assert moment.tzinfo is not None, value
    return moment


@pytest.fixture(scope="session")
def sim() -> Sandbox:
    return Sandbox(OPTIONS)


@pytest.fixture(scope="session")
def sim_url(sim: Sandbox) -> Iterator[str]:
    with ServerThread(sim.app) as server:
        yield server.url


@pytest.fixture(scope="session")
def http(sim_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sim_url, timeout=10) as client:
        yield client


@pytest.fixture(scope="session")
def empty_url() -> Iterator[str]:
    """A sandbox with no tasks at all (for the zero-record edge cases)."""
    with ServerThread(Sandbox(SandboxOptions(size=0, seed=SEED, now=NOW)).app) as server:
        yield server.url


@pytest.fixture(autouse=True)
def _clean(sim: Sandbox) -> Iterator[None]:
    """Default knobs and zeroed counters around every test."""
    sim.reset_knobs()
    sim.reset_counters()
    yield
    sim.reset_knobs()
    sim.reset_counters()


def get_json(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    return response.json()


def orq_status(state: dict[str, Any]) -> str:
    """orq's derived status, with VENDORS.md's precedence: error set is errored; else
    waiting_for_approval is approval_required; else inactive is inactive; else in_progress."""
    if state["error"]:
        return "errored"
    if state["waiting_for_approval"]:
        return "approval_required"
    return "inactive" if state["inactive"] else "in_progress"
