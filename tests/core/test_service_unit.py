"""``TaskService`` below the graph: which vendors and listings a query asks (per agent, the
shared status pushed down as each vendor's own values, a vendor with none not asked at all),
the query fingerprint that binds a cursor, and what only some vendors can do (trackers,
sub-tasks) dispatched by capability.

Expected values are written here from ``shared/vendors/VENDORS.md``, never computed by the
gateway's own tables; what reached a vendor is read off the sandbox's request counters.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.core.cache import PageCache
from gateway.core.context import RequestState
from gateway.core.contract import ListQuery, Source, VendorSettings
from gateway.core.cursor import decode_cursor, encode_cursor
from gateway.core.errors import BadInputError, InvalidCursorError, InvalidIdError, NotFoundError
from gateway.core.ids import TASK, TRACKER, encode_id
from gateway.core.records import (
    Direction,
    Order,
    OrderField,
    TaskRecord,
    TaskStatus,
    TrackerRecord,
    Vendor,
)
from gateway.core.service import TaskService
from gateway.core.store import create_store
from gateway.core.upstream import Upstream, VendorRuntime
from gateway.sandbox import Sandbox
from gateway.vendors.registry import connector_for
from tests.vendors.conftest import Make

S = TaskStatus
AGENTEX, XPANDER, ORQ, SUBNOTO = Vendor.AGENTEX, Vendor.XPANDER, Vendor.ORQ, Vendor.SUBNOTO
AGENTS = {  # configured agents of the per-agent vendors in the planning tests
    XPANDER: ("xa-1", "xa-2", "xa/3"),
    ORQ: ("support-triage", "invoice-extractor"),
}

# VENDORS.md, "The shared status": each vendor's own values per shared status. Agentex is
# free-form (any status may match, so it is always asked and filtered by the gateway).
VALUES: dict[Vendor, dict[TaskStatus, set[str]]] = {
    XPANDER: {
        S.PENDING: {"pending"},
        S.RUNNING: {"executing"},
        S.PAUSED: {"paused"},
        S.COMPLETED: {"completed"},
        S.FAILED: {"error", "failed"},
        S.CANCELLED: {"stopped"},
    },
    ORQ: {
        S.RUNNING: {"in_progress"},
        S.AWAITING_APPROVAL: {"approval_required"},
        S.IDLE: {"inactive"},
        S.FAILED: {"errored"},
    },
    SUBNOTO: {
        S.RUNNING: {"working"},
        S.IDLE: {"idle"},
        S.COMPLETED: {"complete"},
        S.FAILED: {"failure"},
    },
}
ROOT = Path(__file__).resolve().parents[2]
# VENDORS.md, endpoints.
XPANDER_PATH = "/v1/agents/{}/tasks"
ORQ_PATH = "/v2/agents/{}/tasks"


def planner(
    vendors: tuple[Vendor, ...] = tuple(Vendor),
    agents: Mapping[Vendor, tuple[str, ...]] | None = None,
) -> TaskService:
    """A service over connectors that are never called (planning does no I/O)."""
    agents = AGENTS if agents is None else agents
    runtimes = {}
    for vendor in vendors:
        settings = VendorSettings(vendor, "http://127.0.0.1:9", agents=agents.get(vendor, ()))
        connector = connector_for(vendor)(settings, httpx.AsyncClient())
        runtimes[vendor] = VendorRuntime(connector)
    return TaskService(Upstream(runtimes, PageCache(create_store(None))))


SERVICE = planner()


def asked(sources: tuple[Source, ...]) -> set[Vendor]:
    return {s.vendor for s in sources}


def of(sources: tuple[Source, ...], vendor: Vendor) -> list[Source]:
    return [s for s in sources if s.vendor is vendor]


def param(source: Source, name: str) -> str | None:
    return dict(source.params).get(name)


# -- which vendors and listings --------------------------------------------------------------


def test_without_a_filter_every_vendor_is_asked_each_agent_once() -> None:
    plan = SERVICE.plan(ListQuery())
    assert asked(plan.listings) == set(Vendor)
    assert sorted(s.path for s in of(plan.listings, XPANDER)) == sorted(
        XPANDER_PATH.format(quote(a, safe="")) for a in AGENTS[XPANDER]
    )
    assert sorted(s.path for s in of(plan.listings, ORQ)) == sorted(
        ORQ_PATH.format(a) for a in AGENTS[ORQ]
    )
    assert len(of(plan.listings, AGENTEX)) == 1  # one team-wide tracker listing
    assert len(of(plan.listings, SUBNOTO)) == 1
    assert len(set(plan.keys)) == len(plan.keys)  # every part resumes from its own position


def test_an_agent_filter_asks_only_those_agents() -> None:
    plan = SERVICE.plan(ListQuery(agent_ids=frozenset({"xa-2", "someone-else"})))
    assert [s.path for s in of(plan.listings, XPANDER)] == [XPANDER_PATH.format("xa-2")]
    assert of(plan.listings, ORQ) == []  # none of its configured agents was asked for
    assert of(plan.listings, SUBNOTO) == []  # team-wide: its tasks have no agent
    assert {param(s, "agent_id") for s in of(plan.listings, AGENTEX)} == {"xa-2", "someone-else"}


def test_with_no_agents_configured_the_agents_asked_for_are_listed() -> None:
    service = planner((XPANDER, ORQ), agents={})
    assert service.plan(ListQuery()).listings == ()
    plan = service.plan(ListQuery(agent_ids=frozenset({"b", "a"})))
    assert sorted(s.path for s in of(plan.listings, ORQ)) == [
        ORQ_PATH.format("a"),
        ORQ_PATH.format("b"),
    ]
    assert len(of(plan.listings, XPANDER)) == 2


def test_a_parent_filter_asks_only_the_vendor_with_sub_tasks() -> None:
    plan = SERVICE.plan(ListQuery(parent_task_id="p-1"))
    assert asked(plan.listings) == {XPANDER}
    assert all(param(s, "parent_task_id") == "p-1" for s in plan.listings)
    plan = SERVICE.plan(ListQuery(triggering_agent_id="xa-1"))
    assert asked(plan.listings) == {XPANDER}


def test_a_user_filter_skips_agentex_trackers_which_have_no_user() -> None:
    plan = SERVICE.plan(ListQuery(user_id="u-1"))
    assert AGENTEX not in asked(plan.listings) and XPANDER in asked(plan.listings)
    assert all(param(s, "user_id") == "u-1" for s in of(plan.listings, XPANDER))


def test_only_the_vendors_asked_for_and_enabled_are_planned() -> None:
    service = planner((XPANDER, ORQ))
    assert asked(service.plan(ListQuery()).listings) == {XPANDER, ORQ}
    plan = service.plan(ListQuery(), [ORQ, SUBNOTO])
    assert plan.vendors == (ORQ,) and asked(plan.listings) == {ORQ}
    assert service.plan(ListQuery(), [SUBNOTO]).sources == ()


statuses_st = st.frozensets(st.sampled_from(list(TaskStatus)), min_size=1)


@given(statuses_st)
def test_a_status_filter_goes_down_as_each_vendors_own_values(statuses: frozenset[S]) -> None:
    plan = SERVICE.plan(ListQuery(statuses=statuses))
    wanted = {
        vendor: set().union(*(table.get(s, set()) for s in statuses))
        for vendor, table in VALUES.items()
    }
    # A vendor with no value for any of the statuses is not asked at all.
    assert asked(plan.listings) == {AGENTEX} | {v for v, values in wanted.items() if values}
    # xpander takes one status per listing: one per value and agent.
    assert sorted((s.path, param(s, "status")) for s in of(plan.listings, XPANDER)) == sorted(
        (XPANDER_PATH.format(quote(a, safe="")), value)
        for a in AGENTS[XPANDER]
        for value in wanted[XPANDER]
    )
    # orq takes a comma-separated list, Subnoto an array (sent from the listing's parameter).
    for source in of(plan.listings, ORQ):
        assert set((param(source, "status") or "").split(",")) == wanted[ORQ]
    for source in of(plan.listings, SUBNOTO):
        assert set((param(source, "stateFilter") or "").split(",")) == wanted[SUBNOTO]
    # Agentex statuses are free-form: nothing to push down, the gateway filters.
    assert all(param(s, "status") is None for s in of(plan.listings, AGENTEX))


ASKED_FOR_STATUS: dict[TaskStatus, set[Vendor]] = {  # VENDORS.md's table, read across
    S.PENDING: {AGENTEX, XPANDER},
    S.RUNNING: set(Vendor),
    S.PAUSED: {AGENTEX, XPANDER},
    S.AWAITING_APPROVAL: {AGENTEX, ORQ},
    S.IDLE: {AGENTEX, ORQ, SUBNOTO},
    S.COMPLETED: {AGENTEX, XPANDER, SUBNOTO},
    S.FAILED: set(Vendor),
    S.CANCELLED: {AGENTEX, XPANDER},
    S.UNKNOWN: {AGENTEX},
}


@pytest.mark.parametrize("status", list(TaskStatus), ids=lambda s: s.value)
def test_each_status_asks_the_vendors_that_have_it(status: S) -> None:
    plan = SERVICE.plan(ListQuery(statuses=frozenset({status})))
    assert asked(plan.listings) == ASKED_FOR_STATUS[status]


def test_agentex_without_a_time_filter_is_read_in_two_parts_newest_first() -> None:
    """Agentex lists a null ``updated_at`` first in ``desc`` (VENDORS.md, Agentex ordering),
    the gateway shows it last: the listing is read as two parts, still one listing."""
    newest = Order(OrderField.UPDATED_AT, Direction.DESC)
    plan = SERVICE.plan(ListQuery(order=newest), [AGENTEX])
    assert len(plan.sources) == 2 and len(plan.listings) == 1 and len(set(plan.keys)) == 2
    oldest = Order(OrderField.UPDATED_AT, Direction.ASC)
    assert len(SERVICE.plan(ListQuery(order=oldest), [AGENTEX]).sources) == 1
    dated = ListQuery(order=newest, updated_after=datetime(2026, 1, 1, tzinfo=UTC))
    assert len(SERVICE.plan(dated, [AGENTEX]).sources) == 1  # no null time can match


# -- the fingerprint that binds a cursor -----------------------------------------------------

queries = st.builds(
    ListQuery,
    statuses=st.none() | statuses_st,
    agent_ids=st.none() | st.frozensets(st.sampled_from(["xa-1", "xa-2", "a"]), min_size=1),
    user_id=st.none() | st.sampled_from(["u-1", "u-2"]),
    order=st.builds(Order, st.sampled_from(list(OrderField)), st.sampled_from(list(Direction))),
)


@given(queries, queries)
def test_a_cursor_of_one_query_is_refused_by_another(one: ListQuery, two: ListQuery) -> None:
    first, second = SERVICE.plan(one), SERVICE.plan(two)
    cursor = encode_cursor(first.fingerprint, {})
    # The same query planned again keeps its cursors (equal sets built in another order
    # too: the tests below).
    assert decode_cursor(cursor, SERVICE.plan(one).fingerprint) == {}
    if one != two:
        assert first.fingerprint != second.fingerprint
        with pytest.raises(InvalidCursorError):
            decode_cursor(cursor, second.fingerprint)


def test_the_vendors_asked_are_part_of_the_fingerprint() -> None:
    assert SERVICE.plan(ListQuery(), [ORQ]).fingerprint != SERVICE.plan(ListQuery()).fingerprint


def _reordered_pair() -> tuple[str, str]:
    """Two agent ids whose set iterates in the order they were added (with this process's
    string hashing): built in the other order, the same set iterates the other way."""
    names = [f"agent-{i}" for i in range(60)]
    for a, b in itertools.combinations(names, 2):
        if list(frozenset([a, b])) != list(frozenset([b, a])):
            return a, b
    raise AssertionError("no pair found")


def test_the_same_agents_in_another_order_keep_the_cursor() -> None:
    a, b = _reordered_pair()
    one = SERVICE.plan(ListQuery(agent_ids=frozenset([a, b])))
    two = SERVICE.plan(ListQuery(agent_ids=frozenset([b, a])))
    assert one.fingerprint == two.fingerprint


FINGERPRINT_SCRIPT = """
from gateway.core.contract import ListQuery
from gateway.core.records import TaskStatus as S
from tests.core.test_service_unit import SERVICE
print(SERVICE.plan(ListQuery(statuses=frozenset(S) - {S.UNKNOWN})).fingerprint)
"""


def test_a_cursor_made_by_one_replica_is_honoured_by_another() -> None:
    def fingerprint(seed: str) -> str:
        env = {**os.environ, "PYTHONHASHSEED": seed}
        run = subprocess.run(
            [sys.executable, "-c", FINGERPRINT_SCRIPT],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        return run.stdout.strip()

    assert fingerprint("1") == fingerprint("2")


# -- trackers and sub-tasks, by capability ---------------------------------------------------


@pytest.fixture
async def live(clean_sandbox: Sandbox, sandbox_url: str) -> AsyncIterator[TaskService]:
    """A service over every vendor of the shared sandbox, with its configured agents."""
    make = Make(clean_sandbox, sandbox_url, [])
    runtimes = {v: VendorRuntime(make(v)) for v in Vendor}
    cache = PageCache(create_store(None))
    yield TaskService(Upstream(runtimes, cache))
    await cache.close()
    for client in make.clients:
        await client.aclose()


def calls(sandbox: Sandbox) -> dict[Vendor, int]:
    return {v: n for v in Vendor if (n := sum(sandbox.counters(v).values()))}


def record(vendor: Vendor, native_id: str, agent: str | None = "agent") -> TaskRecord:
    return TaskRecord(
        vendor=vendor,
        native_id=native_id,
        global_id=encode_id(TASK, vendor, agent, native_id),
        agent_id=agent,
        status=S.RUNNING,
        vendor_status=None,
        title=None,
        summary=None,
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
        updated_at=None,
    )


@pytest.mark.parametrize("vendor", [XPANDER, ORQ, SUBNOTO], ids=lambda v: v.value)
async def test_only_a_tracker_vendor_has_trackers(
    live: TaskService, clean_sandbox: Sandbox, vendor: Vendor
) -> None:
    state = RequestState()
    assert await live.find(encode_id(TRACKER, vendor, "a", "t", "x"), state) is None
    with pytest.raises(BadInputError, match="must be the id of a Tracker"):
        await live.update_tracker(
            encode_id(TRACKER, vendor, "a", "t", "x"), state, status="done", fields=frozenset()
        )
    assert calls(clean_sandbox) == {}  # refused without asking any vendor


async def test_an_agentex_tracker_is_found_by_its_id(
    live: TaskService, clean_sandbox: Sandbox
) -> None:
    row = next(iter(clean_sandbox.store(AGENTEX).values()))
    node_id = encode_id(TRACKER, AGENTEX, row["agent_id"], row["task_id"], row["id"])
    found = await live.find(node_id, RequestState())
    assert isinstance(found, TrackerRecord)
    assert (found.native_id, found.task_id, found.agent_id) == (
        row["id"],
        row["task_id"],
        row["agent_id"],
    )
    assert (found.vendor_status, found.status_reason) == (row["status"], row["status_reason"])
    assert set(calls(clean_sandbox)) == {AGENTEX}


@pytest.mark.parametrize(
    "node_id,error",
    [
        (encode_id(TASK, AGENTEX, "a", "t"), BadInputError),  # a task, not its tracker
        (encode_id(TRACKER, AGENTEX, "a", "t"), BadInputError),  # a part missing
        ("not-an-id", InvalidIdError),
    ],
    ids=["task-id", "short", "garbage"],
)
async def test_a_tracker_write_needs_a_tracker_id(
    live: TaskService, clean_sandbox: Sandbox, node_id: str, error: type[Exception]
) -> None:
    with pytest.raises(error):
        await live.update_tracker(node_id, RequestState(), status="done", fields=frozenset())
    assert calls(clean_sandbox) == {}


async def test_a_tracker_write_to_a_vendor_not_enabled_is_not_found() -> None:
    service = planner((XPANDER,))
    with pytest.raises(NotFoundError):
        await service.update_tracker(
            encode_id(TRACKER, AGENTEX, "a", "t", "x"),
            RequestState(),
            status="done",
            fields=frozenset({"status", "statusReason"}),
        )


@pytest.mark.parametrize(
    "node_id",
    [
        encode_id(TASK, ORQ, "only-one-part"),
        encode_id(TASK, ORQ, "a", "b", "c"),
        encode_id(TRACKER, AGENTEX, "a", "t"),
    ],
    ids=["task-short", "task-long", "tracker-short"],
)
async def test_an_id_of_the_wrong_shape_finds_nothing(
    live: TaskService, clean_sandbox: Sandbox, node_id: str
) -> None:
    assert await live.find(node_id, RequestState()) is None
    assert calls(clean_sandbox) == {}


async def test_vendors_without_sub_tasks_are_not_asked_for_them(
    live: TaskService, clean_sandbox: Sandbox
) -> None:
    parents = [record(AGENTEX, "t-1"), record(ORQ, "01JJ"), record(SUBNOTO, "u-1", None)]
    assert await live.subtasks(parents, RequestState()) == [[], [], []]
    assert calls(clean_sandbox) == {}


def xpander_children(sandbox: Sandbox) -> dict[str, set[str]]:
    rows = [r for agent in sandbox.store(XPANDER).values() for r in agent]
    children: dict[str, set[str]] = {}
    for row in rows:
        if row["parent_task_id"]:
            children.setdefault(row["parent_task_id"], set()).add(row["id"])
    return children


async def test_an_xpander_task_lists_its_sub_tasks(
    live: TaskService, clean_sandbox: Sandbox
) -> None:
    expected = xpander_children(clean_sandbox)
    parent = max(expected, key=lambda p: len(expected[p]))
    (found,) = await live.subtasks([record(XPANDER, parent)], RequestState())
    assert {r.native_id for r in found} == expected[parent]
    assert set(calls(clean_sandbox)) == {XPANDER}


async def test_sub_tasks_of_several_parents_are_grouped_by_parent(
    live: TaskService, clean_sandbox: Sandbox
) -> None:
    expected = xpander_children(clean_sandbox)
    parents = [*sorted(expected)[:3], "no-such-task"]
    mixed = [record(XPANDER, p) for p in parents] + [record(ORQ, parents[0])]
    found = await live.subtasks(mixed, RequestState())
    assert [{r.native_id for r in f} for f in found] == [
        *(expected[p] for p in parents[:3]),
        set(),
        set(),  # an orq task with the same id as an xpander parent has no sub-tasks
    ]
    assert set(calls(clean_sandbox)) == {XPANDER}
