"""The operator endpoints: /healthz, /readyz, /metrics. Cheap, open, and telling no secret."""

from __future__ import annotations

import time
from typing import Any

from gateway.core.records import Vendor
from tests.conftest import GatewayClient, GatewayFactory, vendor_settings

QUERY = "query Recent { tasks(first: 5) { nodes { id vendor } } }"
CLIENT_KEY = "client-key-ops-0017"


def app_gateway(client: GatewayClient) -> Any:
    return client.server.server.config.app.state.gateway  # type: ignore[attr-defined]


def open_circuits(client: GatewayClient, *vendors: Vendor) -> None:
    upstream = app_gateway(client).service.upstream
    for vendor in vendors:
        upstream.vendors[vendor].breaker.opened_at = time.monotonic()


def test_healthz_says_the_process_is_up(gateway: GatewayClient) -> None:
    response = gateway.http.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response.headers["cache-control"] == "no-store"


def test_readyz_reports_config_cache_and_every_enabled_vendor(
    make_gateway: GatewayFactory, clean_sandbox
) -> None:
    gateway = make_gateway()
    gateway.data(QUERY)
    response = gateway.http.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready" and body["config"] == "loaded"
    assert body["cache"] == {"backend": "memory", "reachable": True}
    assert set(body["vendors"]) == {v.name for v in Vendor}
    for vendor in body["vendors"].values():
        assert vendor["circuit"] == "CLOSED"
        assert vendor["last_call_ok"] is True and vendor["last_error_code"] is None


def test_readyz_lists_only_enabled_vendors(make_gateway: GatewayFactory, settings) -> None:
    vendors = vendor_settings(settings, Vendor.ORQ, enabled=False).vendors
    body = make_gateway(vendors=vendors).http.get("/readyz").json()
    assert set(body["vendors"]) == {"AGENTEX", "XPANDER", "SUBNOTO"}


def test_readyz_is_503_while_any_vendor_circuit_is_open(
    make_gateway: GatewayFactory,
) -> None:
    gateway = make_gateway()
    open_circuits(gateway, Vendor.ORQ)
    one_open = gateway.http.get("/readyz")
    assert one_open.status_code == 503, "an enabled vendor that cannot be reached: not ready"
    assert one_open.json()["vendors"]["ORQ"]["circuit"] == "OPEN"
    assert one_open.json()["vendors"]["ORQ"]["reachable"] is False
    open_circuits(gateway, *Vendor)
    all_open = gateway.http.get("/readyz")
    assert all_open.status_code == 503
    assert all_open.json()["status"] == "not ready"
    for runtime in app_gateway(gateway).service.upstream.vendors.values():
        runtime.breaker.opened_at = None
    assert gateway.http.get("/readyz").status_code == 200


def test_readyz_is_503_while_redis_is_down(
    make_gateway: GatewayFactory, redis_url, redis_server
) -> None:
    gateway = make_gateway(cache_url=redis_url)
    ready = gateway.http.get("/readyz")
    assert ready.status_code == 200 and ready.json()["cache"]["backend"] == "redis"
    redis_server.stop()
    try:
        down = gateway.http.get("/readyz")
        assert down.status_code == 503 and down.json()["cache"]["reachable"] is False
        # ... while queries are still answered, without a cache.
        assert "errors" not in gateway.query(QUERY)
    finally:
        redis_server.start()
    assert gateway.http.get("/readyz").status_code == 200


def test_ops_endpoints_need_no_key_and_reveal_no_secret(
    make_gateway: GatewayFactory, settings
) -> None:
    gateway = make_gateway(open_access=False, api_keys=(CLIENT_KEY,))
    assert gateway.http.post("/graphql", json={"query": QUERY}).status_code == 401
    gateway.http.post(
        "/graphql", json={"query": QUERY}, headers={"authorization": f"Bearer {CLIENT_KEY}"}
    ).raise_for_status()
    answers = [gateway.http.get(path) for path in ("/healthz", "/readyz", "/metrics")]
    assert [a.status_code for a in answers] == [200, 200, 200]
    text = "".join(a.text for a in answers)
    secrets = [CLIENT_KEY, *(c.credentials.secret for c in settings.enabled if c.credentials)]
    for secret in secrets:
        assert secret not in text
    assert "http://" not in text and "127.0.0.1" not in text  # no vendor URL


def test_metrics_are_prometheus_text(gateway: GatewayClient) -> None:
    response = gateway.http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    assert "# TYPE gateway_graphql_requests_total counter" in response.text
