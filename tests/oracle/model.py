"""The oracle's own model of the four vendors and of the answer ``Query.tasks`` owes.

Written from ``shared/vendors/VENDORS.md`` (the status table, orq's precedence, which
fields are nullable) and the rule of order the lead decided for issue 15, never from gateway
or sandbox code:

- a missing time is shown as null and sorts LAST in both directions (SQL ``NULLS LAST``);
- ``updatedAfter`` is inclusive, ``updatedBefore`` exclusive (the schema's descriptions), and
  a time filter never matches a null time;
- tasks tied on the order's time may come in any order;
- Agentex with a null ``updated_at`` shows ``updatedAt: null``; Subnoto's ``createdAt`` is
  always null (it publishes no creation time), its ``updatedAt`` the latest report's time.

Hypothesis strategies here draw vendor JSON records as each vendor's list endpoint shows
them: few distinct moments (so ties within and across vendors are frequent), nulls wherever
the vendor documents them, Agentex statuses in any case and outside every table, and empty
vendors.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import strategies as st

from gateway.core.records import Vendor

Record = dict[str, Any]
Dataset = dict[Vendor, list[Record]]

BASE = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
MOMENTS = [BASE + timedelta(minutes=7 * k) for k in range(6)]  # few: ties are the rule

# VENDORS.md, "The shared status": each vendor's values and the shared status they mean.
AGENTEX_STATUS = {  # case-insensitive, free-form; null or anything else is UNKNOWN
    **dict.fromkeys(("pending", "queued", "created", "scheduled"), "PENDING"),
    **dict.fromkeys(("running", "processing", "in_progress", "active", "working"), "RUNNING"),
    "paused": "PAUSED",
    **dict.fromkeys(("awaiting_approval", "waiting_for_approval"), "AWAITING_APPROVAL"),
    "idle": "IDLE",
    **dict.fromkeys(("completed", "complete", "done", "succeeded", "success"), "COMPLETED"),
    **dict.fromkeys(("failed", "failure", "error", "errored"), "FAILED"),
    **dict.fromkeys(("cancelled", "canceled", "stopped"), "CANCELLED"),
}
XPANDER_STATUS = {
    "pending": "PENDING",
    "executing": "RUNNING",
    "paused": "PAUSED",
    "error": "FAILED",
    "failed": "FAILED",
    "completed": "COMPLETED",
    "stopped": "CANCELLED",
}
ORQ_STATUS = {
    "in_progress": "RUNNING",
    "approval_required": "AWAITING_APPROVAL",
    "inactive": "IDLE",
    "errored": "FAILED",
}
SUBNOTO_STATUS = {
    "working": "RUNNING",
    "complete": "COMPLETED",
    "idle": "IDLE",
    "failure": "FAILED",
}
SHARED_STATUSES = (
    "PENDING",
    "RUNNING",
    "PAUSED",
    "AWAITING_APPROVAL",
    "IDLE",
    "COMPLETED",
    "FAILED",
    "CANCELLED",
    "UNKNOWN",
)
TO_CROCKFORD = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", "0123456789ABCDEFGHJKMNPQRSTVWXYZ")


def orq_state_status(state: Mapping[str, Any]) -> str:
    """VENDORS.md's precedence: ``error`` set is errored; else ``waiting_for_approval`` is
    approval_required; else ``inactive`` is inactive; else in_progress."""
    if state.get("error"):
        return "errored"
    if state.get("waiting_for_approval"):
        return "approval_required"
    return "inactive" if state.get("inactive") else "in_progress"


# -- what the gateway must show for one record ----------------------------------------------


@dataclass(frozen=True)
class Expected:
    """One task as ``Query.tasks`` must show it."""

    vendor: str
    agent_id: str | None
    native_id: str
    status: str
    created_at: datetime | None
    updated_at: datetime | None

    @property
    def key(self) -> tuple[str, str | None, str]:
        return (self.vendor, self.agent_id, self.native_id)

    def time(self, field: str) -> datetime | None:
        return self.updated_at if field == "UPDATED_AT" else self.created_at


def parse(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def expected_task(vendor: Vendor, record: Record) -> Expected:
    if vendor is Vendor.AGENTEX:
        status = record["status"]
        return Expected(
            vendor.name,
            record["agent_id"],
            record["task_id"],
            AGENTEX_STATUS.get(status.lower(), "UNKNOWN") if status is not None else "UNKNOWN",
            parse(record["created_at"]),
            parse(record["updated_at"]),
        )
    if vendor is Vendor.XPANDER:
        return Expected(
            vendor.name,
            record["agent_id"],
            record["id"],
            XPANDER_STATUS[record["status"]],
            parse(record["created_at"]),
            parse(record["updated_at"]),
        )
    if vendor is Vendor.ORQ:
        return Expected(
            vendor.name,
            record["agent_manifest_snapshot"]["key"],
            record["_id"],
            ORQ_STATUS[orq_state_status(record["state"])],
            parse(record["created"]),
            parse(record["updated"]),
        )
    report = record["latestReport"]
    return Expected(
        vendor.name,
        None,
        record["taskUuid"],
        SUBNOTO_STATUS[report["state"]],
        None,  # Subnoto publishes no creation time
        datetime.fromtimestamp(report["timestamp"] / 1000, UTC),
    )


@dataclass(frozen=True)
class Query:
    """One ``tasks`` query: order, filter and page size."""

    field: str  # UPDATED_AT | CREATED_AT
    direction: str  # ASC | DESC
    vendors: tuple[str, ...] | None
    statuses: tuple[str, ...] | None
    agent_ids: tuple[str, ...] | None
    updated_after: datetime | None
    updated_before: datetime | None
    first: int

    def variables(self) -> dict[str, Any]:
        filter: dict[str, Any] = {}
        if self.vendors is not None:
            filter["vendors"] = list(self.vendors)
        if self.statuses is not None:
            filter["statuses"] = list(self.statuses)
        if self.agent_ids is not None:
            filter["agentIds"] = list(self.agent_ids)
        if self.updated_after is not None:
            filter["updatedAfter"] = self.updated_after.isoformat()
        if self.updated_before is not None:
            filter["updatedBefore"] = self.updated_before.isoformat()
        return {
            "first": self.first,
            "order": {"field": self.field, "direction": self.direction},
            "filter": filter or None,
        }

    def matches(self, task: Expected) -> bool:
        if self.vendors is not None and task.vendor not in self.vendors:
            return False
        if self.statuses is not None and task.status not in self.statuses:
            return False
        if self.agent_ids is not None and task.agent_id not in self.agent_ids:
            return False  # Subnoto has no agent: an agent filter excludes it
        if self.updated_after is not None and (
            task.updated_at is None or task.updated_at < self.updated_after
        ):
            return False
        return self.updated_before is None or (
            task.updated_at is not None and task.updated_at < self.updated_before
        )

    def sort_key(self, task: Expected) -> tuple[bool, float]:
        """Nulls last in both directions; ties compare equal (any order between them)."""
        moment = task.time(self.field)
        if moment is None:
            return (True, 0.0)
        stamp = moment.timestamp()
        return (False, -stamp if self.direction == "DESC" else stamp)


def expected_tasks(data: Mapping[Vendor, Sequence[Record]], query: Query) -> list[Expected]:
    """Every task the query matches (in no particular order)."""
    return [
        task
        for vendor, records in data.items()
        for task in (expected_task(vendor, record) for record in records)
        if query.matches(task)
    ]


# -- strategies -------------------------------------------------------------------------------


def iso_micro(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def iso_milli(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def uuid_for(vendor: Vendor, kind: int, n: int) -> str:
    """A distinct, valid UUID per (vendor, kind, index): readable in a shrunk example."""
    return f"{list(Vendor).index(vendor):08x}-{kind:04x}-4000-8000-{n:012x}"


def ulid(moment: datetime, n: int) -> str:
    """An orq ``_id``: a ULID whose time part is the creation's millisecond, as orq makes
    them, so id order is creation order, with ``n`` as the random part."""
    value = (int(moment.timestamp() * 1000) << 80) | n
    return base64.b32encode(value.to_bytes(20, "big"))[6:].decode().translate(TO_CROCKFORD)


moments = st.sampled_from(MOMENTS)
maybe_moments = st.one_of(st.none(), moments)
agentex_statuses = st.one_of(
    st.none(),
    st.sampled_from(sorted(AGENTEX_STATUS)),
    st.sampled_from(sorted(AGENTEX_STATUS)).map(str.upper),
    st.sampled_from(sorted(AGENTEX_STATUS)).map(str.title),
    st.sampled_from(["reticulating", "on_hold", "Blocked"]),  # no table knows these
)


@st.composite
def agentex_records(draw: st.DrawFn, agents: Sequence[str], max_size: int) -> list[Record]:
    rows = []
    for n in range(draw(st.integers(0, max_size))):
        created = draw(moments)
        rows.append(
            {
                "id": uuid_for(Vendor.AGENTEX, 1, n),
                "agent_id": draw(st.sampled_from(agents)),
                "task_id": uuid_for(Vendor.AGENTEX, 2, n),
                "status": draw(agentex_statuses),
                "status_reason": draw(st.one_of(st.none(), st.just("Processing new events"))),
                "last_processed_event_id": draw(
                    st.one_of(st.none(), st.just(uuid_for(Vendor.AGENTEX, 3, n)))
                ),
                "created_at": iso_micro(created),
                "updated_at": None if (u := draw(maybe_moments)) is None else iso_micro(u),
            }
        )
    return rows


@st.composite
def xpander_records(draw: st.DrawFn, agents: Sequence[str], max_size: int) -> list[Record]:
    rows = []
    for n in range(draw(st.integers(0, max_size))):
        status = draw(st.sampled_from(sorted(XPANDER_STATUS)))
        rows.append(
            {
                "id": uuid_for(Vendor.XPANDER, 1, n),
                "agent_id": draw(st.sampled_from(agents)),
                "user_id": draw(st.one_of(st.none(), st.just(uuid_for(Vendor.XPANDER, 2, n % 3)))),
                "parent_task_id": None,
                "triggering_agent_id": None,
                "organization_id": uuid_for(Vendor.XPANDER, 3, 0),
                "status": status,
                "source_node_type": "sdk",
                "created_at": iso_micro(draw(moments)),
                "updated_at": iso_micro(draw(moments)),
                "title": f"Task {n}",
                "result": "done" if status == "completed" else None,
            }
        )
    return rows


orq_states = st.fixed_dictionaries(
    {
        "waiting_for_approval": st.booleans(),
        "inactive": st.booleans(),
        "error": st.one_of(st.none(), st.just("Tool call failed")),
        "iteration": st.just(1),
        "accumulated_execution_time": st.just(1.5),
    }
)


@st.composite
def orq_records(draw: st.DrawFn, agents: Sequence[str], max_size: int) -> list[Record]:
    rows = []
    for n in range(draw(st.integers(0, max_size))):
        agent = draw(st.sampled_from(agents))
        created = draw(moments)
        rows.append(
            {
                "_id": ulid(created, n),
                "agent_manifest_snapshot": {
                    "_id": ulid(BASE - timedelta(days=30), 0),
                    "key": agent,
                    "role": agent,
                    "description": agent,
                    "instructions": "",
                    "system_prompt": "",
                    "model": {
                        "id": "openai/gpt-4o",
                        "integration_id": ulid(BASE - timedelta(days=60), 0),
                        "fallback_models": [],
                        "max_tokens": 4096,
                        "temperature": 0.2,
                    },
                    "settings": {
                        "max_execution_time": 300,
                        "max_iterations": 15,
                        "tool_approval_required": "respect_tool",
                        "tools": [],
                    },
                    "project_id": uuid_for(Vendor.ORQ, 2, 0),
                },
                "created_by_id": uuid_for(Vendor.ORQ, 3, 0),
                "updated_by_id": uuid_for(Vendor.ORQ, 3, 0),
                "created": iso_milli(created),
                "updated": iso_milli(draw(moments)),
                "name": f"Task {n}",
                "workspace_id": uuid_for(Vendor.ORQ, 4, 0),
                "memory": {"entity_id": "customer-1"},
                "metadata": {},
                "state": draw(orq_states),
                "metrics": {
                    "input_cost": 0.001,
                    "output_cost": 0.002,
                    "total_cost": 0.003,
                    "prompt_tokens": 10,
                    "completion_tokens": 20,
                    "total_tokens": 30,
                },
            }
        )
    return rows


@st.composite
def subnoto_records(draw: st.DrawFn, max_size: int) -> list[Record]:
    rows = []
    for n in range(draw(st.integers(0, max_size))):
        report: Record = {
            "state": draw(st.sampled_from(sorted(SUBNOTO_STATUS))),
            "summary": f"Batch {n}",
            "timestamp": int(draw(moments).timestamp() * 1000),
            "author": {
                "uuid": "00000000-0000-0000-0000-000000000000",
                "email": "system@subnoto.com",
                "name": "System",
            },
        }
        if draw(st.booleans()):  # ``link`` is optional
            report["link"] = f"https://app.subnoto.com/envelopes/{n}"
        rows.append(
            {"taskUuid": uuid_for(Vendor.SUBNOTO, 1, n), "reportCount": 1, "latestReport": report}
        )
    return rows


def datasets(agents: Mapping[Vendor, Sequence[str]], max_size: int) -> st.SearchStrategy[Dataset]:
    """A record list per vendor, each possibly empty."""
    return st.fixed_dictionaries(
        {
            Vendor.AGENTEX: agentex_records(agents[Vendor.AGENTEX], max_size),
            Vendor.XPANDER: xpander_records(agents[Vendor.XPANDER], max_size),
            Vendor.ORQ: orq_records(agents[Vendor.ORQ], max_size),
            Vendor.SUBNOTO: subnoto_records(max_size),
        }
    )


def subsets(values: Sequence[str]) -> st.SearchStrategy[tuple[str, ...] | None]:
    """None (no filter) or a non-empty subset."""
    return st.one_of(
        st.none(),
        st.lists(st.sampled_from(list(values)), min_size=1, unique=True).map(tuple),
    )


# A bound on a moment, a second either side of one, or none: boundaries are where the
# inclusive/exclusive reading shows.
bounds = st.one_of(
    st.none(),
    st.builds(
        lambda moment, shift: moment + timedelta(seconds=shift),
        moments,
        st.sampled_from([-1, 0, 1]),
    ),
)


def queries(agent_ids: Sequence[str]) -> st.SearchStrategy[Query]:
    return st.builds(
        Query,
        field=st.sampled_from(["UPDATED_AT", "CREATED_AT"]),
        direction=st.sampled_from(["ASC", "DESC"]),
        vendors=subsets([v.name for v in Vendor]),
        statuses=subsets(SHARED_STATUSES),
        agent_ids=subsets([*agent_ids, "no-such-agent"]),
        updated_after=bounds,
        updated_before=bounds,
        first=st.integers(1, 8),
    )
