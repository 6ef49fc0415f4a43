"""What the caches write: plain, typed, versioned data, never serialized Python objects.

A shared cache (Redis) is a trust boundary: whoever can write to it must not be able to
run code in the gateway. So every value is MessagePack of an explicit ``msgspec.Struct``
whose first element is a tag naming its kind and format version. Decoding builds only the
types declared here (strings, numbers, times, enums, and the vendor's raw JSON as plain
dicts and lists); a value that is not exactly that (garbage, a planted Python object
stream, an older format) fails to decode, and the caller treats it as a miss.

``FORMAT`` is part of every key (``KEY_PREFIX``), so entries of an older format are not
even looked up; the tags catch a value written under the wrong key or kind. Change a
struct below incompatibly: bump ``FORMAT``.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

import msgspec

from gateway.core.contract import SourcePage
from gateway.core.records import TaskMetrics, TaskRecord, TaskStatus, TrackerRecord, Vendor

FORMAT = 2
"""Version 1 stored Python object streams; its keys (``tg:v1:…``) are never read again."""
KEY_PREFIX = f"tg:v{FORMAT}"

T = TypeVar("T")
R = TypeVar("R")
W = TypeVar("W", bound=msgspec.Struct)

DecodeError = (msgspec.DecodeError, msgspec.ValidationError)
"""What a value that is not one of ours raises while decoding (caught by the store)."""


# -- what a cache entry holds, in process ---------------------------------------------------
@dataclass(frozen=True, slots=True)
class CachedPage:
    """A vendor page and when it was fetched; it is fresh until ``expires_at``."""

    page: SourcePage
    fetched_at: float
    expires_at: float


@dataclass(frozen=True, slots=True)
class StoredWrite:
    """The answer of an idempotent write, and a digest of the request that produced it."""

    request: str
    tracker: TrackerRecord


# -- the wire format ------------------------------------------------------------------------
class MetricsV2(msgspec.Struct, array_like=True, frozen=True, forbid_unknown_fields=True):
    input_cost: float | None
    output_cost: float | None
    total_cost: float | None
    prompt_tokens: int | None
    completion_tokens: int | None
    total_tokens: int | None
    execution_time_seconds: float | None


class TrackerV2(msgspec.Struct, array_like=True, frozen=True, forbid_unknown_fields=True):
    native_id: str
    agent_id: str
    task_id: str
    status: TaskStatus
    vendor_status: str | None
    status_reason: str | None
    last_processed_event_id: str | None
    created_at: datetime
    updated_at: datetime | None
    global_id: str


class TaskV2(msgspec.Struct, array_like=True, frozen=True, forbid_unknown_fields=True):
    vendor: Vendor
    native_id: str
    global_id: str
    agent_id: str | None
    status: TaskStatus
    vendor_status: str | None
    title: str | None
    summary: str | None
    created_at: datetime | None
    updated_at: datetime | None
    user_id: str | None
    parent_native_id: str | None
    triggering_agent_id: str | None
    link: str | None
    metrics: MetricsV2 | None
    tracker: TrackerV2 | None
    raw: dict[str, Any]
    """The vendor's JSON object as it arrived: plain JSON data."""


class PageV2(
    msgspec.Struct,
    array_like=True,
    frozen=True,
    forbid_unknown_fields=True,
    tag="page",
    tag_field="kind",
):
    records: list[TaskV2]
    next_token: int | str | None
    total: int | None
    skipped: int
    fetched_at: float
    expires_at: float


class DocumentV2(
    msgspec.Struct,
    array_like=True,
    frozen=True,
    forbid_unknown_fields=True,
    tag="apq",
    tag_field="kind",
):
    query: str


class WriteV2(
    msgspec.Struct,
    array_like=True,
    frozen=True,
    forbid_unknown_fields=True,
    tag="idem",
    tag_field="kind",
):
    request: str
    tracker: TrackerV2


# -- records <-> wire ----------------------------------------------------------------------
class _Shape(Generic[W, R]):
    """A record kind and its wire struct, whose fields are the record's, in the same order
    (``tests/core/test_cache.py`` checks it): converted as tuples, in C, with the nested
    records given already converted. Conversion is the cost of every page a cache writes."""

    def __init__(self, wire: type[W], kind: type[R]) -> None:
        self.wire = wire
        self.kind = kind
        self.read = operator.attrgetter(*wire.__struct_fields__)
        self.index = {name: i for i, name in enumerate(wire.__struct_fields__)}

    def out(self, record: R, **converted: object) -> W:
        values = list(self.read(record))
        for name, value in converted.items():
            values[self.index[name]] = value
        return self.wire(*values)

    def into(self, wire: W, **converted: object) -> R:
        values = list(msgspec.structs.astuple(wire))
        for name, value in converted.items():
            values[self.index[name]] = value
        return self.kind(*values)


METRICS = _Shape(MetricsV2, TaskMetrics)
TRACKER = _Shape(TrackerV2, TrackerRecord)
TASK = _Shape(TaskV2, TaskRecord)


def _task_out(r: TaskRecord) -> TaskV2:
    if r.metrics is None and r.tracker is None:
        return TASK.out(r)
    return TASK.out(
        r,
        metrics=None if r.metrics is None else METRICS.out(r.metrics),
        tracker=None if r.tracker is None else TRACKER.out(r.tracker),
    )


def _task_in(r: TaskV2) -> TaskRecord:
    if r.metrics is None and r.tracker is None:
        return TASK.into(r)
    return TASK.into(
        r,
        metrics=None if r.metrics is None else METRICS.into(r.metrics),
        tracker=None if r.tracker is None else TRACKER.into(r.tracker),
    )


def _page_out(entry: CachedPage) -> PageV2:
    page = entry.page
    records = [_task_out(r) for r in page.records]
    return PageV2(
        records, page.next_token, page.total, page.skipped, entry.fetched_at, entry.expires_at
    )


def _page_in(wire: PageV2) -> CachedPage:
    page = SourcePage(
        records=tuple(_task_in(r) for r in wire.records),
        next_token=wire.next_token,
        total=wire.total,
        skipped=wire.skipped,
    )
    return CachedPage(page, wire.fetched_at, wire.expires_at)


class Codec(Generic[T, W]):
    """One kind of cache value: ``T`` in process, the struct ``W`` on the wire."""

    def __init__(self, wire: type[W], out: Callable[[T], W], into: Callable[[W], T]) -> None:
        self.wire = wire
        self._out = out
        self._into = into
        self._encoder = msgspec.msgpack.Encoder()
        self._decoder = msgspec.msgpack.Decoder(wire)

    def encode(self, value: T) -> bytes:
        return self._encoder.encode(self._out(value))

    def decode(self, data: bytes) -> T:
        """The value, or ``DecodeError`` for anything that is not exactly this kind."""
        return self._into(self._decoder.decode(data))


PAGE: Codec[CachedPage, PageV2] = Codec(PageV2, _page_out, _page_in)
RECORD: Codec[TaskRecord, TaskV2] = Codec(TaskV2, _task_out, _task_in)
"""One task record, exactly (the task index stores it beside its typed columns)."""
DOCUMENT: Codec[str, DocumentV2] = Codec(DocumentV2, DocumentV2, lambda d: d.query)
WRITE: Codec[StoredWrite, WriteV2] = Codec(
    WriteV2,
    lambda w: WriteV2(w.request, TRACKER.out(w.tracker)),
    lambda w: StoredWrite(w.request, TRACKER.into(w.tracker)),
)
