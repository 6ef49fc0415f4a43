"""The four connectors against the sandbox over real HTTP: one suite for every vendor."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from gateway.config import CREDENTIAL_STYLE
from gateway.core.errors import (
    UpstreamAuthError,
    UpstreamBadResponseError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)
from gateway.core.records import Direction, Order, OrderField, TaskStatus, Vendor
from gateway.sandbox import SANDBOX_CREDENTIALS
from gateway.vendors.base import Connector, Credentials, ListQuery, VendorSettings
from gateway.vendors.registry import CONNECTORS
from gateway.vendors.xpander import XpanderConnector
from gateway.vendors.xpander import _to_record as xpander_record

VENDORS = list(Vendor)


def make(
    vendor: Vendor, url: str, sandbox, secret: str | None = "default", timeout: float = 10
) -> Connector:
    header, scheme = CREDENTIAL_STYLE[vendor]
    key = SANDBOX_CREDENTIALS[vendor] if secret == "default" else secret
    settings = VendorSettings(
        vendor,
        f"{url}/{vendor.value}",
        Credentials(key, header, scheme) if key else None,
        agents=tuple(sandbox.agents(vendor)),
    )
    client = httpx.AsyncClient(base_url=settings.base_url, timeout=timeout)
    return CONNECTORS[vendor](settings, client)


@pytest.fixture
async def connectors(sandbox, sandbox_url, clean_sandbox) -> AsyncIterator[dict]:
    made = {v: make(v, sandbox_url, sandbox) for v in Vendor}
    yield made
    for connector in made.values():
        await connector.client.aclose()


async def read(connector: Connector, query: ListQuery) -> list:
    records = []
    for source in connector.sources(query):
        token = None
        while True:
            page = await connector.fetch_page(source, token)
            records.extend(page.records)
            token = page.next_token
            if token is None:
                break
    return records


def native_ids(sandbox, vendor: Vendor) -> set[str]:
    store = sandbox.store(vendor)
    if vendor is Vendor.AGENTEX:
        return {t["task_id"] for t in store.values()}
    if vendor is Vendor.SUBNOTO:
        return {t["taskUuid"] for t in store}
    key = "id" if vendor is Vendor.XPANDER else "_id"
    return {t[key] for tasks in store.values() for t in tasks}


@pytest.mark.parametrize("vendor", VENDORS, ids=lambda v: v.value)
async def test_every_task_exactly_once_normalized(connectors, sandbox, vendor) -> None:
    records = await read(connectors[vendor], ListQuery())
    ids = [r.native_id for r in records]
    assert len(ids) == len(set(ids)) and set(ids) == native_ids(sandbox, vendor)
    for record in records:
        assert record.vendor is vendor and record.updated_at.tzinfo is not None
        assert record.raw and record.global_id
        if record.created_at is not None:
            assert record.created_at.utcoffset().total_seconds() == 0


@pytest.mark.parametrize("vendor", VENDORS, ids=lambda v: v.value)
@pytest.mark.parametrize("field", list(OrderField), ids=lambda f: f.value)
async def test_ordered_sources_are_really_in_order(connectors, vendor, field) -> None:
    connector = connectors[vendor]
    order = Order(field, Direction.DESC)
    for source in connector.sources(ListQuery(order=order)):
        if not source.ordered:
            continue
        page = await connector.fetch_page(source, None)
        times = [r.sort_time(field) for r in page.records]
        assert times == sorted(times, reverse=True)


@pytest.mark.parametrize("vendor", VENDORS, ids=lambda v: v.value)
async def test_status_push_down(connectors, vendor) -> None:
    connector = connectors[vendor]
    failed = await read(connector, ListQuery(statuses=frozenset({TaskStatus.FAILED})))
    if vendor is Vendor.AGENTEX:  # no status parameter: the merge filters
        assert any(r.status is TaskStatus.FAILED for r in failed)
    else:
        assert failed and {r.status for r in failed} == {TaskStatus.FAILED}
    paused = connector.sources(ListQuery(statuses=frozenset({TaskStatus.PAUSED})))
    assert bool(paused) == (vendor in (Vendor.AGENTEX, Vendor.XPANDER))


def test_orq_status_precedence() -> None:
    from gateway.vendors.orq import _to_record

    base = {"_id": "01J", "created": "2026-01-01T00:00:00Z", "updated": "2026-01-02T00:00:00Z"}
    cases = [
        ({"error": "boom", "waiting_for_approval": True, "inactive": True}, TaskStatus.FAILED),
        ({"waiting_for_approval": True, "inactive": True}, TaskStatus.AWAITING_APPROVAL),
        ({"inactive": True}, TaskStatus.IDLE),
        ({}, TaskStatus.RUNNING),
    ]
    for state, expected in cases:
        assert _to_record({**base, "state": state}, "agent").status is expected


@pytest.mark.parametrize(
    "vendor", [Vendor.XPANDER, Vendor.ORQ, Vendor.SUBNOTO], ids=lambda v: v.value
)
async def test_a_wrong_key_is_upstream_auth(sandbox, sandbox_url, vendor) -> None:
    connector = make(vendor, sandbox_url, sandbox, secret="wrong")
    with pytest.raises(UpstreamAuthError) as error:
        await read(connector, ListQuery())
    assert "wrong" not in str(error.value)
    await connector.client.aclose()


@pytest.mark.parametrize("vendor", VENDORS, ids=lambda v: v.value)
async def test_faults_map_onto_the_error_tree(sandbox, sandbox_url, clean_sandbox, vendor) -> None:
    connector = make(vendor, sandbox_url, sandbox, timeout=0.3)
    knobs = clean_sandbox.knobs(vendor)
    for knob, error in (
        ("error_rate", UpstreamUnavailableError),
        ("malformed_rate", UpstreamBadResponseError),
        ("timeout_rate", UpstreamTimeoutError),
    ):
        setattr(knobs, knob, 1.0)
        with pytest.raises(error):
            await read(connector, ListQuery())
        setattr(knobs, knob, 0.0)
    await connector.client.aclose()


def test_a_record_that_cannot_be_read_is_skipped_and_counted() -> None:
    connector = XpanderConnector(VendorSettings(Vendor.XPANDER, "http://x"), httpx.AsyncClient())
    good = {
        "id": "t1",
        "agent_id": "a",
        "status": "completed",
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-01T00:00:01Z",
    }
    items = [
        good,
        {"id": "t2"},
        {**good, "id": "t3", "created_at": "yesterday"},
        {**good, "id": "t4", "status": "teleporting"},
    ]
    records, skipped = connector.normalize(items, xpander_record)
    assert [r.native_id for r in records] == ["t1", "t4"] and skipped == 2
    assert records[1].status is TaskStatus.UNKNOWN and records[1].vendor_status == "teleporting"
