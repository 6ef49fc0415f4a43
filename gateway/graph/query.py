"""Query resolvers: thin, they translate arguments and call ``TaskService``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine, Sequence
from dataclasses import replace
from typing import Annotated, Any

import strawberry
from strawberry.types.nodes import SelectedField

from gateway.core.contract import ListQuery, TrackerWriter
from gateway.core.records import TaskRecord, TrackerRecord, Vendor
from gateway.core.stats import STATS_ORDER, GroupBy, task_stats
from gateway.graph.context import GraphContext
from gateway.graph.inputs import TaskFilter, TaskOrder, checked_ids, to_list_query
from gateway.graph.types import (
    Node,
    PageInfo,
    TaskConnection,
    TaskEdge,
    TaskStats,
    TaskStatsGroup,
    TaskType,
    TrackerConnection,
    TrackerEdge,
    VendorIndexSync,
    VendorInfo,
)

Info = strawberry.Info[GraphContext, None]


def selects(fields: Sequence[Any], name: str) -> bool:
    """Whether the selections under ``fields`` (through fragments) ask for ``name``."""
    for field in fields:
        for selection in getattr(field, "selections", None) or ():
            if isinstance(selection, SelectedField):
                if selection.name == name:
                    return True
            elif selects([selection], name):
                return True  # a fragment spread or inline fragment: look inside
    return False


def start_count(count: Coroutine[Any, Any, int]) -> asyncio.Task[int]:
    """Run ``count`` beside the page; an outcome nobody awaits is still retrieved."""
    task = asyncio.ensure_future(count)
    task.add_done_callback(lambda t: t.cancelled() or t.exception())
    return task


GlobalId = Annotated[strawberry.ID, strawberry.argument(description="A global id.")]


@strawberry.type(description="Read the tasks of every configured vendor as one graph.")
class Query:
    @strawberry.field(description="Tasks of every vendor, merged into one ordered page.")
    async def tasks(
        self,
        info: Info,
        filter: Annotated[
            TaskFilter | None, strawberry.argument(description="Which tasks.")
        ] = None,
        order_by: Annotated[
            TaskOrder | None, strawberry.argument(description="Default: UPDATED_AT DESC.")
        ] = None,
        first: Annotated[
            int | None,
            strawberry.argument(
                description="Page size: 0 to the configured maximum (100); default 20."
            ),
        ] = None,
        after: Annotated[
            str | None, strawberry.argument(description="`endCursor` of the previous page.")
        ] = None,
        fresh: Annotated[
            bool,
            strawberry.argument(
                description="Skip the cache and ask the vendors now, within their budgets: "
                "a vendor whose budget is spent is answered from the cache (stale)."
            ),
        ] = False,
    ) -> TaskConnection:
        context = info.context
        context.state.bypass_cache = context.state.bypass_cache or fresh
        context.state.live = context.state.live or fresh
        query, vendors = to_list_query(filter, order_by)
        plan = context.service.plan(query, vendors)
        # ``totalCount`` asked: counted concurrently with the page, not after it (where the
        # vendor gives a total, from the same first-page responses the merge reads).
        count = (
            start_count(context.service.count(plan, context.state))
            if selects(info.selected_fields, "totalCount")
            else None
        )
        try:
            page = await context.service.page(plan, first, after, context.state)
        except BaseException:
            if count is not None:
                count.cancel()
            raise
        edges = [TaskEdge(_page=page, _item=item) for item in page.items]
        return TaskConnection(
            edges=edges,
            nodes=[item.record for item in page.items],  # type: ignore[misc]
            page_info=PageInfo(
                has_next_page=page.has_next_page,
                end_cursor=page.cursor(page.items[-1]) if page.items else after,
            ),
            missing_vendors=[e.vendor for e in context.state.errors],
            _plan=plan,
            _count=count,
        )

    @strawberry.field(description="One task by its global id; null if it no longer exists.")
    async def task(self, info: Info, id: GlobalId) -> TaskType | None:
        found = await info.context.service.find(id, info.context.state)
        return found if isinstance(found, TaskRecord) else None  # type: ignore[return-value]

    @strawberry.field(description="Any object by its global id (Relay).")
    async def node(self, info: Info, id: GlobalId) -> Node | None:
        return await info.context.service.find(id, info.context.state)  # type: ignore[return-value]

    @strawberry.field(description="Agentex task trackers, newest update first.")
    async def trackers(
        self,
        info: Info,
        agent_id: Annotated[
            str | None, strawberry.argument(description="Only this agent's trackers.")
        ] = None,
        task_id: Annotated[
            str | None, strawberry.argument(description="Only trackers of this Agentex task.")
        ] = None,
        first: Annotated[
            int | None, strawberry.argument(description="Page size (default 20).")
        ] = None,
        after: Annotated[
            str | None, strawberry.argument(description="`endCursor` of the previous page.")
        ] = None,
    ) -> TrackerConnection:
        service = info.context.service
        query = checked_ids(
            ListQuery(agent_ids=frozenset([agent_id]) if agent_id else None, native_id=task_id),
            agents="agentId",
        )
        plan = service.plan(query, service.vendors_with(TrackerWriter))
        page = await service.page(plan, first, after, info.context.state)
        items = [item for item in page.items if item.record.tracker is not None]
        trackers: list[TrackerRecord] = [item.record.tracker for item in items]  # type: ignore[misc]
        return TrackerConnection(
            edges=[TrackerEdge(_page=page, _item=item) for item in items],
            nodes=trackers,  # type: ignore[arg-type]
            page_info=PageInfo(
                has_next_page=page.has_next_page,
                end_cursor=page.cursor(page.items[-1]) if page.items else after,
            ),
        )

    @strawberry.field(
        description="Counts (and orq's cost and token sums, and durations) over every task "
        "matching the filter, not one page, grouped as asked."
    )
    async def task_stats(
        self,
        info: Info,
        filter: Annotated[
            TaskFilter | None, strawberry.argument(description="Which tasks.")
        ] = None,
        group_by: Annotated[
            list[GroupBy], strawberry.argument(description="Dimensions; [] for one total.")
        ] = (GroupBy.VENDOR,),  # type: ignore[assignment]
    ) -> TaskStats:
        query, vendors = to_list_query(filter, None)
        service = info.context.service
        plan = service.plan(replace(query, order=STATS_ORDER), vendors)
        stats = await task_stats(service, plan, list(dict.fromkeys(group_by)), info.context.state)
        return TaskStats(
            total=stats.total,
            groups=[TaskStatsGroup.from_group(g) for g in stats.groups],
            missing_vendors=[e.vendor for e in info.context.state.errors],
        )

    @strawberry.field(description="Every vendor: enabled, and how its recent calls went.")
    async def vendors(self, info: Info) -> list[VendorInfo]:
        upstream = info.context.service.upstream
        found = [
            VendorInfo.from_health(
                upstream.health[v],
                upstream.circuit_state(v),
                await upstream.budgets.peek(v) if v in upstream.vendors else None,
            )
            for v in Vendor
        ]
        index, now = info.context.service.index, time.time()
        for vendor_info in found:
            status = index.status(vendor_info.vendor) if index is not None else None
            if status is not None:
                vendor_info.index = VendorIndexSync.from_status(status, now)
        return found
