"""GraphQL-shaped JSON errors for answers given before GraphQL runs (auth, limits)."""

from __future__ import annotations

from collections.abc import Mapping

import orjson
from starlette.responses import Response


def graphql_error_response(
    status: int, message: str, code: str, headers: Mapping[str, str] | None = None
) -> Response:
    body = {"errors": [{"message": message, "extensions": {"code": code}}]}
    return Response(
        orjson.dumps(body),
        status_code=status,
        media_type="application/json",
        headers=dict(headers or {}),
    )
