"""Callers that bring their own vendor keys (``auth.forward_vendor_credentials = true``).

A caller sends ``X-Vendor-Key-<Vendor>: <secret>`` (e.g. ``X-Vendor-Key-Xpander``) on
``/graphql`` (HTTP or the WebSocket handshake) and on the exports; the gateway forwards it
in that vendor's own header and scheme. Cache keys carry a digest of the key actually used,
and the subscription poller polls once per distinct set of keys, so one caller's pages or
changes are never served to another.
"""

from __future__ import annotations

from collections.abc import Mapping

from gateway.core.contract import Credentials
from gateway.core.records import Vendor
from gateway.vendors.registry import default_credentials

HEADER_PREFIX = "x-vendor-key-"


def caller_credentials(headers: Mapping[str, str]) -> dict[Vendor, Credentials]:
    found: dict[Vendor, Credentials] = {}
    for vendor in Vendor:
        secret = headers.get(f"{HEADER_PREFIX}{vendor.value}")
        if secret and secret.strip():
            found[vendor] = default_credentials(vendor, secret.strip())
    return found


def forwarded_credentials(headers: Mapping[str, str], forward: bool) -> dict[Vendor, Credentials]:
    """The vendor keys to act with: the caller's when forwarding is on, else none (the
    gateway's own configured keys then apply)."""
    return caller_credentials(headers) if forward else {}
