"""Vendor status values onto the shared ``TaskStatus``, and back for filter push-down.

Vendor-neutral: each vendor's table is its connector's ``STATUS_MAP`` (``gateway.vendors``,
written from ``shared/vendors/VENDORS.md``); these functions read any such table. Lookups
never raise: a value not in a table is ``UNKNOWN`` (and counted by the caller), as
libcloud's ``NODE_STATE_MAP.get``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from gateway.core.records import TaskStatus


def map_status(table: Mapping[str, TaskStatus], value: str | None) -> TaskStatus:
    """The shared status of a vendor value; case-insensitive, ``UNKNOWN`` when unmapped."""
    if value is None:
        return TaskStatus.UNKNOWN
    return table.get(value.strip().lower(), TaskStatus.UNKNOWN)


def vendor_values(table: Mapping[str, TaskStatus], statuses: Iterable[TaskStatus]) -> list[str]:
    """The vendor values that map to any of ``statuses``, in table order (for push-down)."""
    wanted = set(statuses)
    return [value for value, status in table.items() if status in wanted]
