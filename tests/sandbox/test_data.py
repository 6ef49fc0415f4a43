"""The generated data: deterministic, and covering what the gateway must cope with (every
status value of every vendor, every documented nullable field null somewhere, sub-tasks, the
System author, timestamps tied within and across vendors). Each test builds its own
``Sandbox`` (no server), so requests made by other tests change nothing here. The vendors'
vocabularies are written here from VENDORS.md, not imported from the gateway or the sandbox.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest

from gateway.core.records import Vendor
from gateway.sandbox import Sandbox, SandboxOptions
from tests.sandbox.conftest import NOW, OPTIONS, SIZE, orq_status, parse_time

NIL_UUID = "00000000-0000-0000-0000-000000000000"
XPANDER_STATUSES = {"pending", "executing", "paused", "error", "failed", "completed", "stopped"}
SUBNOTO_STATES = {"working", "complete", "idle", "failure"}
ORQ_STATUSES = {"inactive", "approval_required", "in_progress", "errored"}
# VENDORS.md's status table, Agentex column (case-insensitive, free-form).
AGENTEX_KNOWN = {
    *("pending", "queued", "created", "scheduled"),
    *("running", "processing", "in_progress", "active", "working"),
    "paused",
    *("awaiting_approval", "waiting_for_approval"),
    "idle",
    *("completed", "complete", "done", "succeeded", "success"),
    *("failed", "failure", "error", "errored"),
    *("cancelled", "canceled", "stopped"),
}


@pytest.fixture(scope="module")
def fresh() -> Sandbox:
    return Sandbox(OPTIONS)


def snapshot(sandbox: Sandbox) -> dict[Vendor, Any]:
    """Every vendor's rows and agents as plain values."""
    return {vendor: (sandbox.agents(vendor), _plain(sandbox.store(vendor))) for vendor in Vendor}


def _plain(store: Any) -> Any:
    if isinstance(store, dict):
        return {key: _plain(value) for key, value in store.items()}
    if isinstance(store, list):
        return [_plain(value) for value in store]
    return store


def xpander_tasks(sandbox: Sandbox) -> list[dict[str, Any]]:
    return [t for tasks in sandbox.store(Vendor.XPANDER).values() for t in tasks]


def orq_tasks(sandbox: Sandbox) -> list[dict[str, Any]]:
    return [t for tasks in sandbox.store(Vendor.ORQ).values() for t in tasks]


# -- determinism -----------------------------------------------------------------------------


def test_the_same_seed_size_and_now_give_identical_data() -> None:
    one, two = snapshot(Sandbox(OPTIONS)), snapshot(Sandbox(OPTIONS))
    assert one == two


def test_another_seed_or_now_gives_other_data() -> None:
    base = snapshot(Sandbox(OPTIONS))
    other_seed = snapshot(Sandbox(replace(OPTIONS, seed=OPTIONS.seed + 1)))
    for vendor in (Vendor.AGENTEX, Vendor.XPANDER, Vendor.ORQ, Vendor.SUBNOTO):
        assert base[vendor] != other_seed[vendor]
    later = Sandbox(replace(OPTIONS, now=NOW + timedelta(days=1)))
    agentex = later.store(Vendor.AGENTEX)
    assert snapshot(later)[Vendor.AGENTEX][1] != base[Vendor.AGENTEX][1]
    assert max(parse_time(t["created_at"]) for t in agentex.values()) > NOW


def test_the_size_is_the_number_of_tasks_per_vendor(fresh: Sandbox) -> None:
    assert len(fresh.store(Vendor.AGENTEX)) == SIZE
    assert len(xpander_tasks(fresh)) == SIZE
    assert len(orq_tasks(fresh)) == SIZE
    assert len(fresh.store(Vendor.SUBNOTO)) == SIZE
    small = Sandbox(SandboxOptions(size=3, seed=1, now=NOW))
    assert len(small.store(Vendor.AGENTEX)) == 3
    assert SandboxOptions().size >= 200  # "a few hundred tasks per vendor" by default


def test_several_agents_per_vendor_but_none_for_subnoto(fresh: Sandbox) -> None:
    for vendor in (Vendor.AGENTEX, Vendor.XPANDER, Vendor.ORQ):
        agents = fresh.agents(vendor)
        assert len(agents) >= 2 and len(set(agents)) == len(agents)
    assert fresh.agents(Vendor.SUBNOTO) == []
    assert {t["agent_id"] for t in fresh.store(Vendor.AGENTEX).values()} == set(
        fresh.agents(Vendor.AGENTEX)
    )
    assert set(fresh.store(Vendor.XPANDER)) == set(fresh.agents(Vendor.XPANDER))
    assert set(fresh.store(Vendor.ORQ)) == set(fresh.agents(Vendor.ORQ))


def test_times_lie_in_the_weeks_before_now(fresh: Sandbox) -> None:
    earliest = NOW - timedelta(days=28)
    moments = [
        parse_time(t[k])
        for t in fresh.store(Vendor.AGENTEX).values()
        for k in ("created_at", "updated_at")
        if t[k] is not None
    ]
    moments += [
        parse_time(t[k]) for t in xpander_tasks(fresh) for k in ("created_at", "updated_at")
    ]
    moments += [parse_time(t[k]) for t in orq_tasks(fresh) for k in ("created", "updated")]
    moments += [
        datetime.fromtimestamp(t["latestReport"]["timestamp"] / 1000, NOW.tzinfo)
        for t in fresh.store(Vendor.SUBNOTO)
    ]
    assert all(earliest <= m <= NOW for m in moments)
    assert max(moments) - min(moments) > timedelta(days=7)  # spread over weeks, not minutes
    for t in fresh.store(Vendor.AGENTEX).values():
        if t["updated_at"] is not None:
            assert parse_time(t["updated_at"]) >= parse_time(t["created_at"])


# -- every status value ----------------------------------------------------------------------


def test_agentex_has_every_documented_status_null_and_unknown_values(fresh: Sandbox) -> None:
    statuses = {t["status"] for t in fresh.store(Vendor.AGENTEX).values()}
    assert statuses >= AGENTEX_KNOWN
    assert None in statuses
    unknown = {s for s in statuses if s is not None and s.lower() not in AGENTEX_KNOWN}
    assert unknown, "a free-form status no table knows should be present"
    # Free-form means any case too: a value only a case-insensitive reading recognises.
    assert any(s and s not in AGENTEX_KNOWN and s.lower() in AGENTEX_KNOWN for s in statuses)


def test_xpander_has_every_status(fresh: Sandbox) -> None:
    assert {t["status"] for t in xpander_tasks(fresh)} == XPANDER_STATUSES


def test_orq_has_every_derived_status(fresh: Sandbox) -> None:
    tasks = orq_tasks(fresh)
    assert {orq_status(t["state"]) for t in tasks} == ORQ_STATUSES
    assert any(t["state"]["waiting_for_approval"] for t in tasks)
    assert any(t["state"]["error"] for t in tasks)


def test_subnoto_has_every_state_and_several_authors_with_the_system_one(fresh: Sandbox) -> None:
    reports = [t["latestReport"] for t in fresh.store(Vendor.SUBNOTO)]
    assert {r["state"] for r in reports} == SUBNOTO_STATES
    authors = {r["author"]["uuid"]: r["author"] for r in reports}
    assert len(authors) >= 3
    assert NIL_UUID in authors and authors[NIL_UUID]["name"] == "System"
    assert any("link" in r for r in reports) and any("link" not in r for r in reports)


# -- xpander sub-tasks -----------------------------------------------------------------------


def test_xpander_sub_tasks_point_at_an_existing_parent_of_the_triggering_agent(
    fresh: Sandbox,
) -> None:
    by_id = {t["id"]: t for t in xpander_tasks(fresh)}
    children = [t for t in by_id.values() if t["parent_task_id"]]
    assert len(children) >= 3
    for child in children:
        parent = by_id.get(child["parent_task_id"])
        assert parent is not None, "a sub-task's parent must exist"
        assert child["triggering_agent_id"] == parent["agent_id"]
        assert child["agent_id"] != parent["agent_id"]  # delegated to another agent
        assert parse_time(child["created_at"]) >= parse_time(parent["created_at"])
    for task in by_id.values():
        if not task["parent_task_id"]:
            assert task["triggering_agent_id"] is None


# -- ties ------------------------------------------------------------------------------------


def _tied(values: list[Any]) -> bool:
    return any(count > 1 for count in Counter(values).values())


def test_each_vendor_has_tasks_sharing_a_timestamp(fresh: Sandbox) -> None:
    trackers = list(fresh.store(Vendor.AGENTEX).values())
    assert _tied([t["created_at"] for t in trackers])
    assert _tied([t["updated_at"] for t in trackers])
    # xpander and orq list per agent: the tie must be inside one agent's list to matter.
    assert any(_tied([t["created_at"] for t in ts]) for ts in fresh.store(Vendor.XPANDER).values())
    assert any(_tied([t["created"] for t in ts]) for ts in fresh.store(Vendor.ORQ).values())
    assert _tied([t["latestReport"]["timestamp"] for t in fresh.store(Vendor.SUBNOTO)])


def test_ties_cross_vendors(fresh: Sandbox) -> None:
    """A moment shared by all four vendors: the merge must order equal times across them."""
    agentex = {parse_time(t["created_at"]) for t in fresh.store(Vendor.AGENTEX).values()}
    xpander = {parse_time(t["created_at"]) for t in xpander_tasks(fresh)}
    orq = {parse_time(t["created"]) for t in orq_tasks(fresh)}
    subnoto = {
        datetime.fromtimestamp(t["latestReport"]["timestamp"] / 1000, NOW.tzinfo)
        for t in fresh.store(Vendor.SUBNOTO)
    }
    assert agentex & xpander & orq & subnoto


# -- nulls -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field", ["updated_at", "status", "status_reason", "last_processed_event_id"]
)
def test_every_nullable_agentex_field_is_null_somewhere_and_set_elsewhere(
    fresh: Sandbox, field: str
) -> None:
    values = [t[field] for t in fresh.store(Vendor.AGENTEX).values()]
    assert None in values and any(v is not None for v in values)


@pytest.mark.parametrize("field", ["user_id", "parent_task_id", "triggering_agent_id"])
def test_every_nullable_xpander_id_is_null_somewhere_and_set_elsewhere(
    fresh: Sandbox, field: str
) -> None:
    values = [t[field] for t in xpander_tasks(fresh)]
    assert None in values and any(v is not None for v in values)


# -- loading records -------------------------------------------------------------------------


def test_loaded_records_replace_the_generated_ones_of_the_vendors_named() -> None:
    sandbox = Sandbox(OPTIONS)
    before = snapshot(sandbox)
    tracker = {
        "id": "t-1",
        "agent_id": sandbox.agents(Vendor.AGENTEX)[0],
        "task_id": "task-1",
        "status": None,
        "status_reason": None,
        "last_processed_event_id": None,
        "created_at": "2026-05-01T00:00:00Z",
        "updated_at": None,
    }
    sandbox.load({Vendor.AGENTEX: [tracker], Vendor.SUBNOTO: []})
    assert list(sandbox.store(Vendor.AGENTEX).values()) == [tracker]
    assert sandbox.store(Vendor.SUBNOTO) == []
    assert snapshot(sandbox)[Vendor.ORQ] == before[Vendor.ORQ]
    tracker["status"] = "changed after loading"  # the sandbox kept its own copy
    assert sandbox.store(Vendor.AGENTEX)["t-1"]["status"] is None
    # Agents stay the seed's, whatever was loaded: a gateway configured once keeps working.
    assert sandbox.agents(Vendor.AGENTEX) == before[Vendor.AGENTEX][0]
