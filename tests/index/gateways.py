"""Gateways with a task index, served over loopback, for the sync and query tests.

The sync runs in the gateway's own thread and loop; a test drives it deterministically by
running passes there (``sync_pass``), with the background interval long enough never to
fire by itself after the first full sync. Expected answers come from the sandbox's records
(``records``) through the oracle's own model (``tests/oracle/model.py``), never from gateway
code.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine, Iterable
from dataclasses import replace
from typing import Any, TypeVar

from gateway.app import create_app
from gateway.config import Settings
from gateway.core.records import Vendor
from gateway.index.runtime import IndexRuntime
from gateway.index.sync import VendorSync
from gateway.sandbox import Sandbox
from gateway.serving import ServerThread
from tests.conftest import GatewayClient
from tests.oracle.model import Dataset

T = TypeVar("T")

IDLE = 3600.0
"""A background interval that never comes round during a test."""

VENDORS_QUERY = """{ vendors { vendor enabled index {
  syncedAt lagSeconds firstSyncDone firstSyncProgress lastError syncingHere } } }"""

ALL_TASKS = """query All($after: String, $order: TaskOrder) {
  tasks(first: 100, after: $after, orderBy: $order) {
    edges { node { id vendor nativeId agentId status createdAt updatedAt } }
    pageInfo { hasNextPage endCursor }
    missingVendors
  }
}"""


def index_settings(settings: Settings, url: str, **changes: Any) -> Settings:
    """``settings`` with the index at ``url``, no caches in the way, and an idle interval."""
    vendors = {v: replace(c, cache_ttl=0, first_page_ttl=0) for v, c in settings.vendors.items()}
    return replace(
        settings,
        vendors=vendors,
        response_cache=False,
        index_url=url,
        index_interval=changes.pop("index_interval", IDLE),
        **changes,
    )


class IndexedGateway(GatewayClient):
    def __init__(self, settings: Settings) -> None:
        self.app = create_app(settings)
        super().__init__(ServerThread(self.app).start())

    @property
    def runtime(self) -> IndexRuntime:
        runtime: IndexRuntime = self.app.state.index
        return runtime

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 120) -> T:
        """Run ``coroutine`` on the gateway's loop (where its index and sync live)."""
        loop = self.server.loop
        assert loop is not None
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result(timeout)

    def syncs(self, seconds: float = 60) -> dict[Vendor, VendorSync]:
        """Each vendor's sync, once the index is open (it opens in the background while the
        gateway already serves)."""
        deadline = time.monotonic() + seconds
        while self.runtime.sync is None:
            if time.monotonic() > deadline:
                raise AssertionError("the task index did not open")
            time.sleep(0.01)
        return self.runtime.sync.vendors

    def sync_pass(self, vendors: Iterable[Vendor] | None = None, *, ok: bool = True) -> None:
        """One sync pass of each vendor (all by default), run to its end; ``ok``: each
        must succeed (else its failure is only recorded, as the background loop does)."""
        for vendor, sync in self.syncs().items():
            if vendors is None or vendor in vendors:
                succeeded = self.run(sync.attempt())
                assert succeeded or not ok, sync.state.last_error

    def vendors(self) -> dict[str, dict[str, Any]]:
        return {v["vendor"]: v for v in self.data(VENDORS_QUERY)["vendors"] if v["enabled"]}

    def wait_first_sync(self, seconds: float = 90) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            shown = self.vendors()
            if all(v["index"] and v["index"]["firstSyncDone"] for v in shown.values()):
                # the view of another replica refreshes on its own interval: wait for it
                return
            time.sleep(0.05)
        raise AssertionError(f"the first sync did not finish: {self.vendors()}")

    def all_tasks(self, order: dict[str, str] | None = None) -> list[dict[str, Any]]:
        nodes: list[dict[str, Any]] = []
        after = None
        for _ in range(1000):
            connection = self.data(ALL_TASKS, {"after": after, "order": order})["tasks"]
            assert connection["missingVendors"] == []
            nodes += [edge["node"] for edge in connection["edges"]]
            if not connection["pageInfo"]["hasNextPage"]:
                return nodes
            after = connection["pageInfo"]["endCursor"]
        raise AssertionError("paging did not end")


def records(sandbox: Sandbox) -> Dataset:
    """Every vendor's records as the sandbox serves them now (vendor JSON)."""
    data: Dataset = {}
    for vendor in Vendor:
        store = sandbox.store(vendor)
        rows: list[dict[str, Any]] = []
        if isinstance(store, dict):
            for value in store.values():
                rows.extend(value if isinstance(value, list) else [value])
        else:
            rows.extend(store)
        data[vendor] = [dict(row) for row in rows]
    return data


def upstream_calls(sandbox: Sandbox) -> int:
    return sum(sum(sandbox.counters(vendor).values()) for vendor in Vendor)
