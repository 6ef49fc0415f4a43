"""Issue 15 end to end: nulls, ties across offset pages, totals and unreadable records.

Each test loads vendor records it builds into a sandbox of its own, then pages through
``Query.tasks`` over HTTP; the expected answer is computed here from those records (which
tasks, in which order by the rule "a missing time is null and sorts last, both ways"),
never by gateway code.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gateway.cli import demo_settings
from gateway.core.records import Vendor
from gateway.sandbox import Sandbox, SandboxOptions
from gateway.serving import ServerThread
from tests.conftest import GatewayClient, GatewayFactory, OwnSandbox

BASE = datetime(2026, 3, 1, 12, tzinfo=UTC)
DESC = {"field": "UPDATED_AT", "direction": "DESC"}
ASC = {"field": "UPDATED_AT", "direction": "ASC"}
CREATED_DESC = {"field": "CREATED_AT", "direction": "DESC"}
CREATED_ASC = {"field": "CREATED_AT", "direction": "ASC"}

PAGE = """
query Page(
  $first: Int, $after: String, $filter: TaskFilter, $order: TaskOrder, $fresh: Boolean! = false
) {
  tasks(first: $first, after: $after, filter: $filter, orderBy: $order, fresh: $fresh) {
    edges { cursor node { nativeId vendor createdAt updatedAt } }
    pageInfo { hasNextPage endCursor }
    missingVendors
  }
}
"""


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


def parse(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


@pytest.fixture(scope="module")
def own(make_gateway: GatewayFactory) -> Iterator[OwnSandbox]:
    sandbox = Sandbox(SandboxOptions(size=20, seed=5))
    with ServerThread(sandbox.app) as server:
        yield OwnSandbox(sandbox, server, make_gateway, demo_settings(server.url, sandbox))


@pytest.fixture
def own_sandbox(own: OwnSandbox) -> Iterator[Sandbox]:
    own.sandbox.reset_knobs()
    own.sandbox.reset_counters()
    yield own.sandbox
    own.sandbox.reset_knobs()


# -- vendor records -----------------------------------------------------------------------
def trackers(agents: list[str], count: int, distinct: int, null_every: int) -> list[dict]:
    """Agentex trackers with ``distinct`` update times (big tie groups) and a null
    ``updated_at`` every ``null_every``; creation times tie in threes."""
    rows = []
    for i in range(count):
        updated = None if i % null_every == 0 else BASE + timedelta(minutes=i % distinct)
        rows.append(
            {
                "id": f"trk-{i:04d}",
                "agent_id": agents[i % len(agents)],
                "task_id": f"task-{i:04d}",
                "status": None if i % 5 == 0 else "running",
                "status_reason": None,
                "last_processed_event_id": None,
                "created_at": iso(BASE - timedelta(days=1, minutes=i // 3)),
                "updated_at": iso(updated),
            }
        )
    return rows


def xpander_tasks(agents: list[str], count: int, distinct: int) -> list[dict]:
    """xpander tasks created at ``distinct`` instants per agent (ties across pages)."""
    rows = []
    for i in range(count):
        rows.append(
            {
                "id": f"xp-{i:04d}",
                "agent_id": agents[0],
                "user_id": None,
                "parent_task_id": None,
                "triggering_agent_id": None,
                "organization_id": "org",
                "status": "completed",
                "source_node_type": "api",
                "created_at": iso(BASE - timedelta(hours=i % distinct)),
                "updated_at": iso(BASE + timedelta(seconds=i)),
                "title": None,
                "result": None,
            }
        )
    return rows


def subnoto_tasks(count: int, distinct: int) -> list[dict]:
    """Subnoto tasks whose latest reports share ``distinct`` timestamps."""
    millis = int(BASE.timestamp() * 1000)
    return [
        {
            "taskUuid": f"sn-{i:04d}",
            "reportCount": 1,
            "latestReport": {
                "state": "working",
                "summary": "s",
                "timestamp": millis - 60_000 * (i % distinct),
                "author": {"uuid": "u", "email": "e@example.com", "name": "n"},
            },
        }
        for i in range(count)
    ]


def expected_agentex(rows: list[dict], order: dict[str, str]) -> list[tuple[str, datetime | None]]:
    return expected(
        [
            (
                r["task_id"],
                parse(r["created_at"] if order["field"] == "CREATED_AT" else r["updated_at"]),
            )
            for r in rows
        ],
        order,
    )


def expected(
    shown: list[tuple[str, datetime | None]], order: dict[str, str]
) -> list[tuple[str, datetime | None]]:
    """The oracle: dated tasks by time in the direction asked, then the null ones."""
    dated = sorted((s for s in shown if s[1] is not None), key=lambda s: s[1])
    if order["direction"] == "DESC":
        dated.reverse()
    return dated + [s for s in shown if s[1] is None]


def page_through(
    gateway: GatewayClient,
    first: int,
    order: dict[str, str],
    filter: dict[str, Any] | None = None,
    fresh: bool = False,
) -> list[dict[str, Any]]:
    """Every task, a page at a time; ``fresh``: every page read from the vendors again."""
    nodes: list[dict[str, Any]] = []
    after = None
    while True:
        variables = {"first": first, "after": after, "order": order, "filter": filter}
        data = gateway.data(PAGE, {**variables, "fresh": fresh})
        connection = data["tasks"]
        assert connection["missingVendors"] == []
        nodes.extend(edge["node"] for edge in connection["edges"])
        if not connection["pageInfo"]["hasNextPage"]:
            return nodes
        after = connection["pageInfo"]["endCursor"]


def assert_matches(
    nodes: list[dict[str, Any]], want: list[tuple[str, datetime | None]], field: str
) -> None:
    """Exactly the expected tasks, once each, in an order explained by the shown times
    (ties may come in any order)."""
    key = "createdAt" if field == "CREATED_AT" else "updatedAt"
    ids = [n["nativeId"] for n in nodes]
    assert len(ids) == len(set(ids)), "a task came twice"
    assert set(ids) == {w[0] for w in want}, "a task was lost or added"
    assert [parse(n[key]) for n in nodes] == [w[1] for w in want]


# -- 1. nulls -----------------------------------------------------------------------------
@pytest.mark.parametrize("order", [DESC, ASC], ids=["desc", "asc"])
@pytest.mark.parametrize("first", [1, 7, 60])
def test_agentex_null_updated_at_is_shown_null_and_sorted_last(
    own: OwnSandbox, own_sandbox: Sandbox, order: dict[str, str], first: int
) -> None:
    rows = trackers(own_sandbox.agents(Vendor.AGENTEX), 70, 70, 6)
    own_sandbox.load({Vendor.AGENTEX: rows})
    nodes = page_through(own.gateway(), first, order, {"vendors": ["AGENTEX"]})
    assert_matches(nodes, expected_agentex(rows, order), "UPDATED_AT")
    assert any(n["updatedAt"] is None for n in nodes)


@pytest.mark.parametrize("order", [DESC, ASC], ids=["desc", "asc"])
def test_a_time_filter_reads_past_agentex_nulls_and_never_matches_them(
    own: OwnSandbox, own_sandbox: Sandbox, order: dict[str, str]
) -> None:
    rows = trackers(own_sandbox.agents(Vendor.AGENTEX), 130, 130, 4)
    own_sandbox.load({Vendor.AGENTEX: rows})
    gateway = own.gateway()
    after = BASE + timedelta(minutes=40)
    before = BASE + timedelta(minutes=100)
    for time_filter in ({"updatedAfter": iso(after)}, {"updatedBefore": iso(before)}):
        filter = {"vendors": ["AGENTEX"], **time_filter}
        nodes = page_through(gateway, 9, order, filter)
        kept = [
            r
            for r in rows
            if r["updated_at"] is not None
            and ("updatedAfter" not in time_filter or parse(r["updated_at"]) >= after)
            and ("updatedBefore" not in time_filter or parse(r["updated_at"]) < before)
        ]
        assert kept
        assert_matches(nodes, expected_agentex(kept, order), "UPDATED_AT")
        total = gateway.data(
            "query($f: TaskFilter) { tasks(first: 1, filter: $f) { totalCount } }", {"f": filter}
        )
        assert total["tasks"]["totalCount"] == len(kept)


@pytest.mark.parametrize("order", [CREATED_DESC, CREATED_ASC], ids=["desc", "asc"])
def test_subnoto_tasks_have_no_creation_time_and_come_last_in_created_order(
    own: OwnSandbox, own_sandbox: Sandbox, order: dict[str, str]
) -> None:
    xp = xpander_tasks(own_sandbox.agents(Vendor.XPANDER), 30, 30)
    sn = subnoto_tasks(25, 25)
    own_sandbox.load({Vendor.XPANDER: xp, Vendor.SUBNOTO: sn})
    nodes = page_through(own.gateway(), 8, order, {"vendors": ["XPANDER", "SUBNOTO"]})
    shown = [(r["id"], parse(r["created_at"])) for r in xp] + [(r["taskUuid"], None) for r in sn]
    assert_matches(nodes, expected(shown, order), "CREATED_AT")
    assert {n["vendor"] for n in nodes[-25:]} == {"SUBNOTO"}


# -- 2. ties across offset pages --------------------------------------------------------
@pytest.mark.parametrize(("first", "fresh"), [(3, False), (20, True), (100, True)])
def test_reordered_ties_are_neither_repeated_nor_lost(
    own: OwnSandbox, own_sandbox: Sandbox, first: int, fresh: bool
) -> None:
    agentex = trackers(own_sandbox.agents(Vendor.AGENTEX), 160, 3, 9)  # groups > a page
    xp = xpander_tasks(own_sandbox.agents(Vendor.XPANDER), 140, 7)  # groups of 20
    sn = subnoto_tasks(130, 6)  # groups of ~22
    own_sandbox.load({Vendor.AGENTEX: agentex, Vendor.XPANDER: xp, Vendor.SUBNOTO: sn})
    for vendor in (Vendor.AGENTEX, Vendor.XPANDER, Vendor.SUBNOTO):
        own_sandbox.knobs(vendor).shuffle_ties = True
    gateway = own.gateway()
    for order in (DESC, ASC, CREATED_DESC, CREATED_ASC):
        filter = {"vendors": ["AGENTEX", "XPANDER", "SUBNOTO"]}
        nodes = page_through(gateway, first, order, filter, fresh)
        field = order["field"]
        created = field == "CREATED_AT"
        shown = [
            (r["task_id"], parse(r["created_at"] if created else r["updated_at"])) for r in agentex
        ]
        shown += [(r["id"], parse(r["created_at"] if created else r["updated_at"])) for r in xp]
        shown += [
            (
                r["taskUuid"],
                None
                if created
                else datetime.fromtimestamp(r["latestReport"]["timestamp"] / 1000, UTC),
            )
            for r in sn
        ]
        assert_matches(nodes, expected(shown, order), field)


# -- 3. totals from the page responses -------------------------------------------------------
def test_total_count_costs_no_call_of_its_own_where_the_vendor_gives_a_total(
    own: OwnSandbox, own_sandbox: Sandbox
) -> None:
    xp = xpander_tasks(own_sandbox.agents(Vendor.XPANDER), 120, 120)
    sn = subnoto_tasks(80, 80)
    own_sandbox.load({Vendor.XPANDER: xp, Vendor.SUBNOTO: sn})
    calls = {}
    for fields in (
        "nodes { id }",
        "totalCount nodes { id }",
        "... on TaskConnection { totalCount }",
    ):
        own_sandbox.reset_counters()
        data = own.gateway().data(f"{{ tasks(first: 50) {{ {fields} }} }}")
        calls[fields] = {
            v: sum(own_sandbox.counters(v).values())
            for v in (Vendor.XPANDER, Vendor.ORQ, Vendor.SUBNOTO)
        }
        if "totalCount" in fields:
            orq = sum(len(rows) for rows in own_sandbox.store(Vendor.ORQ).values())
            agentex = len(own_sandbox.store(Vendor.AGENTEX))
            assert data["tasks"]["totalCount"] == len(xp) + len(sn) + orq + agentex
    first, *others = calls.values()
    assert all(c == first for c in others), calls


# -- 4. trackers as a Relay connection ------------------------------------------------------
def test_trackers_page_with_edge_cursors_in_the_rule_of_order(
    own: OwnSandbox, own_sandbox: Sandbox
) -> None:
    rows = trackers(own_sandbox.agents(Vendor.AGENTEX), 75, 20, 5)
    own_sandbox.load({Vendor.AGENTEX: rows})
    own_sandbox.knobs(Vendor.AGENTEX).shuffle_ties = True
    gateway = own.gateway()
    query = """query($after: String) { trackers(first: 7, after: $after) {
        edges { cursor node { nativeId updatedAt } } nodes { nativeId }
        pageInfo { hasNextPage endCursor } } }"""
    seen: list[dict[str, Any]] = []
    after = None
    while True:
        connection = gateway.data(query, {"after": after})["trackers"]
        edges = connection["edges"]
        assert [e["node"]["nativeId"] for e in edges] == [
            n["nativeId"] for n in connection["nodes"]
        ]
        seen += [e["node"] for e in edges]
        if not connection["pageInfo"]["hasNextPage"]:
            break
        assert connection["pageInfo"]["endCursor"] == edges[-1]["cursor"]
        # any edge's cursor resumes right after it
        middle = gateway.data(query, {"after": edges[2]["cursor"]})["trackers"]["edges"]
        assert middle[0]["node"] == edges[3]["node"]
        after = connection["pageInfo"]["endCursor"]
    want = expected([(r["id"], parse(r["updated_at"])) for r in rows], DESC)
    assert [s["nativeId"] for s in seen] and len({s["nativeId"] for s in seen}) == len(rows)
    assert {s["nativeId"] for s in seen} == {w[0] for w in want}
    assert [parse(s["updatedAt"]) for s in seen] == [w[1] for w in want]


# -- 5. unreadable records are reported ----------------------------------------------------
PARTS = """{ tasks(first: 100, filter: {vendors: [XPANDER, SUBNOTO]}) {
  nodes { nativeId vendor } missingVendors
  vendorParts { vendor ok degraded skippedRecords errorCode } } }"""


@pytest.mark.parametrize("bad", [1, 7, 30])
def test_unreadable_records_are_counted_in_an_error_and_the_part(
    own: OwnSandbox, own_sandbox: Sandbox, bad: int
) -> None:
    xp = xpander_tasks(own_sandbox.agents(Vendor.XPANDER), 30, 30)
    for row in xp[:bad]:
        row["id"] = ""  # no id: the record cannot be read
    own_sandbox.load({Vendor.XPANDER: xp, Vendor.SUBNOTO: subnoto_tasks(5, 5)})
    body = own.gateway().query(PARTS)
    tasks = body["data"]["tasks"]
    parts = {p["vendor"]: p for p in tasks["vendorParts"]}
    [error] = body["errors"]
    assert error["extensions"] == {
        "code": "UPSTREAM_BAD_RECORDS",
        "vendor": "XPANDER",
        "count": bad,
    }
    assert str(bad) in error["message"] and error["path"] == ["tasks"]
    assert parts["XPANDER"]["degraded"] is True and parts["XPANDER"]["skippedRecords"] == bad
    assert parts["SUBNOTO"] == {
        "vendor": "SUBNOTO",
        "ok": True,
        "degraded": False,
        "skippedRecords": 0,
        "errorCode": None,
    }
    readable = {r["id"] for r in xp[bad:]}
    assert {n["nativeId"] for n in tasks["nodes"] if n["vendor"] == "XPANDER"} == readable
    if readable:
        assert tasks["missingVendors"] == [] and parts["XPANDER"]["ok"] is True
    else:  # nothing readable: an empty part would look complete
        assert tasks["missingVendors"] == ["XPANDER"]
        assert parts["XPANDER"]["ok"] is False
        assert parts["XPANDER"]["errorCode"] == "UPSTREAM_BAD_RECORDS"


@pytest.mark.parametrize("order", [DESC, ASC], ids=["desc", "asc"])
def test_the_page_that_ends_the_listing_says_so(
    own: OwnSandbox, own_sandbox: Sandbox, order: dict[str, str]
) -> None:
    """No empty page after the last task, null part included (known without a call)."""
    rows = trackers(own_sandbox.agents(Vendor.AGENTEX), 14, 14, 6)
    own_sandbox.load({Vendor.AGENTEX: rows})
    gateway = own.gateway()
    variables: dict[str, Any] = {"first": 7, "order": order, "filter": {"vendors": ["AGENTEX"]}}
    first = gateway.data(PAGE, variables)["tasks"]
    assert first["pageInfo"]["hasNextPage"] is True
    second = gateway.data(PAGE, {**variables, "after": first["pageInfo"]["endCursor"]})["tasks"]
    assert len(second["edges"]) == 7 and second["pageInfo"]["hasNextPage"] is False
    whole = gateway.data(PAGE, {**variables, "first": 14})["tasks"]
    assert len(whole["edges"]) == 14 and whole["pageInfo"]["hasNextPage"] is False


@pytest.mark.parametrize(
    "token", ["3x17", "abc", "g9.9", "g1.x", "g0.1", "g", "*", 0, -1, 10**12, True, [1], None]
)
def test_a_forged_position_in_a_cursor_is_refused_or_harmless(
    gateway: GatewayClient, token: object
) -> None:
    """Every source's position replaced: the answer is a page or INVALID_CURSOR, never a
    crash (page tokens, tie-group tokens and indexes alike)."""
    data = gateway.data(PAGE, {"first": 3})
    cursor = data["tasks"]["pageInfo"]["endCursor"]
    body = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    for index in (0, 7, 10**9):
        body["p"] = {key: [token, index] for key in body["p"]}
        forged = base64.urlsafe_b64encode(json.dumps(body).encode()).decode().rstrip("=")
        answer = gateway.query(PAGE, {"first": 3, "after": forged})
        for error in answer.get("errors", []):
            assert error["extensions"]["code"] == "INVALID_CURSOR", error
