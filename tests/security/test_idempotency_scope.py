"""Idempotency keys belong to the caller and hold across replicas (issue 14, item 12).

A stored answer is returned only to the caller that stored it: the same client key (however
it is sent) with the same forwarded vendor keys. Another client key, or the same client key
forwarding another (even a wrong) Agentex key, is another caller: it writes for itself and
gets its own answer (or its own error). Ten concurrent calls with one key through two
gateways sharing one Redis make exactly one PUT. No key or secret appears in Redis.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest
import redis

from gateway.cli import demo_settings
from gateway.core.contract import Credentials
from gateway.core.records import Vendor
from gateway.sandbox import Sandbox, SandboxOptions
from gateway.serving import ServerThread
from tests.conftest import GatewayClient, GatewayFactory

AGENTEX_KEY = "idem-agentex-secret-9f3a"
CLIENT_A = "idem-client-key-a-5501"
CLIENT_B = "idem-client-key-b-7702"
TRACKERS = "{ trackers(first: 10) { nodes { id vendorStatus statusReason } } }"
UPDATE = """mutation($input: UpdateTrackerInput!) {
  updateTracker(input: $input) { id vendorStatus statusReason updatedAt } }"""
PUT = "PUT /tracker/{tracker_id}"


class KeyedSandbox:
    """A sandbox whose Agentex checks a key, and gateways on it that require client keys."""

    def __init__(self, sandbox: Sandbox, factory: GatewayFactory, url: str) -> None:
        self.sandbox = sandbox
        settings = demo_settings(url, sandbox)
        vendors = dict(settings.vendors)
        vendors[Vendor.AGENTEX] = replace(
            vendors[Vendor.AGENTEX], credentials=Credentials(AGENTEX_KEY, "Authorization", "Bearer")
        )
        self.changes: dict[str, Any] = {
            "vendors": vendors,
            "open_access": False,
            "api_keys": (CLIENT_A, CLIENT_B),
            "forward_vendor_credentials": True,
        }
        self.factory = factory

    def gateway(self, **changes: Any) -> GatewayClient:
        return self.factory(**{**self.changes, **changes})

    def puts(self) -> int:
        return self.sandbox.counters(Vendor.AGENTEX).get(PUT, 0)


@pytest.fixture(scope="module")
def keyed(make_gateway: GatewayFactory) -> Iterator[KeyedSandbox]:
    sandbox = Sandbox(SandboxOptions(size=40, seed=31), credentials={Vendor.AGENTEX: AGENTEX_KEY})
    with ServerThread(sandbox.app) as server:
        yield KeyedSandbox(sandbox, make_gateway, server.url)


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def post(gateway: GatewayClient, variables: dict[str, Any], headers: dict[str, str]) -> Any:
    response = gateway.http.post(
        "/graphql", json={"query": UPDATE, "variables": variables}, headers=headers
    )
    return response.json()


def tracker_ids(gateway: GatewayClient) -> list[str]:
    body = gateway.http.post("/graphql", json={"query": TRACKERS}, headers=bearer(CLIENT_A))
    return [t["id"] for t in body.json()["data"]["trackers"]["nodes"]]


@pytest.mark.parametrize("backend", ["memory", "redis"])
def test_a_stored_answer_is_returned_only_to_the_caller_that_stored_it(
    keyed: KeyedSandbox, redis_url: str, backend: str
) -> None:
    gateway = keyed.gateway(cache_url=redis_url if backend == "redis" else None)
    tracker = tracker_ids(gateway)[0 if backend == "memory" else 1]
    variables = {
        "input": {
            "id": tracker,
            "status": "paused",
            "statusReason": f"scoped-{backend}",
            "idempotencyKey": f"shared-key-{backend}",
        }
    }
    before = keyed.puts()
    first = post(gateway, variables, bearer(CLIENT_A))
    assert "errors" not in first and keyed.puts() == before + 1

    # The same caller, its key sent another way: the stored answer, no new write.
    for headers in ({"x-api-key": CLIENT_A}, {"Authorization": f"bearer {CLIENT_A}"}):
        again = post(gateway, variables, headers)
        assert again == first and keyed.puts() == before + 1, headers

    # Another client key with the same idempotency key: its own write.
    other = post(gateway, variables, bearer(CLIENT_B))
    assert "errors" not in other and keyed.puts() == before + 2

    # The first caller forwarding a wrong Agentex key is not handed the stored success.
    wrong = post(gateway, variables, {**bearer(CLIENT_A), "x-vendor-key-agentex": "wrong-key"})
    assert wrong["errors"][0]["extensions"]["code"] == "UPSTREAM_AUTH", wrong
    assert wrong.get("data") in (None, {"updateTracker": None})

    # ...and forwarding the right one is yet another identity: it writes for itself.
    refused = keyed.puts()  # the wrong key's PUT reached Agentex and was refused there
    right = post(gateway, variables, {**bearer(CLIENT_A), "x-vendor-key-agentex": AGENTEX_KEY})
    assert "errors" not in right and keyed.puts() == refused + 1


async def burst(urls: list[str], variables: dict[str, Any]) -> list[Any]:
    async with httpx.AsyncClient(timeout=60) as client:
        responses = await asyncio.gather(
            *(
                client.post(
                    f"{urls[i % len(urls)]}/graphql",
                    json={"query": UPDATE, "variables": variables},
                    headers=bearer(CLIENT_A),
                )
                for i in range(10)
            )
        )
    return [r.json() for r in responses]


def test_ten_concurrent_calls_through_two_replicas_make_one_put(
    keyed: KeyedSandbox, redis_url: str
) -> None:
    one, two = keyed.gateway(cache_url=redis_url), keyed.gateway(cache_url=redis_url)
    tracker = tracker_ids(one)[2]
    variables = {
        "input": {
            "id": tracker,
            "status": "running",
            "statusReason": "burst",
            "idempotencyKey": "burst-key-1",
        }
    }
    keyed.sandbox.knobs(Vendor.AGENTEX).latency_ms = 50  # every call overlaps the PUT
    try:
        before = keyed.puts()
        bodies = asyncio.run(burst([one.url, two.url], variables))
    finally:
        keyed.sandbox.reset_knobs()
    assert all("errors" not in b for b in bodies), bodies
    assert keyed.puts() == before + 1
    assert len({repr(b) for b in bodies}) == 1  # every caller got the one answer


def test_no_client_key_or_vendor_key_is_written_to_redis(
    keyed: KeyedSandbox, redis_url: str
) -> None:
    gateway = keyed.gateway(cache_url=redis_url)
    tracker = tracker_ids(gateway)[3]
    variables = {"input": {"id": tracker, "statusReason": "keys", "idempotencyKey": "k-keys"}}
    headers = {**bearer(CLIENT_B), "x-vendor-key-agentex": AGENTEX_KEY}
    assert "errors" not in post(gateway, variables, headers)
    client = redis.Redis.from_url(redis_url)
    stored = [(key, client.dump(key) or b"") for key in client.scan_iter(match="*")]
    assert stored
    for secret in (CLIENT_A, CLIENT_B, AGENTEX_KEY, "k-keys"):
        assert not any(secret.encode() in key or secret.encode() in value for key, value in stored)
