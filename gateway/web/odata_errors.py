"""OData's error shape, ``{"error": {"code", "message", "target"?}}``: every answer under
``/odata`` that is not data uses it (auth and limits included), because that is what Power BI,
Excel and Tableau show their user; a GraphQL-shaped body would reach them as noise."""

from __future__ import annotations

from collections.abc import Mapping

import orjson
from starlette.responses import Response

PREFIX = "/odata"
"""Every OData path starts here."""
VERSION_HEADERS = {"odata-version": "4.0"}
BASIC_CHALLENGE = 'Basic realm="task-gateway"'
"""What BI tools answer with a user name and password: the key goes in the password."""


class ODataError(Exception):
    """A request refused with its HTTP status, stable code and the option at fault (the
    ``target``), so the answer never depends on the wording of a library's exception."""

    def __init__(self, status: int, code: str, message: str, target: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.target = target


def is_odata_path(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


def odata_error_response(
    status: int,
    code: str,
    message: str,
    target: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    error: dict[str, str] = {"code": code, "message": message}
    if target is not None:
        error["target"] = target
    return Response(
        orjson.dumps({"error": error}),
        status_code=status,
        media_type="application/json",
        headers={**VERSION_HEADERS, **(headers or {})},
    )


def error_response(error: ODataError) -> Response:
    return odata_error_response(error.status, error.code, error.message, error.target)
