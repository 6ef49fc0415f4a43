"""Upstream faults, driven through the sandbox's knobs over real HTTP: what a client gets."""

from __future__ import annotations

from dataclasses import replace

from gateway.core.records import Vendor
from tests.conftest import GatewayFactory, vendor_settings

ORQ_LIST = "GET /v2/agents/{agent_key}/tasks"
XPANDER_LIST = "GET /v1/agents/{agent_id}/tasks"
QUERY = """
{ tasks(first: 30, filter: {vendors: [ORQ, SUBNOTO]}, orderBy: {field: CREATED_AT}) {
    missingVendors nodes { vendor } } }
"""


def orq_calls(sandbox) -> int:
    return sandbox.counters(Vendor.ORQ).get(ORQ_LIST, 0)


def test_a_5xx_is_retried_and_the_client_never_sees_it(
    make_gateway: GatewayFactory, clean_sandbox
) -> None:
    agents = len(clean_sandbox.agents(Vendor.ORQ))
    clean_sandbox.knobs(Vendor.ORQ).fail_next = 1
    body = make_gateway().query(QUERY)
    assert "errors" not in body
    assert "ORQ" in {n["vendor"] for n in body["data"]["tasks"]["nodes"]}
    assert orq_calls(clean_sandbox) == agents + 1


def test_429_is_retried_after_the_vendors_retry_after(
    make_gateway: GatewayFactory, clean_sandbox
) -> None:
    knobs = clean_sandbox.knobs(Vendor.ORQ)
    knobs.rate_limit_rate, knobs.retry_after_seconds = 1.0, 0
    gateway = make_gateway()
    body = gateway.query(QUERY)
    assert body["data"]["tasks"]["missingVendors"] == ["ORQ"]
    assert body["errors"][0]["extensions"] == {"code": "UPSTREAM_RATE_LIMITED", "vendor": "ORQ"}
    # three attempts per listing, never more
    assert orq_calls(clean_sandbox) == 3 * len(clean_sandbox.agents(Vendor.ORQ))


def test_a_timeout_costs_only_that_vendor(
    make_gateway: GatewayFactory, settings, clean_sandbox
) -> None:
    clean_sandbox.knobs(Vendor.ORQ).timeout_rate = 1.0
    gateway = make_gateway(
        **{
            "vendors": vendor_settings(settings, Vendor.ORQ, timeout=0.2).vendors,
        }
    )
    body = gateway.query(QUERY)
    assert body["data"]["tasks"]["missingVendors"] == ["ORQ"]
    assert {n["vendor"] for n in body["data"]["tasks"]["nodes"]} == {"SUBNOTO"}
    assert body["errors"][0]["extensions"] == {"code": "UPSTREAM_TIMEOUT", "vendor": "ORQ"}


def test_the_request_deadline_bounds_a_slow_vendor(
    make_gateway: GatewayFactory, clean_sandbox
) -> None:
    clean_sandbox.knobs(Vendor.ORQ).latency_ms = 3000
    body = make_gateway(request_deadline=0.5).query(QUERY)
    assert body["data"]["tasks"]["missingVendors"] == ["ORQ"]
    assert body["errors"][0]["extensions"] == {"code": "UPSTREAM_TIMEOUT", "vendor": "ORQ"}


def test_malformed_json_is_reported_not_a_crash(
    make_gateway: GatewayFactory, clean_sandbox
) -> None:
    clean_sandbox.knobs(Vendor.ORQ).malformed_rate = 1.0
    body = make_gateway().query(QUERY)
    assert body["data"]["tasks"]["missingVendors"] == ["ORQ"]
    assert body["errors"][0]["extensions"] == {"code": "UPSTREAM_BAD_RESPONSE", "vendor": "ORQ"}
    assert {n["vendor"] for n in body["data"]["tasks"]["nodes"]} == {"SUBNOTO"}


def test_wrong_vendor_credentials_are_upstream_auth_and_never_echoed(
    make_gateway: GatewayFactory, settings, clean_sandbox
) -> None:
    orq = settings.vendors[Vendor.ORQ]
    bad = replace(orq.credentials, secret="wrong-secret-123")
    gateway = make_gateway(vendors=vendor_settings(settings, Vendor.ORQ, credentials=bad).vendors)
    response = gateway.http.post("/graphql", json={"query": QUERY})
    body = response.json()
    assert body["errors"][0]["extensions"] == {"code": "UPSTREAM_AUTH", "vendor": "ORQ"}
    assert "wrong-secret-123" not in response.text
    assert orq_calls(clean_sandbox) == len(clean_sandbox.agents(Vendor.ORQ)), "401 is not retried"


def test_the_circuit_opens_fails_fast_and_closes_after_a_good_probe(
    make_gateway: GatewayFactory, clean_sandbox
) -> None:
    clean_sandbox.knobs(Vendor.ORQ).error_rate = 1.0
    gateway = make_gateway()
    app_gateway = gateway.server.server.config.app.state.gateway  # type: ignore[attr-defined]
    breaker = app_gateway.service.upstream.vendors[Vendor.ORQ].breaker
    for _ in range(3):
        gateway.query(QUERY, headers={"x-cache-bypass": "1"})
    assert breaker.state.value == "OPEN"
    vendors = gateway.data("{ vendors { vendor circuitState lastErrorCode } }")["vendors"]
    orq = next(v for v in vendors if v["vendor"] == "ORQ")
    assert orq == {"vendor": "ORQ", "circuitState": "OPEN", "lastErrorCode": "UPSTREAM_UNAVAILABLE"}
    before = orq_calls(clean_sandbox)
    body = gateway.query(QUERY, headers={"x-cache-bypass": "1"})
    assert orq_calls(clean_sandbox) == before, "an open circuit sends nothing upstream"
    assert body["errors"][0]["extensions"] == {"code": "UPSTREAM_UNAVAILABLE", "vendor": "ORQ"}
    assert {n["vendor"] for n in body["data"]["tasks"]["nodes"]} == {"SUBNOTO"}
    clean_sandbox.knobs(Vendor.ORQ).error_rate = 0.0
    breaker.opened_at -= breaker.reset_seconds  # the reset time has passed
    probe = gateway.query(QUERY, headers={"x-cache-bypass": "1"})
    # Half-open lets one call through (the other agents' listings still fail fast) ...
    assert "ORQ" in {n["vendor"] for n in probe["data"]["tasks"]["nodes"]}
    assert breaker.state.value == "CLOSED"
    # ... and its success closes the circuit for everyone.
    body = gateway.query(QUERY, headers={"x-cache-bypass": "1"})
    assert "errors" not in body


def test_stale_data_is_served_when_a_vendor_fails_after_expiry(
    make_gateway: GatewayFactory, settings, clean_sandbox
) -> None:
    gateway = make_gateway(
        vendors=vendor_settings(settings, Vendor.ORQ, cache_ttl=0.2, first_page_ttl=0.2).vendors
    )
    fresh = gateway.data(QUERY + " ")
    import time

    time.sleep(0.3)
    clean_sandbox.knobs(Vendor.ORQ).error_rate = 1.0
    body = gateway.query(
        "{ tasks(first: 30, filter: {vendors: [ORQ, SUBNOTO]}, orderBy: {field: CREATED_AT}) "
        "{ missingVendors vendorParts { vendor stale fromCache ok } nodes { vendor } } }"
    )
    assert "errors" not in body
    tasks = body["data"]["tasks"]
    assert tasks["nodes"] == fresh["tasks"]["nodes"]
    parts = {p["vendor"]: p for p in tasks["vendorParts"]}
    assert parts["ORQ"] == {"vendor": "ORQ", "stale": True, "fromCache": True, "ok": True}
