"""Query resolvers: thin, they translate arguments and call ``TaskService``."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

import strawberry

from gateway.core.records import TaskRecord, TrackerRecord, Vendor
from gateway.core.stats import STATS_ORDER, GroupBy, task_stats
from gateway.graph.context import GraphContext
from gateway.graph.inputs import TaskFilter, TaskOrder, to_list_query
from gateway.graph.types import (
    Node,
    PageInfo,
    TaskConnection,
    TaskEdge,
    TaskStats,
    TaskStatsGroup,
    TaskType,
    TrackerConnection,
    VendorInfo,
)
from gateway.vendors.base import ListQuery

Info = strawberry.Info[GraphContext, None]
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
            bool, strawberry.argument(description="Skip the cache and ask the vendors now.")
        ] = False,
    ) -> TaskConnection:
        context = info.context
        context.state.bypass_cache = context.state.bypass_cache or fresh
        query, vendors = to_list_query(filter, order_by)
        plan = context.service.plan(query, vendors)
        page = await context.service.page(plan, first, after, context.state)
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
        query = ListQuery(agent_ids=frozenset([agent_id]) if agent_id else None, native_id=task_id)
        plan = service.plan(query, [Vendor.AGENTEX])
        page = await service.page(plan, first, after, info.context.state)
        trackers: list[TrackerRecord] = [
            item.record.tracker for item in page.items if item.record.tracker is not None
        ]
        return TrackerConnection(
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
    def vendors(self, info: Info) -> list[VendorInfo]:
        upstream = info.context.service.upstream
        return [
            VendorInfo.from_health(upstream.health[v], upstream.circuit_state(v)) for v in Vendor
        ]
