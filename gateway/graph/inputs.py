"""GraphQL input types and their translation into the machinery's ``ListQuery``."""

from __future__ import annotations

from datetime import UTC, datetime

import strawberry

from gateway.core.errors import BadInputError
from gateway.core.records import Direction, Order, OrderField, TaskStatus, Vendor
from gateway.vendors.base import ListQuery


@strawberry.input(description="Which tasks to list; every field narrows (AND), lists are OR.")
class TaskFilter:
    vendors: list[Vendor] | None = strawberry.field(
        default=None, description="Only these vendors (default: every enabled one)."
    )
    statuses: list[TaskStatus] | None = strawberry.field(
        default=None,
        description="Only these shared statuses; pushed down to each vendor as its own values, "
        "and a vendor with no such value is not asked.",
    )
    agent_ids: list[str] | None = strawberry.field(
        default=None, description="Only these agents (Subnoto has none and is then not asked)."
    )
    user_id: str | None = strawberry.field(default=None, description="Only this user's tasks.")
    parent_task_id: str | None = strawberry.field(
        default=None, description="Only sub-tasks of this (xpander) task."
    )
    triggering_agent_id: str | None = strawberry.field(
        default=None, description="Only tasks delegated by this (xpander) agent."
    )
    updated_after: datetime | None = strawberry.field(
        default=None, description="Only tasks updated at or after this time."
    )
    updated_before: datetime | None = strawberry.field(
        default=None, description="Only tasks updated before this time."
    )


@strawberry.input(description="How to order tasks; default newest update first.")
class TaskOrder:
    field: OrderField = strawberry.field(
        default=OrderField.UPDATED_AT, description="The time to order by."
    )
    direction: Direction = strawberry.field(default=Direction.DESC, description="The direction.")


@strawberry.input(description="A change to an Agentex tracker. Omitted fields keep their value.")
class UpdateTrackerInput:
    id: strawberry.ID = strawberry.field(description="The Tracker's global id.")
    status: str | None = strawberry.field(
        default=strawberry.UNSET, description="New Agentex status (free-form)."
    )
    status_reason: str | None = strawberry.field(
        default=strawberry.UNSET, description="New status reason."
    )
    last_processed_event_id: str | None = strawberry.field(
        default=strawberry.UNSET,
        description="The last processed event; Agentex refuses one that moves backwards.",
    )
    idempotency_key: str | None = strawberry.field(
        default=None,
        description="Send the same key again (e.g. after a timeout) to get the first answer "
        "instead of writing twice; kept for a day.",
    )


def _aware(value: datetime | None, name: str) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise BadInputError(f"`{name}` needs a timezone, e.g. 2026-01-01T00:00:00Z")
    return value.astimezone(UTC)


def to_list_query(
    filter: TaskFilter | None, order: TaskOrder | None
) -> tuple[ListQuery, set[Vendor] | None]:
    """The machinery's query for a GraphQL filter and order, and the vendors asked."""
    f = filter or TaskFilter()
    o = order or TaskOrder()
    query = ListQuery(
        statuses=frozenset(f.statuses) if f.statuses is not None else None,
        agent_ids=frozenset(f.agent_ids) if f.agent_ids is not None else None,
        user_id=f.user_id,
        parent_task_id=f.parent_task_id,
        triggering_agent_id=f.triggering_agent_id,
        updated_after=_aware(f.updated_after, "updatedAfter"),
        updated_before=_aware(f.updated_before, "updatedBefore"),
        order=Order(o.field, o.direction),
    )
    return query, set(f.vendors) if f.vendors is not None else None
