"""Whole-response caching of identical read operations, in process: an ASGI middleware
mounted in front of the GraphQL view on ``/graphql``.

A hit answers with the stored bytes before any GraphQL work. The key holds the document,
variables and operation name, the caller (a digest of its key and of any vendor keys it
forwards), the response media type, and every vendor's cache generation, so a write
(``updateTracker``) makes older answers unreachable at once, also across replicas.
Entries live for the shortest first-page TTL of the vendors, the freshness the page cache
already promises.

Identical misses collapse into one execution (``gateway.core.flight``): the first request
computes the answer, the others wait for it. Once an entry has expired, the one request
recomputing it holds the flight while the others are answered with the expired entry (for
at most another TTL), so an expiry under load costs one execution, not one per request that
arrives during it. A write changes the key (the vendors' generations), so nothing stale
survives a write.

What is cached is decided from the parsed request, never from its text
(``gateway.web.cacheable``: a query operation, no ``fresh`` argument that is true, neither
``vendorParts`` nor ``vendors``), and only an answer whose parsed result has no ``errors``
(a vendor missing). Never cached: mutations and subscriptions, event streams (``Accept:
text/event-stream``) and WebSockets, bypass requests, persisted queries and other
``extensions``, and anything while the shared cache backend is down (the generations that
would reveal a write are unreadable).

A hit never answers what a miss would refuse: a POST whose content type the view refuses is
passed to the view, and a body becomes a key only once it passes the view's own decoding
and checks (``graphql_request``); anything else the view refuses does not parse as a query
without errors, so it is never stored.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from dataclasses import dataclass, field

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.core.cache import PageCache
from gateway.core.flight import SingleFlight
from gateway.core.records import Vendor
from gateway.observability import Observer
from gateway.web.cacheable import cacheable_body, cacheable_query_string
from gateway.web.graphql import read_headers, send_bytes
from gateway.web.graphql_request import media_type_refusal

DEFAULT_MAX_ENTRIES = 2_000
DEFAULT_MAX_BYTES = 64 * 1024 * 1024
"""The answers kept, in bytes: app.py gives a quarter of ``cache.max_bytes``."""
CALLER_HEADERS = (b"authorization", b"x-api-key")
VENDOR_KEY_PREFIX = b"x-vendor-key-"


class ResponseCache:
    """The entries, their keys and the single-flight of their computations."""

    def __init__(
        self,
        pages: PageCache,
        vendors: tuple[Vendor, ...],
        ttl: float,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        self.pages = pages
        self.vendors = vendors
        self.ttl = ttl
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.bytes = 0
        """The stored answers' sizes added up: what ``max_bytes`` bounds."""
        self.entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self.flight: SingleFlight[bytes | None] = SingleFlight()
        """In process only: the entries are this process's."""
        self.hits = 0
        self.misses = 0
        self.stale = 0

    async def key(
        self,
        found: tuple[str, bytes] | None,
        headers: list[tuple[bytes, bytes]],
        media_type: str,
    ) -> tuple[str, str] | None:
        """The key and operation name of a cacheable request (``found``): a digest of the key
        material, media type, every vendor's generation and the caller (its key and the
        vendor keys it forwards; digested, never stored)."""
        if found is None:
            return None
        name, material = found
        key = hashlib.sha256(material)
        key.update(media_type.encode())
        for generation in await self.pages.generations(self.vendors):
            key.update(b";%d" % generation)
        if self.pages.degraded:
            return None  # generations unknown (Redis down): a write could go unnoticed
        for header, value in headers:
            if header in CALLER_HEADERS or header.startswith(VENDOR_KEY_PREFIX):
                key.update(b"\0" + header + b"=" + value)
        return key.hexdigest(), name

    def get(self, key: str) -> bytes | None:
        """A fresh entry, or an expired one (within another TTL) while it is being
        recomputed; None when the caller has to compute or join the computation."""
        entry = self.entries.get(key)
        if entry is not None:
            expires, body = entry
            now = time.monotonic()
            if expires >= now:
                self.hits += 1
                return body
            if self.flight.running(key) and now - expires <= self.ttl:
                self.stale += 1
                return body
        self.misses += 1
        return None

    def put(self, key: str, body: bytes) -> None:
        """Stored last, oldest dropped first past either bound; an answer larger than the
        whole byte bound is not kept."""
        if len(body) > self.max_bytes:
            return
        previous = self.entries.pop(key, None)
        if previous is not None:
            self.bytes -= len(previous[1])
        self.entries[key] = (time.monotonic() + self.ttl, body)
        self.bytes += len(body)
        while len(self.entries) > self.max_entries or self.bytes > self.max_bytes:
            _, (_, dropped) = self.entries.popitem(last=False)
            self.bytes -= len(dropped)


@dataclass
class _Lead:
    """What the request that computed an answer sends its own client."""

    messages: list[Message] = field(default_factory=list)
    error: Exception | None = None


class ResponseCacheMiddleware:
    """In front of the GraphQL view (``Route("/graphql", ResponseCacheMiddleware(view))``):
    answers a cacheable read from ``cache``, or computes it once for identical ones."""

    def __init__(
        self, app: ASGIApp, *, cache: ResponseCache, observer: Observer | None = None
    ) -> None:
        self.app = app
        self.cache = cache
        self.observer = observer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # WebSockets: subscriptions, never cached
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        media_type, bypass, event_stream = read_headers(headers)
        found: tuple[str, bytes] | None = None
        if bypass or event_stream:
            pass  # asked fresh; or an event stream (graphql-sse), never a cached JSON answer
        elif scope["method"] == "POST":
            if media_type_refusal(headers) is None:  # else the view refuses it
                body, receive = await read_body(receive)
                found = None if body is None else cacheable_body(body)
        elif scope["method"] == "GET":
            found = cacheable_query_string(scope["query_string"])
        keyed = await self.cache.key(found, headers, media_type)
        if keyed is None:
            await self.app(scope, receive, send)
            return
        key, operation = keyed
        cached = self.cache.get(key)
        if cached is None:
            lead = _Lead()
            cached = await self.cache.flight.run(
                key, lambda: self._compute(key, scope, receive, lead)
            )
            if lead.error is not None:
                raise lead.error
            if lead.messages:
                for message in lead.messages:
                    await send(message)
                return
            if cached is None:  # the answer computed meanwhile is not one to share
                await self.app(scope, receive, send)
                return
        if self.observer is not None:
            request_id = scope.get("state", {}).get("request_id", "-")
            self.observer.cached_response(request_id, operation, time.perf_counter() - started)
        await send_bytes(send, cached, media_type)

    async def _compute(self, key: str, scope: Scope, receive: Receive, lead: _Lead) -> bytes | None:
        """Run the view for the request that leads; its answer, if it may be shared. An
        error is kept for the leader alone: the others then run the view themselves."""

        async def keep(message: Message) -> None:
            lead.messages.append(message)

        try:
            await self.app(scope, receive, keep)
        except Exception as exc:
            lead.error = exc
            return None
        body = shareable(lead.messages)
        if body is not None:
            self.cache.put(key, body)
        return body


def shareable(messages: list[Message]) -> bytes | None:
    """The body of a complete 200 answer whose parsed result has no ``errors``."""
    if not messages or messages[0]["type"] != "http.response.start":
        return None
    if messages[0]["status"] != 200:
        return None
    body = b"".join(m.get("body", b"") for m in messages[1:] if m["type"] == "http.response.body")
    try:
        result = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return body if isinstance(result, dict) and "errors" not in result else None


async def read_body(receive: Receive) -> tuple[bytes | None, Receive]:
    """The whole body (None if the client left first), and a ``receive`` that hands the
    same messages to the app behind."""
    messages: list[Message] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            body = None
            break
        if not message.get("more_body", False):
            body = b"".join(m.get("body", b"") for m in messages)
            break

    async def replay() -> Message:
        return messages.pop(0) if messages else await receive()

    return body, replay
