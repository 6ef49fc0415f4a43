"""xpander.ai ``GET /v1/agents/{agent_id}/tasks``: newest first, ``page``/``per_page`` (max 50),
``x-api-key`` auth, FastAPI-style 422 for bad parameters."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from gateway.core.records import Vendor
from gateway.sandbox.agentex import ValidationFailed, query_int
from gateway.sandbox.data import XPANDER_STATUSES, iso
from gateway.sandbox.knobs import Handler, Knobs, Simulator, json_response

NEXT = {"pending": "executing", "executing": "completed"}
FILTERS = ("user_id", "parent_task_id", "triggering_agent_id")


class XpanderSimulator(Simulator):
    vendor = Vendor.XPANDER

    def __init__(
        self,
        tasks: dict[str, list[dict[str, Any]]],
        knobs: Knobs,
        secret: str | None,
        seed: int = 0,
    ) -> None:
        super().__init__(knobs, secret, seed)
        self.tasks = tasks

    def endpoints(self) -> list[tuple[str, str, Handler]]:
        return [("GET", "/v1/agents/{agent_id}/tasks", self.listing)]

    def error(self, request: Request, status: int, message: str, code: str = "") -> Response:
        return json_response({"detail": message}, status)

    def authorized(self, request: Request) -> bool:
        return request.headers.get("x-api-key") == self.secret

    def unauthorized(self, request: Request) -> Response:
        return json_response({"detail": "Invalid or missing API key"}, 401)

    async def listing(self, request: Request) -> Response:
        params = request.query_params
        try:
            page = query_int(request, "page", 1)
            per_page = query_int(request, "per_page", 20)
            if per_page > 50:
                raise ValidationFailed(
                    ["query", "per_page"],
                    "Input should be less than or equal to 50",
                    "less_than_equal",
                    params["per_page"],
                )
            status = params.get("status")
            if status is not None and status not in XPANDER_STATUSES:
                raise ValidationFailed(
                    ["query", "status"],
                    "Input should be " + ", ".join(f"'{s}'" for s in XPANDER_STATUSES),
                    "enum",
                    status,
                )
        except ValidationFailed as exc:
            return json_response({"detail": [exc.detail]}, 422)
        agent = request.path_params["agent_id"]
        filters = tuple((f, params.get(f)) for f in FILTERS)

        def build() -> list[dict[str, Any]]:
            rows = [
                t
                for t in self.tasks.get(agent, [])
                if (status is None or t["status"] == status)
                and all(value is None or t[f] == value for f, value in filters)
            ]
            rows.sort(key=lambda t: t["id"])
            rows.sort(key=lambda t: t["created_at"], reverse=True)
            return rows

        rows = self.view(("list", agent, status, filters), build)
        start = (page - 1) * per_page
        return json_response(
            {
                "items": rows[start : start + per_page],
                "total": len(rows),
                "page": page,
                "per_page": per_page,
                "total_pages": max(1, math.ceil(len(rows) / per_page)),
            }
        )

    def advance(self, count: int) -> int:
        moved = 0
        for task in sorted((t for ts in self.tasks.values() for t in ts), key=lambda t: t["id"]):
            step = NEXT.get(task["status"])
            if step is None:
                continue
            task["status"], task["updated_at"] = step, iso(datetime.now(UTC))
            if step == "completed":
                task["result"] = "Done"
            moved += 1
            if moved >= count:
                break
        return moved
