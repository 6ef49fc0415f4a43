"""``Query.vendors``: what an operator asks the graph about each vendor."""

from __future__ import annotations

from gateway.core.records import Vendor
from tests.conftest import GatewayFactory, vendor_settings

VENDORS = """{ vendors { vendor enabled circuitState lastCallOk lastSuccessAt lastErrorCode
  p50LatencyMs cacheHitRatio } }"""
QUERY = "query Recent { tasks(first: 5) { nodes { id vendor } } }"


def test_vendors_show_state_latency_and_cache_hit_ratio(
    make_gateway: GatewayFactory, settings, clean_sandbox
) -> None:
    vendors = vendor_settings(settings, Vendor.AGENTEX, enabled=False).vendors
    gateway = make_gateway(vendors=vendors)
    before = {v["vendor"]: v for v in gateway.data(VENDORS)["vendors"]}
    assert before["ORQ"] == {
        "vendor": "ORQ",
        "enabled": True,
        "circuitState": "CLOSED",
        "lastCallOk": None,
        "lastSuccessAt": None,
        "lastErrorCode": None,
        "p50LatencyMs": None,
        "cacheHitRatio": None,
    }
    assert before["AGENTEX"]["enabled"] is False

    clean_sandbox.knobs(Vendor.SUBNOTO).error_rate = 1.0
    gateway.query(QUERY)
    gateway.query(QUERY.replace("first: 5", "first: 6"))  # served from the page cache
    after = {v["vendor"]: v for v in gateway.data(VENDORS)["vendors"]}
    orq = after["ORQ"]
    assert orq["lastCallOk"] is True and orq["lastSuccessAt"].endswith("+00:00")
    assert orq["p50LatencyMs"] > 0
    assert 0 < orq["cacheHitRatio"] < 1
    subnoto = after["SUBNOTO"]
    assert subnoto["lastCallOk"] is False
    assert subnoto["lastErrorCode"] == "UPSTREAM_UNAVAILABLE"
    assert subnoto["circuitState"] == "CLOSED"  # two failures are not yet an outage
    assert after["AGENTEX"]["lastCallOk"] is None
