"""The in-process cache: bounded in entries and in bytes, with counters that are never evicted.

Values are kept as the objects they are (a page hit hands out the same immutable records,
with no decoding); each entry's size is what the caller measured, the length of its encoded
form (``gateway.core.codec``). That is the size the value would have in Redis; Python
objects take some more, so the bound is a budget for the data, not an exact RSS.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

DEFAULT_MAX_ENTRIES = 20_000
"""About 20,000 vendor pages: at 50-200 tasks a page, enough for a few hundred thousand tasks."""
DEFAULT_MAX_BYTES = 256 * 1024 * 1024


@dataclass(slots=True)
class _Entry:
    value: object
    size: int
    expires: float | None


class BoundedMemoryCache:
    """Evicts the least recently written entries beyond ``max_entries`` or ``max_bytes``.

    Synchronous on purpose: nothing here waits, and the response cache asks for the
    generation counters on every hit."""

    def __init__(
        self,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        max_bytes: int = DEFAULT_MAX_BYTES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.clock = clock
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._counters: dict[str, int] = {}
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def bytes(self) -> int:
        """The sum of the sizes of the entries held."""
        return self._bytes

    def get(self, key: str) -> object | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires is not None and entry.expires <= self.clock():
            self.delete(key)
            return None
        return entry.value

    def exists(self, key: str) -> bool:
        return self.get(key) is not None

    def set(self, key: str, value: object, *, size: int, ttl: float | None) -> bool:
        """Store ``value`` (re-inserted last: dict order is write order); False when it is
        larger than the whole bound and so not kept."""
        self.delete(key)
        if size > self.max_bytes:
            return False
        expires = None if ttl is None else self.clock() + ttl
        self._entries[key] = _Entry(value, size, expires)
        self._bytes += size
        while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
            _, oldest = self._entries.popitem(last=False)
            self._bytes -= oldest.size
        return True

    def add(self, key: str, value: object, *, size: int, ttl: float | None) -> bool:
        """Store ``value`` only if ``key`` holds nothing live: a lock's first step."""
        if self.exists(key):
            return False
        return self.set(key, value, size=size, ttl=ttl)

    def delete(self, key: str) -> bool:
        entry = self._entries.pop(key, None)
        if entry is None:
            return False
        self._bytes -= entry.size
        return True

    def increment(self, key: str, delta: int = 1) -> int:
        """A counter (cache generations): kept apart from the entries, so no eviction can
        ever reset one and bring back what it made unreachable."""
        value = self._counters.get(key, 0) + delta
        self._counters[key] = value
        return value

    def counters(self, keys: Iterable[str]) -> list[int]:
        counters = self._counters
        return [counters.get(key, 0) for key in keys]

    def clear(self) -> None:
        self._entries.clear()
        self._counters.clear()
        self._bytes = 0
