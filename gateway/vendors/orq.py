"""orq.ai: tasks per agent key, by cursor, newest ``_id`` (a ULID: creation time) first.

orq has no status field: the status is derived from ``state`` (``derived_status``), and the
list's ``status`` filter takes the derived values, comma-separated.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import quote, unquote

from gateway.core.contract import Credentials, ListQuery, PageToken, Source, SourcePage
from gateway.core.errors import UpstreamBadResponseError
from gateway.core.ids import TASK, encode_id
from gateway.core.records import (
    TaskMetrics,
    TaskRecord,
    TaskStatus,
    Vendor,
)
from gateway.core.statuses import map_status
from gateway.vendors.base import CREATED_FIRST, Connector, required, required_time, text, time_field

PATH_PREFIX, PATH_SUFFIX = "/v2/agents/", "/tasks"
BAD_SHAPE = "orq answered with an unexpected shape"
STATUSES: Mapping[str, TaskStatus] = {
    # The values ``derived_status`` gives, which orq's list ``status`` filter takes.
    "in_progress": TaskStatus.RUNNING,
    "approval_required": TaskStatus.AWAITING_APPROVAL,
    "inactive": TaskStatus.IDLE,
    "errored": TaskStatus.FAILED,
}


def derived_status(state: Mapping[str, object] | None) -> str:
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


class OrqConnector(Connector):
    vendor = Vendor.ORQ
    page_size = 50
    bulk_page_size = 200
    """A listing streamed for a page of results reads small pages (cost grows with the
    page, not the data); one read whole to be sorted here reads orq's maximum ``limit``,
    so there are fewer cursors to follow one by one."""
    exact_filters: ClassVar[frozenset[str]] = frozenset({"statuses", "agent_ids"})
    LABEL = "orq"
    DESCRIPTION = "orq.ai: an agent's tasks (`GET /v2/agents/{agent_key}/tasks`)."
    PER_AGENT = True
    STATUS_MAP = STATUSES
    STATUS_NOTES: ClassVar[Mapping[TaskStatus, str] | None] = {
        # orq has no status field: the values shown are the parts of ``state`` read.
        TaskStatus.RUNNING: "in_progress",
        TaskStatus.AWAITING_APPROVAL: "`state.waiting_for_approval`",
        TaskStatus.IDLE: "`state.inactive` without error",
        TaskStatus.FAILED: "`state.error` set",
    }

    def sources(self, query: ListQuery) -> list[Source]:
        if query.parent_task_id is not None or query.triggering_agent_id is not None:
            return []  # orq tasks have no parent
        values = self.status_values(query)
        if values == []:
            return []  # no derived status maps to the statuses asked
        ordered = query.order == CREATED_FIRST
        limit = self.page_size if ordered else self.bulk_page_size
        return [
            self.source(_path(agent), ordered, status=values and ",".join(values), limit=limit)
            for agent in self.agents_for(query)
        ]

    async def fetch_page(
        self, source: Source, token: PageToken, credentials: Credentials | None = None
    ) -> SourcePage:
        params: dict[str, Any] = dict(source.params)
        if token is not None:
            params["starting_after"] = str(token)
        body = await self.request_json("GET", source.path, credentials=credentials, params=params)
        if not isinstance(body, dict):
            raise UpstreamBadResponseError(self.vendor, BAD_SHAPE)
        tasks, total = body.get("tasks"), body.get("overall_total")
        if not isinstance(tasks, list) or not isinstance(total, int):
            raise UpstreamBadResponseError(self.vendor, BAD_SHAPE)
        agent = _agent(source.path)
        records, skipped = self.normalize(tasks, lambda item: _to_record(item, agent))
        cursor = self._cursor(tasks, int(params["limit"]))
        return SourcePage(records, next_token=cursor, total=total, skipped=skipped)

    def _cursor(self, tasks: list[Any], limit: int) -> str | None:
        """A full page continues after its last ``_id``; a short page was the last. An item
        without an id is skipped anyway, so the cursor is the last id the page has."""
        if len(tasks) < limit:
            return None
        for item in reversed(tasks):
            cursor = item.get("_id") if isinstance(item, dict) else None
            if isinstance(cursor, str) and cursor:
                return cursor
        raise UpstreamBadResponseError(self.vendor, "orq answered a page without any task id")


def _path(agent: str) -> str:
    return f"{PATH_PREFIX}{quote(agent, safe='')}{PATH_SUFFIX}"


def _agent(path: str) -> str:
    """The agent key a source lists: orq items do not name their agent."""
    return unquote(path.removeprefix(PATH_PREFIX).removesuffix(PATH_SUFFIX))


def _to_record(item: dict[str, Any], agent: str) -> TaskRecord:
    native_id = required(item, "_id")
    state = item.get("state") or {}
    derived = derived_status(state)
    return TaskRecord(
        vendor=Vendor.ORQ,
        native_id=native_id,
        global_id=encode_id(TASK, Vendor.ORQ, agent, native_id),
        agent_id=agent,
        title=text(item, "name"),
        # Read off ``state``: orq has no status field.
        status=map_status(STATUSES, derived),
        vendor_status=derived,
        summary=text(state, "error") or None,
        created_at=required_time(item, "created"),  # the listing's own order
        updated_at=time_field(item, "updated"),  # null stays null (sorts last)
        user_id=text(item, "created_by_id"),
        metrics=_metrics(item.get("metrics") or {}, state),
        raw=item,
    )


def _metrics(metrics: dict[str, Any], state: dict[str, Any]) -> TaskMetrics:
    return TaskMetrics(
        input_cost=_number(metrics, "input_cost"),
        output_cost=_number(metrics, "output_cost"),
        total_cost=_number(metrics, "total_cost"),
        prompt_tokens=_count(metrics, "prompt_tokens"),
        completion_tokens=_count(metrics, "completion_tokens"),
        total_tokens=_count(metrics, "total_tokens"),
        execution_time_seconds=_number(state, "accumulated_execution_time"),
    )


def _number(item: dict[str, Any], key: str) -> float | None:
    value = item.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(key)
    return float(value)


def _count(item: dict[str, Any], key: str) -> int | None:
    value = _number(item, key)
    return None if value is None else int(value)
