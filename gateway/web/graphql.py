"""The GraphQL route: Strawberry's ASGI view, speaking GraphQL over HTTP as its spec says.

- ``application/graphql-response+json`` when the client accepts it, with a 4xx status for a
  request that fails before execution (unparsable, invalid, bad variables);
  ``application/json`` otherwise, always 200 for a well-formed request.
- A request refused before GraphQL runs (``graphql_request``: a POST that is not
  ``application/json`` is 415, a body that is not one well-typed JSON request is 400) or that
  Strawberry refuses outright (no query) still gets a GraphQL-shaped JSON error with an
  ``extensions.code``, never plain text; a mutation over GET, or any other method, is 405.
  The response cache in front (``response_cache``) passes a content type refused here on to
  this view, so a hit never answers a request that a miss would refuse.
- GraphiQL on GET from a browser.
"""

from __future__ import annotations

import time
from typing import Any, NamedTuple

import orjson
from cross_web import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.types import Receive, Scope, Send
from strawberry.asgi import GraphQL
from strawberry.schema.exceptions import InvalidOperationTypeError
from strawberry.types import ExecutionResult

from gateway.core.context import RequestState
from gateway.core.poller import TaskPoller
from gateway.core.service import TaskService
from gateway.graph.context import GraphContext
from gateway.observability import Observer
from gateway.web.auth import ide_request
from gateway.web.credentials import forwarded_credentials
from gateway.web.errors import RequestRefused, graphql_error_response
from gateway.web.graphiql import graphiql_page
from gateway.web.graphql_request import (
    check_request,
    decode_json,
    media_type_refusal,
    parse_json,
)
from gateway.web.persisted import PersistedQueries, PersistedQueryError

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"
BYPASS_HEADER = "x-cache-bypass"
_GRAPHQL_RESPONSE_BYTES = GRAPHQL_RESPONSE.encode()
_BYPASS_BYTES = BYPASS_HEADER.encode()
_EVENT_STREAM_BYTES = b"text/event-stream"


class RequestHeaders(NamedTuple):
    media_type: str
    """The media type to answer in."""
    bypass: bool
    """The client asks to bypass the caches."""
    event_stream: bool
    """The client accepts an event stream (graphql-sse): never a cached JSON answer."""


def read_headers(raw: list[tuple[bytes, bytes]]) -> RequestHeaders:
    """The media type, whether the client asks to bypass the caches (``X-Cache-Bypass: 1``
    or ``Cache-Control: no-cache``) and whether it accepts an event stream: one pass over
    the raw headers, since every response-cache hit asks all three."""
    media_type, bypass, event_stream = JSON, False, False
    for name, value in raw:
        if name == b"accept":
            if _GRAPHQL_RESPONSE_BYTES in value:
                media_type = GRAPHQL_RESPONSE
            event_stream = event_stream or _EVENT_STREAM_BYTES in value.lower()
        elif name == _BYPASS_BYTES:
            bypass = bypass or value.lower() in (b"1", b"true", b"yes")
        elif name == b"cache-control":
            bypass = bypass or b"no-cache" in value
    return RequestHeaders(media_type, bypass, event_stream)


def error_response(status: int, message: str, code: str, media_type: str) -> Response:
    headers = {"allow": "GET, POST"} if status == 405 else None
    return graphql_error_response(status, message, code, headers, media_type=media_type)


async def send_bytes(send: Send, body: bytes, media_type: str) -> None:
    """A stored answer, sent as is: what ``Response`` would send, without building one."""
    headers = [
        (b"content-type", media_type.encode("latin-1")),
        (b"content-length", str(len(body)).encode("latin-1")),
    ]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class GraphQLView(GraphQL[GraphContext, None]):
    def __init__(
        self,
        service: TaskService,
        *,
        graphiql_query: str | None = None,
        forward_credentials: bool = False,
        request_deadline: float | None = None,
        answer_within: float | None = None,
        persisted: PersistedQueries | None = None,
        observer: Observer | None = None,
        poller: TaskPoller | None = None,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        self.poller = poller
        self.persisted = persisted
        self.observer = observer
        self.request_deadline = request_deadline
        self.answer_within = answer_within
        self.service = service
        self.graphiql_query = graphiql_query
        self.forward_credentials = forward_credentials

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope, receive)
        media_type = read_headers(scope["headers"]).media_type
        refused = media_type_refusal(scope["headers"]) if request.method == "POST" else None
        if refused is not None:
            response = error_response(refused.status, refused.message, refused.code, media_type)
            await response(scope, receive, send)
            return
        try:
            response = await self.run(request)
        except PersistedQueryError as exc:
            # Apollo clients expect a 200 with this error, then resend with the query.
            response = error_response(200, exc.message, exc.code, media_type)
        except RequestRefused as exc:
            response = error_response(exc.status, exc.message, exc.code, media_type)
        except HTTPException as exc:
            status, code = exc.status_code, "BAD_REQUEST"
            if request.method == "GET" and isinstance(exc.__cause__, InvalidOperationTypeError):
                status, code = 405, "METHOD_NOT_ALLOWED"
            elif status == 405:
                code = "METHOD_NOT_ALLOWED"
            elif status == 404:
                code = "NOT_FOUND"
            response = error_response(status, exc.reason, code, media_type)
        await response(scope, receive, send)

    async def get_context(self, request: Request, response: Any) -> GraphContext:  # type: ignore[override]
        media_type, bypass, _ = read_headers(request.scope["headers"])
        http = request.scope["type"] == "http"
        context = GraphContext(
            service=self.service,
            state=RequestState(
                bypass_cache=bypass,
                credentials=forwarded_credentials(request.headers, self.forward_credentials),
                deadline=time.monotonic() + self.request_deadline
                if self.request_deadline and http
                else None,
                answer_by=time.monotonic() + self.answer_within
                if self.answer_within and http
                else None,
            ),
            request=request,
            response=response,
            request_id=request.scope.get("state", {}).get("request_id", "-"),
            observer=self.observer,
            poller=self.poller,
        )
        request.state.graph_context = context
        response.graphql_media_type = media_type
        return context

    def should_render_graphql_ide(self, request: Any) -> bool:
        """Only for a browser GET that carries no GraphQL parameter in any spelling (a
        persisted-query hash included): the rule the auth middleware opens the page by."""
        names = request.query_params.keys()
        return ide_request(request.method, names, request.headers.get("accept", ""))

    async def render_graphql_ide(self, request: Request) -> Response:
        return HTMLResponse(graphiql_page(self.graphql_ide_html, self.graphiql_query))

    def decode_json(self, data: str | bytes) -> object:
        """Every JSON this view reads (bodies, GET parameters, WebSocket messages): strict
        UTF-8 and bounded nesting; a decode error otherwise, as the protocols expect."""
        return decode_json(data)

    def parse_json(self, data: str | bytes) -> Any:
        return parse_json(data)

    async def parse_http_body(self, request: Any) -> Any:
        if request.method == "POST":  # the parameters' types, which Strawberry checks in part
            check_request(self.parse_json(await request.get_body()))
        data = await super().parse_http_body(request)
        if self.persisted is None or isinstance(data, list):
            return data
        data.query = await self.persisted.resolve(data.query, data.extensions)
        return data

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)

    async def process_result(self, request: Request, result: ExecutionResult) -> Any:
        data: dict[str, Any] = dict(await super().process_result(request, result))
        context: GraphContext | None = getattr(request.state, "graph_context", None)
        if context is not None and not context.executed and result.errors:
            data.pop("data", None)
            for error in data.get("errors", []):
                # A syntax error never reaches the schema's extensions: give it its code here.
                error.setdefault("extensions", {}).setdefault("code", "GRAPHQL_PARSE_FAILED")
            if context.response.graphql_media_type == GRAPHQL_RESPONSE:
                context.response.status_code = 400
        return data

    def create_response(self, response_data: Any, sub_response: Response) -> Response:
        response = Response(
            self.encode_json(response_data),
            status_code=sub_response.status_code or 200,
            media_type=getattr(sub_response, "graphql_media_type", JSON),
        )
        response.headers.raw.extend(sub_response.headers.raw)
        if sub_response.background:
            response.background = sub_response.background
        return response
