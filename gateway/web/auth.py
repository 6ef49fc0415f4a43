"""Client authentication, decided here and nowhere else, for every path that can run an
operation: ``/graphql`` over every method and content type (persisted queries included),
the exports, OData (where HTTP Basic auth with the key as password works too), and
WebSockets of both subprotocols. Only ``OPEN_PATHS``, GraphiQL's static assets and
GraphiQL's page are served without a key, and the page only to a GET that carries no
GraphQL parameter once decoded (``ide_request``, the rule the GraphQL view
renders the page by): it holds no data and nothing is executed for it.

A WebSocket may bring its key in the handshake's headers or, as browsers must, in its
``connection_init`` payload; until a valid key arrives the socket gets no message through
but ``connection_init``, so no operation can start. Keys are compared as SHA-256 digests
in constant time and never logged.

Failed attempts are limited per client address (``auth.failed_attempts_per_minute``):
past the limit, every request from that address that needs a key is answered 429
``RATE_LIMITED`` with ``Retry-After`` before its key is even looked at, so a guesser learns
nothing until the window passes.
"""

from __future__ import annotations

import hashlib
import hmac
import unicodedata
from collections.abc import Iterable
from urllib.parse import parse_qsl

import orjson
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.web.client_keys import client_key, header_key, payload_pairs
from gateway.web.errors import graphql_error_response
from gateway.web.limits import Buckets, client_address, rate_limited
from gateway.web.odata_errors import BASIC_CHALLENGE, is_odata_path, odata_error_response

OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
OPEN_PREFIXES = ("/graphql/assets/",)
IDE_PATH = "/graphql"
GRAPHQL_PARAMETERS = frozenset({"query", "variables", "operationname", "extensions"})
"""Parameter names that make a GET an operation, compared after ``_normalized``."""
DEFAULT_FAILED_PER_MINUTE = 20
MAX_CONNECTION_INIT_BYTES = 64 * 1024
"""A ``connection_init`` larger than this is not parsed: a key needs a few hundred bytes."""

UNAUTHORIZED = 4401
FORBIDDEN = 4403
TOO_MANY = 4429


def _normalized(name: str) -> str:
    """A parameter name reduced to lower-case letters and digits (compatibility forms
    folded), so no spelling of ``query`` (``QUERY``, ``query ``, a full-width ``q``) slips past."""
    folded = unicodedata.normalize("NFKC", name).casefold()
    return "".join(c for c in folded if c.isalnum())


def carries_graphql(names: Iterable[str]) -> bool:
    """Whether any decoded parameter name is, or could be read as, a GraphQL parameter."""
    return any(_normalized(name) in GRAPHQL_PARAMETERS for name in names)


def ide_request(method: str, names: Iterable[str], accept: str) -> bool:
    """A browser asking for GraphiQL's page: a GET that accepts HTML and carries no GraphQL
    parameter. The GraphQL view renders the page by this rule too, so a request opened here
    for the page can never be executed there."""
    return method == "GET" and "text/html" in accept.lower() and not carries_graphql(names)


def query_names(query_string: bytes) -> list[str]:
    """The parameter names of a raw query string, decoded exactly as Starlette (and so
    Strawberry) decodes them: percent-escapes, ``+`` as a space."""
    return [name for name, _ in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)]


def is_ide_page(scope: Scope) -> bool:
    if scope["type"] != "http" or scope["path"] != IDE_PATH:
        return False
    # The first Accept header, as the view reads it, so both judge the same request.
    accept = next((v.decode("latin-1") for n, v in scope["headers"] if n == b"accept"), "")
    return ide_request(scope["method"], query_names(scope.get("query_string", b"")), accept)


def digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


class ClientAuthMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        keys: Iterable[str],
        open_paths: frozenset[str] = OPEN_PATHS,
        *,
        ide: bool = True,
        failed_per_minute: int = DEFAULT_FAILED_PER_MINUTE,
        failures: Buckets | None = None,
    ) -> None:
        self.app = app
        self.digests = [digest(k) for k in keys]
        self.open_paths = open_paths
        self.ide = ide
        self.failures = failures
        if failures is None and failed_per_minute > 0:
            self.failures = Buckets(failed_per_minute / 60, failed_per_minute)

    def allowed(self, key: str | None) -> bool:
        if key is None:
            return False
        candidate = digest(key)
        return any(hmac.compare_digest(candidate, d) for d in self.digests)

    def blocked(self, address: str) -> float:
        """Seconds this address must wait after too many failures; 0 if it may try."""
        return 0.0 if self.failures is None else self.failures.wait(address)

    def failed(self, address: str) -> None:
        if self.failures is not None:
            self.failures.take(address)

    def is_open(self, scope: Scope) -> bool:
        path = scope.get("path", "")
        return (
            scope["type"] not in ("http", "websocket")
            or path in self.open_paths
            or path.startswith(OPEN_PREFIXES)
            or (self.ide and is_ide_page(scope))
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.is_open(scope):
            await self.app(scope, receive, send)
            return
        address = client_address(scope)
        wait = self.blocked(address)
        if wait > 0:
            refusal = rate_limited(wait, TOO_MANY_MESSAGE, scope.get("path", ""))
            await _refuse(scope, receive, send, refusal, TOO_MANY)
            return
        key = header_key(scope["headers"])
        if self.allowed(key):
            scope.setdefault("state", {})["client_key"] = key
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket" and key is None:
            await self.app(scope, *self._guard(scope, receive, send, address))
            return
        self.failed(address)
        await _refuse(scope, receive, send, unauthenticated(scope.get("path", "")), UNAUTHORIZED)

    def _guard(
        self, scope: Scope, receive: Receive, send: Send, address: str
    ) -> tuple[Receive, Send]:
        """The socket's ``receive`` and ``send`` until it authenticates by
        ``connection_init``: any other message first, or a wrong or missing key, closes it
        before the app reads it, and the app's later messages go nowhere."""
        authenticated = closed = False

        async def guarded_receive() -> Message:
            nonlocal authenticated, closed
            message = await receive()
            if authenticated or message["type"] != "websocket.receive":
                return message
            key, code = self._connection_init(message, address)
            if key is not None:
                authenticated = True
                scope.setdefault("state", {})["client_key"] = key
                return message
            if not closed:
                closed = True
                await send({"type": "websocket.close", "code": code, "reason": REASONS[code]})
            return {"type": "websocket.disconnect", "code": code}

        async def guarded_send(message: Message) -> None:
            nonlocal closed
            if closed:
                return
            closed = message["type"] == "websocket.close"
            await send(message)

        return guarded_receive, guarded_send

    def _connection_init(self, message: Message, address: str) -> tuple[str | None, int]:
        """The key of a ``connection_init`` that carries a valid one; else None and the
        close code: 4401 for anything else first, 4403 for a wrong or missing key, 4429
        when the address has failed too often."""
        text = message.get("text")  # a binary frame is no GraphQL message
        if not text or len(text) > MAX_CONNECTION_INIT_BYTES:
            return None, UNAUTHORIZED
        try:
            parsed = orjson.loads(text)
        except orjson.JSONDecodeError:
            return None, UNAUTHORIZED
        if not isinstance(parsed, dict) or parsed.get("type") != "connection_init":
            return None, UNAUTHORIZED
        if self.blocked(address) > 0:
            return None, TOO_MANY
        key = client_key(payload_pairs(parsed.get("payload")))
        if not self.allowed(key):
            self.failed(address)
            return None, FORBIDDEN
        return key, 0


TOO_MANY_MESSAGE = "too many failed authentication attempts from this address; retry later"
REASONS = {
    UNAUTHORIZED: "Unauthorized",
    FORBIDDEN: "Forbidden",
    TOO_MANY: "Too many failed authentication attempts",
}


def unauthenticated(path: str = "") -> Response:
    """401. Under ``/odata`` in OData's shape with a Basic challenge, which BI tools answer
    with a user name and password (the key); elsewhere a Bearer challenge, since a Basic one
    would make a browser running GraphiQL pop up its own login dialog."""
    if is_odata_path(path):
        return odata_error_response(
            401,
            "UNAUTHENTICATED",
            "an API key is required: send it as the password of HTTP Basic auth (any user "
            "name), or as `Authorization: Bearer <key>`",
            headers={"www-authenticate": BASIC_CHALLENGE},
        )
    return graphql_error_response(
        401,
        "an API key is required: send `Authorization: Bearer <key>`",
        "UNAUTHENTICATED",
        {"www-authenticate": 'Bearer realm="task-gateway"'},
    )


async def _refuse(
    scope: Scope, receive: Receive, send: Send, response: Response, close_code: int
) -> None:
    """An HTTP answer; for a WebSocket handshake the same answer when the server can send
    one (the ASGI denial-response extension), else a close with ``close_code``."""
    if scope["type"] == "http" or "websocket.http.response" in scope.get("extensions", {}):
        await response(scope, receive, send)
        return
    await send({"type": "websocket.close", "code": close_code, "reason": REASONS[close_code]})
