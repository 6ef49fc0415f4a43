"""taskChanged over Server-Sent Events (graphql-sse, distinct connections mode), issue 19
part 2, with a real SSE client (``httpx-sse``) and progressing sandbox tasks.

Each subscription is one HTTP request accepting ``text/event-stream`` (a POST with a JSON
body, or a GET with the parameters in its query string), answered with ``next`` events and a
final ``complete``. It goes through the same GraphQL view, context and authentication as
every other ``/graphql`` request: a key in ``Authorization`` or ``X-API-Key``, the caller's
``X-Vendor-Key-*`` when forwarding is on; without a valid key it is a 401 and nothing runs.
What a subscriber receives is checked against the sandbox's own records.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from httpx_sse import aconnect_sse

from gateway.cli import demo_settings
from gateway.config import Settings
from gateway.core.records import Vendor
from gateway.sandbox import Sandbox, SandboxOptions
from gateway.serving import ServerThread
from tests.conftest import GatewayClient, GatewayFactory, OwnSandbox
from tests.oracle.model import expected_task
from tests.web.test_export_parquet import sandbox_records

KEY = "sse-client-key-0123456789"
SUBSCRIBE = """subscription($f: TaskFilter) {
  taskChanged(filter: $f) { id vendor nativeId status updatedAt } }"""
STREAM = "text/event-stream"


def fast_vendors(settings: Settings) -> dict[Vendor, Any]:
    """Short cache TTLs, so a change reaches the next poll at once."""
    return {v: replace(c, cache_ttl=0.05, first_page_ttl=0.05) for v, c in settings.vendors.items()}


def subscription_request(
    method: str, filter: dict[str, Any] | None, headers: dict[str, str]
) -> dict[str, Any]:
    """The request a graphql-sse client sends, as ``aconnect_sse`` keyword arguments."""
    payload = {"query": SUBSCRIBE, "variables": {"f": filter}}
    if method == "GET":
        params = {"query": SUBSCRIBE, "variables": json.dumps(payload["variables"])}
        return {"method": "GET", "params": params, "headers": headers}
    return {"method": "POST", "json": payload, "headers": headers}


async def changes(
    client: httpx.AsyncClient,
    request: dict[str, Any],
    ready: asyncio.Event,
    done: asyncio.Event,
) -> AsyncIterator[dict[str, Any]]:
    """Every ``taskChanged`` the stream delivers until ``done`` is set and one arrived."""
    method = request.pop("method")
    async with aconnect_sse(client, method, "/graphql", **request) as source:
        assert source.response.status_code == 200
        assert source.response.headers["content-type"].startswith(STREAM)
        ready.set()
        async for event in source.aiter_sse():
            assert event.event == "next", (event.event, event.data)
            payload = event.json()
            assert "errors" not in payload, payload
            yield payload["data"]["taskChanged"]
            if done.is_set():
                return


async def collect(
    base: str, request: dict[str, Any], ready: asyncio.Event, done: asyncio.Event
) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        return [change async for change in changes(client, request, ready, done)]


async def until(condition: Any, seconds: float = 10.0) -> None:
    for _ in range(int(seconds / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")


@pytest.fixture(scope="module")
def locked(own: OwnSandbox) -> GatewayClient:
    return own.gateway(
        open_access=False,
        api_keys=(KEY,),
        failed_auth_per_minute=0,
        poll_interval=0.1,
        vendors=fast_vendors(own.settings),
    )


def test_changes_arrive_over_sse_by_post_and_get_with_either_key_header(
    own: OwnSandbox, locked: GatewayClient
) -> None:
    poller = locked.server.server.config.app.state.poller
    subscribers = [
        subscription_request("POST", None, {"authorization": f"Bearer {KEY}", "accept": STREAM}),
        subscription_request("GET", {"vendors": ["AGENTEX"]}, {"x-api-key": KEY, "accept": STREAM}),
    ]

    async def scenario() -> list[list[dict[str, Any]]]:
        ready = [asyncio.Event() for _ in subscribers]
        done = asyncio.Event()
        tasks = [
            asyncio.create_task(collect(locked.url, request, event, done))
            for request, event in zip(subscribers, ready, strict=True)
        ]
        for event in ready:
            await asyncio.wait_for(event.wait(), 10)
        await until(lambda: len(poller.subscribers) == 2)
        baseline = poller.polls + 2 * len(poller.groups)  # every group has a baseline
        await until(lambda: poller.polls >= baseline)
        assert own.sandbox.advance(1) > 0  # one live task of every vendor moves on
        done.set()
        return list(await asyncio.wait_for(asyncio.gather(*tasks), 30))

    everything, agentex = asyncio.run(scenario())
    assert everything and agentex
    assert {change["vendor"] for change in agentex} == {"AGENTEX"}
    for change in everything + agentex:  # each change shows the sandbox's record as it is now
        vendor = Vendor[change["vendor"]]
        records = [expected_task(vendor, r) for r in sandbox_records(own.sandbox)[vendor]]
        record = next(r for r in records if r.native_id == change["nativeId"])
        assert change["status"] == record.status
        assert record.updated_at is not None
        assert change["updatedAt"] is not None
        assert abs(_stamp(change["updatedAt"]) - record.updated_at.timestamp()) < 0.001
    # The streams are closed: their subscriptions ended and the shared poll stopped.
    asyncio.run(until(lambda: not poller.running))


def _stamp(value: str) -> float:
    return datetime.fromisoformat(value).timestamp()


@pytest.fixture(scope="module")
def refusing(make_gateway: GatewayFactory) -> GatewayClient:
    """A gateway that needs ``KEY`` on the shared sandbox, never given a subscriber: any
    poll or vendor call during a test of it comes from a request it should have refused."""
    return make_gateway(open_access=False, api_keys=(KEY,), failed_auth_per_minute=0)


REFUSED_HEADERS = [
    {},
    {"authorization": "Bearer not-the-key"},
    {"authorization": f"Basic {KEY}"},
    {"authorization": "Bearer"},
    {"x-api-key": KEY.upper()},
    {"x-api-key": ""},
]
REFUSED_ACCEPTS = [STREAM, "TEXT/EVENT-STREAM", f"{STREAM}, text/html", f"text/html, {STREAM}"]


@pytest.mark.parametrize("accept", REFUSED_ACCEPTS)
@pytest.mark.parametrize("method", ["POST", "GET"])
def test_an_sse_subscription_without_a_valid_key_is_401_and_runs_nothing(
    refusing: GatewayClient, clean_sandbox: Sandbox, method: str, accept: str
) -> None:
    poller = refusing.server.server.config.app.state.poller
    for headers in REFUSED_HEADERS:
        request = subscription_request(method, None, {**headers, "accept": accept})
        response = refusing.http.request(request.pop("method"), "/graphql", **request)
        assert response.status_code == 401, (headers, response.text[:200])
        assert response.headers["content-type"].startswith("application/json")
        body = response.json()
        assert "data" not in body
        assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert poller.polls == 0 and not poller.subscribers
    assert sum(sum(clean_sandbox.counters(v).values()) for v in Vendor) == 0


def test_a_query_over_sse_is_streamed_never_a_cached_json_answer(own: OwnSandbox) -> None:
    """A query that the response cache holds (asked as JSON first) is still answered as an
    event stream to a client that asks for one."""
    locked = own.gateway(open_access=False, api_keys=(KEY,))  # the demo's TTLs: cache on
    body = {"query": "{ tasks(first: 2) { nodes { id } } }"}
    headers = {"authorization": f"Bearer {KEY}"}
    plain = locked.http.post("/graphql", json=body, headers=headers)
    assert plain.status_code == 200 and plain.headers["content-type"] == "application/json"

    async def streamed() -> list[tuple[str, str]]:
        async with (
            httpx.AsyncClient(base_url=locked.url, timeout=30) as client,
            aconnect_sse(client, "POST", "/graphql", json=body, headers=headers) as source,
        ):
            assert source.response.headers["content-type"].startswith(STREAM)
            return [(event.event, event.data) async for event in source.aiter_sse()]

    events = asyncio.run(streamed())
    assert [name for name, _ in events] == ["next", "complete"]
    assert json.loads(events[0][1]) == plain.json()


# -- the caller's vendor keys -------------------------------------------------------------

ALICE = {"x-vendor-key-xpander": "alice-xpander-key", "x-vendor-key-orq": "alice-wrong-orq"}
BOB = {"x-vendor-key-xpander": "bob-wrong-xpander", "x-vendor-key-orq": "bob-orq-key"}


@pytest.fixture(scope="module")
def keyed(make_gateway: GatewayFactory) -> Iterator[tuple[Sandbox, GatewayClient]]:
    """A sandbox that accepts Alice's xpander key and Bob's orq key only, behind a gateway
    whose own keys for them are wrong and which forwards callers' vendor keys."""
    keys = {Vendor.XPANDER: ALICE["x-vendor-key-xpander"], Vendor.ORQ: BOB["x-vendor-key-orq"]}
    sandbox = Sandbox(SandboxOptions(size=40, seed=37), credentials=keys)
    with ServerThread(sandbox.app) as server:
        settings = demo_settings(server.url, sandbox)
        yield (
            sandbox,
            make_gateway(
                vendors=fast_vendors(settings), forward_vendor_credentials=True, poll_interval=0.1
            ),
        )


def test_an_sse_subscription_polls_with_the_callers_vendor_keys(
    keyed: tuple[Sandbox, GatewayClient],
) -> None:
    sandbox, gateway = keyed
    poller = gateway.server.server.config.app.state.poller
    filter = {"vendors": ["XPANDER", "ORQ"]}
    callers = [ALICE, BOB]

    async def scenario() -> list[list[dict[str, Any]]]:
        ready = [asyncio.Event() for _ in callers]
        done = asyncio.Event()
        tasks = [
            asyncio.create_task(
                collect(
                    gateway.url,
                    subscription_request("POST", filter, {**keys, "accept": STREAM}),
                    event,
                    done,
                )
            )
            for keys, event in zip(callers, ready, strict=True)
        ]
        for event in ready:
            await asyncio.wait_for(event.wait(), 10)
        await until(lambda: len(poller.subscribers) == 2)
        baseline = poller.polls + 2 * len(poller.groups)
        await until(lambda: poller.polls >= baseline)
        assert len(poller.groups) == 2  # different keys never share a poll
        sandbox.advance(3)
        done.set()
        return list(await asyncio.wait_for(asyncio.gather(*tasks), 30))

    alice, bob = asyncio.run(scenario())
    assert alice and {change["vendor"] for change in alice} == {"XPANDER"}
    assert bob and {change["vendor"] for change in bob} == {"ORQ"}


# -- the npm graphql-sse client -------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]
NODE_MODULES = ROOT / ".tools" / "node" / "node_modules"
NODE_CLIENT = Path(__file__).with_name("sse") / "graphql_sse_client.mjs"
PINNED = re.search(
    r"^GRAPHQL_SSE_VERSION=(\S+)$", (ROOT / "scripts" / "test.sh").read_text(), re.MULTILINE
)
"""The version scripts/test.sh installs."""


def node_client(url: str, key: str, count: int, filter: Any) -> subprocess.Popen[str]:
    """graphql-sse's own client under Node. Like the GraphQL-over-HTTP audit, it fails
    (rather than skips) without Node and the pinned package: scripts/test.sh installs both."""
    node = shutil.which("node")
    assert node, "Node.js is missing: run scripts/test.sh, which installs it"
    package = NODE_MODULES / "graphql-sse" / "package.json"
    assert package.exists(), "graphql-sse is missing: run scripts/test.sh, which installs it"
    assert PINNED is not None
    assert json.loads(package.read_text())["version"] == PINNED[1]
    return subprocess.Popen(
        [node, str(NODE_CLIENT), url, key, str(count), json.dumps(filter)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "NODE_PATH": str(NODE_MODULES)},
    )


def read_line(process: subprocess.Popen[str]) -> dict[str, Any]:
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line, f"the client ended early (exit {process.wait(10)})"
    message: dict[str, Any] = json.loads(line)
    return message


def test_the_graphql_sse_npm_client_receives_changes_and_is_refused_without_the_key(
    own: OwnSandbox, locked: GatewayClient
) -> None:
    poller = locked.server.server.config.app.state.poller
    url = f"{locked.url}/graphql"
    refused = node_client(url, "not-the-key", 1, None)  # refused before anything runs
    assert read_line(refused) == {"error": ANY_TEXT, "status": 401}
    assert refused.wait(20) == 0
    assert not poller.subscribers
    client = node_client(url, KEY, 1, {"vendors": ["ORQ"]})
    try:
        assert read_line(client) == {"connected": True}
        asyncio.run(until(lambda: len(poller.subscribers) == 1))
        baseline = poller.polls + 2 * len(poller.groups)
        asyncio.run(until(lambda: poller.polls >= baseline))
        assert own.sandbox.advance(1) > 0
        change = read_line(client)["next"]["data"]["taskChanged"]
        assert client.wait(20) == 0
    finally:
        if client.poll() is None:
            client.kill()
    assert change["vendor"] == "ORQ"
    records = [expected_task(Vendor.ORQ, r) for r in sandbox_records(own.sandbox)[Vendor.ORQ]]
    assert change["status"] == next(r for r in records if r.native_id == change["nativeId"]).status
    asyncio.run(until(lambda: not poller.running))


class _AnyText:
    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and bool(other)


ANY_TEXT = _AnyText()
