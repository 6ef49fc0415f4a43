"""Cursors that carry each upstream source's position, so paging is exact across vendors.

A cursor is ``base64url(json)`` holding a fingerprint of the query it belongs to and, per
source (per part of a source read in two parts), either the page token and offset of the
next unread item or "done". Resuming from positions (not from a sort key) means ties in
timestamps can never drop or repeat a task; how a position stays exact when a vendor
reorders tied rows between reads is told in ``gateway.core.merge``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

import orjson

from gateway.core.contract import PageToken
from gateway.core.errors import InvalidCursorError

CURSOR_VERSION = 2
"""2: a listing read in two parts (nulls-first Agentex) has a position per part, and a
position may be inside a tie group read whole (``merge.GROUP_MARK``); a version-1 cursor is
INVALID_CURSOR (start again) rather than resumed at the wrong place."""


@dataclass(frozen=True, slots=True)
class Position:
    """The next unread item of a source: page ``token`` (None: first page) and offset."""

    token: PageToken
    index: int


DONE: None = None
"""A source with nothing left to read has no position."""

Positions = Mapping[str, Position | None]


def short_hash(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=6).hexdigest()


def encode_cursor(query_fingerprint: str, positions: Positions) -> str:
    body = {
        "v": CURSOR_VERSION,
        "q": query_fingerprint,
        "p": {k: None if p is None else [p.token, p.index] for k, p in positions.items()},
    }
    return base64.urlsafe_b64encode(orjson.dumps(body)).decode().rstrip("=")


def decode_cursor(cursor: str, query_fingerprint: str) -> dict[str, Position | None]:
    """Positions from a cursor made for the same query; anything else is INVALID_CURSOR."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        body = orjson.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, UnicodeError, binascii.Error, orjson.JSONDecodeError) as exc:
        raise InvalidCursorError("the cursor is malformed") from exc
    if not isinstance(body, dict) or body.get("v") != CURSOR_VERSION:
        raise InvalidCursorError("the cursor is malformed")
    if body.get("q") != query_fingerprint:
        raise InvalidCursorError(
            "the cursor belongs to another filter or order; start again without `after`"
        )
    raw = body.get("p")
    if not isinstance(raw, dict):
        raise InvalidCursorError("the cursor is malformed")
    positions: dict[str, Position | None] = {}
    for key, value in raw.items():
        if value is None:
            positions[key] = DONE
            continue
        if (
            not isinstance(value, list)
            or len(value) != 2
            or not isinstance(value[1], int)
            or isinstance(value[1], bool)
            or value[1] < 0
            or not (value[0] is None or isinstance(value[0], int | str))
            or isinstance(value[0], bool)
        ):
            raise InvalidCursorError("the cursor is malformed")
        positions[key] = Position(value[0], value[1])
    return positions
