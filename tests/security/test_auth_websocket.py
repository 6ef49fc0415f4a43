"""WebSockets authenticate by header or by ``connection_init`` (issue 14, items 1 and 9).

Both subprotocols, with a real WebSocket client: the key is accepted in the handshake's
headers and in ``connection_init``'s payload in every spelling graphql-ws clients use; a
socket without a valid key is closed (4401 for anything sent before ``connection_init``,
4403 for a missing or wrong key) and never runs an operation nor asks a vendor anything.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import replace
from typing import Any

import pytest
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

from gateway.core.records import Vendor
from gateway.sandbox import Sandbox
from tests.conftest import GatewayClient, OwnSandbox

KEY = "auth-websocket-client-key-0123"
QUERY = "query { tasks(first: 2) { nodes { id } } }"
"""What an attacker asks: it would call every vendor if it ran."""
SUBSCRIBE = "subscription { taskChanged { id vendor status } }"
PROTOCOLS = ("graphql-transport-ws", "graphql-ws")
START = {"graphql-transport-ws": "subscribe", "graphql-ws": "start"}
DATA = {"graphql-transport-ws": "next", "graphql-ws": "data"}
GOOD_PAYLOADS = [
    {"Authorization": f"Bearer {KEY}"},
    {"authorization": f"bearer {KEY}"},
    {"AUTHORIZATION": f"Bearer  {KEY} "},
    {"X-API-Key": KEY},
    {"x-api-key": KEY},
    {"headers": {"Authorization": f"Bearer {KEY}"}},
    {"other": 1, "authorization": f"Bearer {KEY}"},
]
BAD_PAYLOADS: list[Any] = [
    None,
    {},
    {"Authorization": "Bearer wrong-key"},
    {"Authorization": KEY},  # no scheme
    {"Authorization": f"Basic {KEY}"},
    {"authorization": ["Bearer", KEY]},
    {"x-api-key": ""},
    {"token": KEY},
    f"Bearer {KEY}",
    [f"Bearer {KEY}"],
]


@pytest.fixture(scope="module")
def locked(own: OwnSandbox) -> GatewayClient:
    """A gateway over the module's own sandbox, polling often with short TTLs, so a change
    made in the sandbox is pushed at once."""
    fast = {
        v: replace(c, cache_ttl=0.05, first_page_ttl=0.05) for v, c in own.settings.vendors.items()
    }
    return own.gateway(
        open_access=False,
        api_keys=(KEY,),
        failed_auth_per_minute=0,
        poll_interval=0.1,
        vendors=fast,
    )


def ws_url(gateway: GatewayClient) -> str:
    return gateway.url.replace("http://", "ws://") + "/graphql"


def upstream_calls(sandbox: Sandbox) -> int:
    return sum(sum(sandbox.counters(v).values()) for v in Vendor)


def quiet(sandbox: Sandbox) -> None:
    """Counters reset once no call is still arriving: an earlier test's subscription may
    have one last poll under way when its socket closes (poll interval 0.1 s)."""
    for _ in range(50):
        sandbox.reset_counters()
        time.sleep(0.3)
        if upstream_calls(sandbox) == 0:
            return
    raise AssertionError("the sandbox kept receiving calls with no subscription open")


async def one_change(
    gateway: GatewayClient,
    sandbox: Sandbox,
    protocol: str,
    payload: Any,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """connection_init with ``payload``, a ``taskChanged`` subscription, one change made in
    the sandbox once the poll's baseline is taken: the data pushed (the socket must ack)."""
    poller = gateway.server.server.config.app.state.poller
    async with websockets.connect(
        ws_url(gateway), subprotocols=[protocol], additional_headers=headers or {}
    ) as socket:
        init: dict[str, Any] = {"type": "connection_init"}
        if payload is not None:
            init["payload"] = payload
        await socket.send(json.dumps(init))
        assert json.loads(await socket.recv())["type"] == "connection_ack"
        start = {"id": "1", "type": START[protocol], "payload": {"query": SUBSCRIBE}}
        await socket.send(json.dumps(start))
        while not poller.subscribers:
            await asyncio.sleep(0.02)
        baseline = poller.polls + 2  # a whole poll has run since the subscriber joined
        while poller.polls < baseline:
            await asyncio.sleep(0.02)
        sandbox.advance(1)
        while True:
            message = json.loads(await asyncio.wait_for(socket.recv(), 20))
            if message["type"] == DATA[protocol]:
                data: dict[str, Any] = message["payload"]["data"]
                return data
            assert message["type"] == "ka", message  # graphql-ws keep-alives


async def refused(url: str, protocol: str, frames: list[str | bytes]) -> tuple[int, list[Any]]:
    """Send ``frames`` then a query; the close code and every message received."""
    received: list[Any] = []
    async with websockets.connect(url, subprotocols=[protocol]) as socket:
        try:
            for frame in frames:
                await socket.send(frame)
            await socket.send(
                json.dumps({"id": "1", "type": START[protocol], "payload": {"query": QUERY}})
            )
            while True:
                received.append(await asyncio.wait_for(socket.recv(), 20))
        except ConnectionClosed as closed:
            assert closed.rcvd is not None
            return closed.rcvd.code, received
    raise AssertionError("the socket stayed open")


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("payload", GOOD_PAYLOADS)
def test_the_key_in_connection_init_is_accepted(
    locked: GatewayClient, own: OwnSandbox, protocol: str, payload: dict[str, Any]
) -> None:
    data = asyncio.run(one_change(locked, own.sandbox, protocol, payload))
    assert data["taskChanged"]["vendor"] in {v.name for v in Vendor}


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("headers", [{"authorization": f"Bearer {KEY}"}, {"x-api-key": KEY}])
def test_the_key_in_the_handshake_headers_is_accepted(
    locked: GatewayClient, own: OwnSandbox, protocol: str, headers: dict[str, str]
) -> None:
    data = asyncio.run(one_change(locked, own.sandbox, protocol, None, headers))
    assert data["taskChanged"]["vendor"] in {v.name for v in Vendor}


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("payload", BAD_PAYLOADS)
def test_a_connection_init_without_a_valid_key_is_closed_4403(
    locked: GatewayClient, own: OwnSandbox, protocol: str, payload: Any
) -> None:
    quiet(own.sandbox)
    init: dict[str, Any] = {"type": "connection_init"}
    if payload is not None:
        init["payload"] = payload
    code, received = asyncio.run(refused(ws_url(locked), protocol, [json.dumps(init)]))
    assert code == 4403 and received == []
    assert upstream_calls(own.sandbox) == 0


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize(
    "first",
    [
        [],  # the operation itself first
        [json.dumps({"type": "ping"})],
        [json.dumps({"type": "connection_terminate"})],
        ["not json"],
        [b'{"type": "connection_init", "payload": {"x-api-key": "' + KEY.encode() + b'"}'],
        [json.dumps({"type": "Connection_Init", "payload": {"x-api-key": KEY}})],
        [
            json.dumps(
                {"type": "connection_init", "payload": {"pad": "x" * 70_000, "x-api-key": KEY}}
            )
        ],
    ],
)
def test_anything_but_a_keyed_connection_init_first_is_closed_4401(
    locked: GatewayClient, own: OwnSandbox, protocol: str, first: list[str | bytes]
) -> None:
    quiet(own.sandbox)
    code, received = asyncio.run(refused(ws_url(locked), protocol, first))
    assert code == 4401 and received == []
    assert upstream_calls(own.sandbox) == 0


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize(
    "headers",
    [{"authorization": "Bearer wrong"}, {"x-api-key": "wrong"}, {"authorization": "Bearer "}],
)
def test_a_wrong_key_in_the_handshake_is_refused(
    locked: GatewayClient, own: OwnSandbox, protocol: str, headers: dict[str, str]
) -> None:
    quiet(own.sandbox)

    async def attempt() -> int:
        try:
            async with websockets.connect(
                ws_url(locked), subprotocols=[protocol], additional_headers=headers
            ) as socket:
                init = {"type": "connection_init", "payload": {"x-api-key": KEY}}
                await socket.send(json.dumps(init))
                await socket.recv()
        except InvalidStatus as exc:
            return exc.response.status_code
        except ConnectionClosed as closed:
            assert closed.rcvd is not None
            return closed.rcvd.code
        return 0

    status = asyncio.run(attempt())
    if headers.get("authorization") == "Bearer ":  # no key at all: connection_init decides
        assert status == 0
    else:
        assert status == 401
    assert upstream_calls(own.sandbox) == 0
