"""Property-based fuzzing of the served schema: whatever valid query a client sends, the
gateway answers a well-formed GraphQL response, never a 500 or a stack trace."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis_graphql import from_schema

from gateway.graph.schema import print_sdl
from tests.conftest import GatewayClient

SDL = print_sdl()


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(query=from_schema(SDL, fields=["tasks", "task", "node", "trackers", "vendors"]))
def test_any_valid_query_gets_a_well_formed_answer(gateway: GatewayClient, query: str) -> None:
    response = gateway.http.post("/graphql", json={"query": query})
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) <= {"data", "errors", "extensions"}
    for error in body.get("errors", []):
        assert error["extensions"]["code"]
        assert "Traceback" not in error["message"]
        assert error["extensions"]["code"] != "INTERNAL_SERVER_ERROR", error


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(query=from_schema(SDL, fields=["updateTracker"]))
def test_any_valid_mutation_gets_a_well_formed_answer(gateway: GatewayClient, query: str) -> None:
    response = gateway.http.post("/graphql", json={"query": query})
    assert response.status_code == 200, response.text
    for error in response.json().get("errors", []):
        assert error["extensions"]["code"] != "INTERNAL_SERVER_ERROR", error
