"""One place that decides what a client sees of an error.

- A ``GatewayError`` becomes its short message with ``extensions.code`` (and ``vendor``).
- A vendor that failed while the rest of the answer came back adds one error per vendor,
  at the field that lost data, with ``extensions { code, vendor }``.
- Anything else is a bug: the client sees ``INTERNAL_SERVER_ERROR`` and a request id, the
  log gets the detail under the same id. No stack trace or upstream URL reaches a client.
- Errors graphql-core raised before execution (syntax, validation, variables) keep their
  message and get a code, and the request is marked as never executed (for the HTTP status).
- No message suggests a name ("Did you mean 'userId'?" would map the schema for a client
  that may not introspect it): validation runs with graphql-core's ``hide_suggestions``
  (``validation.py``) and so does execution, where variables and enum values are coerced
  (``QuietExecutor``).
"""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Iterator
from typing import Any

from graphql.error import GraphQLError, GraphQLSyntaxError
from graphql.validation.validate import ValidationAbortedError
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from gateway.core.errors import (
    GatewayError,
    UpstreamBadRecordsError,
    UpstreamBudgetExhaustedError,
    UpstreamError,
)

logger = logging.getLogger("gateway.graphql")


def _extensions(error: GatewayError) -> dict[str, object]:
    extensions: dict[str, object] = {"code": error.code}
    if isinstance(error, UpstreamError):
        extensions["vendor"] = error.vendor.name
    if isinstance(error, UpstreamBadRecordsError):
        extensions["count"] = error.count
    if isinstance(error, UpstreamBudgetExhaustedError) and error.retry_after is not None:
        # whole seconds until the budget has room (as in an HTTP Retry-After)
        extensions["retryAfter"] = max(1, math.ceil(error.retry_after))
    return extensions


def pre_execution_code(error: GraphQLError) -> str:
    code = (error.extensions or {}).get("code")
    if isinstance(code, str):  # a limit of ours (``QUERY_TOO_LARGE``, ``QUERY_TOO_COSTLY``,
        return code  # depth and aliases: ``validation.coded``)
    if isinstance(error, ValidationAbortedError):  # graphql-core's own work budget ran out
        return "QUERY_TOO_COMPLEX"
    if isinstance(error, GraphQLSyntaxError):
        return "GRAPHQL_PARSE_FAILED"
    if error.nodes:
        return "GRAPHQL_VALIDATION_FAILED"
    return "BAD_USER_INPUT"  # a variable that does not fit its type


class QuietExecutor(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's executor, built with ``hide_suggestions`` (Strawberry passes none), so
    coercing a variable or an enum value never suggests a name."""

    @classmethod
    def build(cls, *args: Any, **kwargs: Any) -> Any:
        kwargs["hide_suggestions"] = True
        return super().build(*args, **kwargs)


class GatewayErrors(SchemaExtension):
    def on_execute(self) -> Iterator[None]:
        context = self.execution_context.context
        if context is not None and hasattr(context, "executed"):
            context.executed = True
        yield

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        if result is None:
            return
        context = self.execution_context.context
        errors = [self._format(e) for e in (result.errors or [])]
        state = getattr(context, "state", None)
        reported = {
            e.extensions.get("vendor") for e in errors if e.extensions and "vendor" in e.extensions
        }
        for failure in state.errors if state is not None else []:
            if failure.vendor.name in reported:
                continue
            reported.add(failure.vendor.name)
            errors.append(
                GraphQLError(
                    f"{failure.message}; its tasks are missing from this answer",
                    path=self._first_field(),
                    extensions=_extensions(failure),
                )
            )
        # A vendor whose part stands but lost some unreadable records (a notice, not a
        # failure): one error with the count, its tasks not called missing.
        for part in state.parts.values() if state is not None else []:
            notice = part.notice
            if notice is None or notice.vendor.name in reported:
                continue
            reported.add(notice.vendor.name)
            errors.append(
                GraphQLError(
                    notice.message, path=self._first_field(), extensions=_extensions(notice)
                )
            )
        result.errors = errors or None
        # Variables are coerced inside "execute", but if they failed nothing ran: for
        # GraphQL over HTTP that request failed before execution.
        nothing_ran = errors and result.data is None and all(e.path is None for e in errors)
        if nothing_ran and context is not None and hasattr(context, "executed"):
            context.executed = False

    def _first_field(self) -> list[str | int] | None:
        document = self.execution_context.graphql_document
        if document is None:
            return None
        for definition in document.definitions:
            selections = getattr(getattr(definition, "selection_set", None), "selections", None)
            if selections:
                node = selections[0]
                alias = getattr(node, "alias", None)
                return [(alias or node.name).value]
        return None

    def _format(self, error: GraphQLError) -> GraphQLError:
        original = error.original_error
        if original is None:
            if error.extensions and "code" in error.extensions:
                return error
            return GraphQLError(
                error.message,
                nodes=error.nodes,
                source=error.source,
                positions=error.positions,
                path=error.path,
                extensions={**(error.extensions or {}), "code": pre_execution_code(error)},
            )
        if isinstance(original, GatewayError):
            return GraphQLError(
                original.message,
                nodes=error.nodes,
                source=error.source,
                positions=error.positions,
                path=error.path,
                extensions=_extensions(original),
            )
        if isinstance(original, GraphQLError):
            return self._format(original)
        # The HTTP request's id (X-Request-ID), so this line joins the request's own line.
        context = self.execution_context.context
        request_id = getattr(context, "request_id", "-")
        if request_id == "-":  # a subscription over WebSocket has none
            request_id = uuid.uuid4().hex[:16]
        logger.error("unexpected error %s at %s", request_id, error.path, exc_info=original)
        return GraphQLError(
            "Internal server error",
            nodes=error.nodes,
            source=error.source,
            positions=error.positions,
            path=error.path,
            extensions={"code": "INTERNAL_SERVER_ERROR", "requestId": request_id},
        )
