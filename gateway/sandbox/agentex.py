"""Scale Agentex task trackers, ``GET /tracker`` and ``PUT /tracker/{tracker_id}``, answered
as the open-source server (scale-agentex) answers them:

- The list is a bare array paged by ``limit``/``page_number``, with no total. ``order_by``
  names a tracker column (an unknown name is ignored, like the repository's
  ``hasattr(orm, order_by)``), then ``updated_at`` and ``created_at`` follow in the same
  direction, NULLs where Postgres puts them (last ascending, first descending), and the id
  breaks what ties remain so pages never overlap. ``order_direction`` descends for "desc" in
  any case and ascends for anything else; empty ``agent_id``/``task_id`` filter nothing.
- A PUT always writes ``status`` and ``status_reason`` as sent (omitted means null). A
  missing or null ``last_processed_event_id`` keeps the cursor; a named one must be one of
  the task's events, not before the current one, else 400 ``{"detail": str}``.
- A body FastAPI would refuse is 422 with pydantic's errors, checked before the tracker is
  looked up; an unknown tracker is 404 ``{"detail": str}``.
"""

from __future__ import annotations

import heapq
from functools import partial
from operator import itemgetter
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.core.records import TaskStatus
from gateway.core.statuses import AGENTEX_STATUS_MAP, map_status
from gateway.sandbox.common import (
    ApiKey,
    Invalid,
    QueryReader,
    json_response,
    pydantic_error,
    vendor_app,
)
from gateway.sandbox.data import Row, TrackerStore, iso_micro
from gateway.sandbox.knobs import Knobs

FIELDS = (
    "id",
    "agent_id",
    "task_id",
    "status",
    "status_reason",
    "last_processed_event_id",
    "created_at",
    "updated_at",
)
THEN = itemgetter("updated_at", "created_at", "id")  # after order_by; never null here
WRITABLE = ("status", "status_reason", "last_processed_event_id")
STEPS = {TaskStatus.PENDING: "running", TaskStatus.RUNNING: "completed"}


def create_app(
    store: TrackerStore,
    knobs: Knobs,
    credentials: str | None,
    *,
    header: str = "authorization",
    scheme: str | None = "Bearer",
) -> Starlette:
    """No key by default, as the open-source server; with one, it is required in ``header``
    (as ``<scheme> <key>`` unless ``scheme`` is None), like the proxy a deployment adds."""
    return vendor_app(
        [
            Route("/tracker", partial(list_trackers, store), methods=["GET"]),
            Route("/tracker/{tracker_id}", partial(update_tracker, store), methods=["PUT"]),
        ],
        knobs=knobs,
        key=ApiKey(credentials, header, scheme),
        error=error,
        unauthorized=lambda request: error(request, 401, "Missing or invalid API key"),
        advance=partial(advance, store),
    )


def error(request: Request, status: int, message: str) -> Response:
    return json_response({"detail": message}, status)


async def list_trackers(store: TrackerStore, request: Request) -> Response:
    query = QueryReader(request)
    limit = query.integer("limit", 50, ge=1)
    page = query.integer("page_number", 1, ge=1)
    try:
        query.done()
    except Invalid as exc:
        return exc.response()
    params = request.query_params
    order_by = params.get("order_by")
    column = order_by if order_by in FIELDS else None
    descending = params.get("order_direction", "desc").lower() == "desc"
    agent_id, task_id = params.get("agent_id") or None, params.get("task_id") or None
    rows = store.views.get(
        ("list", column, descending, agent_id, task_id),
        lambda: _sorted(store, column, descending, agent_id, task_id),
    )
    start = (page - 1) * limit
    return json_response(rows[start : start + limit])


def _sorted(
    store: TrackerStore,
    column: str | None,
    descending: bool,
    agent_id: str | None,
    task_id: str | None,
) -> list[Row]:
    rows = [
        t
        for t in store.values()
        if (agent_id is None or t["agent_id"] == agent_id)
        and (task_id is None or t["task_id"] == task_id)
    ]
    if column is None:
        rows.sort(key=THEN, reverse=descending)
    else:  # (is null, value): a NULL sorts after every value, as in Postgres
        rows.sort(key=lambda t: (t[column] is None, t[column] or "", THEN(t)), reverse=descending)
    return rows


async def update_tracker(store: TrackerStore, request: Request) -> Response:
    try:
        body = _update_body(await request.body())
    except Invalid as exc:
        return exc.response()
    tracker_id = request.path_params["tracker_id"]
    tracker = store.get(tracker_id)
    if tracker is None:
        return error(request, 404, f"Item with id '{tracker_id}' does not exist.")
    event = body.get("last_processed_event_id")
    if event is not None:
        events = store.events.get(tracker["task_id"], [])
        if event not in events:
            return error(request, 400, f"Event with ID {event} not found")
        current = tracker["last_processed_event_id"]
        new, old = events.index(event), events.index(current) if current in events else -1
        if new < old:
            return error(
                request,
                400,
                f"Cannot move cursor backwards: new sequence ID {new + 1} "
                f"< current sequence ID {old + 1}",
            )
        tracker["last_processed_event_id"] = event
    tracker["status"] = body.get("status")
    tracker["status_reason"] = body.get("status_reason")
    tracker["updated_at"] = iso_micro(store.clock.now())
    store.changed()
    return json_response(tracker)


def _update_body(raw: bytes) -> dict[str, Any]:
    """The body as FastAPI validates ``UpdateAgentTaskTrackerRequest`` (extra keys ignored)."""
    if not raw.strip():
        raise Invalid([pydantic_error(["body"], "missing", "Field required", None)])
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise Invalid(
            [
                pydantic_error(
                    ["body", exc.pos], "json_invalid", "JSON decode error", {}, error=exc.msg
                )
            ]
        ) from None
    if not isinstance(body, dict):
        msg = "Input should be a valid dictionary or object to extract fields from"
        raise Invalid([pydantic_error(["body"], "model_attributes_type", msg, body)])
    wrong = [
        pydantic_error(["body", name], "string_type", "Input should be a valid string", body[name])
        for name in WRITABLE
        if body.get(name) is not None and not isinstance(body[name], str)
    ]
    if wrong:
        raise Invalid(wrong)
    return body


def advance(store: TrackerStore, count: int) -> int:
    """Move up to ``count`` live trackers one step on (pending, running, completed), the
    longest untouched first, as an agent working through its queue would."""
    live = (t for t in store.values() if map_status(AGENTEX_STATUS_MAP, t["status"]) in STEPS)
    moving = heapq.nsmallest(count, live, key=lambda t: (t["updated_at"], t["id"]))
    now = iso_micro(store.clock.now())
    for tracker in moving:
        tracker["status"] = STEPS[map_status(AGENTEX_STATUS_MAP, tracker["status"])]
        tracker["updated_at"] = now
    store.changed()
    return len(moving)
