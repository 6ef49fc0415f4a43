"""Per-request state of the machinery: which vendor parts came back, from where, and what failed."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from gateway.core.errors import UpstreamError
from gateway.core.records import Vendor
from gateway.vendors.base import Credentials


@dataclass
class VendorPart:
    """How one vendor's share of an answer was obtained."""

    vendor: Vendor
    fetched_at: float | None = None
    from_cache: bool = True
    stale: bool = False
    calls: int = 0
    error: UpstreamError | None = None


@dataclass
class RequestState:
    """Created once per GraphQL request (or export) and threaded through the machinery."""

    credentials: dict[Vendor, Credentials] = field(default_factory=dict)
    bypass_cache: bool = False
    cache_store: bool = True
    """False for bulk reads (exports) that would only push everything else out of the cache."""
    generations: dict[Vendor, int] = field(default_factory=dict)
    parts: dict[Vendor, VendorPart] = field(default_factory=dict)
    deadline: float | None = None
    """``time.monotonic()`` by which every upstream call of this request must be done."""

    def remaining(self) -> float | None:
        return None if self.deadline is None else self.deadline - time.monotonic()

    def part(self, vendor: Vendor) -> VendorPart:
        part = self.parts.get(vendor)
        if part is None:
            part = self.parts[vendor] = VendorPart(vendor)
        return part

    def fail(self, error: UpstreamError) -> None:
        part = self.part(error.vendor)
        if part.error is None:
            part.error = error

    @property
    def errors(self) -> list[UpstreamError]:
        return [p.error for p in self.parts.values() if p.error is not None]
