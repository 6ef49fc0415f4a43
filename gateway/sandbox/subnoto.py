"""Subnoto ``POST /public/agent-task/list``: a JSON body validated like the vendor does, its
error envelope and codes, ``stateFilter``, ``sortOrder`` by the latest report's time, and
the ``pagination`` block with ``nextPage``/``prevPage``."""

from __future__ import annotations

import math
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from gateway.core.records import Vendor
from gateway.sandbox.data import SUBNOTO_STATES, iso
from gateway.sandbox.knobs import Handler, Knobs, Simulator, json_response

DOCS = "https://subnoto.com/documentation/developers/errors"
CODES = {
    400: "INVALID_REQUEST_FORMAT",
    401: "AUTHENTICATION_ERROR",
    403: "AUTHORIZATION_ERROR",
    429: "RATE_LIMITED",
    500: "INTERNAL_SERVER_ERROR",
}
MAX_PAGE = 9007199254740991
NEXT = {"working": "complete"}


class SubnotoSimulator(Simulator):
    vendor = Vendor.SUBNOTO

    def __init__(
        self, tasks: list[dict[str, Any]], knobs: Knobs, secret: str | None, seed: int = 0
    ) -> None:
        super().__init__(knobs, secret, seed)
        self.tasks = tasks

    def endpoints(self) -> list[tuple[str, str, Handler]]:
        return [("POST", "/public/agent-task/list", self.listing)]

    def error(
        self,
        request: Request,
        status: int,
        message: str,
        code: str = "",
        details: list[dict[str, Any]] | None = None,
    ) -> Response:
        error: dict[str, Any] = {
            "code": code if code in CODES.values() else CODES.get(status, "INTERNAL_SERVER_ERROR"),
            "message": message,
            "suggestion": "Check the request against the API reference",
            "documentationUrl": DOCS,
        }
        if details:
            error["details"] = details
        return json_response(
            {
                "statusCode": status,
                "error": error,
                "requestId": str(uuid.uuid4()),
                "timestamp": iso(datetime.now(UTC)),
                "path": request.url.path,
            },
            status,
        )

    def authorized(self, request: Request) -> bool:
        return self.bearer_ok(request)

    def invalid(self, request: Request, path: str, message: str) -> Response:
        return self.error(
            request,
            400,
            "Invalid request body",
            "INVALID_REQUEST_FORMAT",
            [{"path": [path] if path else [], "message": message}],
        )

    async def listing(self, request: Request) -> Response:
        raw = await request.body()
        try:
            body = orjson.loads(raw) if raw.strip() else {}
        except orjson.JSONDecodeError:
            return self.invalid(request, "", "Body is not valid JSON")
        if not isinstance(body, dict):
            return self.invalid(request, "", "Expected an object")
        unknown = set(body) - {"stateFilter", "page", "limit", "sortOrder"}
        if unknown:
            return self.invalid(request, sorted(unknown)[0], "Unknown property")
        states = body.get("stateFilter", [])
        if not isinstance(states, list) or any(s not in SUBNOTO_STATES for s in states):
            return self.invalid(
                request, "stateFilter", "Expected an array of working|complete|idle|failure"
            )
        page, limit = body.get("page", 1), body.get("limit", 50)
        for name, value, top in (("page", page, MAX_PAGE), ("limit", limit, 50)):
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= top:
                return self.invalid(request, name, f"Expected an integer from 1 to {top}")
        order = body.get("sortOrder", "desc")
        if order not in ("asc", "desc"):
            return self.invalid(request, "sortOrder", "Expected 'asc' or 'desc'")

        def build() -> list[dict[str, Any]]:
            rows = [t for t in self.tasks if not states or t["latestReport"]["state"] in states]
            rows.sort(key=lambda t: t["taskUuid"])
            rows.sort(key=lambda t: t["latestReport"]["timestamp"], reverse=order == "desc")
            return rows

        rows = self.view(("list", tuple(sorted(states)), order), build)
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

    def advance(self, count: int) -> int:
        moved = 0
        for task in sorted(self.tasks, key=lambda t: t["taskUuid"]):
            report = task["latestReport"]
            step = NEXT.get(report["state"])
            if step is None:
                continue
            task["latestReport"] = {
                **report,
                "state": step,
                "summary": f"{report['summary']} (done)",
                "timestamp": int(time.time() * 1000),
            }
            task["reportCount"] += 1
            moved += 1
            if moved >= count:
                break
        return moved
