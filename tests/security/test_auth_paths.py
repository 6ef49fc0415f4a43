"""No data without a key, on any path that can run an operation (issue 14, item 1).

Each test sends the class of request an attacker would vary (the spelling of every GraphQL
parameter name, methods, content types, Accept headers, exports, persisted queries, the
response cache) and checks that a caller without a key gets a 401 and the vendors are not
asked anything, while the same request with the key is served (so the refusal is not a
request the gateway could not read anyway). GraphiQL's page is the one thing served without
a key, only to a GET that carries no GraphQL parameter, and it holds no data.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.core.records import Vendor
from gateway.sandbox import Sandbox
from tests.conftest import GatewayClient, GatewayFactory

KEY = "auth-paths-client-key-0123"
WITH_KEY = {"authorization": f"Bearer {KEY}"}
QUERY = "{ tasks(first: 2) { nodes { id } } }"
PARAMETERS = ("query", "variables", "operationName", "extensions")
ACCEPTS = (
    "text/html",
    "TEXT/HTML",
    "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "application/json",
    "application/graphql-response+json",
    "*/*",
    "multipart/mixed;subscriptionSpec=1.0, application/json",
    "text/event-stream",
    None,
)
APQ_HASH = hashlib.sha256(QUERY.encode()).hexdigest()
APQ = json.dumps({"persistedQuery": {"version": 1, "sha256Hash": APQ_HASH}})


@pytest.fixture(scope="module")
def locked(make_gateway: GatewayFactory) -> GatewayClient:
    # Failed attempts are not throttled here: every refusal must be the 401 of a missing key.
    return make_gateway(open_access=False, api_keys=(KEY,), failed_auth_per_minute=0)


@pytest.fixture
def untouched(clean_sandbox: Sandbox) -> Iterator[Sandbox]:
    """The sandbox; the test fails if any vendor was asked anything during it."""
    yield clean_sandbox
    assert upstream_calls(clean_sandbox) == 0


def upstream_calls(sandbox: Sandbox) -> int:
    return sum(sum(sandbox.counters(v).values()) for v in Vendor)


def assert_refused(response: httpx.Response) -> None:
    assert response.status_code == 401, (response.request.url, response.text[:300])
    if response.request.method != "HEAD":
        body = response.json()
        assert "data" not in body
        assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


def headers_with(accept: str | None, **extra: str) -> dict[str, str]:
    return {**({"accept": accept} if accept is not None else {}), **extra}


def char_spellings(char: str) -> st.SearchStrategy[str]:
    """Every way one letter of a parameter name can be written in a query string."""
    forms = {char, char.upper(), char.lower()}
    forms |= {f"%{ord(c):02x}" for c in (char.lower(), char.upper())}
    forms |= {f"%{ord(c):02X}" for c in (char.lower(), char.upper())}
    return st.sampled_from(sorted(forms))


@st.composite
def spelled(draw: st.DrawFn, name: str) -> str:
    """``name`` with each letter in any case and any percent-encoding, maybe padded with an
    encoded space, ``+`` or NUL (as a sloppy parser would trim)."""
    letters = "".join(draw(char_spellings(c)) for c in name)
    pad = st.sampled_from(["", "", "+", "%20", "%00", "%09"])
    return draw(pad) + letters + draw(pad)


def value_for(name: str) -> str:
    return {
        "query": QUERY,
        "variables": "{}",
        "operationName": "Q",
        "extensions": APQ,
    }[name]


@st.composite
def attack_query_strings(draw: st.DrawFn) -> str:
    """A query string carrying at least one GraphQL parameter under some spelling, with
    decoys, duplicates and a value itself encoded or not."""
    names = draw(st.lists(st.sampled_from(PARAMETERS), min_size=1, max_size=3))
    parts = []
    for name in names:
        value = value_for(name)
        encoded = quote(value, safe="") if draw(st.booleans()) else quote(value, safe="{}:, ")
        parts.append(f"{draw(spelled(name))}={encoded}")
    if draw(st.booleans()):  # the same parameter again, empty, as a decoy for first-wins
        parts.insert(0, f"{draw(spelled(names[0]))}=")
    if draw(st.booleans()):
        parts.insert(draw(st.integers(0, len(parts))), "utm_source=mail")
    return "&".join(parts)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(query_string=attack_query_strings(), accept=st.sampled_from(ACCEPTS))
def test_no_spelling_of_a_graphql_parameter_gets_data_without_a_key(
    locked: GatewayClient, clean_sandbox: Sandbox, query_string: str, accept: str | None
) -> None:
    before = upstream_calls(clean_sandbox)
    response = locked.http.get(f"/graphql?{query_string}", headers=headers_with(accept))
    assert_refused(response)
    assert upstream_calls(clean_sandbox) == before


def test_the_issue_request_is_refused_and_served_with_the_key(
    locked: GatewayClient, clean_sandbox: Sandbox
) -> None:
    url = "/graphql?%71uery=%7Btasks(first%3A2)%7Bnodes%7Bid%7D%7D%7D"
    assert_refused(locked.http.get(url, headers={"accept": "text/html"}))
    assert upstream_calls(clean_sandbox) == 0
    served = locked.http.get(url, headers=WITH_KEY)  # what Strawberry makes of it
    assert served.status_code == 200 and "data" in served.json()


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/json", json.dumps({"query": QUERY})),
        ("application/json", json.dumps([{"query": QUERY}])),
        ("application/json; charset=utf-8", json.dumps({"query": QUERY})),
        ("application/graphql", QUERY),
        ("application/x-www-form-urlencoded", f"query={quote(QUERY)}"),
        ("text/plain", json.dumps({"query": QUERY})),
        ("text/html", json.dumps({"query": QUERY})),
        (None, json.dumps({"query": QUERY})),
        ("application/json", json.dumps({"extensions": json.loads(APQ)})),
    ],
)
@pytest.mark.parametrize("accept", ["text/html", "application/json", None])
def test_a_post_of_any_content_type_needs_a_key(
    locked: GatewayClient,
    untouched: Sandbox,
    content_type: str | None,
    body: str,
    accept: str | None,
) -> None:
    extra = {"content-type": content_type} if content_type else {}
    response = locked.http.post(
        "/graphql?query=" + quote(QUERY), content=body, headers=headers_with(accept, **extra)
    )
    assert_refused(response)


def test_a_multipart_post_needs_a_key(locked: GatewayClient, untouched: Sandbox) -> None:
    operations = json.dumps({"query": QUERY, "variables": {}})
    response = locked.http.post(
        "/graphql",
        files={"operations": (None, operations), "map": (None, "{}")},
        headers={"accept": "text/html"},
    )
    assert_refused(response)


@pytest.mark.parametrize("method", ["HEAD", "OPTIONS", "PUT", "PATCH", "DELETE"])
@pytest.mark.parametrize("query_string", ["", "?query=" + quote(QUERY), "?%71uery=" + quote(QUERY)])
def test_other_methods_need_a_key(
    locked: GatewayClient, untouched: Sandbox, method: str, query_string: str
) -> None:
    response = locked.http.request(
        method, "/graphql" + query_string, headers={"accept": "text/html"}
    )
    assert_refused(response)


@pytest.mark.parametrize("fmt", ["csv", "ndjson"])
@pytest.mark.parametrize("accept", ["text/html", "text/csv", None])
def test_exports_need_a_key(
    locked: GatewayClient, untouched: Sandbox, fmt: str, accept: str | None
) -> None:
    for query_string in ("", "?vendors=AGENTEX", "?%71uery=x"):
        assert_refused(
            locked.http.get(f"/export/tasks.{fmt}{query_string}", headers=headers_with(accept))
        )


@pytest.mark.parametrize("accept", ["text/html", "application/json"])
def test_a_persisted_query_needs_a_key_even_once_registered(
    locked: GatewayClient, clean_sandbox: Sandbox, accept: str
) -> None:
    registered = locked.http.post(
        "/graphql", json={"query": QUERY, "extensions": json.loads(APQ)}, headers=WITH_KEY
    )
    assert registered.status_code == 200 and "data" in registered.json()
    clean_sandbox.reset_counters()
    for spelling in ("extensions", "%65xtensions", "EXTENSIONS", "extensions%20"):
        response = locked.http.get(f"/graphql?{spelling}={quote(APQ)}", headers={"accept": accept})
        assert_refused(response)
    assert upstream_calls(clean_sandbox) == 0


def test_a_cached_answer_is_not_served_without_a_key(locked: GatewayClient) -> None:
    first = locked.http.post("/graphql", json={"query": QUERY}, headers=WITH_KEY)
    assert first.status_code == 200 and "data" in first.json()
    for accept in ("text/html", "application/json"):
        assert_refused(
            locked.http.post("/graphql", json={"query": QUERY}, headers={"accept": accept})
        )
        assert_refused(
            locked.http.get("/graphql", params={"query": QUERY}, headers={"accept": accept})
        )


@pytest.mark.parametrize("path", ["/graphql/", "/GRAPHQL", "//graphql", "/graphql/assets/../"])
def test_near_miss_paths_give_no_data(locked: GatewayClient, untouched: Sandbox, path: str) -> None:
    response = locked.http.get(f"{path}?query={quote(QUERY)}", headers={"accept": "text/html"})
    assert response.status_code in (401, 404), (path, response.status_code)
    assert "nodes" not in response.text


@pytest.mark.parametrize("query_string", ["", "?", "?utm_source=mail", "?theme=dark&x="])
def test_graphiql_page_is_open_without_a_key_and_holds_no_data(
    locked: GatewayClient, untouched: Sandbox, query_string: str
) -> None:
    response = locked.http.get("/graphql" + query_string, headers={"accept": "text/html"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "graphiql" in response.text.lower() and '"nodes"' not in response.text


def test_the_page_never_runs_a_query_sent_in_a_get_body(
    locked: GatewayClient, untouched: Sandbox
) -> None:
    for content_type in ("application/json", "application/x-www-form-urlencoded"):
        body = json.dumps({"query": QUERY}) if "json" in content_type else f"query={QUERY}"
        response = locked.http.request(
            "GET",
            "/graphql",
            content=body,
            headers={"accept": "text/html", "content-type": content_type},
        )
        assert response.status_code == 200 and '"nodes"' not in response.text


def test_without_graphiql_the_page_needs_a_key_too(
    make_gateway: GatewayFactory, untouched: Sandbox
) -> None:
    gateway = make_gateway(
        open_access=False, api_keys=(KEY,), graphiql=False, failed_auth_per_minute=0
    )
    assert_refused(gateway.http.get("/graphql", headers={"accept": "text/html"}))


def test_open_paths_stay_open(locked: GatewayClient) -> None:
    for path in ("/healthz", "/metrics"):
        assert locked.http.get(path).status_code == 200
