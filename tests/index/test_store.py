"""The task index's store against an oracle written here, on SQLite and on PostgreSQL.

Hypothesis draws tasks with what makes ordering hard (missing times, ties on times within
and across vendors, several agents, times in other zones, text with NUL) and queries with
random filters, orders and vendor sets. The expected answers are computed in this file from
the drawn records by the documented rules, never by gateway code:

- a filter keeps a task when every condition set holds; a time filter never keeps a task
  without an update time (``updatedAfter`` inclusive, ``updatedBefore`` exclusive);
- the order: the order's time (a missing time after every known time, in both directions),
  then the vendor in the order AGENTEX, XPANDER, ORQ, SUBNOTO, then the id ascending.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.core.contract import ListQuery
from gateway.core.ids import TASK, encode_id
from gateway.core.records import (
    Direction,
    Order,
    OrderField,
    TaskMetrics,
    TaskRecord,
    TaskStatus,
    Vendor,
)
from gateway.core.stats import GroupBy
from gateway.index.store import Keyset, SyncState, TaskIndex
from tests.index.conftest import empty

EXAMPLES = settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

FEWER = settings(EXAMPLES, max_examples=20)  # the properties that write many times an example

VENDOR_ORDER = ["AGENTEX", "XPANDER", "ORQ", "SUBNOTO"]  # the documented tie order
AGENTS = ["a1", "a2", "agent-b"]
USERS = ["u1", "u2"]
BASE = datetime(2025, 3, 1, 12, tzinfo=UTC)
# Few distinct times, so ties are common; one a microsecond apart, one before 1970, one
# written in another zone (the same instant as BASE + 1 h).
TIMES = [
    BASE,
    BASE + timedelta(microseconds=1),
    BASE + timedelta(hours=1),
    datetime(2025, 3, 1, 15, tzinfo=timezone(timedelta(hours=2))),
    BASE - timedelta(days=1, microseconds=3),
    datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
    datetime(2025, 3, 1, 23, 59, 59, 999_999, tzinfo=UTC),  # the last microsecond of a day
]

times = st.sampled_from([None, *TIMES])  # a missing time as often as any one time
json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**53), 2**53),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
)
raw_json = st.dictionaries(
    st.text(max_size=6),
    st.recursive(
        json_leaf,
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
        ),
        max_leaves=6,
    ),
    max_size=4,
)
metrics = st.one_of(
    st.none(),
    st.builds(
        TaskMetrics,
        total_cost=st.one_of(st.none(), st.floats(0, 1000, allow_nan=False)),
        total_tokens=st.one_of(st.none(), st.integers(0, 10**9)),
        input_cost=st.one_of(st.none(), st.floats(0, 10)),
    ),
)


@st.composite
def records(draw: st.DrawFn, vendor: Vendor | None = None) -> TaskRecord:
    vendor = vendor or draw(st.sampled_from(list(Vendor)))
    agent = draw(st.sampled_from([None, *AGENTS]))
    native = draw(st.text("abcXYZ-_:/%\x00é", min_size=1, max_size=4))
    return TaskRecord(
        vendor=vendor,
        native_id=native,
        global_id=encode_id(TASK, vendor, agent, native)
        if agent
        else encode_id(TASK, vendor, native),
        agent_id=agent,
        status=draw(st.sampled_from(list(TaskStatus))),
        vendor_status=draw(st.one_of(st.none(), st.text(max_size=5))),
        title=draw(st.one_of(st.none(), st.text(max_size=10))),
        summary=draw(st.one_of(st.none(), st.text(max_size=10))),
        created_at=draw(times),
        updated_at=draw(times),
        user_id=draw(st.one_of(st.none(), st.sampled_from(USERS))),
        parent_native_id=draw(st.one_of(st.none(), st.sampled_from(["p1", "p2"]))),
        triggering_agent_id=draw(st.one_of(st.none(), st.sampled_from(AGENTS))),
        link=draw(st.one_of(st.none(), st.just("https://example.test/t"))),
        metrics=draw(metrics),
        raw=draw(raw_json),
    )


def unique(found: Sequence[TaskRecord]) -> list[TaskRecord]:
    """One record per task id (the last drawn)."""
    return list({r.global_id: r for r in found}.values())


datasets = st.lists(records(), min_size=10, max_size=40).map(unique)


FILTERS: dict[str, st.SearchStrategy[Any]] = {
    "statuses": st.frozensets(st.sampled_from(list(TaskStatus)), max_size=6),
    "agent_ids": st.frozensets(st.sampled_from(AGENTS), max_size=3),
    "user_id": st.sampled_from(USERS),
    "parent_task_id": st.sampled_from(["p1", "p2"]),
    "triggering_agent_id": st.sampled_from(AGENTS),
    "updated_after": st.sampled_from(TIMES),
    "updated_before": st.sampled_from(TIMES),
}


@st.composite
def queries(draw: st.DrawFn) -> tuple[ListQuery, list[Vendor]]:
    """An order and zero to three filters (more would leave nothing to page through);
    list filters of several values often, as they are read one value at a time."""
    order = Order(draw(st.sampled_from(list(OrderField))), draw(st.sampled_from(list(Direction))))
    names = draw(st.lists(st.sampled_from(sorted(FILTERS)), unique=True, max_size=3))
    query = ListQuery(order=order, **{name: draw(FILTERS[name]) for name in names})
    # Mostly every vendor, sometimes some, rarely none (hypothesis favours a list's first).
    shape = draw(st.sampled_from(["all", "all", "all", "some", "some", "none"]))
    if shape == "none":
        return query, []
    if shape == "some":
        return query, draw(st.lists(st.sampled_from(list(Vendor)), unique=True, min_size=1))
    return query, list(Vendor)


# -- the oracle ------------------------------------------------------------------------------
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def keeps(query: ListQuery, vendors: Sequence[Vendor], r: TaskRecord) -> bool:
    if r.vendor not in vendors:
        return False
    if query.statuses is not None and r.status not in query.statuses:
        return False
    if query.agent_ids is not None and r.agent_id not in query.agent_ids:
        return False
    for wanted, value in (
        (query.user_id, r.user_id),
        (query.parent_task_id, r.parent_native_id),
        (query.triggering_agent_id, r.triggering_agent_id),
        (query.native_id, r.native_id),
    ):
        if wanted is not None and value != wanted:
            return False
    if query.updated_after is not None or query.updated_before is not None:
        if r.updated_at is None:
            return False
        if query.updated_after is not None and not r.updated_at >= query.updated_after:
            return False
        if query.updated_before is not None and not r.updated_at < query.updated_before:
            return False
    return True


def position(order: Order, r: TaskRecord) -> tuple[Any, ...]:
    moment = r.updated_at if order.field is OrderField.UPDATED_AT else r.created_at
    if moment is None:
        time_key: tuple[int, int] = (1, 0)
    else:
        micros = (moment - EPOCH) // timedelta(microseconds=1)
        time_key = (0, -micros if order.direction is Direction.DESC else micros)
    return (time_key, VENDOR_ORDER.index(r.vendor.name), r.global_id)


def expected(data: Sequence[TaskRecord], query: ListQuery, vendors: Sequence[Vendor]) -> list[str]:
    kept = [r for r in data if keeps(query, vendors, r)]
    return [r.global_id for r in sorted(kept, key=lambda r: position(query.order, r))]


def same(a: TaskRecord, b: TaskRecord) -> bool:
    """Equal in every field, ``raw`` included (a record's ``==`` leaves ``raw`` out)."""
    return a == b and a.raw == b.raw


async def page_through(
    index: TaskIndex, query: ListQuery, vendors: Sequence[Vendor], first: int
) -> list[TaskRecord]:
    found: list[TaskRecord] = []
    after: Keyset | None = None
    for _ in range(500):
        page, after = await index.page(query, vendors, first, after)
        assert len(page) <= first
        found += page
        if after is None:
            return found
    raise AssertionError("paging did not end")


# -- properties ------------------------------------------------------------------------------
@settings(EXAMPLES, max_examples=60)
@given(data=datasets, asked=queries(), first=st.integers(1, 7))
async def test_pages_follow_the_one_order_without_repeats_or_gaps(
    index: TaskIndex, data: list[TaskRecord], asked: tuple[ListQuery, list[Vendor]], first: int
) -> None:
    query, vendors = asked
    await empty(index)
    await index.upsert(data, seen_at=1.0)
    found = await page_through(index, query, vendors, first)
    assert [r.global_id for r in found] == expected(data, query, vendors)
    drawn = {r.global_id: r for r in data}
    assert all(same(r, drawn[r.global_id]) for r in found)
    assert await index.count(query, vendors) == len(found)


@EXAMPLES
@given(
    data=datasets,
    after=st.sampled_from([None, *TIMES]),
    before=st.sampled_from([None, *TIMES]),
    order=st.builds(Order, st.sampled_from(list(OrderField)), st.sampled_from(list(Direction))),
)
async def test_time_filters_at_their_boundaries(
    index: TaskIndex,
    data: list[TaskRecord],
    after: datetime | None,
    before: datetime | None,
    order: Order,
) -> None:
    """``updatedAfter`` keeps its own instant, ``updatedBefore`` does not, whatever zone the
    instant is written in; neither keeps a task without an update time."""
    query = ListQuery(updated_after=after, updated_before=before, order=order)
    await empty(index)
    await index.upsert(data, seen_at=1.0)
    found = await page_through(index, query, list(Vendor), 4)
    assert [r.global_id for r in found] == expected(data, query, list(Vendor))


@FEWER
@given(
    data=datasets,
    asked=queries(),
    first=st.integers(1, 5),
    waves=st.lists(st.lists(records(), max_size=6), min_size=1, max_size=8),
)
async def test_a_task_that_did_not_change_is_never_repeated_or_skipped(
    index: TaskIndex,
    data: list[TaskRecord],
    asked: tuple[ListQuery, list[Vendor]],
    first: int,
    waves: list[list[TaskRecord]],
) -> None:
    """Between page reads, tasks are added and changed (a wave of upserts after each page).
    Every task present from the start and never changed is returned exactly once, and those
    tasks come in the order's sequence."""
    query, vendors = asked
    await empty(index)
    await index.upsert(data, seen_at=1.0)
    touched: set[str] = set()
    found: list[TaskRecord] = []
    after: Keyset | None = None
    pending = list(waves)
    while True:
        page, after = await index.page(query, vendors, first, after)
        found += page
        if after is None:
            break
        if pending:
            wave = unique(pending.pop(0))
            touched |= {r.global_id for r in await index.upsert(wave, seen_at=2.0)}
    steady = [r for r in data if r.global_id not in touched]
    steady_ids = set(expected(steady, query, vendors))
    returned = Counter(r.global_id for r in found)
    assert {i: returned[i] for i in steady_ids} == dict.fromkeys(steady_ids, 1)
    in_order = [r.global_id for r in found if r.global_id in steady_ids]
    assert in_order == expected(steady, query, vendors)


def changed_version(r: TaskRecord, how: int) -> TaskRecord:
    if how == 0:
        return replace(
            r,
            status=TaskStatus.FAILED if r.status is not TaskStatus.FAILED else TaskStatus.COMPLETED,
        )
    if how == 1:
        return replace(r, updated_at=(r.updated_at or BASE) + timedelta(microseconds=1))
    if how == 2:
        return replace(r, raw={**r.raw, "changed": True})
    return replace(r, title=(r.title or "") + "!")


@FEWER
@given(data=datasets, choices=st.lists(st.integers(0, 4), max_size=30), extra=datasets)
async def test_upsert_returns_exactly_the_new_and_changed_tasks(
    index: TaskIndex, data: list[TaskRecord], choices: list[int], extra: list[TaskRecord]
) -> None:
    await empty(index)
    assert {r.global_id for r in await index.upsert(data, seen_at=1.0)} == {
        r.global_id for r in data
    }
    second: list[TaskRecord] = []
    changed: set[str] = set()
    for r, how in zip(data, choices, strict=False):
        if how == 4:
            second.append(r)  # the same again
        else:
            second.append(changed_version(r, how))
            changed.add(r.global_id)
    known = {r.global_id for r in data}
    new = [r for r in extra if r.global_id not in known]
    returned = await index.upsert([*second, *new], seen_at=2.0)
    assert [r.global_id for r in returned] == [
        r.global_id for r in [*second, *new] if r.global_id in changed or r.global_id not in known
    ]
    assert await index.upsert([*second, *new], seen_at=3.0) == []
    held = {r.global_id: r for r in await page_through(index, ListQuery(), list(Vendor), 100)}
    final = {r.global_id: r for r in [*data, *second, *new]}  # the last version of each
    assert held.keys() == final.keys()
    assert all(same(held[i], r) for i, r in final.items())
    for r in [*second, *new][:3]:
        got = await index.get(r.vendor, r.agent_id, r.native_id)
        assert got is not None and same(got, r)


@FEWER
@given(
    data=datasets,
    kept=st.sets(st.integers(0, 29)),
    vendor=st.sampled_from(list(Vendor)),
    by_agent=st.booleans(),
)
async def test_delete_unseen_removes_exactly_what_a_rescan_did_not_see(
    index: TaskIndex, data: list[TaskRecord], kept: set[int], vendor: Vendor, by_agent: bool
) -> None:
    await empty(index)
    await index.upsert(data, seen_at=1.0)
    seen = [r for i, r in enumerate(data) if i in kept]
    await index.upsert(seen, seen_at=5.0)
    agents = ["a1"] if by_agent else None
    gone = await index.delete_unseen(vendor, seen_before=5.0, agent_ids=agents)
    seen_ids = {r.global_id for r in seen}
    expected_gone = {
        r.global_id
        for r in data
        if r.vendor is vendor
        and r.global_id not in seen_ids
        and (agents is None or r.agent_id in agents)
    }
    assert {r.global_id for r in gone} == expected_gone
    left = await page_through(index, ListQuery(), list(Vendor), 50)
    assert {r.global_id for r in left} == {r.global_id for r in data} - expected_gone


def oracle_stats(
    data: Sequence[TaskRecord], query: ListQuery, vendors: Sequence[Vendor], by: Sequence[GroupBy]
) -> dict[tuple[str | None, ...], dict[str, Any]]:
    groups: dict[tuple[str | None, ...], dict[str, Any]] = {}
    for r in data:
        if not keeps(query, vendors, r):
            continue
        key: list[str | None] = []
        for dimension in by:
            if dimension is GroupBy.VENDOR:
                key.append(r.vendor.name)
            elif dimension is GroupBy.STATUS:
                key.append(r.status.value)
            elif dimension is GroupBy.AGENT:
                key.append(r.agent_id)
            else:
                key.append(
                    None
                    if r.updated_at is None
                    else r.updated_at.astimezone(UTC).strftime("%Y-%m-%d")
                )
        group = groups.setdefault(
            tuple(key),
            {
                "count": 0,
                "cost": 0.0,
                "tokens": 0,
                "with_metrics": 0,
                "duration": 0.0,
                "with_duration": 0,
            },
        )
        group["count"] += 1
        if r.metrics is not None:
            group["with_metrics"] += 1
            group["cost"] += r.metrics.total_cost or 0.0
            group["tokens"] += r.metrics.total_tokens or 0
        if r.created_at is not None and r.updated_at is not None:
            group["with_duration"] += 1
            group["duration"] += (r.updated_at - r.created_at) / timedelta(seconds=1)
    return groups


@EXAMPLES
@given(
    data=datasets,
    asked=queries(),
    by=st.lists(st.sampled_from(list(GroupBy)), unique=True, max_size=3),
)
async def test_stats_equal_the_oracle(
    index: TaskIndex,
    data: list[TaskRecord],
    asked: tuple[ListQuery, list[Vendor]],
    by: list[GroupBy],
) -> None:
    query, vendors = asked
    await empty(index)
    await index.upsert(data, seen_at=1.0)
    stats = await index.stats(query, vendors, by)
    want = oracle_stats(data, query, vendors, by)
    got = {tuple(g.key[d] for d in by): g for g in stats.groups}
    assert set(got) == set(want)
    assert stats.total == sum(g["count"] for g in want.values())
    for key, g in want.items():
        group = got[key]
        assert (group.count, group.total_tokens, group.with_metrics, group.with_duration) == (
            g["count"],
            g["tokens"],
            g["with_metrics"],
            g["with_duration"],
        )
        assert group.total_cost == pytest.approx(g["cost"], rel=1e-9, abs=1e-9)
        assert group.duration_seconds == pytest.approx(g["duration"], rel=1e-12, abs=1e-6)
    keys = [tuple("" if v is None else v for v in g.key.values()) for g in stats.groups]
    assert keys == sorted(keys)


async def test_stream_reads_everything_in_order(index: TaskIndex) -> None:
    await empty(index)
    data = [
        TaskRecord(
            vendor=vendor,
            native_id=f"n{i}",
            global_id=encode_id(TASK, vendor, f"n{i}"),
            agent_id=None,
            status=TaskStatus.RUNNING,
            vendor_status=None,
            title=None,
            summary=None,
            created_at=TIMES[i % 3],
            updated_at=None if i % 5 == 0 else TIMES[i % 4],
        )
        for vendor in Vendor
        for i in range(40)
    ]
    await index.upsert(data, seen_at=1.0)
    query = ListQuery()
    streamed = [r.global_id async for r in index.stream(query, list(Vendor), batch=7)]
    assert streamed == expected(data, query, list(Vendor))


async def test_sync_state_round_trips(index: TaskIndex) -> None:
    await empty(index)
    assert await index.load_state(Vendor.ORQ) == SyncState()
    state = SyncState(
        state={"watermark": "2025-03-01T12:00:00Z", "pages": [1, 2]},
        first_sync_done=True,
        first_sync_progress=0.5,
        synced_at=1234.5,
        last_error="upstream said \x00 no",
        last_error_at=1200.25,
    )
    await index.save_state(Vendor.ORQ, state)
    await index.save_state(Vendor.ORQ, state)
    loaded = await index.load_state(Vendor.ORQ)
    assert replace(loaded, last_error=None) == replace(state, last_error=None)
    assert loaded.last_error is not None and loaded.last_error.startswith("upstream said")
    assert await index.load_state(Vendor.XPANDER) == SyncState()


async def test_vendor_counts(index: TaskIndex) -> None:
    await empty(index)
    data = [
        TaskRecord(Vendor.XPANDER, f"n{i}", encode_id(TASK, Vendor.XPANDER, "a1", f"n{i}"), "a1",
                   TaskStatus.PENDING, None, None, None, None, None)
        for i in range(3)
    ]  # fmt: skip
    await index.upsert(data, seen_at=1.0)
    assert await index.vendor_counts() == {
        Vendor.AGENTEX: 0,
        Vendor.XPANDER: 3,
        Vendor.ORQ: 0,
        Vendor.SUBNOTO: 0,
    }
