"""List arguments are bounded and counted (issue 14, item 3): one id in ``agentIds`` can be
one more upstream listing, so 10,000 of them were 10,000 upstream calls from one request.

Every list argument, written inline or given in variables (the list itself, or the whole
filter object), is refused past ``max_list_items`` with ``BAD_USER_INPUT`` naming it and the
maximum, before anything runs; under the bound, its items count in the query's cost.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.core.records import TaskStatus, Vendor
from gateway.core.stats import GroupBy
from gateway.graph.cost import DEFAULT_MAX_LIST_ITEMS
from gateway.graph.schema import QueryLimits
from tests.conftest import GatewayClient, GatewayFactory

AGENTS = ("agent-a", "agent-b", "agent-c")
"""Few distinct ids, repeated: a long list that asks the sandbox little when it runs."""
ITEMS = {
    "agentIds": st.sampled_from(AGENTS),
    "statuses": st.sampled_from([s.name for s in TaskStatus]),
    "vendors": st.sampled_from([v.name for v in Vendor]),
    "groupBy": st.sampled_from([g.name for g in GroupBy]),
}
ENUMS = {"statuses", "vendors", "groupBy"}


def code(body: dict[str, Any]) -> str | None:
    errors = body.get("errors") or [{}]
    return errors[0].get("extensions", {}).get("code")


def literal(name: str, values: list[str]) -> str:
    return "[" + ", ".join(v if name in ENUMS else json.dumps(v) for v in values) + "]"


def request(name: str, values: list[str], form: str) -> tuple[str, dict[str, Any], str]:
    """A query with the list ``name`` holding ``values``: ``inline``, as a ``list`` variable,
    or inside a ``filter`` variable; and the argument path the gateway must name."""
    if name == "groupBy":
        if form == "inline":
            return f"{{ taskStats(groupBy: {literal(name, values)}) {{ total }} }}", {}, name
        query = "query Q($g: [GroupBy!]!) { taskStats(groupBy: $g) { total } }"
        return query, {"g": values}, name
    path = f"filter.{name}"
    selection = "{ nodes { id } }"
    if form == "inline":
        argument = f"{{{name}: {literal(name, values)}}}"
        return f"{{ tasks(first: 1, filter: {argument}) {selection} }}", {}, path
    if form == "filter":
        query = "query Q($f: TaskFilter) { tasks(first: 1, filter: $f) { nodes { id } } }"
        return query, {"f": {name: values}}, path
    kind = {"agentIds": "[String!]", "statuses": "[TaskStatus!]", "vendors": "[Vendor!]"}[name]
    query = (
        f"query Q($l: {kind}) {{ tasks(first: 1, filter: {{{name}: $l}}) {{ nodes {{ id }} }} }}"
    )
    return query, {"l": values}, path


@st.composite
def list_arguments(draw: st.DrawFn) -> tuple[str, list[str], str]:
    name = draw(st.sampled_from(sorted(ITEMS)))
    size = draw(
        st.one_of(
            st.integers(0, DEFAULT_MAX_LIST_ITEMS),
            st.integers(DEFAULT_MAX_LIST_ITEMS + 1, 3 * DEFAULT_MAX_LIST_ITEMS),
        )
    )
    values = draw(st.lists(ITEMS[name], min_size=size, max_size=size))
    form = draw(st.sampled_from(["inline", "list", "filter"]))
    return name, values, form


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(case=list_arguments())
def test_every_list_argument_is_bounded_however_it_is_given(
    gateway: GatewayClient, clean_sandbox, case: tuple[str, list[str], str]
) -> None:
    name, values, form = case
    query, variables, path = request(name, values, form)
    clean_sandbox.reset_counters()
    response = gateway.http.post("/graphql", json={"query": query, "variables": variables})
    assert response.status_code == 200
    body = response.json()
    refusals = [e for e in body.get("errors", []) if e["extensions"].get("argument") == path]
    if len(values) > DEFAULT_MAX_LIST_ITEMS:
        assert code(body) == "BAD_USER_INPUT"
        assert refusals and refusals[0]["extensions"]["maxItems"] == DEFAULT_MAX_LIST_ITEMS
        assert (
            str(DEFAULT_MAX_LIST_ITEMS) in refusals[0]["message"] and path in refusals[0]["message"]
        )
        assert body.get("data") is None
        assert all(sum(clean_sandbox.counters(v).values()) == 0 for v in Vendor)
    else:
        assert not refusals
        assert code(body) != "BAD_USER_INPUT", body


def test_the_issue_request_ten_thousand_agent_ids(gateway: GatewayClient, clean_sandbox) -> None:
    ids = [f"agent-{i}" for i in range(10_000)]
    body = gateway.query(
        "query Q($f: TaskFilter) { tasks(filter: $f) { nodes { id } } }", {"f": {"agentIds": ids}}
    )
    assert code(body) == "BAD_USER_INPUT"
    assert body["errors"][0]["extensions"] == {
        "code": "BAD_USER_INPUT",
        "argument": "filter.agentIds",
        "maxItems": DEFAULT_MAX_LIST_ITEMS,
    }
    assert all(sum(clean_sandbox.counters(v).values()) == 0 for v in Vendor)


def test_the_bound_is_a_setting(make_gateway: GatewayFactory) -> None:
    small = make_gateway(limits=QueryLimits(max_list_items=2))
    query = (
        "query Q($s: [TaskStatus!]) { tasks(first: 1, filter: {statuses: $s}) { nodes { id } } }"
    )
    assert "errors" not in small.query(query, {"s": ["RUNNING", "FAILED"]})
    body = small.query(query, {"s": ["RUNNING", "FAILED", "PAUSED"]})
    assert body["errors"][0]["extensions"]["maxItems"] == 2


@pytest.mark.parametrize("form", ["inline", "variable"])
def test_list_items_count_in_the_cost(make_gateway: GatewayFactory, form: str) -> None:
    """Each item may be one more listing: ``1 + items + first x (nodes + id)`` per field."""
    budget = 500
    gateway = make_gateway(limits=QueryLimits(max_cost=budget))
    ids = [AGENTS[i % len(AGENTS)] for i in range(90)]
    argument = "$ids" if form == "variable" else json.dumps(ids)

    def query(fields: int) -> str:
        aliases = " ".join(
            f"t{i}: tasks(first: 1, filter: {{agentIds: {argument}}}) {{ nodes {{ id }} }}"
            for i in range(fields)
        )
        return ("query Q($ids: [String!]) " if form == "variable" else "") + f"{{ {aliases} }}"

    variables = {"ids": ids} if form == "variable" else None
    per_field = 1 + len(ids) + 1 * (1 + 1)
    assert 5 * per_field <= budget < 6 * per_field
    assert "errors" not in gateway.query(query(5), variables)
    refused = gateway.query(query(6), variables)
    assert code(refused) == "QUERY_TOO_COSTLY"
    assert refused["errors"][0]["extensions"]["cost"] == 6 * per_field
