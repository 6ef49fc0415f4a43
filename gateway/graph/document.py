"""The document's own bounds, checked before any real work: its length in bytes before it
is parsed, its tokens while it is parsed.

Every path that runs an operation (GET, POST, APQ, WebSocket) hands the query text to the
schema, so the bounds hold for all of them here. Parsing is linear in the tokens and stops
at the limit (graphql-core counts comments too); it runs on the document worker, off the
event loop (``worker.py``). Parsed documents are remembered (least recently used dropped
first), since clients send the same few documents again and again.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import AsyncIterator

from graphql import (
    DocumentNode,
    FieldNode,
    GraphQLError,
    NameNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    Source,
    parse,
)
from graphql.language import Lexer, TokenKind
from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType as Allowed

from gateway.graph.worker import off_loop

DEFAULT_MAX_DOCUMENT_BYTES = 16 * 1024
DEFAULT_MAX_TOKENS = 2_000
DEFAULT_PARSED_DOCUMENTS = 256
"""Parsed documents kept: a 2,000-token document's AST is about 1.2 MB of Python objects."""


class ParsedDocuments:
    """Parsed documents by their text; only touched from the event loop."""

    def __init__(self, max_documents: int = DEFAULT_PARSED_DOCUMENTS) -> None:
        self.max_documents = max_documents
        self._documents: OrderedDict[str, DocumentNode] = OrderedDict()

    def get(self, text: str) -> DocumentNode | None:
        document = self._documents.get(text)
        if document is not None:
            self._documents.move_to_end(text)
        return document

    def add(self, text: str, document: DocumentNode) -> None:
        self._documents[text] = document
        if len(self._documents) > self.max_documents:
            self._documents.popitem(last=False)


def parse_bounded(query: str, max_tokens: int) -> DocumentNode:
    """The parsed document, or ``QUERY_TOO_LARGE`` once it passes ``max_tokens``."""
    try:
        return parse(query, max_tokens=max_tokens)
    except GraphQLError:
        if more_tokens_than(query, max_tokens):
            raise GraphQLError(
                f"the document has more than {max_tokens} tokens",
                extensions={"code": "QUERY_TOO_LARGE", "maxTokens": max_tokens},
            ) from None
        raise


def more_tokens_than(query: str, limit: int) -> bool:
    """Whether ``query`` has more than ``limit`` tokens, counted as the parser counts them
    (comments included): tells the parser's token limit from a syntax error without reading
    its message. Stops lexing past the limit; a lexing error first is a syntax error."""
    lexer = Lexer(Source(query))
    token, count = lexer.token, 0
    try:
        while token.kind is not TokenKind.EOF and count <= limit:
            following = lexer.advance()
            skipped = token.next  # comments between the two tokens are tokens too
            while skipped is not None and skipped is not following:
                count += 1
                skipped = skipped.next
            if following.kind is not TokenKind.EOF:
                count += 1
            token = following
    except GraphQLError:
        return False
    return count > limit


class DocumentLimiter(SchemaExtension):
    """Refuses a document over ``max_bytes`` unparsed and parses the rest with
    ``max_tokens``; both refusals are ``QUERY_TOO_LARGE``."""

    def __init__(self, max_bytes: int, max_tokens: int, documents: ParsedDocuments) -> None:
        self.max_bytes = max_bytes
        self.max_tokens = max_tokens
        self.documents = documents

    async def on_parse(self) -> AsyncIterator[None]:
        context = self.execution_context
        query = context.query
        if query is not None and context.graphql_document is None:
            try:
                context.graphql_document = await self._parse(query)
            except GraphQLError as error:
                # Strawberry turns only its own parser's errors into an answer (a
                # subscription would lose this one): the refusal becomes the request's
                # errors, with a stand-in document, so that nothing else runs.
                allowed = context.allowed_operations
                kind = Allowed.QUERY if Allowed.QUERY in allowed else next(iter(allowed))
                context.graphql_document = stand_in(
                    OperationType(kind.value), context.operation_name
                )
                context.pre_execution_errors = [error]
        yield

    async def _parse(self, query: str) -> DocumentNode:
        if _over(query, self.max_bytes):
            raise GraphQLError(
                f"the document is longer than {self.max_bytes} bytes",
                extensions={"code": "QUERY_TOO_LARGE", "maxBytes": self.max_bytes},
            )
        document = self.documents.get(query)
        if document is None:
            max_tokens = self.max_tokens
            document = await off_loop(lambda: parse_bounded(query, max_tokens))
            self.documents.add(query, document)
        return document


def stand_in(kind: OperationType, operation_name: str | None) -> DocumentNode:
    """``<kind> <operation_name> { __typename }``: what Strawberry needs to read the type
    of an operation whose document it never gets (one the transport allows)."""
    return DocumentNode(
        definitions=(
            OperationDefinitionNode(
                operation=kind,
                name=NameNode(value=operation_name) if operation_name else None,
                variable_definitions=(),
                directives=(),
                selection_set=SelectionSetNode(
                    selections=(
                        FieldNode(
                            name=NameNode(value="__typename"),
                            arguments=(),
                            directives=(),
                            selection_set=None,
                        ),
                    )
                ),
            ),
        )
    )


def _over(query: str, max_bytes: int) -> bool:
    """Whether the UTF-8 text is longer than ``max_bytes``, without encoding a text that is
    over by characters alone (a character is at least one byte)."""
    if len(query) > max_bytes:
        return True
    return len(query.encode("utf-8", "surrogatepass")) > max_bytes
