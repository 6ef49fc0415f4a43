"""Issue 16, an answer on time (``graphql.answer_within``), over HTTP against the sandbox.

A vendor held by the sandbox's ``hang`` knob is left out of the answer (``UPSTREAM_SLOW``) or
served stale from the cache; its call goes on and fills the cache for the next request. A
vendor cut in the middle of a page is missing from that page as a whole, and the cursor
resumes it: paging on returns every task once. Exports are not cut. Nothing here asserts a
duration: the waits are for conditions, with a bound only against a hang.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from gateway.app import create_app
from gateway.cli import demo_settings
from gateway.config import Settings
from gateway.core.records import Vendor
from gateway.sandbox import Sandbox, SandboxOptions
from gateway.serving import ServerThread
from gateway.vendors.registry import connector_for
from tests.conftest import SANDBOX_SIZE, GatewayClient, GatewayFactory, vendor_settings
from tests.oracle.model import Dataset, Query, datasets, expected_tasks

ANSWER_WITHIN = 1.0
"""Small, so a test waits little; large enough that a loaded machine's healthy vendors (a
few ms on loopback) are never the ones cut."""
SLOW = Vendor.ORQ
OTHERS = {v.name for v in Vendor if v is not SLOW}
PAGE = """
query Page($after: String, $fresh: Boolean = false) {
  tasks(first: 100, after: $after, fresh: $fresh) {
    missingVendors
    nodes { id vendor agentId nativeId }
    vendorParts { vendor ok fromCache stale fetchedAt errorCode }
    pageInfo { hasNextPage endCursor }
  }
}
"""
WAIT_SECONDS = 30.0
"""The bound of a wait for a condition (a background call to land): a hang, not a timing."""


def until(condition: Callable[[], Any]) -> Any:
    """``condition()``'s first truthy value, asked again until then (bounded)."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("the condition never held")


def tasks(gateway: GatewayClient, **variables: Any) -> dict[str, Any]:
    body = gateway.query(PAGE, variables)
    connection: dict[str, Any] = body["data"]["tasks"]
    connection["errors"] = body.get("errors", [])
    return connection


def part(connection: dict[str, Any], vendor: Vendor) -> dict[str, Any]:
    found: dict[str, Any] = next(p for p in connection["vendorParts"] if p["vendor"] == vendor.name)
    return found


def metric(gateway: GatewayClient, name: str) -> dict[str, float]:
    """A per-vendor metric's values from ``/metrics``."""
    families = text_string_to_metric_families(gateway.http.get("/metrics").text)
    family = next(f for f in families if f.name == name)
    return {s.labels["vendor"]: s.value for s in family.samples}


def calls(sandbox: Sandbox, vendor: Vendor) -> int:
    return sum(sandbox.counters(vendor).values())


@pytest.fixture
def hanging(clean_sandbox: Sandbox) -> Iterator[Sandbox]:
    """The shared sandbox with ``SLOW`` held; released after the test, so nothing waits on."""
    clean_sandbox.knobs(SLOW).hang = True
    yield clean_sandbox
    clean_sandbox.knobs(SLOW).hang = False


def test_a_hanging_vendor_is_named_slow_and_its_call_fills_the_cache_for_the_next_answer(
    make_gateway: GatewayFactory, hanging: Sandbox
) -> None:
    gateway = make_gateway(answer_within=ANSWER_WITHIN)
    first = tasks(gateway)
    assert first["missingVendors"] == [SLOW.name]
    assert [e["extensions"] for e in first["errors"]] == [
        {"code": "UPSTREAM_SLOW", "vendor": SLOW.name}
    ]
    assert part(first, SLOW)["errorCode"] == "UPSTREAM_SLOW"
    assert {n["vendor"] for n in first["nodes"]} == OTHERS
    # The others' part is whole: the same tasks as a query that never asks the slow vendor.
    others = gateway.data(
        "query($v: [Vendor!]) { tasks(first: 100, filter: {vendors: $v}) { nodes { id } } }",
        {"v": sorted(OTHERS)},
    )["tasks"]["nodes"]
    assert [n["id"] for n in first["nodes"]] == [n["id"] for n in others]
    sent = calls(hanging, SLOW)
    assert sent > 0  # the calls went out, and are still held by the vendor

    assert metric(gateway, "gateway_vendor_late_calls")[SLOW.value] > 0
    hanging.knobs(SLOW).hang = False  # the vendor answers the calls it holds
    until(lambda: metric(gateway, "gateway_vendor_late_calls")[SLOW.value] == 0)
    answer = tasks(gateway)
    assert answer["missingVendors"] == [] and answer["errors"] == []
    assert part(answer, SLOW)["fromCache"] and not part(answer, SLOW)["stale"]
    assert SLOW.name in {n["vendor"] for n in answer["nodes"]}
    # Everything of the slow vendor came from the calls the first answer left running.
    assert calls(hanging, SLOW) == sent
    slow = metric(gateway, "gateway_vendor_slow")
    assert slow[SLOW.value] == 1 and all(slow[v.value] == 0 for v in Vendor if v is not SLOW)


def test_a_slow_vendor_is_served_stale_from_the_cache_past_its_ttl(
    make_gateway: GatewayFactory, settings: Settings, clean_sandbox: Sandbox
) -> None:
    short = vendor_settings(settings, SLOW, cache_ttl=0.2, first_page_ttl=0.2)
    gateway = make_gateway(answer_within=ANSWER_WITHIN, vendors=short.vendors)
    warm = tasks(gateway)
    assert warm["missingVendors"] == []
    time.sleep(0.3)  # the slow vendor's pages are past their TTL (within stale_if_error)
    clean_sandbox.knobs(SLOW).hang = True
    try:
        answer = tasks(gateway)
    finally:
        clean_sandbox.knobs(SLOW).hang = False
    assert answer["missingVendors"] == [] and answer["errors"] == []
    shown = part(answer, SLOW)
    assert shown["ok"] and shown["stale"] and shown["fromCache"]
    assert shown["fetchedAt"] == part(warm, SLOW)["fetchedAt"]
    assert answer["nodes"] == warm["nodes"]


def test_fresh_true_with_a_slow_vendor_is_answered_from_its_cached_part_marked_stale(
    make_gateway: GatewayFactory, clean_sandbox: Sandbox
) -> None:
    gateway = make_gateway(answer_within=ANSWER_WITHIN)
    warm = tasks(gateway)
    clean_sandbox.knobs(SLOW).hang = True
    try:
        answer = tasks(gateway, fresh=True)
    finally:
        clean_sandbox.knobs(SLOW).hang = False
    assert answer["missingVendors"] == [] and answer["errors"] == []
    assert part(answer, SLOW)["stale"] and part(answer, SLOW)["fromCache"]
    assert all(not part(answer, v)["stale"] for v in Vendor if v is not SLOW)
    assert answer["nodes"] == warm["nodes"]


def test_sub_tasks_read_from_a_slow_vendor_end_without_it(
    make_gateway: GatewayFactory, clean_sandbox: Sandbox
) -> None:
    """Sub-tasks are read as a stream of merged batches: a vendor cut in one batch is not
    waited for in the next (the answer ends)."""
    gateway = make_gateway(answer_within=ANSWER_WITHIN)
    # One parent: its sub-tasks are a listing of their own (``parent_task_id``), not cached.
    listing = "{ tasks(first: 1, filter: {vendors: [XPANDER]}) { nodes { id %s } } }"
    warm = gateway.data(listing % "")["tasks"]["nodes"]
    clean_sandbox.knobs(Vendor.XPANDER).hang = True
    try:
        body = gateway.query(listing % "subtasks { id }")
    finally:
        clean_sandbox.knobs(Vendor.XPANDER).hang = False
    nodes = body["data"]["tasks"]["nodes"]
    assert [n["id"] for n in nodes] == [n["id"] for n in warm]  # the page, from the cache
    assert all(n["subtasks"] == [] for n in nodes)
    assert {e["extensions"]["code"] for e in body["errors"]} == {"UPSTREAM_SLOW"}


def test_an_export_is_not_cut_by_answer_within(
    make_gateway: GatewayFactory, clean_sandbox: Sandbox
) -> None:
    gateway = make_gateway(answer_within=0.2)
    clean_sandbox.knobs(SLOW).latency_ms = 600  # later than answer_within, within the timeout
    response = gateway.http.get("/export/tasks.ndjson")
    assert response.status_code == 200
    rows = [json.loads(line) for line in response.text.splitlines()]
    assert Counter(r["vendor"] for r in rows) == {v.name: SANDBOX_SIZE for v in Vendor}


# -- a vendor cut in the middle of a page -------------------------------------------------------
CUT = Vendor.SUBNOTO
"""Streamed (sorted by the vendor, read page by page), so its pages are read as the merge
needs them: with pages of one task, its first pages come from the cache and a later one from
the (held) vendor, in the middle of the page being merged."""


@pytest.fixture(scope="module")
def cutting() -> Iterator[tuple[Sandbox, Settings]]:
    sandbox = Sandbox(SandboxOptions(size=0, seed=41))
    connector = connector_for(CUT)
    page_size = connector.page_size
    connector.page_size = 1  # a class attribute: the gateway has no setting for it
    try:
        with ServerThread(sandbox.app) as server:
            base = demo_settings(server.url, sandbox)
            vendors = {
                v: replace(c, cache_ttl=600, first_page_ttl=600) for v, c in base.vendors.items()
            }
            yield (
                sandbox,
                replace(base, vendors=vendors, answer_within=ANSWER_WITHIN, response_cache=False),
            )
    finally:
        connector.page_size = page_size


ALL = Query("UPDATED_AT", "DESC", None, None, None, None, None, 100)


@settings(
    max_examples=6,
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_a_vendor_cut_mid_page_is_missing_as_a_whole_and_paging_on_returns_each_task_once(
    cutting: tuple[Sandbox, Settings], data: st.DataObject
) -> None:
    sandbox, base = cutting
    agents = {v: sandbox.agents(v) for v in Vendor}
    dataset: Dataset = data.draw(datasets(agents, 5), label="dataset")
    assume(len(dataset[CUT]) >= 3)
    # Page 1 from the cache (warmed), the next ones from the held vendor, in the middle of
    # the page. Distinct times, so no tie group runs across its pages: the gateway reads
    # such a group again in one response, a request the warm-up may have cached already.
    for n, record in enumerate(dataset[CUT]):
        record["latestReport"]["timestamp"] += n
    sandbox.load(dataset)
    gateway = GatewayClient(ServerThread(create_app(base)).start())  # an empty cache each
    try:
        warm = gateway.data(
            "query($v: [Vendor!]) { tasks(first: 1, filter: {vendors: $v}) { nodes { id } } }",
            {"v": [CUT.name]},
        )
        assert len(warm["tasks"]["nodes"]) == 1
        sandbox.knobs(CUT).hang = True
        try:
            cut = tasks(gateway)
        finally:
            sandbox.knobs(CUT).hang = False
        assert cut["missingVendors"] == [CUT.name]
        assert {e["extensions"]["code"] for e in cut["errors"]} == {"UPSTREAM_SLOW"}
        assert CUT.name not in {n["vendor"] for n in cut["nodes"]}
        assert cut["pageInfo"]["hasNextPage"]  # the cursor resumes the vendor cut
        pages = [cut]
        while pages[-1]["pageInfo"]["hasNextPage"]:
            assert len(pages) < 50, "paging did not end"
            pages.append(tasks(gateway, after=pages[-1]["pageInfo"]["endCursor"]))
    finally:
        gateway.close()
    expected = {t.key: t for t in expected_tasks(dataset, ALL)}
    seen = [key(n) for page in pages for n in page["nodes"]]
    assert sorted(seen) == sorted(expected), "a task lost or repeated"
    for page in pages:  # each page in order (across pages, the cut vendor comes late)
        keys = [ALL.sort_key(expected[key(n)]) for n in page["nodes"]]
        assert keys == sorted(keys)
    # The page that cut the vendor is exactly the others' tasks, in order.
    others = [k for k in expected if k[0] != CUT.name]
    assert sorted(key(n) for n in cut["nodes"]) == sorted(others)


def key(node: dict[str, Any]) -> tuple[str, str | None, str]:
    return (node["vendor"], node["agentId"], node["nativeId"])
