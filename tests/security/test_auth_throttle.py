"""Failed authentication attempts are limited per client address (issue 14, item 15).

Real clients on distinct loopback addresses (the whole 127.0.0.0/8 reaches the gateway), so
one address's failures are seen to block that address only. Every kind of failure counts
(no key, a wrong bearer, a wrong ``X-API-Key``, a WebSocket's wrong ``connection_init``);
past the limit the address gets 429 ``RATE_LIMITED`` with ``Retry-After``, even for a valid
key (so a guesser learns nothing), while other addresses and the open paths are unaffected.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Iterator

import httpx
import pytest
import websockets
from websockets.exceptions import InvalidStatus

from gateway.web.limits import Buckets, client_address
from tests.conftest import GatewayClient, GatewayFactory

KEY = "auth-throttle-client-key-0123"
LIMIT = 4
QUERY = {"query": "{ vendors { vendor } }"}
_addresses = itertools.count(10)


@pytest.fixture(scope="module")
def guarded(make_gateway: GatewayFactory) -> GatewayClient:
    return make_gateway(open_access=False, api_keys=(KEY,), failed_auth_per_minute=LIMIT)


@pytest.fixture
def client(guarded: GatewayClient) -> Iterator[httpx.Client]:
    """A client on a loopback address no other test used."""
    with from_address(guarded, f"127.0.0.{next(_addresses)}") as http:
        yield http


def from_address(gateway: GatewayClient, address: str) -> httpx.Client:
    transport = httpx.HTTPTransport(local_address=address)
    return httpx.Client(base_url=gateway.url, transport=transport, timeout=30)


def assert_throttled(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    assert 1 <= int(response.headers["retry-after"]) <= 60
    body = response.json()
    assert "data" not in body and body["errors"][0]["extensions"]["code"] == "RATE_LIMITED"


FAILURES = [
    {},
    {"authorization": "Bearer wrong-1"},
    {"x-api-key": "wrong-2"},
    {"authorization": "Basic d3Jvbmc="},
]


@pytest.mark.parametrize("kind", range(len(FAILURES)))
def test_failures_past_the_limit_are_answered_429_even_with_the_right_key(
    client: httpx.Client, kind: int
) -> None:
    for _ in range(LIMIT):
        assert client.post("/graphql", json=QUERY, headers=FAILURES[kind]).status_code == 401
    assert_throttled(client.post("/graphql", json=QUERY, headers=FAILURES[kind]))
    assert_throttled(client.post("/graphql", json=QUERY, headers={"x-api-key": KEY}))
    assert_throttled(client.get("/export/tasks.csv", headers={"x-api-key": KEY}))
    assert client.get("/healthz").status_code == 200


def test_every_kind_of_failure_counts_towards_one_limit(client: httpx.Client) -> None:
    for headers in FAILURES:
        assert client.post("/graphql", json=QUERY, headers=headers).status_code == 401
    assert_throttled(client.get("/graphql", params=QUERY))


def test_a_blocked_address_does_not_block_another(guarded: GatewayClient) -> None:
    first, second = f"127.0.0.{next(_addresses)}", f"127.0.0.{next(_addresses)}"
    with from_address(guarded, first) as blocked, from_address(guarded, second) as other:
        for _ in range(LIMIT + 1):
            blocked.post("/graphql", json=QUERY)
        assert_throttled(blocked.post("/graphql", json=QUERY, headers={"x-api-key": KEY}))
        served = other.post("/graphql", json=QUERY, headers={"x-api-key": KEY})
        assert served.status_code == 200 and "data" in served.json()
        assert other.post("/graphql", json=QUERY).status_code == 401


def test_successes_do_not_count(client: httpx.Client) -> None:
    for _ in range(LIMIT * 3):
        response = client.post("/graphql", json=QUERY, headers={"authorization": f"Bearer {KEY}"})
        assert response.status_code == 200
    for _ in range(LIMIT):
        assert client.post("/graphql", json=QUERY).status_code == 401


def test_websocket_failures_count_and_a_blocked_address_cannot_open_one(
    guarded: GatewayClient,
) -> None:
    address = f"127.0.0.{next(_addresses)}"
    url = guarded.url.replace("http://", "ws://") + "/graphql"

    async def wrong_init() -> int:
        async with websockets.connect(
            url, subprotocols=["graphql-transport-ws"], local_addr=(address, 0)
        ) as socket:
            payload = {"type": "connection_init", "payload": {"x-api-key": "wrong"}}
            await socket.send(json.dumps(payload))
            await socket.wait_closed()
            assert socket.close_code is not None
            return socket.close_code

    async def handshake(headers: dict[str, str]) -> int:
        try:
            async with websockets.connect(
                url,
                subprotocols=["graphql-transport-ws"],
                additional_headers=headers,
                local_addr=(address, 0),
            ):
                return 101
        except InvalidStatus as exc:
            return exc.response.status_code

    async def scenario() -> tuple[list[int], int]:
        codes = []
        for _ in range(LIMIT):
            codes.append(await wrong_init())
        return codes, await handshake({"x-api-key": KEY})

    codes, status = asyncio.run(scenario())
    assert codes == [4403] * LIMIT
    assert status == 429
    with from_address(guarded, address) as http:
        assert_throttled(http.post("/graphql", json=QUERY, headers={"x-api-key": KEY}))


def test_the_tracked_addresses_are_bounded() -> None:
    now = [0.0]
    buckets = Buckets(LIMIT / 60, LIMIT, clock=lambda: now[0], max_tracked=100)
    for n in range(10_000):
        buckets.take(f"10.{n // 65536}.{n // 256 % 256}.{n % 256}")
    assert len(buckets) == 100
    for _ in range(LIMIT):
        buckets.take("attacker")
    assert buckets.wait("attacker") > 0
    now[0] += 60  # a minute later the address may try again
    assert buckets.wait("attacker") == 0


@pytest.mark.parametrize(
    ("host", "counted_as"),
    [
        ("192.0.2.7", "192.0.2.7"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff::1", "2001:db8:1:2::/64"),
        ("::ffff:192.0.2.7", "192.0.2.7"),
        ("unix-socket", "unix-socket"),
    ],
)
def test_an_ipv6_host_is_counted_by_its_64(host: str, counted_as: str) -> None:
    assert client_address({"type": "http", "client": (host, 1)}) == counted_as
