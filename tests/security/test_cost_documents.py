"""A document cannot freeze the gateway: its length and tokens are bounded before parsing,
its cost is computed in time linear in its size whatever its fragments do, and a costly one
is refused before validation or execution (issue 14, item 2).

The class of attack: fragments that spread each other many times over (a chain doubling
per level, random DAGs with repeated spreads, cycles), padding (spaces, comments, multi-byte
characters), over every way a document arrives (POST, GET, APQ).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
from typing import Any

import pytest
import websockets
from graphql import FieldNode, FragmentSpreadNode, InlineFragmentNode, Visitor, parse, visit
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.graph.cost import DEFAULT_MAX_COST, document_cost
from gateway.graph.document import DEFAULT_MAX_DOCUMENT_BYTES, DEFAULT_MAX_TOKENS
from gateway.graph.schema import QueryLimits
from tests.conftest import GatewayClient

LEAVES = ("id", "title", "status", "vendor", "createdAt")


def doubling_chain(levels: int, first: int = 1, tag: str = "") -> str:
    """The issue's document: each fragment spreads the previous one twice."""
    fragments = ["fragment F0 on Task { id }"] + [
        f"fragment F{i} on Task {{ ...F{i - 1} ...F{i - 1} }}" for i in range(1, levels + 1)
    ]
    return f"{{ tasks(first: {first}) {{ nodes {{ ...F{levels} }} }} }} {' '.join(fragments)}{tag}"


def code(body: dict[str, Any]) -> str | None:
    errors = body.get("errors") or [{}]
    return errors[0].get("extensions", {}).get("code")


def selections_in(document: str) -> int:
    """Fields, fragment spreads and inline fragments written in the document (not expanded)."""
    count = 0

    class Count(Visitor):
        def enter(self, node: Any, *_: Any) -> None:
            nonlocal count
            if isinstance(node, FieldNode | FragmentSpreadNode | InlineFragmentNode):
                count += 1

    visit(parse(document), Count())
    return count


@pytest.mark.parametrize("levels", [22, 40])
def test_the_doubling_fragment_chain_is_refused_as_too_costly(
    gateway: GatewayClient, levels: int
) -> None:
    document = doubling_chain(levels)
    assert len(document.encode()) < 2_000  # under 2 KB: the bounds on size do not catch it
    body = gateway.query(document)
    assert code(body) == "QUERY_TOO_COSTLY"
    assert body["errors"][0]["extensions"]["cost"] > 2**levels
    assert body.get("data") is None
    # Linear work: a constant number of visits per selection written, not 2**levels.
    assert document_cost(parse(document), {}).visits <= 2 * selections_in(document)


def test_the_chain_is_refused_even_when_no_item_is_asked_for(gateway: GatewayClient) -> None:
    """``first: 0`` multiplies nothing, but validation would still walk every expansion."""
    body = gateway.query(doubling_chain(30, first=0))
    assert code(body) == "QUERY_TOO_COSTLY"


def test_healthz_answers_while_chains_are_being_refused(gateway: GatewayClient) -> None:
    answers: list[str | None] = []

    def attack(n: int) -> None:
        for i in range(5):
            answers.append(code(gateway.query(doubling_chain(40, tag=f" # {n}-{i}"))))

    threads = [threading.Thread(target=attack, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    health = [gateway.http.get("/healthz").status_code for _ in range(10)]
    for thread in threads:
        thread.join()
    assert health == [200] * 10
    assert answers == ["QUERY_TOO_COSTLY"] * 20


def test_a_fragment_cycle_is_a_validation_error_not_a_hang(gateway: GatewayClient) -> None:
    for document in (
        "{ ...A } fragment A on Query { ...A vendors { vendor } }",
        "{ ...A } fragment A on Query { ...B } "
        "fragment B on Query { ...A ...A vendors { vendor } }",
        "{ tasks { nodes { ...A } } } fragment A on Task { ... on Task { ...B } } "
        "fragment B on Task { id ...A ...B }",
    ):
        assert document_cost(parse(document), {}).visits <= 2 * selections_in(document)
        assert code(gateway.query(document)) == "GRAPHQL_VALIDATION_FAILED"


@st.composite
def fragment_dags(draw: st.DrawFn) -> tuple[str, int, int]:
    """A document of fragments on ``Task`` where fragment ``i`` spreads ``i-1`` (so all are
    used) and any earlier ones, each up to three times, plus a few fields; with its cost
    by the documented rules (every field 1, a page multiplies what it selects by ``first``,
    each selection of the expanded document at least 1, each pair of same-named fields in
    one selection set 1), computed here on the DAG."""
    count = draw(st.integers(2, 24))
    first = draw(st.integers(0, 3))
    weighted: list[int] = []  # fields, fragments expanded, per fragment
    expanded: list[int] = []  # selections (fields and spreads), fragments expanded
    merges = 0  # pairs of the same field written in one fragment
    texts = []
    for i in range(count):
        leaves = draw(st.lists(st.sampled_from(LEAVES), min_size=1 if i == 0 else 0, max_size=3))
        spreads = [i - 1] if i else []
        if i:
            extra = draw(st.lists(st.integers(0, i - 1), max_size=3))
            spreads += [j for j in extra for _ in range(draw(st.integers(1, 3)))]
        merges += sum(k * (k - 1) // 2 for k in map(leaves.count, set(leaves)))
        weighted.append(len(leaves) + sum(weighted[j] for j in spreads))
        expanded.append(len(leaves) + sum(1 + expanded[j] for j in spreads))
        body = " ".join([*leaves, *(f"...F{j}" for j in spreads)])
        texts.append(f"fragment F{i} on Task {{ {body} }}")
    top = count - 1
    document = f"{{ tasks(first: {first}) {{ nodes {{ ...F{top} }} }} }} " + " ".join(texts)
    # tasks (1) + first x (nodes (1) + the top fragment); expanded: tasks, nodes, the spread.
    cost = max(1 + first * (1 + weighted[top]), 3 + expanded[top]) + merges
    return document, cost, count


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(dag=fragment_dags())
def test_random_fragment_dags_are_answered_or_refused_in_linear_work(
    gateway: GatewayClient, dag: tuple[str, int, int]
) -> None:
    document, expected, _ = dag
    cost = document_cost(parse(document), {})
    assert cost.total == expected
    assert cost.visits <= 2 * selections_in(document)
    body = gateway.query(document)
    if expected > DEFAULT_MAX_COST:
        assert code(body) == "QUERY_TOO_COSTLY"
        assert body["errors"][0]["extensions"]["cost"] == expected
    else:
        assert "errors" not in body, body["errors"]
        assert isinstance(body["data"]["tasks"]["nodes"], list)


def test_cost_work_grows_linearly_with_the_document() -> None:
    """The work counter over chains of 10 to 200 levels: visits per written selection stay
    constant while the expansion doubles per level."""
    for levels in (10, 50, 100, 200):
        document = doubling_chain(levels)
        cost = document_cost(parse(document), {})
        assert cost.expanded > 2**levels
        assert cost.visits <= 2 * selections_in(document)


# -- size and tokens, before parsing ---------------------------------------------------------
BOUND = 2048
"""A smaller bound than the default, so that a GET carrying the document fits in a URL."""
OVERSIZED = {
    "spaces": "{ vendors { vendor } }" + " " * BOUND,
    "comment": "{ vendors { vendor } } #" + "x" * BOUND,
    # Under the bound in characters, over it in UTF-8 bytes.
    "multi-byte": "{ vendors { vendor } } #" + "\u00e9" * (BOUND // 2 + 10),
    "string": '{ task(id: "' + "a" * BOUND + '") { id } }',
}


@pytest.fixture(scope="module")
def bounded(make_gateway) -> GatewayClient:
    return make_gateway(limits=QueryLimits(max_document_bytes=BOUND))


@pytest.mark.parametrize("name", sorted(OVERSIZED))
def test_an_oversized_document_is_refused_unparsed_on_every_path(
    bounded: GatewayClient, name: str
) -> None:
    document = OVERSIZED[name]
    assert len(document) <= 2 * BOUND
    posted = bounded.http.post("/graphql", json={"query": document})
    strict = bounded.http.post(
        "/graphql",
        json={"query": document},
        headers={"accept": "application/graphql-response+json"},
    )
    got = bounded.http.get("/graphql", params={"query": document})
    digest = hashlib.sha256(document.encode()).hexdigest()
    apq = bounded.http.post(
        "/graphql",
        json={
            "query": document,
            "extensions": {"persistedQuery": {"version": 1, "sha256Hash": digest}},
        },
    )
    assert strict.status_code == 400
    for response in (posted, strict, got, apq):
        assert response.status_code < 500
        assert code(response.json()) == "QUERY_TOO_LARGE", response.text[:300]
        assert "data" not in response.json() or response.json()["data"] is None


def test_the_default_bound_holds_for_a_posted_document(gateway: GatewayClient) -> None:
    document = "{ vendors { vendor } }" + " " * DEFAULT_MAX_DOCUMENT_BYTES
    body = gateway.query(document)
    assert code(body) == "QUERY_TOO_LARGE"
    assert body["errors"][0]["extensions"]["maxBytes"] == DEFAULT_MAX_DOCUMENT_BYTES


def test_a_document_at_the_bound_is_not_refused_for_its_size(gateway: GatewayClient) -> None:
    document = "{ vendors { vendor } }"
    document += " " * (DEFAULT_MAX_DOCUMENT_BYTES - len(document))
    assert "errors" not in gateway.query(document)


@pytest.mark.parametrize(
    "padding",
    ["vendor " * (DEFAULT_MAX_TOKENS + 1), "#\n" * (DEFAULT_MAX_TOKENS + 1)],
    ids=["fields", "comments"],
)
def test_too_many_tokens_are_refused_while_parsing(gateway: GatewayClient, padding: str) -> None:
    document = "{ vendors { vendor " + padding + "} }"
    assert len(document.encode()) <= DEFAULT_MAX_DOCUMENT_BYTES
    body = gateway.query(document)
    assert code(body) == "QUERY_TOO_LARGE"
    assert body["errors"][0]["extensions"]["maxTokens"] == DEFAULT_MAX_TOKENS


def test_a_syntax_error_keeps_its_own_code(gateway: GatewayClient) -> None:
    assert code(gateway.query("{ vendors { vendor ")) == "GRAPHQL_PARSE_FAILED"


def test_a_document_within_the_bound_runs(bounded: GatewayClient) -> None:
    document = "{ vendors { vendor } }"
    assert "errors" not in bounded.query(document + " " * (BOUND - len(document)))


@pytest.mark.parametrize("protocol", ["graphql-transport-ws", "graphql-ws"])
@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ("subscription { taskChanged { id } }" + " " * BOUND, "QUERY_TOO_LARGE"),
        (
            doubling_chain(30)
            .replace("{ tasks(first: 1) { nodes", "subscription { taskChanged")
            .replace("} } } fragment", "} } fragment", 1),
            "QUERY_TOO_COSTLY",
        ),
    ],
    ids=["oversized", "chain"],
)
def test_the_bounds_hold_over_websockets(
    bounded: GatewayClient, protocol: str, document: str, expected: str
) -> None:
    start = "subscribe" if protocol == "graphql-transport-ws" else "start"

    async def subscribe() -> dict[str, Any]:
        url = bounded.url.replace("http://", "ws://") + "/graphql"
        async with websockets.connect(url, subprotocols=[protocol]) as socket:
            await socket.send(json.dumps({"type": "connection_init"}))
            assert json.loads(await socket.recv())["type"] == "connection_ack"
            payload = {"query": document}
            await socket.send(json.dumps({"id": "1", "type": start, "payload": payload}))
            while True:
                message: dict[str, Any] = json.loads(await asyncio.wait_for(socket.recv(), 10))
                if message["type"] != "ka":
                    return message

    message = asyncio.run(subscribe())
    assert message["type"] in ("error", "next", "data"), message
    assert expected in json.dumps(message)


@pytest.mark.parametrize("form", ["vendor ", "... { vendor } ", "... on VendorInfo { vendor } "])
@pytest.mark.parametrize("repeats", [2, 50, 300])
def test_a_field_repeated_in_one_selection_costs_its_pairs(
    gateway: GatewayClient, repeats: int, form: str
) -> None:
    """Validation compares every pair of same-named fields to merge them (those of inline
    fragments included)."""
    document = "{ vendors { " + form * repeats + "} }"
    pairs = repeats * (repeats - 1) // 2
    cost = document_cost(parse(document), {})
    inline = 0 if form == "vendor " else repeats
    assert cost.total == 1 + repeats + inline + pairs
    body = gateway.query(document)
    if cost.total > DEFAULT_MAX_COST:
        assert code(body) == "QUERY_TOO_COSTLY"
    else:
        assert "errors" not in body
