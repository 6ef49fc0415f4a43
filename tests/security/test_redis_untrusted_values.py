"""Nothing read from Redis runs (issue 14, item 4): Redis is a trust boundary.

Someone who can write to the gateway's Redis plants values under the very keys the gateway
uses (found by scanning Redis after the gateway wrote them: pages, an APQ document, an
idempotent write's stored answer, the generation counters). Each planted value is one of a
family: Python object streams whose loading would create a marker file (every protocol),
plain garbage, values of another kind or format version, JSON. The gateway must answer as if
the entry were missing (asking the vendor again, or asking the client for the document), the
marker must never appear, and ``/metrics`` must count what it ignored.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest
import redis

from gateway.core.records import Vendor
from tests.conftest import GatewayClient, OwnSandbox

QUERY = "{ tasks(first: 30) { nodes { id status title updatedAt } totalCount } }"
APQ_QUERY = "query Apq { tasks(first: 3) { nodes { id } } }"
APQ_HASH = hashlib.sha256(APQ_QUERY.encode()).hexdigest()
TRACKERS = "{ trackers(first: 5) { nodes { id vendorStatus statusReason } } }"
UPDATE = """mutation($input: UpdateTrackerInput!) {
  updateTracker(input: $input) { id vendorStatus statusReason } }"""
PUT = "PUT /tracker/{tracker_id}"


class Touch:
    """Loading this object creates ``path``: what a planted payload would do."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str, ...]]:
        return (os.mkdir, (self.path,))


def payloads(marker: Path) -> list[bytes]:
    """The family of values an attacker or a stale deployment could leave under a key."""
    evil = [
        pickle.dumps(Touch(str(marker)), protocol=p) for p in range(pickle.HIGHEST_PROTOCOL + 1)
    ]
    return [
        *evil,
        pickle.dumps({"page": Touch(str(marker))}),  # nested inside a harmless-looking dict
        b"",
        b"\x00\xff garbage \x80",
        os.urandom(64),
        b'{"records": [], "next_token": null}',  # JSON, not our format
        msgspec.msgpack.encode(["apq", "{ __typename }"]),  # another kind of value
        msgspec.msgpack.encode(["page", [], None, None, 0, 0.0, 9e18, "extra"]),  # wrong shape
        msgspec.msgpack.encode({"kind": "page"}),
        b"9" * 5000,
    ]


@pytest.fixture
def marker(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "planted-code-ran"
    yield path
    assert not path.exists(), "a value read from Redis was executed"


def test_the_planted_payload_is_live(tmp_path: Path) -> None:
    """The payloads really are code: loading one (in another process) creates the marker."""
    live = tmp_path / "live"
    data = pickle.dumps(Touch(str(live)))
    program = "import pickle, sys; pickle.loads(sys.stdin.buffer.read())"
    subprocess.run([sys.executable, "-c", program], input=data, check=True)
    assert live.exists()


def keys(client: redis.Redis, needle: str) -> list[bytes]:
    return [k for k in client.scan_iter(match="*") if needle in k.decode() and b"lock" not in k]


def metric(gateway: GatewayClient, name: str) -> float:
    text = gateway.http.get("/metrics").text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name) and not line.startswith("#")
    )


def upstream_calls(own: OwnSandbox) -> int:
    return sum(sum(own.sandbox.counters(v).values()) for v in Vendor)


def test_planted_pages_are_refetched_and_never_run(
    own: OwnSandbox, redis_url: str, marker: Path
) -> None:
    gateway = own.gateway(cache_url=redis_url, response_cache=False)
    expected = gateway.data(QUERY)
    client = redis.Redis.from_url(redis_url)
    page_keys = [k for k in keys(client, ":") if b":gen:" not in k and b":apq" not in k]
    assert page_keys, "the gateway stored no page in Redis"
    for payload in payloads(marker):
        for key in page_keys:
            client.set(key, payload, ex=600)
        before = upstream_calls(own)
        assert gateway.data(QUERY) == expected
        assert upstream_calls(own) > before, "a planted page was served instead of refetched"
    assert metric(gateway, "gateway_cache_undecodable_total") > 0
    # Generation counters are plain integers: garbage there reads as "no generation".
    for key in keys(client, ":gen:"):
        client.set(key, pickle.dumps(Touch(str(marker))))
    assert gateway.data(QUERY) == expected


def test_a_planted_apq_document_is_not_found_and_never_run(
    own: OwnSandbox, redis_url: str, marker: Path
) -> None:
    gateway = own.gateway(cache_url=redis_url)
    apq = {"persistedQuery": {"version": 1, "sha256Hash": APQ_HASH}}
    registered = gateway.http.post("/graphql", json={"query": APQ_QUERY, "extensions": apq})
    expected = registered.json()["data"]
    client = redis.Redis.from_url(redis_url)
    apq_keys = keys(client, APQ_HASH)
    assert apq_keys, "the gateway stored no APQ document in Redis"
    other = "{ vendors { vendor } }"  # well-formed, our format, but not this hash's document
    for payload in [*payloads(marker), msgspec.msgpack.encode(["apq", other])]:
        for key in apq_keys:
            client.set(key, payload, ex=600)
        body = gateway.http.post("/graphql", json={"extensions": apq}).json()
        assert body["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND", body
        again = gateway.http.post("/graphql", json={"query": APQ_QUERY, "extensions": apq})
        assert again.json()["data"] == expected
    assert metric(gateway, "gateway_cache_undecodable_total") > 0


def test_a_planted_idempotent_answer_is_ignored_and_never_run(
    own: OwnSandbox, redis_url: str, marker: Path
) -> None:
    gateway = own.gateway(cache_url=redis_url)
    tracker = gateway.data(TRACKERS)["trackers"]["nodes"][4]
    variables = {
        "input": {"id": tracker["id"], "statusReason": "planted", "idempotencyKey": "op-plant"}
    }
    first = gateway.data(UPDATE, variables)["updateTracker"]
    client = redis.Redis.from_url(redis_url)
    idem_keys = keys(client, ":idem:")
    assert idem_keys, "the gateway stored no idempotent answer in Redis"
    for payload in payloads(marker):
        for key in idem_keys:
            client.set(key, payload, ex=600)
        own.sandbox.reset_counters()
        again = gateway.data(UPDATE, variables)["updateTracker"]
        assert again == first  # the same write made again: Agentex holds the same
        assert own.sandbox.counters(Vendor.AGENTEX)[PUT] == 1, "the planted answer was used"
