"""GraphQL over HTTP as its specification says, on the real server."""

from __future__ import annotations

from tests.conftest import GatewayClient

GRAPHQL_RESPONSE = "application/graphql-response+json"


def test_get_runs_a_query(gateway: GatewayClient) -> None:
    response = gateway.http.get("/graphql", params={"query": "{ vendors { vendor enabled } }"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert len(response.json()["data"]["vendors"]) == 4


def test_get_never_runs_a_mutation(gateway: GatewayClient) -> None:
    response = gateway.http.get(
        "/graphql",
        params={"query": 'mutation { updateTracker(input: {id: "x"}) { id } }'},
    )
    assert response.status_code == 405
    assert response.json()["errors"][0]["extensions"]["code"] == "METHOD_NOT_ALLOWED"


def test_graphql_response_json_gets_4xx_when_nothing_executed(gateway: GatewayClient) -> None:
    for query in ("{ tasks(", "{ nosuchfield }"):
        response = gateway.http.post(
            "/graphql", json={"query": query}, headers={"accept": GRAPHQL_RESPONSE}
        )
        assert response.status_code == 400
        assert response.headers["content-type"].startswith(GRAPHQL_RESPONSE)
        body = response.json()
        assert "data" not in body
        assert body["errors"][0]["extensions"]["code"] in (
            "GRAPHQL_PARSE_FAILED",
            "GRAPHQL_VALIDATION_FAILED",
        )


def test_bad_variables_are_a_4xx_with_graphql_response_json(gateway: GatewayClient) -> None:
    response = gateway.http.post(
        "/graphql",
        json={
            "query": "query($n: Int) { tasks(first: $n) { nodes { id } } }",
            "variables": {"n": "many"},
        },
        headers={"accept": GRAPHQL_RESPONSE},
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


def test_application_json_gets_200_for_an_invalid_query(gateway: GatewayClient) -> None:
    response = gateway.http.post("/graphql", json={"query": "{ nosuchfield }"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


def test_an_unparsable_body_is_a_json_error_not_a_500(gateway: GatewayClient) -> None:
    response = gateway.http.post(
        "/graphql", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST_BODY"


def test_graphiql_is_served_to_browsers(gateway: GatewayClient) -> None:
    response = gateway.http.get("/graphql", headers={"accept": "text/html"})
    assert response.status_code == 200
    assert "graphiql" in response.text.lower()
