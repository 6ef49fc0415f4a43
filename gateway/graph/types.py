"""GraphQL object types. Tasks and trackers resolve straight from the normalized records:
plain attributes on the fast path, resolvers only where related records are fetched."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry.scalars import JSON

from gateway.core.budget import BudgetStatus
from gateway.core.context import Priority
from gateway.core.contract import SubtaskLister
from gateway.core.health import VendorHealth
from gateway.core.indexed import IndexStatus
from gateway.core.merge import MergedItem, MergedPage
from gateway.core.records import TaskMetrics, TaskRecord, TaskStatus, TrackerRecord, Vendor
from gateway.core.resilience import CircuitState
from gateway.core.service import Plan
from gateway.core.stats import Group, GroupBy
from gateway.graph.enums import TaskStatusEnum, VendorEnum  # noqa: F401  (registers enums)

if TYPE_CHECKING:
    from gateway.graph.context import GraphContext


def _utc(epoch: float | None) -> datetime | None:
    return datetime.fromtimestamp(epoch, tz=UTC) if epoch is not None else None


@strawberry.interface(description="An object with a stable, opaque global id.")
class Node:
    id: strawberry.ID = strawberry.field(description="Opaque global id; `Query.node` finds it.")


@strawberry.type(
    name="TaskMetrics",
    description="Cost and token usage, where the vendor reports "
    "them (orq: `metrics` and `state.accumulated_execution_time`).",
)
class TaskMetricsType:
    input_cost: float | None = strawberry.field(description="Cost of the input tokens.")
    output_cost: float | None = strawberry.field(description="Cost of the output tokens.")
    total_cost: float | None = strawberry.field(description="Total cost.")
    prompt_tokens: int | None = strawberry.field(description="Prompt tokens used.")
    completion_tokens: int | None = strawberry.field(description="Completion tokens used.")
    total_tokens: int | None = strawberry.field(description="All tokens used.")
    execution_time_seconds: float | None = strawberry.field(
        description="Accumulated execution time, in seconds."
    )

    @classmethod
    def is_type_of(cls, obj: Any, info: Any) -> bool:
        return isinstance(obj, TaskMetrics)


@strawberry.type(
    name="Tracker",
    description="An Agentex task tracker: how far an agent got in processing a task's events.",
)
class TrackerType(Node):
    global_id: strawberry.ID = strawberry.field(name="id", description="Opaque global id.")
    native_id: str = strawberry.field(description="Agentex's tracker id (`id`).")
    agent_id: str = strawberry.field(description="Agentex `agent_id`.")
    task_id: str = strawberry.field(description="Agentex `task_id`.")
    status: TaskStatus = strawberry.field(description="`status` mapped to the shared status.")
    vendor_status: str | None = strawberry.field(description="Agentex's own `status`, untouched.")
    status_reason: str | None = strawberry.field(description="Agentex `status_reason`.")
    last_processed_event_id: str | None = strawberry.field(
        description="Agentex `last_processed_event_id`: the last event the agent processed."
    )
    created_at: datetime = strawberry.field(description="Agentex `created_at`, UTC.")
    updated_at: datetime | None = strawberry.field(
        description="Agentex `updated_at`, UTC; null where Agentex has none (such trackers "
        "come after every dated one, in both directions)."
    )

    @classmethod
    def is_type_of(cls, obj: Any, info: Any) -> bool:
        return isinstance(obj, TrackerRecord)


@strawberry.type(name="Task", description="One agent task of any vendor, in the shared shape.")
class TaskType(Node):
    global_id: strawberry.ID = strawberry.field(name="id", description="Opaque global id.")
    vendor: Vendor = strawberry.field(description="The vendor that holds the task.")
    native_id: str = strawberry.field(
        description="The vendor's own id: Agentex `task_id`, xpander `id`, orq `_id`, "
        "Subnoto `taskUuid`."
    )
    agent_id: str | None = strawberry.field(
        description="The agent: Agentex/xpander `agent_id`, orq agent key; null for Subnoto."
    )
    status: TaskStatus = strawberry.field(description="The shared status.")
    vendor_status: str | None = strawberry.field(
        description="The vendor's own status, untouched (orq: derived from `state`)."
    )
    title: str | None = strawberry.field(description="xpander `title`, orq `name`.")
    summary: str | None = strawberry.field(
        description="Agentex `status_reason`, xpander `result`, orq `state.error`, "
        "Subnoto `latestReport.summary`."
    )
    created_at: datetime | None = strawberry.field(
        description="Creation time, UTC; null for Subnoto, which does not publish one. In "
        "`CREATED_AT` order a null sorts after every time, in both directions."
    )
    updated_at: datetime | None = strawberry.field(
        description="Last update, UTC (Subnoto: the latest report); null where the vendor "
        "has none (Agentex allows it): never replaced by another time. In `UPDATED_AT` "
        "order a null sorts after every time, in both directions, and `updatedAfter` / "
        "`updatedBefore` never match it."
    )
    user_id: str | None = strawberry.field(
        description="Who started it: xpander `user_id`, orq `created_by_id`, Subnoto "
        "latest report author."
    )
    parent_native_id: str | None = strawberry.field(
        name="parentTaskId", description="xpander `parent_task_id`."
    )
    triggering_agent_id: str | None = strawberry.field(
        description="xpander `triggering_agent_id`: the agent that delegated this task."
    )
    link: str | None = strawberry.field(description="Subnoto `latestReport.link`.")
    metrics: TaskMetricsType | None = strawberry.field(description="Cost and tokens (orq).")
    tracker: TrackerType | None = strawberry.field(
        description="The Agentex tracker this task is (Agentex only)."
    )
    raw: JSON = strawberry.field(description="The vendor's record, untouched.")

    @strawberry.field(description="The task that delegated this one (xpander sub-tasks).")
    async def parent_task(
        self, info: strawberry.Info[GraphContext, None]
    ) -> Annotated[TaskType, strawberry.lazy("gateway.graph.types")] | None:
        record: TaskRecord = self  # type: ignore[assignment]
        if record.parent_native_id is None:
            return None
        return await info.context.parents.load(record)  # type: ignore[return-value]

    @strawberry.field(description="Tasks this one delegated (xpander `parent_task_id`).")
    async def subtasks(
        self, info: strawberry.Info[GraphContext, None]
    ) -> list[Annotated[TaskType, strawberry.lazy("gateway.graph.types")]]:
        record: TaskRecord = self  # type: ignore[assignment]
        if not info.context.service.has(record.vendor, SubtaskLister):
            return []  # a vendor whose tasks have no sub-tasks
        return await info.context.children.load(record)  # type: ignore[return-value]

    @classmethod
    def is_type_of(cls, obj: Any, info: Any) -> bool:
        return isinstance(obj, TaskRecord)


@strawberry.type(description="Relay page information.")
class PageInfo:
    has_next_page: bool = strawberry.field(description="More tasks follow this page.")
    end_cursor: str | None = strawberry.field(description="Pass as `after` for the next page.")


@strawberry.type(description="A task and the cursor just after it.")
class TaskEdge:
    _page: strawberry.Private[MergedPage]
    _item: strawberry.Private[MergedItem]

    @strawberry.field(description="The task.")
    def node(self) -> TaskType:
        return self._item.record  # type: ignore[return-value]

    @strawberry.field(description="Resume after this task with `after: cursor`.")
    def cursor(self) -> str:
        return self._page.cursor(self._item)


@strawberry.type(description="How one vendor's share of this answer was obtained.")
class VendorPartType:
    vendor: Vendor = strawberry.field(description="The vendor.")
    ok: bool = strawberry.field(description="False when the vendor's part is missing.")
    from_cache: bool = strawberry.field(description="Every page came from the gateway's cache.")
    stale: bool = strawberry.field(
        description="Some page came from the cache in place of the vendor's answer: past its "
        "TTL because the vendor failed, or because it had not answered within "
        "`graphql.answer_within` (then with or without `fresh`)."
    )
    fetched_at: datetime | None = strawberry.field(
        description="When the oldest page of this part was fetched from the vendor."
    )
    upstream_pages: int = strawberry.field(description="Pages read (from cache or upstream).")
    error_code: str | None = strawberry.field(description="Why the part is missing.")
    degraded: bool = strawberry.field(
        description="The vendor sent records that could not be read: they are left out "
        "(see `skippedRecords` and the `UPSTREAM_BAD_RECORDS` error)."
    )
    skipped_records: int = strawberry.field(
        description="Records of the pages read for this answer that could not be read."
    )


@strawberry.type(description="A page of tasks merged across vendors, in the requested order.")
class TaskConnection:
    edges: list[TaskEdge] = strawberry.field(description="The tasks with their cursors.")
    nodes: list[TaskType] = strawberry.field(description="The tasks, without cursors.")
    page_info: PageInfo = strawberry.field(description="Paging.")
    missing_vendors: list[Vendor] = strawberry.field(
        description="Vendors that could not answer: their tasks are absent (see `errors`)."
    )
    _plan: strawberry.Private[Plan]
    _count: strawberry.Private[asyncio.Task[int] | None] = None

    @strawberry.field(description="Per vendor: cache, freshness and errors of this answer.")
    def vendor_parts(self, info: strawberry.Info[GraphContext, None]) -> list[VendorPartType]:
        return vendor_parts(info.context, self._plan.vendors)

    @strawberry.field(
        description="All matching tasks, not only this page. Where the vendor's own total "
        "is exact for the filter (xpander `total`, orq `overall_total`, Subnoto "
        "`pagination.totalRecords`) it comes from the first page's response, read "
        "concurrently with the page; else from a (cached) full read, also concurrent."
    )
    async def total_count(self, info: strawberry.Info[GraphContext, None]) -> int:
        if self._count is not None:
            return await self._count
        return await info.context.service.count(self._plan, info.context.state)


def vendor_parts(context: GraphContext, vendors: tuple[Vendor, ...]) -> list[VendorPartType]:
    parts = []
    for vendor in vendors:
        part = context.state.parts.get(vendor)
        parts.append(
            VendorPartType(
                vendor=vendor,
                ok=part is None or part.error is None,
                from_cache=part.from_cache if part else True,
                stale=part.stale if part else False,
                fetched_at=_utc(part.fetched_at) if part else None,
                upstream_pages=part.calls if part else 0,
                error_code=part.error.code if part and part.error else None,
                degraded=bool(part and part.skipped_records),
                skipped_records=part.skipped_records if part else 0,
            )
        )
    return parts


@strawberry.type(description="A tracker and the cursor just after it.")
class TrackerEdge:
    _page: strawberry.Private[MergedPage]
    _item: strawberry.Private[MergedItem]

    @strawberry.field(description="The tracker.")
    def node(self) -> TrackerType:
        return self._item.record.tracker  # type: ignore[return-value]

    @strawberry.field(description="Resume after this tracker with `after: cursor`.")
    def cursor(self) -> str:
        return self._page.cursor(self._item)


@strawberry.type(description="A page of Agentex trackers (a Relay connection).")
class TrackerConnection:
    edges: list[TrackerEdge] = strawberry.field(description="The trackers with their cursors.")
    nodes: list[TrackerType] = strawberry.field(description="The trackers, without cursors.")
    page_info: PageInfo = strawberry.field(description="Paging.")


@strawberry.type(description="A vendor status the gateway does not map, and how often.")
class UnknownStatus:
    value: str = strawberry.field(
        description="The vendor's raw status (the text null when absent), cut to 200 characters."
    )
    count: int = strawberry.field(description="Records seen with it.")


@strawberry.type(description="A vendor's call budget (`[vendors.<name>] max_requests_per_minute`).")
class VendorBudget:
    limit_per_minute: int | None = strawberry.field(
        description="Calls per rolling minute in force, all replicas together: the configured "
        "limit, or the vendor's `X-RateLimit-Limit` when lower (this replica's share while "
        "Redis is down); null: no limit."
    )
    remaining: int | None = strawberry.field(
        description="Calls interactive requests may still make in the window; null: no limit."
    )
    blocked_until: datetime | None = strawberry.field(
        description="The vendor asked for silence (429, `X-RateLimit-Remaining: 0`) until then."
    )
    retry_after_seconds: float | None = strawberry.field(
        description="Seconds until an interactive call may go again; null: one may go now."
    )
    deferred_interactive: int = strawberry.field(
        description="Interactive calls not made for want of budget (answered stale or missing)."
    )
    deferred_background: int = strawberry.field(
        description="Background calls (subscription polls, sync) not made for want of budget."
    )
    rate_limited: int = strawberry.field(
        description="429s received from the vendor (the goal is none)."
    )
    max_concurrency: int | None = strawberry.field(
        description="Calls in flight at once, per replica; null: no limit of its own."
    )
    in_flight: int = strawberry.field(description="Calls in flight now (with a concurrency limit).")
    shared: bool = strawberry.field(
        description="Drawn from the window every replica shares (Redis answering)."
    )

    @classmethod
    def from_status(cls, status: BudgetStatus) -> VendorBudget:
        return cls(
            limit_per_minute=status.limit,
            remaining=status.remaining,
            blocked_until=_utc(status.blocked_until),
            retry_after_seconds=status.retry_after,
            deferred_interactive=status.deferred.get(Priority.INTERACTIVE, 0),
            deferred_background=status.deferred.get(Priority.BACKGROUND, 0),
            rate_limited=status.rate_limited,
            max_concurrency=status.max_concurrency,
            in_flight=status.in_flight,
            shared=status.shared,
        )


@strawberry.type(description="A vendor's sync into the task index (`[index] url`).")
class VendorIndexSync:
    synced_at: datetime | None = strawberry.field(
        description="End of the last completed sync pass (any replica): `tasks` read from "
        "the index are as of then (their `vendorParts.fetchedAt`)."
    )
    lag_seconds: float | None = strawberry.field(
        description="Seconds since `syncedAt`; null before the first pass ends."
    )
    first_sync_done: bool = strawberry.field(
        description="The first full sync is done: queries read this vendor from the index "
        "(unless `fresh: true`); before, they read it live."
    )
    first_sync_progress: float = strawberry.field(
        description="Share (0 to 1) of the vendor's listings the first full sync has read."
    )
    last_error: str | None = strawberry.field(
        description="Code and message of the last failed pass; null once a pass succeeds."
    )
    last_error_at: datetime | None = strawberry.field(description="When that pass failed.")
    syncing_here: bool = strawberry.field(
        description="This replica runs the vendor's sync (one replica does, by a lock)."
    )

    @classmethod
    def from_status(cls, status: IndexStatus, now: float) -> VendorIndexSync:
        synced = status.synced_at
        return cls(
            synced_at=_utc(synced),
            lag_seconds=None if synced is None else max(0.0, now - synced),
            first_sync_done=status.first_sync_done,
            first_sync_progress=1.0 if status.first_sync_done else status.first_sync_progress,
            last_error=status.last_error,
            last_error_at=_utc(status.last_error_at),
            syncing_here=status.syncing_here,
        )


@strawberry.type(name="VendorInfo", description="A vendor as this gateway sees it.")
class VendorInfo:
    vendor: Vendor = strawberry.field(description="The vendor.")
    enabled: bool = strawberry.field(description="Configured and asked by queries.")
    last_call_ok: bool | None = strawberry.field(
        description="Whether the last upstream call succeeded; null before any call."
    )
    last_success_at: datetime | None = strawberry.field(description="Last successful call.")
    last_error_at: datetime | None = strawberry.field(description="Last failed call.")
    last_error_code: str | None = strawberry.field(description="Code of the last failure.")
    p50_latency_ms: float | None = strawberry.field(
        description="Median latency of the recent upstream calls."
    )
    cache_hit_ratio: float | None = strawberry.field(description="Page cache hits / lookups.")
    unknown_statuses: int = strawberry.field(
        description="Records seen with a status the gateway does not map (shown as UNKNOWN)."
    )
    unknown_status_values: list[UnknownStatus] = strawberry.field(
        description="Those statuses, most seen first (the first 50 distinct ones seen; for "
        "callers with a key only: /metrics, which is open, has the count alone)."
    )
    skipped_records: int = strawberry.field(
        description="Records the vendor sent that could not be read (missing fields, bad "
        "times): left out of answers, never fatal."
    )
    circuit_state: CircuitState = strawberry.field(
        description="CLOSED: calls go through. OPEN: failing fast after repeated failures. "
        "HALF_OPEN: one probe call decides."
    )
    budget: VendorBudget | None = strawberry.field(
        default=None, description="The vendor's call budget; null for a vendor not enabled."
    )
    index: VendorIndexSync | None = strawberry.field(
        default=None,
        description="The vendor's sync into the task index; null without an index "
        "(`[index] url`) or for a vendor not enabled.",
    )

    @classmethod
    def from_health(
        cls, health: VendorHealth, circuit: CircuitState, budget: BudgetStatus | None = None
    ) -> VendorInfo:
        return cls(
            budget=VendorBudget.from_status(budget) if budget is not None else None,
            vendor=health.vendor,
            enabled=health.enabled,
            circuit_state=circuit,
            skipped_records=health.skipped_records,
            last_call_ok=health.last_call_ok,
            last_success_at=_utc(health.last_success_at),
            last_error_at=_utc(health.last_error_at),
            last_error_code=health.last_error_code,
            p50_latency_ms=health.p50_ms,
            cache_hit_ratio=health.cache_hit_ratio,
            unknown_statuses=health.unknown_status_total,
            unknown_status_values=[
                UnknownStatus(value=value, count=count)
                for value, count in health.unknown_statuses.most_common()
            ],
        )


@strawberry.type(description="Statistics of one group of tasks.")
class TaskStatsGroup:
    vendor: Vendor | None = strawberry.field(description="Set when grouped by VENDOR.")
    status: TaskStatus | None = strawberry.field(description="Set when grouped by STATUS.")
    agent_id: str | None = strawberry.field(description="Set when grouped by AGENT.")
    day: str | None = strawberry.field(description="Set when grouped by DAY (YYYY-MM-DD, UTC).")
    count: int = strawberry.field(description="Tasks in the group.")
    total_cost: float | None = strawberry.field(
        description="Sum of the reported costs (orq), null when no task reports one."
    )
    total_tokens: int | None = strawberry.field(
        description="Sum of the reported tokens (orq), null when no task reports them."
    )
    average_duration_seconds: float | None = strawberry.field(
        description="Mean time from creation to last update, of tasks with both times."
    )

    @classmethod
    def from_group(cls, group: Group) -> TaskStatsGroup:
        key = group.key
        status = key.get(GroupBy.STATUS)
        vendor = key.get(GroupBy.VENDOR)
        return cls(
            vendor=Vendor[vendor] if vendor else None,
            status=TaskStatus(status) if status else None,
            agent_id=key.get(GroupBy.AGENT),
            day=key.get(GroupBy.DAY),
            count=group.count,
            total_cost=round(group.total_cost, 6) if group.with_metrics else None,
            total_tokens=group.total_tokens if group.with_metrics else None,
            average_duration_seconds=group.average_duration_seconds,
        )


@strawberry.type(description="Counts and sums over the whole filtered set of tasks.")
class TaskStats:
    total: int = strawberry.field(description="All matching tasks.")
    groups: list[TaskStatsGroup] = strawberry.field(description="One entry per group.")
    missing_vendors: list[Vendor] = strawberry.field(
        description="Vendors that could not answer: the figures leave them out."
    )
