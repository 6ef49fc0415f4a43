"""The connectors' shared base: the contract of ``gateway.core.contract`` over HTTP.

A connector is pure translation. It says which upstream listings ("sources") answer a
query, fetches one page of one source and normalizes it into ``TaskRecord``s. It keeps no
state and does no caching, merging or retrying: the machinery in ``gateway.core`` does
that once for every vendor. What connectors share is here, once: the request and its
error mapping (``send``), the field readers (``required``, ``text``, ``time_field``) and the
small builders ``sources`` and ``fetch_page`` use. A fifth vendor's connector is one module
with one ``Connector`` subclass (``docs/adding-a-vendor.md`` lists the other files).
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Callable, Hashable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar

import httpx
import orjson

from gateway.core.contract import (
    Credentials,
    ListQuery,
    PageToken,
    PageWindows,
    Source,
    SourcePage,
    VendorSettings,
    offset_page,
)
from gateway.core.errors import (
    UpstreamAuthError,
    UpstreamBadResponseError,
    UpstreamError,
    UpstreamOutcomeUnknownError,
    UpstreamRateLimitedError,
    UpstreamRejectedError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)
from gateway.core.records import Direction, Order, OrderField, TaskRecord, TaskStatus, Vendor
from gateway.core.statuses import vendor_values

logger = logging.getLogger("gateway.vendors")

CREATED_FIRST = Order(OrderField.CREATED_AT, Direction.DESC)
"""Newest created first: the only order xpander and orq list in (a listing wanted in another
is read whole and sorted)."""


class Connector(abc.ABC):
    """One vendor's API behind one small interface.

    A subclass is also the vendor's descriptor (libcloud's driver attributes): the class
    attributes below declare what configuration, the CLI and the graph need to know about
    the vendor, and they read them here (through ``gateway.vendors.registry``), never from
    a table of their own. Optional abilities are the protocols of ``gateway.core.contract``
    (``TrackerWriter``, ``SubtaskLister``): a connector has one by implementing it.
    """

    vendor: ClassVar[Vendor]
    page_size: ClassVar[int]
    """Items per upstream page: fixed, so cached pages serve every ``first``."""
    exact_filters: ClassVar[frozenset[str]] = frozenset()
    """``ListQuery`` fields this vendor applies itself, exactly: when a query uses only
    these, the vendor's own total is the count and ``totalCount`` costs one call."""

    LABEL: ClassVar[str]
    """The vendor's name in prose (messages, descriptions), e.g. ``Agentex``."""
    DESCRIPTION: ClassVar[str]
    """The GraphQL description of the vendor's ``Vendor`` enum value."""
    CREDENTIAL_HEADER: ClassVar[str] = "Authorization"
    CREDENTIAL_SCHEME: ClassVar[str | None] = "Bearer"
    """How the vendor expects its key (configuration may name another header or scheme)."""
    KEY_REQUIRED: ClassVar[bool] = True
    """Start-up refuses the vendor enabled without a key."""
    PER_AGENT: ClassVar[bool] = False
    """The vendor lists tasks per agent: start-up wants at least one agent configured."""
    STATUS_MAP: ClassVar[Mapping[str, TaskStatus]]
    """The vendor's status values onto the shared ``TaskStatus`` (lower case)."""
    EXTENSIBLE_STATUSES: ClassVar[bool] = False
    """The vendor's statuses are free-form: ``status_map`` in its configuration adds values."""
    STATUS_NOTES: ClassVar[Mapping[TaskStatus, str] | None] = None
    """The vendor values shown in each ``TaskStatus`` description; None: read off
    ``STATUS_MAP`` (its values per status, joined by ``/``)."""

    def __init__(self, settings: VendorSettings, client: httpx.AsyncClient) -> None:
        self.settings = settings
        self.client = client
        # Built once: every record of every page is mapped through it. Configuration gives
        # ``extra_status_map`` only to a vendor with ``EXTENSIBLE_STATUSES``.
        self.status_map: Mapping[str, TaskStatus] = {
            **self.STATUS_MAP,
            **{k.strip().lower(): v for k, v in settings.extra_status_map.items()},
        }

    @classmethod
    def credentials(cls, secret: str) -> Credentials:
        """``secret`` in the header and scheme the vendor expects: configured keys and the
        keys callers forward alike."""
        return Credentials(secret, cls.CREDENTIAL_HEADER, cls.CREDENTIAL_SCHEME)

    @classmethod
    def status_notes(cls) -> dict[TaskStatus, str]:
        """The vendor values each shared status stands for, as the GraphQL docs show them."""
        if cls.STATUS_NOTES is not None:
            return dict(cls.STATUS_NOTES)
        values: dict[TaskStatus, list[str]] = {}
        for value, status in cls.STATUS_MAP.items():
            values.setdefault(status, []).append(value)
        return {status: "/".join(names) for status, names in values.items()}

    @classmethod
    def startup_warning(cls, base_url: str) -> str | None:
        """One line worth printing at start-up about this base URL; None: nothing to say."""
        return None

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

    def source(
        self, path: str, ordered: bool, *, nulls_first: bool = False, **params: Any
    ) -> Source:
        """A listing of this vendor at ``path`` with the upstream ``params`` (None or empty
        ones left out), for ``sources``."""
        return Source(self.vendor, path, params_tuple(**params), ordered, nulls_first)

    def status_values(self, query: ListQuery) -> list[str] | None:
        """The vendor values a status filter pushes down: None without a status filter,
        ``[]`` when no value of this vendor maps to the statuses asked (so the vendor holds
        no match and ``sources`` asks nobody)."""
        if query.statuses is None:
            return None
        return vendor_values(self.status_map, query.statuses)

    def offset_page(self, token: PageToken) -> tuple[int, int]:
        """``(page, limit)`` to ask an offset-paged vendor for, at this connector's page size
        (``gateway.core.contract.offset_page``)."""
        return offset_page(token, self.page_size)

    def tie_windows(
        self, max_limit: int | None, tie_key: Callable[[TaskRecord], Hashable]
    ) -> PageWindows:
        """``PageWindows`` at this connector's page size, for ``windows``."""
        return PageWindows(self.page_size, max_limit, tie_key)

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
        self, method: str, path: str, credentials: Credentials | None = None, **options: Any
    ) -> Any:
        """Send one read (``options``: ``send``'s ``params`` or ``json``) and return its
        decoded JSON, every failure on the gateway's error tree (``send``,
        ``raise_for_status``, ``decode_json``)."""
        response = await self.send(method, path, credentials=credentials, **options)
        raise_for_status(self.vendor, response)
        return decode_json(self.vendor, response)

    async def send(
        self,
        method: str,
        path: str,
        *,
        credentials: Credentials | None = None,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        writes: str | None = None,
    ) -> httpx.Response:
        """Send one request and return the vendor's response, whatever its status; a call
        that gets no response is mapped onto the gateway's error tree (the httpx
        ``map_httpcore_exceptions`` habit), the one place reads and writes do it.

        ``writes`` names what a write changes (e.g. ``"tracker"``): once the request may have
        reached the vendor (anything but a failed connect), silence is an unknown outcome,
        not a timeout, since the vendor may have applied it without our hearing back."""
        vendor = self.vendor
        try:
            return await self.client.request(
                method, path, params=params, json=json, headers=self.auth_headers(credentials)
            )
        except (httpx.ConnectTimeout, httpx.PoolTimeout, httpx.ConnectError) as exc:
            raise UpstreamUnavailableError(vendor, f"{vendor.value} could not be reached") from exc
        except httpx.TransportError as exc:
            if writes is not None:
                raise UpstreamOutcomeUnknownError(
                    vendor,
                    f"{vendor.value} did not confirm the update; it may or may not have been "
                    f"applied: read the {writes} back before retrying",
                ) from exc
            if isinstance(exc, httpx.TimeoutException):
                raise UpstreamTimeoutError(
                    vendor, f"{vendor.value} did not answer in time"
                ) from exc
            raise UpstreamUnavailableError(vendor, f"{vendor.value} could not be reached") from exc

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


def decode_json(vendor: Vendor, response: httpx.Response) -> Any:
    """The response's JSON body; one that does not decode is a bad response."""
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError as exc:
        raise UpstreamBadResponseError(
            vendor, f"{vendor.value} answered with malformed JSON"
        ) from exc


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


def required(item: Mapping[str, Any], key: str) -> str:
    """A non-empty string field: without it the item cannot be read (it is skipped)."""
    value = item[key]
    if not isinstance(value, str) or not value:
        raise ValueError(key)
    return value


def text(item: Mapping[str, Any], key: str) -> str | None:
    """A nullable string field; any other type makes the item unreadable."""
    value = item.get(key)
    if value is not None and not isinstance(value, str):
        raise TypeError(key)
    return value


def time_field(item: Mapping[str, Any], key: str) -> datetime | None:
    """A nullable ISO-8601 time field; any other type or text makes the item unreadable."""
    return parse_time(text(item, key))


def required_time(item: Mapping[str, Any], key: str) -> datetime:
    """A time the item cannot be read without (one its listing is ordered by: without it,
    the record cannot be placed)."""
    moment = time_field(item, key)
    if moment is None:
        raise ValueError(key)
    return moment
