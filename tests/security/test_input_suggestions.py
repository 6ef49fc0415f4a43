"""No error suggests a name: "Did you mean …" maps the schema for a client that may not
introspect it (issue 14, item 11). Fields were clean already; arguments, enum values, input
fields and types were not, in the document and in variables.

Each case takes a real name of the schema, misspells it the way a guesser would (a letter
dropped, doubled, swapped, changed, its case flipped) and checks the answer neither says
"Did you mean" nor quotes the real name.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import GatewayClient
from tests.security.test_input_http import assert_well_formed

# (document with {name} where the misspelt name goes, variables or None, the real name)
IN_DOCUMENT = [
    ("{{ tasks({name}: 1) {{ totalCount }} }}", "first"),
    ("{{ tasks({name}: true) {{ totalCount }} }}", "fresh"),
    ("{{ tasks({name}: {{}}) {{ totalCount }} }}", "orderBy"),
    ('{{ trackers({name}: "a") {{ nodes {{ id }} }} }}', "agentId"),
    ("{{ tasks(filter: {{statuses: [{name}]}}) {{ totalCount }} }}", "FAILED"),
    ("{{ tasks(filter: {{vendors: [{name}]}}) {{ totalCount }} }}", "AGENTEX"),
    ("{{ tasks(orderBy: {{field: {name}}}) {{ totalCount }} }}", "CREATED_AT"),
    ("{{ tasks(orderBy: {{direction: {name}}}) {{ totalCount }} }}", "DESC"),
    ('{{ tasks(filter: {{{name}: "u"}}) {{ totalCount }} }}', "userId"),
    ('{{ tasks(filter: {{{name}: "2026-01-01T00:00:00Z"}}) {{ totalCount }} }}', "updatedAfter"),
    ("query Q($f: {name}) {{ tasks(filter: $f) {{ totalCount }} }}", "TaskFilter"),
    ("query Q($o: {name}) {{ tasks(orderBy: $o) {{ totalCount }} }}", "TaskOrder"),
    ("{{ tasks {{ nodes {{ ... on {name} {{ id }} }} }} }}", "Task"),
    ("{{ tasks {{ {name} }} }}", "totalCount"),
    ("{{ tasks {{ nodes {{ {name} }} }} }}", "vendor"),
    ("{{ {name} {{ vendor }} }}", "vendors"),
    ('mutation {{ updateTracker(input: {{id: "x", {name}: "y"}}) {{ id }} }}', "statusReason"),
]
IN_VARIABLES: list[tuple[str, Any, str]] = [
    (
        "query Q($s: [TaskStatus!]) { tasks(filter: {statuses: $s}) { totalCount } }",
        lambda name: {"s": [name]},
        "FAILED",
    ),
    (
        "query Q($f: TaskFilter) { tasks(filter: $f) { totalCount } }",
        lambda name: {"f": {name: "u"}},
        "userId",
    ),
    (
        "query Q($f: TaskFilter) { tasks(filter: $f) { totalCount } }",
        lambda name: {"f": {"vendors": [name]}},
        "XPANDER",
    ),
    (
        "query Q($o: TaskOrder) { tasks(orderBy: $o) { totalCount } }",
        lambda name: {"o": {"field": name}},
        "UPDATED_AT",
    ),
    (
        "mutation M($i: UpdateTrackerInput!) { updateTracker(input: $i) { id } }",
        lambda name: {"i": {"id": "x", name: "y"}},
        "lastProcessedEventId",
    ),
]
SETTINGS = settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@st.composite
def misspelt(draw: st.DrawFn, real: str) -> str:
    """``real`` with one edit a guesser makes; never ``real`` itself."""
    at = draw(st.integers(min_value=0, max_value=len(real) - 1))
    letter = draw(st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_"))
    edits = [
        real[:at] + real[at + 1 :],  # dropped
        real[:at] + real[at] + real[at:],  # doubled
        real[:at] + letter + real[at + 1 :],  # changed
        real[:at] + letter + real[at:],  # inserted
        real[:at] + real[at].swapcase() + real[at + 1 :],  # case flipped
        real.lower(),
        real.upper(),
    ]
    if at + 1 < len(real):
        edits.append(real[:at] + real[at + 1] + real[at] + real[at + 2 :])  # swapped
    candidates = [e for e in edits if e and e != real and (e[0].isalpha() or e[0] == "_")]
    return draw(st.sampled_from(candidates))


def assert_no_suggestion(body: dict[str, Any], real: str) -> None:
    for error in body.get("errors", []):
        assert "Did you mean" not in error["message"], error
        assert f"'{real}'" not in error["message"], error
        assert f'"{real}"' not in error["message"], error


@st.composite
def document_cases(draw: st.DrawFn) -> tuple[str, str]:
    template, real = draw(st.sampled_from(IN_DOCUMENT))
    return template.format(name=draw(misspelt(real))), real


@st.composite
def variable_cases(draw: st.DrawFn) -> tuple[str, dict[str, Any], str]:
    document, variables, real = draw(st.sampled_from(IN_VARIABLES))
    return document, variables(draw(misspelt(real))), real


@SETTINGS
@given(case=document_cases())
def test_a_misspelt_name_in_the_document_gets_no_suggestion(
    gateway: GatewayClient, case: tuple[str, str]
) -> None:
    document, real = case
    response = gateway.http.post("/graphql", json={"query": document})
    assert_no_suggestion(assert_well_formed(response), real)


@SETTINGS
@given(case=variable_cases())
def test_a_misspelt_name_in_variables_gets_no_suggestion(
    gateway: GatewayClient, case: tuple[str, dict[str, Any], str]
) -> None:
    document, variables, real = case
    response = gateway.http.post("/graphql", json={"query": document, "variables": variables})
    assert_no_suggestion(assert_well_formed(response), real)


def test_each_kind_of_misspelling_is_an_error_without_a_suggestion(gateway: GatewayClient) -> None:
    """The examples of the issue, one per kind: each is refused, none suggests."""
    for document, real in IN_DOCUMENT:
        name = real[:-1] + ("x" if real[-1] != "x" else "y")
        response = gateway.http.post("/graphql", json={"query": document.format(name=name)})
        body = assert_well_formed(response)
        assert body["errors"], (document, body)
        assert_no_suggestion(body, real)
