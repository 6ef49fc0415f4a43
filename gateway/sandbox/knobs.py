"""Fault and latency knobs, per-endpoint request counters, the ASGI middleware applying them,
and the ``/_sandbox/`` control routes that turn them from another process.

``per_minute`` is orq's plan limit as its rate-limit page describes it (a rolling 60-second
window; refusals are 429 with ``Retry-After``, ``X-RateLimit-Limit``, ``X-RateLimit-Remaining``
and ``X-RateLimit-Reset``, the last in Unix seconds), available on every vendor.
``hang`` holds every request while it is on (a vendor that stops answering, then recovers):
turned off, the requests held are answered as usual, so a test knows when a call completes.
``shuffle_ties`` is read by the offset-paged simulators: rows tied on the sort key come back
in another order on each request, as a database without a tiebreaker may return them.

Knobs are plain attributes so a test can set one between two calls; the middleware reads
them afresh on every request. Randomness comes from the knobs' own seeded ``Random``, so a
run with a given rate fails the same requests every time.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from http import HTTPStatus
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTROL_PREFIX = "/_sandbox/"
HANG_SECONDS = 300.0  # a "timeout" answers only if the client is still waiting after this
HOLD_POLL_SECONDS = 0.01  # how often a held request looks at the ``hang`` knob
DEFAULT_STEPS = 3

ErrorBody = Callable[[Request, int, str], Response]
"""A vendor's error answer: ``(request, status, message) -> Response`` in its own shape."""


class RollingWindow:
    """The moments of the requests let through in the last 60 seconds: what a rolling
    per-minute limit counts. Refused requests are not counted, and setting the limit (the
    ``per_minute`` knob) starts from an empty window, so a test knows what it starts with."""

    SECONDS = 60.0

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._seen: deque[float] = deque()

    def restart(self) -> None:
        self._seen.clear()

    def admit(self, limit: int) -> tuple[bool, dict[str, str]]:
        """Whether one more request fits under ``limit``, and the headers telling so."""
        now = self.clock()
        while self._seen and self._seen[0] <= now - self.SECONDS:
            self._seen.popleft()
        admitted = len(self._seen) < limit
        if admitted:
            self._seen.append(now)
        wait = self._seen[0] + self.SECONDS - now if len(self._seen) >= limit else 0.0
        reset = self._seen[0] + self.SECONDS - now if self._seen else 0.0
        headers = {
            "x-ratelimit-limit": str(limit),
            "x-ratelimit-remaining": str(max(0, limit - len(self._seen))),
            "x-ratelimit-reset": str(math.ceil(time.time() + reset)),
        }
        if not admitted:
            headers["retry-after"] = str(max(1, math.ceil(wait)))
        return admitted, headers


@dataclass
class Knobs:
    """What a simulator does to the requests it receives. Rates are shares from 0 to 1."""

    latency_ms: float = 0.0
    jitter_ms: float = 0.0  # plus a uniform random 0..jitter_ms
    error_rate: float = 0.0
    error_status: int = 500
    rate_limit_rate: float = 0.0  # 429 with Retry-After
    retry_after_seconds: int = 1
    timeout_rate: float = 0.0  # never answers while the client waits
    malformed_rate: float = 0.0  # 200 with a truncated JSON body
    fail_next: int = 0  # the next N requests fail with error_status, whatever the rates
    per_minute: int = 0  # a plan limit: at most N requests in any 60 s (0: none)
    shuffle_ties: bool = False  # rows tied on the sort key in a new order on every request
    hang: bool = False  # every request waits while this is on, then is answered as usual
    rng: random.Random = field(default_factory=random.Random, repr=False, compare=False)
    window: RollingWindow = field(default_factory=RollingWindow, repr=False, compare=False)

    def __setattr__(self, name: str, value: Any) -> None:
        super().__setattr__(name, value)
        if name == "per_minute" and "window" in self.__dict__:
            self.window.restart()

    def settings(self) -> dict[str, Any]:
        """The knob values (without the random generator), as the control route shows them."""
        return {name: getattr(self, name) for name in KNOB_TYPES}

    def update(self, values: Mapping[str, Any]) -> None:
        """Set several knobs, all or none: a bad name or value raises ``ValueError``."""
        checked = {name: _checked(name, value) for name, value in values.items()}
        for name, value in checked.items():
            setattr(self, name, value)

    def chance(self, rate: float) -> bool:
        return rate >= 1 or (rate > 0 and self.rng.random() < rate)

    def delay_seconds(self) -> float:
        jitter = self.rng.uniform(0, self.jitter_ms) if self.jitter_ms > 0 else 0.0
        return max(0.0, self.latency_ms + jitter) / 1000


KNOB_TYPES: dict[str, type] = {
    f.name: type(f.default) for f in fields(Knobs) if f.name not in ("rng", "window")
}


def _checked(name: str, value: Any) -> int | float | bool:
    kind = KNOB_TYPES.get(name)
    if kind is None:
        raise ValueError(f"unknown knob {name!r}; knobs: {', '.join(KNOB_TYPES)}")
    if kind is bool:
        if not isinstance(value, bool):
            raise ValueError(f"knob {name!r} takes true or false, not {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"knob {name!r} takes a number, not {value!r}")
    if kind is int and value != int(value):
        raise ValueError(f"knob {name!r} takes a whole number, not {value!r}")
    number: int | float = int(value) if kind is int else float(value)
    if name.endswith("_rate") and not 0 <= number <= 1:
        raise ValueError(f"knob {name!r} is a share from 0 to 1, not {value!r}")
    if name == "error_status" and not 400 <= number <= 599:
        raise ValueError(f"knob 'error_status' must be an HTTP error status, not {value!r}")
    if number < 0:
        raise ValueError(f"knob {name!r} cannot be negative")
    return number


def route_path(scope: Scope) -> str:
    """The path below the vendor's mount point: what the vendor's own server would see."""
    path: str = scope["path"]
    return path[len(scope.get("root_path", "")) :]


def is_control(scope: Scope) -> bool:
    return route_path(scope).startswith(CONTROL_PREFIX)


class FaultMiddleware:
    """Counts each request under its route template, then plays the knobs in a fixed order:
    latency, ``hang`` (held while on), timeout, plan limit, 429, injected error, truncated
    body. Control routes pass untouched."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        knobs: Knobs,
        counters: Counter[str],
        routes: Sequence[Route],
        error: ErrorBody,
    ) -> None:
        self.app = app
        self.knobs = knobs
        self.counters = counters
        self.routes = routes
        self.error = error

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or is_control(scope):
            await self.app(scope, receive, send)
            return
        template = self._template(scope)
        if template is not None:
            self.counters[template] += 1
        knobs = self.knobs
        delay = knobs.delay_seconds()
        if delay > 0:
            await asyncio.sleep(delay)
        await _held(knobs)
        if knobs.chance(knobs.timeout_rate):
            # Touch no other knob (fail_next): answer only a client that outlasted the hang.
            if not await _client_gone(receive):
                await self._injected(Request(scope), 504)(scope, receive, send)
            return
        if knobs.per_minute > 0:
            admitted, limit_headers = knobs.window.admit(knobs.per_minute)
            if not admitted:
                refused = self._injected(Request(scope), 429, "Rate limit exceeded")
                refused.headers.update(limit_headers)
                await refused(scope, receive, send)
                return
            send = _with_headers(send, limit_headers)
        fault = self._fault(Request(scope))
        if fault is not None:
            await fault(scope, receive, send)
            return
        if knobs.chance(knobs.malformed_rate):
            send = _truncating(send)
        await self.app(scope, receive, send)

    def _template(self, scope: Scope) -> str | None:
        for route in self.routes:
            match, _ = route.matches(scope)
            if match is Match.FULL:
                return f"{scope['method']} {route.path}"
        return None

    def _fault(self, request: Request) -> Response | None:
        knobs = self.knobs
        if knobs.chance(knobs.rate_limit_rate):
            response = self._injected(request, 429)
            response.headers["retry-after"] = str(knobs.retry_after_seconds)
            return response
        if knobs.fail_next > 0 or knobs.chance(knobs.error_rate):
            knobs.fail_next = max(0, knobs.fail_next - 1)
            return self._injected(request, knobs.error_status)
        return None

    def _injected(self, request: Request, status: int, message: str | None = None) -> Response:
        message = message or f"{HTTPStatus(status).phrase} (sandbox fault)"
        return self.error(request, status, message)


def _with_headers(send: Send, headers: Mapping[str, str]) -> Send:
    """A ``send`` that adds ``headers`` to the answer's start."""
    extra = [(k.encode(), v.encode()) for k, v in headers.items()]

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), *extra]}
        await send(message)

    return sending


async def _held(knobs: Knobs) -> None:
    """Wait while the ``hang`` knob is on (at most ``HANG_SECONDS``). Polled, not an event:
    a test turns the knob from its own thread."""
    deadline = time.monotonic() + HANG_SECONDS
    while knobs.hang and time.monotonic() < deadline:
        await asyncio.sleep(HOLD_POLL_SECONDS)


async def _client_gone(receive: Receive) -> bool:
    """Wait until the client hangs up (True) or ``HANG_SECONDS`` pass (False)."""
    try:
        async with asyncio.timeout(HANG_SECONDS):
            while (await receive())["type"] != "http.disconnect":
                pass
    except TimeoutError:
        return False
    return True


def _truncating(send: Send) -> Send:
    """A ``send`` that cuts a 200 body in half (with a matching Content-Length), so the
    client gets well-formed HTTP carrying broken JSON."""
    start: Message = {}
    body = bytearray()

    async def truncated(message: Message) -> None:
        if message["type"] == "http.response.start":
            start.update(message)
            return
        if message["type"] != "http.response.body":
            await send(message)
            return
        body.extend(message.get("body", b""))
        if message.get("more_body", False):
            return
        content = bytes(body)
        if start["status"] == 200:
            content = content[: max(1, len(content) // 2)]
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(content)).encode()))
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": content})

    return truncated


def control_routes(
    knobs: Knobs, counters: Counter[str], advance: Callable[[int], int]
) -> list[Route]:
    """``GET/PATCH knobs``, ``GET/DELETE counters``, ``POST advance?n=``: plain JSON, no
    auth, no faults, not counted, so a benchmark can turn a simulator it is also loading."""

    async def knob_values(request: Request) -> Response:
        if request.method == "PATCH":
            try:
                values = orjson.loads(await request.body())
                if not isinstance(values, dict):
                    raise ValueError("expected a JSON object of knob values")
                knobs.update(values)
            except ValueError as exc:  # orjson.JSONDecodeError is a ValueError
                return JSONResponse({"detail": str(exc)}, 400)
        return JSONResponse(knobs.settings())

    async def request_counts(request: Request) -> Response:
        if request.method == "DELETE":
            counters.clear()
        return JSONResponse(dict(counters))

    async def progress(request: Request) -> Response:
        raw = request.query_params.get("n", str(DEFAULT_STEPS))
        if not raw.isdigit():
            return JSONResponse({"detail": "n must be a whole number"}, 400)
        return JSONResponse({"advanced": advance(int(raw))})

    return [
        Route(CONTROL_PREFIX + "knobs", knob_values, methods=["GET", "PATCH"]),
        Route(CONTROL_PREFIX + "counters", request_counts, methods=["GET", "DELETE"]),
        Route(CONTROL_PREFIX + "advance", progress, methods=["POST"]),
    ]
