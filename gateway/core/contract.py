"""The connector contract: what the machinery needs from a vendor, in the machinery's terms.

Core depends on this module and never on ``gateway.vendors``: the connectors implement
these shapes (``gateway.vendors.base.Connector`` is their shared base), core reads them.
Optional abilities a vendor may have are small protocols here, checked with ``isinstance``,
so core asks "can this connector write trackers?" rather than "is this Agentex?".
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Protocol, runtime_checkable

import orjson

from gateway.core.errors import InvalidCursorError
from gateway.core.records import Order, TaskRecord, TaskStatus, TrackerRecord, Vendor

PageToken = int | str | None
"""Where a page starts: a page number, an opaque vendor cursor, or None for the first."""


FILTER_FIELDS = (
    "statuses",
    "agent_ids",
    "user_id",
    "parent_task_id",
    "triggering_agent_id",
    "updated_after",
    "updated_before",
    "native_id",
)


@dataclass(frozen=True, slots=True)
class ListQuery:
    """A task listing in shared terms. Connectors push down what their vendor supports;
    the merge re-checks every condition on the normalized records, so push-down is only
    an optimization and can never change an answer."""

    statuses: frozenset[TaskStatus] | None = None
    agent_ids: frozenset[str] | None = None
    user_id: str | None = None
    parent_task_id: str | None = None
    triggering_agent_id: str | None = None
    updated_after: datetime | None = None
    updated_before: datetime | None = None
    native_id: str | None = None
    order: Order = field(default_factory=Order)

    def canonical(self) -> str:
        """The query as text that is the same in every process and whatever order its sets
        were given in (a frozenset's ``repr`` follows per-process string hashing), so a cursor
        fingerprinted from it holds on every replica and on the next page."""
        parts: dict[str, object] = {}
        for name in (f.name for f in fields(self)):
            value = getattr(self, name)
            if isinstance(value, frozenset):
                value = sorted(str(getattr(item, "value", item)) for item in value)
            parts[name] = value
        return orjson.dumps(parts, option=orjson.OPT_SORT_KEYS).decode()

    def conditions(self) -> frozenset[str]:
        """The names of the filter fields this query sets."""
        return frozenset(name for name in FILTER_FIELDS if getattr(self, name) is not None)

    def matches(self, record: TaskRecord) -> bool:
        if self.statuses is not None and record.status not in self.statuses:
            return False
        if self.agent_ids is not None and record.agent_id not in self.agent_ids:
            return False
        if self.user_id is not None and record.user_id != self.user_id:
            return False
        if self.parent_task_id is not None and record.parent_native_id != self.parent_task_id:
            return False
        if (
            self.triggering_agent_id is not None
            and record.triggering_agent_id != self.triggering_agent_id
        ):
            return False
        if self.updated_after is not None or self.updated_before is not None:
            # A time filter never matches a task whose update time is unknown.
            updated = record.updated_at
            if updated is None:
                return False
            if self.updated_after is not None and updated < self.updated_after:
                return False
            if self.updated_before is not None and updated >= self.updated_before:
                return False
        return self.native_id is None or record.native_id == self.native_id

    @property
    def has_time_filter(self) -> bool:
        return self.updated_after is not None or self.updated_before is not None


@dataclass(frozen=True, slots=True)
class Source:
    """One upstream listing (a vendor, maybe one agent, pushed-down parameters).

    ``ordered`` is True when the vendor returns this listing in the query's order, so the
    merge can stream it page by page; otherwise the merge reads it whole and sorts it.
    ``params`` is everything that identifies the listing; it is part of the cache key.
    ``nulls_first``: the vendor lists tasks without the sort time *before* the others in
    this order (Agentex ``desc``: Postgres' default), the opposite of the gateway's rule
    (missing times last); the merge then reads the listing as two parts.
    """

    vendor: Vendor
    path: str
    params: tuple[tuple[str, str], ...]
    ordered: bool
    nulls_first: bool = False

    @property
    def key(self) -> str:
        query = "&".join(f"{k}={v}" for k, v in self.params)
        return f"{self.vendor.value}:{self.path}?{query}"


@dataclass(frozen=True, slots=True)
class SourcePage:
    """One normalized upstream page; ``next_token`` None means it was the last."""

    records: tuple[TaskRecord, ...]
    next_token: PageToken
    total: int | None = None
    skipped: int = 0
    """Items the connector could not normalize (reported, never fatal)."""


@dataclass(frozen=True, slots=True)
class PageWindows:
    """How an offset-paged listing (``page`` number and ``limit``) can be re-read.

    Rows tied on every column the vendor sorts by (``tie_key``) may come back in another
    order on each request, so a tie group that straddles a page boundary can lose or repeat
    a row between two page reads. The merge then reads the whole group again in one
    response: a page of ``limit`` rows (at most ``max_limit``, None: no maximum) that
    covers it, asked for with the token ``window_token(page, limit)``.
    """

    page_size: int
    max_limit: int | None
    tie_key: Callable[[TaskRecord], Hashable]


def window_token(page: int, limit: int) -> str:
    """The page token of page ``page`` read with ``limit`` rows a page."""
    return f"{page}x{limit}"


def offset_page(token: PageToken, page_size: int) -> tuple[int, int]:
    """``(page, limit)`` of an offset-paged token: None (page 1), a page number, or a
    ``window_token``. A token from a forged cursor is INVALID_CURSOR, never a crash."""
    if token is None:
        return 1, page_size
    if isinstance(token, int) and not isinstance(token, bool) and token >= 1:
        return token, page_size
    if isinstance(token, str):
        page, _, limit = token.partition("x")
        if page.isdigit() and limit.isdigit() and int(page) >= 1 and int(limit) >= 1:
            return int(page), int(limit)
    raise InvalidCursorError("the cursor is malformed")


@dataclass(frozen=True, slots=True)
class Credentials:
    """A vendor credential. ``repr`` never shows the secret."""

    secret: str
    header: str = "Authorization"
    scheme: str | None = "Bearer"

    def headers(self) -> dict[str, str]:
        value = f"{self.scheme} {self.secret}" if self.scheme else self.secret
        return {self.header: value}

    def __repr__(self) -> str:
        return f"Credentials(header={self.header!r}, secret=***)"


@dataclass(frozen=True, slots=True)
class VendorSettings:
    """What a connector needs from configuration (see ``gateway.config``)."""

    vendor: Vendor
    base_url: str
    credentials: Credentials | None = None
    agents: tuple[str, ...] = ()
    extra_status_map: Mapping[str, TaskStatus] = field(default_factory=dict)


class VendorConnector(Protocol):
    """What core calls on a connector (``gateway.vendors.base.Connector`` implements it)."""

    @property
    def vendor(self) -> Vendor: ...

    @property
    def page_size(self) -> int:
        """Items per upstream page: fixed, so cached pages serve every ``first``."""
        ...

    @property
    def exact_filters(self) -> frozenset[str]:
        """``ListQuery`` fields the vendor applies itself, exactly (its total is the count)."""
        ...

    @property
    def settings(self) -> VendorSettings: ...

    def sources(self, query: ListQuery) -> list[Source]: ...

    def windows(self, source: Source) -> PageWindows | None: ...

    async def fetch_page(
        self, source: Source, token: PageToken, credentials: Credentials | None = None
    ) -> SourcePage: ...


@runtime_checkable
class TrackerWriter(Protocol):
    """A vendor whose tasks carry a tracker the gateway can read by id and write."""

    async def get_tracker(
        self, agent_id: str, task_id: str, credentials: Credentials | None = None
    ) -> TrackerRecord | None:
        """The current, uncached tracker of one task; None if there is none."""
        ...

    async def update_tracker(
        self,
        tracker_id: str,
        *,
        status: str | None,
        status_reason: str | None,
        last_processed_event_id: str | None,
        credentials: Credentials | None = None,
    ) -> TrackerRecord:
        """Write a tracker and return it as the vendor now holds it."""
        ...


@runtime_checkable
class SubtaskLister(Protocol):
    """A vendor whose tasks can have sub-tasks (``TaskRecord.parent_native_id``)."""

    def subtasks_query(self, parent_ids: Sequence[str]) -> ListQuery:
        """The listing that holds the sub-tasks of ``parent_ids`` (native ids), to be read
        whole and grouped by ``parent_native_id``."""
        ...
