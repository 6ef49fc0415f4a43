"""Bad requests get a 4xx GraphQL error with a stable code, never a 5xx, plain text or a
stack trace (issue 14, items 10 and 14; issue 19, part 1).

The class, not the example: generated garbage bodies (random bytes, invalid UTF-8, lone
surrogates, nesting far past the limit, in the body and in ``variables``), every JSON type
for each GraphQL parameter, every content type a client or a cross-site page can send (with
parameters, in any casing, repeated), and every method, over real HTTP.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from gateway.core.records import Vendor
from gateway.sandbox import Sandbox
from tests.conftest import GatewayClient

GRAPHQL_RESPONSE = "application/graphql-response+json"
KNOWN_CODES = frozenset(
    {
        "BAD_REQUEST",
        "BAD_REQUEST_BODY",
        "BAD_USER_INPUT",
        "UNSUPPORTED_MEDIA_TYPE",
        "METHOD_NOT_ALLOWED",
        "GRAPHQL_PARSE_FAILED",
        "GRAPHQL_VALIDATION_FAILED",
        "QUERY_TOO_COMPLEX",
        "QUERY_TOO_COSTLY",
        "PERSISTED_QUERY_NOT_FOUND",
        "INVALID_ID",
        "INVALID_CURSOR",
        "NOT_FOUND",
        "BODY_TOO_LARGE",
    }
)
LEAKS = ("Traceback", 'File "', "Did you mean", "Internal Server Error", "object has no")
QUERIES = (
    "{ __typename }",
    "{ vendors { vendor } }",
    "query Q($n: Int) { tasks(first: $n) { nodes { id } } }",
    "query A { __typename } query B { vendors { vendor } }",
    "mutation { __typename }",
    "{ tasks(",
)
SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

TEXT = st.characters(codec="utf-8")  # no lone surrogates: those are refused as a body
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(TEXT, max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(TEXT, max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
ACCEPTED_TYPES = (
    "application/json",
    "Application/JSON",
    "APPLICATION/JSON",
    "application/json; charset=utf-8",
    "application/json;charset=UTF-8",
    'application/json; charset="utf-8"',
    "application/json ; Charset=Utf-8 ; foo=bar",
)
REFUSED_TYPES = (
    None,
    "",
    "text/plain",
    "text/plain;charset=UTF-8",
    "TEXT/PLAIN",
    "application/x-www-form-urlencoded",
    "Application/X-WWW-Form-Urlencoded; charset=utf-8",
    "multipart/form-data; boundary=x",
    "MULTIPART/FORM-DATA; boundary=----x",
    "application/graphql",
    "application/graphql-response+json",
    "application/jsonp",
    "application/json, text/plain",
    "text/json",
    "application/json; charset=latin-1",
    "application/json; charset=utf-16",
    "*/*",
)
HEADER_NAMES = ("content-type", "Content-Type", "CONTENT-TYPE")


def assert_well_formed(response: httpx.Response) -> dict[str, Any]:
    """Below 500, a GraphQL-shaped JSON body, every error with a known code, nothing leaked."""
    assert response.status_code < 500, response.text
    assert response.headers["content-type"].split(";")[0] in ("application/json", GRAPHQL_RESPONSE)
    for leak in LEAKS:
        assert leak not in response.text, response.text
    body: dict[str, Any] = response.json()
    assert set(body) <= {"data", "errors", "extensions"}, body
    for error in body.get("errors", []):
        assert error["extensions"]["code"] in KNOWN_CODES, error
    return body


def assert_refused(response: httpx.Response, status: int, code: str) -> None:
    body = assert_well_formed(response)
    assert response.status_code == status, response.text
    assert "data" not in body
    assert [e["extensions"]["code"] for e in body["errors"]] == [code]


def post(
    gateway: GatewayClient,
    content: bytes,
    content_type: str | None = "application/json",
    name: str = "content-type",
    accept: str | None = None,
) -> httpx.Response:
    headers = [] if content_type is None else [(name, content_type)]
    if accept is not None:
        headers.append(("accept", accept))
    return gateway.http.post("/graphql", content=content, headers=headers)


def nested(depth: int, opener: str) -> str:
    """JSON ``depth`` levels deep: arrays, or objects."""
    if opener == "[":
        return "[" * depth + "1" + "]" * depth
    return '{"a":' * depth + "1" + "}" * depth


@SETTINGS
@given(body=st.binary(max_size=600), content_type=st.sampled_from(ACCEPTED_TYPES + REFUSED_TYPES))
@example(body=b'{"query": "{ vendors { vendor } }\xff"}', content_type="application/json")
@example(body=b"\xff\xfe{\x00}\x00", content_type="application/json")
@example(body=b"", content_type="application/json")
def test_random_bytes_never_get_a_5xx(
    gateway: GatewayClient, body: bytes, content_type: str
) -> None:
    assert_well_formed(post(gateway, body, content_type))


@SETTINGS
@given(
    prefix=st.sampled_from(QUERIES),
    bad=st.sampled_from(
        [b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xc0\xaf", b"\x80"]
    ),
    position=st.integers(min_value=0, max_value=40),
)
def test_invalid_utf8_is_a_bad_request_body(
    gateway: GatewayClient, prefix: str, bad: bytes, position: int
) -> None:
    """Wherever an invalid UTF-8 sequence sits in a body, the body is refused as such."""
    valid = json.dumps({"query": prefix, "variables": {"n": 1}}).encode()
    at = min(position, len(valid))
    assert_refused(post(gateway, valid[:at] + bad + valid[at:]), 400, "BAD_REQUEST_BODY")


def raw_body(query: str, **parts: str) -> bytes:
    """A request body with ``parts`` spliced in as raw JSON text (which ``json`` would
    never produce: lone surrogates, absurd nesting)."""
    spliced = "".join(f', "{name}": {text}' for name, text in parts.items())
    return ('{"query": ' + json.dumps(query) + spliced + "}").encode()


@pytest.mark.parametrize("escape", ["\\ud800", "\\udfff", "\\ud83d", "x\\ude00y"])
@pytest.mark.parametrize("where", ["query", "variable", "operationName", "key"])
def test_a_lone_surrogate_is_a_bad_request_body(
    gateway: GatewayClient, escape: str, where: str
) -> None:
    query = "query Q($u: ID!) { task(id: $u) { id } }"
    bodies = {
        "query": ('{"query": "{ __typename } # ' + escape + '"}').encode(),
        "variable": raw_body(query, variables=f'{{"u": "{escape}"}}'),
        "operationName": raw_body(query, operationName=f'"{escape}"'),
        "key": raw_body(query, variables=f'{{"{escape}": 1}}'),
    }
    assert_refused(post(gateway, bodies[where]), 400, "BAD_REQUEST_BODY")
    variables = f'{{"u": "{escape}"}}'
    get = gateway.http.get("/graphql", params={"query": query, "variables": variables})
    assert_refused(get, 400, "BAD_REQUEST_BODY")


@pytest.mark.parametrize("depth", [33, 100, 999, 5_000, 30_000])
@pytest.mark.parametrize("opener", ["[", "{"])
def test_deep_nesting_is_refused_in_the_body_and_in_variables(
    gateway: GatewayClient, depth: int, opener: str
) -> None:
    deep = nested(depth, opener)
    query = "query Q($v: [String]) { __typename }"
    for body in (
        deep.encode(),
        raw_body(query, variables=f'{{"v": {deep}}}'),
        raw_body(query, extensions=f'{{"e": {deep}}}'),
        raw_body(query, junk=deep),
    ):
        response = post(gateway, body, "application/json", accept=GRAPHQL_RESPONSE)
        assert_refused(response, 400, "BAD_REQUEST_BODY")
    if depth <= 100:  # a longer URL is refused by the HTTP server before the gateway
        variables = f'{{"v": {deep}}}'
        get = gateway.http.get("/graphql", params={"query": query, "variables": variables})
        assert_refused(get, 400, "BAD_REQUEST_BODY")


def test_nesting_within_the_limit_is_read(gateway: GatewayClient) -> None:
    """30 levels of variables are decoded and judged by GraphQL, not refused as a body."""
    response = post(
        gateway,
        json.dumps(
            {
                "query": "query Q($v: [String!]) { tasks(filter: {agentIds: $v}) { totalCount } }",
                "variables": {"v": json.loads(nested(30, "["))},
            }
        ).encode(),
    )
    body = assert_well_formed(response)
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


@SETTINGS
@given(
    query=st.sampled_from(QUERIES) | JSON_VALUES,
    variables=st.none() | JSON_VALUES,
    operation=st.none() | st.sampled_from(["Q", "A", "B", "nope"]) | JSON_VALUES,
    extensions=st.none() | JSON_VALUES,
    accept=st.sampled_from([None, "application/json", GRAPHQL_RESPONSE, "*/*"]),
)
def test_any_json_type_for_any_parameter_is_answered_cleanly(
    gateway: GatewayClient,
    query: Any,
    variables: Any,
    operation: Any,
    extensions: Any,
    accept: str | None,
) -> None:
    payload = {
        "query": query,
        "variables": variables,
        "operationName": operation,
        "extensions": extensions,
    }
    response = post(gateway, json.dumps(payload).encode(), accept=accept)
    body = assert_well_formed(response)
    wrong = [
        name
        for name, value, kind in (
            ("query", query, str),
            ("variables", variables, dict),
            ("operationName", operation, str),
            ("extensions", extensions, dict),
        )
        if value is not None and not isinstance(value, kind)
    ]
    if wrong:  # a parameter of the wrong type: the request is malformed, nothing runs
        assert_refused(response, 400, "BAD_REQUEST")
        assert any(name in body["errors"][0]["message"] for name in wrong)


@pytest.mark.parametrize("operation", [{}, {"a": 1}, [], ["Q"], 1, 1.5, True, False])
@pytest.mark.parametrize("accept", ["application/json", GRAPHQL_RESPONSE])
def test_an_operation_name_that_is_not_a_string_is_400(
    gateway: GatewayClient, operation: Any, accept: str
) -> None:
    payload = {"query": "query Q { __typename }", "operationName": operation}
    response = post(gateway, json.dumps(payload).encode(), accept=accept)
    assert_refused(response, 400, "BAD_REQUEST")
    assert "operationName" in response.json()["errors"][0]["message"]


@pytest.mark.parametrize("body", [b"null", b"1", b'"query"', b"true", b"[]", b"[1]"])
def test_a_body_that_is_not_one_request_object_is_400(gateway: GatewayClient, body: bytes) -> None:
    assert_refused(post(gateway, body), 400, "BAD_REQUEST")


@SETTINGS
@given(
    content_type=st.sampled_from(REFUSED_TYPES),
    name=st.sampled_from(HEADER_NAMES),
    query=st.sampled_from(QUERIES),
)
def test_a_post_that_is_not_json_is_415(
    gateway: GatewayClient, content_type: str | None, name: str, query: str
) -> None:
    body = json.dumps({"query": query}).encode()
    assert_refused(post(gateway, body, content_type, name), 415, "UNSUPPORTED_MEDIA_TYPE")


@pytest.mark.parametrize("content_type", ACCEPTED_TYPES)
@pytest.mark.parametrize("name", HEADER_NAMES)
def test_json_in_any_spelling_is_served(
    gateway: GatewayClient, content_type: str, name: str
) -> None:
    response = post(gateway, b'{"query": "{ __typename }"}', content_type, name)
    assert response.status_code == 200
    assert response.json() == {"data": {"__typename": "Query"}}


def test_the_first_content_type_decides(gateway: GatewayClient) -> None:
    """As Starlette (and so Strawberry) reads it: a refused type first is refused."""
    body = b'{"query": "{ __typename }"}'
    refused = gateway.http.post(
        "/graphql",
        content=body,
        headers=[("content-type", "text/plain"), ("content-type", "application/json")],
    )
    assert_refused(refused, 415, "UNSUPPORTED_MEDIA_TYPE")


def cross_site_shapes(query: str) -> list[tuple[str | None, bytes]]:
    """Bodies a page on another origin can send without a preflight, and a typeless one."""
    document = json.dumps({"query": query}).encode()
    return [
        ("text/plain", document),
        ("text/plain;charset=UTF-8", document),
        ("application/x-www-form-urlencoded", document),
        ("application/x-www-form-urlencoded", b"query=" + query.encode()),
        (
            "multipart/form-data; boundary=b",
            b'--b\r\nContent-Disposition: form-data; name="query"\r\n\r\n'
            + query.encode()
            + b"\r\n--b--\r\n",
        ),
        (None, document),
    ]


@pytest.mark.parametrize(
    "query", ["{ tasks(first: 3) { nodes { id } } }", "query Named { tasks { nodes { vendor } } }"]
)
def test_the_response_cache_never_answers_a_refused_content_type(
    gateway: GatewayClient, clean_sandbox: Sandbox, query: str
) -> None:
    """A cached answer exists (the same document, sent as JSON, is answered without a
    vendor call), yet a cross-site-shaped POST of that document is refused."""
    document = json.dumps({"query": query}).encode()
    warm = post(gateway, document)
    assert warm.status_code == 200 and "errors" not in warm.json()
    clean_sandbox.reset_counters()
    assert post(gateway, document).json() == warm.json()
    assert sum(sum(clean_sandbox.counters(v).values()) for v in Vendor) == 0  # a hit
    for content_type, body in cross_site_shapes(query):
        assert_refused(post(gateway, body, content_type), 415, "UNSUPPORTED_MEDIA_TYPE")
    assert sum(sum(clean_sandbox.counters(v).values()) for v in Vendor) == 0


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "PROPFIND"])
def test_other_methods_are_405_in_graphql_shape(gateway: GatewayClient, method: str) -> None:
    response = gateway.http.request(
        method,
        "/graphql",
        content=b'{"query": "{ __typename }"}',
        headers={"content-type": "application/json"},
    )
    assert_refused(response, 405, "METHOD_NOT_ALLOWED")
    assert "POST" in response.headers["allow"]


@SETTINGS
@given(
    params=st.dictionaries(
        st.sampled_from(["query", "variables", "operationName", "extensions"]),
        st.text(TEXT, max_size=40) | st.sampled_from(QUERIES) | JSON_VALUES.map(json.dumps),
        max_size=4,
    ),
    accept=st.sampled_from([None, "application/json", GRAPHQL_RESPONSE]),
)
def test_any_get_parameters_are_answered_cleanly(
    gateway: GatewayClient, params: dict[str, str], accept: str | None
) -> None:
    headers = {"accept": accept} if accept else {}
    response = gateway.http.get("/graphql", params=params, headers=headers)
    if response.headers["content-type"].startswith("text/html"):
        return  # GraphiQL's page (no GraphQL parameter at all)
    assert_well_formed(response)


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    value=st.text(
        alphabet=st.characters(blacklist_categories=("Cs",)), min_size=65, max_size=20_000
    ),
    field=st.sampled_from(["task", "node"]),
)
@example(value="x" * 100_000, field="task")
def test_a_refused_id_is_quoted_only_in_part(
    gateway: GatewayClient, value: str, field: str
) -> None:
    """An id that is not one is refused as ``INVALID_ID`` quoting at most its first 64
    characters: the answer does not grow with what the caller sent."""
    body = gateway.query(f"query($id: ID!) {{ {field}(id: $id) {{ id }} }}", {"id": value})
    [error] = body["errors"]
    assert error["extensions"]["code"] == "INVALID_ID"
    assert repr(value[:64]) in error["message"]
    assert len(error["message"]) < 64 * 6 + 100  # a quoted character is at most \U0010ffff
