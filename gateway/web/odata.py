"""OData v4 over the task index, for Power BI, Excel and Tableau (which read OData natively and
have no GraphQL connector).

    GET /odata/                 the service document (one entity set, ``Tasks``)
    GET /odata/$metadata        CSDL: the entity type ``Task``, the exports' columns, key ``id``
    GET /odata/Tasks            $filter $orderby $select $top $skip $count, JSON
    GET /odata/Tasks/$count     the number of tasks matching $filter, as text
    GET /odata/Tasks('<id>')    one task

Pages hold at most ``MAX_PAGE_SIZE`` tasks (fewer with ``Prefer: odata.maxpagesize=n``); a
page that is not the last carries ``@odata.nextLink``, which Power BI follows until the table
is whole. Answers come from the index only (never the vendors), and only for the vendors this
gateway serves. Without an index (``[index] url`` unset) every path answers 501 saying so;
while the index is opening, or a vendor's first full sync has not finished, 503 with
``Retry-After``, because a BI tool given a partial table would take it for the whole one.

Authentication is the middleware's, as for every path (``gateway/web/auth.py``): the client
key as a bearer token, ``X-API-Key``, or the password of HTTP Basic auth, which is what these
tools send. Every error has OData's shape (``odata_errors``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any
from urllib.parse import quote, urlencode

import orjson
from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from gateway.core.records import Vendor
from gateway.index.store import TaskIndex
from gateway.index.view import IndexView
from gateway.web.odata_errors import (
    PREFIX,
    VERSION_HEADERS,
    ODataError,
    error_response,
    odata_error_response,
)
from gateway.web.odata_filter import Clause, FilterLimits, translate_filter
from gateway.web.odata_model import (
    ENTITY_SET,
    KEY,
    Property,
    metadata_xml,
    model_properties,
)
from gateway.web.odata_options import Options, encode_skiptoken, parse_options
from gateway.web.odata_read import count_rows, read_page

MAX_PAGE_SIZE = 1_000
"""Tasks per page at most: a page is built in memory, and Power BI follows nextLink anyway."""
JSON_MEDIA_TYPE = "application/json;odata.metadata=minimal"
INDEX_SETTING = "[index] url"
RETRY_SECONDS = 30
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
"""Routed so that a method other than GET gets OData's 405, not Starlette's text."""

IndexLookup = Callable[[], IndexView | None]
"""The open index as queries see it (which vendors it serves), or None while it opens."""


@dataclass
class ODataService:
    index: IndexLookup | None
    """None: no index configured."""
    vendors: tuple[Vendor, ...]
    max_bytes: int
    max_list_items: int
    page_size: int = MAX_PAGE_SIZE

    @cached_property
    def properties(self) -> dict[str, Property]:
        return model_properties(TaskIndex.rows)

    @cached_property
    def metadata(self) -> bytes:
        return metadata_xml(self.properties)

    def limits(self) -> FilterLimits:
        return FilterLimits(max_bytes=self.max_bytes, max_list_items=self.max_list_items)

    # -- endpoints ---------------------------------------------------------------------------
    async def service_document(self, request: Request) -> Response:
        await self.ready()
        root = service_root(request)
        body = {
            "@odata.context": f"{root}$metadata",
            "value": [{"name": ENTITY_SET, "kind": "EntitySet", "url": ENTITY_SET}],
        }
        return json_response(body)

    async def metadata_document(self, request: Request) -> Response:
        await self.ready()
        return Response(self.metadata, media_type="application/xml", headers=VERSION_HEADERS)

    async def tasks(self, request: Request) -> Response:
        index = await self.ready()
        options = parse_options(request.query_params.multi_items(), self.properties, self.max_bytes)
        selected = list(options.select or self.properties.values())
        conditions = self.conditions(options.filter)
        size, applied = page_size(request, self.page_size)
        limit = size if options.top is None else min(size, options.top)
        async with index.engine.connect() as conn:
            entities, last = await read_page(
                conn, TaskIndex.rows, selected, conditions, options, limit
            )
            count = await count_rows(conn, TaskIndex.rows, conditions) if options.count else None
        root = service_root(request)
        body: dict[str, Any] = {"@odata.context": context_url(root, options)}
        if count is not None:
            body["@odata.count"] = count
        body["value"] = entities
        remaining = None if options.top is None else options.top - len(entities)
        if last is not None and (remaining is None or remaining > 0):
            body["@odata.nextLink"] = next_link(root, options, last, remaining)
        headers = {"preference-applied": f"odata.maxpagesize={size}"} if applied else None
        return json_response(body, headers)

    async def count(self, request: Request) -> Response:
        index = await self.ready()
        options = parse_options(request.query_params.multi_items(), self.properties, self.max_bytes)
        conditions = self.conditions(options.filter)
        async with index.engine.connect() as conn:
            count = await count_rows(conn, TaskIndex.rows, conditions)
        return PlainTextResponse(str(count), headers=VERSION_HEADERS)

    async def task(self, request: Request) -> Response:
        index = await self.ready()
        key = string_key(request.path_params["key"])
        options = parse_options(request.query_params.multi_items(), self.properties, self.max_bytes)
        if set(options.passed) - {"$select", "$format"}:
            raise ODataError(400, "INVALID_QUERY_OPTION", "one task takes only $select")
        selected = list(options.select or self.properties.values())
        conditions = [*self.conditions(None), self.properties[KEY].column == key]
        async with index.engine.connect() as conn:
            entities, _ = await read_page(conn, TaskIndex.rows, selected, conditions, options, 1)
        if not entities:
            raise ODataError(404, "NOT_FOUND", "no task has this id")
        body = {"@odata.context": context_url(service_root(request), options, entity=True)}
        return json_response({**body, **entities[0]})

    # -- shared ------------------------------------------------------------------------------
    def conditions(self, text: str | None) -> list[Clause]:
        """The filter's condition, and only the vendors this gateway serves (no condition
        when it serves them all: the database would pick the vendor's index over the
        order's)."""
        conditions: list[Clause] = []
        if set(self.vendors) != set(Vendor):
            vendor = self.properties["vendor"].column
            conditions.append(vendor.in_(sorted(v.name for v in self.vendors)))
        if text is not None:
            conditions.append(translate_filter(text, self.properties, self.limits()))
        return conditions

    async def ready(self) -> TaskIndex:
        """The index, when it can answer for every vendor (each vendor's first full sync done,
        as the sync state known to ``IndexView`` says, without a query); else the error
        saying why not."""
        if self.index is None:
            raise ODataError(
                501,
                "INDEX_NOT_CONFIGURED",
                f"OData is served from the task index, and none is configured: set "
                f"{INDEX_SETTING} (TASK_GATEWAY_INDEX_URL), e.g. sqlite:///var/tasks.db",
            )
        view = self.index()
        if view is None:
            raise not_ready("the task index is opening")
        waiting = [
            f"{vendor.name} ({status.first_sync_progress if status else 0.0:.0%})"
            for vendor in self.vendors
            if not view.serves(vendor)
            for status in [view.status(vendor)]
        ]
        if waiting:
            raise not_ready(
                f"the first full sync of the task index has not finished for {', '.join(waiting)}"
            )
        return view.index


def not_ready(message: str) -> ODataError:
    return ODataError(503, "INDEX_NOT_READY", f"{message}; retry later")


def service_root(request: Request) -> str:
    return f"{request.base_url}{PREFIX.lstrip('/')}/"


def context_url(root: str, options: Options, *, entity: bool = False) -> str:
    shape = "" if options.select is None else f"({','.join(p.name for p in options.select)})"
    return f"{root}$metadata#{ENTITY_SET}{shape}{'/$entity' if entity else ''}"


def next_link(root: str, options: Options, last: tuple[Any, ...], remaining: int | None) -> str:
    """The request's own options, past the page just sent: ``$skip`` is spent, ``$top`` is
    what is left of it, ``$skiptoken`` the position after the last row."""
    carried = {k: v for k, v in options.passed.items() if k not in ("$skip", "$skiptoken", "$top")}
    if remaining is not None:
        carried["$top"] = str(remaining)
    carried["$skiptoken"] = encode_skiptoken(options.order, last)
    return f"{root}{ENTITY_SET}?{urlencode(carried, quote_via=quote, safe='$,()')}"


def page_size(request: Request, cap: int) -> tuple[int, bool]:
    """``cap``, or less when the client prefers (``Prefer: odata.maxpagesize=n``); and whether
    its preference was applied."""
    for preference in request.headers.get("prefer", "").split(","):
        name, _, value = preference.strip().partition("=")
        if name.strip().lower() == "odata.maxpagesize" and value.strip().isdigit():
            wanted = int(value.strip()[:10])
            if wanted >= 1:
                return min(wanted, cap), True
    return cap, False


def string_key(text: str) -> str:
    """``'abc'`` (quotes doubled inside, as OData writes them) as ``abc``."""
    if len(text) < 2 or text[0] != "'" or text[-1] != "'" or "'" in text[1:-1].replace("''", ""):
        raise ODataError(400, "INVALID_KEY", "a task's key is its id in quotes: Tasks('<id>')")
    return text[1:-1].replace("''", "'")


async def unknown_path(request: Request) -> Response:
    raise ODataError(404, "NOT_FOUND", f"the service has one entity set, {ENTITY_SET}")


def json_response(body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(body),
        media_type=JSON_MEDIA_TYPE,
        headers={**VERSION_HEADERS, **(headers or {})},
    )


def _endpoint(
    handler: Callable[[Request], Any],
) -> Callable[[Request], Any]:
    """Every refusal in OData's shape: an ``ODataError`` as itself, a method other than GET
    as 405, and the index failing (down, locked) as 503, never a stack trace."""

    async def endpoint(request: Request) -> Response:
        if request.method not in ("GET", "HEAD"):
            return odata_error_response(
                405,
                "METHOD_NOT_ALLOWED",
                "the OData service is read-only: use GET",
                headers={"allow": "GET, HEAD"},
            )
        try:
            response: Response = await handler(request)
        except ODataError as error:
            response = error_response(error)
            if error.status == 503:
                response.headers["retry-after"] = str(RETRY_SECONDS)
        except SQLAlchemyError:
            response = odata_error_response(
                503, "INDEX_UNAVAILABLE", "the task index cannot be read now; retry later"
            )
            response.headers["retry-after"] = str(RETRY_SECONDS)
        return response

    return endpoint


def odata_routes(
    index: IndexLookup | None,
    vendors: Sequence[Vendor],
    max_bytes: int,
    max_list_items: int,
    page_size: int = MAX_PAGE_SIZE,
) -> list[Route]:
    """The OData routes over ``index`` (None: not configured) for ``vendors``; query options
    are bounded as GraphQL's are: ``max_bytes`` each (``graphql.max_document_bytes``), and
    ``max_list_items`` values in an ``in`` list (``graphql.max_list_items``)."""
    service = ODataService(index, tuple(vendors), max_bytes, max_list_items, page_size)
    paths: list[tuple[str, Callable[[Request], Any]]] = [
        (PREFIX, service.service_document),
        (f"{PREFIX}/", service.service_document),
        (f"{PREFIX}/$metadata", service.metadata_document),
        (f"{PREFIX}/{ENTITY_SET}", service.tasks),
        (f"{PREFIX}/{ENTITY_SET}/$count", service.count),
        (f"{PREFIX}/{ENTITY_SET}({{key}})", service.task),
        (f"{PREFIX}/{{path:path}}", unknown_path),
    ]
    return [Route(path, _endpoint(handler), methods=METHODS) for path, handler in paths]
