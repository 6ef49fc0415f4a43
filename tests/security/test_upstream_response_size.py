"""An upstream answer larger than ``max_response_bytes`` is refused as
``UPSTREAM_BAD_RESPONSE`` without being read into memory (issue 14, item 8): by its
``Content-Length`` before the body is read; while it streams when there is none (chunked,
endless); after decoding when it is compressed (a gzip bomb). The other vendors' tasks are
still served, and the vendor is named.
"""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from gateway.config import Settings
from gateway.core.records import Vendor
from gateway.serving import ServerThread
from tests.conftest import GatewayFactory, vendor_settings

BOUND = 64 * 1024
EMPTY_PAGE = b'{"tasks": [], "pagination": {"totalRecords": 0, "nextPage": null}}'
"""A valid, empty Subnoto page: padded with spaces, still one; only its size is wrong."""
QUERY = "{ tasks(first: 5) { nodes { id vendor } missingVendors } }"


class Hostile:
    """A "vendor" whose every answer is too large, in the way ``mode`` says; it counts the
    bytes it managed to send, so a test can tell the gateway stopped reading."""

    def __init__(self) -> None:
        self.mode = "declared"
        self.sent = 0

    async def answer(self, request: Request) -> Response:
        if self.mode == "declared":  # honest Content-Length, over the bound
            return Response(EMPTY_PAGE + b" " * (4 * BOUND), media_type="application/json")
        if self.mode == "gzip-bomb":  # small on the wire, 1,000 x the bound decoded
            body = gzip.compress(EMPTY_PAGE + b" " * (1000 * BOUND))
            assert len(body) < BOUND
            return Response(
                body, media_type="application/json", headers={"content-encoding": "gzip"}
            )

        async def endless() -> AsyncIterator[bytes]:  # chunked, ends only when the client goes
            chunk = b" " * 16384
            yield EMPTY_PAGE
            while not await request.is_disconnected():
                self.sent += len(chunk)
                yield chunk

        return StreamingResponse(endless(), media_type="application/json")


@pytest.fixture(scope="module")
def hostile() -> Iterator[tuple[Hostile, str]]:
    vendor = Hostile()
    app = Starlette(routes=[Route("/{path:path}", vendor.answer, methods=["GET", "POST", "PUT"])])
    with ServerThread(app) as server:
        yield vendor, server.url


@pytest.fixture(scope="module")
def gateway(make_gateway: GatewayFactory, settings: Settings, hostile: tuple[Hostile, str]):
    """Subnoto answered by the hostile server; every vendor bounded at ``BOUND`` bytes."""
    vendors = {
        v: replace(c, max_response_bytes=BOUND, timeout=5.0) for v, c in settings.vendors.items()
    }
    vendors[Vendor.SUBNOTO] = replace(vendors[Vendor.SUBNOTO], base_url=hostile[1])
    return make_gateway(vendors=vendors, response_cache=False)


def code(body: dict[str, Any], vendor: str) -> str | None:
    for error in body.get("errors", []):
        if error["extensions"].get("vendor") == vendor:
            return str(error["extensions"]["code"])
    return None


@pytest.mark.parametrize("mode", ["declared", "gzip-bomb", "endless"])
def test_an_oversized_answer_is_refused_and_the_others_are_served(
    gateway, hostile: tuple[Hostile, str], mode: str
) -> None:
    vendor, _ = hostile
    vendor.mode, vendor.sent = mode, 0
    body = gateway.http.post(
        "/graphql", json={"query": QUERY}, headers={"cache-control": "no-cache"}
    ).json()
    assert code(body, "SUBNOTO") == "UPSTREAM_BAD_RESPONSE"
    assert body["data"]["tasks"]["missingVendors"] == ["SUBNOTO"]
    assert body["data"]["tasks"]["nodes"], "the other vendors' tasks are served"
    assert {n["vendor"] for n in body["data"]["tasks"]["nodes"]} <= {"AGENTEX", "XPANDER", "ORQ"}
    if mode == "endless":
        # The gateway stopped reading near the bound (plus what sockets buffer), it did not
        # read on: an endless body would never have answered at all otherwise.
        assert vendor.sent < 200 * BOUND


def test_answers_within_the_bound_are_served(
    make_gateway: GatewayFactory, settings: Settings
) -> None:
    roomy = vendor_settings(settings, Vendor.ORQ, max_response_bytes=16 * 1024 * 1024)
    body = make_gateway(vendors=roomy.vendors).query(QUERY)
    assert "errors" not in body and not body["data"]["tasks"]["missingVendors"]


def test_a_real_vendor_page_over_a_tiny_bound_is_refused(
    make_gateway: GatewayFactory, settings: Settings
) -> None:
    tiny = vendor_settings(settings, Vendor.AGENTEX, max_response_bytes=100)
    body = make_gateway(vendors=tiny.vendors).query(QUERY)
    assert code(body, "AGENTEX") == "UPSTREAM_BAD_RESPONSE"
    assert body["data"]["tasks"]["missingVendors"] == ["AGENTEX"]
