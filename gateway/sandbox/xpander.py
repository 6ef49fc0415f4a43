"""xpander.ai ``GET /v1/agents/{agent_id}/tasks``, a FastAPI service: ``page`` >= 1,
``per_page`` 1..50 (default 20), filters ``user_id``, ``parent_task_id``,
``triggering_agent_id``, ``status`` (one value of its enum) and ``internal_status``; newest
first by ``created_at``; ``{items, total, page, per_page, total_pages}``. An unknown agent
simply has no tasks. Bad parameters are FastAPI's 422; a missing or wrong ``x-api-key`` is
401 ``{"detail": str}``.

Pages are offsets into a list sorted on ``created_at`` alone, so tasks created at the same
moment come in the stored order, or a new one on every request with the ``shuffle_ties``
knob. The ids the seed marks nullable (``user_id``, ``parent_task_id``,
``triggering_agent_id``) are null in the generated data wherever they do not apply.
"""

from __future__ import annotations

import heapq
import math
from datetime import datetime, timedelta
from functools import partial
from operator import itemgetter

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
    vendor_app,
)
from gateway.sandbox.data import (
    AGENTS_PER_VENDOR,
    TOPICS,
    AgentTasks,
    Row,
    iso_micro,
    sortable_time,
    uuid4,
)
from gateway.sandbox.knobs import Knobs
from gateway.sandbox.simulator import Setup, StoreSimulator

STATUSES = ("pending", "executing", "paused", "error", "failed", "completed", "stopped")
INTERNAL = {  # internal_status: filterable, but not a field of the list item (the sandbox's
    "pending": "queued",  # own reading: the page names the filter, not its values)
    "executing": "running",
    "paused": "waiting_for_input",
    "error": "crashed",
    "failed": "failed",
    "completed": "done",
    "stopped": "cancelled",
}
FILTERS = ("user_id", "parent_task_id", "triggering_agent_id")
STEPS = {"pending": "executing", "executing": "completed"}
SUB_TASK_EVERY = 6
NO_USER_EVERY = 5


class XpanderStore(AgentTasks):
    """Tasks per agent, each list newest created first; ``internal`` is each task's
    ``internal_status``, which the list filters on but does not return."""

    def __init__(self, clock: Clock, agents: list[str]) -> None:
        super().__init__(clock, agents)
        self.internal: dict[str, str] = {}

    def put(self, records: list[Row]) -> None:
        self.internal = {t["id"]: INTERNAL.get(str(t.get("status")), "unknown") for t in records}
        self.file(records, itemgetter("agent_id"), _created)


class Xpander(StoreSimulator):
    """The xpander simulator (see the module docstring)."""

    vendor = Vendor.XPANDER

    def __init__(self, setup: Setup) -> None:
        rng = setup.rng("agents")
        agents = [uuid4(rng) for _ in range(AGENTS_PER_VENDOR)]
        store = XpanderStore(setup.clock, agents)
        store.put(generate(agents, setup))
        app = create_app(store, setup.knobs, setup.secret)
        super().__init__(setup, agents, store, app, partial(advance, store))


def _created(task: Row) -> str:
    """The creation time as sortable text; a null one (the schema allows it) sorts oldest."""
    return sortable_time(task.get("created_at")) or ""


def generate(agents: list[str], setup: Setup) -> list[Row]:
    rng, moments = setup.rng("data"), setup.moments
    organization = uuid4(rng)
    users = [uuid4(rng) for _ in range(4)]
    every: list[Row] = []
    created_at: list[datetime] = []
    for i in range(setup.size):
        status = STATUSES[i % len(STATUSES)]
        created = moments.created(i, rng)
        parent: Row | None = None
        if i % SUB_TASK_EVERY == 5:
            # A sub-task, delegated by a slightly older task of another agent: agents take
            # turns, so task i - 1 - k * len(agents) never has this task's agent.
            back = 1 + len(agents) * rng.randrange(min(4, i // len(agents)))
            parent = every[i - back]
            created = min(
                moments.now, created_at[i - back] + timedelta(seconds=rng.randint(1, 900))
            )
        title = f"{TOPICS[i % len(TOPICS)]} #{1000 + i}"
        every.append(
            {
                "id": uuid4(rng),
                "agent_id": agents[i % len(agents)],
                "user_id": None if i % NO_USER_EVERY == 0 else users[i % len(users)],
                "parent_task_id": parent["id"] if parent else None,
                "triggering_agent_id": parent["agent_id"] if parent else None,
                "organization_id": organization,
                "status": status,
                "source_node_type": ("sdk", "webhook", "assistant", "mcp")[i % 4],
                "created_at": iso_micro(created),
                "updated_at": iso_micro(moments.updated(i, created, rng)),
                "title": title,
                "result": f"Done: {title.lower()}" if status == "completed" else None,
            }
        )
        created_at.append(created)
    return every


def create_app(store: XpanderStore, knobs: Knobs, credentials: str | None) -> Starlette:
    return vendor_app(
        [Route("/v1/agents/{agent_id}/tasks", partial(list_tasks, store, knobs), methods=["GET"])],
        knobs=knobs,
        key=ApiKey(credentials, "x-api-key", None),
        error=error,
        unauthorized=lambda request: error(request, 401, "Invalid or missing API key"),
        advance=partial(advance, store),
    )


def error(request: Request, status: int, message: str) -> Response:
    return json_response({"detail": message}, status)


async def list_tasks(store: XpanderStore, knobs: Knobs, request: Request) -> Response:
    query = QueryReader(request)
    page = query.integer("page", 1, ge=1)
    per_page = query.integer("per_page", 20, ge=1, le=50)
    status = query.choice("status", STATUSES)
    try:
        query.done()
    except Invalid as exc:
        return exc.response()
    params = request.query_params
    agent = request.path_params["agent_id"]
    filters = tuple((name, params[name]) for name in FILTERS if params.get(name))
    internal = params.get("internal_status") or None

    def build() -> list[tuple[str, Row]]:
        return [
            (_created(t), t)
            for t in store.get(agent, [])  # kept newest first
            if (status is None or t["status"] == status)
            and (internal is None or store.internal[t["id"]] == internal)
            and all(t.get(name) == value for name, value in filters)
        ]

    rows = store.views.get(("list", agent, status, internal, filters), build)
    start = (page - 1) * per_page
    items = page_slice(rows, start, start + per_page, knobs, itemgetter(0))
    return json_response(
        {
            "items": [task for _, task in items],
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
    moving = heapq.nsmallest(count, live, key=lambda t: (t["updated_at"] or "", t["id"]))
    now = iso_micro(store.clock.now())
    for task in moving:
        task["status"] = STEPS[task["status"]]
        task["updated_at"] = now
        store.internal[task["id"]] = INTERNAL[task["status"]]
        if task["status"] == "completed":
            task["result"] = f"Done: {task['title'].lower()}"
    store.changed()
    return len(moving)
