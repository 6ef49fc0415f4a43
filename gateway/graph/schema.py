"""The schema: Query, Mutation, the error policy and the query limits, assembled once."""

from __future__ import annotations

import strawberry
from graphql import NoSchemaIntrospectionCustomRule
from strawberry.extensions import AddValidationRules, SchemaExtension
from strawberry.schema.config import StrawberryConfig

from gateway.graph.errors import GatewayErrors
from gateway.graph.mutation import Mutation
from gateway.graph.query import Query
from gateway.graph.types import TaskType, TrackerType


def build_schema(*, introspection: bool = True) -> strawberry.Schema:
    extensions: list[SchemaExtension | type[SchemaExtension]] = [GatewayErrors]
    if not introspection:
        extensions.append(AddValidationRules([NoSchemaIntrospectionCustomRule]))
    return strawberry.Schema(
        query=Query,
        mutation=Mutation,
        types=[TaskType, TrackerType],
        extensions=extensions,
        config=StrawberryConfig(auto_camel_case=True),
    )


def print_sdl() -> str:
    return build_schema().as_str() + "\n"
