"""Issue 14, item 6: ``/metrics`` is open to anyone, so no label carries text a caller or a
vendor chose, and its size does not grow with what callers send.

Callers choose: Agentex statuses (``updateTracker`` writes them, Agentex stores any text,
the gateway reads them back), operation names, and ids that end up in upstream paths. Each
is tried 30 times with a fresh value (one of 100 KB), over HTTP, with a client key; then
``/metrics`` is read without one.
"""

from __future__ import annotations

import base64
import secrets
from urllib.parse import quote

from prometheus_client.parser import text_string_to_metric_families

from gateway.core.health import VendorHealth
from gateway.core.records import Vendor
from tests.conftest import GatewayClient, OwnSandbox

KEY = "metrics-test-key"
AUTH = {"authorization": f"Bearer {KEY}"}
TRACKERS = "{ trackers(first: 20) { nodes { id } } }"
UPDATE = """mutation Write($input: UpdateTrackerInput!) {
  updateTracker(input: $input) { id vendorStatus } }"""
AGENTEX_TASKS = "{ tasks(first: 100, filter: {vendors: [AGENTEX]}) { nodes { id status } } }"
ROUNDS = 30


def call(gateway: GatewayClient, query: str, variables: dict | None = None) -> dict:
    response = gateway.http.post(
        "/graphql", json={"query": query, "variables": variables}, headers=AUTH
    )
    assert response.status_code == 200, response.text[:500]
    body: dict = response.json()
    return body


def tracker_id_with_path(real_id: str, text: str) -> str:
    """A tracker id (base64url of ``Tracker:agentex:<agent>:<task>:<tracker>``, as the ids
    the gateway hands out) whose tracker part holds slashes and ``text``."""
    padded = real_id + "=" * (-len(real_id) % 4)
    kind, vendor, agent, task, _ = base64.urlsafe_b64decode(padded).decode().split(":")
    forged = ":".join([kind, vendor, agent, task, quote(f"a/{text}/b", safe="")])
    return base64.urlsafe_b64encode(forged.encode()).decode().rstrip("=")


def test_caller_chosen_text_never_reaches_the_open_metrics(own: OwnSandbox) -> None:
    gateway = own.gateway(open_access=False, api_keys=(KEY,))
    trackers = [t["id"] for t in call(gateway, TRACKERS)["data"]["trackers"]["nodes"]]
    assert len(trackers) >= 2
    token = secrets.token_hex(8)
    chosen: list[str] = []
    sizes: list[int] = []
    for n in range(ROUNDS):
        status = f"odd-{token}-{n}" + ("x" * 100_000 if n == 7 else "")
        chosen.append(status)
        written = call(gateway, UPDATE, {"input": {"id": trackers[n % 2], "status": status}})
        assert written["data"]["updateTracker"]["vendorStatus"] == status
        listed = call(gateway, AGENTEX_TASKS)["data"]["tasks"]["nodes"]
        assert "UNKNOWN" in {t["status"] for t in listed}  # read back: an unmapped status
        forged = tracker_id_with_path(trackers[0], f"path-{token}-{n}")
        call(gateway, UPDATE, {"input": {"id": forged, "status": "cancelled"}})
        named = f"Op_{token}_{n}" + ("y" * 2_000 if n == 3 else "")
        call(gateway, f"query {named} {{ vendors {{ vendor }} }}")
        if n in (0, ROUNDS - 1):
            sizes.append(len(gateway.http.get("/metrics").content))

    metrics = gateway.http.get("/metrics")  # no key: /metrics is open by design
    assert metrics.status_code == 200
    assert token not in metrics.text
    assert not any(status in metrics.text for status in chosen)
    # Only counters moved between the first round and the last: no new series.
    assert sizes[1] - sizes[0] < 1_000, sizes
    assert sizes[1] < 64 * 1024, sizes

    families = {f.name: f for f in text_string_to_metric_families(metrics.text)}
    unmapped = {s.labels["vendor"]: s.value for s in families["gateway_unmapped_statuses"].samples}
    vendors = call(gateway, "{ vendors { vendor unknownStatuses unknownStatusValues { value } } }")
    agentex = next(v for v in vendors["data"]["vendors"] if v["vendor"] == "AGENTEX")
    assert agentex["unknownStatuses"] >= ROUNDS  # each written status was read back
    assert unmapped["agentex"] == agentex["unknownStatuses"]
    # The values are for callers with a key: each written one (the long one cut short).
    shown = {v["value"] for v in agentex["unknownStatusValues"]}
    assert {s[:200] for s in chosen} <= shown
    assert max(len(v) for v in shown) <= 200
    anonymous = gateway.http.post("/graphql", json={"query": "{ vendors { vendor } }"})
    assert anonymous.status_code == 401
    assert all(set(s.labels) == {"vendor"} for s in families["gateway_unmapped_statuses"].samples)


def test_every_label_value_comes_from_a_fixed_vocabulary(own: OwnSandbox) -> None:
    """Whatever was asked before, each label holds a vendor name, a route template, a status
    code or a fixed word: a pattern that no free text matches."""
    gateway = own.gateway(open_access=False, api_keys=(KEY,))
    trackers = [t["id"] for t in call(gateway, TRACKERS)["data"]["trackers"]["nodes"]]
    call(gateway, UPDATE, {"input": {"id": trackers[0], "status": "Ünïcode status ✓"}})
    call(gateway, UPDATE, {"input": {"id": tracker_id_with_path(trackers[0], "p q"), "status": ""}})
    call(gateway, AGENTEX_TASKS)
    call(gateway, "query Named_By_Caller { vendors { vendor } }")
    allowed = {
        "vendor": {"agentex", "xpander", "orq", "subnoto"},
        "operation": {"anonymous", "_other"},
        "outcome": {"ok", "partial", "error"},
        "result": {"hit", "miss", "stale"},
        "scope": {"process", "replicas"},
        "priority": {"interactive", "background"},
    }
    routes = {
        "/tracker",
        "/tracker/{id}",
        "/v1/agents/{id}/tasks",
        "/v2/agents/{id}/tasks",
        "/public/agent-task/list",
        "_other",
    }
    text = gateway.http.get("/metrics").text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            for label, value in sample.labels.items():
                if label == "le":
                    continue
                if label == "endpoint":
                    assert value in routes, value
                elif label == "status":
                    assert value.isdigit() or value in {"timeout", "unreachable", "cancelled"}
                else:
                    assert value in allowed[label], (family.name, label, value)


def test_the_unmapped_values_kept_are_bounded_in_count_and_length() -> None:
    """What ``Query.vendors`` shows is kept in memory: 500 distinct 100 KB statuses keep
    50 values of at most 200 characters, and count all 500."""
    health = VendorHealth(Vendor.AGENTEX)
    for n in range(500):
        health.count_unknown_status(f"{n}-" + "x" * 100_000)
    health.count_unknown_status(None)
    assert health.unknown_status_total == 501
    assert len(health.unknown_statuses) == 50
    assert max(len(value) for value in health.unknown_statuses) == 200
    assert sum(health.unknown_statuses.values()) == 50
