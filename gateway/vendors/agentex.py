"""Scale Agentex task trackers: each tracker is one Task, and that task's ``tracker``.

A tracker's ``status`` is free-form (mapped case-insensitively, extensible by the operator),
and the list has no total: a page shorter than ``limit`` is the last. Agentex sorts by any
column server-side (Postgres: ``ORDER BY <order_by> dir, updated_at dir, created_at dir``,
no NULLS clause, no id tiebreaker, ``page_number`` an offset), so every listing streams in
the query's own order, with two caveats the merge handles: a null ``updated_at`` comes
*first* in ``desc`` (``Source.nulls_first``), and tied rows may swap places between two
requests (``PageWindows``; ``limit`` has no maximum).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import quote

import httpx
import orjson

from gateway.core.contract import Credentials, ListQuery, PageToken, PageWindows, Source, SourcePage
from gateway.core.errors import NotFoundError, UpstreamBadResponseError, UpstreamRejectedError
from gateway.core.ids import TASK, TRACKER, encode_id
from gateway.core.records import OrderField, TaskRecord, TaskStatus, TrackerRecord, Vendor
from gateway.core.statuses import map_status
from gateway.vendors.base import (
    Connector,
    decode_json,
    raise_for_status,
    required,
    required_time,
    text,
    time_field,
)

PATH = "/tracker"
BAD_SHAPE = "agentex answered with an unexpected shape"
ORDER_COLUMNS = {OrderField.UPDATED_AT: "updated_at", OrderField.CREATED_AT: "created_at"}
MAX_DETAIL_CHARS = 200
LINK = re.compile(r"\w+://\S+")
S = TaskStatus
STATUSES: Mapping[str, TaskStatus] = {
    # Free-form values, matched case-insensitively (VENDORS.md); ``status_map`` in the
    # configuration adds more.
    **dict.fromkeys(["pending", "queued", "created", "scheduled"], S.PENDING),
    **dict.fromkeys(["running", "processing", "in_progress", "active", "working"], S.RUNNING),
    "paused": S.PAUSED,
    **dict.fromkeys(["awaiting_approval", "waiting_for_approval"], S.AWAITING_APPROVAL),
    "idle": S.IDLE,
    **dict.fromkeys(["completed", "complete", "done", "succeeded", "success"], S.COMPLETED),
    **dict.fromkeys(["failed", "failure", "error", "errored"], S.FAILED),
    **dict.fromkeys(["cancelled", "canceled", "stopped"], S.CANCELLED),
}


class AgentexConnector(Connector):
    vendor = Vendor.AGENTEX
    page_size = 50  # a page of results reads little; streaming covers every order
    exact_filters: ClassVar[frozenset[str]] = frozenset({"agent_ids", "native_id"})
    LABEL = "Agentex"
    DESCRIPTION = "Scale Agentex: task trackers (`GET /tracker`)."
    KEY_REQUIRED = False  # its spec has no auth; deployments put a bearer key in front of it
    STATUS_MAP = STATUSES
    EXTENSIBLE_STATUSES = True

    def sources(self, query: ListQuery) -> list[Source]:
        if (
            query.user_id is not None
            or query.parent_task_id is not None
            or query.triggering_agent_id is not None
        ):
            return []  # trackers have no user and no parent
        # No status parameter: the values are free-form, so the merge filters.
        common = {
            "order_by": ORDER_COLUMNS[query.order.field],
            "order_direction": "desc" if query.order.descending else "asc",
            "task_id": query.native_id,
        }
        agents = sorted(query.agent_ids) if query.agent_ids is not None else [None]
        # ``created_at`` is never null (a tracker without it is unreadable), so only an
        # ``updated_at`` order in ``desc`` puts nulls first.
        nulls_first = query.order.field is OrderField.UPDATED_AT and query.order.descending
        return [
            self.source(PATH, True, nulls_first=nulls_first, agent_id=agent, **common)
            for agent in agents
        ]

    def windows(self, source: Source) -> PageWindows:
        """Rows tie when equal on every ``ORDER BY`` column (``<order_by>, updated_at,
        created_at``, so the two times); ``limit`` has no maximum."""
        return self.tie_windows(None, _both_times)

    async def fetch_page(
        self, source: Source, token: PageToken, credentials: Credentials | None = None
    ) -> SourcePage:
        page, limit = self.offset_page(token)
        params = {**dict(source.params), "limit": limit, "page_number": page}
        body = await self.request_json("GET", PATH, credentials=credentials, params=params)
        if not isinstance(body, list):
            raise UpstreamBadResponseError(self.vendor, BAD_SHAPE)
        records, skipped = self.normalize(body, lambda item: _to_record(item, self.status_map))
        return SourcePage(
            records,
            next_token=page + 1 if len(body) >= limit else None,
            skipped=skipped,
        )

    async def get_tracker(
        self, agent_id: str, task_id: str, credentials: Credentials | None = None
    ) -> TrackerRecord | None:
        """The current tracker of one task: a partial update starts from its values."""
        if not agent_id or not task_id:
            return None  # Agentex reads an empty filter as no filter at all
        params = {"agent_id": agent_id, "task_id": task_id, "limit": 1}
        body = await self.request_json("GET", PATH, credentials=credentials, params=params)
        if not isinstance(body, list):
            raise UpstreamBadResponseError(self.vendor, BAD_SHAPE)
        if not body:
            return None
        tracker = self._tracker_from(body[0])
        if (tracker.agent_id, tracker.task_id) != (agent_id, task_id):
            return None
        return tracker

    async def update_tracker(
        self,
        tracker_id: str,
        *,
        status: str | None,
        status_reason: str | None,
        last_processed_event_id: str | None,
        credentials: Credentials | None = None,
    ) -> TrackerRecord:
        """PUT a tracker. Agentex writes ``status`` and ``status_reason`` exactly as sent (one
        left out becomes null), so both always go: the caller passes the current value of a
        field it does not change. A missing ``last_processed_event_id`` keeps the cursor."""
        body: dict[str, str | None] = {"status": status, "status_reason": status_reason}
        if last_processed_event_id is not None:
            body["last_processed_event_id"] = last_processed_event_id
        response = await self.send(
            "PUT",
            f"{PATH}/{quote(tracker_id, safe='')}",
            credentials=credentials,
            json=body,
            writes="tracker",
        )
        # Checked before ``raise_for_status``, which would drop the vendor's reason for a
        # 4xx: the one thing a caller needs to fix a refused update.
        if response.status_code == 404:
            raise NotFoundError("no such Agentex tracker")
        if response.status_code in (400, 422):
            raise UpstreamRejectedError(
                self.vendor,
                f"agentex refused the update: {_detail(response)}",
                status=response.status_code,
            )
        raise_for_status(self.vendor, response)
        return self._tracker_from(decode_json(self.vendor, response))

    def _tracker_from(self, item: Any) -> TrackerRecord:
        try:
            return _to_tracker(item, self.status_map)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise UpstreamBadResponseError(self.vendor, BAD_SHAPE) from exc


def _both_times(record: TaskRecord) -> tuple[datetime | None, datetime | None]:
    return record.updated_at, record.created_at


def _to_record(item: dict[str, Any], status_map: Mapping[str, TaskStatus]) -> TaskRecord:
    tracker = _to_tracker(item, status_map)
    return TaskRecord(
        vendor=Vendor.AGENTEX,
        native_id=tracker.task_id,
        global_id=encode_id(TASK, Vendor.AGENTEX, tracker.agent_id, tracker.task_id),
        agent_id=tracker.agent_id,
        status=tracker.status,
        vendor_status=tracker.vendor_status,
        title=None,
        summary=tracker.status_reason,
        created_at=tracker.created_at,
        updated_at=tracker.updated_at,  # null stays null: it sorts last, never as created_at
        tracker=tracker,
        raw=item,
    )


def _to_tracker(item: dict[str, Any], status_map: Mapping[str, TaskStatus]) -> TrackerRecord:
    tracker_id = required(item, "id")
    agent_id = required(item, "agent_id")
    task_id = required(item, "task_id")
    vendor_status = text(item, "status")
    return TrackerRecord(
        native_id=tracker_id,
        agent_id=agent_id,
        task_id=task_id,
        status=map_status(status_map, vendor_status),
        vendor_status=vendor_status,
        status_reason=text(item, "status_reason"),
        last_processed_event_id=text(item, "last_processed_event_id"),
        created_at=required_time(item, "created_at"),  # a column of every ORDER BY
        updated_at=time_field(item, "updated_at"),
        global_id=encode_id(TRACKER, Vendor.AGENTEX, agent_id, task_id, tracker_id),
    )


def _detail(response: httpx.Response) -> str:
    """Agentex's reason, short and without links: 400 ``{"detail": "..."}`` or FastAPI's 422
    ``{"detail": [{"loc": [...], "msg": "..."}]}``."""
    try:
        detail = orjson.loads(response.content).get("detail")
    except (orjson.JSONDecodeError, AttributeError):
        detail = None
    if isinstance(detail, list):
        detail = "; ".join(_issue(e) for e in detail if isinstance(e, dict))
    if not isinstance(detail, str) or not detail:
        return f"HTTP {response.status_code}"
    detail = LINK.sub("<link>", detail)
    return detail if len(detail) <= MAX_DETAIL_CHARS else detail[: MAX_DETAIL_CHARS - 1] + "…"


def _issue(error: dict[str, Any]) -> str:
    """One FastAPI validation error as ``field: message`` (its ``body.`` prefix dropped)."""
    loc = error.get("loc")
    field = ".".join(str(p) for p in loc[1:]) if isinstance(loc, list) else ""
    return f"{field}: {error.get('msg')}" if field else str(error.get("msg"))
