"""What only Agentex has: free-form, extensible statuses; tracker reads and writes (the
``TrackerWriter`` capability); Postgres' order with null ``updated_at`` first in ``desc``.
Against the sandbox over real loopback HTTP."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from gateway.core.contract import ListQuery
from gateway.core.errors import (
    NotFoundError,
    UpstreamAuthError,
    UpstreamOutcomeUnknownError,
    UpstreamRejectedError,
    UpstreamUnavailableError,
)
from gateway.core.records import Direction, Order, OrderField, TaskRecord, Vendor
from gateway.sandbox import Sandbox
from gateway.vendors.agentex import AgentexConnector
from gateway.vendors.base import Connector
from tests.vendors.conftest import Make
from tests.vendors.normalized import S, agentex_task, assert_discreet, closed_url, read_query


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


async def test_agentex_desc_lists_null_updated_at_first_and_asc_last(
    make: Make, sb: Sandbox
) -> None:
    """What the merge relies on: the vendor's real order, nulls included."""
    connector = make(Vendor.AGENTEX)
    nulls = sum(1 for t in sb.store(Vendor.AGENTEX).values() if t["updated_at"] is None)
    assert nulls, "the sandbox's default data has trackers without updated_at"
    for direction, first in ((Direction.DESC, True), (Direction.ASC, False)):
        [source] = connector.sources(ListQuery(order=Order(OrderField.UPDATED_AT, direction)))
        assert source.nulls_first is first
        records: list[TaskRecord] = []
        token = None
        while True:
            page = await connector.fetch_page(source, token)
            records += page.records
            if page.next_token is None:
                break
            token = page.next_token
        shown = [r.updated_at for r in records]
        null_part = shown[:nulls] if first else shown[-nulls:]
        assert null_part == [None] * nulls
        dated: list[datetime] = [t for t in shown if t is not None]
        assert dated == sorted(dated, reverse=direction is Direction.DESC)
