"""``/readyz`` does not say ready while an enabled vendor cannot be reached (issue 14, item 3):
its circuit is open, or its last call did not reach it and a probe does not either. A vendor
that answers, even with an error, was reached; a vendor that comes back makes it ready again.
"""

from __future__ import annotations

import socket
from typing import Any

import pytest

from gateway.config import Settings
from gateway.core.records import Vendor
from tests.conftest import GatewayClient, GatewayFactory, vendor_settings

QUERY = "{ tasks(first: 5) { nodes { id } missingVendors } }"


def closed_port_url() -> str:
    """An address nothing listens on: connections are refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/orq"


def readiness(gateway: GatewayClient, attempts: int = 20) -> tuple[int, dict[str, Any]]:
    """The readiness answer once no probe is still under way (a probe is given up to
    ``wait`` per check; on a slow machine the first check may find it unfinished)."""
    for _ in range(attempts):
        response = gateway.http.get("/readyz")
        body = response.json()
        if all(v["reason"] != "probe under way" for v in body["vendors"].values()):
            return response.status_code, body
    raise AssertionError(f"a probe never finished: {body}")


def test_a_vendor_nothing_answers_for_makes_the_replica_not_ready(
    make_gateway: GatewayFactory, settings: Settings
) -> None:
    down = vendor_settings(settings, Vendor.ORQ, base_url=closed_port_url())
    gateway = make_gateway(vendors=down.vendors)
    status, body = readiness(gateway)  # never called yet: probed
    assert status == 503 and body["status"] == "not ready"
    assert body["vendors"]["ORQ"]["reachable"] is False
    assert all(body["vendors"][v]["reachable"] for v in ("AGENTEX", "XPANDER", "SUBNOTO"))
    answer = gateway.query(QUERY)  # still answers, without orq
    assert answer["data"]["tasks"]["missingVendors"] == ["ORQ"]
    assert readiness(gateway)[0] == 503


@pytest.mark.parametrize(
    ("knobs", "ready"),
    [
        ({"error_rate": 1.0, "error_status": 503}, False),  # reached, but failing: 5xx
        ({"error_rate": 1.0, "error_status": 502}, False),
        ({"error_rate": 1.0, "error_status": 404}, True),  # it answered: reachable
        ({"error_rate": 1.0, "error_status": 401}, True),
    ],
    ids=["503", "502", "404", "401"],
)
def test_readiness_follows_what_the_vendor_answers_and_comes_back(
    make_gateway: GatewayFactory, clean_sandbox, knobs: dict[str, Any], ready: bool
) -> None:
    gateway = make_gateway()
    assert "errors" not in gateway.query(QUERY)
    assert readiness(gateway)[0] == 200
    clean_sandbox.knobs(Vendor.XPANDER).update(knobs)
    gateway.http.post("/graphql", json={"query": QUERY}, headers={"cache-control": "no-cache"})
    status, body = readiness(gateway)
    assert status == (200 if ready else 503), body
    assert body["vendors"]["XPANDER"]["reachable"] is ready
    clean_sandbox.reset_knobs()
    # Back: the next successful call (or the next probe) makes the replica ready again.
    fresh = gateway.http.post(
        "/graphql", json={"query": QUERY}, headers={"cache-control": "no-cache"}
    ).json()
    assert not fresh["data"]["tasks"]["missingVendors"]
    assert readiness(gateway)[0] == 200


def test_a_fresh_replica_with_every_vendor_up_is_ready(make_gateway: GatewayFactory) -> None:
    status, body = readiness(make_gateway())
    assert status == 200, body
    assert {v["reason"] for v in body["vendors"].values()} <= {
        "probe succeeded",
        "last call succeeded",
    }


def test_readiness_reveals_no_address_or_key(make_gateway: GatewayFactory, settings) -> None:
    down = vendor_settings(settings, Vendor.ORQ, base_url=closed_port_url())
    text = make_gateway(vendors=down.vendors).http.get("/readyz").text
    assert "127.0.0.1" not in text and "http" not in text
    for config in settings.enabled:
        if config.credentials is not None:
            assert config.credentials.secret not in text
