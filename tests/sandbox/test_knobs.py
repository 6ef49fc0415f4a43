"""The knobs: latency, injected errors, 429 with Retry-After, a per-minute plan limit,
timeouts, malformed JSON, shuffled ties, the per-endpoint request counters, and task
progress; set in process (``sim.knobs(vendor)``) and over HTTP (``/<vendor>/_sandbox/...``)."""

from __future__ import annotations

import concurrent.futures
import time
from collections import Counter
from typing import Any

import httpx
import orjson
import pytest

from gateway.core.records import Vendor
from gateway.sandbox import Sandbox
from gateway.sandbox.knobs import RollingWindow
from tests.sandbox.conftest import (
    ORQ_AUTH,
    SUBNOTO_AUTH,
    SUBNOTO_LIST,
    XPANDER_KEY,
    get_json,
    orq_status,
    parse_time,
)

VENDORS = list(Vendor)
TEMPLATES = {
    Vendor.AGENTEX: "GET /tracker",
    Vendor.XPANDER: "GET /v1/agents/{agent_id}/tasks",
    Vendor.ORQ: "GET /v2/agents/{agent_key}/tasks",
    Vendor.SUBNOTO: "POST /public/agent-task/list",
}
KNOB_NAMES = {
    "latency_ms",
    "jitter_ms",
    "error_rate",
    "error_status",
    "rate_limit_rate",
    "retry_after_seconds",
    "timeout_rate",
    "malformed_rate",
    "fail_next",
    "per_minute",
    "shuffle_ties",
    "hang",
}
RATE_HEADERS = ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset")


def call(http: httpx.Client, sim: Sandbox, vendor: Vendor, **kwargs: Any) -> httpx.Response:
    """One authorised list request to the vendor."""
    if vendor is Vendor.AGENTEX:
        return http.get("/agentex/tracker", params={"limit": 5}, **kwargs)
    if vendor is Vendor.XPANDER:
        agent = sim.agents(vendor)[0]
        return http.get(f"/xpander/v1/agents/{agent}/tasks", headers=XPANDER_KEY, **kwargs)
    if vendor is Vendor.ORQ:
        return http.get(f"/orq/v2/agents/{sim.agents(vendor)[0]}/tasks", headers=ORQ_AUTH, **kwargs)
    return http.post(SUBNOTO_LIST, json={"limit": 5}, headers=SUBNOTO_AUTH, **kwargs)


def assert_vendor_error(vendor: Vendor, answer: httpx.Response, status: int) -> None:
    """The error body in the vendor's own shape."""
    body = get_json(answer, status)
    if vendor in (Vendor.AGENTEX, Vendor.XPANDER):  # FastAPI's HTTPException
        assert set(body) == {"detail"} and isinstance(body["detail"], str)
    elif vendor is Vendor.ORQ:  # docs.orq.ai/reference/errors
        assert set(body) == {"error"}
        assert set(body["error"]) == {"code", "message", "doc_url"}
    else:  # Subnoto's envelope
        assert {"statusCode", "error", "requestId", "timestamp", "path"} == set(body)
        assert body["statusCode"] == status
        assert {"code", "message", "suggestion", "documentationUrl"} <= set(body["error"])
        if status >= 500:
            assert body["error"]["code"] == "INTERNAL_SERVER_ERROR"


# -- latency ---------------------------------------------------------------------------------


@pytest.mark.parametrize("vendor", VENDORS, ids=lambda v: v.value)
def test_latency(http: httpx.Client, sim: Sandbox, vendor: Vendor) -> None:
    sim.knobs(vendor).latency_ms = 200
    started = time.perf_counter()
    assert call(http, sim, vendor).status_code == 200
    assert time.perf_counter() - started >= 0.19


def test_jitter_adds_to_the_latency(http: httpx.Client, sim: Sandbox) -> None:
    sim.knobs(Vendor.ORQ).latency_ms = 100
    sim.knobs(Vendor.ORQ).jitter_ms = 50
    started = time.perf_counter()
    assert call(http, sim, Vendor.ORQ).status_code == 200
    assert time.perf_counter() - started >= 0.095


# -- injected errors, 429, timeouts, malformed bodies ---------------------------------------


@pytest.mark.parametrize("vendor", VENDORS, ids=lambda v: v.value)
def test_error_rate_one_answers_the_chosen_status_in_the_vendors_shape(
    http: httpx.Client, sim: Sandbox, vendor: Vendor
) -> None:
    sim.knobs(vendor).error_rate = 1.0
    sim.knobs(vendor).error_status = 503
    for _ in range(3):
        assert_vendor_error(vendor, call(http, sim, vendor), 503)
    sim.knobs(vendor).error_status = 502
    assert_vendor_error(vendor, call(http, sim, vendor), 502)
    sim.knobs(vendor).error_rate = 0.0
    assert call(http, sim, vendor).status_code == 200


def test_an_error_rate_between_0_and_1_fails_some_requests(
    http: httpx.Client, sim: Sandbox
) -> None:
    sim.knobs(Vendor.XPANDER).error_rate = 0.5
    statuses = Counter(call(http, sim, Vendor.XPANDER).status_code for _ in range(40))
    assert set(statuses) == {200, 500}
    assert 5 <= statuses[500] <= 35


@pytest.mark.parametrize("vendor", VENDORS, ids=lambda v: v.value)
def test_rate_limit_is_429_with_retry_after(
    http: httpx.Client, sim: Sandbox, vendor: Vendor
) -> None:
    sim.knobs(vendor).rate_limit_rate = 1.0
    sim.knobs(vendor).retry_after_seconds = 7
    answer = call(http, sim, vendor)
    assert_vendor_error(vendor, answer, 429)
    assert answer.headers["retry-after"] == "7"


@pytest.mark.parametrize("vendor", VENDORS, ids=lambda v: v.value)
def test_timeout_never_answers(http: httpx.Client, sim: Sandbox, vendor: Vendor) -> None:
    sim.knobs(vendor).timeout_rate = 1.0
    started = time.perf_counter()
    with pytest.raises(httpx.ReadTimeout):
        call(http, sim, vendor, timeout=0.3)
    assert time.perf_counter() - started < 5
    # The hung request counted, and the simulator still answers once the knob is off.
    assert sim.counters(vendor) == {TEMPLATES[vendor]: 1}
    sim.knobs(vendor).timeout_rate = 0.0
    assert call(http, sim, vendor).status_code == 200


@pytest.mark.parametrize("vendor", VENDORS, ids=lambda v: v.value)
def test_hang_holds_requests_until_turned_off_then_answers_them(
    http: httpx.Client, sim: Sandbox, sim_url: str, vendor: Vendor
) -> None:
    shown = get_json(http.patch(f"/{vendor.value}/_sandbox/knobs", json={"hang": True}))
    assert shown["hang"] is True and sim.knobs(vendor).hang
    with pytest.raises(httpx.ReadTimeout):
        call(http, sim, vendor, timeout=0.3)  # held, not refused
    with (
        httpx.Client(base_url=sim_url, timeout=30) as other,
        concurrent.futures.ThreadPoolExecutor(1) as pool,
    ):
        held = pool.submit(call, other, sim, vendor)
        while sum(sim.counters(vendor).values()) < 2:  # the second request is in
            time.sleep(0.01)
        assert not held.done()
        sim.knobs(vendor).hang = False
        assert held.result().status_code == 200  # answered as usual once released
    assert http.patch(f"/{vendor.value}/_sandbox/knobs", json={"hang": 1}).status_code == 400


@pytest.mark.parametrize("vendor", VENDORS, ids=lambda v: v.value)
def test_malformed_is_a_200_whose_body_is_not_json(
    http: httpx.Client, sim: Sandbox, vendor: Vendor
) -> None:
    sim.knobs(vendor).malformed_rate = 1.0
    answer = call(http, sim, vendor)
    assert answer.status_code == 200 and answer.content
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(answer.content)
    with pytest.raises(ValueError):
        answer.json()


def test_malformed_leaves_error_bodies_alone(http: httpx.Client, sim: Sandbox) -> None:
    sim.knobs(Vendor.ORQ).malformed_rate = 1.0
    denied = http.get(f"/orq/v2/agents/{sim.agents(Vendor.ORQ)[0]}/tasks")
    assert denied.status_code == 401 and "error" in denied.json()


@pytest.mark.parametrize("vendor", VENDORS, ids=lambda v: v.value)
def test_fail_next_fails_exactly_that_many_requests(
    http: httpx.Client, sim: Sandbox, vendor: Vendor
) -> None:
    sim.knobs(vendor).fail_next = 2
    sim.knobs(vendor).error_status = 503
    statuses = [call(http, sim, vendor).status_code for _ in range(4)]
    assert statuses == [503, 503, 200, 200]
    assert sim.knobs(vendor).fail_next == 0
    assert sim.counters(vendor) == {TEMPLATES[vendor]: 4}


# -- the plan limit (orq's per-minute, rolling window) ---------------------------------------


@pytest.mark.parametrize("vendor", VENDORS, ids=lambda v: v.value)
def test_per_minute_refuses_the_request_past_the_limit_with_the_rate_headers(
    http: httpx.Client, sim: Sandbox, vendor: Vendor
) -> None:
    sim.knobs(vendor).per_minute = 3
    answers = [call(http, sim, vendor) for _ in range(5)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429, 429]
    for answer, remaining in zip(answers[:3], ("2", "1", "0"), strict=True):
        assert answer.headers["x-ratelimit-limit"] == "3"
        assert answer.headers["x-ratelimit-remaining"] == remaining
        assert "retry-after" not in answer.headers
    refused = answers[3]
    assert_vendor_error(vendor, refused, 429)
    assert refused.headers["x-ratelimit-limit"] == "3"
    assert refused.headers["x-ratelimit-remaining"] == "0"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    reset = int(refused.headers["x-ratelimit-reset"])
    assert time.time() - 1 <= reset <= time.time() + 61  # Unix seconds, within the window
    assert sim.counters(vendor) == {TEMPLATES[vendor]: 5}  # refused requests still arrive
    # Off again: no limit and no rate headers, and the window starts empty next time.
    sim.knobs(vendor).per_minute = 0
    free = call(http, sim, vendor)
    assert free.status_code == 200 and not set(RATE_HEADERS) & set(free.headers)
    sim.knobs(vendor).per_minute = 1
    assert call(http, sim, vendor).status_code == 200


def test_the_window_rolls_sixty_seconds_after_each_admitted_request() -> None:
    now = [1000.0]
    window = RollingWindow(clock=lambda: now[0])
    assert window.admit(2)[0] and window.admit(2)[0]
    now[0] += 30
    admitted, headers = window.admit(2)
    assert not admitted and headers["retry-after"] == "30"
    now[0] += 29.5
    assert not window.admit(2)[0]
    now[0] += 0.5  # 60 s after the first two: both leave the window together
    assert window.admit(2)[0] and window.admit(2)[0] and not window.admit(2)[0]


def test_per_minute_over_http(http: httpx.Client, sim: Sandbox) -> None:
    get_json(http.patch("/orq/_sandbox/knobs", json={"per_minute": 1}))
    assert [call(http, sim, Vendor.ORQ).status_code for _ in range(2)] == [200, 429]
    answer = http.patch("/orq/_sandbox/knobs", json={"per_minute": 1.5})
    assert answer.status_code == 400


# -- shuffled ties ---------------------------------------------------------------------------


def xpander_listing(http: httpx.Client, agent: str) -> list[str]:
    url = f"/xpander/v1/agents/{agent}/tasks"
    body = get_json(http.get(url, params={"per_page": 50}, headers=XPANDER_KEY))
    return [t["id"] for t in body["items"]]


def subnoto_listing(http: httpx.Client) -> list[str]:
    body = get_json(http.post(SUBNOTO_LIST, json={"limit": 50}, headers=SUBNOTO_AUTH))
    return [t["taskUuid"] for t in body["tasks"]]


def test_shuffle_ties_reorders_tied_rows_of_offset_paged_vendors_only(
    http: httpx.Client, sim: Sandbox
) -> None:
    agent = sim.agents(Vendor.XPANDER)[0]
    listings = {
        Vendor.XPANDER: lambda: xpander_listing(http, agent),
        Vendor.SUBNOTO: lambda: subnoto_listing(http),
    }
    for vendor, listing in listings.items():
        steady = listing()
        assert all(listing() == steady for _ in range(3)), "ties keep one order by default"
        sim.knobs(vendor).shuffle_ties = True
        shuffled = [listing() for _ in range(10)]
        assert any(order != steady for order in shuffled), vendor
        assert all(sorted(order) == sorted(steady) for order in shuffled)
    # orq pages by a cursor on unique ids: nothing to shuffle.
    sim.knobs(Vendor.ORQ).shuffle_ties = True
    url = f"/orq/v2/agents/{sim.agents(Vendor.ORQ)[0]}/tasks"
    first = get_json(http.get(url, params={"limit": 200}, headers=ORQ_AUTH))
    assert get_json(http.get(url, params={"limit": 200}, headers=ORQ_AUTH)) == first


def test_shuffle_ties_over_http(http: httpx.Client, sim: Sandbox) -> None:
    shown = get_json(http.patch("/subnoto/_sandbox/knobs", json={"shuffle_ties": True}))
    assert shown["shuffle_ties"] is True and sim.knobs(Vendor.SUBNOTO).shuffle_ties
    assert http.patch("/subnoto/_sandbox/knobs", json={"shuffle_ties": 1}).status_code == 400


# -- counters --------------------------------------------------------------------------------


def test_counters_are_per_route_template(http: httpx.Client, sim: Sandbox) -> None:
    trackers = list(sim.store(Vendor.AGENTEX))
    for _ in range(3):
        call(http, sim, Vendor.AGENTEX)
    http.put(f"/agentex/tracker/{trackers[0]}", json={"status": "running"})
    http.put("/agentex/tracker/no-such-tracker", json={})  # a 404 from the handler counts
    for agent in sim.agents(Vendor.XPANDER):  # one template for every agent id
        http.get(f"/xpander/v1/agents/{agent}/tasks", headers=XPANDER_KEY)
    assert sim.counters(Vendor.AGENTEX) == {"GET /tracker": 3, "PUT /tracker/{tracker_id}": 2}
    assert sim.counters(Vendor.XPANDER) == {
        "GET /v1/agents/{agent_id}/tasks": len(sim.agents(Vendor.XPANDER))
    }
    assert sim.counters(Vendor.ORQ) == {} and sim.counters(Vendor.SUBNOTO) == {}
    sim.reset_counters()
    assert all(sim.counters(v) == {} for v in Vendor)


def test_requests_are_counted_before_any_fault_or_auth_check(
    http: httpx.Client, sim: Sandbox
) -> None:
    knobs = sim.knobs(Vendor.SUBNOTO)
    knobs.error_rate = 1.0
    call(http, sim, Vendor.SUBNOTO)
    knobs.error_rate, knobs.rate_limit_rate = 0.0, 1.0
    call(http, sim, Vendor.SUBNOTO)
    knobs.rate_limit_rate = 0.0
    http.post(SUBNOTO_LIST, json={})  # no key: 401
    http.post(SUBNOTO_LIST, json={"limit": 0}, headers=SUBNOTO_AUTH)  # 400
    call(http, sim, Vendor.SUBNOTO)
    assert sim.counters(Vendor.SUBNOTO) == {TEMPLATES[Vendor.SUBNOTO]: 5}


def test_control_routes_and_unknown_paths_are_not_counted(http: httpx.Client, sim: Sandbox) -> None:
    http.get("/orq/_sandbox/knobs")
    http.get("/orq/_sandbox/counters")
    assert http.get("/orq/v2/nothing-here", headers=ORQ_AUTH).status_code == 404
    assert sim.counters(Vendor.ORQ) == {}


# -- the same over HTTP ----------------------------------------------------------------------


@pytest.mark.parametrize("vendor", VENDORS, ids=lambda v: v.value)
def test_knobs_over_http(http: httpx.Client, sim: Sandbox, vendor: Vendor) -> None:
    base = f"/{vendor.value}/_sandbox/knobs"
    shown = get_json(http.get(base))
    assert set(shown) == KNOB_NAMES
    assert shown["error_rate"] == 0 and shown["fail_next"] == 0

    patched = get_json(http.patch(base, json={"error_rate": 1, "error_status": 503}))
    assert patched["error_rate"] == 1 and patched["error_status"] == 503
    assert sim.knobs(vendor).error_rate == 1 and sim.knobs(vendor).error_status == 503
    assert_vendor_error(vendor, call(http, sim, vendor), 503)
    # The control routes themselves take no faults.
    assert get_json(http.get(base))["error_status"] == 503

    get_json(
        http.patch(base, json={"error_rate": 0, "rate_limit_rate": 1, "retry_after_seconds": 3})
    )
    limited = call(http, sim, vendor)
    assert limited.status_code == 429 and limited.headers["retry-after"] == "3"

    get_json(http.patch(base, json={"rate_limit_rate": 0, "fail_next": 2, "error_status": 500}))
    assert [call(http, sim, vendor).status_code for _ in range(3)] == [500, 500, 200]

    get_json(http.patch(base, json={"latency_ms": 200}))
    started = time.perf_counter()
    assert call(http, sim, vendor).status_code == 200
    assert time.perf_counter() - started >= 0.19

    get_json(http.patch(base, json={"latency_ms": 0, "malformed_rate": 1}))
    garbled = call(http, sim, vendor)
    assert garbled.status_code == 200
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(garbled.content)

    get_json(http.patch(base, json={"malformed_rate": 0, "timeout_rate": 1}))
    with pytest.raises(httpx.ReadTimeout):
        call(http, sim, vendor, timeout=0.3)


@pytest.mark.parametrize(
    "body",
    [{"nope": 1}, {"error_rate": 2}, {"error_rate": "high"}, {"error_status": 200}, [1], "x"],
)
def test_a_bad_knob_patch_is_400_and_changes_nothing(
    http: httpx.Client, sim: Sandbox, body: Any
) -> None:
    before = get_json(http.get("/xpander/_sandbox/knobs"))
    # A valid knob alongside a bad one: all or nothing.
    payload = {"latency_ms": 50, **body} if isinstance(body, dict) else body
    answer = http.patch("/xpander/_sandbox/knobs", json=payload)
    assert answer.status_code == 400 and isinstance(answer.json()["detail"], str)
    assert get_json(http.get("/xpander/_sandbox/knobs")) == before


@pytest.mark.parametrize("vendor", VENDORS, ids=lambda v: v.value)
def test_counters_over_http(http: httpx.Client, sim: Sandbox, vendor: Vendor) -> None:
    base = f"/{vendor.value}/_sandbox/counters"
    assert get_json(http.get(base)) == {}
    for _ in range(2):
        call(http, sim, vendor)
    sim.knobs(vendor).error_rate = 1.0
    call(http, sim, vendor)
    assert get_json(http.get(base)) == {TEMPLATES[vendor]: 3}
    assert get_json(http.delete(base)) == {}
    assert get_json(http.get(base)) == {} and sim.counters(vendor) == {}


def test_control_routes_need_no_credentials(http: httpx.Client) -> None:
    for vendor in (Vendor.XPANDER, Vendor.ORQ, Vendor.SUBNOTO):
        assert http.get(f"/{vendor.value}/_sandbox/knobs").status_code == 200
        assert http.get(f"/{vendor.value}/_sandbox/counters").status_code == 200


# -- progress --------------------------------------------------------------------------------


def states(http: httpx.Client, sim: Sandbox, vendor: Vendor) -> dict[str, tuple[Any, Any]]:
    """Every task's (status, last change) as the vendor's API shows it."""
    if vendor is Vendor.AGENTEX:
        rows = get_json(http.get("/agentex/tracker", params={"limit": 1000}))
        return {
            r["id"]: (r["status"], parse_time(r["updated_at"] or r["created_at"])) for r in rows
        }
    if vendor is Vendor.XPANDER:
        out = {}
        for agent in sim.agents(vendor):
            url = f"/xpander/v1/agents/{agent}/tasks"
            page = 1
            while True:
                body = get_json(
                    http.get(url, params={"page": page, "per_page": 50}, headers=XPANDER_KEY)
                )
                out.update(
                    {r["id"]: (r["status"], parse_time(r["updated_at"])) for r in body["items"]}
                )
                if page >= body["total_pages"]:
                    break
                page += 1
        return out
    if vendor is Vendor.ORQ:
        out = {}
        for agent in sim.agents(vendor):
            url = f"/orq/v2/agents/{agent}/tasks"
            rows = get_json(http.get(url, params={"limit": 200}, headers=ORQ_AUTH))["tasks"]
            out.update({r["_id"]: (orq_status(r["state"]), parse_time(r["updated"])) for r in rows})
        return out
    out = {}
    page: int | None = 1
    while page:
        body = get_json(http.post(SUBNOTO_LIST, json={"page": page}, headers=SUBNOTO_AUTH))
        out.update(
            {
                t["taskUuid"]: (t["latestReport"]["state"], t["latestReport"]["timestamp"])
                for t in body["tasks"]
            }
        )
        page = body["pagination"]["nextPage"]
    return out


def changed(
    before: dict[str, tuple[Any, Any]], after: dict[str, tuple[Any, Any]]
) -> dict[str, tuple[tuple[Any, Any], tuple[Any, Any]]]:
    assert set(before) == set(after)
    return {key: (before[key], after[key]) for key in before if before[key] != after[key]}


def test_advance_moves_some_tasks_of_every_vendor_on(http: httpx.Client, sim: Sandbox) -> None:
    before = {vendor: states(http, sim, vendor) for vendor in Vendor}
    moved = sim.advance(2)
    assert moved == 2 * len(VENDORS)
    for vendor in Vendor:
        moves = changed(before[vendor], states(http, sim, vendor))
        assert len(moves) == 2, vendor
        for (status, stamp), (new_status, new_stamp) in moves.values():
            assert new_status != status
            assert new_stamp > stamp  # and the change is dated later


def test_advance_over_http(http: httpx.Client, sim: Sandbox) -> None:
    for vendor in Vendor:
        before = states(http, sim, vendor)
        answer = get_json(http.post(f"/{vendor.value}/_sandbox/advance", params={"n": 1}))
        assert answer == {"advanced": 1}
        assert len(changed(before, states(http, sim, vendor))) == 1
