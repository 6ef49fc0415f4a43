"""xpander.ai: tasks per agent, newest created first, filtered by one status per listing.

The list is per agent, so the gateway asks the configured agents (or those the query
names). xpander takes a single ``status``, so a filter on several becomes one listing per
value; ``user_id``, ``parent_task_id`` and ``triggering_agent_id`` go upstream as they are.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar
from urllib.parse import quote

from gateway.core.contract import Credentials, ListQuery, PageToken, PageWindows, Source, SourcePage
from gateway.core.errors import UpstreamBadResponseError
from gateway.core.ids import TASK, encode_id
from gateway.core.records import TaskRecord, TaskStatus, Vendor
from gateway.core.statuses import map_status
from gateway.vendors.base import CREATED_FIRST, Connector, required, required_time, text, time_field

BAD_SHAPE = "xpander answered with an unexpected shape"
MAX_PER_PAGE = 50
"""xpander's maximum ``per_page``."""
STATUSES: Mapping[str, TaskStatus] = {
    "pending": TaskStatus.PENDING,
    "executing": TaskStatus.RUNNING,
    "paused": TaskStatus.PAUSED,
    "error": TaskStatus.FAILED,
    "failed": TaskStatus.FAILED,
    "completed": TaskStatus.COMPLETED,
    "stopped": TaskStatus.CANCELLED,
}


class XpanderConnector(Connector):
    vendor = Vendor.XPANDER
    page_size = MAX_PER_PAGE
    exact_filters: ClassVar[frozenset[str]] = frozenset(
        {"statuses", "agent_ids", "user_id", "parent_task_id", "triggering_agent_id"}
    )
    LABEL = "xpander"
    DESCRIPTION = "xpander.ai: an agent's tasks (`GET /v1/agents/{agent_id}/tasks`)."
    CREDENTIAL_HEADER = "x-api-key"
    CREDENTIAL_SCHEME = None  # the bare key
    PER_AGENT = True
    STATUS_MAP = STATUSES

    def subtasks_query(self, parent_ids: Sequence[str]) -> ListQuery:
        """One parent: pushed down as ``parent_task_id`` to every agent. Several: every
        agent's whole listing in xpander's own order (the same cached pages the listings
        and parent lookups use), so a page of tasks costs one read per agent, not one call
        per task and agent."""
        if len(parent_ids) == 1:
            return ListQuery(parent_task_id=parent_ids[0], order=CREATED_FIRST)
        return ListQuery(order=CREATED_FIRST)

    def sources(self, query: ListQuery) -> list[Source]:
        values = self.status_values(query)
        statuses: list[str | None] = [None] if values is None else list(values)
        ordered = query.order == CREATED_FIRST
        return [
            self.source(
                _path(agent),
                ordered,
                status=status,
                user_id=query.user_id,
                parent_task_id=query.parent_task_id,
                triggering_agent_id=query.triggering_agent_id,
            )
            for agent in self.agents_for(query)
            for status in statuses
        ]

    def windows(self, source: Source) -> PageWindows:
        """Newest created first, so tasks created at the same instant tie; ``per_page`` is
        at most 50."""
        return self.tie_windows(MAX_PER_PAGE, lambda r: r.created_at)

    async def fetch_page(
        self, source: Source, token: PageToken, credentials: Credentials | None = None
    ) -> SourcePage:
        page, per_page = self.offset_page(token)
        params = {**dict(source.params), "page": page, "per_page": per_page}
        body = await self.request_json("GET", source.path, credentials=credentials, params=params)
        if not isinstance(body, dict):
            raise UpstreamBadResponseError(self.vendor, BAD_SHAPE)
        items, total, pages = body.get("items"), body.get("total"), body.get("total_pages")
        if not (isinstance(items, list) and isinstance(total, int) and isinstance(pages, int)):
            raise UpstreamBadResponseError(self.vendor, BAD_SHAPE)
        records, skipped = self.normalize(items, _to_record)
        return SourcePage(
            records, next_token=page + 1 if page < pages else None, total=total, skipped=skipped
        )


def _path(agent: str) -> str:
    return f"/v1/agents/{quote(agent, safe='')}/tasks"


def _to_record(item: dict[str, Any]) -> TaskRecord:
    native_id = required(item, "id")
    agent_id = required(item, "agent_id")
    vendor_status = text(item, "status")
    return TaskRecord(
        vendor=Vendor.XPANDER,
        native_id=native_id,
        global_id=encode_id(TASK, Vendor.XPANDER, agent_id, native_id),
        agent_id=agent_id,
        status=map_status(STATUSES, vendor_status),
        vendor_status=vendor_status,
        title=text(item, "title"),
        summary=text(item, "result"),
        created_at=required_time(item, "created_at"),  # the listing's own order
        updated_at=time_field(item, "updated_at"),  # null stays null (sorts last)
        user_id=text(item, "user_id"),
        parent_native_id=text(item, "parent_task_id"),
        triggering_agent_id=text(item, "triggering_agent_id"),
        raw=item,
    )
