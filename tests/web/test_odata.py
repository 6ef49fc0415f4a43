"""OData v4 for Power BI, Excel and Tableau (issue 19, part 3), over real HTTP against a
gateway whose task index is filled from the sandbox.

The expected answers are computed here: every row from the sandbox's own vendor records
(``expected_row``, the documented field behind each column), and ``$filter``, ``$orderby``,
``$top``, ``$skip`` by OData's rules written out below (two-valued comparisons: ``ne`` holds
for null, order comparisons never do; nulls sort first ascending and last descending; ties
by ``id``), never by gateway code. Two real OData clients read the service: ``pyodata`` parses
``$metadata``, and ``python-odata`` (an OData v4 client) reads ``Tasks`` page by page through
``@odata.nextLink`` with filters and HTTP Basic auth, as Power BI does.
"""

from __future__ import annotations

import asyncio
import base64
import json
import operator
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import pyodata.v2.model
import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from odata import ODataService
from requests.auth import HTTPBasicAuth

from gateway.core.contract import ListQuery
from gateway.core.records import Vendor
from gateway.graph.schema import QueryLimits
from gateway.index.store import TaskIndex
from gateway.sandbox import Sandbox
from tests.conftest import GatewayClient, GatewayFactory
from tests.index import conftest as index_fixtures
from tests.web.test_export_parquet import expected_row, sandbox_records

KEY = "odata-client-key-0123456789"
BEARER = {"authorization": f"Bearer {KEY}"}
MAX_DOCUMENT_BYTES = 4096
PROPERTIES = {  # the CSDL the service owes: name -> (type, nullable)
    "id": ("Edm.String", False),
    "vendor": ("Edm.String", False),
    "nativeId": ("Edm.String", False),
    "agentId": ("Edm.String", True),
    "status": ("Edm.String", False),
    "vendorStatus": ("Edm.String", True),
    "title": ("Edm.String", True),
    "summary": ("Edm.String", True),
    "createdAt": ("Edm.DateTimeOffset", True),
    "updatedAt": ("Edm.DateTimeOffset", True),
    "userId": ("Edm.String", True),
    "parentTaskId": ("Edm.String", True),
    "triggeringAgentId": ("Edm.String", True),
    "link": ("Edm.String", True),
    "totalCost": ("Edm.Double", True),
    "totalTokens": ("Edm.Int64", True),
}
TIMES = ("createdAt", "updatedAt")
EXAMPLES = settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

Row = dict[str, Any]


class Rows(list[Row]):
    """A table with a short repr: hypothesis shows a failing test's arguments."""

    def __repr__(self) -> str:
        return f"<{len(self)} rows>"


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"authorization": f"Basic {token}"}


def camel(snake: str) -> str:
    head, *rest = snake.split("_")
    return head + "".join(part.capitalize() for part in rest)


# -- the oracle's table ------------------------------------------------------------------


def oracle_rows(sandbox: Sandbox) -> list[Row]:
    """Every task as OData must show it, from the sandbox's records (no ``id``: opaque)."""
    rows = []
    for vendor, records in sandbox_records(sandbox).items():
        for record in records:
            row = expected_row(vendor, record)
            row.pop("raw")
            rows.append({camel(name): value for name, value in row.items()})
    return rows


def row_key(row: Row) -> tuple[str, str | None, str]:
    return (row["vendor"], row["agentId"], row["nativeId"])


def typed(entity: Row) -> Row:
    """An entity as JSON shows it, with its times as datetimes."""
    return {
        name: datetime.fromisoformat(value) if name in TIMES and value is not None else value
        for name, value in entity.items()
    }


# -- fixtures -----------------------------------------------------------------------------


def wait_ready(client: httpx.Client, path: str = "/odata/Tasks/$count") -> httpx.Response:
    """The first answer that is not "the index is not ready yet" (the sync at work)."""
    for _ in range(600):
        response = client.get(path)
        if response.status_code != 503:
            return response
        time.sleep(0.1)
    raise AssertionError(f"the index never became ready: {response.text}")


index_url = index_fixtures.index_url
"""A fresh index of each kind for the module: every test runs on SQLite and PostgreSQL."""


@pytest.fixture(scope="module")
def odata(make_gateway: GatewayFactory, index_url: str) -> GatewayClient:
    """A gateway whose own sync fills its index from the sandbox; ready once every vendor's
    first full sync is done."""
    gateway = make_gateway(
        index_url=index_url,
        api_keys=(KEY,),
        open_access=False,
        failed_auth_per_minute=0,
        limits=QueryLimits(max_document_bytes=MAX_DOCUMENT_BYTES),
    )
    gateway.http.headers.update(BEARER)
    wait_ready(gateway.http)
    return gateway


@pytest.fixture(scope="module")
def expected(sandbox: Sandbox) -> list[Row]:
    return oracle_rows(sandbox)


@pytest.fixture(scope="module")
def table(odata: GatewayClient, expected: list[Row]) -> list[Row]:
    """The oracle's rows with the ``id`` the service gives each (the id is opaque: it is
    checked against the exports' ids in ``test_the_whole_table…``)."""
    ids = {
        row_key(e): e["id"] for e in read_all(odata.http, {"$select": "id,vendor,agentId,nativeId"})
    }
    return Rows({**row, "id": ids[row_key(row)]} for row in expected)


def read_all(
    client: httpx.Client, params: dict[str, str], page_size: int = 37, count: int | None = None
) -> list[Row]:
    """Every entity of ``Tasks`` for ``params``, following ``@odata.nextLink``; each page
    checked for OData's shape (and its ``@odata.count`` against ``count``)."""
    response = client.get(
        "/odata/Tasks", params=params, headers={"prefer": f"odata.maxpagesize={page_size}"}
    )
    entities: list[Row] = []
    while True:
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith(
            "application/json;odata.metadata=minimal"
        )
        assert response.headers["odata-version"] == "4.0"
        body = response.json()
        assert body["@odata.context"].endswith("/odata/$metadata#Tasks" + _shape(params))
        assert len(body["value"]) <= page_size
        if count is not None:
            assert body["@odata.count"] == count
        entities.extend(body["value"])
        link = body.get("@odata.nextLink")
        if link is None:
            return entities
        assert len(body["value"]) == page_size  # only a full page has a next one
        response = client.get(link, headers={"prefer": f"odata.maxpagesize={page_size}"})


def _shape(params: dict[str, str]) -> str:
    select = params.get("$select")
    if not select:
        return ""
    chosen = {s.strip() for s in select.split(",")}
    return "(" + ",".join(p for p in PROPERTIES if p in chosen) + ")"


# -- without an index --------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/odata/", "/odata/$metadata", "/odata/Tasks", "/odata/Tasks/$count"]
)
def test_without_an_index_every_path_names_the_setting(gateway: GatewayClient, path: str) -> None:
    response = gateway.http.get(path)
    assert response.status_code == 501
    error = response.json()["error"]
    assert error["code"] == "INDEX_NOT_CONFIGURED"
    assert "[index] url" in error["message"]


# -- the service document and $metadata --------------------------------------------------


def test_service_document_lists_tasks(odata: GatewayClient) -> None:
    for path in ("/odata", "/odata/"):
        body = odata.http.get(path).json()
        assert body["@odata.context"] == f"{odata.url}/odata/$metadata"
        assert body["value"] == [{"name": "Tasks", "kind": "EntitySet", "url": "Tasks"}]


def test_metadata_is_csdl_a_client_library_reads(odata: GatewayClient) -> None:
    response = odata.http.get("/odata/$metadata")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/xml")
    schema = pyodata.v2.model.MetadataBuilder(response.content).build()
    entity_type = schema.entity_set("Tasks").entity_type
    assert [k.name for k in entity_type.key_proprties] == ["id"]
    shown = {p.name: (p.typ.name, p.nullable) for p in entity_type.proprties()}
    assert shown == PROPERTIES


def test_an_odata_v4_client_reflects_the_model_and_reads_pages_with_basic_auth(
    odata: GatewayClient, table: list[Row]
) -> None:
    """python-odata, as a BI tool does: $metadata, then ``Tasks`` with a filter and an order,
    page after page through nextLink, authenticated by Basic auth with the key as password."""
    service = ODataService(
        f"{odata.url}/odata/",
        reflect_entities=True,
        auth=HTTPBasicAuth("power-bi", KEY),
        extra_headers={"prefer": "odata.maxpagesize=20"},
        quiet_progress=True,
    )
    task = service.entities["Tasks"]
    query = (
        service.query(task)
        .filter(task.vendor != "SUBNOTO")
        .filter(task.totalTokens == None)  # noqa: E711 (the client's query language)
        .order_by(task.createdAt.desc())
    )
    read = [(t.id, t.vendor, t.createdAt) for t in query]
    want = sort_rows(
        [r for r in table if r["vendor"] != "SUBNOTO" and r["totalTokens"] is None],
        [("createdAt", True)],
    )
    assert len(want) > 40  # several pages
    assert read == [(r["id"], r["vendor"], r["createdAt"]) for r in want]


# -- the whole table ---------------------------------------------------------------------


def test_the_whole_table_is_every_sandbox_task_once_with_the_exports_ids(
    odata: GatewayClient, gateway: GatewayClient, expected: list[Row]
) -> None:
    entities = [typed(e) for e in read_all(odata.http, {"$count": "true"}, page_size=50)]
    assert len({e["id"] for e in entities}) == len(entities) == len(expected)
    assert sorted(
        ({k: v for k, v in e.items() if k != "id"} for e in entities), key=row_key
    ) == sorted(expected, key=row_key)
    exported = gateway.http.get("/export/tasks.ndjson")  # the live export, without an index
    export_ids = {
        (r["vendor"], r["agent_id"], r["native_id"]): r["id"]
        for r in map(json.loads, exported.text.splitlines())
    }
    assert {row_key(e): e["id"] for e in entities} == export_ids


def test_count_and_top_zero(odata: GatewayClient, table: list[Row]) -> None:
    body = odata.http.get("/odata/Tasks", params={"$count": "true", "$top": "0"}).json()
    assert body["@odata.count"] == len(table)
    assert body["value"] == [] and "@odata.nextLink" not in body
    count = odata.http.get("/odata/Tasks/$count", params={"$filter": "vendor eq 'ORQ'"})
    assert count.text == str(sum(r["vendor"] == "ORQ" for r in table))


def test_one_task_by_its_key(odata: GatewayClient, table: list[Row]) -> None:
    row = next(r for r in table if r["title"] is not None)
    response = odata.http.get(f"/odata/Tasks('{row['id']}')", params={"$select": "id,title"})
    assert response.status_code == 200
    body = response.json()
    assert body["@odata.context"].endswith("/odata/$metadata#Tasks(id,title)/$entity")
    assert (body["id"], body["title"]) == (row["id"], row["title"])
    missing = odata.http.get("/odata/Tasks('no-such-task')")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "NOT_FOUND"


# -- $filter, $orderby, $top, $skip against the oracle -----------------------------------

COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "gt": operator.gt,
    "ge": operator.ge,
    "lt": operator.lt,
    "le": operator.le,
}
Predicate = Callable[[Row], bool]


def literal(name: str, value: Any) -> str:
    if value is None:
        return "null"
    kind = PROPERTIES[name][0]
    if kind == "Edm.String":
        return "'" + value.replace("'", "''") + "'"
    if kind == "Edm.DateTimeOffset":
        return value.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    return repr(value)


def compared(op: str, name: str, value: Any) -> Predicate:
    """OData's comparison: with null only eq/ne mean anything; a null property is unequal
    to every value and neither greater nor less."""

    def holds(row: Row) -> bool:
        have = row[name]
        if value is None:
            return (have is None) == (op == "eq")
        if have is None:
            return op == "ne"
        return COMPARE[op](have, value)

    return holds


TEXT_TESTS: dict[str, Callable[[str, str], bool]] = {
    "contains": lambda have, part: part in have,
    "startswith": str.startswith,
    "endswith": str.endswith,
}


class Held:
    """The values the table holds, per property (a short repr: hypothesis shows it)."""

    def __init__(self, rows: list[Row]) -> None:
        self.values = {
            name: sorted({r[name] for r in rows if r[name] is not None}) for name in PROPERTIES
        }

    def __repr__(self) -> str:
        return "Held(table)"


@st.composite
def values(draw: st.DrawFn, name: str, rows: Held) -> Any:
    """A value of the property's type: mostly one the table holds, else anything."""
    kind = PROPERTIES[name][0]
    held = rows.values[name]
    if held and draw(st.booleans()):
        return draw(st.sampled_from(held))
    if kind == "Edm.String":
        return draw(st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=6))
    if kind == "Edm.DateTimeOffset":
        base = draw(st.sampled_from(held)) if held else datetime(2026, 1, 1, tzinfo=UTC)
        return base + timedelta(microseconds=draw(st.integers(-(10**10), 10**10)))
    if kind == "Edm.Double":
        return draw(st.floats(-10, 10, allow_nan=False, allow_infinity=False))
    return draw(st.integers(-(10**6), 10**6))


@st.composite
def atoms(draw: st.DrawFn, rows: Held) -> tuple[str, Predicate]:
    name = draw(st.sampled_from(sorted(PROPERTIES)))
    kind = PROPERTIES[name][0]
    forms = ["compare", "null", "in"] + (["text"] if kind == "Edm.String" else [])
    form = draw(st.sampled_from(forms))
    if form == "null":
        op = draw(st.sampled_from(["eq", "ne"]))
        return f"{name} {op} null", compared(op, name, None)
    if form == "in":
        chosen = draw(st.lists(values(name, rows), min_size=2, max_size=4))
        text = f"{name} in ({', '.join(literal(name, v) for v in chosen)})"
        return text, lambda row: row[name] is not None and row[name] in chosen
    value = draw(values(name, rows))
    if form == "text":
        function = draw(st.sampled_from(sorted(TEXT_TESTS)))
        part = value[: draw(st.integers(0, 4))]
        test = TEXT_TESTS[function]
        return (
            f"{function}({name},{literal(name, part)})",
            lambda row: row[name] is not None and test(row[name], part),
        )
    op = draw(st.sampled_from(sorted(COMPARE)))
    if draw(st.booleans()):  # the value first: `5 lt totalTokens`
        flipped = {"gt": "lt", "ge": "le", "lt": "gt", "le": "ge"}.get(op, op)
        return f"{literal(name, value)} {flipped} {name}", compared(op, name, value)
    return f"{name} {op} {literal(name, value)}", compared(op, name, value)


def filters(rows: Held) -> st.SearchStrategy[tuple[str, Predicate]]:
    def combine(children: st.SearchStrategy[tuple[str, Predicate]]) -> Any:
        both = st.tuples(children, children)
        return st.one_of(
            both.map(lambda p: (f"({p[0][0]}) and ({p[1][0]})", _and(p[0][1], p[1][1]))),
            both.map(lambda p: (f"({p[0][0]}) or ({p[1][0]})", _or(p[0][1], p[1][1]))),
            children.map(lambda c: (f"not ({c[0]})", _not(c[1]))),
        )

    return st.recursive(atoms(rows), combine, max_leaves=6)


def _and(a: Predicate, b: Predicate) -> Predicate:
    return lambda row: a(row) and b(row)


def _or(a: Predicate, b: Predicate) -> Predicate:
    return lambda row: a(row) or b(row)


def _not(a: Predicate) -> Predicate:
    return lambda row: not a(row)


def sort_rows(rows: list[Row], keys: list[tuple[str, bool]]) -> list[Row]:
    """OData's order: each key with nulls first ascending and last descending, then ``id``
    ascending unless ordered by already (stable sorts, the last key first)."""
    ordered = sorted(rows, key=lambda r: r["id"])
    for name, descending in reversed(keys):
        ordered.sort(key=lambda r: (r[name] is not None, r[name] or 0), reverse=descending)
    return ordered


@st.composite
def requests_for(
    draw: st.DrawFn, rows: Held
) -> tuple[dict[str, str], Predicate, list[tuple[str, bool]], int | None, int, list[str] | None]:
    params: dict[str, str] = {}
    predicate: Predicate = lambda row: True  # noqa: E731
    if draw(st.booleans()):
        text, predicate = draw(filters(rows))
        params["$filter"] = text
    names = draw(st.lists(st.sampled_from(sorted(PROPERTIES)), unique=True, max_size=3))
    keys = [(name, draw(st.booleans())) for name in names]
    if keys:
        params["$orderby"] = ",".join(f"{n} {'desc' if d else 'asc'}" for n, d in keys)
    top = draw(st.one_of(st.none(), st.integers(0, 120)))
    if top is not None:
        params["$top"] = str(top)
    skip = draw(st.integers(0, 60))
    if skip:
        params["$skip"] = str(skip)
    select = draw(
        st.one_of(st.none(), st.lists(st.sampled_from(sorted(PROPERTIES)), min_size=1, unique=True))
    )
    if select is not None:
        params["$select"] = ",".join(select)
    params["$count"] = "true"
    return params, predicate, keys, top, skip, select


def _project(row: Row, select: list[str] | None) -> Row:
    return row if select is None else {k: v for k, v in row.items() if k in select}


@given(data=st.data())
@settings(EXAMPLES, max_examples=40)
def test_filter_order_top_skip_select_equal_the_oracle(
    odata: GatewayClient, table: list[Row], data: st.DataObject
) -> None:
    params, predicate, keys, top, skip, select = data.draw(requests_for(Held(table)))
    page_size = data.draw(st.integers(25, 250))
    matching = [r for r in table if predicate(r)]
    want = sort_rows(matching, keys)[skip:]
    if top is not None:
        want = want[:top]
    got = [typed(e) for e in read_all(odata.http, params, page_size, count=len(matching))]
    assert got == [_project(r, select) for r in want], params


TWO_VALUED = [  # (filter, the rows it keeps): where SQL's NULL would drop rows OData keeps
    ("title ne 'Translate contract #1005'", lambda r: r["title"] != "Translate contract #1005"),
    (
        "not (totalCost gt 0.001)",
        lambda r: not (r["totalCost"] is not None and r["totalCost"] > 0.001),
    ),
    (
        "not (createdAt lt 2026-11-20T00:00:00Z)",
        lambda r: (
            not (r["createdAt"] is not None and r["createdAt"] < datetime(2026, 11, 20, tzinfo=UTC))
        ),
    ),
    ("not (agentId in ('a', 'b'))", lambda r: r["agentId"] not in ("a", "b")),
    (
        "not contains(title,'contract')",
        lambda r: r["title"] is None or "contract" not in r["title"],
    ),
    (
        "not startswith(summary,'Done')",
        lambda r: r["summary"] is None or not r["summary"].startswith("Done"),
    ),
    ("not endswith(link,'1')", lambda r: r["link"] is None or not r["link"].endswith("1")),
    ("userId eq null or userId ne null", lambda r: True),
    ("not (totalTokens eq 30)", lambda r: r["totalTokens"] != 30),
    ("contains(title,'%') or contains(title,'_')", lambda r: False),  # not wildcards
]


@pytest.mark.parametrize(("text", "keeps"), TWO_VALUED, ids=[t for t, _ in TWO_VALUED])
def test_comparisons_are_two_valued_as_odata_says(
    odata: GatewayClient, table: list[Row], text: str, keeps: Predicate
) -> None:
    got = read_all(odata.http, {"$filter": text, "$select": "id"}, page_size=500)
    assert sorted(e["id"] for e in got) == sorted(r["id"] for r in table if keeps(r))
    assert got or text.startswith("contains(title,'%")


def test_next_link_pages_never_repeat_or_skip_while_the_index_changes(
    odata: GatewayClient, index_url: str, table: list[Row]
) -> None:
    """A task that did not change is read exactly once, even when tasks are added between
    pages: the next page starts after the last row, not at an offset."""
    order = {"$orderby": "title desc,createdAt", "$select": "id,title,createdAt"}
    headers = {"prefer": "odata.maxpagesize=25"}
    response = odata.http.get("/odata/Tasks", params=order, headers=headers)
    seen: list[str] = []
    added = 0
    try:
        while True:
            body = response.json()
            seen.extend(e["id"] for e in body["value"])
            if "@odata.nextLink" not in body:
                break
            asyncio.run(_add_copies(index_url, added))  # new tasks all over the order
            added += 3
            response = odata.http.get(body["@odata.nextLink"], headers=headers)
    finally:
        asyncio.run(_remove_copies(index_url))
    original = {r["id"] for r in table}
    assert [i for i in seen if i in original] == [
        r["id"] for r in sort_rows(table, [("title", True), ("createdAt", False)])
    ]


async def _add_copies(url: str, n: int) -> None:
    index = await TaskIndex.open(url)
    try:
        records = [r async for r in index.stream(ListQuery(), list(Vendor))]
        picked = [records[(n * 7 + k * 41) % len(records)] for k in range(3)]
        copies = [
            replace(r, native_id=f"copy-{n + k}-{r.native_id}", global_id=f"copy-{n + k}")
            for k, r in enumerate(picked)
        ]
        await index.upsert(copies, seen_at=time.time())
    finally:
        await index.close()


async def _remove_copies(url: str) -> None:
    index = await TaskIndex.open(url)
    try:
        async with index.engine.begin() as conn:
            rows = TaskIndex.rows
            await conn.execute(rows.delete().where(rows.c.native_id.startswith("copy-")))
    finally:
        await index.close()


# -- authentication ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [BEARER, {"x-api-key": KEY}, basic("anyone", KEY), basic("", KEY), basic("Zoë", KEY)],
    ids=["bearer", "x-api-key", "basic", "basic-no-user", "basic-utf8-user"],
)
def test_the_key_in_every_form_a_client_sends_it(
    odata: GatewayClient, headers: dict[str, str]
) -> None:
    response = httpx.get(f"{odata.url}/odata/Tasks/$count", headers=headers)
    assert response.status_code == 200
    assert int(response.text) > 0


@pytest.mark.parametrize(
    "headers",
    [
        {},
        basic("user", "wrong"),
        basic(KEY, ""),  # the key as the user name is not the password
        {"authorization": "Basic not-base64!"},
        {"authorization": "Basic " + base64.b64encode(b"no-colon").decode()},
        {"authorization": "Basic " + base64.b64encode(b"\xff:\xfe").decode()},
        {"authorization": f"Bearer {KEY}x"},
    ],
    ids=["none", "wrong", "key-as-user", "bad-base64", "no-colon", "not-utf8", "bearer-wrong"],
)
@pytest.mark.parametrize("path", ["/odata/", "/odata/$metadata", "/odata/Tasks"])
def test_without_the_key_401_with_a_basic_challenge(
    odata: GatewayClient, headers: dict[str, str], path: str
) -> None:
    response = httpx.get(f"{odata.url}{path}", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Basic realm="task-gateway"'
    assert response.json()["error"]["code"] == "UNAUTHENTICATED"
    assert KEY not in response.text


def test_failed_attempts_are_throttled_in_odata_shape(
    make_gateway: GatewayFactory, index_url: str
) -> None:
    gateway = make_gateway(
        index_url=index_url, api_keys=(KEY,), open_access=False, failed_auth_per_minute=2
    )
    for _ in range(2):
        assert gateway.http.get("/odata/Tasks", headers=basic("u", "guess")).status_code == 401
    refused = gateway.http.get("/odata/Tasks", headers=basic("u", KEY))  # even the right key
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.json()["error"]["code"] == "RATE_LIMITED"


def test_the_request_rate_limit_answers_in_odata_shape(
    make_gateway: GatewayFactory, index_url: str
) -> None:
    gateway = make_gateway(index_url=index_url, rate_per_second=0.01, rate_burst=1)
    gateway.http.get("/odata/$metadata")
    refused = gateway.http.get("/odata/$metadata")
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "RATE_LIMITED"
    graphql = gateway.http.post("/graphql", json={"query": "{ __typename }"})
    assert graphql.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"  # its own shape


# -- refusals: clear 400s, never a 5xx ---------------------------------------------------

BAD_REQUESTS = [
    ({"$filter": "nope eq 1"}, "INVALID_FILTER", "unknown property"),
    ({"$filter": "raw eq 'x'"}, "INVALID_FILTER", "unknown property"),  # not a column shown
    ({"$filter": "record eq 'x'"}, "INVALID_FILTER", "unknown property"),
    ({"$filter": "status eq"}, "INVALID_FILTER", "not valid OData"),
    ({"$filter": "title eq 'unterminated"}, "INVALID_FILTER", "not valid OData"),
    ({"$filter": "createdAt gt 'yesterday'"}, "INVALID_FILTER", "Edm.DateTimeOffset"),
    ({"$filter": "totalCost gt 'x'"}, "INVALID_FILTER", "Edm.Double"),
    ({"$filter": "title gt 3"}, "INVALID_FILTER", "Edm.String"),
    ({"$filter": "totalTokens gt 99999999999999999999"}, "INVALID_FILTER", "Edm.Int64"),
    ({"$filter": "totalCost gt 1e999"}, "INVALID_FILTER", "finite"),
    ({"$filter": "totalCost gt null"}, "INVALID_FILTER", "null"),
    ({"$filter": "title eq summary"}, "INVALID_FILTER", "not the property"),
    ({"$filter": "'a' eq 'a'"}, "INVALID_FILTER", "a property"),
    ({"$filter": "status"}, "INVALID_FILTER", "not a condition"),
    ({"$filter": "totalCost add 1 gt 2"}, "INVALID_FILTER", "property"),
    ({"$filter": "matchesPattern(title,'(a+)+$')"}, "INVALID_FILTER", "not supported"),
    ({"$filter": "length(title) gt 2"}, "INVALID_FILTER", "property"),
    ({"$filter": "now() gt createdAt"}, "INVALID_FILTER", "Edm.DateTimeOffset"),
    ({"$filter": "substring(title,1) eq 'a'"}, "INVALID_FILTER", "property"),
    ({"$filter": "tags/any(t: t eq 'a')"}, "INVALID_FILTER", "not"),
    ({"$filter": "contains(totalCost,'1')"}, "INVALID_FILTER", "text property"),
    ({"$filter": "not " * 40 + "true"}, "INVALID_FILTER", "deeper"),
    ({"$filter": "(" * 40 + "not (true)" + ")" * 40}, None, None),  # parentheses: fine
    ({"$filter": "vendor eq 'ORQ' or " * 700 + "true"}, "INVALID_QUERY_OPTION", "longer"),
    ({"$filter": "status in (" + ",".join(["'A'"] * 101) + ")"}, "INVALID_FILTER", "values"),
    ({"$filter": " "}, "INVALID_FILTER", "empty"),
    ({"$filter": "title eq 'a\x00'"}, "INVALID_QUERY_OPTION", "NUL"),
    ({"$orderby": "nope"}, "INVALID_QUERY_OPTION", "unknown property"),
    ({"$orderby": "title sideways"}, "INVALID_QUERY_OPTION", "asc|desc"),
    ({"$orderby": "title,title desc"}, "INVALID_QUERY_OPTION", "twice"),
    ({"$orderby": ",".join(PROPERTIES)}, "INVALID_QUERY_OPTION", "at most"),
    ({"$select": "id,record"}, "INVALID_QUERY_OPTION", "unknown property"),
    ({"$top": "-1"}, "INVALID_QUERY_OPTION", "whole number"),
    ({"$top": "1e3"}, "INVALID_QUERY_OPTION", "whole number"),
    ({"$skip": "99999999999"}, "INVALID_QUERY_OPTION", "whole number"),
    ({"$top": "١٢"}, "INVALID_QUERY_OPTION", "whole number"),  # Arabic-Indic digits
    ({"$count": "yes"}, "INVALID_QUERY_OPTION", "true or false"),
    ({"$format": "xml"}, "INVALID_QUERY_OPTION", "JSON"),
    ({"$expand": "agent"}, "INVALID_QUERY_OPTION", "not supported"),
    ({"$search": "x"}, "INVALID_QUERY_OPTION", "not supported"),
    ({"$apply": "aggregate(totalCost with sum as s)"}, "INVALID_QUERY_OPTION", "not supported"),
    ({"$whatever": "1"}, "INVALID_QUERY_OPTION", "unknown system query option"),
    ({"$skiptoken": "garbage"}, "INVALID_QUERY_OPTION", "skiptoken"),
    (
        {"$skiptoken": base64.urlsafe_b64encode(b'{"o":"id asc","k":[1]}').decode()},
        "INVALID_QUERY_OPTION",
        "skiptoken",
    ),
]


@pytest.mark.parametrize(("params", "code", "words"), BAD_REQUESTS)
def test_bad_query_options_get_a_clear_400(
    odata: GatewayClient, params: dict[str, str], code: str | None, words: str | None
) -> None:
    response = odata.http.get("/odata/Tasks", params=params)
    if code is None:
        assert response.status_code == 200, response.text
        return
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert words is not None and words in error["message"]
    assert "Traceback" not in response.text and "sqlalchemy" not in response.text.lower()


def test_repeated_and_case_folded_options(odata: GatewayClient) -> None:
    twice = odata.http.get("/odata/Tasks?$top=1&$top=2")
    assert twice.status_code == 400 and "more than once" in twice.json()["error"]["message"]
    folded = odata.http.get("/odata/Tasks?$TOP=1&$Select=id")
    assert folded.status_code == 200 and list(folded.json()["value"][0]) == ["id"]
    custom = odata.http.get("/odata/Tasks?$top=1&source=powerbi")  # custom options: ignored
    assert custom.status_code == 200


def test_injection_in_a_string_literal_is_only_a_value(
    odata: GatewayClient, table: list[Row]
) -> None:
    for attempt in (
        "x'; DROP TABLE task_rows; --",
        "' OR 1=1 --",
        "%",
        "_",
        "\\",
    ):
        for form in ("title eq {}", "contains(title,{})", "startswith(title,{})"):
            response = odata.http.get(
                "/odata/Tasks", params={"$filter": form.format(literal("title", attempt))}
            )
            assert response.status_code == 200, response.text
            assert response.json()["value"] == []
    assert odata.http.get("/odata/Tasks/$count").text == str(len(table))


@given(
    name=st.sampled_from(
        ["$filter", "$orderby", "$select", "$top", "$skip", "$skiptoken", "$count"]
    ),
    value=st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=60),
)
@EXAMPLES
def test_any_text_in_any_option_is_answered_200_or_400(
    odata: GatewayClient, name: str, value: str
) -> None:
    response = odata.http.get(
        "/odata/Tasks", params={name: value, "$top": "1"} if name != "$top" else {name: value}
    )
    assert response.status_code in (200, 400), response.text
    body = response.json()
    assert "value" in body if response.status_code == 200 else body["error"]["code"]


@given(
    text=st.recursive(
        st.sampled_from(
            [
                "title eq 'a'",
                "totalCost gt 1",
                "createdAt lt 2026-01-01T00:00:00Z",
                "true",
                "x",
                "1",
                "null",
                "'s'",
                "now()",
            ]
        ),
        lambda inner: st.one_of(
            st.tuples(
                inner, st.sampled_from([" and ", " or ", " eq ", " add ", " in ", ","]), inner
            ).map("".join),
            inner.map(lambda t: f"({t})"),
            inner.map(lambda t: f"not {t}"),
            inner.map(lambda t: f"contains({t})"),
        ),
        max_leaves=12,
    )
)
@EXAMPLES
def test_filter_shaped_noise_is_answered_200_or_400(odata: GatewayClient, text: str) -> None:
    response = odata.http.get("/odata/Tasks", params={"$filter": text, "$top": "1"})
    assert response.status_code in (200, 400), (text, response.text)


def test_only_get_is_served(odata: GatewayClient) -> None:
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        response = odata.http.request(method, "/odata/Tasks", json={})
        assert response.status_code == 405
        assert response.headers["allow"] == "GET, HEAD"
        assert response.json()["error"]["code"] == "METHOD_NOT_ALLOWED"
    unknown = odata.http.get("/odata/Agents")
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "NOT_FOUND"


def test_next_link_is_absolute_and_carries_the_options(odata: GatewayClient) -> None:
    params = {"$filter": "vendor eq 'ORQ'", "$select": "id", "$count": "true", "$top": "30"}
    body = odata.http.get(
        "/odata/Tasks", params=params, headers={"prefer": "odata.maxpagesize=10"}
    ).json()
    link = urlsplit(body["@odata.nextLink"])
    assert f"{link.scheme}://{link.netloc}" == odata.url
    assert link.path == "/odata/Tasks"
    nxt = odata.http.get(body["@odata.nextLink"]).json()  # no preference: the rest of $top
    assert nxt["@odata.count"] == body["@odata.count"]
    assert len(nxt["value"]) == 20 and set(nxt["value"][0]) == {"id"}
    assert "@odata.nextLink" not in nxt


def test_pages_are_capped_without_a_preference(
    make_gateway: GatewayFactory, index_url: str, table: list[Row]
) -> None:
    """The server's own page size applies when the client states none (Power BI); a
    second replica on the same index serves it as soon as it has read the sync state."""
    url = make_gateway(index_url=index_url).url
    with httpx.Client(base_url=url) as client:
        wait_ready(client)
    body = requests.get(f"{url}/odata/Tasks", timeout=30).json()
    assert len(body["value"]) == len(table)  # under the cap of 1,000: one page
    assert "@odata.nextLink" not in body
