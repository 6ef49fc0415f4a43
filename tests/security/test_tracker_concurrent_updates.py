"""Concurrent partial ``updateTracker`` calls on one tracker lose nothing (issue 14, item 7).

A partial update reads the fields it keeps and PUTs them back with its own. Ten of them at
once, each setting one field (``status`` or ``statusReason``) to a value of its own, through
two gateways sharing one Redis (and through one gateway on its memory cache): afterwards
the tracker, read from the sandbox itself, holds the last value written to each field, both
values written by some call, and every answer shows the field its call wrote.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from gateway.core.records import Vendor
from tests.conftest import OwnSandbox

TRACKERS = "{ trackers(first: 20) { nodes { id agentId taskId } } }"
UPDATE = """mutation($input: UpdateTrackerInput!) {
  updateTracker(input: $input) { vendorStatus statusReason } }"""
STATUSES = ("running", "paused", "completed", "failed", "cancelled")


def agentex_tracker(own: OwnSandbox, agent_id: str, task_id: str) -> dict[str, Any]:
    """The tracker as Agentex (the sandbox) holds it, read without the gateway."""
    response = httpx.get(
        f"{own.server.url}/agentex/tracker",
        params={"agent_id": agent_id, "task_id": task_id, "limit": 1},
    )
    trackers: list[dict[str, Any]] = response.json()
    assert len(trackers) == 1
    return trackers[0]


async def updates(urls: list[str], tracker_id: str, round_: int) -> list[tuple[str, str, Any]]:
    """Ten partial updates at once: even ones set a status, odd ones a reason."""
    writes = [
        ("status", STATUSES[i // 2]) if i % 2 == 0 else ("statusReason", f"reason-{round_}-{i}")
        for i in range(10)
    ]
    async with httpx.AsyncClient(timeout=60) as client:
        responses = await asyncio.gather(
            *(
                client.post(
                    f"{urls[i % len(urls)]}/graphql",
                    json={"query": UPDATE, "variables": {"input": {"id": tracker_id, field: v}}},
                )
                for i, (field, v) in enumerate(writes)
            )
        )
    return [(field, value, r.json()) for (field, value), r in zip(writes, responses, strict=True)]


@pytest.mark.parametrize("replicas", ["two on redis", "one on memory"])
def test_concurrent_partial_updates_of_one_tracker_keep_every_field(
    own: OwnSandbox, redis_url: str, replicas: str
) -> None:
    if replicas == "two on redis":
        gateways = [own.gateway(cache_url=redis_url) for _ in range(2)]
        index = 10
    else:
        gateways = [own.gateway()]
        index = 11
    tracker = gateways[0].data(TRACKERS)["trackers"]["nodes"][index]
    own.sandbox.knobs(Vendor.AGENTEX).latency_ms = 15  # reads and PUTs overlap
    try:
        for round_ in range(3):
            gateways[0].data(
                UPDATE,
                {"input": {"id": tracker["id"], "status": "pending", "statusReason": "initial"}},
            )
            answers = asyncio.run(updates([g.url for g in gateways], tracker["id"], round_))
            final = agentex_tracker(own, tracker["agentId"], tracker["taskId"])
            written_statuses = {v for f, v, _ in answers if f == "status"}
            written_reasons = {v for f, v, _ in answers if f == "statusReason"}
            assert final["status"] in written_statuses, (final, "a status update was lost")
            assert final["status_reason"] in written_reasons, (final, "a reason update was lost")
            for field, value, body in answers:
                assert "errors" not in body, body
                shown = body["data"]["updateTracker"]
                assert shown["vendorStatus" if field == "status" else "statusReason"] == value
                # The field it kept is a value Agentex held: the initial one or a written one.
                if field == "status":
                    assert shown["statusReason"] in written_reasons | {"initial"}
                else:
                    assert shown["vendorStatus"] in written_statuses | {"pending"}
    finally:
        own.sandbox.reset_knobs()
