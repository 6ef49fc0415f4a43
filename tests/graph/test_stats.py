"""Query.taskStats: aggregates over the whole filtered set, not one page."""

from __future__ import annotations

from collections import Counter

from gateway.core.records import Vendor
from tests.conftest import GatewayClient, GatewayFactory

STATS = """query($f: TaskFilter, $by: [TaskGroupBy!]!) {
  taskStats(filter: $f, groupBy: $by) {
    total missingVendors
    groups { vendor status agentId day count totalCost totalTokens averageDurationSeconds }
  } }"""


def all_tasks(gateway: GatewayClient) -> list[dict]:
    nodes, after = [], None
    while True:
        page = gateway.data(
            "query($a: String) { tasks(first: 100, after: $a) { nodes { vendor status agentId "
            "updatedAt metrics { totalCost totalTokens } } pageInfo { hasNextPage endCursor } } }",
            {"a": after},
        )["tasks"]
        nodes += page["nodes"]
        if not page["pageInfo"]["hasNextPage"]:
            return nodes
        after = page["pageInfo"]["endCursor"]


def test_counts_by_vendor_and_status_cover_every_task(make_gateway: GatewayFactory) -> None:
    gateway = make_gateway()
    tasks = all_tasks(gateway)
    stats = gateway.data(STATS, {"by": ["VENDOR", "STATUS"]})["taskStats"]
    assert stats["total"] == len(tasks) and stats["missingVendors"] == []
    got = {(g["vendor"], g["status"]): g["count"] for g in stats["groups"]}
    assert got == Counter((t["vendor"], t["status"]) for t in tasks)
    orq_cost = sum(t["metrics"]["totalCost"] for t in tasks if t["vendor"] == "ORQ")
    orq = [g for g in stats["groups"] if g["vendor"] == "ORQ"]
    assert abs(sum(g["totalCost"] for g in orq) - orq_cost) < 1e-6
    assert all(g["totalCost"] is None for g in stats["groups"] if g["vendor"] == "XPANDER")


def test_filters_days_and_a_single_total(make_gateway: GatewayFactory) -> None:
    gateway = make_gateway()
    tasks = all_tasks(gateway)
    failed = gateway.data(STATS, {"f": {"statuses": ["FAILED"]}, "by": []})["taskStats"]
    assert failed["total"] == sum(t["status"] == "FAILED" for t in tasks)
    assert [g["count"] for g in failed["groups"]] == [failed["total"]]
    days = gateway.data(STATS, {"by": ["DAY"]})["taskStats"]["groups"]
    # The day of the last update; tasks without one form the group of day null.
    want = Counter(t["updatedAt"][:10] if t["updatedAt"] else None for t in tasks)
    assert {g["day"]: g["count"] for g in days} == want


def test_stats_from_cache_cost_no_upstream_call(
    make_gateway: GatewayFactory, clean_sandbox
) -> None:
    gateway = make_gateway()
    gateway.data(STATS, {"by": ["AGENT"]})
    calls = {v: sum(clean_sandbox.counters(v).values()) for v in Vendor}
    gateway.data(STATS, {"by": ["AGENT"]})
    assert {v: sum(clean_sandbox.counters(v).values()) for v in Vendor} == calls
