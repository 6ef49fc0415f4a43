"""Each simulator behaves like its vendor's documented API, over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from gateway.core.records import Vendor
from gateway.core.statuses import AGENTEX_STATUS_MAP, orq_status
from gateway.sandbox import SANDBOX_CREDENTIALS, Sandbox, SandboxOptions
from gateway.sandbox.data import NIL_UUID, SUBNOTO_STATES, XPANDER_STATUSES
from tests.sandbox.conftest import NOW

XPANDER_KEY = {"x-api-key": SANDBOX_CREDENTIALS[Vendor.XPANDER]}
ORQ_AUTH = {"authorization": f"Bearer {SANDBOX_CREDENTIALS[Vendor.ORQ]}"}
SUBNOTO_AUTH = {"authorization": f"Bearer {SANDBOX_CREDENTIALS[Vendor.SUBNOTO]}"}


@pytest.fixture(scope="module")
def http(sandbox_server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sandbox_server, timeout=10) as client:
        yield client


# -- data ---------------------------------------------------------------------------------


def test_the_same_seed_gives_the_same_data() -> None:
    one = Sandbox(SandboxOptions(size=30, seed=9, now=NOW)).data
    two = Sandbox(SandboxOptions(size=30, seed=9, now=NOW)).data
    other = Sandbox(SandboxOptions(size=30, seed=10, now=NOW)).data
    assert (one.trackers, one.xpander, one.orq, one.subnoto) == (
        two.trackers,
        two.xpander,
        two.orq,
        two.subnoto,
    )
    assert one.trackers != other.trackers


def test_every_status_value_and_the_hard_cases_are_present(sim: Sandbox) -> None:
    agentex = {t["status"] for t in sim.store(Vendor.AGENTEX).values()}
    assert set(AGENTEX_STATUS_MAP) <= agentex and None in agentex and "reticulating" in agentex
    xpander = [t for ts in sim.store(Vendor.XPANDER).values() for t in ts]
    assert {t["status"] for t in xpander} == set(XPANDER_STATUSES)
    by_id = {t["id"]: t for t in xpander}
    children = [t for t in xpander if t["parent_task_id"]]
    assert children
    for child in children:
        parent = by_id[child["parent_task_id"]]
        assert child["triggering_agent_id"] == parent["agent_id"] != child["agent_id"]
    orq = [t for ts in sim.store(Vendor.ORQ).values() for t in ts]
    assert {orq_status(t["state"]) for t in orq} == {
        "in_progress",
        "approval_required",
        "inactive",
        "errored",
    }
    subnoto = sim.store(Vendor.SUBNOTO)
    assert {t["latestReport"]["state"] for t in subnoto} == set(SUBNOTO_STATES)
    assert NIL_UUID in {t["latestReport"]["author"]["uuid"] for t in subnoto}
    stamps = [t["latestReport"]["timestamp"] for t in subnoto]
    assert len(stamps) > len(set(stamps)), "no ties in timestamps"
    assert len(sim.agents(Vendor.XPANDER)) >= 3 and len(sim.agents(Vendor.ORQ)) >= 3


# -- Agentex ------------------------------------------------------------------------------


def agentex_pages(http: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    rows, page = [], 1
    while True:
        batch = http.get("/agentex/tracker", params={**params, "limit": 7, "page_number": page})
        assert batch.status_code == 200 and isinstance(batch.json(), list)
        rows += batch.json()
        if len(batch.json()) < 7:
            return rows
        page += 1


def test_agentex_pages_every_tracker_once_in_order(http, sim) -> None:
    for direction in ("desc", "asc"):
        rows = agentex_pages(http, order_by="updated_at", order_direction=direction)
        assert sorted(r["id"] for r in rows) == sorted(sim.store(Vendor.AGENTEX))
        times = [r["updated_at"] for r in rows]
        assert times == sorted(times, reverse=direction == "desc")


def test_agentex_filters_and_validation(http, sim) -> None:
    tracker = next(iter(sim.store(Vendor.AGENTEX).values()))
    found = http.get(
        "/agentex/tracker", params={"agent_id": tracker["agent_id"], "task_id": tracker["task_id"]}
    ).json()
    assert [t["id"] for t in found] == [tracker["id"]]
    for params in ({"limit": 0}, {"page_number": "x"}):
        bad = http.get("/agentex/tracker", params=params)
        assert bad.status_code == 422
        assert {"loc", "msg", "type"} <= set(bad.json()["detail"][0])


def test_agentex_put_semantics(http, sim) -> None:
    trackers = list(sim.store(Vendor.AGENTEX).values())
    tracker = next(t for t in trackers if t["status"] and t["status_reason"])
    events = sim.data.events[tracker["task_id"]]
    answer = http.put(f"/agentex/tracker/{tracker['id']}", json={"status": "done"})
    assert answer.status_code == 200
    # status_reason was omitted, so it is now null; the event cursor is unchanged.
    assert answer.json()["status_reason"] is None
    assert answer.json()["last_processed_event_id"] == tracker["last_processed_event_id"]
    listed = http.get("/agentex/tracker", params={"task_id": tracker["task_id"]}).json()
    assert listed[0]["status"] == "done"
    current = events.index(tracker["last_processed_event_id"])
    if current > 0:
        back = http.put(
            f"/agentex/tracker/{tracker['id']}", json={"last_processed_event_id": events[0]}
        )
        assert back.status_code == 400 and isinstance(back.json()["detail"], str)
    unknown_event = http.put(
        f"/agentex/tracker/{tracker['id']}", json={"last_processed_event_id": "nope"}
    )
    assert unknown_event.status_code == 400
    assert http.put("/agentex/tracker/unknown", json={}).status_code == 404
    assert http.put(f"/agentex/tracker/{tracker['id']}", json={"status": 3}).status_code == 422


def test_agentex_requires_its_key_when_one_is_configured() -> None:
    from gateway.serving import ServerThread

    locked = Sandbox(SandboxOptions(size=5), {**SANDBOX_CREDENTIALS, Vendor.AGENTEX: "k1"})
    with ServerThread(locked.app) as server:
        assert httpx.get(f"{server.url}/agentex/tracker").status_code == 401
        ok = httpx.get(f"{server.url}/agentex/tracker", headers={"authorization": "Bearer k1"})
        assert ok.status_code == 200


# -- xpander ------------------------------------------------------------------------------


def test_xpander_pages_newest_first_with_totals(http, sim) -> None:
    agent = sim.agents(Vendor.XPANDER)[0]
    rows, page = [], 1
    while True:
        body = http.get(
            f"/xpander/v1/agents/{agent}/tasks",
            params={"page": page, "per_page": 7},
            headers=XPANDER_KEY,
        ).json()
        assert set(body) == {"items", "total", "page", "per_page", "total_pages"}
        rows += body["items"]
        if page >= body["total_pages"]:
            break
        page += 1
    assert body["total"] == len(rows) == len(sim.store(Vendor.XPANDER)[agent])
    assert len({r["id"] for r in rows}) == len(rows)
    created = [r["created_at"] for r in rows]
    assert created == sorted(created, reverse=True)


def test_xpander_filters_bounds_and_auth(http, sim) -> None:
    agent = sim.agents(Vendor.XPANDER)[1]
    url = f"/xpander/v1/agents/{agent}/tasks"
    failed = http.get(url, params={"status": "failed", "per_page": 50}, headers=XPANDER_KEY)
    assert {t["status"] for t in failed.json()["items"]} == {"failed"}
    child = next(t for ts in sim.store(Vendor.XPANDER).values() for t in ts if t["parent_task_id"])
    subs = http.get(
        f"/xpander/v1/agents/{child['agent_id']}/tasks",
        params={"parent_task_id": child["parent_task_id"]},
        headers=XPANDER_KEY,
    )
    assert child["id"] in {t["id"] for t in subs.json()["items"]}
    assert all(t["parent_task_id"] == child["parent_task_id"] for t in subs.json()["items"])
    for params in ({"per_page": 51}, {"page": 0}, {"status": "sleeping"}):
        assert http.get(url, params=params, headers=XPANDER_KEY).status_code == 422
    denied = http.get(url, headers={"x-api-key": "wrong"})
    assert denied.status_code == 401 and "detail" in denied.json()


# -- orq ----------------------------------------------------------------------------------


def test_orq_cursors_in_both_directions(http, sim) -> None:
    agent = sim.agents(Vendor.ORQ)[0]
    url = f"/orq/v2/agents/{agent}/tasks"
    rows, after = [], None
    while True:
        params = {"limit": 8, **({"starting_after": after} if after else {})}
        body = http.get(url, params=params, headers=ORQ_AUTH).json()
        assert set(body) == {"tasks", "overall_total"}
        rows += body["tasks"]
        if len(body["tasks"]) < 8:
            break
        after = body["tasks"][-1]["_id"]
    ids = [t["_id"] for t in rows]
    assert ids == sorted(ids, reverse=True) and len(ids) == body["overall_total"]
    before = http.get(url, params={"limit": 3, "ending_before": ids[5]}, headers=ORQ_AUTH)
    assert [t["_id"] for t in before.json()["tasks"]] == ids[2:5]
    task = rows[0]
    for key in (
        "_id",
        "agent_manifest_snapshot",
        "created",
        "updated",
        "name",
        "workspace_id",
        "memory",
        "metadata",
        "state",
        "metrics",
        "created_by_id",
        "updated_by_id",
    ):
        assert key in task
    assert set(task["metrics"]) == {
        "input_cost",
        "output_cost",
        "total_cost",
        "prompt_tokens",
        "completion_tokens",
        "total_tokens",
    }


def test_orq_status_filter_bounds_and_auth(http, sim) -> None:
    agent = sim.agents(Vendor.ORQ)[1]
    url = f"/orq/v2/agents/{agent}/tasks"
    body = http.get(
        url, params={"status": "errored,approval_required", "limit": 200}, headers=ORQ_AUTH
    ).json()
    assert {orq_status(t["state"]) for t in body["tasks"]} == {"errored", "approval_required"}
    assert body["overall_total"] == len(body["tasks"])
    for params in ({"limit": 0}, {"limit": 201}, {"status": "sleeping"}):
        bad = http.get(url, params=params, headers=ORQ_AUTH)
        assert bad.status_code == 400 and set(bad.json()) == {"code", "error"}
    assert http.get(url).status_code == 401


# -- Subnoto ------------------------------------------------------------------------------


def subnoto(
    http: httpx.Client, body: Any, headers: dict[str, str] = SUBNOTO_AUTH
) -> httpx.Response:
    return http.post("/subnoto/public/agent-task/list", json=body, headers=headers)


def test_subnoto_pages_sorted_with_its_pagination_block(http, sim) -> None:
    for order in ("desc", "asc"):
        rows, page = [], 1
        while page:
            body = subnoto(http, {"page": page, "limit": 13, "sortOrder": order}).json()
            pagination = body["pagination"]
            assert pagination["prevPage"] == (page - 1 if page > 1 else None)
            rows += body["tasks"]
            page = pagination["nextPage"]
        assert pagination["totalRecords"] == len(rows) == len(sim.store(Vendor.SUBNOTO))
        assert pagination["totalPages"] == -(-len(rows) // 13)
        stamps = [t["latestReport"]["timestamp"] for t in rows]
        assert stamps == sorted(stamps, reverse=order == "desc")
        assert len({t["taskUuid"] for t in rows}) == len(rows)
    task = rows[0]
    assert set(task) == {"taskUuid", "reportCount", "latestReport"}
    assert {"state", "summary", "timestamp", "author"} <= set(task["latestReport"])


def test_subnoto_filter_empty_result_and_errors(http) -> None:
    body = subnoto(http, {"stateFilter": ["failure", "idle"], "limit": 50}).json()
    assert {t["latestReport"]["state"] for t in body["tasks"]} == {"failure", "idle"}
    empty = subnoto(http, {"page": 999}).json()
    assert empty["tasks"] == [] and empty["pagination"]["nextPage"] is None
    for bad in ({"limit": 51}, {"stateFilter": ["done"]}, {"sortOrder": "up"}, {"x": 1}, [1]):
        answer = subnoto(http, bad)
        assert answer.status_code == 400
        envelope = answer.json()
        assert set(envelope) == {"statusCode", "error", "requestId", "timestamp", "path"}
        assert (
            envelope["error"]["code"] == "INVALID_REQUEST_FORMAT" and envelope["error"]["details"]
        )
    denied = subnoto(http, {}, headers={"authorization": "Bearer nope"})
    assert denied.status_code == 401
    assert denied.json()["error"]["code"] == "AUTHENTICATION_ERROR"


def test_advance_moves_live_tasks_on(http, sim) -> None:
    before = {t["id"]: t["status"] for t in sim.store(Vendor.AGENTEX).values()}
    assert sim.advance(2) > 0
    listed = agentex_pages(http)
    changed = [t for t in listed if t["status"] != before[t["id"]]]
    assert changed and all(t["status"] in ("running", "completed") for t in changed)
