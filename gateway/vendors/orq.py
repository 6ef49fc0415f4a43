"""orq.ai: tasks per agent key, by cursor, newest ``_id`` (a ULID: creation time) first.

orq has no status field: the status is derived from ``state`` (``orq_status``), and the
list's ``status`` filter takes the derived values, comma-separated.
"""

from __future__ import annotations

from typing import Any, ClassVar
from urllib.parse import quote, unquote

from gateway.core.errors import UpstreamBadResponseError
from gateway.core.ids import TASK, encode_id
from gateway.core.records import Direction, Order, OrderField, TaskMetrics, TaskRecord, Vendor
from gateway.core.statuses import ORQ_STATUS_MAP, map_status, orq_status, vendor_values
from gateway.vendors.base import (
    Connector,
    Credentials,
    ListQuery,
    PageToken,
    Source,
    SourcePage,
    params_tuple,
    parse_time,
)

PATH_PREFIX, PATH_SUFFIX = "/v2/agents/", "/tasks"
BAD_SHAPE = "orq answered with an unexpected shape"
NATIVE_ORDER = Order(OrderField.CREATED_AT, Direction.DESC)
"""The only order orq lists in; a listing wanted in another is read whole and sorted."""


def default_credentials(secret: str) -> Credentials:
    """orq takes ``Authorization: Bearer <token>``."""
    return Credentials(secret, "Authorization", "Bearer")


class OrqConnector(Connector):
    vendor = Vendor.ORQ
    page_size = 50
    bulk_page_size = 200
    """A listing streamed for a page of results reads small pages (cost grows with the
    page, not the data); one read whole to be sorted here reads orq's maximum ``limit``,
    so there are fewer cursors to follow one by one."""
    exact_filters: ClassVar[frozenset[str]] = frozenset({"statuses", "agent_ids"})

    def sources(self, query: ListQuery) -> list[Source]:
        if query.parent_task_id is not None or query.triggering_agent_id is not None:
            return []  # orq tasks have no parent
        status = None
        if query.statuses is not None:
            values = vendor_values(ORQ_STATUS_MAP, query.statuses)
            if not values:
                return []
            status = ",".join(values)
        ordered = query.order == NATIVE_ORDER
        limit = self.page_size if ordered else self.bulk_page_size
        return [
            Source(self.vendor, _path(agent), params_tuple(status=status, limit=limit), ordered)
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
    native_id = _required(item, "_id")
    state = item.get("state") or {}
    derived = orq_status(state)
    created = parse_time(_text(item, "created"))
    if created is None:
        raise ValueError("created")  # the listing's own order: without it, unplaceable
    updated = parse_time(_text(item, "updated"))  # null stays null (sorts last)
    return TaskRecord(
        vendor=Vendor.ORQ,
        native_id=native_id,
        global_id=encode_id(TASK, Vendor.ORQ, agent, native_id),
        agent_id=agent,
        status=map_status(ORQ_STATUS_MAP, derived),
        vendor_status=derived,
        title=_text(item, "name"),
        summary=_text(state, "error") or None,
        created_at=created,
        updated_at=updated,
        user_id=_text(item, "created_by_id"),
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


def _required(item: dict[str, Any], key: str) -> str:
    """A non-empty string field: without it the item cannot be read (it is skipped)."""
    value = item[key]
    if not isinstance(value, str) or not value:
        raise ValueError(key)
    return value


def _text(item: dict[str, Any], key: str) -> str | None:
    """A nullable string field; any other type makes the item unreadable."""
    value = item.get(key)
    if value is not None and not isinstance(value, str):
        raise TypeError(key)
    return value
