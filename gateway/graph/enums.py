"""The machinery's enums exposed to GraphQL, with a description on every value.

The records hold these very enum members, so resolvers return them untouched.
"""

from __future__ import annotations

import enum

import strawberry

from gateway.core.records import Direction, OrderField, TaskStatus, Vendor
from gateway.core.resilience import CircuitState
from gateway.core.stats import GroupBy
from gateway.vendors.registry import CONNECTORS


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
    {vendor.name: connector.DESCRIPTION for vendor, connector in CONNECTORS.items()},
)

STATUS_MEANINGS = {
    "PENDING": "Accepted, not started.",
    "RUNNING": "Being worked on.",
    "PAUSED": "Stopped for now, will resume.",
    "AWAITING_APPROVAL": "Waiting for a person to approve a step.",
    "IDLE": "Alive but doing nothing.",
    "COMPLETED": "Finished successfully.",
    "FAILED": "Finished with an error.",
    "CANCELLED": "Stopped on purpose.",
    "UNKNOWN": "The vendor gave no status or one the gateway does not know (counted in "
    "`Query.vendors`).",
}
"""What each shared status means; the vendor values behind it come from the connectors."""


def status_description(status: TaskStatus) -> str:
    """``status``'s meaning, then each vendor's values for it in registry order, as each
    connector declares them; neighbours with the same values share one phrase
    (``A and B paused``)."""
    phrases: list[tuple[list[str], str]] = []
    for connector in CONNECTORS.values():
        values = connector.status_notes().get(status)
        if values is None:
            continue
        if phrases and phrases[-1][1] == values:
            phrases[-1][0].append(connector.LABEL)
        else:
            phrases.append(([connector.LABEL], values))
    if not phrases:
        return STATUS_MEANINGS[status.name]
    said = "; ".join(f"{' and '.join(labels)} {values}" for labels, values in phrases)
    return f"{STATUS_MEANINGS[status.name]} {said}."


TaskStatusEnum = describe(
    TaskStatus,
    "The shared status every vendor's own status is mapped onto (see `Task.vendorStatus`).",
    {status.name: status_description(status) for status in TaskStatus},
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
