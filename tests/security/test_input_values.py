"""Values a client sends that no vendor URL or UTC clock can hold are ``BAD_USER_INPUT``
before any upstream call, never ``INTERNAL_SERVER_ERROR`` or a plain 500 (issue 14,
item 10): over-long or unencodable ids, in every argument that becomes part of a vendor
request, over GraphQL (POST and GET) and the export; times whose UTC equivalent does not
exist (``9999-12-31T23:59:59-23:59``), in every time argument.

Expected outcomes come from Python's own calendar arithmetic, not from the gateway.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from gateway.core.records import Vendor
from gateway.sandbox import Sandbox
from tests.conftest import GatewayClient
from tests.security.test_input_http import assert_well_formed

MAX_ID_LENGTH = 256
"""The documented bound (README, "Security and limits")."""
SETTINGS = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
ID_ARGUMENTS: dict[str, tuple[str, Any]] = {
    # name: (document using $v, how the value goes into the variables)
    "userId": ("query Q($v: String) { tasks(filter: {userId: $v}) { totalCount } }", str),
    "parentTaskId": (
        "query Q($v: String) { tasks(filter: {parentTaskId: $v}) { nodes { id } } }",
        str,
    ),
    "triggeringAgentId": (
        "query Q($v: String) { taskStats(filter: {triggeringAgentId: $v}) { total } }",
        str,
    ),
    "agentIds": (
        "query Q($v: [String!]) { tasks(filter: {agentIds: $v}) { nodes { id } } }",
        lambda v: ["a", v],
    ),
    "agentId": ("query Q($v: String) { trackers(agentId: $v) { nodes { id } } }", str),
    "taskId": ("query Q($v: String) { trackers(taskId: $v) { nodes { id } } }", str),
}
EXPORT_ID_PARAMETERS = ("userId", "parentTaskId", "triggeringAgentId", "agentIds")
TIME_DOCUMENTS = (
    "query Q($t: DateTime) { tasks(filter: {updatedAfter: $t}) { totalCount } }",
    "query Q($t: DateTime) { tasks(filter: {updatedBefore: $t}) { nodes { id } } }",
    "query Q($t: DateTime) { taskStats(filter: {updatedAfter: $t}) { total } }",
)


def upstream_calls(sandbox: Sandbox) -> int:
    return sum(sum(sandbox.counters(v).values()) for v in Vendor)


def codes(body: dict[str, Any]) -> list[str]:
    return [e["extensions"]["code"] for e in body.get("errors", [])]


def graphql(gateway: GatewayClient, document: str, variables: dict[str, Any]) -> dict[str, Any]:
    response = gateway.http.post("/graphql", json={"query": document, "variables": variables})
    return assert_well_formed(response)


ids = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=40
)


@SETTINGS
@given(
    argument=st.sampled_from(sorted(ID_ARGUMENTS)),
    # JSON may spell a character in 6 bytes: 40,000 stay under the body limit (256 KiB).
    length=st.integers(min_value=MAX_ID_LENGTH + 1, max_value=40_000),
    unit=ids,
)
@example(argument="userId", length=200_000, unit="x")
def test_an_over_long_id_is_bad_user_input_before_any_call(
    gateway: GatewayClient, clean_sandbox: Sandbox, argument: str, length: int, unit: str
) -> None:
    value = (unit * (length // len(unit) + 1))[:length]
    document, wrap = ID_ARGUMENTS[argument]
    clean_sandbox.reset_counters()
    body = graphql(gateway, document, {"v": wrap(value)})
    assert codes(body) == ["BAD_USER_INPUT"], body
    assert argument in body["errors"][0]["message"]
    assert value not in body["errors"][0]["message"]
    assert upstream_calls(clean_sandbox) == 0


@SETTINGS
@given(argument=st.sampled_from(sorted(ID_ARGUMENTS)), value=ids)
def test_an_id_within_the_bound_is_asked_for(
    gateway: GatewayClient, argument: str, value: str
) -> None:
    document, wrap = ID_ARGUMENTS[argument]
    padded = (value * MAX_ID_LENGTH)[:MAX_ID_LENGTH]
    for candidate in (value, padded):
        body = graphql(gateway, document, {"v": wrap(candidate)})
        assert "BAD_USER_INPUT" not in codes(body) and "INTERNAL_SERVER_ERROR" not in codes(body)


@SETTINGS
@given(
    parameter=st.sampled_from(EXPORT_ID_PARAMETERS),
    length=st.integers(min_value=MAX_ID_LENGTH + 1, max_value=20_000),
    fmt=st.sampled_from(["csv", "ndjson"]),
)
def test_an_over_long_id_in_an_export_is_400(
    gateway: GatewayClient, clean_sandbox: Sandbox, parameter: str, length: int, fmt: str
) -> None:
    clean_sandbox.reset_counters()
    response = gateway.http.get(f"/export/tasks.{fmt}", params={parameter: "x" * length})
    assert response.status_code == 400
    assert codes(assert_well_formed(response)) == ["BAD_USER_INPUT"]
    assert upstream_calls(clean_sandbox) == 0


@pytest.mark.parametrize("raw", ["%ED%A0%80", "%ED%BF%BF", "%FF", "%C3", "%F0%9F%98%80", "%00"])
@pytest.mark.parametrize("argument", ["userId", "parentTaskId", "triggeringAgentId", "agentIds"])
def test_undecodable_bytes_in_a_get_or_an_export_are_answered_cleanly(
    gateway: GatewayClient, raw: str, argument: str
) -> None:
    """Bytes that are no UTF-8 (an encoded surrogate among them), in a GET's document, its
    variables, and an export's parameters."""
    literal = f"%22a{raw}b%22" if argument != "agentIds" else f"[%22a{raw}b%22]"
    document = f"/graphql?query=%7Btasks(filter:%7B{argument}:{literal}%7D)%7BtotalCount%7D%7D"
    body = assert_well_formed(gateway.http.get(document))
    assert "INTERNAL_SERVER_ERROR" not in codes(body)
    # One vendor, so the export answers quickly; it reads what the gateway decoded.
    export = gateway.http.get(f"/export/tasks.ndjson?vendors=ORQ&{argument}=a{raw}b")
    assert export.status_code < 500
    if export.status_code != 200:
        assert_well_formed(export)


offsets = st.integers(min_value=-(24 * 60 - 1), max_value=24 * 60 - 1)
edge_times = st.builds(
    datetime,
    year=st.sampled_from([1, 2, 2026, 9998, 9999]),
    month=st.sampled_from([1, 12]),
    day=st.sampled_from([1, 31]),
    hour=st.sampled_from([0, 12, 23]),
    minute=st.sampled_from([0, 59]),
    second=st.sampled_from([0, 59]),
    microsecond=st.sampled_from([0, 999_999]),
)


def iso(naive: datetime, offset_minutes: int | None) -> str:
    """ISO-8601 text with the offset spelled out (``Z`` for zero), or none."""
    text = naive.isoformat()
    if offset_minutes is None:
        return text
    if offset_minutes == 0:
        return text + "Z"
    sign = "+" if offset_minutes > 0 else "-"
    hours, minutes = divmod(abs(offset_minutes), 60)
    return f"{text}{sign}{hours:02d}:{minutes:02d}"


def exists_in_utc(naive: datetime, offset_minutes: int) -> bool:
    """The oracle: whether the wall time at that offset has a UTC equivalent."""
    try:
        naive - timedelta(minutes=offset_minutes)
    except OverflowError:
        return False
    return True


@SETTINGS
@given(naive=edge_times, offset=offsets, document=st.sampled_from(TIME_DOCUMENTS))
@example(
    naive=datetime(9999, 12, 31, 23, 59, 59), offset=-(23 * 60 + 59), document=TIME_DOCUMENTS[0]
)
@example(naive=datetime(1, 1, 1, 0, 0, 0), offset=23 * 60 + 59, document=TIME_DOCUMENTS[1])
def test_a_time_with_no_utc_equivalent_is_bad_user_input(
    gateway: GatewayClient, clean_sandbox: Sandbox, naive: datetime, offset: int, document: str
) -> None:
    clean_sandbox.reset_counters()
    body = graphql(gateway, document, {"t": iso(naive, offset)})
    if exists_in_utc(naive, offset):
        assert codes(body) == [], body
    else:
        assert codes(body) == ["BAD_USER_INPUT"], body
        assert upstream_calls(clean_sandbox) == 0


@SETTINGS
@given(
    naive=edge_times,
    offset=st.none() | offsets,
    parameter=st.sampled_from(["updatedAfter", "updatedBefore"]),
)
@example(naive=datetime(9999, 12, 31, 23, 59, 59), offset=-(23 * 60 + 59), parameter="updatedAfter")
def test_the_export_judges_times_as_graphql_does(
    gateway: GatewayClient, naive: datetime, offset: int | None, parameter: str
) -> None:
    text = iso(naive, offset)
    params = {parameter: text, "vendors": "ORQ"}  # one vendor: a short export
    response = gateway.http.get("/export/tasks.ndjson", params=params)
    if offset is not None and exists_in_utc(naive, offset):
        assert response.status_code == 200, response.text
        response.read()
    else:  # no timezone, or no UTC equivalent
        assert response.status_code == 400
        assert codes(assert_well_formed(response)) == ["BAD_USER_INPUT"]
    graphql_body = graphql(gateway, TIME_DOCUMENTS[0], {"t": text})
    assert ("BAD_USER_INPUT" in codes(graphql_body)) == (response.status_code == 400)


@pytest.mark.parametrize(
    "text", ["not a time", "2026-13-01T00:00:00Z", "2026-01-01T00:00:00+24:00"]
)
def test_a_malformed_time_is_refused_on_both_paths(gateway: GatewayClient, text: str) -> None:
    export = gateway.http.get("/export/tasks.csv", params={"updatedAfter": text})
    assert export.status_code == 400
    assert codes(assert_well_formed(export)) == ["BAD_USER_INPUT"]
    body = graphql(gateway, TIME_DOCUMENTS[0], {"t": text})
    assert codes(body) == ["BAD_USER_INPUT"]
