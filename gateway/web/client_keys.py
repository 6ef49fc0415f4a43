"""Where a caller's client key is read from: ``Authorization: Bearer <key>`` or
``X-API-Key: <key>``, in HTTP headers or, for a WebSocket (a browser cannot set a
handshake's headers), in the payload of ``connection_init`` under the same names in any
case, as graphql-ws clients send their ``connectionParams``. Parsing only: whether a key is
valid is decided in ``gateway.web.auth``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping


def client_key(pairs: Iterable[tuple[str, str]]) -> str | None:
    """The caller's key among ``(lower-case name, value)`` pairs, the first
    ``Authorization: Bearer`` or ``X-API-Key`` that carries one."""
    for name, value in pairs:
        if name == "authorization":
            scheme, _, token = value.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
        elif name == "x-api-key" and value.strip():
            return value.strip()
    return None


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
