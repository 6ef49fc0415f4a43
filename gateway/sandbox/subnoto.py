"""Subnoto ``POST /public/agent-task/list``: team-wide agent tasks, one per ``taskUuid`` with
its latest report. The JSON body is validated strictly, like the vendor's schema validation
(unknown keys refused, every issue reported): ``stateFilter`` (array of working, complete,
idle, failure; empty means all), ``page`` >= 1, ``limit`` 1..50 (default 50), ``sortOrder``
asc/desc (default desc) by the latest report's unix-ms timestamp, ``taskUuid`` breaking ties.
Every error is Subnoto's envelope ``{statusCode, error {code, message, suggestion,
documentationUrl, details?}, requestId, timestamp, path}``.
"""

from __future__ import annotations

import heapq
import math
import uuid
from datetime import UTC, datetime
from functools import partial
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.sandbox.common import ApiKey, json_response, vendor_app
from gateway.sandbox.data import (
    SUBNOTO_AUTHORS,
    SUBNOTO_STATES,
    Row,
    SubnotoStore,
    iso_milli,
    unix_ms,
)
from gateway.sandbox.knobs import Knobs, route_path

DOCS = "https://subnoto.com/documentation/developers/errors"
MAX_SAFE_INTEGER = 9007199254740991
CODES = {
    400: ("INVALID_REQUEST_FORMAT", "Check the request body against the API reference."),
    401: ("AUTHENTICATION_ERROR", "Send your API key as 'Authorization: Bearer <key>'."),
    403: ("AUTHORIZATION_ERROR", "Use a key of a team with access to agent tasks."),
    404: ("NOT_FOUND", "Check the request path."),
    429: ("RATE_LIMIT_EXCEEDED", "Wait before retrying."),
}
SERVER_ERROR = ("INTERNAL_SERVER_ERROR", "Retry later; contact support if it persists.")
STEPS = {"idle": "working", "working": "complete"}
KEYS = ("stateFilter", "page", "limit", "sortOrder")

Issue = dict[str, Any]


def create_app(store: SubnotoStore, knobs: Knobs, credentials: str | None) -> Starlette:
    return vendor_app(
        [Route("/public/agent-task/list", partial(list_tasks, store), methods=["POST"])],
        knobs=knobs,
        key=ApiKey(credentials, "authorization", "Bearer"),
        error=error,
        unauthorized=lambda request: error(request, 401, "Invalid or missing API key"),
        advance=partial(advance, store),
    )


def error(
    request: Request, status: int, message: str, details: list[Issue] | None = None
) -> Response:
    code, suggestion = CODES.get(status, SERVER_ERROR)
    body: dict[str, Any] = {
        "code": code,
        "message": message,
        "suggestion": suggestion,
        "documentationUrl": DOCS,
    }
    if details:
        body["details"] = details
    return json_response(
        {
            "statusCode": status,
            "error": body,
            "requestId": str(uuid.uuid4()),
            "timestamp": iso_milli(datetime.now(UTC)),
            "path": route_path(request.scope),
        },
        status,
    )


async def list_tasks(store: SubnotoStore, request: Request) -> Response:
    raw = await request.body()
    try:
        body = orjson.loads(raw) if raw.strip() else {}
    except orjson.JSONDecodeError:
        return error(request, 400, "Invalid request body", [issue([], "Invalid JSON")])
    issues = _issues(body)
    if issues:
        return error(request, 400, "Invalid request body", issues)
    states = frozenset(body.get("stateFilter", ()))
    page, limit = int(body.get("page", 1)), int(body.get("limit", 50))
    descending = body.get("sortOrder", "desc") == "desc"

    def build() -> list[Row]:
        rows = [t for t in store if not states or t["latestReport"]["state"] in states]
        rows.sort(key=lambda t: (t["latestReport"]["timestamp"], t["taskUuid"]), reverse=descending)
        return rows

    rows = store.views.get(("list", states, descending), build)
    total_pages = max(1, math.ceil(len(rows) / limit))
    start = (page - 1) * limit
    return json_response(
        {
            "tasks": rows[start : start + limit],
            "pagination": {
                "totalRecords": len(rows),
                "currentPage": page,
                "totalPages": total_pages,
                "nextPage": page + 1 if page < total_pages else None,
                "prevPage": page - 1 if page > 1 else None,
            },
        }
    )


def issue(path: list[str], message: str) -> Issue:
    return {"path": path, "message": message}


def _issues(body: Any) -> list[Issue]:
    """Every problem with the body, each with its JSON path, as a schema validator lists them."""
    if not isinstance(body, dict):
        return [issue([], f"Expected object, received {_kind(body)}")]
    issues = [issue([key], "Unrecognized key") for key in body if key not in KEYS]
    states = body.get("stateFilter", [])
    if not isinstance(states, list):
        issues.append(issue(["stateFilter"], f"Expected array, received {_kind(states)}"))
    else:
        allowed = " | ".join(f"'{s}'" for s in SUBNOTO_STATES)
        issues += [
            issue(["stateFilter", str(i)], f"Invalid enum value. Expected {allowed}")
            for i, state in enumerate(states)
            if state not in SUBNOTO_STATES
        ]
    for name, top in (("page", MAX_SAFE_INTEGER), ("limit", 50)):
        if name in body:
            problem = _integer_problem(body[name], top)
            if problem:
                issues.append(issue([name], problem))
    if body.get("sortOrder", "desc") not in ("asc", "desc"):
        issues.append(issue(["sortOrder"], "Invalid enum value. Expected 'asc' | 'desc'"))
    return issues


def _integer_problem(value: Any, top: int) -> str | None:
    """JSON has one number type: 2.0 is the integer 2, as for the vendor's JavaScript."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"Expected number, received {_kind(value)}"
    if value != int(value):
        return "Expected integer, received float"
    if value < 1:
        return "Number must be greater than or equal to 1"
    if value > top:
        return f"Number must be less than or equal to {top}"
    return None


def _kind(value: Any) -> str:
    """A JSON value's type as a JavaScript validator names it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def advance(store: SubnotoStore, count: int) -> int:
    """Move up to ``count`` live tasks one step on (idle, working, complete) with a new
    report from the System author, the longest silent first."""
    live = (t for t in store if t["latestReport"]["state"] in STEPS)
    moving = heapq.nsmallest(
        count, live, key=lambda t: (t["latestReport"]["timestamp"], t["taskUuid"])
    )
    now = unix_ms(store.clock.now())
    for task in moving:
        report = task["latestReport"]
        state = STEPS[report["state"]]
        task["latestReport"] = {
            "state": state,
            "summary": f"{report['summary'].split(':')[0]}: {state}",
            "timestamp": now,
            "author": SUBNOTO_AUTHORS[0],
        }
        task["reportCount"] += 1
    store.changed()
    return len(moving)
