"""The schema: Query, Mutation, the error policy and the query limits, assembled once."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import strawberry
from strawberry.extensions import MaxTokensLimiter, ParserCache, SchemaExtension
from strawberry.schema.config import StrawberryConfig

from gateway.graph.cost import DEFAULT_MAX_COST, QueryCostLimiter
from gateway.graph.errors import GatewayErrors
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
    max_tokens: int = 2_000
    max_cost: int = DEFAULT_MAX_COST
    introspection: bool = True
    field_suggestions: bool = False


class GatewaySchema(strawberry.Schema):
    def process_errors(self, errors: Any, execution_context: Any = None) -> None:
        """Strawberry logs every error at ERROR; a bad query is the client's, not ours.
        ``GatewayErrors`` logs the unexpected ones, with a request id."""


def build_schema(limits: QueryLimits | None = None) -> strawberry.Schema:
    limits = limits or QueryLimits()
    rules = limit_rules(limits.max_depth, limits.max_aliases, limits.introspection)
    # Factories: a fresh extension per request (the parser's LRU cache is module-level).
    extensions: list[Callable[[], SchemaExtension] | type[SchemaExtension]] = [
        Observe,
        GatewayErrors,
        lambda: ParserCache(maxsize=1024),
        lambda: MaxTokensLimiter(max_token_count=limits.max_tokens),
        lambda: QueryCostLimiter(max_cost=limits.max_cost),
        *validation_extensions(rules, ValidDocuments()),
    ]
    return GatewaySchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=[TaskType, TrackerType],
        extensions=extensions,
        config=StrawberryConfig(
            auto_camel_case=True, disable_field_suggestions=not limits.field_suggestions
        ),
    )


def print_sdl() -> str:
    return build_schema().as_str() + "\n"
