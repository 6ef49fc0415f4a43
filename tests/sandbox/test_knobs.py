"""The sandbox's knobs: latency, errors, 429, timeouts, malformed JSON, counters; set in
process and over the HTTP control routes."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import orjson
import pytest

from gateway.core.records import Vendor
from gateway.sandbox import SANDBOX_CREDENTIALS

ORQ_AUTH = {"authorization": f"Bearer {SANDBOX_CREDENTIALS[Vendor.ORQ]}"}
SUBNOTO_AUTH = {"authorization": f"Bearer {SANDBOX_CREDENTIALS[Vendor.SUBNOTO]}"}


@pytest.fixture(scope="module")
def http(sandbox_server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sandbox_server, timeout=10) as client:
        yield client


def orq(http: httpx.Client, sim, **kwargs) -> httpx.Response:
    return http.get(f"/orq/v2/agents/{sim.agents(Vendor.ORQ)[0]}/tasks", headers=ORQ_AUTH, **kwargs)


def test_latency(http, sim) -> None:
    sim.knobs(Vendor.ORQ).latency_ms = 200
    started = time.perf_counter()
    assert orq(http, sim).status_code == 200
    assert time.perf_counter() - started >= 0.19


def test_errors_in_the_vendors_own_shape(http, sim) -> None:
    sim.knobs(Vendor.SUBNOTO).error_rate, sim.knobs(Vendor.SUBNOTO).error_status = 1.0, 503
    answer = http.post("/subnoto/public/agent-task/list", json={}, headers=SUBNOTO_AUTH)
    assert answer.status_code == 503 and answer.json()["statusCode"] == 503
    sim.knobs(Vendor.AGENTEX).error_rate = 1.0
    assert http.get("/agentex/tracker").json() == {"detail": "Injected failure"}


def test_rate_limit_with_retry_after(http, sim) -> None:
    sim.knobs(Vendor.ORQ).rate_limit_rate, sim.knobs(Vendor.ORQ).retry_after_seconds = 1.0, 7
    answer = orq(http, sim)
    assert answer.status_code == 429 and answer.headers["retry-after"] == "7"


def test_timeout_never_answers(http, sim) -> None:
    sim.knobs(Vendor.ORQ).timeout_rate = 1.0
    with pytest.raises(httpx.ReadTimeout):
        orq(http, sim, timeout=0.3)


def test_malformed_json(http, sim) -> None:
    sim.knobs(Vendor.ORQ).malformed_rate = 1.0
    answer = orq(http, sim)
    assert answer.status_code == 200
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(answer.content)


def test_fail_next_then_recover_and_counters_see_every_request(http, sim) -> None:
    sim.knobs(Vendor.ORQ).fail_next = 2
    assert [orq(http, sim).status_code for _ in range(3)] == [500, 500, 200]
    assert sim.counters(Vendor.ORQ) == {"GET /v2/agents/{agent_key}/tasks": 3}


def test_knobs_and_counters_over_http(http, sim) -> None:
    patched = http.patch("/orq/_sandbox/knobs", json={"error_rate": 1, "error_status": 502})
    assert patched.json()["error_status"] == 502
    assert orq(http, sim).status_code == 502
    assert http.get("/orq/_sandbox/counters").json() == {"GET /v2/agents/{agent_key}/tasks": 1}
    http.delete("/orq/_sandbox/counters")
    assert http.get("/orq/_sandbox/counters").json() == {}
    assert http.patch("/orq/_sandbox/knobs", json={"nope": 1}).status_code == 400
    moved = http.post("/agentex/_sandbox/advance", params={"n": 1}).json()
    assert moved == {"advanced": 1}
