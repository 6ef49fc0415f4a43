"""GraphQL-shaped JSON errors for answers given before GraphQL runs (auth, limits, a request
the GraphQL view refuses before parsing a document)."""

from __future__ import annotations

from collections.abc import Mapping

import orjson
from starlette.responses import Response

JSON = "application/json"


class RequestRefused(Exception):
    """A request refused before GraphQL runs: its HTTP status and stable code travel with it,
    so the answer never depends on the wording of a library's exception."""

    def __init__(self, status: int, message: str, code: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code


def graphql_error_response(
    status: int,
    message: str,
    code: str,
    headers: Mapping[str, str] | None = None,
    *,
    media_type: str = JSON,
) -> Response:
    body = {"errors": [{"message": message, "extensions": {"code": code}}]}
    return Response(
        orjson.dumps(body),
        status_code=status,
        media_type=media_type,
        headers=dict(headers or {}),
    )
