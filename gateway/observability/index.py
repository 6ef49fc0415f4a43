"""The task index's metrics, read at scrape time from what the index runtime already keeps.

Names agreed between the helpers (``gateway_index_*``); one series per synced vendor, the
vendor's configuration name as the only label. Every replica reports the shared sync state
(``synced_at``, lag, first-sync progress, rows), read from the index; the error counter is
this replica's own (the passes it ran).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from gateway.index.runtime import IndexRuntime


class IndexCollector(Collector):
    def __init__(self, runtime: IndexRuntime) -> None:
        self.runtime = runtime

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        synced = GaugeMetricFamily(
            "gateway_index_synced_at_seconds",
            "Unix time of the vendor's last completed sync pass into the task index.",
            labels=["vendor"],
        )
        lag = GaugeMetricFamily(
            "gateway_index_lag_seconds",
            "Seconds since the vendor's last completed sync pass (what the index may miss).",
            labels=["vendor"],
        )
        progress = GaugeMetricFamily(
            "gateway_index_first_sync_progress",
            "Share (0..1) of the vendor's first full sync done; 1 once the index serves it.",
            labels=["vendor"],
        )
        errors = CounterMetricFamily(
            "gateway_index_sync_errors",
            "Sync passes of the vendor that failed in this replica.",
            labels=["vendor"],
        )
        tasks = GaugeMetricFamily(
            "gateway_index_tasks", "Tasks of the vendor in the task index.", labels=["vendor"]
        )
        view, sync = self.runtime.view, self.runtime.sync
        if view is not None and sync is not None:
            now = time.time()
            for vendor, vendor_sync in sync.vendors.items():
                name = vendor.value
                state = view.states.get(vendor)
                if state is not None and state.synced_at is not None:
                    synced.add_metric([name], state.synced_at)
                    lag.add_metric([name], max(0.0, now - state.synced_at))
                if state is not None:
                    done = 1.0 if state.first_sync_done else state.first_sync_progress
                    progress.add_metric([name], done)
                errors.add_metric([name], vendor_sync.status.errors)
                tasks.add_metric([name], view.counts.get(vendor, 0))
        yield from (synced, lag, progress, errors, tasks)
