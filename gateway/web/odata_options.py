"""The system query options of a request for ``Tasks``: ``$filter``, ``$orderby``, ``$select``,
``$top``, ``$skip``, ``$count``, ``$format`` and the server's own ``$skiptoken``, read strictly.

Each option may appear once, its name in any case (OData 4.01), its value at most
``max_bytes`` long (``graphql.max_document_bytes``, the bound on a GraphQL document). An
option the service does not implement (``$expand``, ``$search``, ``$apply``, …) or does not
know is refused with a 400 naming it rather than ignored: a BI tool that asked for less data
must not silently get more. Parameters without ``$`` are custom options and are ignored, as
the protocol says.

``$skiptoken`` is the position after the last row of a page (the values of the order's keys
and the ``id``), not an offset, so a task that did not change is never repeated or skipped
across pages while the index updates. It is opaque to clients, and checked like any input:
a token made for another ``$orderby``, or with values of the wrong types, is a 400.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from gateway.web.odata_errors import ODataError
from gateway.web.odata_model import DATE_TIME_OFFSET, DOUBLE, INT64, KEY, STRING, Property

SUPPORTED = frozenset(
    {"$filter", "$orderby", "$select", "$top", "$skip", "$count", "$format", "$skiptoken"}
)
NOT_IMPLEMENTED = frozenset(
    {"$expand", "$search", "$apply", "$compute", "$levels", "$index", "$deltatoken", "$id"}
)
MAX_ORDER_KEYS = 8
MAX_INTEGER = 2**31 - 1
"""``$top`` and ``$skip`` above this are refused: no index holds that many tasks."""
ORDER_ITEM = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)(?:\s+(asc|desc))?\s*", re.IGNORECASE)
JSON_FORMATS = ("json", "application/json")


@dataclass(frozen=True)
class OrderKey:
    prop: Property
    descending: bool

    def text(self) -> str:
        return f"{self.prop.name} {'desc' if self.descending else 'asc'}"


@dataclass(frozen=True)
class Options:
    filter: str | None
    order: tuple[OrderKey, ...]
    """The requested order, then ``id`` ascending: a total order, so pages are exact."""
    select: tuple[Property, ...] | None
    """None: every property."""
    top: int | None
    skip: int
    count: bool
    after: tuple[Any, ...] | None
    """The decoded ``$skiptoken``: the order keys' values of the last row sent."""
    passed: dict[str, str]
    """The options as sent (lower-case names), to carry into ``@odata.nextLink``."""


def bad_option(name: str, message: str) -> ODataError:
    return ODataError(400, "INVALID_QUERY_OPTION", message, name)


def system_options(pairs: Iterable[tuple[str, str]], max_bytes: int) -> dict[str, str]:
    """The ``$`` options by lower-case name, each checked for being known, single and short."""
    found: dict[str, str] = {}
    for raw_name, value in pairs:
        if not raw_name.startswith("$"):
            continue  # a custom query option: the protocol lets a service ignore it
        name = raw_name.lower()
        if name in NOT_IMPLEMENTED:
            raise bad_option(name, f"{name} is not supported by this service")
        if name not in SUPPORTED:
            shown = raw_name[:40]
            raise bad_option(shown, f"unknown system query option {shown!r}")
        if name in found:
            raise bad_option(name, f"{name} is given more than once")
        if len(value.encode()) > max_bytes:
            raise bad_option(name, f"{name} is longer than {max_bytes} bytes")
        if "\x00" in value:  # no text in the index holds one (PostgreSQL's cannot)
            raise bad_option(name, f"{name} holds a NUL character")
        found[name] = value
    return found


def parse_options(
    pairs: Iterable[tuple[str, str]], properties: dict[str, Property], max_bytes: int
) -> Options:
    found = system_options(pairs, max_bytes)
    fmt = found.get("$format")
    if fmt is not None and fmt.split(";")[0].strip().lower() not in JSON_FORMATS:
        raise bad_option("$format", "only JSON is served: $format=json")
    order = parse_orderby(found.get("$orderby"), properties)
    return Options(
        filter=found.get("$filter"),
        order=order,
        select=parse_select(found.get("$select"), properties),
        top=_integer(found, "$top"),
        skip=_integer(found, "$skip") or 0,
        count=_boolean(found, "$count"),
        after=decode_skiptoken(found["$skiptoken"], order) if "$skiptoken" in found else None,
        passed=found,
    )


def parse_orderby(text: str | None, properties: dict[str, Property]) -> tuple[OrderKey, ...]:
    keys: list[OrderKey] = []
    if text is not None and text.strip():
        items = text.split(",")
        if len(items) > MAX_ORDER_KEYS:
            raise bad_option("$orderby", f"$orderby takes at most {MAX_ORDER_KEYS} properties")
        for item in items:
            match = ORDER_ITEM.fullmatch(item)
            if match is None:
                raise bad_option("$orderby", f"{item.strip()[:40]!r} is not `property [asc|desc]`")
            prop = _property(properties, match.group(1), "$orderby")
            if any(key.prop is prop for key in keys):
                raise bad_option("$orderby", f"{prop.name} is ordered by twice")
            keys.append(OrderKey(prop, (match.group(2) or "asc").lower() == "desc"))
    if not any(key.prop.name == KEY for key in keys):
        keys.append(OrderKey(properties[KEY], descending=False))
    return tuple(keys)


def parse_select(text: str | None, properties: dict[str, Property]) -> tuple[Property, ...] | None:
    if text is None or text.strip() in ("", "*"):
        return None
    chosen = {_property(properties, name.strip(), "$select").name for name in text.split(",")}
    return tuple(p for p in properties.values() if p.name in chosen)


def _property(properties: dict[str, Property], name: str, option: str) -> Property:
    prop = properties.get(name)
    if prop is None:
        raise bad_option(
            option, f"unknown property {name[:40]!r}; the properties: {', '.join(properties)}"
        )
    return prop


def _integer(found: dict[str, str], name: str) -> int | None:
    text = found.get(name)
    if text is None:
        return None
    if not text.isdigit() or not text.isascii() or len(text) > 10 or int(text) > MAX_INTEGER:
        raise bad_option(name, f"{name} takes a whole number from 0 to {MAX_INTEGER}")
    return int(text)


def _boolean(found: dict[str, str], name: str) -> bool:
    text = found.get(name, "false")
    if text not in ("true", "false"):
        raise bad_option(name, f"{name} takes true or false")
    return text == "true"


# -- $skiptoken --------------------------------------------------------------------------------


def order_text(order: tuple[OrderKey, ...]) -> str:
    return ",".join(key.text() for key in order)


def encode_skiptoken(order: tuple[OrderKey, ...], values: tuple[Any, ...]) -> str:
    """The position after a row whose order keys hold ``values``."""
    shown = [v.isoformat() if isinstance(v, dt.datetime) else v for v in values]
    payload = orjson.dumps({"o": order_text(order), "k": shown})
    return base64.urlsafe_b64encode(payload).decode().rstrip("=")


def decode_skiptoken(token: str, order: tuple[OrderKey, ...]) -> tuple[Any, ...]:
    invalid = bad_option("$skiptoken", "$skiptoken is not one this service gave for this query")
    try:
        payload = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError):
        raise invalid from None
    if (
        not isinstance(payload, dict)
        or payload.get("o") != order_text(order)
        or not isinstance(payload.get("k"), list)
        or len(payload["k"]) != len(order)
    ):
        raise invalid
    try:
        return tuple(_typed(key.prop, v) for key, v in zip(order, payload["k"], strict=True))
    except (TypeError, ValueError, OverflowError):
        raise invalid from None


def _typed(prop: Property, value: Any) -> Any:
    """A token's value as the property's Python type; anything else is a forged token."""
    if value is None and prop.nullable:
        return None
    if prop.edm == STRING and isinstance(value, str):
        return value
    if prop.edm == DATE_TIME_OFFSET and isinstance(value, str):
        moment = dt.datetime.fromisoformat(value)
        if moment.tzinfo is None:
            raise ValueError(value)
        return moment.astimezone(dt.UTC)
    if prop.edm == DOUBLE and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if prop.edm == INT64 and isinstance(value, int) and not isinstance(value, bool):
        return value
    raise ValueError(value)
