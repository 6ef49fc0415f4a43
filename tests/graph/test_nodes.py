"""Single objects: Query.task / Query.node by global id, and the related-record fields."""

from __future__ import annotations

import pytest

from gateway.core.records import Vendor
from tests.conftest import GatewayClient, GatewayFactory

NODE = """
query($id: ID!) {
  node(id: $id) {
    id
    ... on Task { vendor nativeId status tracker { id nativeId taskId } }
    ... on Tracker { nativeId taskId agentId status }
  }
}
"""


@pytest.fixture(scope="module")
def sample(gateway: GatewayClient) -> dict[str, dict]:
    """One task of every vendor."""
    data = gateway.data("{ tasks(first: 100) { nodes { id vendor nativeId status } } }")
    found = {}
    for node in data["tasks"]["nodes"]:
        found.setdefault(node["vendor"], node)
    assert set(found) == {v.name for v in Vendor}
    return found


@pytest.mark.parametrize("vendor", [v.name for v in Vendor])
def test_every_task_is_found_again_by_its_id(gateway, sample, vendor) -> None:
    task = sample[vendor]
    node = gateway.data(NODE, {"id": task["id"]})["node"]
    assert node["id"] == task["id"]
    assert (node["vendor"], node["nativeId"], node["status"]) == (
        vendor,
        task["nativeId"],
        task["status"],
    )
    same = gateway.data("query($id: ID!) { task(id: $id) { id } }", {"id": task["id"]})
    assert same["task"]["id"] == task["id"]


def test_an_agentex_task_carries_its_tracker_which_is_a_node(gateway, sample) -> None:
    task = gateway.data(NODE, {"id": sample["AGENTEX"]["id"]})["node"]
    tracker = task["tracker"]
    assert tracker["taskId"] == task["nativeId"]
    node = gateway.data(NODE, {"id": tracker["id"]})["node"]
    assert node["nativeId"] == tracker["nativeId"]
    assert node["taskId"] == task["nativeId"]


@pytest.mark.parametrize("bad", ["nope", "VGFzazp4cGFuZGVy", "VGFzazpub3BlOmE6Yg"])
def test_a_malformed_id_is_invalid_id(gateway, bad) -> None:
    body = gateway.query("query($id: ID!) { node(id: $id) { id } }", {"id": bad})
    assert body["errors"][0]["extensions"]["code"] == "INVALID_ID"


def test_subtasks_and_parent_resolve_with_batched_upstream_calls(
    make_gateway: GatewayFactory, clean_sandbox
) -> None:
    gateway = make_gateway()
    query = """
    { tasks(first: 100, filter: {vendors: [XPANDER]}, orderBy: {field: CREATED_AT}) {
        nodes { id nativeId parentTaskId parentTask { id nativeId } subtasks { id parentTaskId } }
    } }
    """
    nodes = gateway.data(query)["tasks"]["nodes"]
    children = [n for n in nodes if n["parentTaskId"]]
    assert children, "the sandbox has xpander sub-tasks"
    for child in children:
        assert child["parentTask"] is not None
        assert child["parentTask"]["nativeId"] == child["parentTaskId"]
    by_native = {n["nativeId"]: n for n in nodes}
    for child in children:
        parent = by_native.get(child["parentTaskId"])
        if parent is not None:
            assert child["id"] in {s["id"] for s in parent["subtasks"]}
    # The page, its parents and its sub-tasks all come from the same agent listings: one
    # upstream call per agent and listing page, not one per task.
    listing_pages = sum(
        -(-len(tasks) // 50) for tasks in clean_sandbox.store(Vendor.XPANDER).values()
    )
    calls = clean_sandbox.counters(Vendor.XPANDER)["GET /v1/agents/{agent_id}/tasks"]
    assert calls <= 2 * listing_pages, (calls, listing_pages)
