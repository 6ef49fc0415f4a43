"""The transport in front of each vendor's connection pool: it bounds how many calls are in
the pool, keeps cancellation out of the pool, and bounds the size of an answer.

Why each guard:

- **Cancellation never reaches httpcore.** A call cancelled while httpcore's pool is
  handing it a connection leaves that connection half-made in the pool for good
  (encode/httpcore#1093: neither idle, closed nor expired, so never reaped); after
  ``max_connections`` of them every later call fails with ``PoolTimeout`` until restart.
  A request's deadline cancels thousands of calls at once, so this is not rare. Here the
  exchange with the pool runs in a task of its own that a caller's cancellation does not
  touch (``asyncio.shield``): a cancelled call lets its exchange finish in the background,
  bounded by the call's own timeouts, and the caller is free at once.
- **No call ever waits inside the pool.** At most ``max_connections`` exchanges run at once
  (a semaphore, released when an exchange ends, not when its caller gives up), so the pool
  always has a connection for a call it is handed and its timeout never fires mid-handover.
  Callers beyond that wait on the semaphore, where cancellation is clean and cheap (the
  pool's own queue costs time quadratic in its length when thousands are cancelled).
- **The vendor budget hears every answer** (``on_response``): a 429, ``Retry-After`` and
  the ``X-RateLimit-*`` headers, for reads and writes alike, before the caller sees them.
- **An answer has a size bound.** ``Content-Length`` over ``max_bytes`` is refused before the
  body is read; otherwise the body is counted as it streams (after gzip/deflate decoding,
  so a small compressed bomb cannot expand past it) and refused once over. The refusal is
  ``UPSTREAM_BAD_RESPONSE``; memory never holds more than the bound.

The body is read here, whole, so the caller gets a response with its content in memory
(every connector reads whole JSON bodies anyway).
"""

from __future__ import annotations

import asyncio
import zlib

import httpx

from gateway.core.budget import ResponseObserver
from gateway.core.errors import UpstreamBadResponseError
from gateway.core.ontime import retrieve_outcome
from gateway.core.records import Vendor

ACCEPT_ENCODING = "gzip, deflate"
"""The encodings decoded here with a bound; nothing else is asked for."""
_WBITS = {"gzip": zlib.MAX_WBITS | 16, "deflate": zlib.MAX_WBITS}


class GuardedTransport(httpx.AsyncBaseTransport):
    def __init__(
        self,
        vendor: Vendor,
        inner: httpx.AsyncBaseTransport,
        *,
        max_connections: int,
        max_bytes: int,
        on_response: ResponseObserver | None = None,
    ) -> None:
        self.vendor = vendor
        self.inner = inner
        self.max_connections = max_connections
        self.max_bytes = max_bytes
        self.on_response = on_response
        """Told every response's status and headers: the vendor budget learns its limits."""
        self._permits = asyncio.Semaphore(max_connections)
        self._exchanges: set[asyncio.Task[httpx.Response]] = set()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await self._permits.acquire()
        exchange = asyncio.create_task(self._exchange(request))
        self._exchanges.add(exchange)
        exchange.add_done_callback(self._ended)
        return await asyncio.shield(exchange)

    def _ended(self, exchange: asyncio.Task[httpx.Response]) -> None:
        self._exchanges.discard(exchange)
        self._permits.release()
        retrieve_outcome(exchange)  # a caller that gave up does not want it logged

    async def _exchange(self, request: httpx.Request) -> httpx.Response:
        request.headers["accept-encoding"] = ACCEPT_ENCODING
        response = await self.inner.handle_async_request(request)
        try:
            declared = response.headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
                raise self._too_large()
            body = await self._read(response)
        finally:
            await response.aclose()
        headers = [
            (name, value)
            for name, value in response.headers.multi_items()
            if name not in ("content-encoding", "content-length", "transfer-encoding")
        ]
        if self.on_response is not None:
            await self.on_response(response.status_code, response.headers)
        return httpx.Response(
            response.status_code,
            headers=headers,
            content=body,
            extensions=response.extensions,
        )

    async def _read(self, response: httpx.Response) -> bytes:
        """The decoded body, refused as soon as it passes ``max_bytes``."""
        encoding = response.headers.get("content-encoding", "identity").strip().lower()
        decoder = None
        if encoding in _WBITS:
            decoder = zlib.decompressobj(_WBITS[encoding])
        elif encoding != "identity":
            raise UpstreamBadResponseError(
                self.vendor, f"{self.vendor.value} answered in an encoding it was not asked for"
            )
        parts: list[bytes] = []
        size = 0
        assert isinstance(response.stream, httpx.AsyncByteStream)
        try:
            async for chunk in response.stream:
                data = chunk
                while data:
                    if decoder is None:
                        out, data = data, b""
                    else:
                        # At most one byte over the bound, however far the input expands.
                        out = decoder.decompress(data, self.max_bytes - size + 1)
                        data = decoder.unconsumed_tail
                    size += len(out)
                    if size > self.max_bytes:
                        raise self._too_large()
                    parts.append(out)
            if decoder is not None:
                tail = decoder.flush()  # small: input is consumed only while output has room
                size += len(tail)
                if size > self.max_bytes:
                    raise self._too_large()
                parts.append(tail)
        except zlib.error:
            raise UpstreamBadResponseError(
                self.vendor, f"{self.vendor.value} sent a body that does not decompress"
            ) from None
        return b"".join(parts)

    def _too_large(self) -> UpstreamBadResponseError:
        return UpstreamBadResponseError(
            self.vendor,
            f"{self.vendor.value} sent an answer larger than {self.max_bytes} bytes; "
            "refused unread",
        )

    async def aclose(self) -> None:
        await self.inner.aclose()
