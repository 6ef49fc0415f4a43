"""``python -m bench index``: issue 17, the task index.

Sandboxes of 100 and of 50,000 tasks per vendor (``--quick``: 5,000), each with a gateway
whose index is a SQLite file (``[index] url``; the background interval set far beyond the
run, so after the first full sync nothing calls a vendor but what is measured). Printed:

- the first full sync of each: seconds, vendor calls made (the sandbox's counters) against
  the minimum possible, ``sum(ceil(n / page_size))`` over the listings read (the tasks per
  listing from ``taskStats``, the page sizes the connectors declare), and the index's size
  on disk;
- ``tasks(first: 20)`` in the default order (``UPDATED_AT DESC``, which xpander and orq
  cannot stream) from the warm index: p50 at 100 vs 50,000 tasks per vendor (target < 1.2x)
  and the vendor calls made while measuring (target 0); and that p50 against a page served
  from today's page cache at 100 tasks (a gateway without an index, warm; target within 2x);
- an NDJSON export of every task from the index against the live export of the same tasks
  in the same run (a gateway without an index): rows/s, and peak memory growth.
"""

from __future__ import annotations

import contextlib
import math
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from bench.harness import (
    Run,
    counters,
    gateway_process,
    reset_counters,
    rss_kib,
    sandbox_process,
    sequential,
)
from gateway.core.records import Vendor
from gateway.vendors.registry import connector_for

SMALL, BIG, QUICK_BIG = 100, 50_000, 5_000
PAGE = {"query": "query Page { tasks(first: 20) { nodes { id vendor status updatedAt } } }"}
VENDORS = "{ vendors { vendor enabled index { firstSyncDone firstSyncProgress } } }"
PER_LISTING = """{ taskStats(groupBy: [VENDOR, AGENT]) { groups { vendor agentId count } } }"""
IDLE = {"interval": 86_400, "rescan_interval": 2_592_000}
NO_RESPONSE_CACHE = {"response_cache": False}


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


@contextlib.contextmanager
def indexed_gateway(sandbox: str, directory: Path) -> Iterator[tuple[str, int, Path]]:
    database = directory / "tasks.db"
    index = {"url": f"sqlite:///{database}", **IDLE}
    with gateway_process(sandbox, index=index, graphql=NO_RESPONSE_CACHE) as (url, pid):
        yield url, pid, database


def wait_first_sync(gateway: str, seconds: float = 3600) -> float:
    """Seconds until every vendor's first full sync is done."""
    started = time.perf_counter()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        body = httpx.post(f"{gateway}/graphql", json={"query": VENDORS}, timeout=30).json()
        shown = [v for v in body["data"]["vendors"] if v["enabled"]]
        if shown and all(v["index"] and v["index"]["firstSyncDone"] for v in shown):
            return time.perf_counter() - started
        time.sleep(0.2)
    raise RuntimeError("the first sync did not finish")


def minimum_calls(gateway: str) -> int:
    """``sum(ceil(n / page_size))`` over the listings a full read reads: one per agent for
    the vendors that list per agent, one for the others (their tasks counted by the index)."""
    body = httpx.post(f"{gateway}/graphql", json={"query": PER_LISTING}, timeout=60).json()
    per_listing: dict[tuple[str, str | None], int] = {}
    for group in body["data"]["taskStats"]["groups"]:
        vendor = Vendor[group["vendor"]]
        agent = group["agentId"] if connector_for(vendor).PER_AGENT else None
        key = (vendor.name, agent)
        per_listing[key] = per_listing.get(key, 0) + group["count"]
    total = 0
    for (name, _), count in per_listing.items():
        connector = connector_for(Vendor[name])
        size = int(getattr(connector, "bulk_page_size", connector.page_size))
        total += math.ceil(count / size)
    return total


def disk_mib(database: Path) -> float:
    files = [database, Path(f"{database}-wal"), Path(f"{database}-shm")]
    return sum(f.stat().st_size for f in files if f.exists()) / 2**20


def export_rate(gateway: str, pid: int) -> tuple[int, float, float]:
    base = rss_kib(pid, "VmHWM")
    started = time.perf_counter()
    rows = 0
    with httpx.stream("GET", f"{gateway}/export/tasks.ndjson", timeout=900) as response:
        for line in response.iter_lines():
            rows += bool(line)
    seconds = time.perf_counter() - started
    return rows, rows / seconds, (rss_kib(pid, "VmHWM") - base) / 1024


def run(quick: bool) -> list[str]:
    big = QUICK_BIG if quick else BIG
    samples = 40 if quick else 100
    lines: list[str] = []
    with contextlib.ExitStack() as stack:
        sandboxes = {size: stack.enter_context(sandbox_process(size)) for size in (SMALL, big)}
        gateways: dict[int, tuple[str, int, Path]] = {}
        for size in (SMALL, big):
            directory = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            reset_counters(sandboxes[size])
            gateways[size] = stack.enter_context(indexed_gateway(sandboxes[size], directory))
            seconds = wait_first_sync(gateways[size][0])
            calls = sum(counters(sandboxes[size]).values())
            least = minimum_calls(gateways[size][0])
            lines.append(
                f"index first sync, {size} tasks/vendor: {seconds:.1f} s, vendor calls {calls} "
                f"vs minimum possible {least} (x{calls / max(1, least):.2f}), index on disk "
                f"{disk_mib(gateways[size][2]):.1f} MiB"
            )
        url = {size: gateways[size][0] + "/graphql" for size in (SMALL, big)}
        for size in (SMALL, big):
            sequential(url[size], PAGE, 10)  # warm connections and the database's pages
            reset_counters(sandboxes[size])
        runs = {size: Run() for size in (SMALL, big)}
        for _ in range(samples):  # interleaved: drift hits both sizes alike
            for size in (SMALL, big):
                runs[size].latencies += sequential(url[size], PAGE, 1).latencies
        calls = sum(sum(counters(sandboxes[size]).values()) for size in (SMALL, big))
        small_ms, big_ms = runs[SMALL].p50, runs[big].p50
        ratio = big_ms / small_ms
        lines.append(
            f"index page, tasks(first: 20) default order from a warm index: p50 {small_ms:.1f} "
            f"ms at {SMALL} vs {big_ms:.1f} ms at {big} tasks/vendor (ratio {ratio:.2f}, "
            f"target < 1.2: {verdict(ratio < 1.2)}); vendor calls {calls} (target 0: "
            f"{verdict(calls == 0)})"
        )
        with gateway_process(sandboxes[SMALL], graphql=NO_RESPONSE_CACHE) as (live, _):
            cached = Run()
            index_again = Run()
            sequential(f"{live}/graphql", PAGE, 10)  # fills the page cache
            for _ in range(samples):
                cached.latencies += sequential(f"{live}/graphql", PAGE, 1).latencies
                index_again.latencies += sequential(url[SMALL], PAGE, 1).latencies
        versus = index_again.p50 / cached.p50
        lines.append(
            f"index page vs page cache at {SMALL} tasks/vendor: p50 {index_again.p50:.1f} ms "
            f"from the index vs {cached.p50:.1f} ms from the page cache (x{versus:.2f}, "
            f"target within 2x: {verdict(versus <= 2.0)})"
        )
        rows, rate, growth = export_rate(gateways[big][0], gateways[big][1])
    with sandbox_process(big) as sandbox, gateway_process(sandbox) as (live, pid):
        live_rows, live_rate, live_growth = export_rate(live, pid)
    lines.append(
        f"index export of {rows} tasks: {rate:.0f} rows/s from the index vs {live_rate:.0f} "
        f"rows/s live ({live_rows} rows; x{rate / live_rate:.2f}); peak memory growth "
        f"{growth:.1f} MiB from the index vs {live_growth:.1f} MiB live"
    )
    return lines
