"""The four connectors against the sandbox over real loopback HTTP: one suite run for every
vendor, then what only one vendor has (Agentex's tracker writes, orq's derived status).

What a task must become is derived here from the sandbox's rows and ``VENDORS.md``, not
from the connectors, so a normalizer that drifts from the vendor's data shows up.
"""

from __future__ import annotations

import copy
import socket
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from gateway.core.errors import (
    NotFoundError,
    UpstreamAuthError,
    UpstreamBadResponseError,
    UpstreamError,
    UpstreamOutcomeUnknownError,
    UpstreamRateLimitedError,
    UpstreamRejectedError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)
from gateway.core.ids import TASK, TRACKER, encode_id
from gateway.core.records import (
    Direction,
    Order,
    OrderField,
    TaskMetrics,
    TaskRecord,
    TaskStatus,
    TrackerRecord,
    Vendor,
)
from gateway.core.statuses import AGENTEX_STATUS_MAP, SUBNOTO_STATUS_MAP, XPANDER_STATUS_MAP
from gateway.sandbox import Sandbox
from gateway.vendors import agentex, orq, subnoto, xpander
from gateway.vendors.agentex import AgentexConnector
from gateway.vendors.base import Connector, ListQuery, Source, SourcePage
from gateway.vendors.registry import CONNECTORS, connector_for, default_credentials
from tests.vendors.conftest import KEYS, SIZE, Make

S = TaskStatus
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


# -- reading --------------------------------------------------------------------------------


async def read(connector: Connector, source: Source) -> tuple[list[TaskRecord], list[SourcePage]]:
    """Every page of one source, following ``next_token`` to the end."""
    pages = [await connector.fetch_page(source, None)]
    while pages[-1].next_token is not None:
        pages.append(await connector.fetch_page(source, pages[-1].next_token))
    return [r for p in pages for r in p.records], pages


async def read_query(connector: Connector, query: ListQuery) -> list[TaskRecord]:
    records: list[TaskRecord] = []
    for source in connector.sources(query):
        records += (await read(connector, source))[0]
    return records


# -- what each sandbox row must become --------------------------------------------------------


def iso(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value).astimezone(UTC)


def agentex_task(row: dict[str, Any]) -> TaskRecord:
    vendor_status = row["status"]
    status = AGENTEX_STATUS_MAP.get((vendor_status or "").lower(), S.UNKNOWN)
    created, updated = iso(row["created_at"]), iso(row["updated_at"])
    assert created is not None
    agent, task = row["agent_id"], row["task_id"]
    tracker = TrackerRecord(
        native_id=row["id"],
        agent_id=agent,
        task_id=task,
        status=status,
        vendor_status=vendor_status,
        status_reason=row["status_reason"],
        last_processed_event_id=row["last_processed_event_id"],
        created_at=created,
        updated_at=updated,
        global_id=encode_id(TRACKER, Vendor.AGENTEX, agent, task, row["id"]),
    )
    return TaskRecord(
        vendor=Vendor.AGENTEX,
        native_id=task,
        global_id=encode_id(TASK, Vendor.AGENTEX, agent, task),
        agent_id=agent,
        status=status,
        vendor_status=vendor_status,
        title=None,
        summary=row["status_reason"],
        created_at=created,
        updated_at=updated,  # null stays null: never shown as the creation time
        tracker=tracker,
        raw=row,
    )


def xpander_task(row: dict[str, Any]) -> TaskRecord:
    created, updated = iso(row["created_at"]), iso(row["updated_at"])
    assert updated is not None
    return TaskRecord(
        vendor=Vendor.XPANDER,
        native_id=row["id"],
        global_id=encode_id(TASK, Vendor.XPANDER, row["agent_id"], row["id"]),
        agent_id=row["agent_id"],
        status=XPANDER_STATUS_MAP[row["status"]],
        vendor_status=row["status"],
        title=row["title"],
        summary=row["result"],
        created_at=created,
        updated_at=updated,
        user_id=row["user_id"],
        parent_native_id=row["parent_task_id"],
        triggering_agent_id=row["triggering_agent_id"],
        raw=row,
    )


def orq_derived(state: dict[str, Any]) -> tuple[str, TaskStatus]:
    """VENDORS.md's precedence: an error, then waiting for approval, then inactive."""
    if state.get("error"):
        return "errored", S.FAILED
    if state.get("waiting_for_approval"):
        return "approval_required", S.AWAITING_APPROVAL
    if state.get("inactive"):
        return "inactive", S.IDLE
    return "in_progress", S.RUNNING


def orq_task(agent: str, row: dict[str, Any]) -> TaskRecord:
    vendor_status, status = orq_derived(row["state"])
    created, updated = iso(row["created"]), iso(row["updated"])
    assert updated is not None
    metrics = row["metrics"]
    return TaskRecord(
        vendor=Vendor.ORQ,
        native_id=row["_id"],
        global_id=encode_id(TASK, Vendor.ORQ, agent, row["_id"]),
        agent_id=agent,
        status=status,
        vendor_status=vendor_status,
        title=row["name"],
        summary=row["state"]["error"],
        created_at=created,
        updated_at=updated,
        user_id=row["created_by_id"],
        metrics=TaskMetrics(
            **metrics, execution_time_seconds=row["state"]["accumulated_execution_time"]
        ),
        raw=row,
    )


def subnoto_task(row: dict[str, Any]) -> TaskRecord:
    report = row["latestReport"]
    return TaskRecord(
        vendor=Vendor.SUBNOTO,
        native_id=row["taskUuid"],
        global_id=encode_id(TASK, Vendor.SUBNOTO, "", row["taskUuid"]),
        agent_id=None,
        status=SUBNOTO_STATUS_MAP[report["state"]],
        vendor_status=report["state"],
        title=None,
        summary=report["summary"],
        created_at=None,
        updated_at=datetime.fromtimestamp(report["timestamp"] / 1000, UTC),
        user_id=report["author"]["uuid"],
        link=report.get("link"),
        raw=row,
    )


def expected(sb: Sandbox, vendor: Vendor) -> dict[str, TaskRecord]:
    """Every task of the vendor's live store as the gateway must normalize it, by native id."""
    store = sb.store(vendor)
    if vendor is Vendor.AGENTEX:
        tasks = [agentex_task(row) for row in store.values()]
    elif vendor is Vendor.XPANDER:
        tasks = [xpander_task(row) for rows in store.values() for row in rows]
    elif vendor is Vendor.ORQ:
        tasks = [orq_task(agent, row) for agent, rows in store.items() for row in rows]
    else:
        tasks = [subnoto_task(row) for row in store]
    return {t.native_id: t for t in tasks}


# -- the suite every vendor runs ----------------------------------------------------------------


def test_the_registry_names_one_connector_per_vendor() -> None:
    assert set(CONNECTORS) == set(Vendor)
    for vendor in Vendor:
        assert connector_for(vendor).vendor is vendor


def test_each_vendor_gets_its_key_in_its_own_header() -> None:
    assert xpander.default_credentials("k").headers() == {"x-api-key": "k"}
    for module in (agentex, orq, subnoto):
        assert module.default_credentials("k").headers() == {"Authorization": "Bearer k"}
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


async def test_xpander_filters_really_reach_xpander(make: Make, sb: Sandbox) -> None:
    connector = make(Vendor.XPANDER)
    tasks = expected(sb, Vendor.XPANDER).values()
    child = next(t for t in tasks if t.parent_native_id is not None)
    user = next(t.user_id for t in tasks if t.user_id is not None)
    assert child.parent_native_id is not None and child.triggering_agent_id is not None
    for query, want in (
        (
            ListQuery(parent_task_id=child.parent_native_id),
            {t.native_id for t in tasks if t.parent_native_id == child.parent_native_id},
        ),
        (
            ListQuery(triggering_agent_id=child.triggering_agent_id),
            {t.native_id for t in tasks if t.triggering_agent_id == child.triggering_agent_id},
        ),
        (ListQuery(user_id=user), {t.native_id for t in tasks if t.user_id == user}),
    ):
        assert {r.native_id for r in await read_query(connector, query)} == want


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


def assert_discreet(message: str, url: str) -> None:
    """An error a client may see names no key and no upstream address."""
    for secret in (*KEYS.values(), "wrong-key"):
        assert secret not in message
    assert url.split("//")[1] not in message and "://" not in message


def closed_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


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
    Vendor.AGENTEX: lambda item: agentex._to_record(item, AGENTEX_STATUS_MAP),
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


# -- Agentex ------------------------------------------------------------------------------------


async def test_agentex_statuses_are_case_insensitive_and_extensible(make: Make) -> None:
    connector = make(Vendor.AGENTEX, extra_status_map={"Reticulating": S.RUNNING})
    records = await read_query(connector, ListQuery())
    by_value = {(r.vendor_status or "").lower(): r.status for r in records}
    assert by_value["reticulating"] is S.RUNNING  # the operator's extension
    assert by_value["in_progress"] is S.RUNNING and by_value["on_hold"] is S.UNKNOWN
    assert by_value[""] is S.UNKNOWN  # a null status
    assert {r.status for r in records if r.vendor_status == "COMPLETED"} == {S.COMPLETED}


def trackers(sb: Sandbox) -> list[dict[str, Any]]:
    return sorted(sb.store(Vendor.AGENTEX).values(), key=lambda t: t["id"])


def agentex_connector(make: Make) -> AgentexConnector:
    connector = make(Vendor.AGENTEX)
    assert isinstance(connector, AgentexConnector)
    return connector


async def test_get_tracker_reads_one_tasks_tracker(make: Make, sb: Sandbox) -> None:
    connector = agentex_connector(make)
    row = trackers(sb)[0]
    found = await connector.get_tracker(row["agent_id"], row["task_id"])
    assert found == agentex_task(row).tracker
    assert await connector.get_tracker(row["agent_id"], "no-such-task") is None
    assert await connector.get_tracker("", "") is None


async def test_update_tracker_writes_status_and_reason_as_sent(make: Make, sb: Sandbox) -> None:
    connector = agentex_connector(make)
    row = trackers(sb)[1]
    cursor = row["last_processed_event_id"]
    updated = await connector.update_tracker(
        row["id"], status="Paused", status_reason="Paused by a test", last_processed_event_id=None
    )
    assert updated == agentex_task(row).tracker  # the answer is the stored tracker
    assert (updated.status, updated.vendor_status) == (S.PAUSED, "Paused")
    assert updated.status_reason == "Paused by a test"
    assert updated.last_processed_event_id == cursor  # not sent: kept
    assert updated.updated_at is not None and updated.updated_at.utcoffset() == timedelta(0)
    cleared = await connector.update_tracker(
        row["id"], status="Paused", status_reason=None, last_processed_event_id=None
    )
    assert cleared.status_reason is None and row["status_reason"] is None


async def test_update_tracker_always_sends_status_and_reason(make: Make, sb: Sandbox) -> None:
    sent: list[httpx.Request] = []
    answer = trackers(sb)[2]

    def vendor(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json=answer)

    connector = make(Vendor.AGENTEX, transport=httpx.MockTransport(vendor))
    assert isinstance(connector, AgentexConnector)
    await connector.update_tracker(
        "a/b", status="done", status_reason=None, last_processed_event_id=None
    )
    await connector.update_tracker(
        "a/b", status=None, status_reason="why", last_processed_event_id="e1"
    )
    assert [r.method for r in sent] == ["PUT", "PUT"]
    assert sent[0].url.raw_path.endswith(b"/tracker/a%2Fb")
    assert [httpx.Response(200, content=r.content).json() for r in sent] == [
        {"status": "done", "status_reason": None},
        {"status": None, "status_reason": "why", "last_processed_event_id": "e1"},
    ]


async def test_update_tracker_moves_the_event_cursor_forward_only(make: Make, sb: Sandbox) -> None:
    connector = agentex_connector(make)
    store = sb.store(Vendor.AGENTEX)
    row = next(t for t in trackers(sb) if len(store.events[t["task_id"]]) >= 2)
    events = store.events[row["task_id"]]
    current = {"status": row["status"], "status_reason": row["status_reason"]}
    moved = await connector.update_tracker(row["id"], **current, last_processed_event_id=events[-1])
    assert moved.last_processed_event_id == events[-1]
    with pytest.raises(UpstreamRejectedError) as caught:
        await connector.update_tracker(row["id"], **current, last_processed_event_id=events[0])
    assert caught.value.status == 400
    assert str(caught.value).startswith("agentex refused the update: Cannot move cursor backwards")
    assert row["last_processed_event_id"] == events[-1]


async def test_update_tracker_reports_fastapis_validation_briefly(make: Make, sb: Sandbox) -> None:
    connector = agentex_connector(make)
    with pytest.raises(UpstreamRejectedError) as caught:
        await connector.update_tracker(
            trackers(sb)[3]["id"],
            status=5,  # type: ignore[arg-type]
            status_reason=None,
            last_processed_event_id=None,
        )
    assert caught.value.status == 422
    assert str(caught.value) == "agentex refused the update: status: Input should be a valid string"


async def test_update_of_an_unknown_tracker_is_not_found(make: Make) -> None:
    with pytest.raises(NotFoundError):
        await agentex_connector(make).update_tracker(
            "no-such-tracker", status="done", status_reason=None, last_processed_event_id=None
        )


async def test_update_tracker_failures(make: Make, sb: Sandbox, vendor_url: str) -> None:
    row = trackers(sb)[4]
    before = dict(row)

    async def put(connector: Connector) -> None:
        assert isinstance(connector, AgentexConnector)
        await connector.update_tracker(
            row["id"], status="done", status_reason=None, last_processed_event_id=None
        )

    knobs = sb.knobs(Vendor.AGENTEX)
    knobs.timeout_rate = 1.0  # the request went out; no answer came back
    with pytest.raises(UpstreamOutcomeUnknownError) as unknown:
        await put(make(Vendor.AGENTEX, timeout=0.2))
    knobs.timeout_rate = 0.0
    assert "read the tracker back" in str(unknown.value)
    knobs.fail_next = 1
    with pytest.raises(UpstreamUnavailableError):
        await put(make(Vendor.AGENTEX))
    with pytest.raises(UpstreamAuthError):
        await put(make(Vendor.AGENTEX, secret="wrong-key"))
    url = closed_url()
    with pytest.raises(UpstreamUnavailableError) as unreachable:
        await put(make(Vendor.AGENTEX, base_url=url))
    assert row == before  # none of them reached the tracker
    for caught in (unknown, unreachable):
        assert_discreet(str(caught.value), vendor_url)


# -- orq ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "vendor_status", "status"),
    [
        ({"error": "boom", "waiting_for_approval": True, "inactive": True}, "errored", S.FAILED),
        (
            {"error": None, "waiting_for_approval": True, "inactive": True},
            "approval_required",
            S.AWAITING_APPROVAL,
        ),
        ({"error": "", "waiting_for_approval": False, "inactive": True}, "inactive", S.IDLE),
        ({"waiting_for_approval": False, "inactive": False}, "in_progress", S.RUNNING),
    ],
)
def test_orq_derives_the_status_from_state_in_precedence(
    state: dict[str, Any], vendor_status: str, status: TaskStatus
) -> None:
    item = {"_id": "01JJ1HDHN79XAS7A01WB3HYSDB", "created": "2026-01-01T00:00:00.000Z"}
    record = orq._to_record({**item, "state": state}, "support-triage")
    assert (record.vendor_status, record.status) == (vendor_status, status)
    assert record.summary == (state.get("error") or None)
    assert record.created_at == datetime(2026, 1, 1, tzinfo=UTC)
    assert record.updated_at is None  # no ``updated``: shown as null, not as ``created``


async def test_orq_continues_after_the_last_id_a_full_page_has(make: Make, sb: Sandbox) -> None:
    rows = next(iter(sb.store(Vendor.ORQ).values()))[:200]
    for page, cursor in (
        ([*rows[:199], {"name": "no id"}], rows[198]["_id"]),
        ([{"name": "no id"}] * 200, None),
    ):
        body = {"tasks": page, "overall_total": 1000}
        transport = httpx.MockTransport(lambda request, body=body: httpx.Response(200, json=body))
        connector = make(Vendor.ORQ, transport=transport)
        source = connector.sources(ListQuery())[0]
        if cursor is None:
            with pytest.raises(UpstreamBadResponseError):
                await connector.fetch_page(source, None)
        else:
            result = await connector.fetch_page(source, None)
            assert (result.next_token, result.skipped, result.total) == (cursor, 1, 1000)
