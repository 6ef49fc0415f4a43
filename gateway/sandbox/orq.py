"""orq.ai ``GET /v2/agents/{agent_key}/tasks``: newest first by ``_id`` (ULIDs, so by
creation), cursor paging with ``starting_after`` (the tasks after that id in the list, i.e.
older) or ``ending_before`` (the ``limit`` tasks just before it, i.e. newer), ``limit`` 1..200
(default 10), ``status`` a comma-separated list of the values derived from ``state``, and
``overall_total`` counting every task that matches the filter. A cursor need not be on the
page or even still match the filter: it is a position in id order.

Errors: the seed page shows none, so the body follows orq's error reference
(docs.orq.ai/reference/errors): ``{"error": {"code", "message", "doc_url"}}``. Bad query
parameters (a limit out of range or not a whole number, a cursor that is not a ULID, both
cursors at once, an unknown status) are 400 ``invalid_request_body``, the generic
validation code it lists; no Authorization header is 401 ``authentication_required``, a
wrong key 401 ``invalid_api_key``; an unknown agent key has no tasks. The ``per_minute``
knob plays the workspace's plan limit (429 with the rate-limit headers).

The list item has no status field: the filter's values are derived from ``state`` with the
precedence VENDORS.md gives (``derived_status``), written here from that page.
"""

from __future__ import annotations

import bisect
import heapq
import random
import re
from datetime import datetime, timedelta
from functools import partial
from operator import itemgetter

from starlette.applications import Starlette
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.core.records import Vendor
from gateway.sandbox.common import ApiKey, json_response, vendor_app
from gateway.sandbox.data import (
    AGENTS_PER_VENDOR,
    TOPICS,
    AgentTasks,
    Row,
    iso_milli,
    ulid,
    uuid4,
)
from gateway.sandbox.knobs import Knobs
from gateway.sandbox.simulator import Setup, StoreSimulator

DOCS = "https://docs.orq.ai/errors/"
CODES = {
    400: "invalid_request_body",
    401: "invalid_api_key",
    402: "quota_exceeded",
    403: "insufficient_scope",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    429: "rate_limit_exceeded",
    500: "internal_error",
    501: "not_implemented",
    502: "provider_error",
    503: "service_unavailable",
    504: "provider_timeout",
}
ULID = re.compile(r"[0-7][0-9A-HJKMNP-TV-Z]{25}", re.IGNORECASE)
LIMIT = re.compile(r"\s*\d{1,9}\s*")
STATUSES = ("inactive", "approval_required", "in_progress", "errored")
AGENT_KEYS = ("support-triage", "invoice-extractor", "research-assistant")
STATES: list[Row] = [  # one of each derived status, and an error beside each flag
    {"waiting_for_approval": False, "inactive": False, "error": None},  # in_progress
    {"waiting_for_approval": True, "inactive": False, "error": None},  # approval_required
    {"waiting_for_approval": False, "inactive": True, "error": None},  # inactive
    {"waiting_for_approval": False, "inactive": True, "error": "Tool call failed: HTTP 503"},
    {"waiting_for_approval": True, "inactive": False, "error": "Model timed out after 300s"},
]


def derived_status(state: Row) -> str:
    """The filter value of a task: ``error`` set is errored, else ``waiting_for_approval``
    is approval_required, else ``inactive`` is inactive, else in_progress."""
    if state.get("error"):
        return "errored"
    if state.get("waiting_for_approval"):
        return "approval_required"
    return "inactive" if state.get("inactive") else "in_progress"


class OrqStore(AgentTasks):
    """Tasks per agent key, each list newest first by ``_id`` (a ULID: creation order)."""

    def put(self, records: list[Row]) -> None:
        self.file(records, lambda t: t["agent_manifest_snapshot"]["key"], itemgetter("_id"))


class Orq(StoreSimulator):
    """The orq simulator (see the module docstring)."""

    vendor = Vendor.ORQ

    def __init__(self, setup: Setup) -> None:
        agents = list(AGENT_KEYS[:AGENTS_PER_VENDOR])
        store = OrqStore(setup.clock, agents)
        store.put(generate(agents, setup))
        app = create_app(store, setup.knobs, setup.secret)
        super().__init__(setup, agents, store, app, partial(advance, store))


def generate(agents: list[str], setup: Setup) -> list[Row]:
    rng, moments = setup.rng("data"), setup.moments
    workspace, project = uuid4(rng), uuid4(rng)
    people = [uuid4(rng) for _ in range(3)]
    manifests = {agent: manifest(agent, project, rng, moments.now) for agent in agents}
    tasks: list[Row] = []
    for i in range(setup.size):
        agent = agents[i % len(agents)]
        created = moments.created(i, rng)
        prompt, completion = 200 + int(rng.random() * 5800), 50 + int(rng.random() * 2450)
        input_cost, output_cost = round(prompt * 2.5e-6, 6), round(completion * 1e-5, 6)
        person = people[i % len(people)]
        tasks.append(
            {
                "_id": ulid(created, rng),
                "agent_manifest_snapshot": manifests[agent],
                "created_by_id": person,
                "updated_by_id": person,
                "created": iso_milli(created),
                "updated": iso_milli(moments.updated(i, created, rng)),
                "name": f"{TOPICS[i % len(TOPICS)]} #{2000 + i}",
                "workspace_id": workspace,
                "memory": {"entity_id": f"customer-{i % 17}"},
                "metadata": {"channel": ("email", "chat", "api")[i % 3]} if i % 2 else {},
                "state": {
                    **STATES[i % len(STATES)],
                    "iteration": 1 + int(rng.random() * 9),
                    "accumulated_execution_time": round(rng.uniform(0.4, 240), 3),
                },
                "metrics": {
                    "input_cost": input_cost,
                    "output_cost": output_cost,
                    "total_cost": round(input_cost + output_cost, 6),
                    "prompt_tokens": prompt,
                    "completion_tokens": completion,
                    "total_tokens": prompt + completion,
                },
            }
        )
    return tasks


def manifest(agent: str, project: str, rng: random.Random, now: datetime) -> Row:
    """The agent's configuration when its tasks ran (one version per agent here)."""
    return {
        "_id": ulid(now - timedelta(days=30), rng),
        "key": agent,
        "role": agent.replace("-", " ").title(),
        "description": f"The {agent} agent",
        "instructions": "Answer briefly; ask before any refund.",
        "system_prompt": "You are a careful assistant.",
        "model": {
            "id": "openai/gpt-4o",
            "integration_id": ulid(now - timedelta(days=60), rng),
            "fallback_models": ["anthropic/claude-3-5-sonnet"],
            "max_tokens": 4096,
            "temperature": 0.2,
        },
        "settings": {
            "max_execution_time": 300,
            "max_iterations": 15,
            "tool_approval_required": "respect_tool",
            "tools": [],
        },
        "project_id": project,
    }


class BadQuery(ValueError):
    """A query parameter orq refuses (400)."""


def create_app(store: OrqStore, knobs: Knobs, credentials: str | None) -> Starlette:
    return vendor_app(
        [Route("/v2/agents/{agent_key}/tasks", partial(list_tasks, store), methods=["GET"])],
        knobs=knobs,
        key=ApiKey(credentials, "authorization", "Bearer"),
        error=error,
        unauthorized=unauthorized,
        advance=partial(advance, store),
    )


def body(status: int, code: str, message: str) -> Response:
    return json_response(
        {"error": {"code": code, "message": message, "doc_url": DOCS + code}}, status
    )


def error(request: Request, status: int, message: str) -> Response:
    default = "internal_error" if status >= 500 else "invalid_request_body"
    return body(status, CODES.get(status, default), message)


def unauthorized(request: Request) -> Response:
    if "authorization" not in request.headers:
        return body(401, "authentication_required", "Authentication is required.")
    return body(401, "invalid_api_key", "The provided API key is invalid.")


async def list_tasks(store: OrqStore, request: Request) -> Response:
    try:
        limit, after, before, wanted = _query(request.query_params)
    except BadQuery as exc:
        return error(request, 400, str(exc))
    agent = request.path_params["agent_key"]

    def build() -> tuple[list[Row], list[str]]:
        listing = store.get(agent, [])
        rows = [t for t in listing if not wanted or derived_status(t["state"]) in wanted]
        return rows, [t["_id"] for t in reversed(rows)]  # rows newest first; ids ascending

    rows, ascending = store.views.get(("list", agent, wanted), build)
    if after is not None:
        start = len(rows) - bisect.bisect_left(ascending, after)
        page = rows[start : start + limit]
    elif before is not None:
        end = len(rows) - bisect.bisect_right(ascending, before)
        page = rows[max(0, end - limit) : end]
    else:
        page = rows[:limit]
    return json_response({"tasks": page, "overall_total": len(rows)})


def _query(params: QueryParams) -> tuple[int, str | None, str | None, frozenset[str]]:
    raw = params.get("limit", "10")
    if not LIMIT.fullmatch(raw) or not 1 <= int(raw) <= 200:
        raise BadQuery(f"limit must be a whole number from 1 to 200, not {raw!r}")
    after, before = params.get("starting_after") or None, params.get("ending_before") or None
    if after and before:
        raise BadQuery("starting_after and ending_before cannot be used together")
    for name, cursor in (("starting_after", after), ("ending_before", before)):
        if cursor is not None and not ULID.fullmatch(cursor):
            raise BadQuery(f"{name} must be a task _id (a ULID), not {cursor!r}")
    wanted = frozenset(s.strip() for s in params.get("status", "").split(",") if s.strip())
    if not wanted <= set(STATUSES):
        raise BadQuery(f"status must be a comma-separated list of {', '.join(STATUSES)}")
    return (
        int(raw),
        after.upper() if after else None,
        before.upper() if before else None,
        wanted,
    )


def advance(store: OrqStore, count: int) -> int:
    """Move up to ``count`` live tasks one step on, the longest untouched first: an approval
    arrives (approval_required to in_progress) or a run ends (in_progress to inactive)."""
    live = (
        t
        for tasks in store.values()
        for t in tasks
        if derived_status(t["state"]) in ("approval_required", "in_progress")
    )
    moving = heapq.nsmallest(count, live, key=lambda t: (t["updated"], t["_id"]))
    now = iso_milli(store.clock.now())
    for task in moving:
        state = task["state"]
        if state["waiting_for_approval"]:
            state["waiting_for_approval"] = False
        else:
            state["inactive"] = True
        state["iteration"] += 1
        task["updated"] = now
    store.changed()
    return len(moving)
