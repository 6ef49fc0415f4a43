"""The property-based oracle for ``Query.tasks`` (issue 15).

Hypothesis draws vendor datasets (``model.py``: nulls, ties within and across vendors,
unknown statuses, empty vendors), the sandbox serves exactly those records, and a gateway
pages through ``tasks`` for a drawn order, filter and page size. Each answer must hold
exactly the filtered records, once each, every shown value must be the record's (so the
order can be checked on what a client sees), and the order must be the rule's: by the
order's time, nulls last both ways, ties in any order. The expected answer is computed in
``model.py`` from the records, never by gateway code.

One sandbox and one gateway serve every example: the gateway's caches are off (TTL 0, no
response cache), and the vendors' page sizes are drawn per example, down to one record a
page, so ties straddle page boundaries. ``ORACLE_PROFILE=bench`` (``python -m bench oracle``)
runs thousands of examples instead of a few hundred.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from gateway.cli import demo_settings
from gateway.core.records import Vendor
from gateway.sandbox import Sandbox, SandboxOptions
from gateway.serving import ServerThread
from gateway.vendors.registry import connector_for
from tests.conftest import GatewayClient, GatewayFactory
from tests.oracle.model import (
    Dataset,
    Expected,
    Query,
    datasets,
    expected_tasks,
    queries,
)

settings.register_profile(
    "oracle",
    max_examples=150,
    deadline=None,
    database=None,
    print_blob=True,
    phases=[Phase.explicit, Phase.generate, Phase.shrink],  # no explain phase: reruns cost HTTP
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("bench", settings.get_profile("oracle"), max_examples=3000)
PROFILE = settings.get_profile(os.environ.get("ORACLE_PROFILE", "oracle"))
SHUFFLE_SHARE = 3  # the tie-shuffle property runs a third as many examples
MAX_RECORDS = 5  # per vendor: with pages of 1 to 4 records, plenty of boundaries

PAGE = """
query Oracle($first: Int, $after: String, $filter: TaskFilter, $order: TaskOrder) {
  tasks(first: $first, after: $after, filter: $filter, orderBy: $order) {
    edges { node { id vendor nativeId agentId status createdAt updatedAt } }
    pageInfo { hasNextPage endCursor }
    missingVendors
    totalCount
  }
}
"""
OFFSET_PAGED = (Vendor.AGENTEX, Vendor.XPANDER, Vendor.SUBNOTO)


class Oracle:
    """The sandbox every example loads its records into, and the gateway in front of it."""

    def __init__(self, sandbox: Sandbox, gateway: GatewayClient) -> None:
        self.sandbox = sandbox
        self.gateway = gateway
        self.agents = {vendor: sandbox.agents(vendor) for vendor in Vendor}
        self._page_sizes = {vendor: _page_sizes(vendor) for vendor in Vendor}

    def serve(self, data: Dataset, page_sizes: dict[Vendor, int]) -> None:
        self.sandbox.load(data)
        for vendor, size in page_sizes.items():
            connector = connector_for(vendor)
            for name in self._page_sizes[vendor]:
                setattr(connector, name, size)

    def restore(self) -> None:
        for vendor, sizes in self._page_sizes.items():
            for name, size in sizes.items():
                setattr(connector_for(vendor), name, size)

    def page_through(self, query: Query) -> tuple[list[dict[str, Any]], set[int]]:
        """Every node of the listing, and every ``totalCount`` shown on the way."""
        nodes: list[dict[str, Any]] = []
        totals: set[int] = set()
        after = None
        for _ in range(200):
            data = self.gateway.data(PAGE, {**query.variables(), "after": after})
            connection = data["tasks"]
            assert connection["missingVendors"] == []
            totals.add(connection["totalCount"])
            assert len(connection["edges"]) <= query.first
            nodes += [edge["node"] for edge in connection["edges"]]
            if not connection["pageInfo"]["hasNextPage"]:
                return nodes, totals
            after = connection["pageInfo"]["endCursor"]
        raise AssertionError("paging did not end after 200 pages")


def _page_sizes(vendor: Vendor) -> dict[str, int]:
    """The connector's page sizes as the gateway ships them (orq has a second one for
    listings it reads whole). Overridden per example: the gateway has no setting for them."""
    connector = connector_for(vendor)
    names = [
        n for n in ("page_size", "bulk_page_size") if isinstance(getattr(connector, n, None), int)
    ]
    return {name: getattr(connector, name) for name in names}


@pytest.fixture(scope="module")
def oracle(make_gateway: GatewayFactory) -> Iterator[Oracle]:
    sandbox = Sandbox(SandboxOptions(size=0, seed=31))
    with ServerThread(sandbox.app) as server:
        base = demo_settings(server.url, sandbox)
        vendors = {v: replace(c, cache_ttl=0, first_page_ttl=0) for v, c in base.vendors.items()}
        gateway = make_gateway(vendors=vendors, response_cache=False)
        oracle = Oracle(sandbox, gateway)
        try:
            yield oracle
        finally:
            oracle.restore()


def shown_time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def check(data: Dataset, query: Query, nodes: list[dict[str, Any]]) -> None:
    """The answer is exactly the filtered records, once each, shown as they are, in order."""
    expected = {task.key: task for task in expected_tasks(data, query)}
    keys = [(n["vendor"], n["agentId"], n["nativeId"]) for n in nodes]
    repeated = [key for key, count in Counter(keys).items() if count > 1]
    assert not repeated, f"tasks repeated: {repeated}"
    assert len({n["id"] for n in nodes}) == len(nodes), "global ids repeated"
    missing = set(expected) - set(keys)
    extra = set(keys) - set(expected)
    assert not missing and not extra, f"missing {sorted(missing)}, unexpected {sorted(extra)}"
    shown = []
    for node, key in zip(nodes, keys, strict=True):
        task = expected[key]
        seen = (node["status"], shown_time(node["createdAt"]), shown_time(node["updatedAt"]))
        assert seen == (task.status, task.created_at, task.updated_at), (key, node)
        shown.append(task)
    order = [query.sort_key(task) for task in shown]
    assert order == sorted(order), "not in the order of the values shown: " + ", ".join(
        _shown(task, query) for task in shown
    )


def _shown(task: Expected, query: Query) -> str:
    moment = task.time(query.field)
    return f"{task.vendor}:{task.native_id[-4:]}@{moment.isoformat() if moment else None}"


page_sizes = st.fixed_dictionaries({vendor: st.integers(1, 4) for vendor in Vendor})


@settings(PROFILE)
@given(data=st.data())
def test_paging_returns_exactly_the_filtered_tasks_once_each_in_order(
    oracle: Oracle, data: st.DataObject
) -> None:
    dataset = data.draw(datasets(oracle.agents, MAX_RECORDS), label="dataset")
    sizes = data.draw(page_sizes, label="vendor page sizes")
    agent_ids = [a for vendor in Vendor for a in oracle.agents[vendor]]
    query = data.draw(queries(agent_ids), label="query")
    oracle.serve(dataset, sizes)
    nodes, totals = oracle.page_through(query)
    check(dataset, query, nodes)
    assert totals == {len(expected_tasks(dataset, query))}, "totalCount is not the count"


@settings(PROFILE, max_examples=max(10, PROFILE.max_examples // SHUFFLE_SHARE))
@given(data=st.data())
def test_shuffled_ties_on_offset_pages_lose_and_repeat_nothing(
    oracle: Oracle, data: st.DataObject
) -> None:
    """Every offset-paged vendor reorders tied rows on each request; with pages of one to
    four records, tie groups straddle boundaries between two page reads."""
    dataset = data.draw(datasets(oracle.agents, MAX_RECORDS), label="dataset")
    sizes = data.draw(page_sizes, label="vendor page sizes")
    query = Query(
        field=data.draw(st.sampled_from(["UPDATED_AT", "CREATED_AT"]), label="field"),
        direction=data.draw(st.sampled_from(["ASC", "DESC"]), label="direction"),
        vendors=None,
        statuses=None,
        agent_ids=None,
        updated_after=None,
        updated_before=None,
        first=data.draw(st.integers(1, 4), label="first"),
    )
    oracle.serve(dataset, sizes)
    for vendor in OFFSET_PAGED:
        oracle.sandbox.knobs(vendor).shuffle_ties = True
    try:
        nodes, _ = oracle.page_through(query)
    finally:
        oracle.sandbox.reset_knobs()
    check(dataset, query, nodes)
