"""What the four simulators share: JSON answers, the sandbox clock, cached listings, the
vendors' key checks, FastAPI-style query validation, and the assembly of one vendor's app.

A simulator module only describes its vendor (routes, error shape, credential header);
``vendor_app`` wraps that in the same counters, knobs and auth check for all four.
"""

from __future__ import annotations

import hmac
import json
import re
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from typing import Any, TypeVar, cast

import orjson
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.sandbox.knobs import ErrorBody, FaultMiddleware, Knobs, control_routes, is_control

T = TypeVar("T")


def json_response(body: Any, status: int = 200) -> Response:
    try:
        content = orjson.dumps(body)
    except TypeError:  # an integer past 64 bits echoed from a request: the json module copes
        content = json.dumps(body).encode()
    return Response(content, status_code=status, media_type="application/json")


class Clock:
    """Sandbox time: the generation's ``now``, moving on with the real clock, so a write or a
    progress step is never older than the data it changes, even with a ``now`` in the past."""

    def __init__(self, start: datetime | None = None) -> None:
        self.start = (start or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
        self._origin = time.monotonic()

    def now(self) -> datetime:
        return self.start + timedelta(seconds=time.monotonic() - self._origin)


class Views:
    """Filtered, sorted listings kept until the data changes: a vendor's database has
    indexes, and a benchmark should measure the gateway, not this sort. Bounded, because
    the filter values (the keys) come from clients. Thread-safe, since tests change data
    from their own thread while the server builds a listing: a listing built while the
    data changed is answered but not kept."""

    def __init__(self, size: int = 128) -> None:
        self.size = size
        self._cache: OrderedDict[Hashable, Any] = OrderedDict()
        self._generation = 0
        self._lock = threading.Lock()

    def get(self, key: Hashable, build: Callable[[], T]) -> T:
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return cast(T, self._cache[key])
            generation = self._generation
        value = build()
        with self._lock:
            if generation == self._generation:
                self._cache[key] = value
                if len(self._cache) > self.size:
                    self._cache.popitem(last=False)
        return value

    def clear(self) -> None:
        with self._lock:
            self._generation += 1
            self._cache.clear()


def page_slice(
    rows: Sequence[T], start: int, stop: int, knobs: Knobs, tie: Callable[[T], Any]
) -> list[T]:
    """``rows[start:stop]`` of a listing sorted by ``tie``. With the ``shuffle_ties`` knob on,
    rows tied on ``tie`` come in a new order on every request, as a database sorting on a
    key with no unique tiebreaker may return them: a tied row can move across a page
    boundary between two reads. Only the tie groups the page touches are shuffled."""
    if not knobs.shuffle_ties or start >= len(rows) or stop <= start:
        return list(rows[start:stop])
    stop = min(stop, len(rows))
    low, high = start, stop
    first, last = tie(rows[start]), tie(rows[stop - 1])
    while low > 0 and tie(rows[low - 1]) == first:
        low -= 1
    while high < len(rows) and tie(rows[high]) == last:
        high += 1
    region: list[T] = []
    group: list[T] = []
    for row in rows[low:high]:
        if group and tie(row) != tie(group[0]):
            knobs.rng.shuffle(group)
            region += group
            group = []
        group.append(row)
    knobs.rng.shuffle(group)
    region += group
    return region[start - low : stop - low]


@dataclass(frozen=True)
class ApiKey:
    """Where a vendor expects its key: a header, optionally as ``<scheme> <key>``. No secret
    means no check at all (Agentex as the open-source server ships)."""

    secret: str | None
    header: str = "authorization"
    scheme: str | None = "Bearer"

    def accepts(self, headers: Headers) -> bool:
        if self.secret is None:
            return True
        value = headers.get(self.header, "")
        if self.scheme:
            scheme, _, value = value.partition(" ")
            if scheme.lower() != self.scheme.lower():
                return False
        return hmac.compare_digest(value.strip().encode(), self.secret.encode())


class AuthMiddleware:
    """Refuses a request without the vendor's key, in the vendor's words (``deny``)."""

    def __init__(self, app: ASGIApp, *, key: ApiKey, deny: Callable[[Request], Response]) -> None:
        self.app = app
        self.key = key
        self.deny = deny

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        refused = (
            scope["type"] == "http"
            and not is_control(scope)
            and not self.key.accepts(Headers(scope=scope))
        )
        if refused:
            await self.deny(Request(scope))(scope, receive, send)
            return
        await self.app(scope, receive, send)


def vendor_app(
    routes: list[Route],
    *,
    knobs: Knobs,
    key: ApiKey,
    error: ErrorBody,
    unauthorized: Callable[[Request], Response],
    advance: Callable[[int], int],
) -> Starlette:
    """One vendor's API: its routes behind the fault middleware (outermost, so every request
    is counted before any fault) and the key check, plus the control routes. The counters
    are ``app.state.counters``."""
    counters: Counter[str] = Counter()

    async def no_route(request: Request, exc: Exception) -> Response:
        status = int(getattr(exc, "status_code", 404))
        return error(request, status, HTTPStatus(status).phrase)

    app = Starlette(
        routes=[*routes, *control_routes(knobs, counters, advance)],
        middleware=[
            Middleware(FaultMiddleware, knobs=knobs, counters=counters, routes=routes, error=error),
            Middleware(AuthMiddleware, key=key, deny=unauthorized),
        ],
        exception_handlers={404: no_route, 405: no_route},
    )
    app.state.counters = counters
    return app


# -- FastAPI-style validation (Agentex and xpander are FastAPI services) -------------------

INTEGER = re.compile(r"\s*[+-]?\d{1,4000}\s*")  # what pydantic parses; Python's int() takes more


class Invalid(Exception):
    """A request FastAPI refuses with 422 ``{"detail": [pydantic errors]}``."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(errors)
        self.errors = errors

    def response(self) -> Response:
        return json_response({"detail": self.errors}, 422)


def pydantic_error(
    loc: list[str | int], kind: str, msg: str, value: Any, **ctx: Any
) -> dict[str, Any]:
    error: dict[str, Any] = {"type": kind, "loc": loc, "msg": msg, "input": value}
    if ctx:
        error["ctx"] = ctx
    return error


class QueryReader:
    """Reads query parameters as FastAPI declares them, collecting every error (FastAPI
    reports all bad parameters at once), then ``done()`` raises ``Invalid`` if any."""

    def __init__(self, request: Request) -> None:
        self.params = request.query_params
        self.errors: list[dict[str, Any]] = []

    def integer(self, name: str, default: int, ge: int, le: int | None = None) -> int:
        raw = self.params.get(name)
        if raw is None:
            return default
        loc: list[str | int] = ["query", name]
        if not INTEGER.fullmatch(raw):
            msg = "Input should be a valid integer, unable to parse string as an integer"
            self.errors.append(pydantic_error(loc, "int_parsing", msg, raw))
            return default
        value = int(raw)
        if value < ge:
            msg = f"Input should be greater than or equal to {ge}"
            self.errors.append(pydantic_error(loc, "greater_than_equal", msg, raw, ge=ge))
        elif le is not None and value > le:
            msg = f"Input should be less than or equal to {le}"
            self.errors.append(pydantic_error(loc, "less_than_equal", msg, raw, le=le))
        return value

    def choice(self, name: str, allowed: tuple[str, ...]) -> str | None:
        raw = self.params.get(name)
        if raw is None or raw in allowed:
            return raw
        quoted = [f"'{value}'" for value in allowed]
        expected = ", ".join(quoted[:-1]) + f" or {quoted[-1]}"
        self.errors.append(
            pydantic_error(
                ["query", name], "enum", f"Input should be {expected}", raw, expected=expected
            )
        )
        return None

    def done(self) -> None:
        if self.errors:
            raise Invalid(self.errors)
