"""The Subnoto simulator: ``POST /public/agent-task/list`` over real HTTP, against the
vendor's page (seed 004; no OpenAPI there, so the documented shapes are checked field by
field): body validation with its error envelope and codes, ``stateFilter``, ``sortOrder``,
and the ``pagination`` block."""

from __future__ import annotations

import math
from typing import Any

import httpx
import pytest

from gateway.core.records import Vendor
from gateway.sandbox import Sandbox, SandboxOptions
from tests.sandbox.conftest import SUBNOTO_AUTH, SUBNOTO_LIST, get_json, parse_time

STATES = ("working", "complete", "idle", "failure")
MAX_SAFE_INTEGER = 2**53 - 1


def store(sim: Sandbox) -> list[dict[str, Any]]:
    tasks: list[dict[str, Any]] = sim.store(Vendor.SUBNOTO)
    return tasks


def post(http: httpx.Client, body: Any, headers: dict[str, str] = SUBNOTO_AUTH) -> httpx.Response:
    return http.post(SUBNOTO_LIST, json=body, headers=headers)


def listing(http: httpx.Client, **body: Any) -> dict[str, Any]:
    answer: dict[str, Any] = get_json(post(http, body))
    assert set(answer) == {"tasks", "pagination"}
    return answer


def page_through(http: httpx.Client, limit: int, **body: Any) -> list[dict[str, Any]]:
    """Follow ``nextPage`` from page 1, checking the pagination block on every page."""
    rows: list[dict[str, Any]] = []
    page: int | None = 1
    while page is not None:
        answer = listing(http, page=page, limit=limit, **body)
        pagination = answer["pagination"]
        assert set(pagination) == {
            "totalRecords",
            "currentPage",
            "totalPages",
            "nextPage",
            "prevPage",
        }
        total = pagination["totalRecords"]
        assert pagination["currentPage"] == page
        assert pagination["totalPages"] == max(1, math.ceil(total / limit))
        assert pagination["prevPage"] == (page - 1 if page > 1 else None)
        last = page >= pagination["totalPages"]
        assert pagination["nextPage"] == (None if last else page + 1)
        assert len(answer["tasks"]) == (limit if not last else total - (page - 1) * limit)
        rows += answer["tasks"]
        page = pagination["nextPage"]
    assert len(rows) == total
    return rows


def assert_envelope(answer: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """Subnoto's error envelope, every documented field with its type."""
    body: dict[str, Any] = get_json(answer, status)
    assert set(body) == {"statusCode", "error", "requestId", "timestamp", "path"}
    assert body["statusCode"] == status
    assert isinstance(body["requestId"], str) and body["requestId"]
    parse_time(body["timestamp"])
    assert body["path"] == "/public/agent-task/list"
    error = body["error"]
    assert {"code", "message", "suggestion", "documentationUrl"} <= set(error)
    assert set(error) <= {"code", "message", "suggestion", "documentationUrl", "details"}
    assert error["code"] == code
    for key in ("message", "suggestion", "documentationUrl"):
        assert isinstance(error[key], str) and error[key]
    for detail in error.get("details", []):
        assert set(detail) == {"path", "message"}
        assert isinstance(detail["path"], list) and all(isinstance(p, str) for p in detail["path"])
        assert isinstance(detail["message"], str) and detail["message"]
    return body


# -- body validation -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 51}, "limit"),
        ({"limit": "10"}, "limit"),
        ({"limit": 2.5}, "limit"),
        ({"limit": True}, "limit"),
        ({"page": 0}, "page"),
        ({"page": -3}, "page"),
        ({"page": "2"}, "page"),
        ({"page": MAX_SAFE_INTEGER + 1}, "page"),
        ({"page": None}, "page"),
        ({"stateFilter": "working"}, "stateFilter"),
        ({"stateFilter": ["done"]}, "stateFilter"),
        ({"stateFilter": ["working", "WORKING"]}, "stateFilter"),
        ({"sortOrder": "up"}, "sortOrder"),
        ({"sortOrder": "DESC"}, "sortOrder"),
        ({"state": ["working"]}, "state"),
        ([], None),
        ("list", None),
    ],
)
def test_an_invalid_body_is_400_invalid_request_format_with_details(
    http: httpx.Client, body: Any, field: str | None
) -> None:
    error = assert_envelope(post(http, body), 400, "INVALID_REQUEST_FORMAT")["error"]
    assert error["details"], "a validation error lists its issues"
    if field is not None:
        assert field in {d["path"][0] for d in error["details"] if d["path"]}


def test_a_body_that_is_not_json_is_400(http: httpx.Client) -> None:
    answer = http.post(
        SUBNOTO_LIST,
        content=b'{"page": ',
        headers={**SUBNOTO_AUTH, "content-type": "application/json"},
    )
    assert_envelope(answer, 400, "INVALID_REQUEST_FORMAT")


def test_every_issue_is_reported(http: httpx.Client) -> None:
    error = assert_envelope(
        post(http, {"limit": 99, "sortOrder": "sideways"}), 400, "INVALID_REQUEST_FORMAT"
    )["error"]
    assert {d["path"][0] for d in error["details"]} == {"limit", "sortOrder"}


def test_the_bounds_themselves_and_the_defaults_are_accepted(
    http: httpx.Client, sim: Sandbox
) -> None:
    total = len(store(sim))
    assert total > 50
    default = listing(http)
    assert len(default["tasks"]) == 50
    assert default["pagination"]["currentPage"] == 1
    assert default["pagination"]["totalRecords"] == total
    assert listing(http, stateFilter=[])["pagination"]["totalRecords"] == total
    assert len(listing(http, limit=1)["tasks"]) == 1
    far = listing(http, page=MAX_SAFE_INTEGER, limit=50)
    assert far["tasks"] == [] and far["pagination"]["nextPage"] is None
    assert far["pagination"]["currentPage"] == MAX_SAFE_INTEGER


# -- order and paging -----------------------------------------------------------------------


@pytest.mark.parametrize("order", ["asc", "desc", None])
def test_paging_yields_every_task_once_in_report_time_order(
    http: httpx.Client, sim: Sandbox, order: str | None
) -> None:
    body = {"sortOrder": order} if order else {}
    rows = page_through(http, 7, **body)
    uuids = [t["taskUuid"] for t in rows]
    assert len(uuids) == len(set(uuids)) and set(uuids) == {t["taskUuid"] for t in store(sim)}
    stamps = [t["latestReport"]["timestamp"] for t in rows]
    assert stamps == sorted(stamps, reverse=order != "asc")  # desc is the default
    # Tied timestamps keep one order whatever the page size.
    assert rows == page_through(http, 50, **body) == page_through(http, 1, **body)


def test_the_two_sort_orders_are_reverses_except_within_ties(
    http: httpx.Client,
) -> None:
    asc = page_through(http, 50, sortOrder="asc")
    desc = page_through(http, 50, sortOrder="desc")
    key = [t["latestReport"]["timestamp"] for t in asc]
    assert key == [t["latestReport"]["timestamp"] for t in reversed(desc)]


# -- stateFilter -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "states",
    [("working",), ("complete",), ("idle",), ("failure",), ("failure", "idle"), STATES],
)
def test_state_filter(http: httpx.Client, sim: Sandbox, states: tuple[str, ...]) -> None:
    rows = page_through(http, 9, stateFilter=list(states))
    expected = {t["taskUuid"] for t in store(sim) if t["latestReport"]["state"] in states}
    assert expected, f"no task in {states}"
    assert {t["taskUuid"] for t in rows} == expected
    assert {t["latestReport"]["state"] for t in rows} <= set(states)


def test_zero_records_is_one_page_without_neighbours(empty_url: str) -> None:
    answer = httpx.post(
        empty_url + SUBNOTO_LIST, json={"stateFilter": ["working"]}, headers=SUBNOTO_AUTH
    )
    assert get_json(answer) == {
        "tasks": [],
        "pagination": {
            "totalRecords": 0,
            "currentPage": 1,
            "totalPages": 1,
            "nextPage": None,
            "prevPage": None,
        },
    }


# -- auth ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"authorization": "Bearer wrong"},
        {"authorization": SUBNOTO_AUTH["authorization"].split(" ", 1)[1]},
        {"x-api-key": SUBNOTO_AUTH["authorization"].split(" ", 1)[1]},
    ],
    ids=["missing", "wrong", "no-scheme", "wrong-header"],
)
def test_a_missing_or_wrong_key_is_401_authentication_error(
    http: httpx.Client, headers: dict[str, str]
) -> None:
    assert_envelope(post(http, {}, headers=headers), 401, "AUTHENTICATION_ERROR")


def test_the_key_is_the_api_proxys_access_and_secret_pair(http: httpx.Client) -> None:
    """Production reaches Subnoto through its API proxy: ``Bearer ACCESS_KEY:SECRET_KEY``."""
    access, secret = SUBNOTO_AUTH["authorization"].split(" ", 1)[1].split(":")
    assert get_json(post(http, {}, headers=SUBNOTO_AUTH))["tasks"]
    for value in (
        access,
        secret,
        f"{access}:",
        f":{secret}",
        f"{access}:wrong",
        f"{secret}:{access}",
    ):
        refused = post(http, {}, headers={"authorization": f"Bearer {value}"})
        assert_envelope(refused, 401, "AUTHENTICATION_ERROR")
        assert "ACCESS_KEY:SECRET_KEY" in refused.json()["error"]["suggestion"]


def test_a_sandbox_key_for_subnoto_must_be_a_pair() -> None:
    with pytest.raises(ValueError, match="ACCESS_KEY:SECRET_KEY"):
        Sandbox(SandboxOptions(size=1), {Vendor.SUBNOTO: "one-plain-key"})
    assert Sandbox(SandboxOptions(size=1), {Vendor.SUBNOTO: "a:b"}).store(Vendor.SUBNOTO)


# -- the documented task shape, field by field ----------------------------------------------


def test_every_task_has_the_documented_shape(http: httpx.Client) -> None:
    for task in page_through(http, 50):
        assert set(task) == {"taskUuid", "reportCount", "latestReport"}
        assert isinstance(task["taskUuid"], str) and task["taskUuid"]
        count = task["reportCount"]
        assert isinstance(count, int) and not isinstance(count, bool)
        assert 0 <= count <= MAX_SAFE_INTEGER
        report = task["latestReport"]
        assert {"state", "summary", "timestamp", "author"} <= set(report)
        assert set(report) <= {"state", "summary", "link", "timestamp", "author"}
        assert report["state"] in STATES
        assert isinstance(report["summary"], str)
        if "link" in report:
            assert isinstance(report["link"], str)
        stamp = report["timestamp"]
        assert isinstance(stamp, int | float) and not isinstance(stamp, bool)
        assert 1_500_000_000_000 < stamp < 4_000_000_000_000  # unix milliseconds
        author = report["author"]
        assert set(author) == {"uuid", "email", "name"}
        assert isinstance(author["uuid"], str) and len(author["uuid"]) == 36
        assert isinstance(author["email"], str) and isinstance(author["name"], str)
