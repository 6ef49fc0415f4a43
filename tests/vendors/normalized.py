"""What each sandbox row must become, and how to read a connector to the end: the oracle
the connector tests compare against.

Derived here from the sandbox's rows and ``shared/vendors/VENDORS.md`` (its status table is
copied below, not imported from the connectors), so a normalizer that drifts from the
vendor's data or documentation shows up.
"""

from __future__ import annotations

import socket
from datetime import UTC, datetime
from typing import Any

from gateway.core.contract import ListQuery, Source, SourcePage
from gateway.core.ids import TASK, TRACKER, encode_id
from gateway.core.records import TaskMetrics, TaskRecord, TaskStatus, TrackerRecord, Vendor
from gateway.sandbox import Sandbox
from gateway.vendors.base import Connector
from tests.vendors.conftest import KEYS

S = TaskStatus
AGENTEX_STATUSES: dict[str, TaskStatus] = {
    # VENDORS.md, "The shared status": Agentex's column (matched case-insensitively).
    **dict.fromkeys(["pending", "queued", "created", "scheduled"], S.PENDING),
    **dict.fromkeys(["running", "processing", "in_progress", "active", "working"], S.RUNNING),
    "paused": S.PAUSED,
    **dict.fromkeys(["awaiting_approval", "waiting_for_approval"], S.AWAITING_APPROVAL),
    "idle": S.IDLE,
    **dict.fromkeys(["completed", "complete", "done", "succeeded", "success"], S.COMPLETED),
    **dict.fromkeys(["failed", "failure", "error", "errored"], S.FAILED),
    **dict.fromkeys(["cancelled", "canceled", "stopped"], S.CANCELLED),
}
XPANDER_STATUSES: dict[str, TaskStatus] = {
    # VENDORS.md: xpander's column.
    "pending": S.PENDING,
    "executing": S.RUNNING,
    "paused": S.PAUSED,
    "completed": S.COMPLETED,
    "error": S.FAILED,
    "failed": S.FAILED,
    "stopped": S.CANCELLED,
}
SUBNOTO_STATUSES = {
    "working": S.RUNNING,
    "idle": S.IDLE,
    "complete": S.COMPLETED,
    "failure": S.FAILED,
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
    status = AGENTEX_STATUSES.get((vendor_status or "").lower(), S.UNKNOWN)
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
        status=XPANDER_STATUSES[row["status"]],
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
        status=SUBNOTO_STATUSES[report["state"]],
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
