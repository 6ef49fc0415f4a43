"""The orq.ai simulator: ``GET /v2/agents/{agent_key}/tasks`` over real HTTP, against the
vendor's page (seed 003; no OpenAPI there, so the documented shape is checked field by
field): cursor paging both ways, ``limit`` 1..200, the comma-separated ``status`` filter
derived from ``state``, ``overall_total``, and Bearer auth.

Error bodies follow orq's error reference (https://docs.orq.ai/reference/errors):
``{"error": {"code", "message", "doc_url"}}``.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from gateway.core.records import Vendor
from gateway.sandbox import Sandbox
from tests.sandbox.conftest import ORQ_AUTH, get_json, orq_status, parse_time

STATUSES = ("inactive", "approval_required", "in_progress", "errored")  # the page's filter


ULID = re.compile(r"[0-7][0-9A-HJKMNP-TV-Z]{25}")


def url(agent: str) -> str:
    return f"/orq/v2/agents/{agent}/tasks"


def of_agent(sim: Sandbox, agent: str) -> list[dict[str, Any]]:
    tasks: list[dict[str, Any]] = sim.store(Vendor.ORQ)[agent]
    return tasks


def listing(http: httpx.Client, agent: str, **params: Any) -> dict[str, Any]:
    body: dict[str, Any] = get_json(http.get(url(agent), params=params, headers=ORQ_AUTH))
    assert set(body) == {"tasks", "overall_total"}
    return body


def forward(http: httpx.Client, agent: str, limit: int, **params: Any) -> list[dict[str, Any]]:
    """From the newest task on with ``starting_after`` the last id of each page."""
    rows: list[dict[str, Any]] = []
    cursor: dict[str, str] = {}
    while True:
        body = listing(http, agent, limit=limit, **params, **cursor)
        assert len(body["tasks"]) <= limit
        rows += body["tasks"]
        if len(body["tasks"]) < limit:
            assert len(rows) == body["overall_total"]
            return rows
        cursor = {"starting_after": body["tasks"][-1]["_id"]}


def assert_error(answer: httpx.Response, status: int, code: str | None = None) -> None:
    body = get_json(answer, status)
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"code", "message", "doc_url"}
    assert all(isinstance(error[key], str) and error[key] for key in error)
    if code is not None:
        assert error["code"] == code


# -- limit -----------------------------------------------------------------------------------


@pytest.mark.parametrize("limit", ["0", "201", "-1", "ten", "1000"])
def test_a_limit_out_of_range_is_400(http: httpx.Client, sim: Sandbox, limit: str) -> None:
    answer = http.get(url(sim.agents(Vendor.ORQ)[0]), params={"limit": limit}, headers=ORQ_AUTH)
    assert_error(answer, 400, "invalid_request_body")


def test_the_limit_bounds_and_default(http: httpx.Client, sim: Sandbox) -> None:
    agent = sim.agents(Vendor.ORQ)[0]
    total = len(of_agent(sim, agent))
    assert total > 10
    assert len(listing(http, agent)["tasks"]) == 10
    assert len(listing(http, agent, limit=1)["tasks"]) == 1
    everything = listing(http, agent, limit=200)
    assert len(everything["tasks"]) == everything["overall_total"] == total


# -- cursors ---------------------------------------------------------------------------------


def test_starting_after_pages_through_every_task_once_newest_first(
    http: httpx.Client, sim: Sandbox
) -> None:
    for agent in sim.agents(Vendor.ORQ):
        rows = forward(http, agent, 4)
        ids = [r["_id"] for r in rows]
        assert len(ids) == len(set(ids))
        assert set(ids) == {t["_id"] for t in of_agent(sim, agent)}
        assert ids == sorted(ids, reverse=True)  # ULIDs: newest first
        created = [parse_time(r["created"]) for r in rows]
        assert created == sorted(created, reverse=True)
        assert rows == listing(http, agent, limit=200)["tasks"] == forward(http, agent, 7)


def test_ending_before_pages_back_to_the_newest(http: httpx.Client, sim: Sandbox) -> None:
    agent = sim.agents(Vendor.ORQ)[1]
    ids = [r["_id"] for r in forward(http, agent, 50)]
    # From the oldest task back up: each page is the `limit` tasks just newer than the cursor.
    pages: list[list[str]] = []
    cursor = ids[-1]
    while True:
        page = [t["_id"] for t in listing(http, agent, limit=4, ending_before=cursor)["tasks"]]
        if not page:
            break
        assert page == sorted(page, reverse=True)
        pages.append(page)
        cursor = page[0]
    backwards = [i for page in reversed(pages) for i in page]
    assert [*backwards, ids[-1]] == ids
    assert all(len(page) == 4 for page in pages[:-1])


def test_the_two_cursors_are_inverse_moves(http: httpx.Client, sim: Sandbox) -> None:
    agent = sim.agents(Vendor.ORQ)[2]
    ids = [r["_id"] for r in forward(http, agent, 50)]
    after = listing(http, agent, limit=3, starting_after=ids[5])["tasks"]
    assert [t["_id"] for t in after] == ids[6:9]
    before = listing(http, agent, limit=3, ending_before=ids[5])["tasks"]
    assert [t["_id"] for t in before] == ids[2:5]
    # Near the ends a page is short, and past them empty; the total stays the total.
    assert [t["_id"] for t in listing(http, agent, limit=3, ending_before=ids[1])["tasks"]] == [
        ids[0]
    ]
    assert listing(http, agent, limit=3, ending_before=ids[0])["tasks"] == []
    last = listing(http, agent, limit=3, starting_after=ids[-1])
    assert last["tasks"] == [] and last["overall_total"] == len(ids)


# -- status ----------------------------------------------------------------------------------


@pytest.mark.parametrize("status", STATUSES)
def test_a_single_status(http: httpx.Client, sim: Sandbox, status: str) -> None:
    seen = 0
    for agent in sim.agents(Vendor.ORQ):
        body = listing(http, agent, status=status, limit=200)
        expected = [t["_id"] for t in of_agent(sim, agent) if orq_status(t["state"]) == status]
        assert [t["_id"] for t in body["tasks"]] == expected
        assert body["overall_total"] == len(expected)
        assert {orq_status(t["state"]) for t in body["tasks"]} <= {status}
        seen += len(expected)
    assert seen, f"no {status} task in the data"


@pytest.mark.parametrize(
    "statuses",
    [
        ("errored", "approval_required"),
        ("inactive", "in_progress"),
        ("in_progress", "errored", "inactive"),
        STATUSES,
    ],
)
def test_a_comma_separated_status_list(
    http: httpx.Client, sim: Sandbox, statuses: tuple[str, ...]
) -> None:
    agent = sim.agents(Vendor.ORQ)[0]
    body = listing(http, agent, status=",".join(statuses), limit=200)
    expected = [t["_id"] for t in of_agent(sim, agent) if orq_status(t["state"]) in statuses]
    assert [t["_id"] for t in body["tasks"]] == expected
    assert body["overall_total"] == len(expected)
    # The filter combines with the cursor: paging the filtered list yields it exactly.
    assert [t["_id"] for t in forward(http, agent, 3, status=",".join(statuses))] == expected


def test_the_status_is_derived_from_state_with_the_documented_precedence(
    http: httpx.Client, sim: Sandbox
) -> None:
    tasks = [t for agent in sim.agents(Vendor.ORQ) for t in of_agent(sim, agent)]
    # An error wins over waiting for approval, and over inactive.
    both = [t for t in tasks if t["state"]["error"] and t["state"]["waiting_for_approval"]]
    assert both, "the data should have a task both erroring and waiting for approval"
    errored = listing(http, both[0]["agent_manifest_snapshot"]["key"], status="errored", limit=200)
    assert both[0]["_id"] in {t["_id"] for t in errored["tasks"]}
    waiting = listing(
        http, both[0]["agent_manifest_snapshot"]["key"], status="approval_required", limit=200
    )
    assert both[0]["_id"] not in {t["_id"] for t in waiting["tasks"]}


@pytest.mark.parametrize("status", ["running", "ERRORED", "errored,done"])
def test_an_unknown_status_is_400(http: httpx.Client, sim: Sandbox, status: str) -> None:
    answer = http.get(url(sim.agents(Vendor.ORQ)[0]), params={"status": status}, headers=ORQ_AUTH)
    assert_error(answer, 400, "invalid_request_body")


def test_an_unknown_agent_has_no_tasks(http: httpx.Client) -> None:
    assert listing(http, "no-such-agent") == {"tasks": [], "overall_total": 0}


# -- auth ------------------------------------------------------------------------------------


def test_no_authorization_header_is_401(http: httpx.Client, sim: Sandbox) -> None:
    assert_error(http.get(url(sim.agents(Vendor.ORQ)[0])), 401, "authentication_required")


@pytest.mark.parametrize(
    "value",
    ["Bearer wrong", ORQ_AUTH["authorization"].split(" ", 1)[1], "Basic abc", "Bearer"],
    ids=["wrong-token", "no-scheme", "basic", "no-token"],
)
def test_a_wrong_token_is_401(http: httpx.Client, sim: Sandbox, value: str) -> None:
    answer = http.get(url(sim.agents(Vendor.ORQ)[0]), headers={"authorization": value})
    assert_error(answer, 401)


# -- the documented task shape, field by field ----------------------------------------------


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _text(value: Any) -> bool:
    return isinstance(value, str)


def test_every_task_has_the_documented_shape(http: httpx.Client, sim: Sandbox) -> None:
    body = listing(http, sim.agents(Vendor.ORQ)[0], limit=200)
    assert isinstance(body["overall_total"], int)
    assert body["tasks"]
    for task in body["tasks"]:
        assert set(task) == {
            "_id",
            "agent_manifest_snapshot",
            "created_by_id",
            "updated_by_id",
            "created",
            "updated",
            "name",
            "workspace_id",
            "memory",
            "metadata",
            "state",
            "metrics",
        }
        assert ULID.fullmatch(task["_id"])
        for key in ("created_by_id", "updated_by_id", "name", "workspace_id"):
            assert _text(task[key])
        assert parse_time(task["updated"]) >= parse_time(task["created"])
        assert set(task["memory"]) == {"entity_id"} and _text(task["memory"]["entity_id"])
        assert isinstance(task["metadata"], dict)

        manifest = task["agent_manifest_snapshot"]
        assert set(manifest) == {
            "_id",
            "key",
            "role",
            "description",
            "instructions",
            "system_prompt",
            "model",
            "settings",
            "project_id",
        }
        assert manifest["key"] == sim.agents(Vendor.ORQ)[0]
        for key in ("_id", "role", "description", "instructions", "system_prompt", "project_id"):
            assert _text(manifest[key])
        model = manifest["model"]
        assert set(model) == {
            "id",
            "integration_id",
            "fallback_models",
            "max_tokens",
            "temperature",
        }
        assert _text(model["id"]) and (
            model["integration_id"] is None or _text(model["integration_id"])
        )
        assert isinstance(model["fallback_models"], list)
        assert all(_text(m) for m in model["fallback_models"])
        assert _number(model["max_tokens"]) and _number(model["temperature"])
        settings = manifest["settings"]
        assert set(settings) == {
            "max_execution_time",
            "max_iterations",
            "tool_approval_required",
            "tools",
        }
        assert _number(settings["max_execution_time"]) and _number(settings["max_iterations"])
        assert _text(settings["tool_approval_required"]) and isinstance(settings["tools"], list)

        state = task["state"]
        assert set(state) == {
            "waiting_for_approval",
            "inactive",
            "error",
            "iteration",
            "accumulated_execution_time",
        }
        assert isinstance(state["waiting_for_approval"], bool)
        assert isinstance(state["inactive"], bool)
        assert state["error"] is None or _text(state["error"])
        assert _number(state["iteration"]) and _number(state["accumulated_execution_time"])

        metrics = task["metrics"]
        assert set(metrics) == {
            "input_cost",
            "output_cost",
            "total_cost",
            "prompt_tokens",
            "completion_tokens",
            "total_tokens",
        }
        assert all(_number(v) and v >= 0 for v in metrics.values())
        assert metrics["total_tokens"] == metrics["prompt_tokens"] + metrics["completion_tokens"]
