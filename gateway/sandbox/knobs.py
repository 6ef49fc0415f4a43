"""Fault and latency knobs, request counters, and the base every simulator is built on.

Each simulator lists its endpoints as ``(method, path template, handler)``; ``Simulator``
wraps every handler the same way: count the request (per route template, before any
fault), apply the knobs (latency, timeout, 429, errors, malformed JSON), check the vendor's
credentials, run the handler. Control routes under ``/_sandbox/`` skip all of that.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import random
from collections import Counter
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any, ClassVar

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.core.records import Vendor

Handler = Callable[[Request], Awaitable[Response]]
TIMEOUT_SECONDS = 120.0


@dataclass
class Knobs:
    """What a simulator does to the requests it receives. Rates are 0..1."""

    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    error_rate: float = 0.0
    error_status: int = 500
    rate_limit_rate: float = 0.0
    retry_after_seconds: int = 1
    timeout_rate: float = 0.0
    malformed_rate: float = 0.0
    fail_next: int = 0

    def update(self, values: dict[str, Any]) -> None:
        names = {f.name: f.type for f in dataclasses.fields(self)}
        for name, value in values.items():
            if name not in names:
                raise ValueError(f"unknown knob {name!r}")
            current = getattr(self, name)
            setattr(self, name, type(current)(value))


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    try:
        content = orjson.dumps(body)
    except TypeError:  # an integer past 64 bits, echoed from a request: Python's json copes
        content = json.dumps(body).encode()
    return Response(content, status_code=status, media_type="application/json", headers=headers)


class Simulator:
    """One vendor's API: routes plus the shared knobs, counters and auth checks."""

    vendor: ClassVar[Vendor]

    def __init__(self, knobs: Knobs, secret: str | None, seed: int = 0) -> None:
        self.knobs = knobs
        self.secret = secret
        self.counters: Counter[str] = Counter()
        self.random = random.Random(seed)
        self._views: dict[Hashable, Any] = {}

    def view(self, key: Hashable, build: Callable[[], Any]) -> Any:
        """A sorted/filtered listing, kept until the data changes: a vendor's database has
        indexes, and the benchmarks should measure the gateway, not a list sort."""
        if key not in self._views:
            self._views[key] = build()
        return self._views[key]

    def changed(self) -> None:
        self._views.clear()

    def advance_and_forget(self, count: int) -> int:
        moved = self.advance(count)
        if moved:
            self.changed()
        return moved

    # -- what each vendor defines ---------------------------------------------------------
    def endpoints(self) -> list[tuple[str, str, Handler]]:
        raise NotImplementedError

    def error(self, request: Request, status: int, message: str, code: str = "") -> Response:
        """An error in the vendor's own body shape."""
        raise NotImplementedError

    def authorized(self, request: Request) -> bool:
        raise NotImplementedError

    def unauthorized(self, request: Request) -> Response:
        return self.error(request, 401, "Missing or invalid credentials", "AUTHENTICATION_ERROR")

    def advance(self, count: int) -> int:
        """Move up to ``count`` live tasks one step on; returns how many moved."""
        raise NotImplementedError

    # -- shared machinery -----------------------------------------------------------------
    def bearer_ok(self, request: Request) -> bool:
        return request.headers.get("authorization") == f"Bearer {self.secret}"

    def _chance(self, rate: float) -> bool:
        return rate > 0 and (rate >= 1 or self.random.random() < rate)

    def wrap(self, template: str, handler: Handler) -> Handler:
        async def endpoint(request: Request) -> Response:
            self.counters[template] += 1
            knobs = self.knobs
            delay = knobs.latency_ms + (
                self.random.uniform(0, knobs.jitter_ms) if knobs.jitter_ms else 0
            )
            if delay:
                await asyncio.sleep(delay / 1000)
            if self._chance(knobs.timeout_rate):
                await self._hang(request)
                # Nobody is listening any more; touch no other knob (fail_next) on the way.
                return self.error(request, 504, "Gateway Timeout")
            if self._chance(knobs.rate_limit_rate):
                response = self.error(request, 429, "Too many requests", "RATE_LIMITED")
                response.headers["retry-after"] = str(knobs.retry_after_seconds)
                return response
            if knobs.fail_next > 0 or self._chance(knobs.error_rate):
                knobs.fail_next = max(0, knobs.fail_next - 1)
                return self.error(
                    request, knobs.error_status, "Injected failure", "INTERNAL_SERVER_ERROR"
                )
            if not self.authorized(request):
                return self.unauthorized(request)
            response = await handler(request)
            if response.status_code == 200 and self._chance(knobs.malformed_rate):
                body = bytes(response.body)
                return Response(body[: max(1, len(body) // 2)], media_type="application/json")
            return response

        return endpoint

    async def _hang(self, request: Request) -> None:
        """Never answer (until the client gives up, or a long time has passed)."""
        waited = 0.0
        while waited < TIMEOUT_SECONDS and not await request.is_disconnected():
            await asyncio.sleep(0.05)
            waited += 0.05

    def app(self) -> Starlette:
        routes = [
            Route(template, self.wrap(f"{method} {template}", handler), methods=[method])
            for method, template, handler in self.endpoints()
        ]
        routes += [
            Route("/_sandbox/knobs", self._knobs, methods=["GET", "PATCH", "POST"]),
            Route("/_sandbox/counters", self._counters, methods=["GET", "DELETE"]),
            Route("/_sandbox/advance", self._advance, methods=["POST"]),
        ]
        return Starlette(
            routes=routes,
            exception_handlers={
                404: self._no_route,
                405: self._no_route,
            },
        )

    async def _no_route(self, request: Request, exc: Exception) -> Response:
        """An unknown path or method, answered in the vendor's own error shape."""
        status = getattr(exc, "status_code", 404)
        return self.error(request, status, "Not Found" if status == 404 else "Method Not Allowed")

    async def _knobs(self, request: Request) -> Response:
        if request.method != "GET":
            try:
                self.knobs.update(orjson.loads(await request.body()))
            except (ValueError, TypeError, orjson.JSONDecodeError) as exc:
                return json_response({"detail": str(exc)}, 400)
        return json_response(dataclasses.asdict(self.knobs))

    async def _counters(self, request: Request) -> Response:
        if request.method == "DELETE":
            self.counters.clear()
        return json_response(dict(self.counters))

    async def _advance(self, request: Request) -> Response:
        count = int(request.query_params.get("n", "10"))
        return json_response({"advanced": self.advance_and_forget(count)})
