"""What each vendor's recent calls looked like: for ``Query.vendors`` and ``/readyz``."""

from __future__ import annotations

import statistics
import time
from collections import Counter, deque
from dataclasses import dataclass, field

from gateway.core.records import Vendor

LATENCY_WINDOW = 200
MAX_UNKNOWN_VALUES = 50
MAX_UNKNOWN_VALUE_LENGTH = 200
"""Unmapped statuses are vendor text, and through Agentex writes, a caller's: at most this
many distinct values are kept, each cut to this length; later ones are only counted."""
TYPICAL_WEIGHT = 0.2
"""The weight of the newest call in ``typical_seconds``: about the last ten calls count."""


@dataclass
class VendorHealth:
    vendor: Vendor
    enabled: bool = True
    last_success_at: float | None = None
    last_error_at: float | None = None
    last_error_code: str | None = None
    calls: int = 0
    failures: int = 0
    cache_hits: int = 0
    cache_misses: int = 0
    stale_served: int = 0
    stale_answers: int = 0
    """Answers whose part of this vendor was served stale from the cache because the vendor
    was not asked (its budget spent) or was slow (``answer_within``): one per part, however
    many pages (``gateway_vendor_stale_answers``)."""
    slow_parts: int = 0
    """Answers whose part of this vendor was not in within ``answer_within``: served stale
    from the cache, or missing (``UPSTREAM_SLOW``)."""
    unknown_statuses: Counter[str] = field(default_factory=Counter)
    """Some unmapped values and their counts (bounded: ``count_unknown_status``)."""
    unknown_status_total: int = 0
    skipped_records: int = 0
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=LATENCY_WINDOW))
    typical_seconds: float = 0.0
    """A moving average of successful calls' latency, kept in O(1) for the fan-out to start
    the slowest vendor first; 0 until a call succeeded."""

    def record_success(self, seconds: float) -> None:
        self.calls += 1
        self.last_success_at = time.time()
        self.latencies.append(seconds)
        typical = self.typical_seconds
        self.typical_seconds = (
            seconds if typical == 0 else typical + TYPICAL_WEIGHT * (seconds - typical)
        )

    def count_unknown_status(self, value: str | None) -> None:
        """A record whose status the gateway does not map (``None``: the vendor sent none)."""
        self.unknown_status_total += 1
        kept = "null" if value is None else value[:MAX_UNKNOWN_VALUE_LENGTH]
        if kept in self.unknown_statuses or len(self.unknown_statuses) < MAX_UNKNOWN_VALUES:
            self.unknown_statuses[kept] += 1

    def record_failure(self, code: str, seconds: float) -> None:
        self.calls += 1
        self.failures += 1
        self.last_error_at = time.time()
        self.last_error_code = code
        self.latencies.append(seconds)

    @property
    def p50_ms(self) -> float | None:
        return statistics.median(self.latencies) * 1000 if self.latencies else None

    @property
    def cache_hit_ratio(self) -> float | None:
        total = self.cache_hits + self.cache_misses
        return self.cache_hits / total if total else None

    @property
    def last_call_ok(self) -> bool | None:
        if self.last_success_at is None and self.last_error_at is None:
            return None
        return (self.last_error_at or 0) <= (self.last_success_at or 0)
