"""Opaque, stable global ids for ``Node``s.

An id is ``base64url("<kind>:<vendor>:<part>:<part>...")`` without padding; each part is
percent-escaped so a colon in a vendor id cannot break it. The id carries what a lookup
needs (the agent for per-agent vendors, the Agentex task for a tracker) so fetching a node
never needs a directory of ids.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from urllib.parse import quote, unquote

from gateway.core.errors import InvalidIdError
from gateway.core.records import Vendor

TASK = "Task"
TRACKER = "Tracker"
_KINDS = {TASK, TRACKER}
MAX_QUOTED = 64
"""Characters of a refused id quoted back in its error: enough to recognise it, while an
id of any length (up to the body's bound) costs no more in the answer."""


@dataclass(frozen=True, slots=True)
class NodeId:
    kind: str
    vendor: Vendor
    parts: tuple[str, ...]


def encode_id(kind: str, vendor: Vendor, *parts: str | None) -> str:
    text = ":".join([kind, vendor.value, *(quote(p or "", safe="") for p in parts)])
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_id(value: str) -> NodeId:
    """Parse a global id; anything malformed is an ``InvalidIdError``, never a crash."""
    try:
        padded = value + "=" * (-len(value) % 4)
        text = base64.urlsafe_b64decode(padded.encode("ascii")).decode()
        kind, vendor_name, *parts = text.split(":")
        vendor = Vendor(vendor_name)
    except (ValueError, UnicodeError, binascii.Error) as exc:
        raise not_an_id(value) from exc
    if kind not in _KINDS or not parts:
        raise not_an_id(value)
    return NodeId(kind, vendor, tuple(unquote(p) for p in parts))


def not_an_id(value: str) -> InvalidIdError:
    """The refusal of ``value``, quoting at most ``MAX_QUOTED`` characters of it."""
    if len(value) <= MAX_QUOTED:
        return InvalidIdError(f"{value!r} is not a Task Gateway id")
    return InvalidIdError(
        f"{value[:MAX_QUOTED]!r}... ({len(value)} characters) is not a Task Gateway id"
    )
