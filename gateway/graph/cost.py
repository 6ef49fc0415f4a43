"""A query cost budget that accounts for page sizes and list arguments, checked before
anything executes, in time linear in the document's size.

Every field costs 1; a field that returns a page multiplies what it selects for each item
(a connection's ``nodes`` and ``edges``) by the page size it asks for (``first``, or the
default), and pays the rest of the connection (``totalCount``, ``pageInfo``) once;
``totalCount`` costs a whole listing read;
related-record fields (``parentTask``, ``subtasks``) cost upstream lookups per item; every
item of a list argument (``agentIds: [...]``, inline or from a variable) costs 1, since
each may be one more upstream listing. And whatever the page sizes, every selection of the
document with its fragments expanded costs at least 1: a fragment spread twice per level
doubles the work of every later step (validation, execution) even under ``first: 0``.
A field selected again under the same name in one selection set (inline fragments
included) costs one more for each time it was selected before there (k times: k(k-1)/2),
the pairs validation compares to merge them: 1,900 ``vendor`` in one set took 280 ms to
validate. A query over budget is
refused with ``extensions.code = "QUERY_TOO_COSTLY"`` and its cost.

Each fragment's cost is computed once and remembered (a fragment costs the same wherever it
is spread; the multiplier is its enclosing field's), so the walk visits every selection of
the document at most twice, however the fragments spread each other. A fragment cycle is a
validation error; here its back edge simply costs nothing, so the walk always ends.

A list argument longer than ``max_list_items`` is refused with ``BAD_USER_INPUT``, naming
the argument and the maximum.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    ArgumentNode,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    ListValueNode,
    ObjectValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValueNode,
    VariableNode,
    value_from_ast_untyped,
)
from strawberry.extensions import SchemaExtension

DEFAULT_MAX_COST = 20_000
DEFAULT_MAX_LIST_ITEMS = 100
PAGE_LIMIT = 100
PAGED_FIELDS = {"tasks": 20, "trackers": 20, "subtasks": 10}
CONNECTIONS = frozenset({"tasks", "trackers"})
"""Paged fields that return a connection: only its item fields are paid per item."""
ITEM_FIELDS = frozenset({"nodes", "edges"})
FIELD_COST = {"totalCount": 200, "parentTask": 5, "subtasks": 5, "node": 5, "task": 5}
MAX_REPORTED_LISTS = 5
"""Oversized lists named in one answer: enough to fix a request, not an echo of it."""


@dataclass(frozen=True, slots=True)
class OversizedList:
    argument: str
    """Its path as written: ``filter.agentIds``, ``groupBy``."""
    items: int


@dataclass(slots=True)
class Cost:
    """What a document costs, and what computing that took."""

    weighted: int = 0
    """Fields weighted by page sizes, lookups and list items."""
    expanded: int = 0
    """Selections of the document with every fragment spread expanded in place."""
    merges: int = 0
    """Pairs of same-named fields in one selection set, as written (validation compares them)."""
    visits: int = 0
    """Selections walked to compute this: at most twice the selections in the document."""
    oversized: list[OversizedList] = field(default_factory=list)

    @property
    def total(self) -> int:
        return max(self.weighted, self.expanded) + self.merges


def document_cost(
    document: DocumentNode,
    variables: Mapping[str, Any] | None,
    max_list_items: int = DEFAULT_MAX_LIST_ITEMS,
) -> Cost:
    """The cost of every operation of ``document`` together (only one runs, but which one
    is not known yet), with the list arguments longer than ``max_list_items``."""
    return _Walk(document, variables or {}, max_list_items).run()


class _Walk:
    def __init__(
        self, document: DocumentNode, variables: Mapping[str, Any], max_list_items: int
    ) -> None:
        self.variables = dict(variables)
        self.fragments: dict[str, FragmentDefinitionNode] = {}
        self.operations: list[OperationDefinitionNode] = []
        for definition in document.definitions:
            if isinstance(definition, FragmentDefinitionNode):
                self.fragments.setdefault(definition.name.value, definition)
            elif isinstance(definition, OperationDefinitionNode):
                self.operations.append(definition)
                for variable in definition.variable_definitions or ():
                    name = variable.variable.name.value
                    if name not in self.variables and variable.default_value is not None:
                        self.variables[name] = value_from_ast_untyped(variable.default_value)
        self.max_list_items = max_list_items
        self.cost = Cost()
        self.known: dict[str, tuple[int, int]] = {}
        """Each fragment's (weighted, expanded) cost, once computed."""
        self.reported: set[str] = set()
        self.variable_lists: dict[str, tuple[int, list[tuple[str, int]]]] = {}

    def run(self) -> Cost:
        for name in self._fragment_order():
            self.known[name] = self._selections(self.fragments[name].selection_set)[:2]
        for operation in self.operations:
            weighted, expanded, _ = self._selections(operation.selection_set)
            self.cost.weighted += weighted
            self.cost.expanded += expanded
        return self.cost

    def _fragment_order(self) -> list[str]:
        """Every fragment after the fragments it spreads (depth first, without recursion:
        a chain of hundreds of fragments must not reach Python's recursion limit). A spread
        back onto a fragment still open is a cycle and is left out."""
        order: list[str] = []
        state: dict[str, bool] = {}  # False while open, True once placed in ``order``
        for root in self.fragments:
            if root in state:
                continue
            state[root] = False
            stack: list[tuple[str, Iterator[str]]] = [(root, self._spreads(root))]
            while stack:
                name, spreads = stack[-1]
                child = next(spreads, None)
                if child is None:
                    stack.pop()
                    state[name] = True
                    order.append(name)
                elif child in self.fragments and child not in state:
                    state[child] = False
                    stack.append((child, self._spreads(child)))
        return order

    def _spreads(self, name: str) -> Iterator[str]:
        pending: list[SelectionSetNode | None] = [self.fragments[name].selection_set]
        while pending:
            selection_set = pending.pop()
            for selection in selection_set.selections if selection_set else ():
                self.cost.visits += 1
                if isinstance(selection, FragmentSpreadNode):
                    yield selection.name.value
                elif isinstance(selection, FieldNode | InlineFragmentNode):
                    pending.append(selection.selection_set)

    def _selections(
        self,
        selection_set: SelectionSetNode | None,
        names: dict[str, int] | None = None,
        connection: bool = False,
    ) -> tuple[int, int, int]:
        """``(weighted, expanded, once)``; ``names`` counts the response names of the fields
        merged together (an inline fragment's fields merge into its enclosing set's). In a
        ``connection``'s own selection set, ``once`` is the part of ``weighted`` paid once
        per page (``totalCount``, ``pageInfo``, …: every field but the items); fragments
        there count as items, the safe side."""
        weighted = expanded = once = 0
        names = {} if names is None else names
        for selection in selection_set.selections if selection_set else ():
            self.cost.visits += 1
            if isinstance(selection, FieldNode):
                name = (selection.alias or selection.name).value
                self.cost.merges += names.get(name, 0)
                names[name] = names.get(name, 0) + 1
                w, e = self._field(selection)
                if connection and selection.name.value not in ITEM_FIELDS:
                    once += w
            elif isinstance(selection, InlineFragmentNode):
                w, e, _ = self._selections(selection.selection_set, names)
            elif isinstance(selection, FragmentSpreadNode):
                # Unknown, or spread back inside its own cycle: validation reports both.
                w, e = self.known.get(selection.name.value, (0, 0))
            else:  # pragma: no cover - the grammar has no other selection
                continue
            weighted += w
            expanded += 1 + e
        return weighted, expanded, once

    def _field(self, node: FieldNode) -> tuple[int, int]:
        name = node.name.value
        inner, expanded, once = self._selections(node.selection_set, connection=name in CONNECTIONS)
        own = FIELD_COST.get(name, 1) + self._list_items(node.arguments or ()) + once
        inner -= once
        if name in PAGED_FIELDS:
            size = PAGED_FIELDS[name]
            for argument in node.arguments or ():
                if argument.name.value == "first":
                    value = self._value(argument.value)
                    if isinstance(value, int) and value >= 0:
                        # Over the page limit is the resolver's clearer error to give.
                        size = min(value, PAGE_LIMIT)
            return own + size * inner, expanded
        return own + inner, expanded

    def _value(self, node: ValueNode) -> Any:
        return value_from_ast_untyped(node, self.variables)

    def _list_items(self, arguments: Iterable[ArgumentNode]) -> int:
        """Items in every list the arguments hold (nested ones included); each oversized
        list is recorded once by its path."""
        total = 0
        pending: list[tuple[str, ValueNode]] = [(a.name.value, a.value) for a in arguments]
        while pending:
            path, node = pending.pop()
            if isinstance(node, VariableNode):
                items, oversized = self._variable_lists(node.name.value)
                total += items
                for inner, length in oversized:
                    self._oversized(path + inner, length)
            elif isinstance(node, ListValueNode):
                total += len(node.values)
                self._oversized(path, len(node.values))
                pending.extend((path, v) for v in node.values)
            elif isinstance(node, ObjectValueNode):
                pending.extend((f"{path}.{f.name.value}", f.value) for f in node.fields)
        return total

    def _variable_lists(self, name: str) -> tuple[int, list[tuple[str, int]]]:
        """A variable's list items and its oversized lists (paths relative to it): walked
        once however often it is used, without recursion (JSON nests as deep as the body
        allows)."""
        if name in self.variable_lists:
            return self.variable_lists[name]
        items = 0
        oversized: list[tuple[str, int]] = []
        pending: list[tuple[str, Any]] = [("", self.variables.get(name))]
        while pending:
            path, value = pending.pop()
            if isinstance(value, list):
                items += len(value)
                if len(value) > self.max_list_items and len(oversized) < MAX_REPORTED_LISTS:
                    oversized.append((path, len(value)))
                pending.extend((path, v) for v in value)
            elif isinstance(value, dict):
                pending.extend((f"{path}.{k}", v) for k, v in value.items())
        self.variable_lists[name] = items, oversized
        return items, oversized

    def _oversized(self, path: str, items: int) -> None:
        if items > self.max_list_items and path not in self.reported:
            self.reported.add(path)
            self.cost.oversized.append(OversizedList(path, items))


class QueryCostLimiter(SchemaExtension):
    """Checked on every request, before validation: the cost depends on the variables
    (``first: $n``), so it cannot be remembered with the document's validity. Validation
    runs only on a document within budget, so its rules (some walk every fragment spread
    in place) never see an exponential expansion."""

    def __init__(
        self, max_cost: int = DEFAULT_MAX_COST, max_list_items: int = DEFAULT_MAX_LIST_ITEMS
    ) -> None:
        self.max_cost = max_cost
        self.max_list_items = max_list_items

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        if document is not None:
            cost = document_cost(document, context.variables, self.max_list_items)
            errors = [self._too_long(o) for o in cost.oversized[:MAX_REPORTED_LISTS]]
            if cost.total > self.max_cost:
                errors.append(self._too_costly(cost.total))
            if errors:
                context.pre_execution_errors = [*(context.pre_execution_errors or ()), *errors]
        yield

    def _too_long(self, oversized: OversizedList) -> GraphQLError:
        return GraphQLError(
            f"`{oversized.argument}` holds {oversized.items} items; at most "
            f"{self.max_list_items} are allowed",
            extensions={
                "code": "BAD_USER_INPUT",
                "argument": oversized.argument,
                "maxItems": self.max_list_items,
            },
        )

    def _too_costly(self, cost: int) -> GraphQLError:
        return GraphQLError(
            f"query cost {cost} exceeds the budget of {self.max_cost}: ask for smaller pages, "
            "fewer fields or fewer fragment spreads",
            extensions={"code": "QUERY_TOO_COSTLY", "cost": cost, "maxCost": self.max_cost},
        )
