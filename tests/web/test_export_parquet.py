"""The Parquet export (issue 19, part 4): ``/export/tasks.parquet`` read as BI tools read it,
with DuckDB and with pandas, over real HTTP against the sandbox.

Every row of the file is compared, column by column, with the sandbox's own records: the
expected values are computed here from the vendor JSON the sandbox serves (the documented
field behind each column, the shared status of ``tests/oracle/model.py``), never by gateway
code. Hypothesis draws the records (nulls, ties, unknown statuses, empty vendors) and the
filters and order, so null times stay null, every filter of the CSV export applies, and the
order is the export's rule (nulls last both ways, ties in any order).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from gateway.cli import demo_settings
from gateway.core.records import Vendor
from gateway.sandbox import Sandbox, SandboxOptions
from gateway.serving import ServerThread
from gateway.web.export_parquet import ROW_GROUP_ROWS
from tests.conftest import GatewayClient, GatewayFactory
from tests.oracle.model import (
    Dataset,
    Query,
    datasets,
    expected_task,
    orq_state_status,
    queries,
)
from tests.web.test_export import COLUMNS as CSV_COLUMNS

KEY = "parquet-client-key-0123456789"
WITH_KEY = {"authorization": f"Bearer {KEY}"}
PATH = "/export/tasks.parquet"
COLUMNS = [*CSV_COLUMNS, "raw"]
TYPES = {  # as DuckDB names them
    "created_at": "TIMESTAMP WITH TIME ZONE",
    "updated_at": "TIMESTAMP WITH TIME ZONE",
    "total_cost": "DOUBLE",
    "total_tokens": "BIGINT",
}


# -- the oracle: each column from the vendor's record -------------------------------------


def expected_row(vendor: Vendor, record: dict[str, Any]) -> dict[str, Any]:
    """The row the export owes for one vendor record (the id, opaque, is checked apart)."""
    task = expected_task(vendor, record)
    row: dict[str, Any] = dict.fromkeys(COLUMNS[1:])
    row.update(
        vendor=vendor.name,
        native_id=task.native_id,
        agent_id=task.agent_id,
        status=task.status,
        created_at=task.created_at,
        updated_at=task.updated_at,
        raw=record,
    )
    if vendor is Vendor.AGENTEX:  # a tracker: its reason is the summary; no title
        row.update(vendor_status=record["status"], summary=record["status_reason"])
    elif vendor is Vendor.XPANDER:
        row.update(
            vendor_status=record["status"],
            title=record["title"],
            summary=record["result"],
            user_id=record["user_id"],
            parent_task_id=record["parent_task_id"],
            triggering_agent_id=record["triggering_agent_id"],
        )
    elif vendor is Vendor.ORQ:
        metrics = record.get("metrics") or {}
        row.update(
            vendor_status=orq_state_status(record["state"]),
            title=record["name"],
            summary=record["state"].get("error") or None,
            user_id=record["created_by_id"],
            total_cost=metrics.get("total_cost"),
            total_tokens=metrics.get("total_tokens"),
        )
    else:
        report = record["latestReport"]
        row.update(
            vendor_status=report["state"],
            summary=report["summary"],
            user_id=report["author"]["uuid"],
            link=report.get("link"),
        )
    return row


def shown(row: dict[str, Any]) -> dict[str, Any]:
    """A row read from the file, comparable with ``expected_row``."""
    return {**{k: v for k, v in row.items() if k != "id"}, "raw": json.loads(row["raw"])}


def sandbox_records(sandbox: Sandbox) -> Dataset:
    """Every vendor's records as its simulator holds them."""
    data: Dataset = {}
    for vendor in Vendor:
        store = sandbox.store(vendor)
        if vendor is Vendor.AGENTEX:
            data[vendor] = list(store.values())
        elif vendor is Vendor.SUBNOTO:
            data[vendor] = list(store)
        else:
            data[vendor] = [task for tasks in store.values() for task in tasks]
    return data


# -- reading the file as DuckDB and pandas do ----------------------------------------------


def read_duckdb(path: Path) -> tuple[list[dict[str, Any]], dict[str, str]]:
    with duckdb.connect() as db:
        db.execute("SET TimeZone = 'UTC'")
        relation = db.sql(f"SELECT * FROM read_parquet('{path}')")
        names, types = relation.columns, [str(t) for t in relation.types]
        rows = [dict(zip(names, values, strict=True)) for values in relation.fetchall()]
    return rows, dict(zip(names, types, strict=True))


def read_pandas(path: Path) -> list[dict[str, Any]]:
    frame = pd.read_parquet(path)
    assert list(frame.columns) == COLUMNS
    for column in ("created_at", "updated_at"):
        assert str(frame[column].dtype) == "datetime64[us, UTC]"
    assert str(frame["total_cost"].dtype) == "float64"
    return [{k: _plain(v) for k, v in row.items()} for row in frame.to_dict("records")]


def _plain(value: Any) -> Any:
    """pandas' missing values as None, its timestamps as datetimes, integral floats (a
    nullable integer column) as ints."""
    if value is None or value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    return value


def download(gateway: GatewayClient, path: Path, **params: str) -> Path:
    response = gateway.http.get(PATH, params=params, headers=WITH_KEY)
    assert response.status_code == 200, response.text[:300]
    assert response.headers["content-type"] == "application/vnd.apache.parquet"
    assert "tasks.parquet" in response.headers["content-disposition"]
    path.write_bytes(response.content)
    return path


def check_file(path: Path, expected: list[dict[str, Any]], query: Query | None = None) -> None:
    """DuckDB and pandas both read exactly the expected rows, typed, in the export's order."""
    rows, types = read_duckdb(path)
    assert list(types) == COLUMNS
    for column, duck_type in types.items():
        assert duck_type == TYPES.get(column, "VARCHAR"), column
    frame_rows = read_pandas(path)
    assert len(frame_rows) == len(rows)
    for from_duckdb, from_pandas in zip(rows, frame_rows, strict=True):
        assert shown(from_duckdb) == shown(from_pandas)
    assert len({row["id"] for row in rows}) == len(rows) and all(row["id"] for row in rows)
    key = lambda row: (row["vendor"], row["agent_id"] or "", row["native_id"])  # noqa: E731
    assert sorted(map(shown, rows), key=key) == sorted(expected, key=key)
    if query is not None:
        sort = [query.sort_key(expected_task(Vendor[r["vendor"]], shown(r)["raw"])) for r in rows]
        assert sort == sorted(sort), "not in the export's order (nulls last, both ways)"


# -- fixtures ---------------------------------------------------------------------------------


def served(
    make_gateway: GatewayFactory, options: SandboxOptions
) -> Iterator[tuple[Sandbox, GatewayClient]]:
    """A sandbox of its own, behind a gateway that needs ``KEY``."""
    sandbox = Sandbox(options)
    with ServerThread(sandbox.app) as server:
        settings = demo_settings(server.url, sandbox)
        gateway = make_gateway(
            vendors=settings.vendors, open_access=False, api_keys=(KEY,), failed_auth_per_minute=0
        )
        yield sandbox, gateway


@pytest.fixture(scope="module")
def loaded(make_gateway: GatewayFactory) -> Iterator[tuple[Sandbox, GatewayClient]]:
    """A sandbox that serves exactly the records a test loads."""
    yield from served(make_gateway, SandboxOptions(size=0, seed=41))


@pytest.fixture(scope="module")
def generated(make_gateway: GatewayFactory) -> Iterator[tuple[Sandbox, GatewayClient]]:
    """The sandbox's own generated data (costs, links, sub-tasks, nulls of every kind)."""
    yield from served(make_gateway, SandboxOptions(size=60, seed=43))


def export_params(query: Query) -> dict[str, str]:
    params = {"orderBy": query.field, "direction": query.direction}
    for name, values in (
        ("vendors", query.vendors),
        ("statuses", query.statuses),
        ("agentIds", query.agent_ids),
    ):
        if values is not None:
            params[name] = ",".join(values)
    for name, moment in (
        ("updatedAfter", query.updated_after),
        ("updatedBefore", query.updated_before),
    ):
        if moment is not None:
            params[name] = moment.isoformat()
    return params


AGENTS = {v: Sandbox(SandboxOptions(size=0, seed=41)).agents(v) for v in Vendor}


# -- tests ----------------------------------------------------------------------------------


def test_every_generated_task_is_read_back_by_duckdb_and_pandas(
    generated: tuple[Sandbox, GatewayClient], tmp_path: Path
) -> None:
    sandbox, gateway = generated
    data = sandbox_records(sandbox)
    expected = [expected_row(v, r) for v, records in data.items() for r in records]
    path = download(gateway, tmp_path / "tasks.parquet")
    check_file(path, expected)
    # Null times stay null (Agentex's missing updates, Subnoto's creation), and known times
    # come back as the UTC instants the vendors gave.
    rows, _ = read_duckdb(path)
    assert any(r["updated_at"] is None for r in rows if r["vendor"] == "AGENTEX")
    assert all(r["created_at"] is None for r in rows if r["vendor"] == "SUBNOTO")
    assert all(r["created_at"].utcoffset() == UTC.utcoffset(None) for r in rows if r["created_at"])
    with duckdb.connect() as db:  # typed columns work as such in SQL
        total = db.execute(
            "SELECT sum(total_cost), count(*) FILTER (WHERE updated_at IS NULL) "
            f"FROM read_parquet('{path}')"
        ).fetchone()
    assert total is not None
    assert total[0] == pytest.approx(
        sum(r["total_cost"] for r in expected if r["total_cost"] is not None)
    )
    assert total[1] == sum(r["updated_at"] is None for r in expected)


@settings(
    max_examples=30,
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate, Phase.shrink],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    data=datasets(AGENTS, max_size=6),
    query=queries(sorted({a for v in AGENTS.values() for a in v})),
)
def test_filters_order_and_nulls_match_the_records(
    loaded: tuple[Sandbox, GatewayClient], tmp_path: Path, data: Dataset, query: Query
) -> None:
    sandbox, gateway = loaded
    sandbox.load(data)
    path = download(gateway, tmp_path / "tasks.parquet", **export_params(query))
    expected = [
        expected_row(vendor, record)
        for vendor, records in data.items()
        for record in records
        if query.matches(expected_task(vendor, record))
    ]
    check_file(path, expected, query)


def test_an_empty_export_is_a_valid_file_with_the_columns(
    loaded: tuple[Sandbox, GatewayClient], tmp_path: Path
) -> None:
    sandbox, gateway = loaded
    sandbox.load({vendor: [] for vendor in Vendor})
    path = download(gateway, tmp_path / "empty.parquet")
    assert pq.read_metadata(path).num_rows == 0
    check_file(path, [])


REFUSED = [{}, {"authorization": "Bearer wrong"}, {"x-api-key": ""}, {"authorization": KEY}]


@pytest.mark.parametrize("headers", REFUSED)
def test_without_a_valid_key_nothing_is_exported_or_asked(
    generated: tuple[Sandbox, GatewayClient], headers: dict[str, str]
) -> None:
    sandbox, gateway = generated
    sandbox.reset_counters()
    for path in (PATH, PATH.upper(), f"{PATH}?vendors=ORQ", "/export/tasks.parquet/"):
        response = gateway.http.get(path, headers=headers)
        assert response.status_code in (401, 404), (path, response.status_code)
        assert b"PAR1" not in response.content
    assert sum(sum(sandbox.counters(v).values()) for v in Vendor) == 0


@st.composite
def bad_parameters(draw: st.DrawFn) -> dict[str, str]:
    name = draw(st.sampled_from(["statuses", "vendors", "orderBy", "direction", "updatedAfter"]))
    value = draw(
        st.sampled_from(
            ["NOPE", "2026-01-01T00:00:00", "9999-12-31T23:59:59-23:59", "x" * 300, "%00"]
        )
    )
    return {name: value}


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(params=bad_parameters())
def test_bad_parameters_are_a_400_as_for_the_csv(
    generated: tuple[Sandbox, GatewayClient], params: dict[str, str]
) -> None:
    _, gateway = generated
    parquet = gateway.http.get(PATH, params=params, headers=WITH_KEY)
    csv = gateway.http.get("/export/tasks.csv", params=params, headers=WITH_KEY)
    assert parquet.status_code == csv.status_code
    if csv.status_code == 400:
        assert parquet.json() == csv.json()
        assert parquet.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


def test_a_vendor_failing_before_the_first_row_is_a_502(
    generated: tuple[Sandbox, GatewayClient],
) -> None:
    sandbox, gateway = generated
    sandbox.knobs(Vendor.SUBNOTO).error_rate = 1.0
    try:
        response = gateway.http.get(PATH, params={"vendors": "SUBNOTO"}, headers=WITH_KEY)
    finally:
        sandbox.reset_knobs()
    assert response.status_code == 502
    assert response.json()["errors"][0]["extensions"]["code"] == "UPSTREAM_UNAVAILABLE"


def test_a_large_export_comes_in_several_row_groups(
    loaded: tuple[Sandbox, GatewayClient], tmp_path: Path
) -> None:
    """Streamed a row group at a time: more rows than one group holds make several, and the
    file reads back whole."""
    sandbox, gateway = loaded
    big = Sandbox(SandboxOptions(size=ROW_GROUP_ROWS // 4 + 10, seed=41))  # 2 groups
    data = sandbox_records(big)
    sandbox.load(data)
    path = download(gateway, tmp_path / "big.parquet")
    total = sum(len(records) for records in data.values())
    metadata = pq.read_metadata(path)
    assert metadata.num_rows == total and metadata.num_row_groups == math.ceil(
        total / ROW_GROUP_ROWS
    )
    expected = [expected_row(v, r) for v, records in data.items() for r in records]
    check_file(path, expected)


def test_times_are_utc_instants(generated: tuple[Sandbox, GatewayClient], tmp_path: Path) -> None:
    _, gateway = generated
    path = download(gateway, tmp_path / "t.parquet", vendors="ORQ")
    schema = pq.read_schema(path)
    assert str(schema.field("created_at").type) == "timestamp[us, tz=UTC]"
    rows, _ = read_duckdb(path)
    assert rows and all(isinstance(r["created_at"], datetime) for r in rows)


def test_a_vendor_failing_mid_stream_leaves_no_readable_file(
    loaded: tuple[Sandbox, GatewayClient],
) -> None:
    """The response is cut before the footer: a reader refuses what arrived, rather than
    take a partial table for a whole one."""
    sandbox, gateway = loaded
    orq = sandbox_records(Sandbox(SandboxOptions(size=600, seed=41)))[Vendor.ORQ]
    sandbox.load({Vendor.ORQ: orq})  # several pages per agent: later ones come after the start
    body = bytearray()
    try:
        with httpx.stream(
            "GET", gateway.url + PATH, params={"vendors": "ORQ"}, headers=WITH_KEY, timeout=60
        ) as response:
            assert response.status_code == 200
            sandbox.knobs(Vendor.ORQ).error_rate = 1.0
            with pytest.raises(httpx.RemoteProtocolError):
                for chunk in response.iter_bytes():
                    body += chunk
    finally:
        sandbox.reset_knobs()
    with pytest.raises(pa.ArrowInvalid):
        pq.read_table(pa.BufferReader(bytes(body)))
