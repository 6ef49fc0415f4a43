from __future__ import annotations

import heapq
from collections.abc import Callable
from functools import partial
from operator import itemgetter
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.core.records import Vendor
from gateway.sandbox.common import (
    ApiKey,
    Clock,
    Invalid,
    QueryReader,
    json_response,
    page_slice,
    pydantic_error,
    vendor_app,
)
from gateway.sandbox.data import (
    AGENTS_PER_VENDOR,
    Row,
    Store,
    iso_micro,
    sortable_time,
    uuid4,
)
from gateway.sandbox.knobs import Knobs
from gateway.sandbox.simulator import Setup, StoreSimulator

FIELDS = (  # the tracker's columns, which are also the ORM attributes ``order_by`` may name
    "id",
    "agent_id",
    "task_id",
    "status",
    "status_reason",
    "last_processed_event_id",
    "created_at",
    "updated_at",
)
TIME_COLUMNS = frozenset({"created_at", "updated_at"})
TIE_COLUMNS = ("updated_at", "created_at")  # after order_by, and all there is without one
WRITABLE = ("status", "status_reason", "last_processed_event_id")

# The status is free text. VENDORS.md lists the values deployments write, by meaning; the
# data uses each of them, other casings, values no table knows, and null (a new tracker).
PENDING = ("pending", "queued", "created", "scheduled")
RUNNING = ("running", "processing", "in_progress", "active", "working")
DOCUMENTED = (
    *PENDING,
    *RUNNING,
    "paused",
    "awaiting_approval",
    "waiting_for_approval",
    "idle",
    "completed",
    "complete",
    "done",
    "succeeded",
    "success",
    "failed",
    "failure",
    "error",
    "errored",
    "cancelled",
    "canceled",
    "stopped",
)
STATUSES: tuple[str | None, ...] = (
    *DOCUMENTED,
    "Running",
    "COMPLETED",
    "Failed",
    "In_Progress",
    "reticulating",
    "on_hold",
    None,
    None,
)
REASONS = (
    "Queued behind other tasks",
    "Processing new events",
    "Waiting for a human to approve a tool call",
    "No new events",
    "All events processed",
    "Tool call timed out",
)
NULL_UPDATED_EVERY = 13  # legacy rows: no updated_at
NO_CURSOR_EVERY = 9  # a tracker that has processed nothing yet


class TrackerStore(Store, dict[str, Row]):
    """Trackers by tracker id, in the order they were written (the database's order for
    rows tied on every sort column). ``events`` holds each task's event ids in order: the
    values a tracker's ``last_processed_event_id`` may take, never moving back."""

    def __init__(self, clock: Clock) -> None:
        super().__init__(clock)
        self.events: dict[str, list[str]] = {}

    def put(self, records: list[Row]) -> None:
        """Loaded trackers: each named cursor becomes its task's only event."""
        self.clear()
        self.events.clear()
        for tracker in records:
            self[tracker["id"]] = tracker
            event = tracker.get("last_processed_event_id")
            self.events[tracker["task_id"]] = [event] if event else []
        self.changed()


class Agentex(StoreSimulator):
    """The Agentex simulator (see the module docstring)."""

    vendor = Vendor.AGENTEX

    def __init__(self, setup: Setup) -> None:
        rng = setup.rng("agents")
        agents = [uuid4(rng) for _ in range(AGENTS_PER_VENDOR)]
        store = generate(TrackerStore(setup.clock), agents, setup)
        header, scheme = setup.key_style or ("authorization", "Bearer")
        app = create_app(store, setup.knobs, setup.secret, header=header, scheme=scheme)
        super().__init__(setup, agents, store, app, partial(advance, store))


def generate(store: TrackerStore, agents: list[str], setup: Setup) -> TrackerStore:
    rng, moments = setup.rng("data"), setup.moments
    for i in range(setup.size):
        created = moments.created(i, rng)
        status = STATUSES[i % len(STATUSES)]
        task_id = uuid4(rng)
        events = [uuid4(rng) for _ in range(1 + int(rng.random() * 5))]
        store.events[task_id] = events
        tracker_id = uuid4(rng)
        updated = moments.updated(i, created, rng)
        store[tracker_id] = {
            "id": tracker_id,
            "agent_id": agents[i % len(agents)],
            "task_id": task_id,
            "status": status,
            "status_reason": None if status is None or i % 4 == 3 else REASONS[i % len(REASONS)],
            "last_processed_event_id": None if i % NO_CURSOR_EVERY == 4 else rng.choice(events),
            "created_at": iso_micro(created),
            "updated_at": None if i % NULL_UPDATED_EVERY == 6 else iso_micro(updated),
        }
    return store


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
            Route("/tracker", partial(list_trackers, store, knobs), methods=["GET"]),
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


async def list_trackers(store: TrackerStore, knobs: Knobs, request: Request) -> Response:
    query = QueryReader(request)
    limit = query.integer("limit", 50, ge=1)
    page = query.integer("page_number", 1, ge=1)
    try:
        query.done()
    except Invalid as exc:
        return exc.response()
    params = request.query_params
    order_by = params.get("order_by")
    columns = (order_by, "updated_at", "created_at") if order_by in FIELDS else TIE_COLUMNS
    descending = params.get("order_direction", "desc").lower() == "desc"
    agent_id, task_id = params.get("agent_id") or None, params.get("task_id") or None
    keyed = store.views.get(
        ("list", columns, descending, agent_id, task_id),
        lambda: _sorted(store, columns, descending, agent_id, task_id),
    )
    start = (page - 1) * limit
    rows = page_slice(keyed, start, start + limit, knobs, itemgetter(0))
    return json_response([row for _, row in rows])


def _sorted(
    store: TrackerStore,
    columns: tuple[str, ...],
    descending: bool,
    agent_id: str | None,
    task_id: str | None,
) -> list[tuple[Any, Row]]:
    """``(sort key, tracker)`` pairs in the listing's order; the keys let a page find the
    rows tied with its first and last."""
    keys = [_column_key(column) for column in columns]
    keyed = [
        (tuple(key(t) for key in keys), t)
        for t in store.values()
        if (agent_id is None or t["agent_id"] == agent_id)
        and (task_id is None or t["task_id"] == task_id)
    ]
    keyed.sort(key=itemgetter(0), reverse=descending)  # stable: ties keep the stored order
    return keyed


def _column_key(column: str) -> Callable[[Row], tuple[bool, Any]]:
    """``(is null, value)``: a NULL sorts after every value, as in Postgres, so it comes
    last ascending and first descending. Times compare as times, not as text."""
    if column in TIME_COLUMNS:

        def moment(row: Row) -> tuple[bool, Any]:
            value = sortable_time(row.get(column))
            return (value is None, value or "")

        return moment

    def text(row: Row) -> tuple[bool, Any]:
        value = row.get(column)
        return (value is None, "" if value is None else str(value))

    return text


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
    live = (t for t in store.values() if _step(t["status"]) is not None)
    moving = heapq.nsmallest(
        count, live, key=lambda t: (t["updated_at"] or t["created_at"], t["id"])
    )
    now = iso_micro(store.clock.now())
    for tracker in moving:
        tracker["status"] = _step(tracker["status"])
        tracker["updated_at"] = now
    store.changed()
    return len(moving)


def _step(status: str | None) -> str | None:
    """The next status of a live tracker (its value read case-insensitively), else None."""
    value = (status or "").lower()
    if value in PENDING:
        return "running"
    return "completed" if value in RUNNING else None
