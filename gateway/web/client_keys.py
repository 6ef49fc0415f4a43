"""Where a caller's client key is read from: ``Authorization: Bearer <key>``,
``X-API-Key: <key>``, or the password of ``Authorization: Basic`` (any user name: what Power
BI, Excel and Tableau can send to the OData service), in HTTP headers or, for a WebSocket
(a browser cannot set a handshake's headers), in the payload of ``connection_init`` under
the same names in any case, as graphql-ws clients send their ``connectionParams``. Parsing
only: whether a key is valid is decided in ``gateway.web.auth``."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping


def client_key(pairs: Iterable[tuple[str, str]]) -> str | None:
    """The caller's key among ``(lower-case name, value)`` pairs, the first
    ``Authorization: Bearer``, ``Authorization: Basic`` or ``X-API-Key`` that carries one."""
    for name, value in pairs:
        if name == "authorization":
            scheme, _, token = value.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
            if scheme.lower() == "basic" and (password := basic_password(token.strip())):
                return password
        elif name == "x-api-key" and value.strip():
            return value.strip()
    return None


def basic_password(token: str) -> str | None:
    """The password of Basic credentials (``base64(user:password)``, RFC 7617, UTF-8), or
    None when the token is not such credentials."""
    try:
        decoded = base64.b64decode(token, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    _, colon, password = decoded.partition(":")
    return password if colon and password else None


def header_pairs(raw: Iterable[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    """ASGI headers as text pairs (ASGI names are already lower-case)."""
    return [(name.decode("latin-1"), value.decode("latin-1")) for name, value in raw]


def header_key(raw: Iterable[tuple[bytes, bytes]]) -> str | None:
    """The client key sent in HTTP headers."""
    return client_key(header_pairs(raw))


def payload_pairs(payload: object) -> list[tuple[str, str]]:
    """The text entries of a ``connection_init`` payload, names lower-cased: its top level
    and a nested ``headers`` object (the shape some clients copy their headers in)."""
    if not isinstance(payload, Mapping):
        return []
    pairs: list[tuple[str, str]] = []
    for source in (payload, payload.get("headers")):
        if isinstance(source, Mapping):
            pairs.extend(
                (name.lower(), value)
                for name, value in source.items()
                if isinstance(name, str) and isinstance(value, str)
            )
    return pairs
