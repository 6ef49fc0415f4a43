"""Validation once per document, not once per request.

Validating a document against the schema walks it with some thirty rules: for a page of 50
tasks that was about 1 ms, a quarter of the CPU of every uncached request. Whether a document
is valid depends only on its text, the schema and the rules, all fixed when the schema is
built, so a document that passed once passes again and is not walked again. Only passes are
remembered: a failing document is rare, and its errors belong to one response.

The page-size budget (``cost.py``) depends on the variables as well, so it is checked on every
request, apart from this.

Validation runs here rather than in Strawberry, because Strawberry cannot pass graphql-core's
``hide_suggestions``: no error says "Did you mean …" for an argument, enum value, input field,
type or field (which would map the schema for a client that may not introspect it). The rules
are Strawberry's (its request's rules plus the two it always adds).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from typing import Any, cast

from graphql import (
    ASTValidationRule,
    GraphQLError,
    NoSchemaIntrospectionCustomRule,
    ValidationContext,
    validate,
)
from strawberry.extensions import AddValidationRules, SchemaExtension
from strawberry.extensions.max_aliases import create_validator as aliases_rule
from strawberry.extensions.query_depth_limiter import create_validator as depth_rule
from strawberry.schema.validation_rules.maybe_null import MaybeNullValidationRule
from strawberry.schema.validation_rules.one_of import OneOfInputValidationRule

from gateway.graph.worker import off_loop

ALWAYS_RULES: tuple[type[ASTValidationRule], ...] = (
    MaybeNullValidationRule,
    OneOfInputValidationRule,
)
"""The rules Strawberry adds to every validation of its own."""

DEFAULT_MAX_DOCUMENTS = 1024


class ValidDocuments:
    """The texts of the documents that passed validation, least recently used dropped first."""

    def __init__(self, max_documents: int = DEFAULT_MAX_DOCUMENTS) -> None:
        self.max_documents = max_documents
        self._texts: OrderedDict[str, None] = OrderedDict()

    def __contains__(self, text: str) -> bool:
        if text in self._texts:
            self._texts.move_to_end(text)
            return True
        return False

    def add(self, text: str) -> None:
        self._texts[text] = None
        if len(self._texts) > self.max_documents:
            self._texts.popitem(last=False)

    def __len__(self) -> int:
        return len(self._texts)


class RememberValidation(SchemaExtension):
    """Validates a document without suggestions, unless it passed before; remembers one
    that passes now. Strawberry validates only while ``pre_execution_errors`` is None, so
    setting it here replaces Strawberry's own validation."""

    def __init__(self, valid: ValidDocuments, hide_suggestions: bool = True) -> None:
        self.valid = valid
        self.hide_suggestions = hide_suggestions

    async def on_validate(self) -> AsyncIterator[None]:
        context = self.execution_context
        text, document = context.query, context.graphql_document
        if context.pre_execution_errors is None and document is not None:
            if text is not None and text in self.valid:
                context.pre_execution_errors = []
            else:
                # The GraphQL schema, read as Strawberry's own ValidationCache reads it.
                schema, rules = context.schema._schema, (*context.validation_rules, *ALWAYS_RULES)
                hide = self.hide_suggestions
                # On the document worker: a new document's validation can take 100s of ms.
                errors = await off_loop(
                    lambda: validate(schema, document, rules, hide_suggestions=hide)
                )
                context.pre_execution_errors = errors
                if text is not None and not errors:
                    self.valid.add(text)
        yield


TOO_COMPLEX = "QUERY_TOO_COMPLEX"


class _CodedContext:
    """A validation context whose reported errors carry ``extensions.code``."""

    def __init__(self, context: ValidationContext, code: str) -> None:
        self._context = context
        self._code = code

    def report_error(self, error: GraphQLError) -> None:
        error.extensions = {**(error.extensions or {}), "code": self._code}
        self._context.report_error(error)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)


def coded(rule: type[ASTValidationRule], code: str) -> type[ASTValidationRule]:
    """``rule`` with ``code`` on every error it reports: the code is given where the error
    is made, so no one has to recognise the library's message text later. (Strawberry's
    limit rules report through the context they are built with, so that is what is
    wrapped.)"""

    class Coded(rule):  # type: ignore[valid-type,misc]
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(cast(ValidationContext, _CodedContext(context, code)))

    Coded.__name__ = f"Coded{rule.__name__}"
    return Coded


def limit_rules(
    max_depth: int, max_aliases: int, introspection: bool
) -> tuple[type[ASTValidationRule], ...]:
    """The query limits that depend on the document alone, as validation rules built once
    (strawberry's limiter extensions build a new rule class for every request)."""
    rules: list[type[ASTValidationRule]] = [
        coded(depth_rule(max_depth, should_ignore=None), TOO_COMPLEX),
        coded(aliases_rule(max_aliases), TOO_COMPLEX),
    ]
    if not introspection:
        rules.append(NoSchemaIntrospectionCustomRule)
    return tuple(rules)


def validation_extensions(
    rules: tuple[type[ASTValidationRule], ...], valid: ValidDocuments, hide_suggestions: bool = True
) -> list[Callable[[], SchemaExtension]]:
    """Factories of the per-request extensions: the limit rules, then validation with the
    memory of passes."""
    return [
        lambda: AddValidationRules(list(rules)),
        lambda: RememberValidation(valid, hide_suggestions),
    ]
