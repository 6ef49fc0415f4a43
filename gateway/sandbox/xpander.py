"""xpander.ai ``GET /v1/agents/{agent_id}/tasks``, a FastAPI service: ``page`` >= 1,
``per_page`` 1..50 (default 20), filters ``user_id``, ``parent_task_id``,
``triggering_agent_id``, ``status`` (one value of its enum) and ``internal_status``; newest
first by ``created_at``, the id breaking ties; ``{items, total, page, per_page,
total_pages}``. An unknown agent simply has no tasks. Bad parameters are FastAPI's 422; a
missing or wrong ``x-api-key`` is 401 ``{"detail": str}``.
"""

from __future__ import annotations

import heapq
import math
from functools import partial

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.sandbox.common import ApiKey, Invalid, QueryReader, json_response, vendor_app
from gateway.sandbox.data import XPANDER_INTERNAL, XPANDER_STATUSES, Row, XpanderStore, iso_micro
from gateway.sandbox.knobs import Knobs

FILTERS = ("user_id", "parent_task_id", "triggering_agent_id")
STEPS = {"pending": "executing", "executing": "completed"}


def create_app(store: XpanderStore, knobs: Knobs, credentials: str | None) -> Starlette:
    return vendor_app(
        [Route("/v1/agents/{agent_id}/tasks", partial(list_tasks, store), methods=["GET"])],
        knobs=knobs,
        key=ApiKey(credentials, "x-api-key", None),
        error=error,
        unauthorized=lambda request: error(request, 401, "Invalid or missing API key"),
        advance=partial(advance, store),
    )


def error(request: Request, status: int, message: str) -> Response:
    return json_response({"detail": message}, status)


async def list_tasks(store: XpanderStore, request: Request) -> Response:
    query = QueryReader(request)
    page = query.integer("page", 1, ge=1)
    per_page = query.integer("per_page", 20, ge=1, le=50)
    status = query.choice("status", XPANDER_STATUSES)
    try:
        query.done()
    except Invalid as exc:
        return exc.response()
    params = request.query_params
    agent = request.path_params["agent_id"]
    filters = tuple((name, params[name]) for name in FILTERS if params.get(name))
    internal = params.get("internal_status") or None

    def build() -> list[Row]:
        return [
            t
            for t in store.get(agent, [])  # kept newest first
            if (status is None or t["status"] == status)
            and (internal is None or store.internal[t["id"]] == internal)
            and all(t[name] == value for name, value in filters)
        ]

    rows = store.views.get(("list", agent, status, internal, filters), build)
    start = (page - 1) * per_page
    return json_response(
        {
            "items": rows[start : start + per_page],
            "total": len(rows),
            "page": page,
            "per_page": per_page,
            "total_pages": math.ceil(len(rows) / per_page),
        }
    )


def advance(store: XpanderStore, count: int) -> int:
    """Move up to ``count`` live tasks one step on (pending, executing, completed), the
    longest untouched first. ``updated_at`` moves; the order (by creation) does not."""
    live = (t for tasks in store.values() for t in tasks if t["status"] in STEPS)
    moving = heapq.nsmallest(count, live, key=lambda t: (t["updated_at"], t["id"]))
    now = iso_micro(store.clock.now())
    for task in moving:
        task["status"] = STEPS[task["status"]]
        task["updated_at"] = now
        store.internal[task["id"]] = XPANDER_INTERNAL[task["status"]]
        if task["status"] == "completed":
            task["result"] = f"Done: {task['title'].lower()}"
    store.changed()
    return len(moving)
