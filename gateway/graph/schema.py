"""The schema: Query, Mutation, the error policy and the query limits, assembled once."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import strawberry
from strawberry.extensions import SchemaExtension
from strawberry.schema.config import StrawberryConfig

from gateway.graph.cost import DEFAULT_MAX_COST, DEFAULT_MAX_LIST_ITEMS, QueryCostLimiter
from gateway.graph.document import (
    DEFAULT_MAX_DOCUMENT_BYTES,
    DEFAULT_MAX_TOKENS,
    DocumentLimiter,
    ParsedDocuments,
)
from gateway.graph.errors import GatewayErrors, QuietExecutor
from gateway.graph.mutation import Mutation
from gateway.graph.observe import Observe
from gateway.graph.query import Query
from gateway.graph.subscription import Subscription
from gateway.graph.types import TaskType, TrackerType
from gateway.graph.validation import ValidDocuments, limit_rules, validation_extensions


@dataclass(frozen=True)
class QueryLimits:
    """What one GraphQL document may ask for (README: "Security and limits")."""

    max_depth: int = 10
    max_aliases: int = 30
    max_tokens: int = DEFAULT_MAX_TOKENS
    max_cost: int = DEFAULT_MAX_COST
    max_document_bytes: int = DEFAULT_MAX_DOCUMENT_BYTES
    """A document (query text, APQ and OData options included) longer than this is refused
    unparsed."""
    max_list_items: int = DEFAULT_MAX_LIST_ITEMS
    """Items one list argument (``agentIds``, ``statuses``, …) may hold."""
    introspection: bool = True
    field_suggestions: bool = False


class GatewaySchema(strawberry.Schema):
    def process_errors(self, errors: Any, execution_context: Any = None) -> None:
        """Strawberry logs every error at ERROR; a bad query is the client's, not ours.
        ``GatewayErrors`` logs the unexpected ones, with a request id."""


def build_schema(limits: QueryLimits | None = None) -> strawberry.Schema:
    limits = limits or QueryLimits()
    rules = limit_rules(limits.max_depth, limits.max_aliases, limits.introspection)
    documents = ParsedDocuments()
    # Factories: a fresh extension per request. In the order the work happens: the
    # document's length and tokens, then its cost (linear), then validation (only within
    # budget), then execution.
    extensions: list[Callable[[], SchemaExtension] | type[SchemaExtension]] = [
        Observe,
        GatewayErrors,
        lambda: DocumentLimiter(limits.max_document_bytes, limits.max_tokens, documents),
        lambda: QueryCostLimiter(max_cost=limits.max_cost, max_list_items=limits.max_list_items),
        *validation_extensions(rules, ValidDocuments(), not limits.field_suggestions),
    ]
    return GatewaySchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=[TaskType, TrackerType],
        extensions=extensions,
        execution_context_class=None if limits.field_suggestions else QuietExecutor,
        config=StrawberryConfig(
            auto_camel_case=True, disable_field_suggestions=not limits.field_suggestions
        ),
    )


def print_sdl() -> str:
    return build_schema().as_str() + "\n"
