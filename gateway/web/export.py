"""Bulk export for BI tools: ``GET /export/tasks.csv`` and ``/export/tasks.ndjson``.

The same filters as ``Query.tasks``, as query parameters (lists comma-separated):
``vendors, statuses, agentIds, userId, parentTaskId, triggeringAgentId, updatedAfter,
updatedBefore, orderBy (UPDATED_AT|CREATED_AT), direction (ASC|DESC)``. The default order is
``CREATED_AT DESC`` because every vendor can stream it, so memory stays constant however many
rows there are (an order a vendor cannot sort by makes the gateway hold that listing).

Rows stream as the vendors' pages arrive; an export reads the vendors now (never the cache,
never stale data) and does not fill the cache. A
vendor that fails before the first row gives a 502 with a GraphQL-style error; one that
fails later aborts the stream, so a BI tool never mistakes a partial table for a whole one.
``/export/tasks.parquet`` (``export_parquet.py``) reads the same records (``export_records``)
and writes the same columns (``typed_row``).
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from gateway.core.columns import COLUMNS, typed_row
from gateway.core.context import RequestState
from gateway.core.contract import ListQuery
from gateway.core.errors import BadInputError, GatewayError
from gateway.core.records import Direction, Order, OrderField, TaskRecord, TaskStatus, Vendor
from gateway.core.service import TaskService
from gateway.graph.inputs import checked_ids, client_time
from gateway.web.credentials import forwarded_credentials
from gateway.web.errors import graphql_error_response

BATCH = 500


class ExportAborted(Exception):
    """A vendor failed after rows were sent; the response must not end as if complete."""


def row(record: TaskRecord) -> tuple[Any, ...]:
    """The record's ``COLUMNS`` as text formats show them: times as UTC ISO strings."""
    return tuple(_iso(v) if isinstance(v, datetime) else v for v in typed_row(record))


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _csv_line(values: tuple[Any, ...]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(["" if v is None else v for v in values])
    return buffer.getvalue()


def _ndjson_line(values: tuple[Any, ...]) -> bytes:
    return orjson.dumps(dict(zip(COLUMNS, values, strict=True))) + b"\n"


def _list(request: Request, name: str) -> list[str] | None:
    raw = request.query_params.get(name)
    return [v.strip() for v in raw.split(",") if v.strip()] if raw else None


def _enum(enum: Any, values: list[str] | None, name: str) -> list[Any] | None:
    if values is None:
        return None
    try:
        return [enum[v.upper()] for v in values]
    except KeyError as exc:
        raise BadInputError(f"`{name}`: unknown value {exc.args[0]!r}") from None


def _time(request: Request, name: str) -> datetime | None:
    return client_time(request.query_params.get(name), name)


def parse_query(request: Request) -> tuple[ListQuery, list[Vendor] | None]:
    order_field = _enum(OrderField, [request.query_params.get("orderBy", "CREATED_AT")], "orderBy")
    direction = _enum(Direction, [request.query_params.get("direction", "DESC")], "direction")
    statuses = _enum(TaskStatus, _list(request, "statuses"), "statuses")
    agents = _list(request, "agentIds")
    query = ListQuery(
        statuses=frozenset(statuses) if statuses is not None else None,
        agent_ids=frozenset(agents) if agents is not None else None,
        user_id=request.query_params.get("userId"),
        parent_task_id=request.query_params.get("parentTaskId"),
        triggering_agent_id=request.query_params.get("triggeringAgentId"),
        updated_after=_time(request, "updatedAfter"),
        updated_before=_time(request, "updatedBefore"),
        order=Order(order_field[0], direction[0]),  # type: ignore[index]
    )
    return checked_ids(query), _enum(Vendor, _list(request, "vendors"), "vendors")


FORMATS: dict[str, tuple[Callable[[tuple[Any, ...]], str | bytes], str, str | None]] = {
    "csv": (_csv_line, "text/csv; charset=utf-8", _csv_line(COLUMNS)),
    "ndjson": (_ndjson_line, "application/x-ndjson", None),
}


async def export_records(
    request: Request, service: TaskService, forward_credentials: bool
) -> AsyncIterator[TaskRecord] | Response:
    """The records an export request asks for, as the vendors' pages arrive; or the error
    response to send instead: 400 for bad parameters, 502 for a vendor failing before the
    first record. A vendor failing later raises ``ExportAborted`` from the iterator, so the
    response ends without its final chunk. Shared by every export format."""
    try:
        query, vendors = parse_query(request)
    except BadInputError as exc:
        return graphql_error_response(400, exc.message, exc.code)
    state = RequestState(
        credentials=forwarded_credentials(request.headers, forward_credentials),
        bypass_cache=True,
        cache_store=False,
    )
    records = service.stream(service.plan(query, vendors), state, batch=BATCH)
    try:
        first = await anext(records, None)
    except GatewayError as exc:
        return graphql_error_response(502, exc.message, exc.code)
    if state.errors:
        error = state.errors[0]
        return graphql_error_response(
            502, f"{error.message}; the export would be incomplete", error.code
        )

    async def checked() -> AsyncIterator[TaskRecord]:
        if first is None:
            return
        yield first
        async for record in records:
            if state.errors:
                raise ExportAborted(state.errors[0].message)
            yield record
        if state.errors:
            raise ExportAborted(state.errors[0].message)

    return checked()


def attachment(fmt: str) -> dict[str, str]:
    return {"content-disposition": f'attachment; filename="tasks.{fmt}"'}


def export_routes(service: TaskService, forward_credentials: bool = False) -> list[Route]:
    """The export routes; with ``forward_credentials`` they read the vendors with the
    caller's ``X-Vendor-Key-*`` keys, as ``/graphql`` does."""

    def endpoint(fmt: str) -> Callable[[Request], Awaitable[Response]]:
        encode, media_type, header = FORMATS[fmt]

        async def export(request: Request) -> Response:
            records = await export_records(request, service, forward_credentials)
            if isinstance(records, Response):
                return records

            async def body() -> AsyncIterator[str | bytes]:
                if header is not None:
                    yield header
                async for record in records:
                    yield encode(row(record))

            return StreamingResponse(body(), media_type=media_type, headers=attachment(fmt))

        return export

    return [Route(f"/export/tasks.{fmt}", endpoint(fmt), methods=["GET"]) for fmt in FORMATS]
