"""Aggregates over a whole filtered listing, for dashboards and BI: counts, cost and token
sums, and durations, grouped by vendor, status, agent and/or day.

With the task index, the vendors it serves are counted there by one SQL ``GROUP BY``
(``IndexedTasks.stats``); every other task is read once in the order every vendor streams
(newest created first), from the page cache where it is fresh, so a dashboard refreshing
within the TTL costs no upstream call, and memory holds one page per source plus the groups.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field

from gateway.core.context import RequestState
from gateway.core.errors import UpstreamError
from gateway.core.indexed import fail_all
from gateway.core.records import Direction, Order, OrderField, TaskRecord
from gateway.core.service import Plan, TaskService

STATS_ORDER = Order(OrderField.CREATED_AT, Direction.DESC)


class GroupBy(enum.Enum):
    VENDOR = "VENDOR"
    STATUS = "STATUS"
    AGENT = "AGENT"
    DAY = "DAY"


@dataclass
class Group:
    key: dict[GroupBy, str | None]
    count: int = 0
    total_cost: float = 0.0
    total_tokens: int = 0
    with_metrics: int = 0
    duration_seconds: float = 0.0
    with_duration: int = 0

    def add(self, record: TaskRecord) -> None:
        self.count += 1
        metrics = record.metrics
        if metrics is not None:
            self.with_metrics += 1
            self.total_cost += metrics.total_cost or 0.0
            self.total_tokens += metrics.total_tokens or 0
        if record.created_at is not None and record.updated_at is not None:
            self.with_duration += 1
            self.duration_seconds += (record.updated_at - record.created_at).total_seconds()

    def merge(self, other: Group) -> None:
        """Add the figures of ``other`` (the same group, counted elsewhere)."""
        self.count += other.count
        self.total_cost += other.total_cost
        self.total_tokens += other.total_tokens
        self.with_metrics += other.with_metrics
        self.duration_seconds += other.duration_seconds
        self.with_duration += other.with_duration

    @property
    def average_duration_seconds(self) -> float | None:
        return self.duration_seconds / self.with_duration if self.with_duration else None


@dataclass
class Stats:
    groups: list[Group] = field(default_factory=list)
    total: int = 0


def group_key(record: TaskRecord, by: Sequence[GroupBy]) -> tuple[str | None, ...]:
    values: list[str | None] = []
    for dimension in by:
        if dimension is GroupBy.VENDOR:
            values.append(record.vendor.name)
        elif dimension is GroupBy.STATUS:
            values.append(record.status.value)
        elif dimension is GroupBy.AGENT:
            values.append(record.agent_id)
        else:  # the day of the last update; none known: its own group (null day)
            updated = record.updated_at
            values.append(updated.date().isoformat() if updated is not None else None)
    return tuple(values)


async def task_stats(
    service: TaskService, plan: Plan, by: Sequence[GroupBy], state: RequestState
) -> Stats:
    groups: dict[tuple[str | None, ...], Group] = {}
    total = 0
    indexed = service.indexed_vendors(plan, state)
    if indexed and service.index is not None:
        # Vendors the task index serves: one SQL GROUP BY, merged with the live vendors'.
        try:
            found = await service.index.stats(plan.query, indexed, by)
        except UpstreamError as exc:
            fail_all(state, indexed, exc)
        else:
            for vendor in indexed:
                state.part(vendor).fetched_at = service.index.synced_at(vendor)
            for counted in found.groups:
                key = tuple(counted.key.get(dimension) for dimension in by)
                groups.setdefault(key, Group(dict(zip(by, key, strict=True)))).merge(counted)
            total += found.total
        plan = service.plan(plan.query, [v for v in plan.vendors if v not in indexed])
    async for record in service.stream(plan, state):
        key = group_key(record, by)
        group = groups.get(key)
        if group is None:
            group = groups[key] = Group(dict(zip(by, key, strict=True)))
        group.add(record)
        total += 1
    ordered = sorted(
        groups.values(), key=lambda g: tuple("" if v is None else v for v in g.key.values())
    )
    return Stats(ordered, total)
