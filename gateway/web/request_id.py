"""A request id for every request: the caller's ``X-Request-ID`` if it is sane, else a new
one; echoed in the response and put on every log line of the request."""

from __future__ import annotations

import itertools
import os
import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = "x-request-id"
HEADER_BYTES = HEADER.encode()
_SANE = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


_PREFIX = os.urandom(5).hex()
_COUNTER = itertools.count(1)


def new_request_id() -> str:
    """Unique without a system call per request: a random prefix per process (replicas and
    workers differ) and a counter. Ids name requests; they are not secrets."""
    return f"{_PREFIX}{next(_COUNTER):06x}"


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((v for k, v in scope["headers"] if k == HEADER_BYTES), b"").decode("latin-1")
        request_id = given if _SANE.match(given) else new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id
        echoed = (HEADER_BYTES, request_id.encode("latin-1"))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), echoed]
            await send(message)

        await self.app(scope, receive, send_with_id)
