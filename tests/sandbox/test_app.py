"""The ``Sandbox`` as a whole: options given at start, the lifespan's background progress,
and an Agentex key in a header of the operator's choosing. Each test serves its own small
sandbox, since each needs options the shared one does not have."""

from __future__ import annotations

import time

import httpx

from gateway.core.records import Vendor
from gateway.sandbox import SANDBOX_CREDENTIALS, Sandbox, SandboxOptions
from gateway.serving import ServerThread
from tests.sandbox.conftest import NOW, ORQ_AUTH


def test_options_set_every_vendors_knobs_at_start_and_reset_restores_them() -> None:
    options = SandboxOptions(size=3, now=NOW, latency_ms=5, error_rate=0.25, timeout_rate=0.5)
    sandbox = Sandbox(options)
    for vendor in Vendor:
        knobs = sandbox.knobs(vendor)
        assert (knobs.latency_ms, knobs.error_rate, knobs.timeout_rate) == (5, 0.25, 0.5)
        knobs.latency_ms, knobs.fail_next = 900, 4
    sandbox.reset_knobs()
    assert all(sandbox.knobs(v).settings() == sandbox.knobs(Vendor.ORQ).settings() for v in Vendor)
    assert sandbox.knobs(Vendor.ORQ).settings()["latency_ms"] == 5
    assert sandbox.knobs(Vendor.ORQ).fail_next == 0


def test_progress_seconds_moves_tasks_on_while_served() -> None:
    sandbox = Sandbox(SandboxOptions(size=30, seed=3, now=NOW, progress_seconds=0.05))
    agent = sandbox.agents(Vendor.ORQ)[0]
    with ServerThread(sandbox.app) as server, httpx.Client(base_url=server.url) as client:

        def states() -> dict[str, str]:
            body = client.get(
                f"/orq/v2/agents/{agent}/tasks", params={"limit": 200}, headers=ORQ_AUTH
            ).json()
            return {t["_id"]: t["updated"] for t in body["tasks"]}

        first = states()
        deadline = time.monotonic() + 10
        while states() == first and time.monotonic() < deadline:
            time.sleep(0.05)
        assert states() != first, "no task moved on while the sandbox was served"


def test_an_agentex_key_can_be_required_in_another_header_without_a_scheme() -> None:
    sandbox = Sandbox(
        SandboxOptions(size=2, now=NOW, agentex_header="x-agentex-key", agentex_scheme=None),
        {**SANDBOX_CREDENTIALS, Vendor.AGENTEX: "k2"},
    )
    with ServerThread(sandbox.app) as server, httpx.Client(base_url=server.url) as client:
        assert (
            client.get("/agentex/tracker", headers={"authorization": "Bearer k2"}).status_code
            == 401
        )
        assert client.get("/agentex/tracker", headers={"x-agentex-key": "nope"}).status_code == 401
        ok = client.get("/agentex/tracker", headers={"x-agentex-key": "k2"})
        assert ok.status_code == 200 and len(ok.json()) == 2
