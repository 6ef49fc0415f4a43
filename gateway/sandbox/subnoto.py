"""Subnoto ``POST /public/agent-task/list``: team-wide agent tasks, one per ``taskUuid`` with
its latest report. The JSON body is validated strictly, like the vendor's schema validation
(unknown keys refused, every issue reported): ``stateFilter`` (array of working, complete,
idle, failure; empty means all), ``page`` >= 1, ``limit`` 1..50 (default 50), ``sortOrder``
asc/desc (default desc) by the latest report's unix-ms timestamp. Every error is Subnoto's
envelope ``{statusCode, error {code, message, suggestion, documentationUrl, details?},
requestId, timestamp, path}``.

Production reaches the enclave through Subnoto's API proxy, which takes
``Authorization: Bearer ACCESS_KEY:SECRET_KEY``: the simulator expects that pair. Pages are
offsets into a list sorted on the timestamp alone, so tasks reported at the same millisecond
come in the stored order, or a new one on every request with the ``shuffle_ties`` knob. A
report's ``link`` is optional and absent from part of the generated data.
"""

from __future__ import annotations

import heapq
import math
import re
import uuid
from datetime import UTC, datetime
from functools import partial
from operator import itemgetter
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.core.records import Vendor
from gateway.sandbox.common import ApiKey, json_response, page_slice, vendor_app
from gateway.sandbox.data import Row, Store, iso_milli, unix_ms, uuid4
from gateway.sandbox.knobs import Knobs, route_path
from gateway.sandbox.simulator import Setup, StoreSimulator

DOCS = "https://subnoto.com/documentation/developers/errors"
MAX_SAFE_INTEGER = 9007199254740991
CODES = {
    400: ("INVALID_REQUEST_FORMAT", "Check the request body against the API reference."),
    401: (
        "AUTHENTICATION_ERROR",
        "Send your API key as 'Authorization: Bearer ACCESS_KEY:SECRET_KEY'.",
    ),
    403: ("AUTHORIZATION_ERROR", "Use a key of a team with access to agent tasks."),
    404: ("NOT_FOUND", "Check the request path."),
    429: ("RATE_LIMIT_EXCEEDED", "Wait before retrying."),
}
SERVER_ERROR = ("INTERNAL_SERVER_ERROR", "Retry later; contact support if it persists.")
STEPS = {"idle": "working", "working": "complete"}
KEYS = ("stateFilter", "page", "limit", "sortOrder")
STATES = ("working", "complete", "idle", "failure")
NIL_UUID = "00000000-0000-0000-0000-000000000000"
AUTHORS: list[Row] = [
    {"uuid": NIL_UUID, "email": "system@subnoto.com", "name": "System"},
    {"uuid": "5d1c0c9e-3f5b-4c55-9a57-0f1d1b0f7a01", "email": "ada@example.com", "name": "Ada"},
    {"uuid": "8e2b7f41-6a0d-4a8e-b1f2-2d9c4e6b3c02", "email": "lin@example.com", "name": "Lin"},
    {"uuid": "c3a9d2e7-1b4f-4e8a-9c6d-5f2e8a7b4d03", "email": "sam@example.com", "name": "Sam"},
]
KEY_PAIR = re.compile(r"[^:\s]+:[^:\s]+")  # ACCESS_KEY:SECRET_KEY
LINK_EVERY = 3

Issue = dict[str, Any]


class SubnotoStore(Store, list[Row]):
    """The team-wide agent tasks, each with its latest report, in the order stored."""

    def put(self, records: list[Row]) -> None:
        self[:] = records
        self.changed()


class Subnoto(StoreSimulator):
    """The Subnoto simulator, as its API proxy answers (see the module docstring)."""

    vendor = Vendor.SUBNOTO

    def __init__(self, setup: Setup) -> None:
        if setup.secret is not None and not KEY_PAIR.fullmatch(setup.secret):
            raise ValueError("a Subnoto key is 'ACCESS_KEY:SECRET_KEY'")
        store = SubnotoStore(setup.clock)
        store.put(generate(setup))
        app = create_app(store, setup.knobs, setup.secret)
        super().__init__(setup, [], store, app, partial(advance, store))  # team-wide: no agents


def generate(setup: Setup) -> list[Row]:
    rng, moments = setup.rng("data"), setup.moments
    tasks: list[Row] = []
    for i in range(setup.size):
        state = STATES[i % len(STATES)]
        report: Row = {
            "state": state,
            "summary": f"Envelope batch {3000 + i}: {state}",
            "timestamp": unix_ms(moments.created(i, rng)),
            "author": AUTHORS[i % len(AUTHORS)],
        }
        if i % LINK_EVERY == 0:
            report["link"] = f"https://app.subnoto.com/envelopes/{uuid4(rng)}"
        tasks.append(
            {
                "taskUuid": uuid4(rng),
                "reportCount": 1 + int(rng.random() * 6),
                "latestReport": report,
            }
        )
    return tasks


def create_app(store: SubnotoStore, knobs: Knobs, credentials: str | None) -> Starlette:
    return vendor_app(
        [Route("/public/agent-task/list", partial(list_tasks, store, knobs), methods=["POST"])],
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


async def list_tasks(store: SubnotoStore, knobs: Knobs, request: Request) -> Response:
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

    def build() -> list[tuple[Any, Row]]:
        rows = [
            (_timestamp(t), t) for t in store if not states or t["latestReport"]["state"] in states
        ]
        rows.sort(key=itemgetter(0), reverse=descending)  # stable: ties keep the stored order
        return rows

    rows = store.views.get(("list", states, descending), build)
    total_pages = max(1, math.ceil(len(rows) / limit))
    start = (page - 1) * limit
    tasks = page_slice(rows, start, start + limit, knobs, itemgetter(0))
    return json_response(
        {
            "tasks": [task for _, task in tasks],
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
        allowed = " | ".join(f"'{s}'" for s in STATES)
        issues += [
            issue(["stateFilter", str(i)], f"Invalid enum value. Expected {allowed}")
            for i, state in enumerate(states)
            if state not in STATES
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


def _timestamp(task: Row) -> float:
    value = task["latestReport"].get("timestamp")
    return float(value) if isinstance(value, int | float) else 0.0


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
            "author": AUTHORS[0],
        }
        task["reportCount"] += 1
    store.changed()
    return len(moving)
