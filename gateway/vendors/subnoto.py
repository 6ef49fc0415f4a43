"""Subnoto: the team's agent tasks (no agents), each with its latest report."""

from __future__ import annotations

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


class SubnotoConnector(Connector):
    vendor = Vendor.SUBNOTO
    page_size = 50
    exact_filters: ClassVar[frozenset[str]] = frozenset({"statuses"})

    def sources(self, query: ListQuery) -> list[Source]:
        if query.agent_ids is not None or query.parent_task_id or query.triggering_agent_id:
            return []  # Subnoto tasks belong to the team, not to an agent
        states = None
        if query.statuses is not None:
            states = ",".join(vendor_values(SUBNOTO_STATUS_MAP, query.statuses))
            if not states:
                return []
        # Sorted by the latest report's time: our update time, and the CREATED_AT key of a
        # task with no creation time, so every order streams.
        order = "desc" if query.order.descending else "asc"
        return [Source(self.vendor, PATH, params_tuple(stateFilter=states, sortOrder=order), True)]

    async def fetch_page(
        self, source: Source, token: PageToken, credentials: Credentials | None = None
    ) -> SourcePage:
        params = dict(source.params)
        body: dict[str, Any] = {
            "page": int(token or 1),
            "limit": self.page_size,
            "sortOrder": params["sortOrder"],
        }
        if "stateFilter" in params:
            body["stateFilter"] = params["stateFilter"].split(",")
        answer = await self.request_json("POST", PATH, credentials=credentials, json=body)
        if not isinstance(answer, dict) or not isinstance(answer.get("tasks"), list):
            raise UpstreamBadResponseError(self.vendor, "subnoto answered with an unexpected shape")
        records, skipped = self.normalize(answer["tasks"], _to_record)
        pagination = answer.get("pagination") or {}
        next_page = pagination.get("nextPage")
        total = pagination.get("totalRecords")
        return SourcePage(
            records,
            next_token=next_page if isinstance(next_page, int) else None,
            total=total if isinstance(total, int) else None,
            skipped=skipped,
        )


def _to_record(item: dict[str, Any]) -> TaskRecord:
    report = item["latestReport"]
    updated = parse_time(report["timestamp"])
    if updated is None:
        raise ValueError("no timestamp")
    native = str(item["taskUuid"])
    return TaskRecord(
        vendor=Vendor.SUBNOTO,
        native_id=native,
        global_id=encode_id(TASK, Vendor.SUBNOTO, "", native),
        agent_id=None,
        status=map_status(SUBNOTO_STATUS_MAP, report.get("state")),
        vendor_status=report.get("state"),
        title=None,
        summary=report.get("summary"),
        created_at=None,
        updated_at=updated,
        user_id=(report.get("author") or {}).get("uuid"),
        link=report.get("link"),
        raw=item,
    )
