"""Per-request state of the machinery: which vendor parts came back, from where, and what failed."""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass, field

from gateway.core.contract import Credentials
from gateway.core.errors import UpstreamError
from gateway.core.records import Vendor


class Priority(enum.IntEnum):
    """Who a vendor call is for. Interactive requests (GraphQL, exports) come first; the
    subscription poller, prefetches and the index sync use only what the vendor budget has
    left after the interactive reserve (``gateway.core.budget``)."""

    BACKGROUND = 0
    INTERACTIVE = 1


@dataclass
class VendorPart:
    """How one vendor's share of an answer was obtained."""

    vendor: Vendor
    fetched_at: float | None = None
    from_cache: bool = True
    stale: bool = False
    calls: int = 0
    error: UpstreamError | None = None
    pages: dict[str, tuple[int, int]] = field(default_factory=dict)
    """Per page read (source and token): records readable and records skipped as unreadable;
    a page read twice counts once (``merge.note_page``)."""
    notice: UpstreamError | None = None
    """A problem that left the part usable (some records unreadable): reported, not missing."""
    slow: bool = False
    """Not answered within ``answer_within``: served stale from the cache, or missing."""

    @property
    def skipped_records(self) -> int:
        return sum(skipped for _, skipped in self.pages.values())

    @property
    def readable_records(self) -> int:
        return sum(readable for readable, _ in self.pages.values())


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
    priority: Priority = Priority.INTERACTIVE
    live: bool = False
    """Read the vendors now even where the task index serves them (``fresh: true``)."""
    """Whose call this is, for the vendor budgets: background work yields to requests."""
    answer_by: float | None = None
    """``time.monotonic()`` when the answer goes out with what is in (``graphql.answer_within``):
    a vendor still out then is served from the cache or named ``UPSTREAM_SLOW``. GraphQL
    requests only: exports and writes are not cut."""
    page_reads: int = 0
    """Pages asked of ``Upstream`` so far (cached or not): what ``max_upstream_calls`` bounds."""

    def remaining(self) -> float | None:
        return None if self.deadline is None else self.deadline - time.monotonic()

    def answer_remaining(self) -> float | None:
        """Seconds until ``answer_by``; None without one, or when the hard deadline comes
        first (then that one alone applies)."""
        if self.answer_by is None:
            return None
        if self.deadline is not None and self.deadline <= self.answer_by:
            return None
        return self.answer_by - time.monotonic()

    def take_page_read(self, limit: int | None) -> bool:
        """Count one more page read, unless the request has had ``limit`` already."""
        if limit is not None and self.page_reads >= limit:
            return False
        self.page_reads += 1
        return True

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
