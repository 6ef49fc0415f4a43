"""Subnoto: the team's agent tasks (no agents at all), each as its latest report.

The list is sorted by the latest report's time, which is our ``updated_at``; Subnoto
publishes no creation time, and a task without one sorts by ``updated_at`` for
``CREATED_AT`` too (``TaskRecord.sort_time``), so the one listing streams in every order.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from gateway.core.errors import UpstreamBadResponseError
from gateway.core.ids import TASK, encode_id
from gateway.core.records import TaskRecord, Vendor
from gateway.core.statuses import SUBNOTO_STATUS_MAP, map_status, vendor_values
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

PATH = "/public/agent-task/list"
BAD_SHAPE = "subnoto answered with an unexpected shape"


def default_credentials(secret: str) -> Credentials:
    """Subnoto takes ``Authorization: Bearer <api key>``."""
    return Credentials(secret, "Authorization", "Bearer")


class SubnotoConnector(Connector):
    vendor = Vendor.SUBNOTO
    page_size = 50  # Subnoto's maximum ``limit``
    exact_filters: ClassVar[frozenset[str]] = frozenset({"statuses"})

    def sources(self, query: ListQuery) -> list[Source]:
        if (
            query.agent_ids is not None
            or query.parent_task_id is not None
            or query.triggering_agent_id is not None
        ):
            return []  # team-wide tasks: no agent, no parent
        states = None
        if query.statuses is not None:
            values = vendor_values(SUBNOTO_STATUS_MAP, query.statuses)
            if not values:
                return []
            states = ",".join(values)
        direction = "desc" if query.order.descending else "asc"
        return [
            Source(self.vendor, PATH, params_tuple(stateFilter=states, sortOrder=direction), True)
        ]

    async def fetch_page(
        self, source: Source, token: PageToken, credentials: Credentials | None = None
    ) -> SourcePage:
        params = dict(source.params)
        states = params["stateFilter"].split(",") if "stateFilter" in params else []
        request = {
            "stateFilter": states,
            "page": 1 if token is None else int(token),
            "limit": self.page_size,
            "sortOrder": params["sortOrder"],
        }
        body = await self.request_json("POST", PATH, credentials=credentials, json=request)
        if not isinstance(body, dict):
            raise UpstreamBadResponseError(self.vendor, BAD_SHAPE)
        tasks, pagination = body.get("tasks"), body.get("pagination")
        if not isinstance(tasks, list) or not isinstance(pagination, dict):
            raise UpstreamBadResponseError(self.vendor, BAD_SHAPE)
        total, next_page = pagination.get("totalRecords"), pagination.get("nextPage")
        if not isinstance(total, int) or not (next_page is None or isinstance(next_page, int)):
            raise UpstreamBadResponseError(self.vendor, BAD_SHAPE)
        records, skipped = self.normalize(tasks, _to_record)
        return SourcePage(records, next_token=next_page, total=total, skipped=skipped)


def _to_record(item: dict[str, Any]) -> TaskRecord:
    native_id = _required(item, "taskUuid")
    report = item["latestReport"]
    vendor_status = _text(report, "state")
    author = report.get("author")
    return TaskRecord(
        vendor=Vendor.SUBNOTO,
        native_id=native_id,
        global_id=encode_id(TASK, Vendor.SUBNOTO, "", native_id),
        agent_id=None,
        status=map_status(SUBNOTO_STATUS_MAP, vendor_status),
        vendor_status=vendor_status,
        title=None,
        summary=_text(report, "summary"),
        created_at=None,  # Subnoto publishes no creation time
        updated_at=_millis(report["timestamp"]),
        user_id=_text(author, "uuid") if author is not None else None,
        link=_text(report, "link"),
        raw=item,
    )


def _millis(value: Any) -> datetime:
    """The report time (unix ms) as aware UTC; a missing or impossible one makes the item
    unreadable."""
    try:
        moment = parse_time(value)
    except (OverflowError, OSError) as exc:  # past what a datetime can hold
        raise ValueError("timestamp out of range") from exc
    if moment is None:
        raise ValueError("timestamp")
    return moment


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
