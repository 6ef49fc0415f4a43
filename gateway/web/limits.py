"""Request body size limit and per-client rate limiting, before any GraphQL work."""

from __future__ import annotations

import hashlib
import ipaddress
import math
import time
from collections import OrderedDict
from collections.abc import Callable

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.web.client_keys import header_key
from gateway.web.errors import graphql_error_response
from gateway.web.odata_errors import is_odata_path, odata_error_response

DEFAULT_MAX_BODY_BYTES = 256 * 1024
DEFAULT_RATE_PER_SECOND = 50.0
DEFAULT_BURST = 100
MAX_TRACKED_CLIENTS = 10_000


class BodyTooLarge(Exception):
    pass


class BodySizeLimitMiddleware:
    """Refuses (413) a body over ``max_bytes``, by its Content-Length or while it streams."""

    def __init__(self, app: ASGIApp, max_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit():
                if int(value) > self.max_bytes:
                    await self._refuse(scope, receive, send)
                else:  # the server delivers no more than the declared length
                    await self.app(scope, receive, send)
                return
        seen = 0  # no declared length (chunked): count the body as it streams
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = graphql_error_response(
            413, f"the request body is larger than {self.max_bytes} bytes", "BODY_TOO_LARGE"
        )
        await response(scope, receive, send)


class TokenBucket:
    __slots__ = ("tokens", "updated")

    def __init__(self, tokens: float, now: float) -> None:
        self.tokens = tokens
        self.updated = now


class Buckets:
    """A token bucket per identity (a client key, an address), refilled at ``rate`` per
    second up to ``burst``. At most ``max_tracked`` identities are kept, the least recently
    seen forgotten first, so a flood of new identities costs bounded memory."""

    def __init__(
        self,
        rate: float,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
        max_tracked: int = MAX_TRACKED_CLIENTS,
    ) -> None:
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self.max_tracked = max_tracked
        self.buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def __len__(self) -> int:
        return len(self.buckets)

    def _refilled(self, identity: str) -> TokenBucket:
        now = self.clock()
        bucket = self.buckets.get(identity)
        if bucket is None:
            bucket = self.buckets[identity] = TokenBucket(self.burst, now)
            if len(self.buckets) > self.max_tracked:
                self.buckets.popitem(last=False)
        else:
            self.buckets.move_to_end(identity)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        return bucket

    def wait(self, identity: str) -> float:
        """Seconds until ``identity`` has a token again; 0 if it has one now. Takes none."""
        bucket = self.buckets.get(identity)
        if bucket is None:
            return 0.0
        bucket = self._refilled(identity)
        return 0.0 if bucket.tokens >= 1 else (1 - bucket.tokens) / self.rate

    def take(self, identity: str) -> float:
        """0 if a token was taken, else the seconds until one could be."""
        bucket = self._refilled(identity)
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) / self.rate


def rate_limited(
    wait: float, message: str = "too many requests; slow down", path: str = ""
) -> Response:
    """The 429 every limit answers: ``Retry-After`` in whole seconds, code RATE_LIMITED, in
    OData's error shape under ``/odata`` and GraphQL's elsewhere."""
    headers = {"retry-after": str(max(1, math.ceil(wait)))}
    if is_odata_path(path):
        return odata_error_response(429, "RATE_LIMITED", message, headers=headers)
    return graphql_error_response(429, message, "RATE_LIMITED", headers)


class RateLimitMiddleware:
    """A token bucket per client key (or per address without one): 429 with Retry-After."""

    def __init__(
        self,
        app: ASGIApp,
        rate: float = DEFAULT_RATE_PER_SECOND,
        burst: int = DEFAULT_BURST,
        clock: Callable[[], float] = time.monotonic,
        exempt_paths: frozenset[str] = frozenset({"/healthz", "/readyz", "/metrics"}),
    ) -> None:
        self.app = app
        self.buckets = Buckets(rate, burst, clock)
        self.exempt_paths = exempt_paths

    def identity(self, scope: Scope) -> str:
        key = header_key(scope["headers"])
        if key is not None:
            return "key:" + hashlib.sha256(key.encode()).hexdigest()[:24]
        return "addr:" + client_address(scope)

    def take(self, identity: str) -> float:
        """0 if the request may go on, else the seconds until it could."""
        return self.buckets.take(identity)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.exempt_paths:
            await self.app(scope, receive, send)
            return
        wait = self.take(self.identity(scope))
        if wait <= 0:
            await self.app(scope, receive, send)
            return
        await rate_limited(wait, path=scope["path"])(scope, receive, send)


def client_address(scope: Scope) -> str:
    """The caller's address as limits count it: an IPv6 address by its /64, since one
    host is routinely given a whole /64 and could otherwise rotate through it."""
    client = scope.get("client")
    if not client:
        return "-"
    host = str(client[0])
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)
