"""The connector interface: everything the gateway needs from one vendor.

A connector is pure translation. It says which upstream listings ("sources") answer a
query, fetches one page of one source and normalizes it into ``TaskRecord``s. It keeps no
state and does no caching, merging or retrying: the machinery in ``gateway.core`` does
that once for every vendor. A fifth vendor is one module with one ``Connector`` subclass.
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

import httpx
import orjson

from gateway.core.errors import (
    InvalidCursorError,
    UpstreamAuthError,
    UpstreamBadResponseError,
    UpstreamError,
    UpstreamOutcomeUnknownError,
    UpstreamRateLimitedError,
    UpstreamRejectedError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)
from gateway.core.records import Order, TaskRecord, TaskStatus, Vendor

logger = logging.getLogger("gateway.vendors")

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


class Connector(abc.ABC):
    """One vendor's API behind one small interface."""

    vendor: ClassVar[Vendor]
    page_size: ClassVar[int]
    """Items per upstream page: fixed, so cached pages serve every ``first``."""
    exact_filters: ClassVar[frozenset[str]] = frozenset()
    """``ListQuery`` fields this vendor applies itself, exactly: when a query uses only
    these, the vendor's own total is the count and ``totalCount`` costs one call."""

    def __init__(self, settings: VendorSettings, client: httpx.AsyncClient) -> None:
        self.settings = settings
        self.client = client

    @abc.abstractmethod
    def sources(self, query: ListQuery) -> list[Source]:
        """The listings that together hold every task matching ``query``; no I/O.

        An empty list means this vendor cannot hold a match and is not called at all.
        """

    def windows(self, source: Source) -> PageWindows | None:
        """How ``source`` can be re-read around a tie group; None: it is not offset-paged
        (a cursor such as orq's ``starting_after`` cannot move a row across a boundary)."""
        return None

    @abc.abstractmethod
    async def fetch_page(
        self, source: Source, token: PageToken, credentials: Credentials | None = None
    ) -> SourcePage:
        """Fetch and normalize one page of ``source`` starting at ``token``."""

    def agents_for(self, query: ListQuery) -> list[str]:
        """The agents to list for a per-agent vendor: the configured ones, narrowed by the
        query's ``agentIds`` (or those asked, when none are configured)."""
        configured = list(self.settings.agents)
        if query.agent_ids is None:
            return configured
        if not configured:
            return sorted(query.agent_ids)
        return [a for a in configured if a in query.agent_ids]

    def auth_headers(self, credentials: Credentials | None) -> dict[str, str]:
        chosen = credentials or self.settings.credentials
        return chosen.headers() if chosen else {}

    async def request_json(
        self,
        method: str,
        path: str,
        *,
        credentials: Credentials | None = None,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        write: bool = False,
    ) -> Any:
        """Send one request and return its decoded JSON, mapping every failure onto the
        gateway's error tree (the httpx ``map_httpcore_exceptions`` habit). For a ``write``,
        a timeout once the request may have reached the vendor is an unknown outcome."""
        vendor = self.vendor
        try:
            response = await self.client.request(
                method, path, params=params, json=json, headers=self.auth_headers(credentials)
            )
        except (httpx.ConnectTimeout, httpx.PoolTimeout, httpx.ConnectError) as exc:
            raise UpstreamUnavailableError(vendor, f"{vendor.value} could not be reached") from exc
        except httpx.TimeoutException as exc:
            if write:
                raise UpstreamOutcomeUnknownError(
                    vendor,
                    f"{vendor.value} did not answer in time; the change may or may not have "
                    "been applied: read it back before retrying",
                ) from exc
            raise UpstreamTimeoutError(vendor, f"{vendor.value} did not answer in time") from exc
        except httpx.TransportError as exc:
            if write:
                raise UpstreamOutcomeUnknownError(
                    vendor, f"{vendor.value} dropped the connection; the outcome is unknown"
                ) from exc
            raise UpstreamUnavailableError(vendor, f"{vendor.value} could not be reached") from exc
        raise_for_status(vendor, response)
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError as exc:
            raise UpstreamBadResponseError(
                vendor, f"{vendor.value} answered with malformed JSON"
            ) from exc

    def normalize(
        self, items: Iterable[Any], to_record: Callable[[Any], TaskRecord]
    ) -> tuple[tuple[TaskRecord, ...], int]:
        """Every item that normalizes; one that does not is skipped and counted, never fatal."""
        records: list[TaskRecord] = []
        skipped = 0
        for item in items:
            try:
                records.append(to_record(item))
            except (KeyError, TypeError, ValueError, AttributeError):
                skipped += 1
                logger.warning("%s: skipped a record that could not be read", self.vendor.value)
        return tuple(records), skipped


def raise_for_status(vendor: Vendor, response: httpx.Response) -> None:
    status = response.status_code
    if status < 400:
        return
    name = vendor.value
    error: UpstreamError
    if status == 429:
        error = UpstreamRateLimitedError(
            vendor,
            f"{name} is rate limiting the gateway",
            retry_after=_retry_after(response.headers.get("retry-after")),
        )
    elif status in (401, 403):
        error = UpstreamAuthError(
            vendor, f"{name} refused the gateway's credentials", status=status
        )
    elif status >= 500:
        error = UpstreamUnavailableError(vendor, f"{name} failed with HTTP {status}", status=status)
    else:
        error = UpstreamRejectedError(
            vendor, f"{name} rejected the request (HTTP {status})", status=status
        )
    raise error


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def parse_time(value: Any) -> datetime | None:
    """An ISO-8601 string or unix milliseconds as an aware UTC datetime; None if absent."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    if isinstance(value, str):
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if parsed.tzinfo is None:
            return parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)
    raise ValueError(f"not a timestamp: {value!r}")


def params_tuple(**params: Any) -> tuple[tuple[str, str], ...]:
    """Source parameters in a stable order, empty values dropped."""
    return tuple(sorted((k, str(v)) for k, v in params.items() if v is not None and v != ""))
