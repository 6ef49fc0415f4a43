"""Query.tasks end to end: the sandbox's four vendors behind a real gateway, over HTTP."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from gateway.core.records import Vendor
from tests.conftest import GatewayClient, GatewayFactory

PAGE = """
query Page($first: Int, $after: String, $filter: TaskFilter, $order: TaskOrder) {
  tasks(first: $first, after: $after, filter: $filter, orderBy: $order) {
    edges { cursor node { id vendor nativeId status vendorStatus createdAt updatedAt agentId } }
    pageInfo { hasNextPage endCursor }
    missingVendors
  }
}
"""

ORDERS = [
    {"field": "UPDATED_AT", "direction": "DESC"},
    {"field": "UPDATED_AT", "direction": "ASC"},
    {"field": "CREATED_AT", "direction": "DESC"},
    {"field": "CREATED_AT", "direction": "ASC"},
]


def page_through(
    gateway: GatewayClient,
    first: int,
    order: dict[str, str] | None = None,
    filter: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Every task of a listing, one page of ``first`` at a time."""
    nodes: list[dict[str, Any]] = []
    after = None
    for _ in range(10_000):
        data = gateway.data(
            PAGE, {"first": first, "after": after, "order": order, "filter": filter}
        )
        connection = data["tasks"]
        assert connection["missingVendors"] == []
        nodes.extend(edge["node"] for edge in connection["edges"])
        assert len(connection["edges"]) <= first
        if not connection["pageInfo"]["hasNextPage"]:
            return nodes
        assert len(connection["edges"]) == first, "a page short of `first` must be the last"
        after = connection["pageInfo"]["endCursor"]
    raise AssertionError("paging did not end")


def sort_time(node: dict[str, Any], field: str) -> datetime | None:
    """The time shown for ``field`` (null stays null: no fallback)."""
    value = node["createdAt"] if field == "CREATED_AT" else node["updatedAt"]
    return None if value is None else datetime.fromisoformat(value)


def assert_ordered(nodes: list[dict[str, Any]], order: dict[str, str]) -> None:
    """Ordered by the shown time, a null after every time in both directions."""
    times = [sort_time(n, order["field"]) for n in nodes]
    dated = [t for t in times if t is not None]
    expected = sorted(dated, reverse=order["direction"] == "DESC")
    assert times == expected + [None] * (len(times) - len(dated))


@pytest.fixture(scope="module")
def everything(gateway: GatewayClient) -> list[dict[str, Any]]:
    return page_through(gateway, 100)


def test_tasks_of_all_four_vendors_come_back_as_one_list(everything, sandbox) -> None:
    by_vendor = {v.name: 0 for v in Vendor}
    for node in everything:
        by_vendor[node["vendor"]] += 1
    assert all(count > 0 for count in by_vendor.values()), by_vendor
    assert len({n["id"] for n in everything}) == len(everything)
    assert_ordered(everything, ORDERS[0])
    for node in everything:
        for value in (node["updatedAt"], node["createdAt"]):
            assert value is None or datetime.fromisoformat(value).utcoffset() == timedelta(0)


@pytest.mark.parametrize("order", ORDERS, ids=lambda o: f"{o['field']}-{o['direction']}")
@pytest.mark.parametrize("first", [7, 50])
def test_paging_returns_exactly_the_union_in_order(gateway, everything, order, first) -> None:
    nodes = page_through(gateway, first, order)
    ids = [n["id"] for n in nodes]
    assert len(ids) == len(set(ids)), "a task appeared on two pages"
    assert set(ids) == {n["id"] for n in everything}, "a task was skipped"
    assert_ordered(nodes, order)


def test_status_filter_returns_only_that_status_and_skips_vendors_without_it(
    make_gateway: GatewayFactory, clean_sandbox
) -> None:
    gateway = make_gateway()
    nodes = page_through(gateway, 50, filter={"statuses": ["AWAITING_APPROVAL"]})
    assert nodes and {n["status"] for n in nodes} == {"AWAITING_APPROVAL"}
    assert {n["vendor"] for n in nodes} <= {"AGENTEX", "ORQ"}
    # xpander and Subnoto have no value meaning AWAITING_APPROVAL: they are not asked.
    assert sum(clean_sandbox.counters(Vendor.XPANDER).values()) == 0
    assert sum(clean_sandbox.counters(Vendor.SUBNOTO).values()) == 0


def test_failed_filter_matches_every_failed_task(gateway, everything) -> None:
    nodes = page_through(gateway, 20, filter={"statuses": ["FAILED"]})
    expected = {n["id"] for n in everything if n["status"] == "FAILED"}
    assert {n["id"] for n in nodes} == expected
    assert {n["vendor"] for n in nodes} == {v.name for v in Vendor}


def test_vendor_agent_and_time_filters(gateway, everything) -> None:
    nodes = page_through(gateway, 50, filter={"vendors": ["XPANDER", "SUBNOTO"]})
    assert {n["id"] for n in nodes} == {
        n["id"] for n in everything if n["vendor"] in ("XPANDER", "SUBNOTO")
    }
    agent = next(n["agentId"] for n in everything if n["vendor"] == "ORQ")
    nodes = page_through(gateway, 50, filter={"agentIds": [agent]})
    assert nodes and {n["agentId"] for n in nodes} == {agent}
    assert {n["id"] for n in nodes} == {n["id"] for n in everything if n["agentId"] == agent}
    dated = [n for n in everything if n["updatedAt"] is not None]
    middle = dated[len(dated) // 2]["updatedAt"]
    recent = page_through(gateway, 50, filter={"updatedAfter": middle})
    assert {n["id"] for n in recent} == {
        n["id"]
        for n in dated
        if datetime.fromisoformat(n["updatedAt"]) >= datetime.fromisoformat(middle)
    }
    older = page_through(
        gateway,
        50,
        filter={"updatedBefore": middle},
        order={"field": "UPDATED_AT", "direction": "ASC"},
    )
    # A time filter never matches a task whose update time is unknown.
    assert {n["id"] for n in older} | {n["id"] for n in recent} == {n["id"] for n in dated}


def test_total_count_counts_the_whole_filtered_set(gateway, everything) -> None:
    for statuses in (None, ["FAILED"], ["RUNNING", "IDLE"]):
        data = gateway.data(
            "query($f: TaskFilter) { tasks(first: 1, filter: $f) { totalCount } }",
            {"f": {"statuses": statuses} if statuses else None},
        )
        expected = [n for n in everything if statuses is None or n["status"] in statuses]
        assert data["tasks"]["totalCount"] == len(expected)


def test_a_failing_vendor_costs_only_its_own_part(
    make_gateway: GatewayFactory, clean_sandbox, everything
) -> None:
    clean_sandbox.knobs(Vendor.ORQ).error_rate = 1.0
    gateway = make_gateway()
    body = gateway.query(
        "{ tasks(first: 100) { missingVendors vendorParts { vendor ok errorCode } "
        "nodes { id vendor } } }"
    )
    tasks = body["data"]["tasks"]
    assert tasks["missingVendors"] == ["ORQ"]
    assert {n["vendor"] for n in tasks["nodes"]} == {"AGENTEX", "XPANDER", "SUBNOTO"}
    expected = [n["id"] for n in everything if n["vendor"] != "ORQ"][:100]
    assert [n["id"] for n in tasks["nodes"]] == expected
    [error] = body["errors"]
    assert error["extensions"] == {"code": "UPSTREAM_UNAVAILABLE", "vendor": "ORQ"}
    assert error["path"] == ["tasks"]
    parts = {p["vendor"]: p for p in tasks["vendorParts"]}
    assert parts["ORQ"] == {"vendor": "ORQ", "ok": False, "errorCode": "UPSTREAM_UNAVAILABLE"}
    assert parts["XPANDER"]["ok"] is True


@pytest.mark.parametrize(
    ("arguments", "code"),
    [
        ("first: -1", "BAD_USER_INPUT"),
        ("first: 100000", "BAD_USER_INPUT"),
        ('after: "not a cursor"', "INVALID_CURSOR"),
        ('after: "eyJ2IjoxfQ"', "INVALID_CURSOR"),
        ('filter: {updatedAfter: "2026-01-01T00:00:00"}', "BAD_USER_INPUT"),
    ],
)
def test_bad_arguments_get_a_stable_code(gateway, arguments, code) -> None:
    body = gateway.query(f"{{ tasks({arguments}) {{ nodes {{ id }} }} }}")
    [error] = body["errors"]
    assert error["extensions"]["code"] == code
    assert "Traceback" not in error["message"]


def test_a_cursor_from_another_filter_is_refused(gateway) -> None:
    data = gateway.data(PAGE, {"first": 2})
    cursor = data["tasks"]["pageInfo"]["endCursor"]
    body = gateway.query(PAGE, {"first": 2, "after": cursor, "filter": {"statuses": ["FAILED"]}})
    assert body["errors"][0]["extensions"]["code"] == "INVALID_CURSOR"


def test_a_small_page_reads_one_upstream_page_per_source(
    make_gateway: GatewayFactory, clean_sandbox
) -> None:
    gateway = make_gateway()
    gateway.data("{ tasks(first: 20, orderBy: {field: CREATED_AT}) { nodes { id } } }")
    assert clean_sandbox.counters(Vendor.XPANDER)["GET /v1/agents/{agent_id}/tasks"] == len(
        clean_sandbox.agents(Vendor.XPANDER)
    )
    assert clean_sandbox.counters(Vendor.ORQ)["GET /v2/agents/{agent_key}/tasks"] == len(
        clean_sandbox.agents(Vendor.ORQ)
    )
    assert clean_sandbox.counters(Vendor.AGENTEX)["GET /tracker"] == 1
    assert clean_sandbox.counters(Vendor.SUBNOTO)["POST /public/agent-task/list"] == 1


def test_a_page_of_none_asks_no_vendor(make_gateway: GatewayFactory, clean_sandbox) -> None:
    data = make_gateway().data("{ tasks(first: 0) { nodes { id } pageInfo { hasNextPage } } }")
    assert data["tasks"]["nodes"] == [] and data["tasks"]["pageInfo"]["hasNextPage"] is True
    assert all(sum(clean_sandbox.counters(vendor).values()) == 0 for vendor in Vendor)
