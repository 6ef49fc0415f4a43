"""The BI columns of a task: one definition shared by the exports (CSV, NDJSON, Parquet) and
the task index's SQL view (``task_gateway.tasks``), so a BI tool sees the same table whichever
way it reads it."""

from __future__ import annotations

from typing import Any

from gateway.core.records import TaskRecord

COLUMNS = (
    "id",
    "vendor",
    "native_id",
    "agent_id",
    "status",
    "vendor_status",
    "title",
    "summary",
    "created_at",
    "updated_at",
    "user_id",
    "parent_task_id",
    "triggering_agent_id",
    "link",
    "total_cost",
    "total_tokens",
)


def typed_row(record: TaskRecord) -> tuple[Any, ...]:
    """The record's ``COLUMNS``, typed: times as aware datetimes (or None), costs as floats,
    token counts as ints. Every format writes these, each in its own types."""
    metrics = record.metrics
    return (
        record.global_id,
        record.vendor.name,
        record.native_id,
        record.agent_id,
        record.status.value,
        record.vendor_status,
        record.title,
        record.summary,
        record.created_at,
        record.updated_at,
        record.user_id,
        record.parent_native_id,
        record.triggering_agent_id,
        record.link,
        metrics.total_cost if metrics else None,
        metrics.total_tokens if metrics else None,
    )
