"""Parquet export for BI tools: ``GET /export/tasks.parquet``.

The CSV export's records, filters and errors (``export.export_records``) and its columns
(``export.typed_row``), typed: times as UTC timestamps (microseconds), costs as doubles, token
counts as 64-bit integers, every value nullable where the CSV leaves a cell empty; plus
``raw``, the vendor's record as it arrived, as a JSON string. Any Parquet reader reads it
as is (the tests read it with DuckDB and pandas).

Streamed in row groups, so memory stays constant however many tasks there are: records are
gathered ``ROW_GROUP_ROWS`` at a time, each group is encoded into a sink that is emptied as
soon as the group is written, and its bytes go out before the next group is read. Encoding
runs in a worker thread, so the event loop serves other requests meanwhile. A vendor failing
mid-stream ends the response before the file's footer: a reader refuses the truncated file
rather than take a partial table for a whole one.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from gateway.core.columns import COLUMNS, typed_row
from gateway.core.records import TaskRecord
from gateway.core.service import TaskService
from gateway.web.export import attachment, export_records

TIMESTAMP = pa.timestamp("us", tz="UTC")
TYPES: dict[str, pa.DataType] = {
    "created_at": TIMESTAMP,
    "updated_at": TIMESTAMP,
    "total_cost": pa.float64(),
    "total_tokens": pa.int64(),
}
"""Columns that are not text; every other column is a string."""
REQUIRED = frozenset({"id", "vendor", "native_id", "status"})
"""Columns every task has; the others may be null."""
SCHEMA = pa.schema(
    [
        pa.field(name, TYPES.get(name, pa.string()), nullable=name not in REQUIRED)
        for name in (*COLUMNS, "raw")
    ]
)
ROW_GROUP_ROWS = 2_000
"""Rows per row group: what the gateway holds at once. Encoding a group peaks at about three
times its raw records (~10 MiB for 2,000 tasks of 1.5 KB; ``bench/README.md``)."""
COMPRESSION = "zstd"
MEDIA_TYPE = "application/vnd.apache.parquet"


class Drain:
    """A write-only file that hands out what was written since the last ``take``. It counts
    every byte ever written, because the Parquet writer records offsets from ``tell``."""

    closed = False

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.position = 0

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self.parts.append(chunk)
        self.position += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self.position

    def flush(self) -> None:
        """Nothing is buffered here."""

    def writable(self) -> bool:
        return True

    def take(self) -> bytes:
        data = b"".join(self.parts)
        self.parts.clear()
        return data


def parquet_row(record: TaskRecord) -> tuple[Any, ...]:
    return (*typed_row(record), orjson.dumps(record.raw).decode())


def row_group(rows: Sequence[tuple[Any, ...]]) -> pa.RecordBatch:
    columns = zip(*rows, strict=True)
    arrays = [
        pa.array(column, type=field.type) for column, field in zip(columns, SCHEMA, strict=True)
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=SCHEMA)


class GroupWriter:
    """A Parquet file written one row group at a time into a ``Drain``."""

    def __init__(self) -> None:
        self.sink = Drain()
        self.writer = pq.ParquetWriter(
            pa.PythonFile(self.sink, mode="w"), SCHEMA, compression=COMPRESSION
        )

    def group(self, rows: Sequence[tuple[Any, ...]]) -> bytes:
        """The bytes of one more row group (the file's header before the first)."""
        self.writer.write_batch(row_group(rows), row_group_size=len(rows))
        return self.sink.take()

    def close(self) -> bytes:
        """The file's footer: only once every group is written."""
        self.writer.close()
        return self.sink.take()


ENCODER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="parquet")
"""Encodes the row groups of every export, one group at a time, off the event loop.
Building Arrow arrays from Python objects holds the GIL, so more threads would not encode
faster; one keeps the encodings in flight, and their memory, to one group."""


async def encoded(work: Callable[..., bytes], *args: Any) -> bytes:
    return await asyncio.get_running_loop().run_in_executor(ENCODER, work, *args)


async def parquet_body(records: AsyncIterator[TaskRecord]) -> AsyncIterator[bytes]:
    file = GroupWriter()
    rows: list[tuple[Any, ...]] = []
    async for record in records:
        rows.append(parquet_row(record))
        if len(rows) >= ROW_GROUP_ROWS:
            yield await encoded(file.group, rows)
            rows = []
    if rows:
        yield await encoded(file.group, rows)
    yield await encoded(file.close)


def parquet_route(service: TaskService, forward_credentials: bool = False) -> Route:
    """``/export/tasks.parquet``; with ``forward_credentials`` it reads the vendors with the
    caller's ``X-Vendor-Key-*`` keys, as the other exports do."""

    async def export(request: Request) -> Response:
        records = await export_records(request, service, forward_credentials)
        if isinstance(records, Response):
            return records
        return StreamingResponse(
            parquet_body(records), media_type=MEDIA_TYPE, headers=attachment("parquet")
        )

    return Route("/export/tasks.parquet", export, methods=["GET"])
