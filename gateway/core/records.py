"""Normalized records: what every connector turns vendor JSON into, once, when it arrives.

Resolvers only read attributes of these objects, so nothing is converted per field on the
hot path. A record is immutable: the cache hands the same object to many requests.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any


class Vendor(enum.Enum):
    """The upstream APIs the gateway aggregates. The value is the configuration name."""

    AGENTEX = "agentex"
    XPANDER = "xpander"
    ORQ = "orq"
    SUBNOTO = "subnoto"


class TaskStatus(enum.Enum):
    """The shared status every vendor's own status value is mapped onto."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    AWAITING_APPROVAL = "AWAITING_APPROVAL"
    IDLE = "IDLE"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    UNKNOWN = "UNKNOWN"


class OrderField(enum.Enum):
    UPDATED_AT = "UPDATED_AT"
    CREATED_AT = "CREATED_AT"


class Direction(enum.Enum):
    ASC = "ASC"
    DESC = "DESC"


@dataclass(frozen=True, slots=True)
class Order:
    field: OrderField = OrderField.UPDATED_AT
    direction: Direction = Direction.DESC

    @property
    def descending(self) -> bool:
        return self.direction is Direction.DESC


DEFAULT_ORDER = Order()


@dataclass(frozen=True, slots=True)
class TaskMetrics:
    """Cost and token counts, where the vendor reports them (orq)."""

    input_cost: float | None = None
    output_cost: float | None = None
    total_cost: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    execution_time_seconds: float | None = None


@dataclass(frozen=True, slots=True)
class TrackerRecord:
    """An Agentex task tracker, as the vendor holds it."""

    native_id: str
    agent_id: str
    task_id: str
    status: TaskStatus
    vendor_status: str | None
    status_reason: str | None
    last_processed_event_id: str | None
    created_at: datetime
    updated_at: datetime | None
    global_id: str


@dataclass(frozen=True, slots=True)
class TaskRecord:
    """One vendor task in the shared shape.

    A time the vendor did not give is None and shown as null, never replaced by another
    time: ``created_at`` is None for Subnoto (it publishes none), ``updated_at`` is None
    where the vendor left it empty (Agentex allows it). The one rule of order: a missing
    time sorts after every known one, in both directions (SQL's NULLS LAST), and a time
    filter never matches it (``sort_key``).
    """

    vendor: Vendor
    native_id: str
    global_id: str
    agent_id: str | None
    status: TaskStatus
    vendor_status: str | None
    title: str | None
    summary: str | None
    created_at: datetime | None
    updated_at: datetime | None
    user_id: str | None = None
    parent_native_id: str | None = None
    triggering_agent_id: str | None = None
    link: str | None = None
    metrics: TaskMetrics | None = None
    tracker: TrackerRecord | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def sort_time(self, order_field: OrderField) -> datetime | None:
        """The time this task sorts by in ``order_field``: the one shown, maybe null."""
        if order_field is OrderField.CREATED_AT:
            return self.created_at
        return self.updated_at

    def sort_key(self, order: Order) -> tuple[int, int]:
        """Compared ascending, this gives ``order`` with a missing time last both ways."""
        return sort_key(self.sort_time(order.field), order.descending)


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


def sort_key(moment: datetime | None, descending: bool) -> tuple[int, int]:
    """``(0, ±microseconds)`` for a time, ``(1, 0)`` for none: exact integers (no float
    rounding), the direction folded in, and null after every time in either direction."""
    if moment is None:
        return (1, 0)
    micros = (moment - EPOCH) // MICROSECOND
    return (0, -micros if descending else micros)
