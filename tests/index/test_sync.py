"""The background sync against the sandbox over HTTP, on SQLite and PostgreSQL (issue 17).

Every expected answer is the oracle's (``tests/oracle/model.py``) over the records the
sandbox serves at that moment: after the first full sync, after tasks progress (the
sandbox's progress step), after new tasks appear and after tasks are deleted, the index
(read through ``tasks``) holds exactly those records, once each, shown as they are.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gateway.app import build_gateway
from gateway.cli import demo_settings
from gateway.core.contract import ListQuery
from gateway.core.records import Vendor
from gateway.index.store import TaskIndex
from gateway.index.sync import SyncSettings, VendorSync
from gateway.index.view import IndexView
from gateway.sandbox import Sandbox, SandboxOptions
from gateway.serving import ServerThread
from tests.conftest import vendor_settings
from tests.index.gateways import IndexedGateway, index_settings, records, upstream_calls
from tests.oracle.model import Query, expected_task, iso_micro, iso_milli
from tests.oracle.test_tasks_oracle import check

EVERYTHING = Query("UPDATED_AT", "DESC", None, None, None, None, None, 100)


@pytest.fixture(params=("sqlite", "postgresql"))
def index_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'tasks.db'}"
    url: str = request.getfixturevalue("postgres_server").create_database()
    return url


@pytest.fixture
def sandbox() -> Iterator[tuple[Sandbox, str]]:
    box = Sandbox(SandboxOptions(size=80, seed=17, shuffle_ties=True))
    with ServerThread(box.app) as server:
        yield box, server.url


def check_index(gateway: IndexedGateway, sandbox: Sandbox) -> None:
    """What ``tasks`` shows from the index is exactly the sandbox's records now."""
    check(records(sandbox), EVERYTHING, gateway.all_tasks())


def test_first_sync_copies_every_task_and_pages_come_from_the_index(
    sandbox: tuple[Sandbox, str], index_url: str
) -> None:
    box, url = sandbox
    gateway = IndexedGateway(index_settings(demo_settings(url, box), index_url))
    try:
        gateway.wait_first_sync()
        box.reset_counters()
        check_index(gateway, box)
        for field in ("UPDATED_AT", "CREATED_AT"):
            for direction in ("ASC", "DESC"):
                gateway.all_tasks({"field": field, "direction": direction})
        assert upstream_calls(box) == 0, "a page from a warm index called a vendor"
        shown = gateway.vendors()
        assert set(shown) == {v.name for v in Vendor}
        for info in shown.values():
            index = info["index"]
            assert index["firstSyncProgress"] == 1.0 and index["lastError"] is None
            assert index["syncingHere"] and index["syncedAt"] is not None
    finally:
        gateway.close()


def _new_tasks(box: Sandbox, now: datetime) -> None:
    """A new task at the head of each vendor (a copy of one, new id, created now)."""
    stamp = now.replace(microsecond=now.microsecond // 1000 * 1000)
    agentex = box.store(Vendor.AGENTEX)
    row = copy.deepcopy(next(iter(agentex.values())))
    row["id"], row["task_id"] = "trk-new-1", "task-new-1"
    row["created_at"] = row["updated_at"] = iso_micro(now)
    agentex[row["id"]] = row
    agentex.changed()
    for vendor, id_key, created, updated, text in (
        (Vendor.XPANDER, "id", "created_at", "updated_at", iso_micro),
        (Vendor.ORQ, "_id", "created", "updated", iso_milli),
    ):
        store = box.store(vendor)
        agent = next(iter(store))
        row = copy.deepcopy(store[agent][0])
        row[id_key] = f"{row[id_key][:-6]}NEW001"
        row[created] = row[updated] = text(stamp)
        store[agent].insert(0, row)
        store.changed()
    subnoto = box.store(Vendor.SUBNOTO)
    row = copy.deepcopy(subnoto[0])
    row["taskUuid"] = "00000000-0000-4000-8000-00000000new1"
    row["latestReport"] = {**row["latestReport"], "timestamp": int(stamp.timestamp() * 1000)}
    subnoto.insert(0, row)
    subnoto.changed()


def test_incremental_passes_follow_progress_and_new_tasks(
    sandbox: tuple[Sandbox, str], index_url: str
) -> None:
    """After the first sync, tasks move on (the sandbox's progress step, updated now) and
    new ones appear: one incremental pass per vendor (no full read) brings the index to
    exactly the vendors' records again, each change counted once."""
    box, url = sandbox
    gateway = IndexedGateway(index_settings(demo_settings(url, box), index_url))
    try:
        gateway.wait_first_sync()
        for round_ in range(3):
            assert box.advance(4) > 0
            if round_ == 1:
                _new_tasks(box, datetime.now(UTC) + timedelta(seconds=1))
            box.reset_counters()
            gateway.sync_pass()
            check_index(gateway, box)
        for sync in gateway.syncs().values():
            assert "full" not in sync.state.state  # incremental passes, not rescans
    finally:
        gateway.close()


def test_a_full_rescan_removes_deleted_tasks(sandbox: tuple[Sandbox, str], index_url: str) -> None:
    box, url = sandbox
    gateway = IndexedGateway(
        index_settings(demo_settings(url, box), index_url, index_rescan_interval=0.0)
    )
    try:
        gateway.wait_first_sync()
        data = records(box)
        kept = {vendor: rows[3:] for vendor, rows in data.items()}
        box.load(kept)
        gateway.sync_pass()
        check(kept, EVERYTHING, gateway.all_tasks())
    finally:
        gateway.close()


def test_a_first_sync_cut_short_resumes_where_it_saved_its_progress(index_url: str) -> None:
    """The sync task is cancelled in the middle of its first full read (as a gateway that
    is killed); a new sync (new objects, as a restarted process has) resumes from the
    position saved in ``sync_state``: the index ends with every task once, and the second
    run reads only what the first had not saved."""
    box = Sandbox(SandboxOptions(size=700, seed=3))
    vendor = Vendor.AGENTEX  # 700 trackers: 14 pages of 50, progress saved every 200 rows

    async def scenario(url: str) -> tuple[int, int, int]:
        settings = demo_settings(url, box)
        index = await TaskIndex.open(index_url)
        try:
            first = _vendor_sync(settings, index, vendor)
            box.knobs(vendor).latency_ms = 15  # slow enough to be caught mid-read
            running = asyncio.create_task(first.run_pass())
            while not (await index.load_state(vendor)).state.get("full", {}).get("position"):
                await asyncio.sleep(0.005)
            running.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await running
            state = await index.load_state(vendor)
            assert not state.first_sync_done and state.state["full"]["position"] is not None
            saved_rows = state.state["full"]["rows"]
            calls_before = sum(box.counters(vendor).values())
            box.knobs(vendor).latency_ms = 0
            second = _vendor_sync(settings, index, vendor)
            assert await second.attempt()
            state = await index.load_state(vendor)
            assert state.first_sync_done and "full" not in state.state
            calls_after = sum(box.counters(vendor).values()) - calls_before
            return saved_rows, calls_after, await index.count(ListQuery(), [vendor])
        finally:
            await index.close()

    with ServerThread(box.app) as server:
        saved_rows, calls_after, count = asyncio.run(scenario(server.url))
    assert saved_rows > 0
    # The pages after the saved position, one more to learn the end (Agentex gives no
    # total) and at most two windows re-reading a tie group across a page boundary.
    assert calls_after <= -(-(700 - saved_rows) // 50) + 1 + 2, "the restart read again"
    expected = {t.key for t in (expected_task(vendor, r) for r in records(box)[vendor])}
    assert count == len(expected) == 700


def _vendor_sync(settings: Any, index: TaskIndex, vendor: Vendor) -> VendorSync:
    gateway = build_gateway(settings)
    view = IndexView(index, [vendor])
    return VendorSync(vendor, gateway.service.upstream, index, view, SyncSettings())


def test_two_replicas_on_one_postgres_one_syncs_both_serve(
    sandbox: tuple[Sandbox, str], postgres_server: Any
) -> None:
    box, url = sandbox
    database = postgres_server.create_database()
    settings = index_settings(demo_settings(url, box), database, index_interval=0.3)
    first, second = IndexedGateway(settings), IndexedGateway(settings)
    try:
        first.wait_first_sync()
        second.wait_first_sync()
        holders = {
            vendor: [g.vendors()[vendor]["index"]["syncingHere"] for g in (first, second)]
            for vendor in (v.name for v in Vendor)
        }
        assert all(sum(held) == 1 for held in holders.values()), holders
        for gateway in (first, second):
            box.reset_counters()
            gateway.all_tasks({"field": "CREATED_AT", "direction": "ASC"})
            check_index(gateway, box)
        # The replica holding a lock goes away: the other takes its vendors over.
        leaving = first if any(h[0] for h in holders.values()) else second
        staying = second if leaving is first else first
        leaving.close()
        deadline = time.monotonic() + 30
        while not all(v["index"]["syncingHere"] for v in staying.vendors().values()):
            assert time.monotonic() < deadline, staying.vendors()
            time.sleep(0.1)
        box.advance(3)
        staying.sync_pass()
        check_index(staying, box)
    finally:
        for gateway in (first, second):
            with contextlib.suppress(Exception):
                gateway.close()


def test_a_spent_budget_pauses_the_sync_without_an_error(
    sandbox: tuple[Sandbox, str], tmp_path: Path
) -> None:
    """orq at 2 calls a minute (background work may use 1 of them) and three agents to read:
    the first sync takes its one call, then waits for the budget: no call beyond it, no
    error shown, and the other vendors sync as usual."""
    box, url = sandbox
    limited = vendor_settings(demo_settings(url, box), Vendor.ORQ, max_requests_per_minute=2)
    gateway = IndexedGateway(index_settings(limited, f"sqlite:///{tmp_path / 'tasks.db'}"))
    try:
        orq = gateway.syncs()[Vendor.ORQ]
        deadline = time.monotonic() + 30
        while not orq.status.waiting_for_budget:
            assert time.monotonic() < deadline, "the sync never met the budget"
            time.sleep(0.02)
        shown = gateway.vendors()
        assert not shown["ORQ"]["index"]["firstSyncDone"]
        assert shown["ORQ"]["index"]["lastError"] is None and orq.status.errors == 0
        assert sum(box.counters(Vendor.ORQ).values()) <= 1
        for name in ("AGENTEX", "XPANDER", "SUBNOTO"):
            while not gateway.vendors()[name]["index"]["firstSyncDone"]:
                assert time.monotonic() < deadline
                time.sleep(0.05)
    finally:
        gateway.close()


def test_an_unreachable_index_leaves_the_gateway_serving_live(
    sandbox: tuple[Sandbox, str], caplog: pytest.LogCaptureFixture
) -> None:
    box, url = sandbox
    secret = "index-password-never-logged"
    nowhere = f"postgresql://gateway:{secret}@127.0.0.1:1/gateway"
    gateway = IndexedGateway(index_settings(demo_settings(url, box), nowhere))
    try:
        check(records(box), EVERYTHING, gateway.all_tasks())  # live, whole
        assert all(v["index"] is None for v in gateway.vendors().values())
        deadline = time.monotonic() + 10
        while "cannot open the task index" not in caplog.text:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert secret not in caplog.text
    finally:
        gateway.close()
