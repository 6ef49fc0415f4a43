"""The suite every connector runs, against the sandbox over real loopback HTTP: one test,
parametrized over the vendors (and each vendor's own table of plans, faults and broken
items), for what the connector contract promises of every vendor. What only one vendor has
is in ``test_<vendor>.py``.

What a task must become is derived from the sandbox's rows and ``VENDORS.md``
(``tests.vendors.normalized``), not from the connectors.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest

from gateway.core.contract import ListQuery, SourcePage, offset_page, window_token
from gateway.core.errors import (
    InvalidCursorError,
    UpstreamAuthError,
    UpstreamBadResponseError,
    UpstreamError,
    UpstreamRateLimitedError,
    UpstreamRejectedError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)
from gateway.core.records import Direction, Order, OrderField, TaskRecord, TaskStatus, Vendor
from gateway.sandbox import Sandbox
from gateway.vendors import agentex, orq, subnoto, xpander
from gateway.vendors.agentex import AgentexConnector
from gateway.vendors.registry import CONNECTORS, connector_for, default_credentials
from tests.vendors.conftest import KEYS, SIZE, Make
from tests.vendors.normalized import S, assert_discreet, closed_url, expected, read, read_query

VENDORS = pytest.mark.parametrize("vendor", list(Vendor), ids=lambda v: v.value)
ORDERS = [Order(f, d) for f in OrderField for d in Direction]
CREATED_DESC = Order(OrderField.CREATED_AT, Direction.DESC)
UPDATED_DESC = Order(OrderField.UPDATED_AT, Direction.DESC)

HAS_VALUE: dict[Vendor, set[TaskStatus]] = {
    # The shared statuses each vendor has a value for (VENDORS.md); Agentex is free-form.
    Vendor.AGENTEX: set(TaskStatus),
    Vendor.XPANDER: {S.PENDING, S.RUNNING, S.PAUSED, S.COMPLETED, S.FAILED, S.CANCELLED},
    Vendor.ORQ: {S.RUNNING, S.AWAITING_APPROVAL, S.IDLE, S.FAILED},
    Vendor.SUBNOTO: {S.RUNNING, S.IDLE, S.COMPLETED, S.FAILED},
}


# -- the suite every vendor runs ----------------------------------------------------------------


def test_the_registry_names_one_connector_per_vendor() -> None:
    assert set(CONNECTORS) == set(Vendor)
    for vendor in Vendor:
        assert connector_for(vendor).vendor is vendor


def test_each_vendor_gets_its_key_in_its_own_header() -> None:
    assert xpander.XpanderConnector.credentials("k").headers() == {"x-api-key": "k"}
    for connector in (agentex.AgentexConnector, orq.OrqConnector, subnoto.SubnotoConnector):
        assert connector.credentials("k").headers() == {"Authorization": "Bearer k"}
    for vendor in Vendor:
        assert "k2" not in repr(default_credentials(vendor, "k2"))


@VENDORS
async def test_paging_to_the_end_yields_every_task_once_normalized(
    make: Make, sb: Sandbox, vendor: Vendor
) -> None:
    connector = make(vendor)
    sources = connector.sources(ListQuery())
    records: list[TaskRecord] = []
    pages: list[SourcePage] = []
    for source in sources:
        got, got_pages = await read(connector, source)
        records += got
        pages += got_pages
        total = got_pages[0].total
        assert total is None if vendor is Vendor.AGENTEX else total == len(got)
    assert len(pages) > len(sources)  # every vendor really paged
    assert sum(p.skipped for p in pages) == 0
    ids = [r.native_id for r in records]
    assert len(ids) == len(set(ids)) == SIZE
    want = expected(sb, vendor)
    assert set(ids) == set(want)
    for record in records:
        assert record == want[record.native_id]
        assert record.raw == want[record.native_id].raw
        for moment in (record.created_at, record.updated_at):
            assert moment is None or moment.utcoffset() == timedelta(0)


@VENDORS
@pytest.mark.parametrize("order", ORDERS, ids=lambda o: f"{o.field.value}-{o.direction.value}")
async def test_ordered_sources_really_are_in_order(
    make: Make, vendor: Vendor, order: Order
) -> None:
    connector = make(vendor)
    sources = connector.sources(ListQuery(order=order))
    # Agentex sorts by any column and Subnoto's one sort key is both of ours; xpander and orq
    # list newest created first only.
    streams = vendor in (Vendor.AGENTEX, Vendor.SUBNOTO) or order == CREATED_DESC
    assert sources and all(s.ordered is streams for s in sources)
    for source in sources if streams else []:
        records, _ = await read(connector, source)
        times = [r.sort_time(order.field) for r in records]
        dated = sorted((t for t in times if t is not None), reverse=order.descending)
        nulls = [None] * (len(times) - len(dated))
        # Where the vendor puts missing times is declared, so the merge can move them last:
        # Agentex (Postgres) puts nulls first in ``desc``; Subnoto has no creation time.
        assert times == (nulls + dated if source.nulls_first else dated + nulls)
        assert source.nulls_first is (vendor is Vendor.AGENTEX and order == UPDATED_DESC)


@VENDORS
@pytest.mark.parametrize("status", list(TaskStatus), ids=lambda s: s.value)
async def test_a_status_filter_is_pushed_down(
    make: Make, sb: Sandbox, vendor: Vendor, status: TaskStatus
) -> None:
    connector = make(vendor)
    query = ListQuery(statuses=frozenset({status}))
    assert bool(connector.sources(query)) == (status in HAS_VALUE[vendor])
    records = await read_query(connector, query)
    if vendor is Vendor.AGENTEX:  # free-form values, no status parameter: the merge filters
        records = [r for r in records if r.status is status]
    assert all(r.status is status for r in records)
    assert {r.native_id for r in records} == {
        n for n, t in expected(sb, vendor).items() if t.status is status
    }


A = ("a1", "a2")
DEFAULT_ORDER = {"order_by": "updated_at", "order_direction": "desc"}
PLANS: list[tuple[Vendor, ListQuery, list[tuple[str, dict[str, str]]]]] = [
    (Vendor.AGENTEX, ListQuery(), [("/tracker", DEFAULT_ORDER)]),
    (Vendor.AGENTEX, ListQuery(statuses=frozenset({S.FAILED})), [("/tracker", DEFAULT_ORDER)]),
    (
        Vendor.AGENTEX,
        ListQuery(
            agent_ids=frozenset({"b", "a"}),
            native_id="t1",
            order=Order(OrderField.CREATED_AT, Direction.ASC),
        ),
        [
            (
                "/tracker",
                {
                    "agent_id": x,
                    "order_by": "created_at",
                    "order_direction": "asc",
                    "task_id": "t1",
                },
            )
            for x in ("a", "b")
        ],
    ),
    (Vendor.AGENTEX, ListQuery(user_id="u"), []),
    (Vendor.AGENTEX, ListQuery(parent_task_id="p"), []),
    (Vendor.AGENTEX, ListQuery(triggering_agent_id="g"), []),
    (Vendor.XPANDER, ListQuery(), [(f"/v1/agents/{a}/tasks", {}) for a in A]),
    (
        Vendor.XPANDER,
        ListQuery(
            statuses=frozenset({S.FAILED}),
            agent_ids=frozenset({"a2", "elsewhere"}),
            user_id="u",
            parent_task_id="p",
            triggering_agent_id="g",
            native_id="n",
        ),
        [
            (
                "/v1/agents/a2/tasks",
                {"parent_task_id": "p", "status": s, "triggering_agent_id": "g", "user_id": "u"},
            )
            for s in ("error", "failed")
        ],
    ),
    (Vendor.XPANDER, ListQuery(statuses=frozenset({S.AWAITING_APPROVAL})), []),
    (Vendor.XPANDER, ListQuery(agent_ids=frozenset({"elsewhere"})), []),
    # Not in orq's own order: read whole, in pages of orq's largest limit.
    (
        Vendor.ORQ,
        ListQuery(user_id="u", native_id="n"),
        [(f"/v2/agents/{a}/tasks", {"limit": "200"}) for a in A],
    ),
    (
        Vendor.ORQ,
        ListQuery(statuses=frozenset({S.IDLE, S.RUNNING}), agent_ids=frozenset({"a1"})),
        [("/v2/agents/a1/tasks", {"limit": "200", "status": "in_progress,inactive"})],
    ),
    # In orq's own order (newest created first): streamed, in small pages.
    (
        Vendor.ORQ,
        ListQuery(order=Order(OrderField.CREATED_AT, Direction.DESC), agent_ids=frozenset({"a1"})),
        [("/v2/agents/a1/tasks", {"limit": "50"})],
    ),
    (Vendor.ORQ, ListQuery(statuses=frozenset({S.PAUSED})), []),
    (Vendor.ORQ, ListQuery(parent_task_id="p"), []),
    (Vendor.ORQ, ListQuery(triggering_agent_id="g"), []),
    (Vendor.SUBNOTO, ListQuery(user_id="u"), [("/public/agent-task/list", {"sortOrder": "desc"})]),
    (
        Vendor.SUBNOTO,
        ListQuery(
            statuses=frozenset({S.FAILED, S.COMPLETED}),
            order=Order(OrderField.CREATED_AT, Direction.ASC),
        ),
        [("/public/agent-task/list", {"sortOrder": "asc", "stateFilter": "complete,failure"})],
    ),
    (Vendor.SUBNOTO, ListQuery(statuses=frozenset({S.PENDING})), []),
    (Vendor.SUBNOTO, ListQuery(agent_ids=frozenset({"a1"})), []),
    (Vendor.SUBNOTO, ListQuery(parent_task_id="p"), []),
]


@pytest.mark.parametrize(("vendor", "query", "want"), PLANS)
async def test_sources_push_filters_down_or_ask_nobody(
    make: Make, vendor: Vendor, query: ListQuery, want: list[tuple[str, dict[str, str]]]
) -> None:
    sources = make(vendor, agents=A).sources(query)
    assert [(s.path, dict(s.params)) for s in sources] == want
    for source in sources:  # a cache key: the listing, never a page or a credential
        assert source.vendor is vendor and KEYS[vendor] not in source.key


@pytest.mark.parametrize("vendor", [Vendor.XPANDER, Vendor.ORQ], ids=lambda v: v.value)
async def test_without_configured_agents_only_the_asked_ones_are_listed(
    make: Make, vendor: Vendor
) -> None:
    connector = make(vendor, agents=())
    assert connector.sources(ListQuery()) == []
    asked = connector.sources(ListQuery(agent_ids=frozenset({"b", "a"})))
    assert [s.path.split("/")[3] for s in asked] == ["a", "b"]


@VENDORS
async def test_the_callers_credentials_override_the_configured_ones(
    make: Make, vendor: Vendor
) -> None:
    configured_wrong = make(vendor, secret="configured-but-wrong")
    source = configured_wrong.sources(ListQuery())[0]
    page = await configured_wrong.fetch_page(
        source, None, default_credentials(vendor, KEYS[vendor])
    )
    assert page.records
    with pytest.raises(UpstreamAuthError):
        await make(vendor).fetch_page(source, None, default_credentials(vendor, "callers-wrong"))


FAULTS: dict[str, tuple[dict[str, Any], dict[str, Any], type[UpstreamError], int | None]] = {
    # knobs, connector options, the error, its HTTP status
    "401": ({}, {"secret": "wrong-key"}, UpstreamAuthError, 401),
    "5xx": ({"error_rate": 1.0, "error_status": 503}, {}, UpstreamUnavailableError, 503),
    "429": ({"rate_limit_rate": 1.0, "retry_after_seconds": 7}, {}, UpstreamRateLimitedError, 429),
    "other-4xx": ({"fail_next": 1, "error_status": 409}, {}, UpstreamRejectedError, 409),
    "malformed": ({"malformed_rate": 1.0}, {}, UpstreamBadResponseError, None),
    "timeout": ({"timeout_rate": 1.0}, {"timeout": 0.2}, UpstreamTimeoutError, None),
}


@VENDORS
@pytest.mark.parametrize("fault", list(FAULTS))
async def test_upstream_failures_map_onto_the_error_tree(
    make: Make, sb: Sandbox, vendor_url: str, vendor: Vendor, fault: str
) -> None:
    knobs, options, error, status = FAULTS[fault]
    sb.knobs(vendor).update(knobs)
    connector = make(vendor, **options)
    with pytest.raises(error) as caught:
        await connector.fetch_page(connector.sources(ListQuery())[0], None)
    assert caught.value.vendor is vendor and caught.value.status == status
    if isinstance(caught.value, UpstreamRateLimitedError):
        assert caught.value.retry_after == 7
    assert_discreet(str(caught.value), vendor_url)


@VENDORS
async def test_a_vendor_that_cannot_be_reached_is_unavailable(make: Make, vendor: Vendor) -> None:
    url = closed_url()
    connector = make(vendor, base_url=url)
    with pytest.raises(UpstreamUnavailableError) as caught:
        await connector.fetch_page(connector.sources(ListQuery())[0], None)
    assert_discreet(str(caught.value), url)


BAD_BODIES: dict[Vendor, list[Any]] = {
    # Well-formed JSON in the wrong shape (the sandbox never answers these).
    Vendor.AGENTEX: [{"items": []}, None, "trackers"],
    Vendor.XPANDER: [
        [],
        {"total": 0, "total_pages": 0},
        {"items": {}, "total": 0, "total_pages": 0},
        {"items": [], "total": 0},
    ],
    Vendor.ORQ: [[], {"overall_total": 0}, {"tasks": [], "overall_total": "0"}],
    Vendor.SUBNOTO: [
        [],
        {"tasks": []},
        {"tasks": [], "pagination": {"totalRecords": 0, "nextPage": "2"}},
    ],
}


@VENDORS
async def test_a_page_in_the_wrong_shape_is_a_bad_response(make: Make, vendor: Vendor) -> None:
    for body in BAD_BODIES[vendor]:
        transport = httpx.MockTransport(lambda request, body=body: httpx.Response(200, json=body))
        connector = make(vendor, transport=transport)
        with pytest.raises(UpstreamBadResponseError):
            await connector.fetch_page(connector.sources(ListQuery())[0], None)


Break = tuple[tuple[str, ...], Any]
MISSING = object()
BREAKS: dict[Vendor, list[Break]] = {
    # (path to a field, its new value): each makes the item one the gateway cannot read.
    Vendor.AGENTEX: [
        (("id",), MISSING),
        (("task_id",), ""),
        (("agent_id",), None),
        (("created_at",), "yesterday"),
        (("created_at",), None),
        (("updated_at",), 1700000000000),
        (("status",), 3),
    ],
    Vendor.XPANDER: [
        (("id",), None),
        (("agent_id",), MISSING),
        (("created_at",), "2026-13-45T00:00:00Z"),
        (("title",), {"text": "a title"}),
        (("user_id",), 7),
    ],
    Vendor.ORQ: [
        (("_id",), MISSING),
        (("created",), "soon"),
        (("state",), "broken"),
        (("metrics", "total_tokens"), "many"),
        (("metrics",), [1, 2]),
    ],
    Vendor.SUBNOTO: [
        (("taskUuid",), None),
        (("latestReport",), MISSING),
        (("latestReport", "timestamp"), 1e20),  # past what a datetime holds
        (("latestReport", "timestamp"), None),
        (("latestReport", "state"), ["working"]),
        (("latestReport", "author"), "Ada"),
    ],
}
TO_RECORD: dict[Vendor, Callable[[Any], TaskRecord]] = {
    Vendor.AGENTEX: lambda item: agentex._to_record(item, AgentexConnector.STATUS_MAP),
    Vendor.XPANDER: xpander._to_record,
    Vendor.ORQ: lambda item: orq._to_record(item, "support-triage"),
    Vendor.SUBNOTO: subnoto._to_record,
}


def first_row(sb: Sandbox, vendor: Vendor) -> dict[str, Any]:
    """A row of the live store: a tracker, the first task of an agent, or Subnoto's first."""
    store = sb.store(vendor)
    rows = store if vendor is Vendor.SUBNOTO else list(store.values())
    row: dict[str, Any] = rows[0][0] if vendor in (Vendor.XPANDER, Vendor.ORQ) else rows[0]
    return row


def broken(row: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    item = copy.deepcopy(row)
    parent = item
    for key in path[:-1]:
        parent = parent[key]
    if value is MISSING:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return item


@VENDORS
async def test_an_item_that_cannot_be_read_is_skipped_and_counted(
    make: Make, sb: Sandbox, vendor: Vendor
) -> None:
    good = first_row(sb, vendor)
    items = [good, "not an item", [], *(broken(good, p, v) for p, v in BREAKS[vendor])]
    records, skipped = make(vendor).normalize(items, TO_RECORD[vendor])
    assert [r.raw for r in records] == [good] and skipped == len(items) - 1


SPOILERS: dict[Vendor, Break] = {
    # One row spoiled in the sandbox itself: still sortable there, unreadable here.
    Vendor.AGENTEX: (("created_at",), "not a time"),
    Vendor.XPANDER: (("created_at",), "not a time"),
    Vendor.ORQ: (("created",), "not a time"),
    Vendor.SUBNOTO: (("latestReport", "timestamp"), 10**20),
}


@VENDORS
async def test_an_unreadable_item_does_not_cost_its_page(
    make: Make, sb: Sandbox, vendor: Vendor
) -> None:
    row = first_row(sb, vendor)
    path, value = SPOILERS[vendor]
    holder = row["latestReport"] if len(path) == 2 else row
    original = holder[path[-1]]
    holder[path[-1]] = value
    sb.store(vendor).changed()
    try:
        connector = make(vendor)
        records: list[TaskRecord] = []
        skipped = 0
        for source in connector.sources(ListQuery()):
            got, pages = await read(connector, source)
            records += got
            skipped += sum(p.skipped for p in pages)
    finally:
        holder[path[-1]] = original
        sb.store(vendor).changed()
    assert skipped == 1 and len(records) == SIZE - 1


# -- offset pages: tokens and windows --------------------------------------------------------
def test_page_tokens_from_a_forged_cursor_are_refused_not_crashed() -> None:
    assert offset_page(None, 50) == (1, 50)
    assert offset_page(3, 50) == (3, 50)
    assert offset_page(window_token(4, 17), 50) == (4, 17)
    for forged in ("abc", "0x5", "3x0", "x", "-1x2", 0, -3, True, "3x", "1x2x3"):
        with pytest.raises(InvalidCursorError):
            offset_page(forged, 50)


@pytest.mark.parametrize("vendor", [Vendor.AGENTEX, Vendor.XPANDER, Vendor.SUBNOTO])
async def test_a_window_token_reads_exactly_those_rows(
    make: Make, sb: Sandbox, vendor: Vendor
) -> None:
    """``page`` of ``limit`` rows is rows ``(page-1)*limit ..`` of the listing: the same
    rows as the normal pages hold there (the merge re-reads tie groups this way)."""
    connector = make(vendor)
    source = connector.sources(ListQuery(order=Order(OrderField.CREATED_AT, Direction.DESC)))[0]
    first, second = await connector.fetch_page(source, None), await connector.fetch_page(source, 2)
    rows = [r.native_id for r in (*first.records, *second.records)]
    window = await connector.fetch_page(source, window_token(4, 17))
    assert [r.native_id for r in window.records] == rows[51:68]
