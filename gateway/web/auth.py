"""Client authentication: a request without a known API key is refused before any upstream
call. Keys are compared as SHA-256 digests in constant time and never logged."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.web.errors import graphql_error_response

OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
OPEN_PREFIXES = ("/graphql/assets/",)


def is_ide_page(scope: Scope) -> bool:
    """The GraphiQL page itself holds no data; the key goes in its headers tab."""
    if scope["type"] != "http" or scope["method"] != "GET" or scope["path"] != "/graphql":
        return False
    query = scope.get("query_string", b"")
    accept = dict(scope["headers"]).get(b"accept", b"")
    return b"text/html" in accept and b"query=" not in query and b"extensions=" not in query


def digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def client_key(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """The caller's key from ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``."""
    for name, value in headers:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
        elif name == b"x-api-key" and value.strip():
            return value.decode("latin-1").strip()
    return None


class ClientAuthMiddleware:
    def __init__(self, app: ASGIApp, keys: Iterable[str], open_paths: frozenset[str] = OPEN_PATHS):
        self.app = app
        self.digests = [digest(k) for k in keys]
        self.open_paths = open_paths

    def allowed(self, key: str | None) -> bool:
        if key is None:
            return False
        candidate = digest(key)
        return any(hmac.compare_digest(candidate, d) for d in self.digests)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if (
            scope["type"] not in ("http", "websocket")
            or path in self.open_paths
            or path.startswith(OPEN_PREFIXES)
            or is_ide_page(scope)
        ):
            await self.app(scope, receive, send)
            return
        key = client_key(scope["headers"])
        if self.allowed(key):
            scope.setdefault("state", {})["client_key"] = key
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 4401, "reason": "Unauthorized"})
            return
        response = graphql_error_response(
            401,
            "an API key is required: send `Authorization: Bearer <key>`",
            "UNAUTHENTICATED",
            {"www-authenticate": 'Bearer realm="task-gateway"'},
        )
        await response(scope, receive, send)
