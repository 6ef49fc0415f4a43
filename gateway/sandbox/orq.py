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
wrong key 401 ``invalid_api_key``; an unknown agent key has no tasks.
"""

from __future__ import annotations

import bisect
import heapq
import re
from functools import partial

from starlette.applications import Starlette
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.core.statuses import ORQ_STATUS_MAP, orq_status
from gateway.sandbox.common import ApiKey, json_response, vendor_app
from gateway.sandbox.data import AgentTasks, Row, iso_milli
from gateway.sandbox.knobs import Knobs

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
STATUSES = tuple(ORQ_STATUS_MAP)


class BadQuery(ValueError):
    """A query parameter orq refuses (400)."""


def create_app(store: AgentTasks, knobs: Knobs, credentials: str | None) -> Starlette:
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


async def list_tasks(store: AgentTasks, request: Request) -> Response:
    try:
        limit, after, before, wanted = _query(request.query_params)
    except BadQuery as exc:
        return error(request, 400, str(exc))
    agent = request.path_params["agent_key"]

    def build() -> tuple[list[Row], list[str]]:
        rows = [t for t in store.get(agent, []) if not wanted or orq_status(t["state"]) in wanted]
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


def advance(store: AgentTasks, count: int) -> int:
    """Move up to ``count`` live tasks one step on, the longest untouched first: an approval
    arrives (approval_required to in_progress) or a run ends (in_progress to inactive)."""
    live = (
        t
        for tasks in store.values()
        for t in tasks
        if orq_status(t["state"]) in ("approval_required", "in_progress")
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
