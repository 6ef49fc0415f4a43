"""The xpander.ai simulator: ``GET /v1/agents/{agent_id}/tasks`` over real HTTP, against the
vendor's page (seed 002): page/per_page bounds, filters, the status enum, newest first,
``total``/``total_pages``, and the ``x-api-key`` header."""

from __future__ import annotations

import math
from typing import Any

import httpx
import pytest

from gateway.core.records import Vendor
from gateway.sandbox import Sandbox
from tests.sandbox.conftest import XPANDER_KEY, get_json, parse_time

STATUSES = ("pending", "executing", "paused", "error", "failed", "completed", "stopped")
ITEM_FIELDS = {
    "id",
    "agent_id",
    "user_id",
    "parent_task_id",
    "triggering_agent_id",
    "organization_id",
    "status",
    "source_node_type",
    "created_at",
    "updated_at",
    "title",
    "result",
}


def url(agent: str) -> str:
    return f"/xpander/v1/agents/{agent}/tasks"


def everything(sim: Sandbox) -> list[dict[str, Any]]:
    return [t for tasks in sim.store(Vendor.XPANDER).values() for t in tasks]


def of_agent(sim: Sandbox, agent: str) -> list[dict[str, Any]]:
    return [t for t in everything(sim) if t["agent_id"] == agent]


def listing(http: httpx.Client, agent: str, **params: Any) -> dict[str, Any]:
    body: dict[str, Any] = get_json(http.get(url(agent), params=params, headers=XPANDER_KEY))
    return body


def page_through(http: httpx.Client, agent: str, per_page: int, **params: Any) -> list[Any]:
    rows: list[Any] = []
    page = 1
    while True:
        body = listing(http, agent, page=page, per_page=per_page, **params)
        assert body["page"] == page and body["per_page"] == per_page
        pages = math.ceil(body["total"] / per_page)
        # xpander does not say how many pages an empty result has: 0 or 1 are both sane.
        assert body["total_pages"] == pages or (pages == 0 and body["total_pages"] == 1)
        if page < body["total_pages"]:
            assert len(body["items"]) == per_page
        rows += body["items"]
        if page >= max(1, body["total_pages"]):
            assert len(rows) == body["total"]
            return rows
        page += 1


# -- paging ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value", "error_type"),
    [
        ("page", "0", "greater_than_equal"),
        ("page", "-1", "greater_than_equal"),
        ("page", "one", "int_parsing"),
        ("per_page", "0", "greater_than_equal"),
        ("per_page", "51", "less_than_equal"),
        ("per_page", "1000", "less_than_equal"),
        ("per_page", "1.5", "int_parsing"),
    ],
)
def test_paging_parameters_out_of_bounds_are_fastapi_422(
    http: httpx.Client, sim: Sandbox, name: str, value: str, error_type: str
) -> None:
    answer = http.get(url(sim.agents(Vendor.XPANDER)[0]), params={name: value}, headers=XPANDER_KEY)
    detail = get_json(answer, 422)["detail"]
    assert isinstance(detail, list) and detail[0]["loc"] == ["query", name]
    assert detail[0]["type"] == error_type and isinstance(detail[0]["msg"], str)


def test_the_bounds_themselves_are_accepted_and_the_defaults_are_page_1_of_20(
    http: httpx.Client, sim: Sandbox
) -> None:
    agent = sim.agents(Vendor.XPANDER)[0]
    total = len(of_agent(sim, agent))
    default = listing(http, agent)
    assert (default["page"], default["per_page"], default["total"]) == (1, 20, total)
    assert len(default["items"]) == min(20, total)
    assert len(listing(http, agent, per_page=1)["items"]) == 1
    assert len(listing(http, agent, per_page=50)["items"]) == min(50, total)
    past = listing(http, agent, page=999, per_page=5)
    assert past["items"] == [] and past["total"] == total and past["page"] == 999


def test_paging_yields_every_task_of_the_agent_once_newest_first(
    http: httpx.Client, sim: Sandbox
) -> None:
    for agent in sim.agents(Vendor.XPANDER):
        rows = page_through(http, agent, 3)
        ids = [r["id"] for r in rows]
        assert len(ids) == len(set(ids))
        assert set(ids) == {t["id"] for t in of_agent(sim, agent)}
        created = [parse_time(r["created_at"]) for r in rows]
        assert created == sorted(created, reverse=True)
        # Tied creation times keep one order whatever the page size.
        assert rows == page_through(http, agent, 50) == page_through(http, agent, 7)


def test_an_unknown_agent_has_no_tasks(http: httpx.Client) -> None:
    body = listing(http, "00000000-0000-4000-8000-000000000000")
    assert body["items"] == [] and body["total"] == 0 and body["total_pages"] in (0, 1)


def test_items_have_exactly_the_documented_fields(http: httpx.Client, sim: Sandbox) -> None:
    for agent in sim.agents(Vendor.XPANDER):
        for item in page_through(http, agent, 50):
            assert set(item) == ITEM_FIELDS
            assert item["agent_id"] == agent and item["status"] in STATUSES
            for key in ("id", "organization_id"):
                assert isinstance(item[key], str)
            for key in ("user_id", "parent_task_id", "triggering_agent_id", "title", "result"):
                assert item[key] is None or isinstance(item[key], str)
            for key in ("created_at", "updated_at"):
                if item[key] is not None:
                    parse_time(item[key])


# -- filters ---------------------------------------------------------------------------------


@pytest.mark.parametrize("status", STATUSES)
def test_status_filter(http: httpx.Client, sim: Sandbox, status: str) -> None:
    seen = 0
    for agent in sim.agents(Vendor.XPANDER):
        rows = page_through(http, agent, 50, status=status)
        assert {r["status"] for r in rows} <= {status}
        expected = {t["id"] for t in of_agent(sim, agent) if t["status"] == status}
        assert {r["id"] for r in rows} == expected
        seen += len(rows)
    assert seen, f"no {status} task in the data"


@pytest.mark.parametrize("status", ["done", "COMPLETED", "running", ""])
def test_a_status_outside_the_enum_is_422(http: httpx.Client, sim: Sandbox, status: str) -> None:
    answer = http.get(
        url(sim.agents(Vendor.XPANDER)[0]), params={"status": status}, headers=XPANDER_KEY
    )
    detail = get_json(answer, 422)["detail"]
    assert detail[0]["loc"] == ["query", "status"] and detail[0]["type"] == "enum"


@pytest.mark.parametrize("field", ["user_id", "parent_task_id", "triggering_agent_id"])
def test_id_filters(http: httpx.Client, sim: Sandbox, field: str) -> None:
    values = {t[field] for t in everything(sim) if t[field]}
    assert values, f"no task has a {field}"
    for value in sorted(values)[:4]:
        for agent in sim.agents(Vendor.XPANDER):
            rows = page_through(http, agent, 50, **{field: value})
            expected = {t["id"] for t in of_agent(sim, agent) if t[field] == value}
            assert {r["id"] for r in rows} == expected
            assert all(r[field] == value for r in rows)
    agent = sim.agents(Vendor.XPANDER)[0]
    assert listing(http, agent, **{field: "no-such-id"})["total"] == 0


def test_sub_tasks_are_found_by_parent_and_triggering_agent(
    http: httpx.Client, sim: Sandbox
) -> None:
    by_id = {t["id"]: t for t in everything(sim)}
    child = next(t for t in everything(sim) if t["parent_task_id"])
    parent = by_id[child["parent_task_id"]]
    assert child["triggering_agent_id"] == parent["agent_id"]
    rows = page_through(
        http,
        child["agent_id"],
        50,
        parent_task_id=parent["id"],
        triggering_agent_id=parent["agent_id"],
    )
    assert child["id"] in {r["id"] for r in rows}
    assert all(
        r["parent_task_id"] == parent["id"] and r["triggering_agent_id"] == parent["agent_id"]
        for r in rows
    )


def test_filters_combine(http: httpx.Client, sim: Sandbox) -> None:
    task = next(t for t in everything(sim) if t["user_id"])
    rows = page_through(http, task["agent_id"], 50, user_id=task["user_id"], status=task["status"])
    expected = {
        t["id"]
        for t in of_agent(sim, task["agent_id"])
        if t["user_id"] == task["user_id"] and t["status"] == task["status"]
    }
    assert task["id"] in expected and {r["id"] for r in rows} == expected


# -- auth ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"x-api-key": "wrong"},
        {"x-api-key": ""},
        {"authorization": f"Bearer {XPANDER_KEY['x-api-key']}"},
    ],
    ids=["missing", "wrong", "empty", "key-in-the-wrong-header"],
)
def test_a_missing_or_wrong_api_key_is_401(
    http: httpx.Client, sim: Sandbox, headers: dict[str, str]
) -> None:
    answer = http.get(url(sim.agents(Vendor.XPANDER)[0]), headers=headers)
    body = get_json(answer, 401)
    assert set(body) == {"detail"} and isinstance(body["detail"], str)


def test_auth_is_checked_before_the_parameters(http: httpx.Client, sim: Sandbox) -> None:
    answer = http.get(url(sim.agents(Vendor.XPANDER)[0]), params={"per_page": 99})
    assert answer.status_code == 401
