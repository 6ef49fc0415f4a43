"""Mutation.updateTracker: a PUT to Agentex, never contradicted by the cache afterwards."""

from __future__ import annotations

from gateway.core.records import Vendor
from tests.conftest import vendor_settings

TRACKERS = (
    "{ trackers(first: 5) { nodes { id nativeId status vendorStatus statusReason "
    "lastProcessedEventId } } }"
)
UPDATE = """
mutation($input: UpdateTrackerInput!) {
  updateTracker(input: $input) { id vendorStatus status statusReason lastProcessedEventId }
}
"""


def test_update_changes_status_and_later_reads_show_it(own) -> None:
    gateway = own.gateway()
    tracker = gateway.data(TRACKERS)["trackers"]["nodes"][0]
    gateway.data(TRACKERS)  # now cached
    updated = gateway.data(UPDATE, {"input": {"id": tracker["id"], "status": "cancelled"}})
    result = updated["updateTracker"]
    assert result["vendorStatus"] == "cancelled" and result["status"] == "CANCELLED"
    # statusReason was not sent by the client: it keeps its value (the upstream would null it).
    assert result["statusReason"] == tracker["statusReason"]
    again = gateway.data(
        "query($id: ID!) { node(id: $id) { ... on Tracker { vendorStatus statusReason } } }",
        {"id": tracker["id"]},
    )
    assert again["node"] == {"vendorStatus": "cancelled", "statusReason": tracker["statusReason"]}
    listed = {t["id"]: t for t in gateway.data(TRACKERS)["trackers"]["nodes"]}
    if tracker["id"] in listed:
        assert listed[tracker["id"]]["vendorStatus"] == "cancelled"


def test_explicit_null_clears_a_field(own) -> None:
    gateway = own.gateway()
    tracker = gateway.data(TRACKERS)["trackers"]["nodes"][1]
    result = gateway.data(UPDATE, {"input": {"id": tracker["id"], "statusReason": None}})[
        "updateTracker"
    ]
    assert result["statusReason"] is None
    assert result["vendorStatus"] == tracker["vendorStatus"]


def test_update_of_a_task_id_or_unknown_tracker_is_refused(own) -> None:
    gateway = own.gateway()
    task = gateway.data("{ tasks(first: 1, filter: {vendors: [XPANDER]}) { nodes { id } } }")
    body = gateway.query(UPDATE, {"input": {"id": task["tasks"]["nodes"][0]["id"], "status": "x"}})
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    body = gateway.query(UPDATE, {"input": {"id": "garbage", "status": "x"}})
    assert body["errors"][0]["extensions"]["code"] == "INVALID_ID"


def test_a_timed_out_put_is_an_unknown_outcome_and_the_cache_is_dropped(own) -> None:
    sandbox = own.sandbox
    gateway = own.gateway(
        vendors=vendor_settings(own.settings, Vendor.AGENTEX, timeout=0.3).vendors
    )
    tracker = gateway.data(TRACKERS)["trackers"]["nodes"][2]
    sandbox.reset_counters()
    sandbox.knobs(Vendor.AGENTEX).timeout_rate = 1.0
    try:
        body = gateway.query(
            UPDATE, {"input": {"id": tracker["id"], "status": "done", "statusReason": "ok"}}
        )
    finally:
        sandbox.reset_knobs()
    assert body["errors"][0]["extensions"] == {
        "code": "UPSTREAM_OUTCOME_UNKNOWN",
        "vendor": "AGENTEX",
    }
    assert sandbox.counters(Vendor.AGENTEX)["PUT /tracker/{tracker_id}"] == 1
    # The upstream may hold the new value now: the page cached before the attempt must not
    # be served again, so the next read goes to Agentex.
    gateway.data(TRACKERS)
    assert sandbox.counters(Vendor.AGENTEX)["GET /tracker"] >= 1


def test_an_idempotency_key_makes_a_repeat_return_the_first_answer(own) -> None:
    gateway = own.gateway()
    tracker = gateway.data(TRACKERS)["trackers"]["nodes"][3]
    variables = {
        "input": {
            "id": tracker["id"],
            "status": "paused",
            "statusReason": "hold",
            "idempotencyKey": "op-123",
        }
    }
    first = gateway.data(UPDATE, variables)["updateTracker"]
    own.sandbox.reset_counters()
    again = gateway.data(UPDATE, variables)["updateTracker"]
    assert again == first
    assert own.sandbox.counters(Vendor.AGENTEX).get("PUT /tracker/{tracker_id}", 0) == 0
    variables["input"]["status"] = "running"
    body = gateway.query(UPDATE, variables)
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
