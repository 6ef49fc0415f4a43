"""Subnoto: the team's agent tasks (no agents at all), each as its latest report.

The list is sorted by the latest report's time, which is our ``updated_at``. Subnoto
publishes no creation time: ``createdAt`` is null and, by the rule for missing times, every
Subnoto task sorts after the dated ones in ``CREATED_AT`` order, both ways (among
themselves, in the listing's own order, which is as good as any between equal nulls).

In production the enclave is reached through Subnoto's API proxy container
(``subnoto/api-proxy``, port 8080), which does the attestation and the encrypted tunnel;
the key is ``ACCESS_KEY:SECRET_KEY`` sent as ``Authorization: Bearer ACCESS_KEY:SECRET_KEY``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import urlsplit

from gateway.core.contract import Credentials, ListQuery, PageToken, PageWindows, Source, SourcePage
from gateway.core.errors import UpstreamBadResponseError
from gateway.core.ids import TASK, encode_id
from gateway.core.records import TaskRecord, TaskStatus, Vendor
from gateway.core.statuses import map_status
from gateway.vendors.base import Connector, parse_time, required, text

PATH = "/public/agent-task/list"
BAD_SHAPE = "subnoto answered with an unexpected shape"
MAX_LIMIT = 50
"""Subnoto's maximum ``limit``."""
ENCLAVE_DOMAIN = "subnoto.com"
STATUSES: Mapping[str, TaskStatus] = dict(
    # ``latestReport.state`` (VENDORS.md).
    working=TaskStatus.RUNNING,
    idle=TaskStatus.IDLE,
    complete=TaskStatus.COMPLETED,
    failure=TaskStatus.FAILED,
)


def enclave_warning(base_url: str) -> str | None:
    """One start-up line when ``base_url`` points at Subnoto's enclave itself (a host under
    subnoto.com): the enclave takes no plain REST calls, so every call would fail. None for
    anything else (the proxy's own address, the sandbox)."""
    host = (urlsplit(base_url).hostname or "").lower().rstrip(".")
    if host != ENCLAVE_DOMAIN and not host.endswith("." + ENCLAVE_DOMAIN):
        return None
    return (
        f"vendors.subnoto.base_url points at Subnoto's enclave ({host}), which does not take "
        "plain REST calls: run the subnoto/api-proxy container (port 8080) beside the gateway "
        "and set base_url to it, e.g. http://subnoto-proxy:8080 "
        "(subnoto.com/documentation/developers/encryption-proxy)"
    )


class SubnotoConnector(Connector):
    vendor = Vendor.SUBNOTO
    page_size = MAX_LIMIT
    exact_filters: ClassVar[frozenset[str]] = frozenset({"statuses"})
    LABEL = "Subnoto"
    DESCRIPTION = "Subnoto: the team's agent tasks (`POST /public/agent-task/list`)."
    # ``Authorization: Bearer ACCESS_KEY:SECRET_KEY``: the configured key is the two parts
    # joined by a colon, sent as they are (the base class's default header and scheme).
    STATUS_MAP = STATUSES

    @classmethod
    def startup_warning(cls, base_url: str) -> str | None:
        return enclave_warning(base_url)

    def sources(self, query: ListQuery) -> list[Source]:
        if (
            query.agent_ids is not None
            or query.parent_task_id is not None
            or query.triggering_agent_id is not None
        ):
            return []  # team-wide tasks: no agent, no parent
        values = self.status_values(query)
        if values == []:
            return []  # no Subnoto state maps to the statuses asked
        direction = "desc" if query.order.descending else "asc"
        return [
            self.source(PATH, True, stateFilter=values and ",".join(values), sortOrder=direction)
        ]

    def windows(self, source: Source) -> PageWindows:
        """Sorted by the latest report's time only: reports of the same millisecond tie."""
        return self.tie_windows(MAX_LIMIT, lambda r: r.updated_at)

    async def fetch_page(
        self, source: Source, token: PageToken, credentials: Credentials | None = None
    ) -> SourcePage:
        params = dict(source.params)
        states = params["stateFilter"].split(",") if "stateFilter" in params else []
        page, limit = self.offset_page(token)
        request = {
            "stateFilter": states,
            "page": page,
            "limit": limit,
            "sortOrder": params["sortOrder"],
        }
        body = await self.request_json("POST", PATH, credentials=credentials, json=request)
        if not isinstance(body, dict):
            raise UpstreamBadResponseError(self.vendor, BAD_SHAPE)
        tasks, pagination = body.get("tasks"), body.get("pagination")
        if not isinstance(tasks, list) or not isinstance(pagination, dict):
            raise UpstreamBadResponseError(self.vendor, BAD_SHAPE)
        total, next_page = pagination.get("totalRecords"), pagination.get("nextPage")
        if not isinstance(total, int) or not (next_page is None or isinstance(next_page, int)):
            raise UpstreamBadResponseError(self.vendor, BAD_SHAPE)
        records, skipped = self.normalize(tasks, _to_record)
        return SourcePage(records, next_token=next_page, total=total, skipped=skipped)


def _to_record(item: dict[str, Any]) -> TaskRecord:
    native_id = required(item, "taskUuid")
    report = item["latestReport"]
    vendor_status = text(report, "state")
    author = report.get("author")
    return TaskRecord(
        vendor=Vendor.SUBNOTO,
        native_id=native_id,
        global_id=encode_id(TASK, Vendor.SUBNOTO, "", native_id),
        agent_id=None,
        status=map_status(STATUSES, vendor_status),
        vendor_status=vendor_status,
        title=None,
        summary=text(report, "summary"),
        created_at=None,  # Subnoto publishes no creation time
        updated_at=_millis(report["timestamp"]),
        user_id=text(author, "uuid") if author is not None else None,
        link=text(report, "link"),
        raw=item,
    )


def _millis(value: Any) -> datetime:
    """The report time (unix ms) as aware UTC; a missing or impossible one makes the item
    unreadable."""
    try:
        moment = parse_time(value)
    except (OverflowError, OSError) as exc:  # past what a datetime can hold
        raise ValueError("timestamp out of range") from exc
    if moment is None:
        raise ValueError("timestamp")
    return moment
