"""An in-process aiocache backend with a bound: aiocache's own memory cache grows without one."""

from __future__ import annotations

from typing import Any

from aiocache import SimpleMemoryCache

DEFAULT_MAX_ENTRIES = 20_000
"""About 20,000 vendor pages: at 50-200 tasks a page, enough for a few hundred thousand tasks."""


class BoundedMemoryCache(SimpleMemoryCache):  # type: ignore[misc]
    """Evicts the least recently written entries beyond ``max_entries``."""

    def __init__(self, max_entries: int = DEFAULT_MAX_ENTRIES, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.max_entries = max_entries

    async def _set(
        self, key: str, value: Any, ttl: Any = None, _cas_token: Any = None, _conn: Any = None
    ) -> Any:
        self._cache.pop(key, None)  # re-insert at the end: dict order is write order
        result = await super()._set(key, value, ttl=ttl, _cas_token=_cas_token, _conn=_conn)
        while len(self._cache) > self.max_entries:
            oldest = next(iter(self._cache))
            self._cache.pop(oldest, None)
            handle = self._handlers.pop(oldest, None)
            if handle is not None:
                handle.cancel()
        return result
