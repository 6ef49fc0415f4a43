"""Clients and queries: authentication, rate limits, body and query limits."""

from __future__ import annotations

import pytest

from gateway.graph.schema import QueryLimits
from tests.conftest import GatewayFactory

KEY = "client-key-for-tests-0123"


@pytest.fixture(scope="module")
def locked(make_gateway: GatewayFactory):
    return make_gateway(open_access=False, api_keys=(KEY,), limits=QueryLimits(introspection=False))


def test_a_request_without_a_key_is_refused_before_any_upstream_call(locked) -> None:
    response = locked.http.post("/graphql", json={"query": "{ tasks { nodes { id } } }"})
    assert response.status_code == 401
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert response.headers["www-authenticate"].startswith("Bearer")
    wrong = locked.http.post(
        "/graphql",
        json={"query": "{ tasks { nodes { id } } }"},
        headers={"authorization": "Bearer nope"},
    )
    assert wrong.status_code == 401
    # Nothing read for it, from the cache or the vendors (this gateway's own record: the
    # sandbox's counters also move with the session's other gateways finishing calls of
    # earlier tests in the background).
    health = locked.server.server.config.app.state.gateway.service.upstream.health
    assert all(h.calls == h.cache_hits == h.cache_misses == 0 for h in health.values())


def test_a_request_with_a_key_is_served(locked) -> None:
    for headers in ({"authorization": f"Bearer {KEY}"}, {"x-api-key": KEY}):
        response = locked.http.post(
            "/graphql", json={"query": "{ vendors { vendor } }"}, headers=headers
        )
        assert response.status_code == 200 and "errors" not in response.json()


def test_health_stays_open_without_a_key(locked) -> None:
    assert locked.http.get("/healthz").status_code == 200


def test_introspection_can_be_turned_off(locked) -> None:
    response = locked.http.post(
        "/graphql", json={"query": "{ __schema { types { name } } }"}, headers={"x-api-key": KEY}
    )
    assert response.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


def test_rate_limit_answers_429_with_retry_after(make_gateway: GatewayFactory) -> None:
    gateway = make_gateway(rate_per_second=1, rate_burst=3)
    statuses = [
        gateway.http.post("/graphql", json={"query": "{ vendors { vendor } }"}).status_code
        for _ in range(5)
    ]
    assert statuses[:3] == [200, 200, 200] and statuses[-1] == 429
    limited = gateway.http.post("/graphql", json={"query": "{ vendors { vendor } }"})
    assert int(limited.headers["retry-after"]) >= 1
    assert limited.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"


def test_a_large_body_is_refused(make_gateway: GatewayFactory) -> None:
    gateway = make_gateway(max_body_bytes=1000)
    response = gateway.http.post("/graphql", json={"query": "{ vendors { vendor } }" + " " * 2000})
    assert response.status_code == 413
    assert response.json()["errors"][0]["extensions"]["code"] == "BODY_TOO_LARGE"
    body = b'{"query": "{ vendors { vendor } }' + b" " * 2000 + b'"}'
    streamed = gateway.http.post(  # chunked: no Content-Length to judge it by
        "/graphql",
        content=(body[i : i + 100] for i in range(0, len(body), 100)),
        headers={"content-type": "application/json"},
    )
    assert streamed.status_code == 413
    assert streamed.json()["errors"][0]["extensions"]["code"] == "BODY_TOO_LARGE"
    small = gateway.http.post(
        "/graphql",
        content=(part for part in [b'{"query": "{ vendors ', b'{ vendor } }"}']),
        headers={"content-type": "application/json"},
    )
    assert small.status_code == 200 and small.json()["data"]["vendors"]


@pytest.mark.parametrize(
    ("query", "code"),
    [
        (
            "{ tasks { nodes { parentTask { parentTask { parentTask { parentTask { parentTask {"
            " parentTask { parentTask { parentTask { parentTask { id } } } } } } } } } } } }",
            "QUERY_TOO_COMPLEX",
        ),
        (
            "{ " + " ".join(f"a{i}: vendors {{ vendor }}" for i in range(40)) + " }",
            "QUERY_TOO_COMPLEX",
        ),
        (
            "{ tasks(first: 100) { totalCount nodes { id subtasks { id subtasks { id "
            "subtasks { id } } } } } }",
            "QUERY_TOO_COSTLY",
        ),
    ],
    ids=["depth", "aliases", "cost"],
)
def test_query_limits(gateway, query, code) -> None:
    body = gateway.query(query)
    assert "data" not in body or body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == code


def test_field_suggestions_are_off(gateway) -> None:
    body = gateway.query("{ task { nodes { id } } }")
    assert "Did you mean" not in body["errors"][0]["message"]


def test_the_graphiql_page_and_its_assets_need_no_key_but_queries_do(locked) -> None:
    page = locked.http.get("/graphql", headers={"accept": "text/html"})
    assert page.status_code == 200 and "/graphql/assets/graphiql@" in page.text
    asset = locked.http.get("/graphql/assets/react@18.2.0/umd/react.production.min.js")
    assert asset.status_code == 200
    query = locked.http.get(
        "/graphql", params={"query": "{ vendors { vendor } }"}, headers={"accept": "text/html"}
    )
    assert query.status_code == 401
