"""Vendor status values onto the shared ``TaskStatus``, and back for filter push-down.

The tables follow ``shared/vendors/VENDORS.md``. Lookups never raise: a value not in a
table is ``UNKNOWN`` (and counted by the caller), as libcloud's ``NODE_STATE_MAP.get``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from gateway.core.records import TaskStatus

S = TaskStatus

AGENTEX_STATUS_MAP: Mapping[str, TaskStatus] = {
    **dict.fromkeys(["pending", "queued", "created", "scheduled"], S.PENDING),
    **dict.fromkeys(["running", "processing", "in_progress", "active", "working"], S.RUNNING),
    "paused": S.PAUSED,
    **dict.fromkeys(["awaiting_approval", "waiting_for_approval"], S.AWAITING_APPROVAL),
    "idle": S.IDLE,
    **dict.fromkeys(["completed", "complete", "done", "succeeded", "success"], S.COMPLETED),
    **dict.fromkeys(["failed", "failure", "error", "errored"], S.FAILED),
    **dict.fromkeys(["cancelled", "canceled", "stopped"], S.CANCELLED),
}

XPANDER_STATUS_MAP: Mapping[str, TaskStatus] = {
    "pending": S.PENDING,
    "executing": S.RUNNING,
    "paused": S.PAUSED,
    "error": S.FAILED,
    "failed": S.FAILED,
    "completed": S.COMPLETED,
    "stopped": S.CANCELLED,
}

ORQ_STATUS_MAP: Mapping[str, TaskStatus] = {
    "in_progress": S.RUNNING,
    "approval_required": S.AWAITING_APPROVAL,
    "inactive": S.IDLE,
    "errored": S.FAILED,
}

SUBNOTO_STATUS_MAP: Mapping[str, TaskStatus] = {
    "working": S.RUNNING,
    "idle": S.IDLE,
    "complete": S.COMPLETED,
    "failure": S.FAILED,
}


def map_status(table: Mapping[str, TaskStatus], value: str | None) -> TaskStatus:
    """The shared status of a vendor value; case-insensitive, ``UNKNOWN`` when unmapped."""
    if value is None:
        return S.UNKNOWN
    return table.get(value.strip().lower(), S.UNKNOWN)


def vendor_values(table: Mapping[str, TaskStatus], statuses: Iterable[TaskStatus]) -> list[str]:
    """The vendor values that map to any of ``statuses``, in table order (for push-down)."""
    wanted = set(statuses)
    return [value for value, status in table.items() if status in wanted]


def orq_status(state: Mapping[str, object] | None) -> str:
    """orq has no status field: derive the list-filter value from ``state``.

    Precedence as documented: error set, then waiting for approval, then inactive.
    """
    state = state or {}
    if state.get("error"):
        return "errored"
    if state.get("waiting_for_approval"):
        return "approval_required"
    if state.get("inactive"):
        return "inactive"
    return "in_progress"
