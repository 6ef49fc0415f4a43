"""Queries answered from the task index (issue 17), over HTTP against the sandbox.

- Every order and filter, paged with drawn page sizes, equals the oracle's answer over the
  records the sandbox serves (hypothesis: nulls, ties within and across vendors, shuffled
  ties while the sync reads), with ``totalCount``, and without a single upstream call.
- Keyset cursors: while the sync writes changes between two page reads, a task that did not
  change is never repeated or skipped.
- ``fresh: true`` reads the vendors and writes what it read into the index.
- ``taskChanged`` is fed by the sync's detected changes, with no poll.
- A vendor whose first sync is not done is served live; ``Query.vendors`` and ``/metrics``
  show each vendor's sync.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import websockets
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.cli import demo_settings
from gateway.core.records import Vendor
from gateway.sandbox import Sandbox, SandboxOptions
from gateway.serving import ServerThread
from tests.index.gateways import IndexedGateway, index_settings, records, upstream_calls
from tests.oracle.model import datasets, expected_task, expected_tasks, queries
from tests.oracle.test_tasks_oracle import PROFILE, Oracle, check, page_sizes

EXAMPLES = 30


@pytest.fixture(scope="module", params=("sqlite", "postgresql"))
def index_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('queries') / 'tasks.db'}"
    url: str = request.getfixturevalue("postgres_server").create_database()
    return url


class IndexOracle(Oracle):
    """The oracle's sandbox and paging, with a gateway reading the index, which a full read
    of every vendor (``rescan_interval = 0``) brings to each example's records."""

    gateway: IndexedGateway


@pytest.fixture(scope="module")
def oracle(index_url: str) -> Iterator[IndexOracle]:
    sandbox = Sandbox(SandboxOptions(size=0, seed=31, shuffle_ties=True))
    with ServerThread(sandbox.app) as server:
        settings_ = index_settings(
            demo_settings(server.url, sandbox), index_url, index_rescan_interval=0.0
        )
        gateway = IndexedGateway(settings_)
        oracle = IndexOracle(sandbox, gateway)
        try:
            gateway.wait_first_sync()
            yield oracle
        finally:
            oracle.restore()
            gateway.close()


@settings(PROFILE, max_examples=EXAMPLES)
@given(data=st.data())
def test_index_pages_equal_the_oracle_for_every_order_and_filter(
    oracle: IndexOracle, data: st.DataObject
) -> None:
    dataset = data.draw(datasets(oracle.agents, 5), label="dataset")
    sizes = data.draw(page_sizes, label="vendor page sizes (what the sync reads)")
    agent_ids = [a for vendor in Vendor for a in oracle.agents[vendor]]
    query = data.draw(queries(agent_ids), label="query")
    oracle.serve(dataset, sizes)
    oracle.gateway.sync_pass()
    oracle.sandbox.reset_counters()
    nodes, totals = oracle.page_through(query)
    check(dataset, query, nodes)
    assert totals == {len(expected_tasks(dataset, query))}, "totalCount is not the count"
    assert upstream_calls(oracle.sandbox) == 0, "an index page called a vendor"


# -- a sandbox of the module's own, whose tasks move -------------------------------------------


@pytest.fixture
def moving(
    index_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[tuple[Sandbox, IndexedGateway]]:
    """A gateway on an index of its own (a new file or database), synced with a sandbox."""
    if index_url.startswith("sqlite"):
        url = f"sqlite:///{tmp_path / 'moving.db'}"
    else:
        url = request.getfixturevalue("postgres_server").create_database()
    sandbox = Sandbox(SandboxOptions(size=24, seed=5))
    with ServerThread(sandbox.app) as server:
        gateway = IndexedGateway(index_settings(demo_settings(server.url, sandbox), url))
        try:
            gateway.wait_first_sync()
            yield sandbox, gateway
        finally:
            gateway.close()


KEYSET_PAGE = """query P($after: String, $order: TaskOrder) {
  tasks(first: 9, after: $after, orderBy: $order) {
    nodes { vendor agentId nativeId status updatedAt }
    pageInfo { hasNextPage endCursor }
  }
}"""


@pytest.mark.parametrize(
    ("field", "direction"),
    [("UPDATED_AT", "DESC"), ("UPDATED_AT", "ASC"), ("CREATED_AT", "ASC")],
)
def test_keyset_cursors_neither_repeat_nor_skip_unchanged_tasks_while_the_sync_writes(
    moving: tuple[Sandbox, IndexedGateway], field: str, direction: str
) -> None:
    sandbox, gateway = moving
    before = _shown_tasks(sandbox)
    order = {"field": field, "direction": direction}
    seen: list[tuple[str, str | None, str]] = []
    after = None
    for _ in range(200):
        connection = gateway.data(KEYSET_PAGE, {"after": after, "order": order})["tasks"]
        seen += [(n["vendor"], n["agentId"], n["nativeId"]) for n in connection["nodes"]]
        if not connection["pageInfo"]["hasNextPage"]:
            break
        after = connection["pageInfo"]["endCursor"]
        sandbox.advance(2)  # tasks move on between two page reads ...
        gateway.sync_pass()  # ... and the index takes the changes
    now = _shown_tasks(sandbox)
    unchanged = {key for key, value in before.items() if now.get(key) == value}
    assert len(unchanged) < len(before), "nothing changed: the test proves nothing"
    counts = Counter(seen)
    repeated = [key for key in unchanged if counts[key] > 1]
    skipped = [key for key in unchanged if counts[key] == 0]
    assert not repeated and not skipped, (repeated, skipped)


def _shown_tasks(sandbox: Sandbox) -> dict[tuple[str, str | None, str], tuple[Any, ...]]:
    return {
        task.key: (task.status, task.updated_at)
        for vendor, rows in records(sandbox).items()
        for task in (expected_task(vendor, row) for row in rows)
    }


FRESH = """query F($fresh: Boolean!) { tasks(first: 100, fresh: $fresh,
  filter: {vendors: [XPANDER]}, orderBy: {field: UPDATED_AT, direction: DESC}) {
  nodes { vendor agentId nativeId status updatedAt }
  vendorParts { vendor upstreamPages }
} }"""


def test_fresh_reads_the_vendor_live_and_writes_what_it_read_into_the_index(
    moving: tuple[Sandbox, IndexedGateway],
) -> None:
    sandbox, gateway = moving
    assert sandbox.advance(3) > 0  # the vendors moved on; no sync pass since
    expected = {
        task.key: (task.status, task.updated_at)
        for task in (expected_task(Vendor.XPANDER, r) for r in records(sandbox)[Vendor.XPANDER])
    }

    def shown(fresh: bool) -> tuple[dict[Any, Any], int]:
        body = gateway.data(FRESH, {"fresh": fresh})["tasks"]
        tasks = {
            (n["vendor"], n["agentId"], n["nativeId"]): (n["status"], _time(n["updatedAt"]))
            for n in body["nodes"]
        }
        return tasks, sum(p["upstreamPages"] for p in body["vendorParts"])

    _, pages = shown(fresh=False)
    assert pages == 0  # from the index
    live, pages = shown(fresh=True)
    assert pages > 0
    assert all(expected[key] == value for key, value in live.items())
    sandbox.reset_counters()
    indexed, pages = shown(fresh=False)
    assert pages == 0 and upstream_calls(sandbox) == 0
    assert indexed == live, "the index did not take what the fresh read saw"


def _time(value: str | None) -> Any:
    from datetime import datetime

    return None if value is None else datetime.fromisoformat(value)


SUBSCRIBE = "subscription { taskChanged { vendor agentId nativeId status } }"


def test_task_changed_is_fed_by_the_sync_without_a_poll(
    moving: tuple[Sandbox, IndexedGateway],
) -> None:
    sandbox, gateway = moving
    url = gateway.url.replace("http", "ws") + "/graphql"

    async def scenario() -> list[dict[str, Any]]:
        async with websockets.connect(url, subprotocols=["graphql-transport-ws"]) as socket:
            await socket.send(json.dumps({"type": "connection_init"}))
            assert json.loads(await socket.recv())["type"] == "connection_ack"
            message = {"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIBE}}
            await socket.send(json.dumps(message))
            await asyncio.sleep(0.3)
            before = _shown_tasks(sandbox)
            moved = sandbox.advance(2)
            assert moved > 0
            after = _shown_tasks(sandbox)
            changed = {k for k, v in after.items() if before.get(k) != v}
            await asyncio.to_thread(gateway.sync_pass)
            received = []
            while len(received) < len(changed):
                raw = json.loads(await asyncio.wait_for(socket.recv(), 20))
                assert raw["type"] == "next", raw
                received.append(raw["payload"]["data"]["taskChanged"])
            keys = {(t["vendor"], t["agentId"], t["nativeId"]) for t in received}
            assert keys == changed
            return received

    received = asyncio.run(scenario())
    assert received
    assert gateway.app.state.poller.polls == 0, "the subscription polled the vendors"


METRICS = (
    "gateway_index_synced_at_seconds",
    "gateway_index_lag_seconds",
    "gateway_index_first_sync_progress",
    "gateway_index_sync_errors_total",
    "gateway_index_tasks",
)


def test_vendors_and_metrics_show_each_vendors_sync(
    moving: tuple[Sandbox, IndexedGateway],
) -> None:
    sandbox, gateway = moving
    text = gateway.http.get("/metrics").text
    for vendor in Vendor:
        for name in METRICS:
            assert f'{name}{{vendor="{vendor.value}"}}' in text, (name, vendor)
    assert 'gateway_index_first_sync_progress{vendor="orq"} 1.0' in text
    sandbox.knobs(Vendor.ORQ).fail_next = 100
    gateway.sync_pass([Vendor.ORQ], ok=False)
    orq = gateway.vendors()["ORQ"]["index"]
    assert orq["lastError"] and orq["lastError"].startswith("UPSTREAM_")
    assert orq["firstSyncDone"]  # an error does not take the vendor off the index
    text = gateway.http.get("/metrics").text
    assert 'gateway_index_sync_errors_total{vendor="orq"} 1.0' in text
    sandbox.knobs(Vendor.ORQ).fail_next = 0
    gateway.sync_pass([Vendor.ORQ])
    assert gateway.vendors()["ORQ"]["index"]["lastError"] is None


STATS = """{ taskStats(groupBy: [VENDOR, STATUS]) { total missingVendors
  groups { vendor status count } } }"""


def test_stats_exports_and_single_tasks_come_from_the_index(
    moving: tuple[Sandbox, IndexedGateway],
) -> None:
    """``taskStats`` (by SQL), the exports, ``task``/``node`` and ``trackers`` read the
    index: the oracle's figures and rows, and not one vendor call."""
    sandbox, gateway = moving
    expected = [
        task
        for vendor, rows in records(sandbox).items()
        for task in (expected_task(vendor, r) for r in rows)
    ]
    sandbox.reset_counters()
    stats = gateway.data(STATS)["taskStats"]
    assert stats["missingVendors"] == [] and stats["total"] == len(expected)
    counted = {(g["vendor"], g["status"]): g["count"] for g in stats["groups"]}
    assert counted == Counter((t.vendor, t.status) for t in expected)
    lines = gateway.http.get("/export/tasks.ndjson").text.splitlines()
    exported = [json.loads(line) for line in lines if line]
    assert sorted((r["vendor"], r["agent_id"], r["native_id"]) for r in exported) == sorted(
        t.key for t in expected
    )
    for row in exported[:: max(1, len(exported) // 8)]:
        node = gateway.data(
            "query($id: ID!) { task(id: $id) { nativeId status } node(id: $id) { id } }",
            {"id": row["id"]},
        )
        assert node["task"]["nativeId"] == row["native_id"] and node["node"]["id"] == row["id"]
    trackers = gateway.data("{ trackers(first: 100) { nodes { taskId } } }")["trackers"]["nodes"]
    assert sorted(t["taskId"] for t in trackers) == sorted(
        t.native_id for t in expected if t.vendor == "AGENTEX"
    )
    assert upstream_calls(sandbox) == 0
