"""orq.ai ``GET /v2/agents/{agent_key}/tasks``: cursor paging by task ``_id`` (ULIDs, newest
first), ``limit`` 1..200, ``status`` a comma-separated list of the values derived from
``state``, Bearer auth. orq's seed page shows no error body; like its other endpoints we
answer ``{"code": <status>, "error": <message>}``."""

from __future__ import annotations

import bisect
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from gateway.core.records import Vendor
from gateway.core.statuses import ORQ_STATUS_MAP, orq_status
from gateway.sandbox.data import iso
from gateway.sandbox.knobs import Handler, Knobs, Simulator, json_response


class OrqSimulator(Simulator):
    vendor = Vendor.ORQ

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
        return [("GET", "/v2/agents/{agent_key}/tasks", self.listing)]

    def error(self, request: Request, status: int, message: str, code: str = "") -> Response:
        return json_response({"code": status, "error": message}, status)

    def authorized(self, request: Request) -> bool:
        return self.bearer_ok(request)

    async def listing(self, request: Request) -> Response:
        params = request.query_params
        try:
            limit = int(params.get("limit", "10"))
        except ValueError:
            return self.error(request, 400, "limit must be a number")
        if not 1 <= limit <= 200:
            return self.error(request, 400, "limit must be between 1 and 200")
        wanted = {s for s in params.get("status", "").split(",") if s}
        unknown = sorted(wanted - set(ORQ_STATUS_MAP))
        if unknown:
            return self.error(request, 400, f"unknown status: {unknown[0]}")
        agent = request.path_params["agent_key"]

        def build() -> tuple[list[dict[str, Any]], list[str]]:
            rows = [
                t
                for t in self.tasks.get(agent, [])
                if not wanted or orq_status(t["state"]) in wanted
            ]
            return rows, sorted(t["_id"] for t in rows)  # newest first; ids ascending

        rows, ascending = self.view(("list", agent, tuple(sorted(wanted))), build)
        after, before = params.get("starting_after"), params.get("ending_before")
        if after:  # the tasks older than `after`: the last ones of the newest-first list
            start = len(rows) - bisect.bisect_left(ascending, after)
            page = rows[start : start + limit]
        elif before:  # the `limit` tasks just newer than `before`
            newer = len(rows) - bisect.bisect_right(ascending, before)
            page = rows[max(0, newer - limit) : newer]
        else:
            page = rows[:limit]
        total = len(rows)
        return json_response({"tasks": page, "overall_total": total})

    def advance(self, count: int) -> int:
        moved = 0
        for task in sorted((t for ts in self.tasks.values() for t in ts), key=lambda t: t["_id"]):
            state = task["state"]
            if orq_status(state) == "approval_required":
                state["waiting_for_approval"] = False
            elif orq_status(state) == "in_progress":
                state["inactive"] = True
            else:
                continue
            state["iteration"] += 1
            task["updated"] = iso(datetime.now(UTC))
            moved += 1
            if moved >= count:
                break
        return moved
