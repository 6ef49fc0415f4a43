"""Subscriptions and exports act with the caller's own vendor keys (issue 14, item 13).

A sandbox of this module's own accepts Alice's xpander key and Bob's orq key only, and the
gateway's own configured keys for those vendors are wrong, so what each caller receives
shows whose keys were used: Alice reads xpander and never orq, Bob the reverse, on
``/graphql``, on the exports and on ``taskChanged``, and two callers with different keys
never share one poll.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
import websockets

from gateway.cli import demo_settings
from gateway.core.records import Vendor
from gateway.sandbox import Sandbox, SandboxOptions
from gateway.serving import ServerThread
from tests.conftest import GatewayClient, GatewayFactory

ALICE = {"x-vendor-key-xpander": "alice-xpander-key", "x-vendor-key-orq": "alice-wrong-orq"}
BOB = {"x-vendor-key-xpander": "bob-wrong-xpander", "x-vendor-key-orq": "bob-orq-key"}
SUBSCRIBE = """subscription { taskChanged(filter: {vendors: [XPANDER, ORQ]}) { id vendor } }"""


@pytest.fixture(scope="module")
def keyed() -> Iterator[tuple[Sandbox, str]]:
    keys = {
        Vendor.XPANDER: ALICE["x-vendor-key-xpander"],
        Vendor.ORQ: BOB["x-vendor-key-orq"],
    }
    sim = Sandbox(SandboxOptions(size=40, seed=31), credentials=keys)
    with ServerThread(sim.app) as server:
        yield sim, server.url


@pytest.fixture(scope="module")
def gateway(keyed: tuple[Sandbox, str], make_gateway: GatewayFactory) -> GatewayClient:
    sim, url = keyed
    settings = demo_settings(url, sim)  # the sandbox's default keys: wrong for this one
    fast = {v: replace(c, cache_ttl=0.05, first_page_ttl=0.05) for v, c in settings.vendors.items()}
    return make_gateway(vendors=fast, forward_vendor_credentials=True, poll_interval=0.1)


def native_ids(sim: Sandbox, vendor: Vendor) -> set[str]:
    """Every task id the sandbox holds for ``vendor``, read from its own records."""
    field = {Vendor.XPANDER: "id", Vendor.ORQ: "_id"}[vendor]
    return {str(task[field]) for tasks in sim.store(vendor).values() for task in tasks}


def export(gateway: GatewayClient, vendor: Vendor, headers: dict[str, str]) -> Any:
    return gateway.http.get("/export/tasks.csv", params={"vendors": vendor.name}, headers=headers)


def test_graphql_reads_each_vendor_with_the_callers_key(gateway: GatewayClient) -> None:
    query = "{ tasks(first: 50, filter: {vendors: [XPANDER, ORQ]}) { nodes { vendor } } }"
    for headers, allowed in ((ALICE, "XPANDER"), (BOB, "ORQ")):
        body = gateway.query(query, headers=headers)
        vendors = {node["vendor"] for node in body["data"]["tasks"]["nodes"]}
        assert vendors == {allowed}


def test_exports_read_with_the_callers_keys(
    gateway: GatewayClient, keyed: tuple[Sandbox, str]
) -> None:
    sim, _ = keyed
    for headers, readable, refused in (
        (ALICE, Vendor.XPANDER, Vendor.ORQ),
        (BOB, Vendor.ORQ, Vendor.XPANDER),
    ):
        served = export(gateway, readable, headers)
        assert served.status_code == 200, served.text
        rows = list(csv.DictReader(io.StringIO(served.text)))
        assert {row["native_id"] for row in rows} == native_ids(sim, readable)
        assert {row["vendor"] for row in rows} == {readable.name}
        denied = export(gateway, refused, headers)
        assert denied.status_code == 502 and "native_id" not in denied.text
    for vendor in (Vendor.XPANDER, Vendor.ORQ):  # no caller keys: the gateway's own, wrong
        assert export(gateway, vendor, {}).status_code == 502


async def subscriber(
    url: str, headers: dict[str, str], subscribed: asyncio.Event, done: asyncio.Event
) -> list[str]:
    """Subscribe with ``headers``; once ``done``, flush with a ping and return the vendor of
    every change received."""
    async with websockets.connect(
        url, subprotocols=["graphql-transport-ws"], additional_headers=headers
    ) as socket:
        await socket.send(json.dumps({"type": "connection_init"}))
        assert json.loads(await socket.recv())["type"] == "connection_ack"
        start = {"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIBE}}
        await socket.send(json.dumps(start))
        subscribed.set()
        vendors: list[str] = []
        while not (done.is_set() and vendors):
            try:
                message = json.loads(await asyncio.wait_for(socket.recv(), 0.2))
            except TimeoutError:
                continue
            assert message["type"] == "next", message
            vendors.append(message["payload"]["data"]["taskChanged"]["vendor"])
        await socket.send(json.dumps({"type": "ping"}))  # every change sent before the pong
        while (message := json.loads(await asyncio.wait_for(socket.recv(), 20)))["type"] != "pong":
            vendors.append(message["payload"]["data"]["taskChanged"]["vendor"])
        return vendors


def test_subscriptions_poll_with_the_callers_keys_and_never_share(
    gateway: GatewayClient, keyed: tuple[Sandbox, str]
) -> None:
    sim, _ = keyed
    url = gateway.url.replace("http://", "ws://") + "/graphql"
    poller = gateway.server.server.config.app.state.poller

    async def scenario() -> tuple[list[str], list[str], list[str], int]:
        subscribed = [asyncio.Event() for _ in range(3)]
        done = asyncio.Event()
        callers = [
            asyncio.create_task(subscriber(url, headers, ready, done))
            for headers, ready in zip((ALICE, dict(ALICE), BOB), subscribed, strict=True)
        ]
        for ready in subscribed:
            await ready.wait()
        while len(poller.subscribers) < 3:
            await asyncio.sleep(0.02)
        groups = len(poller.groups)
        baseline = poller.polls + 2 * groups  # every group has polled once since joining
        while poller.polls < baseline:
            await asyncio.sleep(0.02)
        sim.advance(3)
        done.set()
        alice, alice_too, bob = await asyncio.wait_for(asyncio.gather(*callers), 30)
        return alice, alice_too, bob, groups

    alice, alice_too, bob, groups = asyncio.run(scenario())
    assert groups == 2  # Alice's two sockets share a poll; Bob has his own
    assert alice and set(alice) == {"XPANDER"}
    assert sorted(alice_too) == sorted(alice)
    assert bob and set(bob) == {"ORQ"}
