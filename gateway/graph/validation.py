"""Validation once per document, not once per request.

Validating a document against the schema walks it with some thirty rules: for a page of 50
tasks that was about 1 ms, a quarter of the CPU of every uncached request. Whether a document
is valid depends only on its text, the schema and the rules, all fixed when the schema is
built, so a document that passed once passes again and is not walked again. Only passes are
remembered: a failing document is rare, and its errors belong to one response.

The page-size budget (``cost.py``) depends on the variables as well, so it is checked on every
request, apart from this.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator

from graphql import ASTValidationRule, NoSchemaIntrospectionCustomRule
from strawberry.extensions import AddValidationRules, SchemaExtension
from strawberry.extensions.max_aliases import create_validator as aliases_rule
from strawberry.extensions.query_depth_limiter import create_validator as depth_rule

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
    """Skips validation of a document that passed before; remembers one that passes now."""

    def __init__(self, valid: ValidDocuments) -> None:
        self.valid = valid

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        text = context.query
        known = text is not None and context.pre_execution_errors is None and text in self.valid
        if known:
            context.pre_execution_errors = []  # strawberry validates only while this is None
        yield
        if text is not None and not known and context.pre_execution_errors == []:
            self.valid.add(text)


def limit_rules(
    max_depth: int, max_aliases: int, introspection: bool
) -> tuple[type[ASTValidationRule], ...]:
    """The query limits that depend on the document alone, as validation rules built once
    (strawberry's limiter extensions build a new rule class for every request)."""
    rules: list[type[ASTValidationRule]] = [
        depth_rule(max_depth, should_ignore=None),
        aliases_rule(max_aliases),
    ]
    if not introspection:
        rules.append(NoSchemaIntrospectionCustomRule)
    return tuple(rules)


def validation_extensions(
    rules: tuple[type[ASTValidationRule], ...], valid: ValidDocuments
) -> list[Callable[[], SchemaExtension]]:
    """Factories of the per-request extensions: the limit rules, then the memory of passes."""
    return [lambda: AddValidationRules(list(rules)), lambda: RememberValidation(valid)]
