"""taskChanged over graphql-transport-ws, with a real WebSocket client and progressing tasks."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from typing import Any

import websockets

SUBSCRIBE = """subscription($f: TaskFilter) {
  taskChanged(filter: $f) { id vendor status vendorStatus updatedAt } }"""


async def collect(
    url: str, filter: dict | None, count: int, ready: asyncio.Event, sub_id: str = "1"
) -> list[dict[str, Any]]:
    async with websockets.connect(url, subprotocols=["graphql-transport-ws"]) as socket:
        await socket.send(json.dumps({"type": "connection_init"}))
        assert json.loads(await socket.recv())["type"] == "connection_ack"
        await socket.send(
            json.dumps(
                {
                    "id": sub_id,
                    "type": "subscribe",
                    "payload": {"query": SUBSCRIBE, "variables": {"f": filter}},
                }
            )
        )
        ready.set()
        received = []
        while len(received) < count:
            message = json.loads(await asyncio.wait_for(socket.recv(), 20))
            assert message["type"] == "next", message
            received.append(message["payload"]["data"]["taskChanged"])
        await socket.send(json.dumps({"id": sub_id, "type": "complete"}))
        return received


def fast_vendors(settings):
    """Short cache TTLs, so a change reaches the poll at once."""
    return {v: replace(c, cache_ttl=0.1, first_page_ttl=0.1) for v, c in settings.vendors.items()}


def test_changes_are_pushed_and_one_poll_serves_every_subscriber(own) -> None:
    gateway = own.gateway(poll_interval=0.2, vendors=fast_vendors(own.settings))
    url = gateway.url.replace("http://", "ws://") + "/graphql"
    poller = gateway.server.server.config.app.state.poller

    async def scenario() -> tuple[list, list]:
        ready = [asyncio.Event(), asyncio.Event()]
        everything = asyncio.create_task(collect(url, None, 2, ready[0], "a"))
        agentex = asyncio.create_task(collect(url, {"vendors": ["AGENTEX"]}, 1, ready[1], "b"))
        await ready[0].wait()
        await ready[1].wait()
        while poller.polls < 2:  # the baseline is taken
            await asyncio.sleep(0.05)
        assert len(poller.subscribers) == 2 and poller.running
        own.sandbox.advance(1)  # one live task of every vendor moves on
        return await everything, await agentex

    everything, agentex = asyncio.run(scenario())
    assert len(everything) == 2
    assert [t["vendor"] for t in agentex] == ["AGENTEX"]
    assert agentex[0]["status"] in ("RUNNING", "COMPLETED")
    # Both subscribers were fed by one poller; it stops when the last one leaves.
    assert asyncio.run(_wait_until(lambda: not poller.running))


async def _wait_until(condition, seconds: float = 5.0) -> bool:
    for _ in range(int(seconds / 0.05)):
        if condition():
            return True
        await asyncio.sleep(0.05)
    return False
