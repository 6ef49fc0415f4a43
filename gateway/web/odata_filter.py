"""``$filter`` to SQL: parsed by ``odata-query`` (its lexer, parser and AST), translated to
SQLAlchemy Core by a visitor of that tree (``FilterTranslator``, which says why not the
library's own) that accepts only what can be answered exactly and cheaply, and refuses
everything else with a 400 that names the problem.

What a filter may say: comparisons (``eq ne gt ge lt le``) and ``in`` between a property and
a literal of the property's type, ``and``/``or``/``not``, parentheses, ``true``/``false``, and
``contains``/``startswith``/``endswith`` on text properties. Arithmetic, other functions
(``matchesPattern`` would hand a regular expression to the database; ``now()`` and the date
parts differ between SQLite and PostgreSQL), lambdas and property-to-property comparisons are
refused, not half-supported.

Every comparison is two-valued, as OData defines it: ``x ne 'a'`` holds for a null ``x``, and
``not (x gt 1)`` too, where plain SQL would drop both rows (``NULL``); the translation guards
each comparison on a nullable column accordingly. Values are bound as parameters with the
column's own SQL type, never pasted into SQL. Before any of that, the text is bounded
(``max_bytes``, as ``graphql.max_document_bytes`` bounds a GraphQL document), and the parsed
tree by depth, size and list length, so the recursive translation (and SQLAlchemy's compiler
after it) never nears Python's recursion limit.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from odata_query import ast
from odata_query.grammar import ODataLexer, ODataParser
from odata_query.visitor import NodeVisitor
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import GenericFunction

from gateway.graph.cost import DEFAULT_MAX_LIST_ITEMS
from gateway.web.odata_errors import ODataError
from gateway.web.odata_model import DATE_TIME_OFFSET, DOUBLE, INT64, STRING, Property

DEFAULT_MAX_DEPTH = 32
"""Nesting of the parsed filter; a run of one operator (``a or b or c …``, what a BI tool's
slicer sends) counts as one level."""
DEFAULT_MAX_NODES = 2_000
"""Nodes of the parsed filter, as ``graphql.max_tokens`` bounds a GraphQL document."""
INT64_RANGE = (-(2**63), 2**63 - 1)
TARGET = "$filter"

Clause = sa.ColumnElement[bool]


@dataclass(frozen=True)
class FilterLimits:
    max_bytes: int
    max_depth: int = DEFAULT_MAX_DEPTH
    max_nodes: int = DEFAULT_MAX_NODES
    max_list_items: int = DEFAULT_MAX_LIST_ITEMS


def bad_filter(message: str) -> ODataError:
    return ODataError(400, "INVALID_FILTER", message, TARGET)


class text_position(GenericFunction[int]):
    """1-based position of a substring, 0 when absent: case-sensitive in every database,
    where ``LIKE`` is not in SQLite."""

    type = sa.Integer()
    inherit_cache = True


@compiles(text_position)
def _strpos(element: text_position, compiler: SQLCompiler, **kw: Any) -> str:
    return f"strpos({compiler.process(element.clauses, **kw)})"


@compiles(text_position, "sqlite")
def _instr(element: text_position, compiler: SQLCompiler, **kw: Any) -> str:
    return f"instr({compiler.process(element.clauses, **kw)})"


def parse_filter(text: str, limits: FilterLimits) -> ast._Node:
    """The filter's tree, checked against ``limits``. Any failure of the parser is the
    caller's text at fault: its error types do not cover every way it can refuse."""
    if len(text.encode()) > limits.max_bytes:
        raise bad_filter(f"the filter is longer than {limits.max_bytes} bytes")
    if not text.strip():
        raise bad_filter("the filter is empty")
    try:
        tree: ast._Node = ODataParser().parse(ODataLexer().tokenize(text))
    except Exception as exc:
        raise bad_filter(f"the filter is not valid OData: {_reason(exc)}") from None
    if tree is None:
        raise bad_filter("the filter is not valid OData")
    check_shape(tree, limits)
    return tree


def _reason(exc: Exception) -> str:
    """The parser's own account, cut short: it quotes the caller's text, never ours."""
    return str(exc)[:200] or type(exc).__name__


def check_shape(tree: ast._Node, limits: FilterLimits) -> None:
    """Depth, size and list lengths, walked without recursion."""
    stack: list[tuple[Any, int]] = [(tree, 1)]
    nodes = 0
    while stack:
        node, depth = stack.pop()
        nodes += 1
        if depth > limits.max_depth:
            raise bad_filter(f"the filter nests deeper than {limits.max_depth} levels")
        if nodes > limits.max_nodes:
            raise bad_filter(f"the filter has more than {limits.max_nodes} parts")
        if isinstance(node, ast.List) and len(node.val) > limits.max_list_items:
            raise bad_filter(f"a list has more than {limits.max_list_items} values")
        children = node.val if isinstance(node, ast.List) else _children(node)
        stack.extend((child, depth + (not _same_chain(node, child))) for child in children)


def _same_chain(parent: ast._Node, child: ast._Node) -> bool:
    """``a or b or c`` is one level: the translation flattens it (``_chain``)."""
    return (
        isinstance(parent, ast.BoolOp)
        and isinstance(child, ast.BoolOp)
        and type(parent.op) is type(child.op)
    )


def _chain(node: ast.BoolOp) -> list[ast._Node]:
    """The operands of a run of one operator, in order, found without recursion."""
    operands: list[ast._Node] = []
    pending: list[ast._Node] = [node]
    while pending:
        current = pending.pop()
        if _same_chain(node, current):
            pending.extend((current.right, current.left))  # type: ignore[attr-defined]
        else:
            operands.append(current)
    return operands


def _children(node: ast._Node) -> list[ast._Node]:
    children: list[ast._Node] = []
    for value in vars(node).values():
        if isinstance(value, ast._Node):
            children.append(value)
        elif isinstance(value, list):
            children.extend(v for v in value if isinstance(v, ast._Node))
    return children


COMPARATORS: dict[type, Callable[[Any, Any], Clause]] = {
    ast.Eq: lambda c, v: c == v,
    ast.NotEq: lambda c, v: c != v,
    ast.Lt: lambda c, v: c < v,
    ast.LtE: lambda c, v: c <= v,
    ast.Gt: lambda c, v: c > v,
    ast.GtE: lambda c, v: c >= v,
}
FLIPPED: dict[type, type] = {
    ast.Eq: ast.Eq,
    ast.NotEq: ast.NotEq,
    ast.Lt: ast.Gt,
    ast.LtE: ast.GtE,
    ast.Gt: ast.Lt,
    ast.GtE: ast.LtE,
}
TEXT_FUNCTIONS = ("contains", "startswith", "endswith")
EXAMPLES = {
    STRING: "'text'",
    DATE_TIME_OFFSET: "2024-01-31T00:00:00Z",
    DOUBLE: "1.5",
    INT64: "100",
}


class FilterTranslator(NodeVisitor):
    """The checked tree as one SQLAlchemy condition over the model's columns.

    A visitor of odata-query's tree, but not its SQLAlchemy visitor, which on this index
    would answer wrongly: it binds literals without the column's type (times are integers on
    SQLite), keeps SQL's three-valued logic (``ne`` and ``not`` drop nulls), passes ``%`` and
    ``_`` of ``contains`` through as wildcards, and emits ``strpos``, which SQLite lacks."""

    def __init__(self, properties: dict[str, Property]) -> None:
        self.properties = properties

    def translate(self, tree: ast._Node) -> Clause:
        return self.boolean(tree)

    def generic_visit(self, node: ast._Node) -> Any:
        raise bad_filter(f"{_describe(node)} is not supported in a filter")

    def boolean(self, node: ast._Node) -> Clause:
        """A node that must be a condition."""
        if isinstance(node, (ast.Compare, ast.BoolOp, ast.Call)):
            result: Clause = self.visit(node)
            return result
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            return sa.not_(self.boolean(node.operand))
        if isinstance(node, ast.Boolean):
            return sa.true() if node.py_val else sa.false()
        raise bad_filter(f"{_describe(node)} is not a condition")

    def visit_BoolOp(self, node: ast.BoolOp) -> Clause:
        combine = sa.and_ if isinstance(node.op, ast.And) else sa.or_
        return combine(*(self.boolean(operand) for operand in _chain(node)))

    def property_of(self, node: ast.Identifier) -> Property:
        prop = self.properties.get(node.name) if not node.namespace else None
        if prop is None:
            known = ", ".join(self.properties)
            raise bad_filter(f"unknown property {_name_of(node)!r}; the properties: {known}")
        return prop

    def visit_Compare(self, node: ast.Compare) -> Clause:
        comparator, left, right = node.comparator, node.left, node.right
        if isinstance(comparator, ast.In):
            return self._in(left, right)
        if not isinstance(left, ast.Identifier) and isinstance(right, ast.Identifier):
            comparator, left, right = FLIPPED[type(comparator)](), right, left
        if not isinstance(left, ast.Identifier):
            raise bad_filter("a comparison needs a property on one side and a value on the other")
        prop = self.property_of(left)
        value = self.value(prop, right)
        column = prop.column
        if value is None:
            if isinstance(comparator, ast.Eq):
                return column.is_(None)
            if isinstance(comparator, ast.NotEq):
                return column.is_not(None)
            raise bad_filter("null can only be compared with eq or ne")
        condition = COMPARATORS[type(comparator)](column, self.bind(prop, value))
        if not prop.nullable:
            return condition
        if isinstance(comparator, ast.NotEq):
            return sa.or_(column.is_(None), condition)
        return sa.and_(column.is_not(None), condition)

    def _in(self, left: ast._Node, right: ast._Node) -> Clause:
        if not isinstance(left, ast.Identifier):
            raise bad_filter("`in` needs a property on its left")
        prop = self.property_of(left)
        items = right.val if isinstance(right, ast.List) else [right]
        values = [self.value(prop, item) for item in items]
        present = [self.bind(prop, v) for v in values if v is not None]
        condition: Clause = prop.column.in_(present) if present else sa.false()
        if prop.nullable:
            condition = sa.and_(prop.column.is_not(None), condition)
            if None in values:
                condition = sa.or_(prop.column.is_(None), condition)
        return condition

    def visit_Call(self, node: ast.Call) -> Clause:
        name = _name_of(node.func).lower()
        if name not in TEXT_FUNCTIONS:
            raise bad_filter(
                f"the function {_name_of(node.func)!r} is not supported; "
                f"the supported functions: {', '.join(TEXT_FUNCTIONS)}"
            )
        if len(node.args) != 2 or not isinstance(node.args[0], ast.Identifier):
            raise bad_filter(f"{name} takes a text property and a text value")
        prop = self.property_of(node.args[0])
        if prop.edm != STRING:
            raise bad_filter(f"{name} needs a text property; {prop.name} is {prop.edm}")
        text = self.value(prop, node.args[1])
        if text is None:
            raise bad_filter(f"{name} needs a text value, not null")
        return sa.and_(prop.column.is_not(None), _text_condition(name, prop, text))

    def value(self, prop: Property, node: ast._Node) -> Any:
        """A literal as the Python value of ``prop``'s type; None for ``null``."""
        if isinstance(node, ast.Null):
            return None
        negate = isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub)
        if negate:
            node = node.operand  # type: ignore[attr-defined]
        converted = _converted(prop.edm, node)
        if converted is _WRONG_TYPE or (negate and isinstance(converted, (str, dt.datetime))):
            raise bad_filter(
                f"{prop.name} is {prop.edm}: compare it to a value such as {EXAMPLES[prop.edm]}"
                f", not {_describe(node)}"
            )
        return -converted if negate else converted

    @staticmethod
    def bind(prop: Property, value: Any) -> sa.BindParameter[Any]:
        """A parameter of the column's own type, so its type's conversion (UTC times on
        SQLite, say) applies to the value as it does to the stored rows."""
        return sa.literal(value, type_=prop.column.type)


_WRONG_TYPE = object()


def _converted(edm: str, node: ast._Node) -> Any:
    try:
        if edm == STRING and isinstance(node, ast.String):
            return node.py_val
        if edm == DATE_TIME_OFFSET and isinstance(node, ast.DateTime):
            value: dt.datetime = node.py_val
            return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)
        if edm == INT64 and isinstance(node, ast.Integer):
            number = int(node.val)
            if not INT64_RANGE[0] <= number <= INT64_RANGE[1]:
                raise bad_filter(f"{node.val[:40]} is outside the range of Edm.Int64")
            return number
        if edm in (INT64, DOUBLE) and isinstance(node, (ast.Integer, ast.Float)):
            result = float(node.val)
            if not math.isfinite(result):
                raise bad_filter(f"{node.val[:40]} is not a finite number")
            return result
    except (ValueError, OverflowError):
        raise bad_filter(f"{_describe(node)} is not a valid value") from None
    return _WRONG_TYPE


def _text_condition(name: str, prop: Property, text: str) -> Clause:
    column = prop.column
    length = len(text)
    if name == "contains":
        return text_position(column, FilterTranslator.bind(prop, text)) > 0
    if name == "startswith":
        return sa.func.substr(column, 1, length) == FilterTranslator.bind(prop, text)
    start = sa.func.length(column) - length + 1
    return sa.and_(
        sa.func.length(column) >= length,
        sa.func.substr(column, start) == FilterTranslator.bind(prop, text),
    )


def _name_of(identifier: ast.Identifier) -> str:
    return ".".join((*identifier.namespace, identifier.name))


def _describe(node: ast._Node) -> str:
    if isinstance(node, ast.Identifier):
        return f"the property {_name_of(node)!r}"
    if isinstance(node, ast.Call):
        return f"the function {_name_of(node.func)!r}"
    if isinstance(node, (ast.String, ast.Integer, ast.Float, ast.DateTime, ast.Date)):
        shown = str(node.val)
        return f"{type(node).__name__.lower()} {shown[:40]!r}"
    if isinstance(node, ast.BinOp):
        return "arithmetic"
    return type(node).__name__.lower().lstrip("_")


def translate_filter(text: str, properties: dict[str, Property], limits: FilterLimits) -> Clause:
    """The condition ``$filter`` asks for, or an ``ODataError`` (400) saying why not."""
    tree = parse_filter(text, limits)
    try:
        return FilterTranslator(properties).translate(tree)
    except ODataError:
        raise
    except Exception as exc:  # the library's visitors raise more than its own error types
        raise bad_filter(f"the filter cannot be answered: {_reason(exc)}") from None
