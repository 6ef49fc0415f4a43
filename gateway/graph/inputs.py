"""GraphQL input types and their translation into the machinery's ``ListQuery``, and the
checks of what a client sends before it reaches a vendor (shared with the export):

- a time must carry a timezone and exist in UTC (``9999-12-31T23:59:59-23:59`` does not);
- an id (agent, user, parent task, triggering agent, native task) is at most
  ``MAX_ID_LENGTH`` characters of encodable text, since it becomes part of a vendor's URL:
  a 200 KB id made the HTTP client refuse the URL, a lone surrogate made it fail to encode.

Each is ``BAD_USER_INPUT`` before any upstream call.
"""

from __future__ import annotations

from datetime import UTC, datetime

import strawberry

from gateway.core.contract import ListQuery
from gateway.core.errors import BadInputError
from gateway.core.records import Direction, Order, OrderField, TaskStatus, Vendor


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
        default=None,
        description="Only tasks updated at or after this time (never one without an update time).",
    )
    updated_before: datetime | None = strawberry.field(
        default=None,
        description="Only tasks updated before this time (never one without an update time).",
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


MAX_ID_LENGTH = 256
"""Characters in one id a client sends; vendors' ids are UUIDs, ULIDs and short names."""


def client_time(value: str | datetime | None, name: str) -> datetime | None:
    """A client's time in UTC: ISO-8601 text (the export's parameters) or the datetime
    GraphQL parsed. ``BAD_USER_INPUT`` for text that is not a time, a time without a
    timezone, or one with no UTC equivalent (an offset pushing it past year 9999 or before
    year 1)."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise BadInputError(f"`{name}` is not an ISO-8601 time") from None
    if value.tzinfo is None:
        raise BadInputError(f"`{name}` needs a timezone, e.g. 2026-01-01T00:00:00Z")
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise BadInputError(f"`{name}` is outside the years 1 to 9999 in UTC") from None


def _check_id(value: str, name: str) -> None:
    if len(value) > MAX_ID_LENGTH:
        raise BadInputError(f"`{name}` is longer than {MAX_ID_LENGTH} characters")
    try:
        value.encode()
    except UnicodeEncodeError:  # a lone surrogate (JSON decoding refuses them already)
        raise BadInputError(f"`{name}` is not valid text") from None


def checked_ids(query: ListQuery, agents: str = "agentIds") -> ListQuery:
    """``query`` if every id in it can be sent to a vendor; ``BAD_USER_INPUT`` otherwise,
    naming the argument (``agents``: the name the agent ids came under)."""
    for name, value in (
        ("userId", query.user_id),
        ("parentTaskId", query.parent_task_id),
        ("triggeringAgentId", query.triggering_agent_id),
        ("taskId", query.native_id),
    ):
        if value is not None:
            _check_id(value, name)
    for agent in query.agent_ids or ():
        _check_id(agent, agents)
    return query


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
        updated_after=client_time(f.updated_after, "updatedAfter"),
        updated_before=client_time(f.updated_before, "updatedBefore"),
        order=Order(o.field, o.direction),
    )
    return checked_ids(query), set(f.vendors) if f.vendors is not None else None
