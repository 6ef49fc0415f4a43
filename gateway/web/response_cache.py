"""Whole-response caching of identical read operations, in process.

A hit answers with the stored bytes before any GraphQL work. The key holds the document,
variables and operation name, the caller (a digest of its key and of any vendor keys it
forwards), the response media type, and every vendor's cache generation, so a write
(``updateTracker``) makes older answers unreachable at once, also across replicas.
Entries live for the shortest first-page TTL of the vendors, the freshness the page cache
already promises.

Identical misses collapse into one execution (single-flight): the first request computes the
answer, the others wait for it. Once an entry has expired, the one request recomputing it
holds the flight while the others are answered with the expired entry (for at most another
TTL), so an expiry under load costs one execution, not one per request that arrives during
it. A write changes the key (the vendors' generations), so nothing stale survives a write.
Not cached: while the shared cache backend is down (the generations that would reveal a
write are unreadable), mutations and subscriptions, answers with errors (a vendor
missing), ``fresh`` or bypass requests, queries asking for ``vendorParts`` (which
describe one particular fetch) or for ``vendors`` (live operator state).

A hit never answers what a miss would refuse: the view judges a POST's content type before
it looks here, and a body becomes a key only once it passes the view's own decoding and
checks (``graphql_request``).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import orjson
from graphql import FieldNode, GraphQLError, OperationDefinitionNode, OperationType, parse

from gateway.core.cache import PageCache
from gateway.core.records import Vendor
from gateway.web.errors import RequestRefused
from gateway.web.graphql_request import parse_request_body

DEFAULT_MAX_ENTRIES = 2_000
CALLER_HEADERS = (b"authorization", b"x-api-key")
VENDOR_KEY_PREFIX = b"x-vendor-key-"
LIVE_FIELDS = frozenset({"vendors"})
"""Query fields that describe the gateway's state now (``Query.vendors``), never cached."""


@lru_cache(maxsize=1024)
def cacheable_operation(query: str, operation_name: str | None) -> str | None:
    """The name of the query operation to run, if its answer may be cached (a query that
    does not ask how its data was fetched); None otherwise."""
    if "vendorParts" in query or "fresh" in query:
        return None
    try:
        document = parse(query)
    except GraphQLError:
        return None
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    chosen = [
        op
        for op in operations
        if operation_name is None or (op.name is not None and op.name.value == operation_name)
    ]
    if len(chosen) != 1 or chosen[0].operation is not OperationType.QUERY:
        return None
    top = chosen[0].selection_set.selections
    if any(not isinstance(f, FieldNode) or f.name.value in LIVE_FIELDS for f in top):
        return None  # operator state, read fresh (top-level fragments: not worth a look)
    return chosen[0].name.value if chosen[0].name else "anonymous"


MAX_REMEMBERED_BODY = 8192
"""Bodies up to this size have their parse remembered (``cacheable_body``)."""


def cacheable_payload(payload: Any) -> tuple[str, bytes] | None:
    """The operation name and canonical key material (query, variables, operation name) of
    a cacheable request, or None."""
    if not isinstance(payload, Mapping) or "extensions" in payload:
        return None  # persisted queries and extensions take the full path
    query, operation = payload.get("query"), payload.get("operationName")
    if not isinstance(query, str) or not (operation is None or isinstance(operation, str)):
        return None
    name = cacheable_operation(query, operation)
    if name is None:
        return None
    material = orjson.dumps(
        [query, payload.get("variables"), operation], option=orjson.OPT_SORT_KEYS
    )
    return name, material


def _body(body: bytes) -> tuple[str, bytes] | None:
    """Decoded and checked by the view's own rules, so a body the view would refuse (not
    UTF-8, too deep, parameters of the wrong type) is never a key, hence never a hit."""
    try:
        return cacheable_payload(parse_request_body(body))
    except RequestRefused:
        return None


cacheable_body = lru_cache(maxsize=1024)(_body)
"""``cacheable_payload`` of a POST body, remembered: a client repeating a request repeats
its bytes, and parsing them again for every hit cost more than the rest of the lookup."""


class ResponseCache:
    def __init__(
        self,
        pages: PageCache,
        vendors: tuple[Vendor, ...],
        ttl: float,
        max_entries: int = DEFAULT_MAX_ENTRIES,
    ) -> None:
        self.pages = pages
        self.vendors = vendors
        self.ttl = ttl
        self.max_entries = max_entries
        self.entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self.flights: dict[str, asyncio.Future[bytes | None]] = {}
        self.hits = 0
        self.misses = 0
        self.stale = 0
        self.joined = 0

    async def key(
        self, payload: Mapping[str, Any], headers: list[tuple[bytes, bytes]], media_type: str
    ) -> tuple[str, str] | None:
        """The cache key and operation name of a cacheable request given as parameters."""
        return await self._keyed(cacheable_payload(payload), headers, media_type)

    async def key_of_body(
        self, body: bytes, headers: list[tuple[bytes, bytes]], media_type: str
    ) -> tuple[str, str] | None:
        """The cache key and operation name of a cacheable POST body."""
        found = cacheable_body(body) if len(body) <= MAX_REMEMBERED_BODY else _body(body)
        return await self._keyed(found, headers, media_type)

    async def _keyed(
        self,
        found: tuple[str, bytes] | None,
        headers: list[tuple[bytes, bytes]],
        media_type: str,
    ) -> tuple[str, str] | None:
        """The key: a digest of the key material, media type, every vendor's generation and
        the caller (its key and the vendor keys it forwards; digested, never stored)."""
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
            if key in self.flights and now - expires <= self.ttl:
                self.stale += 1
                return body
        self.misses += 1
        return None

    def claim(self, key: str) -> asyncio.Future[bytes | None] | None:
        """None: the caller computes the answer and must ``settle`` the key. Otherwise the
        future of the computation under way (its answer, or None if it is not cacheable)."""
        flight = self.flights.get(key)
        if flight is not None:
            self.joined += 1
            return flight
        self.flights[key] = asyncio.get_running_loop().create_future()
        return None

    def settle(self, key: str, body: bytes | None) -> None:
        """End the computation of ``key``: store a cacheable answer and hand it to the
        requests that joined."""
        if body is not None:
            self.put(key, body)
        flight = self.flights.pop(key, None)
        if flight is not None and not flight.done():
            flight.set_result(body)

    def put(self, key: str, body: bytes) -> None:
        self.entries[key] = (time.monotonic() + self.ttl, body)
        self.entries.move_to_end(key)
        while len(self.entries) > self.max_entries:
            self.entries.popitem(last=False)
