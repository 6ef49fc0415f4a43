"""The machinery's enums exposed to GraphQL, with a description on every value.

The records hold these very enum members, so resolvers return them untouched.
"""

from __future__ import annotations

import enum

import strawberry

from gateway.core.records import Direction, OrderField, TaskStatus, Vendor
from gateway.core.resilience import CircuitState
from gateway.core.stats import GroupBy


def describe(
    cls: type[enum.Enum], description: str, values: dict[str, str], name: str | None = None
) -> type[enum.Enum]:
    """Register ``cls`` as a GraphQL enum and give every value its description."""
    wrapped = strawberry.enum(cls, name=name, description=description)
    definition = wrapped.__strawberry_definition__  # type: ignore[attr-defined]
    missing = {v.name for v in definition.values} - set(values)
    if missing:
        raise ValueError(f"{cls.__name__}: no description for {sorted(missing)}")
    for value in definition.values:
        value.description = values[value.name]
    return wrapped


VendorEnum = describe(
    Vendor,
    "An upstream agent-task API the gateway aggregates.",
    {
        "AGENTEX": "Scale Agentex: task trackers (`GET /tracker`).",
        "XPANDER": "xpander.ai: an agent's tasks (`GET /v1/agents/{agent_id}/tasks`).",
        "ORQ": "orq.ai: an agent's tasks (`GET /v2/agents/{agent_key}/tasks`).",
        "SUBNOTO": "Subnoto: the team's agent tasks (`POST /public/agent-task/list`).",
    },
)

TaskStatusEnum = describe(
    TaskStatus,
    "The shared status every vendor's own status is mapped onto (see `Task.vendorStatus`).",
    {
        "PENDING": "Accepted, not started. Agentex pending/queued/created/scheduled; xpander "
        "pending.",
        "RUNNING": "Being worked on. Agentex running/processing/in_progress/active/working; "
        "xpander executing; orq in_progress; Subnoto working.",
        "PAUSED": "Stopped for now, will resume. Agentex and xpander paused.",
        "AWAITING_APPROVAL": "Waiting for a person to approve a step. Agentex "
        "awaiting_approval/waiting_for_approval; orq `state.waiting_for_approval`.",
        "IDLE": "Alive but doing nothing. Agentex idle; orq `state.inactive` without error; "
        "Subnoto idle.",
        "COMPLETED": "Finished successfully. Agentex completed/complete/done/succeeded/success; "
        "xpander completed; Subnoto complete.",
        "FAILED": "Finished with an error. Agentex failed/failure/error/errored; xpander "
        "error/failed; orq `state.error` set; Subnoto failure.",
        "CANCELLED": "Stopped on purpose. Agentex cancelled/canceled/stopped; xpander stopped.",
        "UNKNOWN": "The vendor gave no status or one the gateway does not know (counted in "
        "`Query.vendors`).",
    },
)

OrderFieldEnum = describe(
    OrderField,
    "The time tasks are ordered by, as shown: a task without it (null) comes after every "
    "task with it, in both directions.",
    {
        "UPDATED_AT": "Last update (Subnoto: the latest report); an Agentex tracker without "
        "`updated_at` comes last.",
        "CREATED_AT": "Creation; Subnoto tasks, which have none, come last.",
    },
    name="TaskOrderField",
)

DirectionEnum = describe(
    Direction,
    "Sort direction.",
    {"ASC": "Oldest first.", "DESC": "Newest first."},
    name="OrderDirection",
)

GroupByEnum = describe(
    GroupBy,
    "A dimension to group task statistics by.",
    {
        "VENDOR": "The vendor.",
        "STATUS": "The shared status.",
        "AGENT": "The agent (null for Subnoto).",
        "DAY": "The UTC day of the task's last update.",
    },
    name="TaskGroupBy",
)

CircuitStateEnum = describe(
    CircuitState,
    "A vendor's circuit breaker.",
    {
        "CLOSED": "Calls go through.",
        "OPEN": "The vendor failed repeatedly: its part fails fast (UPSTREAM_UNAVAILABLE).",
        "HALF_OPEN": "The wait is over: the next call is a probe that closes or reopens it.",
    },
)
