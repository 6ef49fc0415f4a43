"""Cursors (``gateway.core.cursor``): positions survive a round trip exactly, a cursor only
resumes the query it was made for, and whatever a client sends as ``after`` is either a
well-formed set of positions or ``INVALID_CURSOR``: never another exception (which the graph
would turn into an internal error).

The cursor's format is rebuilt here by hand (``base64url(json)`` without padding, fields
``v``, ``q``, ``p``, as the module's docstring states) so forged cursors can be written
without the encoder under test.
"""

from __future__ import annotations

import base64
import string
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.core.cursor import CURSOR_VERSION, DONE, Position, decode_cursor, encode_cursor
from gateway.core.errors import BadInputError, InvalidCursorError

FINGERPRINT = "3f2a9c0d11be"
URL_SAFE = set(string.ascii_letters + string.digits + "-_")

tokens = st.none() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=40)
positions_st = st.dictionaries(
    st.text(max_size=20),
    st.none() | st.builds(Position, tokens, st.integers(0, 2**63 - 1)),
    max_size=8,
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


def forge(body: Any) -> str:
    """A cursor with any JSON body, as a client could write one."""
    return base64.urlsafe_b64encode(orjson.dumps(body)).decode().rstrip("=")


def decodes_or_refuses(cursor: str, fingerprint: str = FINGERPRINT) -> dict[str, Any] | None:
    """Positions, or None when the cursor is refused with the gateway's own error; any other
    exception fails the test."""
    try:
        positions = decode_cursor(cursor, fingerprint)
    except InvalidCursorError as exc:
        assert exc.code == "INVALID_CURSOR"
        assert isinstance(exc, BadInputError)  # reported as the caller's mistake, not a 5xx
        return None
    for key, position in positions.items():
        assert isinstance(key, str)
        if position is not None:  # a position the merge can use as it is
            assert type(position.index) is int and position.index >= 0
            assert position.token is None or type(position.token) in (int, str)
    return positions


@given(positions_st)
def test_positions_round_trip_exactly(positions: dict[str, Position | None]) -> None:
    cursor = encode_cursor(FINGERPRINT, positions)
    assert set(cursor) <= URL_SAFE  # fits a URL or a GraphQL variable unescaped
    assert decode_cursor(cursor, FINGERPRINT) == positions


def test_a_finished_source_round_trips_as_done() -> None:
    cursor = encode_cursor(FINGERPRINT, {"a": DONE, "b": Position("tok", 3), "c": Position(2, 0)})
    assert decode_cursor(cursor, FINGERPRINT) == {
        "a": None,
        "b": Position("tok", 3),
        "c": Position(2, 0),
    }


@given(positions_st, st.text(min_size=1, max_size=20))
def test_a_cursor_resumes_only_the_query_it_was_made_for(
    positions: dict[str, Position | None], other: str
) -> None:
    cursor = encode_cursor(FINGERPRINT, positions)
    if other == FINGERPRINT:
        return
    with pytest.raises(InvalidCursorError, match="start again") as caught:
        decode_cursor(cursor, other)
    assert caught.value.code == "INVALID_CURSOR"


@given(st.text(max_size=200))
def test_any_text_is_positions_or_invalid_cursor(garbage: str) -> None:
    decodes_or_refuses(garbage)


@given(st.binary(max_size=200))
def test_any_bytes_in_valid_base64_are_positions_or_invalid_cursor(data: bytes) -> None:
    decodes_or_refuses(base64.urlsafe_b64encode(data).decode().rstrip("="))


@given(json_values)
def test_any_json_body_is_positions_or_invalid_cursor(body: Any) -> None:
    decodes_or_refuses(forge(body))


@given(json_values)
def test_any_positions_value_is_a_position_or_invalid_cursor(value: Any) -> None:
    """The right version and query, but anything at all where the positions go."""
    decodes_or_refuses(forge({"v": CURSOR_VERSION, "q": FINGERPRINT, "p": value}))
    decodes_or_refuses(forge({"v": CURSOR_VERSION, "q": FINGERPRINT, "p": {"k": value}}))


@pytest.mark.parametrize(
    "value",
    [
        [None, -1],  # a negative offset
        [None, 1.0],  # an offset that is not a whole number
        [None, "3"],
        [True, 0],  # a token of a type no vendor uses
        [1.5, 0],
        [{"page": 1}, 0],
        [None],
        [None, 0, 0],
        "token",
        0,
        {},
    ],
    ids=repr,
)
def test_a_malformed_position_is_invalid_cursor(value: Any) -> None:
    cursor = forge({"v": CURSOR_VERSION, "q": FINGERPRINT, "p": {"k": value}})
    with pytest.raises(InvalidCursorError):
        decode_cursor(cursor, FINGERPRINT)


def test_a_boolean_offset_is_invalid_cursor() -> None:
    cursor = forge({"v": CURSOR_VERSION, "q": FINGERPRINT, "p": {"k": [None, True]}})
    with pytest.raises(InvalidCursorError):
        decode_cursor(cursor, FINGERPRINT)


@given(positions_st, st.data())
def test_every_truncation_is_invalid_cursor(
    positions: dict[str, Position | None], data: st.DataObject
) -> None:
    cursor = encode_cursor(FINGERPRINT, positions)
    cut = data.draw(st.integers(0, len(cursor) - 1))
    with pytest.raises(InvalidCursorError):
        decode_cursor(cursor[:cut], FINGERPRINT)


@given(positions_st, st.data())
def test_an_altered_character_never_escapes_as_another_error(
    positions: dict[str, Position | None], data: st.DataObject
) -> None:
    """A cursor carries no signature, so an edit may still decode; it must then still be
    well-formed positions, and otherwise ``INVALID_CURSOR``."""
    cursor = encode_cursor(FINGERPRINT, positions)
    at = data.draw(st.integers(0, len(cursor) - 1))
    char = data.draw(st.characters())
    decodes_or_refuses(cursor[:at] + char + cursor[at + 1 :])
    decodes_or_refuses(cursor[:at] + char + cursor[at:])  # inserted
    decodes_or_refuses(cursor[:at] + cursor[at + 1 :])  # deleted


@pytest.mark.parametrize(
    "mangle",
    [
        lambda c: c + "é",  # not ASCII
        lambda c: "\x00" + c,
        lambda c: c[: len(c) // 2] + "%3D" + c[len(c) // 2 :],  # URL-encoded once too often
        lambda c: c + "A",  # one base64 digit too many: a length no encoder produces
        lambda c: c.swapcase(),
        lambda c: c[::-1],
        lambda c: "",
    ],
    ids=["non-ascii", "nul", "percent", "extra-digit", "swapcase", "reversed", "empty"],
)
def test_mangled_base64_is_invalid_cursor(mangle: Any) -> None:
    cursor = encode_cursor(FINGERPRINT, {"orq": Position("01JJ1HDHN79XAS7A01WB3HYSDB", 7)})
    with pytest.raises(InvalidCursorError) as caught:
        decode_cursor(mangle(cursor), FINGERPRINT)
    assert caught.value.code == "INVALID_CURSOR"


@pytest.mark.parametrize("version", [1, CURSOR_VERSION + 1, str(CURSOR_VERSION), None, 2.5])
def test_another_version_is_invalid_cursor(version: Any) -> None:
    """A cursor of version 1 (single-part positions) resumed as version 2 could land at the
    wrong place: the client is told to start again instead."""
    body = {"v": version, "q": FINGERPRINT, "p": {"k": [None, 0]}}
    with pytest.raises(InvalidCursorError) as caught:
        decode_cursor(forge(body), FINGERPRINT)
    assert caught.value.code == "INVALID_CURSOR"
    without = {"q": FINGERPRINT, "p": {"k": [None, 0]}}
    with pytest.raises(InvalidCursorError):
        decode_cursor(forge(without), FINGERPRINT)


@pytest.mark.parametrize(
    "raw",
    [
        b"[" * 5000 + b"]" * 5000,  # nesting past the parser's depth limit
        b'{"v": 2, "q": "x", "p": {"k": [null, 123456789012345678901234567890]}}',  # > 64 bits
        b'{"v": 2, "q": "x", "p": {"k": [null, 0]}}trailing',
        b"\xff\xfe not utf-8",
    ],
    ids=["deep", "bigint", "trailing", "binary"],
)
def test_json_the_parser_refuses_is_invalid_cursor(raw: bytes) -> None:
    cursor = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    with pytest.raises(InvalidCursorError):
        decode_cursor(cursor, "x")
