"""Scale Agentex task trackers: ``GET /tracker`` and ``PUT /tracker/{tracker_id}``.

Behaves like the open-source server: a bare JSON array, page-based paging without a total,
``order_by`` any tracker field; a PUT always writes ``status`` and ``status_reason`` as
sent (an omitted one becomes null) and refuses (400) an event cursor that is unknown or
moves backwards. Validation errors are FastAPI's 422 ``{"detail": [{loc, msg, type}]}``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from gateway.core.records import TaskStatus, Vendor
from gateway.core.statuses import AGENTEX_STATUS_MAP, map_status
from gateway.sandbox.data import iso
from gateway.sandbox.knobs import Handler, Knobs, Simulator, json_response

FIELDS = (
    "id",
    "agent_id",
    "task_id",
    "status",
    "status_reason",
    "last_processed_event_id",
    "created_at",
    "updated_at",
)
NEXT = {TaskStatus.PENDING: "running", TaskStatus.RUNNING: "completed"}


class ValidationFailed(Exception):
    def __init__(self, loc: list[Any], msg: str, type_: str, value: Any) -> None:
        self.detail = {"loc": loc, "msg": msg, "type": type_, "input": value}


def query_int(request: Request, name: str, default: int, minimum: int = 1) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValidationFailed(
            ["query", name],
            "Input should be a valid integer, unable to parse string as an integer",
            "int_parsing",
            raw,
        ) from None
    if value < minimum:
        raise ValidationFailed(
            ["query", name],
            f"Input should be greater than or equal to {minimum}",
            "greater_than_equal",
            raw,
        )
    return value


class AgentexSimulator(Simulator):
    vendor = Vendor.AGENTEX

    def __init__(
        self,
        trackers: dict[str, dict[str, Any]],
        events: dict[str, list[str]],
        knobs: Knobs,
        secret: str | None,
        seed: int = 0,
    ) -> None:
        super().__init__(knobs, secret, seed)
        self.trackers = trackers
        self.events = events

    def endpoints(self) -> list[tuple[str, str, Handler]]:
        return [("GET", "/tracker", self.listing), ("PUT", "/tracker/{tracker_id}", self.update)]

    def error(self, request: Request, status: int, message: str, code: str = "") -> Response:
        return json_response({"detail": message}, status)

    def authorized(self, request: Request) -> bool:
        return self.secret is None or self.bearer_ok(request)

    def invalid(self, *details: dict[str, Any]) -> Response:
        return json_response({"detail": list(details)}, 422)

    async def listing(self, request: Request) -> Response:
        try:
            limit = query_int(request, "limit", 50)
            page = query_int(request, "page_number", 1)
            # The spec types order_by as any string: an unknown field orders by creation.
            order_by = request.query_params.get("order_by") or "created_at"
            if order_by not in FIELDS:
                order_by = "created_at"
        except ValidationFailed as exc:
            return self.invalid(exc.detail)
        descending = request.query_params.get("order_direction", "desc").lower() != "asc"
        agent_id = request.query_params.get("agent_id")
        task_id = request.query_params.get("task_id")
        rows = self.view(
            ("list", order_by, descending, agent_id, task_id),
            lambda: self._sorted(order_by, descending, agent_id, task_id),
        )
        start = (page - 1) * limit
        return json_response(rows[start : start + limit])

    def _sorted(
        self, order_by: str, descending: bool, agent_id: str | None, task_id: str | None
    ) -> list[dict[str, Any]]:
        rows = [
            t
            for t in self.trackers.values()
            if (agent_id is None or t["agent_id"] == agent_id)
            and (task_id is None or t["task_id"] == task_id)
        ]
        rows.sort(key=lambda t: t["id"])
        rows.sort(key=lambda t: (t[order_by] is not None, t[order_by] or ""), reverse=descending)
        return rows

    async def update(self, request: Request) -> Response:
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            return self.invalid(
                {"loc": ["body"], "msg": "JSON decode error", "type": "json_invalid"}
            )
        if not isinstance(body, dict):
            return self.invalid(
                {
                    "loc": ["body"],
                    "msg": "Input should be a valid dictionary",
                    "type": "model_attributes_type",
                    "input": body,
                }
            )
        bad = [
            {
                "loc": ["body", k],
                "msg": "Input should be a valid string",
                "type": "string_type",
                "input": body[k],
            }
            for k in ("status", "status_reason", "last_processed_event_id")
            if k in body and body[k] is not None and not isinstance(body[k], str)
        ]
        if bad:
            return self.invalid(*bad)
        tracker = self.trackers.get(request.path_params["tracker_id"])
        if tracker is None:
            return self.error(request, 404, "Agent task tracker not found")
        event = body.get("last_processed_event_id")
        if event is not None:
            events = self.events.get(tracker["task_id"], [])
            if event not in events:
                return self.error(request, 400, f"Event {event} does not exist for this task")
            current = tracker["last_processed_event_id"]
            if current in events and events.index(event) < events.index(current):
                return self.error(request, 400, "Cannot move the processed event cursor back")
            tracker["last_processed_event_id"] = event
            self.changed()
        tracker["status"] = body.get("status")
        tracker["status_reason"] = body.get("status_reason")
        tracker["updated_at"] = iso(datetime.now(UTC))
        self.changed()
        return json_response(tracker)

    def advance(self, count: int) -> int:
        moved = 0
        for tracker in sorted(self.trackers.values(), key=lambda t: t["id"]):
            step = NEXT.get(map_status(AGENTEX_STATUS_MAP, tracker["status"]))
            if step is None:
                continue
            tracker["status"], tracker["updated_at"] = step, iso(datetime.now(UTC))
            moved += 1
            if moved >= count:
                break
        return moved
