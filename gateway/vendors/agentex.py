"""Scale Agentex: task trackers, each one a Task whose ``tracker`` is the tracker itself."""

from __future__ import annotations

from typing import Any, ClassVar

import httpx

from gateway.core.errors import NotFoundError, UpstreamBadResponseError, UpstreamRejectedError
from gateway.core.ids import TASK, TRACKER, encode_id
from gateway.core.records import OrderField, TaskRecord, TrackerRecord, Vendor
from gateway.core.statuses import AGENTEX_STATUS_MAP, map_status
from gateway.vendors.base import (
    Connector,
    Credentials,
    ListQuery,
    PageToken,
    Source,
    SourcePage,
    VendorSettings,
    params_tuple,
    parse_time,
)

PATH = "/tracker"
UNEXPECTED = "agentex answered with an unexpected shape"


class AgentexConnector(Connector):
    vendor = Vendor.AGENTEX
    page_size = 50
    exact_filters: ClassVar[frozenset[str]] = frozenset({"agent_ids", "native_id"})

    def __init__(self, settings: VendorSettings, client: httpx.AsyncClient) -> None:
        super().__init__(settings, client)
        self.status_map = {**AGENTEX_STATUS_MAP, **settings.extra_status_map}

    def sources(self, query: ListQuery) -> list[Source]:
        if query.user_id or query.parent_task_id or query.triggering_agent_id:
            return []  # trackers have no user and no parent
        order = query.order
        common = {
            "order_by": "created_at" if order.field is OrderField.CREATED_AT else "updated_at",
            "order_direction": "desc" if order.descending else "asc",
            "task_id": query.native_id,
        }
        agents = sorted(query.agent_ids) if query.agent_ids is not None else [None]
        return [
            Source(self.vendor, PATH, params_tuple(agent_id=agent, **common), ordered=True)
            for agent in agents
        ]

    async def fetch_page(
        self, source: Source, token: PageToken, credentials: Credentials | None = None
    ) -> SourcePage:
        page = int(token or 1)
        body = await self.request_json(
            "GET",
            PATH,
            credentials=credentials,
            params={**dict(source.params), "limit": self.page_size, "page_number": page},
        )
        if not isinstance(body, list):
            raise UpstreamBadResponseError(self.vendor, UNEXPECTED)
        records, skipped = self.normalize(body, self._to_record)
        return SourcePage(
            records,
            next_token=page + 1 if len(body) >= self.page_size else None,
            skipped=skipped,
        )

    def _to_tracker(self, item: dict[str, Any]) -> TrackerRecord:
        created = parse_time(item["created_at"])
        if created is None:
            raise ValueError("created_at")
        return TrackerRecord(
            native_id=str(item["id"]),
            agent_id=str(item["agent_id"]),
            task_id=str(item["task_id"]),
            status=map_status(self.status_map, item.get("status")),
            vendor_status=item.get("status"),
            status_reason=item.get("status_reason"),
            last_processed_event_id=item.get("last_processed_event_id"),
            created_at=created,
            updated_at=parse_time(item.get("updated_at")),
            global_id=encode_id(
                TRACKER, self.vendor, item["agent_id"], item["task_id"], item["id"]
            ),
        )

    def _to_record(self, item: dict[str, Any]) -> TaskRecord:
        tracker = self._to_tracker(item)
        return TaskRecord(
            vendor=self.vendor,
            native_id=tracker.task_id,
            global_id=encode_id(TASK, self.vendor, tracker.agent_id, tracker.task_id),
            agent_id=tracker.agent_id,
            status=tracker.status,
            vendor_status=tracker.vendor_status,
            title=None,
            summary=tracker.status_reason,
            created_at=tracker.created_at,
            updated_at=tracker.updated_at or tracker.created_at,
            tracker=tracker,
            raw=item,
        )

    async def get_tracker(
        self, agent_id: str, task_id: str, credentials: Credentials | None = None
    ) -> TrackerRecord | None:
        body = await self.request_json(
            "GET",
            PATH,
            credentials=credentials,
            params={"agent_id": agent_id, "task_id": task_id, "limit": 1},
        )
        if not isinstance(body, list):
            raise UpstreamBadResponseError(self.vendor, UNEXPECTED)
        return self._to_tracker(body[0]) if body else None

    async def update_tracker(
        self,
        tracker_id: str,
        *,
        status: str | None,
        status_reason: str | None,
        last_processed_event_id: str | None,
        credentials: Credentials | None = None,
    ) -> TrackerRecord:
        """PUT the whole writable state: Agentex nulls ``status``/``status_reason`` if left out."""
        body: dict[str, Any] = {"status": status, "status_reason": status_reason}
        if last_processed_event_id is not None:
            body["last_processed_event_id"] = last_processed_event_id
        try:
            answer = await self.request_json(
                "PUT", f"{PATH}/{tracker_id}", credentials=credentials, json=body, write=True
            )
        except UpstreamRejectedError as exc:
            if exc.status == 404:
                raise NotFoundError("no such tracker") from exc
            raise
        if not isinstance(answer, dict):
            raise UpstreamBadResponseError(self.vendor, UNEXPECTED)
        try:
            return self._to_tracker(answer)
        except (KeyError, TypeError, ValueError) as exc:
            raise UpstreamBadResponseError(self.vendor, UNEXPECTED) from exc
