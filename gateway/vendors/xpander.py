"""xpander.ai: an agent's tasks, newest created first, one status per listing."""

from __future__ import annotations

from typing import Any, ClassVar

from gateway.core.errors import UpstreamBadResponseError
from gateway.core.ids import TASK, encode_id
from gateway.core.records import Direction, OrderField, TaskRecord, Vendor
from gateway.core.statuses import XPANDER_STATUS_MAP, map_status, vendor_values
from gateway.vendors.base import (
    Connector,
    Credentials,
    ListQuery,
    PageToken,
    Source,
    SourcePage,
    params_tuple,
    parse_time,
)


class XpanderConnector(Connector):
    vendor = Vendor.XPANDER
    page_size = 50
    exact_filters: ClassVar[frozenset[str]] = frozenset(
        {"statuses", "agent_ids", "user_id", "parent_task_id", "triggering_agent_id"}
    )

    def sources(self, query: ListQuery) -> list[Source]:
        agents = self.agents_for(query)
        statuses: list[str | None] = [None]
        if query.statuses is not None:
            statuses = list(vendor_values(XPANDER_STATUS_MAP, query.statuses))
        ordered = query.order.field is OrderField.CREATED_AT and (
            query.order.direction is Direction.DESC
        )
        return [
            Source(
                self.vendor,
                f"/v1/agents/{agent}/tasks",
                params_tuple(
                    status=status,
                    user_id=query.user_id,
                    parent_task_id=query.parent_task_id,
                    triggering_agent_id=query.triggering_agent_id,
                ),
                ordered=ordered,
            )
            for agent in agents
            for status in statuses
        ]

    async def fetch_page(
        self, source: Source, token: PageToken, credentials: Credentials | None = None
    ) -> SourcePage:
        page = int(token or 1)
        body = await self.request_json(
            "GET",
            source.path,
            credentials=credentials,
            params={**dict(source.params), "page": page, "per_page": self.page_size},
        )
        if not isinstance(body, dict) or not isinstance(body.get("items"), list):
            raise UpstreamBadResponseError(self.vendor, "xpander answered with an unexpected shape")
        records, skipped = self.normalize(body["items"], _to_record)
        total_pages = body.get("total_pages")
        more = page < total_pages if isinstance(total_pages, int) else bool(body["items"])
        total = body.get("total")
        return SourcePage(
            records,
            next_token=page + 1 if more else None,
            total=total if isinstance(total, int) else None,
            skipped=skipped,
        )


def _to_record(item: dict[str, Any]) -> TaskRecord:
    created = parse_time(item.get("created_at"))
    updated = parse_time(item.get("updated_at")) or created
    if updated is None:
        raise ValueError("no time")
    agent = str(item["agent_id"])
    return TaskRecord(
        vendor=Vendor.XPANDER,
        native_id=str(item["id"]),
        global_id=encode_id(TASK, Vendor.XPANDER, agent, str(item["id"])),
        agent_id=agent,
        status=map_status(XPANDER_STATUS_MAP, item.get("status")),
        vendor_status=item.get("status"),
        title=item.get("title"),
        summary=item.get("result"),
        created_at=created,
        updated_at=updated,
        user_id=item.get("user_id"),
        parent_native_id=item.get("parent_task_id"),
        triggering_agent_id=item.get("triggering_agent_id"),
        raw=item,
    )
