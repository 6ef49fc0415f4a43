"""What only xpander has: its filters on user, parent and delegating agent, pushed down and
applied by xpander itself. Against the sandbox over real loopback HTTP."""

from __future__ import annotations

from gateway.core.contract import ListQuery
from gateway.core.records import Vendor
from gateway.sandbox import Sandbox
from tests.vendors.conftest import Make
from tests.vendors.normalized import expected, read_query


async def test_xpander_filters_really_reach_xpander(make: Make, sb: Sandbox) -> None:
    connector = make(Vendor.XPANDER)
    tasks = expected(sb, Vendor.XPANDER).values()
    child = next(t for t in tasks if t.parent_native_id is not None)
    user = next(t.user_id for t in tasks if t.user_id is not None)
    assert child.parent_native_id is not None and child.triggering_agent_id is not None
    for query, want in (
        (
            ListQuery(parent_task_id=child.parent_native_id),
            {t.native_id for t in tasks if t.parent_native_id == child.parent_native_id},
        ),
        (
            ListQuery(triggering_agent_id=child.triggering_agent_id),
            {t.native_id for t in tasks if t.triggering_agent_id == child.triggering_agent_id},
        ),
        (ListQuery(user_id=user), {t.native_id for t in tasks if t.user_id == user}),
    ):
        assert {r.native_id for r in await read_query(connector, query)} == want
