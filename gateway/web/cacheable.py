"""Which GraphQL-over-HTTP requests the response cache may answer, read from the parsed
request, never from its text.

Cacheable: a query operation (the one ``operationName`` picks) with no ``fresh`` argument
that is true (literally, through a variable, or a variable's default; in the operation or in
any fragment), asking for neither ``vendorParts`` (which describe one particular fetch) nor,
at the top, ``vendors`` (live operator state), and carrying no ``extensions`` (persisted
queries take the full path). A body or a GET's ``variables`` are decoded and checked by the
view's own rules (``graphql_request``), so what the view would refuse is never a key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import orjson
from graphql import (
    ArgumentNode,
    BooleanValueNode,
    DocumentNode,
    FieldNode,
    GraphQLError,
    OperationDefinitionNode,
    OperationType,
    VariableNode,
    Visitor,
    parse,
    visit,
)
from graphql.language.visitor import BREAK
from starlette.datastructures import QueryParams

from gateway.web.errors import RequestRefused
from gateway.web.graphql_request import parse_json, parse_request_body

LIVE_FIELDS = frozenset({"vendors"})
"""Query fields that describe the gateway's state now (``Query.vendors``), never cached."""
FETCH_FIELDS = frozenset({"vendorParts"})
"""Fields that describe one particular fetch (where each vendor's part came from)."""
FRESH_ARGUMENT = "fresh"
"""``tasks(fresh: true)``: ask the vendors now."""


@dataclass(frozen=True, slots=True)
class ReadOperation:
    """A query operation whose answer may be cached, unless a variable makes it fresh."""

    name: str
    fresh_variables: tuple[tuple[str, bool], ...]
    """Variables passed as a ``fresh`` argument, each with whether its default is true."""

    def fresh(self, variables: object) -> bool:
        """Whether these variables make a ``fresh`` argument anything but false or absent (a
        value that is not a boolean is refused by GraphQL, so never cached either way)."""
        given = variables if isinstance(variables, Mapping) else {}
        for name, default in self.fresh_variables:
            value = given.get(name, True if default else None)  # absent: its default
            if value is not False and value is not None:
                return True
        return False


class _Arguments(Visitor):
    """Every field and argument of a document, fragments included: what it asks for."""

    def __init__(self) -> None:
        super().__init__()
        self.uncacheable = False
        self.fresh_variables: set[str] = set()

    def enter_field(self, node: FieldNode, *_: Any) -> Any:
        if node.name.value in FETCH_FIELDS:
            self.uncacheable = True
            return BREAK
        return None

    def enter_argument(self, node: ArgumentNode, *_: Any) -> Any:
        if node.name.value != FRESH_ARGUMENT:
            return None
        if isinstance(node.value, VariableNode):
            self.fresh_variables.add(node.value.name.value)
        elif not (isinstance(node.value, BooleanValueNode) and node.value.value is False):
            self.uncacheable = True
            return BREAK
        return None


@lru_cache(maxsize=1024)
def read_operation(query: str, operation_name: str | None) -> ReadOperation | None:
    """The query operation ``operation_name`` picks, if its answer may be cached; None
    otherwise (not a query, unparsable, or asking how or how freshly its data was fetched)."""
    try:
        document = parse(query)
    except (GraphQLError, RecursionError):
        return None
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    chosen = [
        op
        for op in operations
        if operation_name is None or (op.name is not None and op.name.value == operation_name)
    ]
    if len(chosen) != 1 or chosen[0].operation is not OperationType.QUERY:
        return None
    operation = chosen[0]
    top = operation.selection_set.selections
    if any(not isinstance(f, FieldNode) or f.name.value in LIVE_FIELDS for f in top):
        return None  # operator state, read fresh (top-level fragments: not worth a look)
    found = _arguments(document)
    if found is None:
        return None
    defaults = {
        d.variable.name.value: isinstance(d.default_value, BooleanValueNode)
        and d.default_value.value
        for d in operation.variable_definitions or ()
    }
    fresh = tuple(sorted((name, defaults.get(name, False)) for name in found))
    return ReadOperation(operation.name.value if operation.name else "anonymous", fresh)


def _arguments(document: DocumentNode) -> frozenset[str] | None:
    """The variables passed as ``fresh``; None when the document is never cacheable."""
    walker = _Arguments()
    try:
        visit(document, walker)
    except RecursionError:
        return None
    return None if walker.uncacheable else frozenset(walker.fresh_variables)


MAX_REMEMBERED_BODY = 8192
"""Bodies up to this size have their parse remembered (``cacheable_body``)."""


def cacheable_payload(payload: Any, variables: Any = None) -> tuple[str, bytes] | None:
    """The operation name and canonical key material (query, variables, operation name) of
    a cacheable request, or None. ``variables`` are the decoded ones when the payload holds
    them as text (a GET)."""
    if not isinstance(payload, Mapping) or "extensions" in payload:
        return None  # persisted queries and extensions take the full path
    query, operation = payload.get("query"), payload.get("operationName")
    if not isinstance(query, str) or not (operation is None or isinstance(operation, str)):
        return None
    read = read_operation(query, operation)
    given = payload.get("variables") if variables is None else variables
    if read is None or read.fresh(given):
        return None
    material = orjson.dumps(
        [query, payload.get("variables"), operation], option=orjson.OPT_SORT_KEYS
    )
    return read.name, material


def _parse_body(body: bytes) -> tuple[str, bytes] | None:
    """Decoded and checked by the view's own rules, so a body the view would refuse (not
    UTF-8, too deep, parameters of the wrong type) is never a key, hence never a hit."""
    try:
        return cacheable_payload(parse_request_body(body))
    except RequestRefused:
        return None


_remembered_body = lru_cache(maxsize=1024)(_parse_body)


def cacheable_body(body: bytes) -> tuple[str, bytes] | None:
    """``cacheable_payload`` of a POST body, remembered up to ``MAX_REMEMBERED_BODY``: a
    client repeating a request repeats its bytes, and parsing them again for every hit cost
    more than the rest of the lookup."""
    return _remembered_body(body) if len(body) <= MAX_REMEMBERED_BODY else _parse_body(body)


def cacheable_query_string(query_string: bytes) -> tuple[str, bytes] | None:
    """``cacheable_payload`` of a GET's parameters; its ``variables`` decoded by the view's
    rules (text the view would refuse is never a key)."""
    params = QueryParams(query_string)
    if "extensions" in params:
        return None
    payload = {
        "query": params.get("query"),
        "operationName": params.get("operationName"),
        "variables": params.get("variables"),
    }
    variables: Any = None
    if payload["variables"] is not None:
        try:
            variables = parse_json(payload["variables"])
        except RequestRefused:
            return None
        if not isinstance(variables, dict):
            return None
    return cacheable_payload(payload, variables)
