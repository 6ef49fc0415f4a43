"""xpander.ai: tasks per agent, newest created first, filtered by one status per listing.

The list is per agent, so the gateway asks the configured agents (or those the query
names). xpander takes a single ``status``, so a filter on several becomes one listing per
value; ``user_id``, ``parent_task_id`` and ``triggering_agent_id`` go upstream as they are.
"""

from __future__ import annotations

from typing import Any, ClassVar
from urllib.parse import quote

from gateway.core.errors import UpstreamBadResponseError
from gateway.core.ids import TASK, encode_id
from gateway.core.records import Direction, Order, OrderField, TaskRecord, Vendor
from gateway.core.statuses import XPANDER_STATUS_MAP, map_status, vendor_values
from gateway.vendors.base import (
    Connector,
    Credentials,
    ListQuery,
    PageToken,
    PageWindows,
    Source,
    SourcePage,
    offset_page,
    params_tuple,
    parse_time,
)

BAD_SHAPE = "xpander answered with an unexpected shape"
MAX_PER_PAGE = 50
"""xpander's maximum ``per_page``."""
NATIVE_ORDER = Order(OrderField.CREATED_AT, Direction.DESC)
"""The only order xpander lists in; a listing wanted in another is read whole and sorted."""


def default_credentials(secret: str) -> Credentials:
    """xpander wants the bare key in ``x-api-key``."""
    return Credentials(secret, "x-api-key", None)


class XpanderConnector(Connector):
    vendor = Vendor.XPANDER
    page_size = MAX_PER_PAGE
    exact_filters: ClassVar[frozenset[str]] = frozenset(
        {"statuses", "agent_ids", "user_id", "parent_task_id", "triggering_agent_id"}
    )

    def sources(self, query: ListQuery) -> list[Source]:
        statuses: list[str | None] = [None]
        if query.statuses is not None:
            statuses = list(vendor_values(XPANDER_STATUS_MAP, query.statuses))
        ordered = query.order == NATIVE_ORDER
        return [
            Source(
                self.vendor,
                _path(agent),
                params_tuple(
                    status=status,
                    user_id=query.user_id,
                    parent_task_id=query.parent_task_id,
                    triggering_agent_id=query.triggering_agent_id,
                ),
                ordered,
            )
            for agent in self.agents_for(query)
            for status in statuses
        ]

    def windows(self, source: Source) -> PageWindows:
        """Newest created first, so tasks created at the same instant tie; ``per_page`` is
        at most 50."""
        return PageWindows(self.page_size, MAX_PER_PAGE, lambda r: r.created_at)

    async def fetch_page(
        self, source: Source, token: PageToken, credentials: Credentials | None = None
    ) -> SourcePage:
        page, per_page = offset_page(token, self.page_size)
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
    native_id = _required(item, "id")
    agent_id = _required(item, "agent_id")
    created = parse_time(_text(item, "created_at"))
    if created is None:
        raise ValueError("created_at")  # the listing's own order: without it, unplaceable
    updated = parse_time(_text(item, "updated_at"))  # null stays null (sorts last)
    vendor_status = _text(item, "status")
    return TaskRecord(
        vendor=Vendor.XPANDER,
        native_id=native_id,
        global_id=encode_id(TASK, Vendor.XPANDER, agent_id, native_id),
        agent_id=agent_id,
        status=map_status(XPANDER_STATUS_MAP, vendor_status),
        vendor_status=vendor_status,
        title=_text(item, "title"),
        summary=_text(item, "result"),
        created_at=created,
        updated_at=updated,
        user_id=_text(item, "user_id"),
        parent_native_id=_text(item, "parent_task_id"),
        triggering_agent_id=_text(item, "triggering_agent_id"),
        raw=item,
    )


def _required(item: dict[str, Any], key: str) -> str:
    """A non-empty string field: without it the item cannot be read (it is skipped)."""
    value = item[key]
    if not isinstance(value, str) or not value:
        raise ValueError(key)
    return value


def _text(item: dict[str, Any], key: str) -> str | None:
    """A nullable string field; any other type makes the item unreadable."""
    value = item.get(key)
    if value is not None and not isinstance(value, str):
        raise TypeError(key)
    return value
