"""schema.graphql at the repository root is exactly what the server serves."""

from __future__ import annotations

from pathlib import Path

from gateway.graph.schema import print_sdl

ROOT = Path(__file__).resolve().parent.parent


def test_schema_file_is_what_the_code_serves() -> None:
    assert (ROOT / "schema.graphql").read_text() == print_sdl(), (
        "schema.graphql is out of date: run `task-gateway schema > schema.graphql`"
    )


def test_every_field_argument_and_enum_value_is_described() -> None:
    from graphql import (
        GraphQLEnumType,
        GraphQLInputObjectType,
        GraphQLInterfaceType,
        GraphQLObjectType,
    )

    from gateway.graph.schema import build_schema

    schema = build_schema()._schema
    missing = []
    for name, type_ in schema.type_map.items():
        if name.startswith("__") or name in ("String", "Int", "Float", "Boolean", "ID"):
            continue
        if not type_.description:
            missing.append(name)
        if isinstance(type_, GraphQLObjectType | GraphQLInterfaceType):
            for fname, field in type_.fields.items():
                if not field.description:
                    missing.append(f"{name}.{fname}")
                missing.extend(
                    f"{name}.{fname}({a})" for a, arg in field.args.items() if not arg.description
                )
        elif isinstance(type_, GraphQLInputObjectType):
            missing.extend(f"{name}.{f}" for f, fld in type_.fields.items() if not fld.description)
        elif isinstance(type_, GraphQLEnumType):
            missing.extend(f"{name}.{v}" for v, val in type_.values.items() if not val.description)
    assert missing == []
