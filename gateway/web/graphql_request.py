"""What a GraphQL-over-HTTP request must look like before any GraphQL work, and the one JSON
decoder every path uses (POST bodies, GET ``variables``/``extensions``, WebSocket messages).

- A POST is ``application/json`` (any casing, an optional ``charset=utf-8``), else 415
  ``UNSUPPORTED_MEDIA_TYPE``: a ``text/plain``, form or multipart POST is how a cross-site
  page sends a request without a preflight, and a POST with no type at all is refused too.
  The response cache is consulted only after this check, so no content type it refuses is
  ever answered from memory.
- JSON is strict UTF-8 (orjson: invalid bytes and lone surrogates are refused) and nested
  at most ``MAX_JSON_DEPTH`` levels, so nothing downstream (the cache key's encoder, a
  recursive walk) meets a structure deep enough to fail; 400 ``BAD_REQUEST_BODY``.
- The body is one JSON object whose ``query`` is a string, ``variables`` and
  ``extensions`` objects and ``operationName`` a string (each may be null); else 400
  ``BAD_REQUEST``.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

from gateway.web.errors import RequestRefused

ACCEPTED_MEDIA_TYPE = "application/json"
ACCEPTED_CHARSET = "utf-8"
MAX_JSON_DEPTH = 32
"""Levels of arrays and objects a request's JSON may nest; the schema's inputs need fewer
than ten, and a limit well under the encoder's (254) and Python's recursion keeps every
consumer safe."""
PARAMETER_TYPES: dict[str, tuple[type, str]] = {
    "query": (str, "a string"),
    "operationName": (str, "a string"),
    "variables": (dict, "an object"),
    "extensions": (dict, "an object"),
}


class JSONTooDeep(json.JSONDecodeError):
    """JSON nested deeper than ``MAX_JSON_DEPTH``: a decode error, so a WebSocket treats
    it as the protocol says for any message that is not JSON."""


def media_type_refusal(headers: list[tuple[bytes, bytes]]) -> RequestRefused | None:
    """Why a POST's ``Content-Type`` (the first, as Starlette reads it) is refused, if it is."""
    raw = next((value for name, value in headers if name == b"content-type"), None)
    if raw is None:
        return RequestRefused(
            415, f"a POST needs `Content-Type: {ACCEPTED_MEDIA_TYPE}`", "UNSUPPORTED_MEDIA_TYPE"
        )
    kind, _, params = raw.decode("latin-1").partition(";")
    if kind.strip().lower() != ACCEPTED_MEDIA_TYPE:
        return RequestRefused(
            415, f"only `{ACCEPTED_MEDIA_TYPE}` is accepted in a POST", "UNSUPPORTED_MEDIA_TYPE"
        )
    for param in params.split(";"):
        name, _, value = param.partition("=")
        charset = value.strip().strip('"').lower()
        if name.strip().lower() == "charset" and charset != ACCEPTED_CHARSET:
            return RequestRefused(415, "only UTF-8 JSON is accepted", "UNSUPPORTED_MEDIA_TYPE")
    return None


def decode_json(data: str | bytes) -> Any:
    """Strict UTF-8 JSON, nested at most ``MAX_JSON_DEPTH`` levels; raises a
    ``json.JSONDecodeError`` (orjson's is one) otherwise."""
    value = orjson.loads(data)
    if _deeper_than(value, MAX_JSON_DEPTH):
        raise JSONTooDeep(f"nested deeper than {MAX_JSON_DEPTH} levels", "", 0)
    return value


def _deeper_than(value: object, limit: int) -> bool:
    """Level by level, without recursion: a hostile document cannot exhaust the stack."""
    level: list[dict[str, Any] | list[Any]] = [value] if isinstance(value, dict | list) else []
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            return True
        deeper: list[dict[str, Any] | list[Any]] = []
        for item in level:
            children = item.values() if isinstance(item, dict) else item
            deeper.extend(c for c in children if isinstance(c, dict | list))
        level = deeper
    return False


def parse_json(data: str | bytes) -> Any:
    """``decode_json``, refusing what does not decode as a client error."""
    try:
        return decode_json(data)
    except JSONTooDeep as exc:
        raise RequestRefused(400, f"the request's JSON is {exc.msg}", "BAD_REQUEST_BODY") from None
    except json.JSONDecodeError:
        raise RequestRefused(
            400, "the request's JSON is malformed or not UTF-8", "BAD_REQUEST_BODY"
        ) from None


def check_request(payload: object) -> None:
    """Refuses a POST body that is not one GraphQL request with parameters of the right
    types. A JSON array is left to the view, which says that batches are not accepted."""
    if isinstance(payload, list):
        return
    if not isinstance(payload, dict):
        raise RequestRefused(400, "the body must be a JSON object", "BAD_REQUEST")
    for name, (kind, described) in PARAMETER_TYPES.items():
        value = payload.get(name)
        if value is not None and not isinstance(value, kind):
            raise RequestRefused(400, f"`{name}` must be {described} or null", "BAD_REQUEST")


def parse_request_body(body: bytes) -> Any:
    """A POST body, decoded and checked; ``RequestRefused`` when it is refused."""
    payload = parse_json(body)
    check_request(payload)
    return payload
