"""A query cost budget that accounts for page sizes, checked before anything executes.

Every field costs 1; a field that returns a page multiplies what it selects by the page
size it asks for (``first``, or the default); ``totalCount`` costs a whole listing read;
related-record fields (``parentTask``, ``subtasks``) cost upstream lookups per item. A
query over budget is refused with ``extensions.code = "QUERY_TOO_COSTLY"`` and its cost.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
    value_from_ast_untyped,
)
from strawberry.extensions import SchemaExtension

DEFAULT_MAX_COST = 20_000
PAGE_LIMIT = 100
PAGED_FIELDS = {"tasks": 20, "trackers": 20, "subtasks": 10}
FIELD_COST = {"totalCount": 200, "parentTask": 5, "subtasks": 5, "node": 5, "task": 5}


def operation_cost(document_definitions: tuple[Any, ...], variables: Mapping[str, Any]) -> int:
    fragments = {
        d.name.value: d for d in document_definitions if isinstance(d, FragmentDefinitionNode)
    }

    def selection_cost(selection_set: SelectionSetNode | None, seen: frozenset[str]) -> int:
        if selection_set is None:
            return 0
        total = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                total += field_cost(selection, seen)
            elif isinstance(selection, InlineFragmentNode):
                total += selection_cost(selection.selection_set, seen)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                if name in fragments and name not in seen:
                    total += selection_cost(fragments[name].selection_set, seen | {name})
        return total

    def field_cost(node: FieldNode, seen: frozenset[str]) -> int:
        name = node.name.value
        inner = selection_cost(node.selection_set, seen)
        own = FIELD_COST.get(name, 1)
        if name in PAGED_FIELDS:
            size = PAGED_FIELDS[name]
            for argument in node.arguments or ():
                if argument.name.value == "first":
                    value = (
                        variables.get(argument.value.name.value)
                        if isinstance(argument.value, VariableNode)
                        else value_from_ast_untyped(argument.value)
                    )
                    if isinstance(value, int) and value >= 0:
                        # Over the page limit is the resolver's clearer error to give.
                        size = min(value, PAGE_LIMIT)
            return own + size * inner
        return own + inner

    return sum(
        selection_cost(d.selection_set, frozenset())
        for d in document_definitions
        if isinstance(d, OperationDefinitionNode)
    )


class QueryCostLimiter(SchemaExtension):
    """Checked on every request, before validation: the cost depends on the variables
    (``first: $n``), so it cannot be remembered with the document's validity."""

    def __init__(self, max_cost: int = DEFAULT_MAX_COST) -> None:
        self.max_cost = max_cost

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        if document is not None:
            cost = operation_cost(tuple(document.definitions), context.variables or {})
            if cost > self.max_cost:
                context.pre_execution_errors = [
                    *(context.pre_execution_errors or ()),
                    GraphQLError(
                        f"query cost {cost} exceeds the budget of {self.max_cost}: ask for "
                        "smaller pages or fewer fields",
                        extensions={
                            "code": "QUERY_TOO_COSTLY",
                            "cost": cost,
                            "maxCost": self.max_cost,
                        },
                    ),
                ]
        yield
