"""orq.ai: an agent's tasks by cursor, newest ``_id`` (a ULID: creation time) first.

orq has no status field; the status is derived from ``state`` (see ``orq_status``).
"""

from __future__ import annotations

from typing import Any, ClassVar

from gateway.core.errors import UpstreamBadResponseError
from gateway.core.ids import TASK, encode_id
from gateway.core.records import Direction, OrderField, TaskMetrics, TaskRecord, Vendor
from gateway.core.statuses import ORQ_STATUS_MAP, map_status, orq_status, vendor_values
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


class OrqConnector(Connector):
    vendor = Vendor.ORQ
    page_size = 50
    bulk_page_size = 200
    """A listing streamed for a page of results reads small pages; one read whole (to be
    sorted here) reads the largest orq allows, following fewer cursors."""
    exact_filters: ClassVar[frozenset[str]] = frozenset({"statuses", "agent_ids"})

    def sources(self, query: ListQuery) -> list[Source]:
        if query.parent_task_id or query.triggering_agent_id:
            return []
        status = None
        if query.statuses is not None:
            values = vendor_values(ORQ_STATUS_MAP, query.statuses)
            if not values:
                return []
            status = ",".join(values)
        ordered = query.order.field is OrderField.CREATED_AT and (
            query.order.direction is Direction.DESC
        )
        limit = self.page_size if ordered else self.bulk_page_size
        return [
            Source(
                self.vendor,
                f"/v2/agents/{agent}/tasks",
                params_tuple(status=status, limit=limit),
                ordered,
            )
            for agent in self.agents_for(query)
        ]

    async def fetch_page(
        self, source: Source, token: PageToken, credentials: Credentials | None = None
    ) -> SourcePage:
        params: dict[str, Any] = dict(source.params)
        limit = int(params["limit"])
        if token is not None:
            params["starting_after"] = token
        body = await self.request_json("GET", source.path, credentials=credentials, params=params)
        if not isinstance(body, dict) or not isinstance(body.get("tasks"), list):
            raise UpstreamBadResponseError(self.vendor, "orq answered with an unexpected shape")
        agent = source.path.split("/")[3]
        items = body["tasks"]
        records, skipped = self.normalize(items, lambda item: _to_record(item, agent))
        last = items[-1].get("_id") if items and isinstance(items[-1], dict) else None
        total = body.get("overall_total")
        return SourcePage(
            records,
            next_token=last if len(items) >= limit and last else None,
            total=int(total) if isinstance(total, int | float) else None,
            skipped=skipped,
        )


def _to_record(item: dict[str, Any], agent: str) -> TaskRecord:
    state = item.get("state") or {}
    derived = orq_status(state)
    created = parse_time(item.get("created"))
    updated = parse_time(item.get("updated")) or created
    if updated is None:
        raise ValueError("no time")
    metrics = item.get("metrics") or {}
    return TaskRecord(
        vendor=Vendor.ORQ,
        native_id=str(item["_id"]),
        global_id=encode_id(TASK, Vendor.ORQ, agent, str(item["_id"])),
        agent_id=agent,
        status=map_status(ORQ_STATUS_MAP, derived),
        vendor_status=derived,
        title=item.get("name"),
        summary=state.get("error") or None,
        created_at=created,
        updated_at=updated,
        user_id=item.get("created_by_id"),
        metrics=TaskMetrics(
            input_cost=metrics.get("input_cost"),
            output_cost=metrics.get("output_cost"),
            total_cost=metrics.get("total_cost"),
            prompt_tokens=metrics.get("prompt_tokens"),
            completion_tokens=metrics.get("completion_tokens"),
            total_tokens=metrics.get("total_tokens"),
            execution_time_seconds=state.get("accumulated_execution_time"),
        ),
        raw=item,
    )
