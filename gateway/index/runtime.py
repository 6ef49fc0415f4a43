"""The index's parts for an app's lifetime: opened at start-up, closed at shutdown.

``create_app`` makes one when ``[index] url`` is set. At start it opens (and migrates) the
store, gives the service its ``IndexView`` (queries then read every vendor whose first full
sync is done from it), points the subscription poller at the sync's changes, and starts one
sync task per vendor (each runs only where this replica holds the vendor's lock).

The store is opened in the background: the gateway serves (live) from the first moment, and
a database that cannot be reached yet is tried again every ``RETRY_SECONDS``, each failure
one log line, rather than stopping the gateway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from gateway.core.poller import TaskPoller
from gateway.core.service import TaskService
from gateway.index.lock import locks_for
from gateway.index.store import TaskIndex
from gateway.index.sync import IndexSync, SyncSettings
from gateway.index.view import DEFAULT_REFRESH_SECONDS, IndexView

logger = logging.getLogger("gateway.index")

RETRY_SECONDS = 10.0


class IndexRuntime:
    def __init__(
        self,
        url: str,
        service: TaskService,
        poller: TaskPoller,
        settings: SyncSettings | None = None,
        *,
        refresh: float = DEFAULT_REFRESH_SECONDS,
    ) -> None:
        self.url = url
        self.service = service
        self.poller = poller
        self.settings = settings or SyncSettings()
        self.refresh = refresh
        self.index: TaskIndex | None = None
        self.view: IndexView | None = None
        self.sync: IndexSync | None = None
        self._opening: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Open the index in the background (``open``), retrying until it can."""
        self._opening = asyncio.create_task(self._open_until_done(), name="index-open")

    async def _open_until_done(self) -> None:
        while True:
            try:
                await self.open()
                return
            except Exception as exc:
                # The URL may hold a password: the error's type only, never its text.
                logger.error(
                    "index: cannot open the task index (%s); serving live, retrying in %.0f s",
                    type(exc).__name__,
                    RETRY_SECONDS,
                )
                await asyncio.sleep(RETRY_SECONDS)

    async def open(self) -> None:
        index = await TaskIndex.open(self.url)
        upstream = self.service.upstream
        view = IndexView(index, tuple(upstream.vendors), refresh=self.refresh)
        try:
            await view.load()
        except BaseException:
            await index.close()
            raise
        self.index, self.view = index, view
        view.on_change = self.poller.publish
        self.poller.fed = view.local
        self.service.index = view
        self.sync = IndexSync(upstream, index, view, locks_for(index.engine), self.settings)
        self.sync.start()
        view.start()
        logger.info("index: open (%s), syncing %d vendors", index.dialect, len(upstream.vendors))

    async def close(self) -> None:
        opening, self._opening = self._opening, None
        if opening is not None:
            opening.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await opening
        self.service.index = None
        self.poller.fed = None
        if self.sync is not None:
            await self.sync.close()
        if self.view is not None:
            await self.view.close()
        if self.index is not None:
            await self.index.close()
