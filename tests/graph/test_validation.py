"""Validation is remembered per document; the page-size budget is still checked per request."""

from __future__ import annotations

from typing import Any

import pytest
import strawberry
from graphql import ValidationContext, ValidationRule
from strawberry.extensions import AddValidationRules

from gateway.graph.validation import ValidDocuments, validation_extensions

COSTLY_WITH_N = "query Deep($n: Int!) { tasks(first: $n) { nodes { id subtasks { id subtasks { id subtasks { id } } } } } }"  # noqa: E501


def counting_schema(valid: ValidDocuments) -> tuple[strawberry.Schema, list[str]]:
    """A small schema with one more rule that records every document it validates."""
    walked: list[str] = []

    class Record(ValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            walked.append(context.document.loc.source.body if context.document.loc else "?")

    @strawberry.type
    class Query:
        @strawberry.field
        def hello(self, name: str = "world") -> str:
            return f"hello {name}"

    extensions: Any = [lambda: AddValidationRules([Record]), *validation_extensions((), valid)]
    return strawberry.Schema(query=Query, extensions=extensions), walked


async def test_a_document_that_passed_is_not_walked_again() -> None:
    schema, walked = counting_schema(ValidDocuments())
    for name in ("a", "b", "c"):
        result = await schema.execute("query Hi($n: String!) { hello(name: $n) }", {"n": name})
        assert result.errors is None and result.data == {"hello": f"hello {name}"}
    assert len(walked) == 1
    assert (await schema.execute("{ hello }")).data == {"hello": "hello world"}
    assert len(walked) == 2


async def test_a_failing_document_fails_every_time() -> None:
    schema, walked = counting_schema(ValidDocuments())
    for _ in range(2):
        result = await schema.execute("{ goodbye }")
        assert result.errors and "goodbye" in result.errors[0].message
    assert len(walked) == 2


def test_remembered_documents_are_bounded_least_recently_used_first() -> None:
    valid = ValidDocuments(max_documents=2)
    valid.add("{ a }")
    valid.add("{ b }")
    assert "{ a }" in valid  # used: now the most recent
    valid.add("{ c }")
    assert len(valid) == 2
    assert "{ b }" not in valid and "{ a }" in valid and "{ c }" in valid


def test_the_cost_budget_is_checked_on_every_request_of_a_remembered_document(gateway) -> None:
    cheap = gateway.query(COSTLY_WITH_N, {"n": 1})
    assert "errors" not in cheap, cheap
    costly = gateway.query(COSTLY_WITH_N, {"n": 100})
    assert costly["errors"][0]["extensions"]["code"] == "QUERY_TOO_COSTLY"
    assert "errors" not in gateway.query(COSTLY_WITH_N, {"n": 1})


def test_limits_hold_for_a_document_seen_before_with_other_variables(gateway) -> None:
    deep = "query D($f: Int) { tasks(first: $f) { nodes { parentTask { parentTask { " + (
        "parentTask { parentTask { parentTask { parentTask { parentTask { parentTask { "
        "parentTask { id } } } } } } } } } } } }"
    )
    for first in (1, 2):
        body = gateway.query(deep, {"f": first})
        assert body["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"


def test_a_connection_pays_its_total_once_not_per_item(gateway) -> None:
    """``totalCount`` is one number per page: a full page with it stays within budget,
    while the same cost asked per item (a lookup under every node) does not."""
    query = "query P($n: Int!) { tasks(first: $n) { totalCount pageInfo { hasNextPage } nodes { id } } }"  # noqa: E501
    body = gateway.query(query, {"n": 100})
    assert "errors" not in body, body
    assert len(body["data"]["tasks"]["nodes"]) == 100
    assert body["data"]["tasks"]["totalCount"] >= 100
    per_item = "query P($n: Int!) { tasks(first: $n) { nodes { id subtasks { id subtasks { id subtasks { id } } } } } }"  # noqa: E501
    assert gateway.query(per_item, {"n": 100})["errors"][0]["extensions"]["code"] == (
        "QUERY_TOO_COSTLY"
    )


LIBRARY_TEXTS = ["maximum operation depth", "aliases found", "Syntax Error"]


@pytest.mark.parametrize("text", LIBRARY_TEXTS)
def test_an_error_quoting_the_callers_text_keeps_its_own_code(gateway, text: str) -> None:
    """Codes come from the error's kind, never from its message: a message that quotes the
    caller's text, whatever it says, is not taken for a limit or a syntax error."""
    literal = gateway.query(f'{{ tasks(first: "{text}") {{ nodes {{ id }} }} }}')
    assert literal["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    variable = gateway.query("query Q($f: Int) { tasks(first: $f) { nodes { id } } }", {"f": text})
    assert variable["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
