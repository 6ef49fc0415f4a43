"""Automatic persisted queries (Apollo's protocol), the allow-list mode, and CORS."""

from __future__ import annotations

import hashlib
import json

from tests.conftest import GatewayFactory

QUERY = "{ vendors { vendor enabled } }"
HASH = hashlib.sha256(QUERY.encode()).hexdigest()
APQ = {"persistedQuery": {"version": 1, "sha256Hash": HASH}}


def test_apq_round_trip(make_gateway: GatewayFactory) -> None:
    gateway = make_gateway()
    first = gateway.http.post("/graphql", json={"extensions": APQ})
    assert first.status_code == 200
    assert first.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
    register = gateway.http.post("/graphql", json={"query": QUERY, "extensions": APQ})
    assert len(register.json()["data"]["vendors"]) == 4
    by_hash = gateway.http.get("/graphql", params={"extensions": json.dumps(APQ)})
    assert by_hash.json()["data"] == register.json()["data"]


def test_a_hash_that_does_not_match_is_refused(make_gateway: GatewayFactory) -> None:
    gateway = make_gateway()
    wrong = {"persistedQuery": {"version": 1, "sha256Hash": "0" * 64}}
    body = gateway.http.post("/graphql", json={"query": QUERY, "extensions": wrong}).json()
    assert body["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


def test_allow_list_runs_only_listed_documents(make_gateway: GatewayFactory, tmp_path) -> None:
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"operations": [{"id": HASH, "body": QUERY, "name": "V"}]}))
    gateway = make_gateway(persisted_queries=str(manifest))
    listed = gateway.http.post("/graphql", json={"extensions": APQ}).json()
    assert len(listed["data"]["vendors"]) == 4
    same_text = gateway.http.post("/graphql", json={"query": QUERY}).json()
    assert "data" in same_text and same_text["data"] == listed["data"]
    other = gateway.http.post("/graphql", json={"query": "{ tasks { nodes { id } } }"}).json()
    assert other["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_ALLOWED"


def test_cors_preflight_and_response_headers(make_gateway: GatewayFactory) -> None:
    gateway = make_gateway(cors_origins=("https://ui.example.com",))
    preflight = gateway.http.options(
        "/graphql",
        headers={
            "origin": "https://ui.example.com",
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "https://ui.example.com"
    other = gateway.http.post(
        "/graphql", json={"query": QUERY}, headers={"origin": "https://evil.example.com"}
    )
    assert "access-control-allow-origin" not in other.headers
