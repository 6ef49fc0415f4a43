"""The Agentex simulator: ``GET /tracker`` and ``PUT /tracker/{tracker_id}``, over real HTTP,
against the vendor's OpenAPI pages and the open-source server's behaviour (VENDORS.md)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from gateway.core.records import Vendor
from gateway.sandbox import SANDBOX_CREDENTIALS, Sandbox, SandboxOptions
from gateway.serving import ServerThread
from tests.sandbox.conftest import NOW, get_json, parse_time

FIELDS = {
    "id",
    "agent_id",
    "task_id",
    "status",
    "status_reason",
    "last_processed_event_id",
    "created_at",
    "updated_at",
}


def trackers(sim: Sandbox) -> dict[str, dict[str, Any]]:
    store: dict[str, dict[str, Any]] = sim.store(Vendor.AGENTEX)
    return store


def page_through(http: httpx.Client, limit: int, **params: Any) -> list[dict[str, Any]]:
    """Every page until the first one shorter than ``limit`` (Agentex sends no total)."""
    rows: list[dict[str, Any]] = []
    page = 1
    while True:
        batch = get_json(
            http.get("/agentex/tracker", params={**params, "limit": limit, "page_number": page})
        )
        assert isinstance(batch, list) and len(batch) <= limit
        rows += batch
        if len(batch) < limit:
            return rows
        page += 1


# -- paging bounds --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value", "error_type"),
    [
        ("limit", "0", "greater_than_equal"),
        ("limit", "-5", "greater_than_equal"),
        ("limit", "ten", "int_parsing"),
        ("limit", "2.5", "int_parsing"),
        ("page_number", "0", "greater_than_equal"),
        ("page_number", "first", "int_parsing"),
    ],
)
def test_paging_parameters_out_of_bounds_are_fastapi_422(
    http: httpx.Client, name: str, value: str, error_type: str
) -> None:
    body = get_json(http.get("/agentex/tracker", params={name: value}), 422)
    assert set(body) == {"detail"} and isinstance(body["detail"], list) and body["detail"]
    error = body["detail"][0]
    assert error["loc"] == ["query", name]
    assert error["type"] == error_type
    assert isinstance(error["msg"], str) and error["msg"]


def test_defaults_are_fifty_per_page_and_a_short_page_is_the_last(
    http: httpx.Client, sim: Sandbox
) -> None:
    total = len(trackers(sim))
    assert total > 50
    first = get_json(http.get("/agentex/tracker"))
    assert len(first) == 50
    second = get_json(http.get("/agentex/tracker", params={"page_number": 2}))
    assert len(second) == total - 50
    assert get_json(http.get("/agentex/tracker", params={"page_number": 3})) == []
    # The smallest page, and a page far past the end.
    assert len(get_json(http.get("/agentex/tracker", params={"limit": 1}))) == 1
    assert get_json(http.get("/agentex/tracker", params={"page_number": 10**6})) == []


def test_a_tracker_has_exactly_the_documented_fields(http: httpx.Client) -> None:
    for row in get_json(http.get("/agentex/tracker", params={"limit": 100})):
        assert set(row) == FIELDS
        for key in ("id", "agent_id", "task_id"):
            assert isinstance(row[key], str)
        for key in ("status", "status_reason", "last_processed_event_id"):
            assert row[key] is None or isinstance(row[key], str)
        parse_time(row["created_at"])
        if row["updated_at"] is not None:
            parse_time(row["updated_at"])


# -- ordering --------------------------------------------------------------------------------


def pg_value(field: str, value: Any) -> tuple[bool, Any]:
    """One column as Postgres sorts it with no NULLS clause: a NULL after every value (so
    last ascending, first descending); times as times."""
    if value is None:
        return (True, "")
    return (False, parse_time(value) if field.endswith("_at") else value)


def pg_key(row: dict[str, Any], order_by: str | None) -> tuple[Any, ...]:
    """The server's ``ORDER BY <order_by>, updated_at, created_at`` (scale-agentex,
    ``create_order_by_clauses``): the named column only if it is one."""
    columns = ([order_by] if order_by in FIELDS else []) + ["updated_at", "created_at"]
    return tuple(pg_value(c, row[c]) for c in columns)


def test_the_data_has_null_update_times(sim: Sandbox) -> None:
    assert any(t["updated_at"] is None for t in trackers(sim).values())


@pytest.mark.parametrize("field", ["created_at", "updated_at", "id", "agent_id", "status"])
@pytest.mark.parametrize("direction", ["asc", "desc", "DESC", None])
def test_paging_yields_every_tracker_once_in_the_servers_order(
    http: httpx.Client, sim: Sandbox, field: str, direction: str | None
) -> None:
    params = {"order_by": field, **({"order_direction": direction} if direction else {})}
    rows = page_through(http, 7, **params)
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids)) and set(ids) == set(trackers(sim))
    keys = [pg_key(r, field) for r in rows]
    descending = direction is None or direction.lower() == "desc"  # desc is the default
    assert keys == sorted(keys, reverse=descending)
    # Without the shuffle knob, ties keep one order whatever the page size.
    assert rows == get_json(http.get("/agentex/tracker", params={**params, "limit": 1000}))
    assert rows == page_through(http, 11, **params)


@pytest.mark.parametrize("field", ["updated_at", "status", "last_processed_event_id"])
def test_nulls_come_first_descending_and_last_ascending(
    http: httpx.Client, sim: Sandbox, field: str
) -> None:
    nulls = {t["id"] for t in trackers(sim).values() if t[field] is None}
    assert nulls, f"the data should have a null {field}"
    desc = page_through(http, 9, order_by=field, order_direction="desc")
    asc = page_through(http, 9, order_by=field, order_direction="asc")
    assert {r["id"] for r in desc[: len(nulls)]} == nulls
    assert {r["id"] for r in asc[-len(nulls) :]} == nulls


@pytest.mark.parametrize("order_by", [None, "", "no_such_column", "updated_at"])
def test_without_a_known_order_by_the_order_is_updated_then_created(
    http: httpx.Client, sim: Sandbox, order_by: str | None
) -> None:
    """An ``order_by`` the ORM has no attribute for is dropped silently (``hasattr``), so
    the listing falls back to ``updated_at`` then ``created_at``, descending by default."""
    stamps = [t["created_at"] for t in trackers(sim).values()]
    assert len(stamps) > len(set(stamps)), "the data should have tied creation times"
    params = {} if order_by is None else {"order_by": order_by}
    rows = page_through(http, 3, **params)
    keys = [pg_key(r, None) for r in rows]
    assert keys == sorted(keys, reverse=True)
    assert rows == page_through(http, 3)
    # Tied trackers straddle page boundaries with limit 1 and still come once each, in the
    # same order.
    assert [r["id"] for r in page_through(http, 1, **params)] == [r["id"] for r in rows]


def test_ties_on_the_order_field_keep_one_order_across_pages(
    http: httpx.Client, sim: Sandbox
) -> None:
    agents = sim.agents(Vendor.AGENTEX)
    for direction in ("asc", "desc"):
        params = {"order_by": "agent_id", "order_direction": direction}
        rows = page_through(http, 4, **params)  # ~20 trackers share each agent_id
        assert len({r["id"] for r in rows}) == len(rows) == len(trackers(sim))
        order = [r["agent_id"] for r in rows]
        expected = sorted(agents, reverse=direction == "desc")
        assert list(dict.fromkeys(order)) == expected
        assert rows == page_through(http, 13, **params)


def test_shuffled_ties_change_order_between_requests_but_never_the_sort(
    http: httpx.Client, sim: Sandbox
) -> None:
    """With ``shuffle_ties``, rows tied on every sort column (here: a shared creation and
    update moment) come in a new order on each request, as Postgres may return them."""
    sim.knobs(Vendor.AGENTEX).shuffle_ties = True
    params = {"order_by": "created_at", "order_direction": "asc", "limit": 1000}
    listings = [get_json(http.get("/agentex/tracker", params=params)) for _ in range(8)]
    for rows in listings:
        keys = [pg_key(r, "created_at") for r in rows]
        assert keys == sorted(keys)
        assert {r["id"] for r in rows} == set(trackers(sim))
    assert len({tuple(r["id"] for r in rows) for rows in listings}) > 1
    # Pages read one by one may then repeat a tied row and lose another: what a client of
    # an offset-paged API must survive.
    seen = page_through(http, 2, order_by="created_at")
    assert {r["id"] for r in seen} <= set(trackers(sim))


# -- filters ---------------------------------------------------------------------------------


def test_agent_and_task_filters(http: httpx.Client, sim: Sandbox) -> None:
    store = trackers(sim)
    for agent in sim.agents(Vendor.AGENTEX):
        rows = page_through(http, 9, agent_id=agent)
        assert rows and {r["agent_id"] for r in rows} == {agent}
        assert {r["id"] for r in rows} == {
            t["id"] for t in store.values() if t["agent_id"] == agent
        }
    tracker = next(iter(store.values()))
    by_task = get_json(http.get("/agentex/tracker", params={"task_id": tracker["task_id"]}))
    assert [r["id"] for r in by_task] == [tracker["id"]]
    both = {"agent_id": tracker["agent_id"], "task_id": tracker["task_id"]}
    assert [r["id"] for r in get_json(http.get("/agentex/tracker", params=both))] == [tracker["id"]]
    other_agent = next(a for a in sim.agents(Vendor.AGENTEX) if a != tracker["agent_id"])
    mismatch = {"agent_id": other_agent, "task_id": tracker["task_id"]}
    assert get_json(http.get("/agentex/tracker", params=mismatch)) == []
    assert get_json(http.get("/agentex/tracker", params={"agent_id": "no-such-agent"})) == []


# -- PUT -------------------------------------------------------------------------------------


def put(http: httpx.Client, tracker_id: str, body: Any) -> httpx.Response:
    return http.put(f"/agentex/tracker/{tracker_id}", json=body)


def listed(http: httpx.Client, tracker: dict[str, Any]) -> dict[str, Any]:
    rows = get_json(http.get("/agentex/tracker", params={"task_id": tracker["task_id"]}))
    assert len(rows) == 1
    row: dict[str, Any] = rows[0]
    return row


def test_put_writes_status_and_reason_as_sent_and_an_omitted_one_becomes_null(
    http: httpx.Client, sim: Sandbox
) -> None:
    tracker = next(t for t in trackers(sim).values() if t["status"] and t["status_reason"])
    before = dict(tracker)
    updated = get_json(put(http, tracker["id"], {"status": "running"}))
    assert updated["status"] == "running"
    assert updated["status_reason"] is None  # omitted, so written as null
    assert updated["last_processed_event_id"] == before["last_processed_event_id"]
    for key in ("id", "agent_id", "task_id", "created_at"):
        assert updated[key] == before[key]
    assert parse_time(updated["updated_at"]) >= parse_time(before["updated_at"])
    assert listed(http, tracker) == updated  # a later GET sees the PUT

    updated = get_json(put(http, tracker["id"], {"status_reason": "waiting on a tool"}))
    assert updated["status"] is None and updated["status_reason"] == "waiting on a tool"
    updated = get_json(put(http, tracker["id"], {}))
    assert updated["status"] is None and updated["status_reason"] is None
    assert updated["last_processed_event_id"] == before["last_processed_event_id"]
    assert listed(http, tracker) == updated


def test_put_moves_the_event_cursor_forward_only(http: httpx.Client, sim: Sandbox) -> None:
    events: dict[str, list[str]] = sim.store(Vendor.AGENTEX).events

    def middle(t: dict[str, Any]) -> bool:
        own = events[t["task_id"]]
        current = t["last_processed_event_id"]
        return current in own and 0 < own.index(current) < len(own) - 1

    tracker = next(t for t in trackers(sim).values() if middle(t))
    own = events[tracker["task_id"]]
    current = tracker["last_processed_event_id"]
    body = {"status": tracker["status"], "status_reason": tracker["status_reason"]}

    # null (like omitted) leaves the cursor alone; the same event is not a move back.
    kept = get_json(put(http, tracker["id"], {**body, "last_processed_event_id": None}))
    assert kept["last_processed_event_id"] == current
    same = get_json(put(http, tracker["id"], {**body, "last_processed_event_id": current}))
    assert same["last_processed_event_id"] == current

    backwards = get_json(put(http, tracker["id"], {**body, "last_processed_event_id": own[0]}), 400)
    assert set(backwards) == {"detail"} and isinstance(backwards["detail"], str)
    unknown = put(http, tracker["id"], {**body, "last_processed_event_id": "no-such-event"})
    assert isinstance(get_json(unknown, 400)["detail"], str)
    # A refused PUT changes nothing, not even the status it carried.
    refused = put(http, tracker["id"], {"status": "x", "last_processed_event_id": own[0]})
    assert refused.status_code == 400
    assert listed(http, tracker)["last_processed_event_id"] == current
    assert listed(http, tracker)["status"] == body["status"]

    forward = get_json(put(http, tracker["id"], {**body, "last_processed_event_id": own[-1]}))
    assert forward["last_processed_event_id"] == own[-1]
    assert listed(http, tracker)["last_processed_event_id"] == own[-1]


def test_a_tracker_without_a_cursor_takes_any_of_its_events(
    http: httpx.Client, sim: Sandbox
) -> None:
    events: dict[str, list[str]] = sim.store(Vendor.AGENTEX).events
    tracker = next(
        (t for t in trackers(sim).values() if t["last_processed_event_id"] is None), None
    )
    if tracker is None:
        pytest.skip("no tracker without a cursor in this data")
    first = events[tracker["task_id"]][0]
    moved = get_json(put(http, tracker["id"], {"last_processed_event_id": first}))
    assert moved["last_processed_event_id"] == first


def test_put_to_an_unknown_tracker_is_404_with_a_string_detail(http: httpx.Client) -> None:
    body = get_json(put(http, "00000000-0000-4000-8000-000000000000", {"status": "done"}), 404)
    assert set(body) == {"detail"} and isinstance(body["detail"], str)


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"status": 3}, ["body", "status"]),
        ({"status_reason": True}, ["body", "status_reason"]),
        ({"last_processed_event_id": ["e"]}, ["body", "last_processed_event_id"]),
        ({"status": {"a": 1}}, ["body", "status"]),
        (["status"], ["body"]),
        ("running", ["body"]),
    ],
)
def test_put_with_a_non_string_field_is_422(
    http: httpx.Client, sim: Sandbox, body: Any, loc: list[str]
) -> None:
    tracker = next(iter(trackers(sim).values()))
    before = dict(tracker)
    detail = get_json(put(http, tracker["id"], body), 422)["detail"]
    assert isinstance(detail, list) and detail[0]["loc"] == loc
    assert {"loc", "msg", "type"} <= set(detail[0])
    assert trackers(sim)[tracker["id"]] == before
    # Validation comes before the lookup, as FastAPI validates before the handler runs.
    assert put(http, "no-such-tracker", body).status_code == 422


def test_put_with_a_body_that_is_not_json_is_422(http: httpx.Client, sim: Sandbox) -> None:
    tracker = next(iter(trackers(sim).values()))
    answer = http.put(
        f"/agentex/tracker/{tracker['id']}",
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    assert get_json(answer, 422)["detail"][0]["loc"][0] == "body"


def test_a_put_reorders_later_listings_by_update_time(http: httpx.Client, sim: Sandbox) -> None:
    dated = [t for t in trackers(sim).values() if t["updated_at"] is not None]
    oldest = min(dated, key=lambda t: parse_time(t["updated_at"]))
    nulls = sum(t["updated_at"] is None for t in trackers(sim).values())
    newest = {"order_by": "updated_at", "limit": 1, "page_number": nulls + 1}  # after the nulls
    assert get_json(http.get("/agentex/tracker", params=newest))[0]["id"] != oldest["id"]
    get_json(put(http, oldest["id"], {"status": "done", "status_reason": "finished"}))
    after = get_json(http.get("/agentex/tracker", params=newest))
    assert after[0]["id"] == oldest["id"] and after[0]["status"] == "done"


# -- auth ------------------------------------------------------------------------------------


def test_open_without_a_secret(http: httpx.Client) -> None:
    assert http.get("/agentex/tracker", params={"limit": 1}).status_code == 200


def test_a_configured_secret_is_required() -> None:
    locked = Sandbox(
        SandboxOptions(size=4, seed=1, now=NOW), {**SANDBOX_CREDENTIALS, Vendor.AGENTEX: "k"}
    )
    tracker = next(iter(locked.store(Vendor.AGENTEX)))
    with ServerThread(locked.app) as server, httpx.Client(base_url=server.url) as client:
        for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": "k"}):
            denied = client.get("/agentex/tracker", headers=headers)
            assert set(get_json(denied, 401)) == {"detail"}
            assert isinstance(denied.json()["detail"], str)
            assert (
                client.put(f"/agentex/tracker/{tracker}", json={}, headers=headers).status_code
                == 401
            )
        ok = client.get("/agentex/tracker", headers={"authorization": "Bearer k"})
        assert len(get_json(ok)) == 4
