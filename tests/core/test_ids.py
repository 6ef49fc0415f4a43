"""Global ids (``gateway.core.ids``): every vendor's ids survive the trip through a ``Node``
id whatever characters they hold, and whatever a client sends as an id is either a node id
or ``INVALID_ID``, never another exception.

The format (``base64url("<kind>:<vendor>:<part>...")``, parts percent-escaped, no padding) is
rebuilt here by hand to forge ids without the encoder under test.
"""

from __future__ import annotations

import base64
import string
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.core.errors import BadInputError, InvalidIdError
from gateway.core.ids import TASK, TRACKER, NodeId, decode_id, encode_id
from gateway.core.records import Vendor

URL_SAFE = set(string.ascii_letters + string.digits + "-_")
VENDOR_NAMES = ["agentex", "xpander", "orq", "subnoto"]  # the configuration names (README)

# Vendor ids as they come: ULIDs, UUIDs, agent keys with separators, any unicode (but no
# lone surrogates, which vendor JSON cannot carry: orjson refuses them).
vendor_texts = (
    st.text()
    | st.text(alphabet=":%/+=_-. ~#?&", max_size=12)
    | st.text(alphabet=st.characters(min_codepoint=0x80, codec="utf-8"), max_size=12)
    | st.uuids().map(str)
)
id_parts = st.lists(vendor_texts, min_size=1, max_size=3)


def forge(text: str | bytes) -> str:
    raw = text.encode() if isinstance(text, str) else text
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decodes_or_refuses(value: str) -> NodeId | None:
    try:
        node = decode_id(value)
    except InvalidIdError as exc:
        assert exc.code == "INVALID_ID"
        assert isinstance(exc, BadInputError)
        return None
    assert node.kind in (TASK, TRACKER)
    assert isinstance(node.vendor, Vendor) and node.parts
    assert all(isinstance(p, str) for p in node.parts)
    return node


@pytest.mark.parametrize("vendor", list(Vendor), ids=lambda v: v.value)
@given(kind=st.sampled_from([TASK, TRACKER]), parts=id_parts)
def test_ids_round_trip_for_every_vendor(vendor: Vendor, kind: str, parts: list[str]) -> None:
    value = encode_id(kind, vendor, *parts)
    assert set(value) <= URL_SAFE  # usable in a URL or a GraphQL variable unescaped
    assert decode_id(value) == NodeId(kind, vendor, tuple(parts))


@given(
    st.lists(vendor_texts, min_size=1, max_size=3), st.lists(vendor_texts, min_size=1, max_size=3)
)
def test_different_vendor_ids_never_share_a_global_id(one: list[str], two: list[str]) -> None:
    if one != two:
        assert encode_id(TASK, Vendor.XPANDER, *one) != encode_id(TASK, Vendor.XPANDER, *two)
    assert encode_id(TASK, Vendor.ORQ, *one) != encode_id(TASK, Vendor.XPANDER, *one)
    assert encode_id(TASK, Vendor.ORQ, *one) != encode_id(TRACKER, Vendor.ORQ, *one)


def test_an_absent_part_reads_back_empty() -> None:
    """Subnoto tasks have no agent: the id still has the part, empty."""
    node = decode_id(encode_id(TASK, Vendor.SUBNOTO, None, "6f1c"))
    assert node == NodeId(TASK, Vendor.SUBNOTO, ("", "6f1c"))


def test_a_colon_in_a_vendor_id_cannot_forge_another_part() -> None:
    node = decode_id(encode_id(TASK, Vendor.XPANDER, "agent:x", "task"))
    assert node.parts == ("agent:x", "task")


@given(st.text(max_size=120))
def test_any_text_is_an_id_or_invalid_id(value: str) -> None:
    decodes_or_refuses(value)


@given(st.binary(max_size=120))
def test_any_bytes_in_base64_are_an_id_or_invalid_id(data: bytes) -> None:
    decodes_or_refuses(forge(data))


@given(st.text(max_size=60))
def test_any_text_inside_the_base64_is_an_id_or_invalid_id(text: str) -> None:
    decodes_or_refuses(forge(text))
    decodes_or_refuses(forge("Task:orq:" + text))


@pytest.mark.parametrize("vendor", VENDOR_NAMES)
@given(st.data())
def test_truncated_or_altered_ids_never_escape_as_another_error(
    vendor: str, data: st.DataObject
) -> None:
    value = forge(f"Task:{vendor}:agent-1:" + data.draw(vendor_texts))
    at = data.draw(st.integers(0, len(value) - 1))
    decodes_or_refuses(value[:at])
    decodes_or_refuses(value[:at] + data.draw(st.characters()) + value[at + 1 :])


@pytest.mark.parametrize(
    "value",
    [
        "",
        "é",
        "Task:orq:agent:task",  # the plain text, not encoded
        forge("Task"),  # no vendor
        forge("Task:orq"),  # no parts
        forge("Task:nosuchvendor:a:b"),
        forge("Task:ORQ:a:b"),  # vendor names are exact
        forge("Node:orq:a:b"),  # not a kind of node
        forge("task:orq:a:b"),
        forge(b"Task:orq:\xff\xfe"),  # not UTF-8
        forge("Task:orq:a:b") + "A",  # a length no encoder produces
    ],
    ids=repr,
)
def test_malformed_ids_are_invalid_id(value: str) -> None:
    with pytest.raises(InvalidIdError) as caught:
        decode_id(value)
    assert caught.value.code == "INVALID_ID"
    assert "is not a Task Gateway id" in caught.value.message


@pytest.mark.parametrize("kind,vendor", [(TASK, "orq"), (TRACKER, "agentex")])
def test_the_documented_layout_is_what_decodes(kind: str, vendor: str) -> None:
    """An id written by hand in the documented layout reads back: ids are stable across
    gateway versions and replicas (a client may have stored one)."""
    node: Any = decode_id(forge(f"{kind}:{vendor}:agent%3A1:t%25x"))
    assert (node.kind, node.vendor.value, node.parts) == (kind, vendor, ("agent:1", "t%x"))


@given(st.text(min_size=65, max_size=5000))
def test_a_long_refused_id_is_quoted_in_part(value: str) -> None:
    try:
        decode_id(value)
    except InvalidIdError as exc:
        assert repr(value[:64]) in exc.message and f"({len(value)} characters)" in exc.message
        assert repr(value[64:]) not in exc.message or not value[64:]
