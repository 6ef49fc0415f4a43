"""Deterministic sandbox data: the same seed, size and ``now`` give the same records.

Per vendor: a few agents, ``size`` tasks spanning every status value of that vendor,
times over the three weeks before ``now``, and deliberate ties: every tenth task sits on
one of a few shared moments, the same moments for all four vendors, so ordering and paging
are tested where they are hardest. Kept to plain loops so 50,000 tasks per vendor take a
couple of seconds (the benchmarks use that size).

Every store is the container its vendor's rows live in (trackers by id, task lists per
agent, one team-wide list) plus the sandbox clock and the cached listings.
"""

from __future__ import annotations

import base64
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from gateway.core.records import TaskStatus
from gateway.core.statuses import AGENTEX_STATUS_MAP, map_status
from gateway.sandbox.common import Clock, Views

Row = dict[str, Any]

SPAN_SECONDS = 21 * 24 * 3600
TIE_EVERY = 10  # every tenth task of a vendor sits on a shared moment
TIE_MOMENTS = 3
AGENTS_PER_VENDOR = 3
NIL_UUID = "00000000-0000-0000-0000-000000000000"

AGENTEX_STATUSES: list[str | None] = [
    *AGENTEX_STATUS_MAP,
    "Running",
    "COMPLETED",
    "Failed",
    "In_Progress",
    "reticulating",
    "on_hold",
    None,
    None,
]
XPANDER_STATUSES = ("pending", "executing", "paused", "error", "failed", "completed", "stopped")
XPANDER_INTERNAL = {  # internal_status: filterable, but not a field of the list item
    "pending": "queued",
    "executing": "running",
    "paused": "waiting_for_input",
    "error": "crashed",
    "failed": "failed",
    "completed": "done",
    "stopped": "cancelled",
}
SUBNOTO_STATES = ("working", "complete", "idle", "failure")
ORQ_AGENT_KEYS = ("support-triage", "invoice-extractor", "research-assistant")
ORQ_STATES: list[Row] = [
    {"waiting_for_approval": False, "inactive": False, "error": None},  # in_progress
    {"waiting_for_approval": True, "inactive": False, "error": None},  # approval_required
    {"waiting_for_approval": False, "inactive": True, "error": None},  # inactive
    {"waiting_for_approval": False, "inactive": True, "error": "Tool call failed: HTTP 503"},
    {"waiting_for_approval": True, "inactive": False, "error": "Model timed out after 300s"},
]
SUBNOTO_AUTHORS: list[Row] = [
    {"uuid": NIL_UUID, "email": "system@subnoto.com", "name": "System"},
    {"uuid": "5d1c0c9e-3f5b-4c55-9a57-0f1d1b0f7a01", "email": "ada@example.com", "name": "Ada"},
    {"uuid": "8e2b7f41-6a0d-4a8e-b1f2-2d9c4e6b3c02", "email": "lin@example.com", "name": "Lin"},
    {"uuid": "c3a9d2e7-1b4f-4e8a-9c6d-5f2e8a7b4d03", "email": "sam@example.com", "name": "Sam"},
]
REASONS = {
    TaskStatus.PENDING: "Queued behind other tasks",
    TaskStatus.RUNNING: "Processing new events",
    TaskStatus.PAUSED: "Paused by operator",
    TaskStatus.AWAITING_APPROVAL: "Waiting for a human to approve a tool call",
    TaskStatus.IDLE: "No new events",
    TaskStatus.COMPLETED: "All events processed",
    TaskStatus.FAILED: "Tool call timed out",
    TaskStatus.CANCELLED: "Cancelled by user",
    TaskStatus.UNKNOWN: "Custom agent state",
}
TOPICS = (
    "Summarize ticket",
    "Draft a reply to",
    "Classify invoice",
    "Extract totals from",
    "Research competitor for",
    "Translate contract",
)
TO_CROCKFORD = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", "0123456789ABCDEFGHJKMNPQRSTVWXYZ")


def iso_micro(moment: datetime) -> str:
    """Fixed-width ISO-8601 in UTC (always six fraction digits), so text order is time
    order. ``moment`` is UTC."""
    return moment.isoformat(timespec="microseconds")[:-6] + "Z"


def iso_milli(moment: datetime) -> str:
    """As JavaScript's ``toISOString`` writes it (orq). ``moment`` is UTC."""
    return moment.isoformat(timespec="milliseconds")[:-6] + "Z"


def unix_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def uuid4(rng: random.Random) -> str:
    n = rng.getrandbits(128)
    n = (n & ~(0xF000 << 64)) | (0x4000 << 64)  # version 4
    n = (n & ~(0xC000 << 48)) | (0x8000 << 48)  # RFC 4122 variant
    h = f"{n:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def ulid(moment: datetime, rng: random.Random) -> str:
    """A ULID: 48 bits of unix milliseconds, then 80 random bits, in Crockford base32, so
    ids sort by creation time (and a shared millisecond by the random part). Encoded as the
    last 26 of 32 base32 digits of 20 bytes, by the C base32 encoder, for speed."""
    value = (unix_ms(moment) << 80) | rng.getrandbits(80)
    return base64.b32encode(value.to_bytes(20, "big"))[6:].decode().translate(TO_CROCKFORD)


class Store:
    """What every vendor store carries besides its rows: the sandbox clock, and listings
    cached until ``changed()`` (a write, a progress step, or a test editing rows)."""

    def __init__(self, clock: Clock) -> None:
        super().__init__()
        self.clock = clock
        self.views = Views()

    def changed(self) -> None:
        self.views.clear()


class TrackerStore(Store, dict[str, Row]):
    """Agentex trackers by tracker id. ``events`` holds each task's event ids in order: the
    values a tracker's ``last_processed_event_id`` may take, never moving back."""

    def __init__(self, clock: Clock) -> None:
        super().__init__(clock)
        self.events: dict[str, list[str]] = {}


class AgentTasks(Store, dict[str, list[Row]]):
    """Tasks per agent (xpander's and orq's lists are per agent), each list newest first."""


class XpanderStore(AgentTasks):
    """xpander tasks per agent; ``internal`` is each task's ``internal_status``, which the
    list filters on but does not return."""

    def __init__(self, clock: Clock) -> None:
        super().__init__(clock)
        self.internal: dict[str, str] = {}


class SubnotoStore(Store, list[Row]):
    """Subnoto's team-wide agent tasks, each with its latest report."""


@dataclass
class SandboxData:
    agents: dict[str, list[str]]
    agentex: TrackerStore
    xpander: XpanderStore
    orq: AgentTasks
    subnoto: SubnotoStore


class _Times:
    """Creation and update moments in the three weeks before ``now``; every ``TIE_EVERY``-th
    task on one of the shared tie moments (for both times)."""

    def __init__(self, rng: random.Random, now: datetime) -> None:
        self.rng = rng
        self.now = now
        self.ties = [now - timedelta(hours=rng.randint(2, 24 * 20)) for _ in range(TIE_MOMENTS)]

    def tie(self, i: int) -> datetime | None:
        return self.ties[(i // TIE_EVERY) % TIE_MOMENTS] if i % TIE_EVERY == 0 else None

    def created(self, i: int) -> datetime:
        tie = self.tie(i)
        if tie is not None:
            return tie
        return self.now - timedelta(seconds=60 + self.rng.random() * SPAN_SECONDS)

    def updated(self, i: int, created: datetime) -> datetime:
        """Mostly within hours of creation, never after ``now``."""
        if self.tie(i) is not None:
            return created
        room = (self.now - created).total_seconds()
        return created + timedelta(seconds=min(room, self.rng.expovariate(1 / 5400)))


def agents_for(seed: int) -> dict[str, list[str]]:
    """The agents depend on the seed alone, so a client can be configured for a sandbox
    of any size without generating its data."""
    rng = random.Random(f"agents:{seed}")
    return {
        "agentex": [uuid4(rng) for _ in range(AGENTS_PER_VENDOR)],
        "xpander": [uuid4(rng) for _ in range(AGENTS_PER_VENDOR)],
        "orq": list(ORQ_AGENT_KEYS[:AGENTS_PER_VENDOR]),
        "subnoto": [],
    }


def generate(size: int, seed: int, clock: Clock) -> SandboxData:
    rng = random.Random(seed)
    times = _Times(rng, clock.start)
    agents = agents_for(seed)
    return SandboxData(
        agents=agents,
        agentex=_agentex(TrackerStore(clock), agents["agentex"], rng, times, size),
        xpander=_xpander(XpanderStore(clock), agents["xpander"], rng, times, size),
        orq=_orq(AgentTasks(clock), agents["orq"], rng, times, size),
        subnoto=_subnoto(SubnotoStore(clock), rng, times, size),
    )


def _agentex(
    store: TrackerStore, agents: list[str], rng: random.Random, times: _Times, size: int
) -> TrackerStore:
    for i in range(size):
        created = times.created(i)
        status = AGENTEX_STATUSES[i % len(AGENTEX_STATUSES)]
        task_id = uuid4(rng)
        events = [uuid4(rng) for _ in range(1 + int(rng.random() * 5))]
        store.events[task_id] = events
        tracker_id = uuid4(rng)
        store[tracker_id] = {
            "id": tracker_id,
            "agent_id": agents[i % len(agents)],
            "task_id": task_id,
            "status": status,
            "status_reason": _reason(status, i),
            # A tracker that has processed nothing yet has no cursor.
            "last_processed_event_id": None if i % 9 == 4 else rng.choice(events),
            "created_at": iso_micro(created),
            "updated_at": iso_micro(times.updated(i, created)),
        }
    return store


def _reason(status: str | None, i: int) -> str | None:
    if status is None or i % 4 == 3:
        return None
    return REASONS[map_status(AGENTEX_STATUS_MAP, status)]


def _xpander(
    store: XpanderStore, agents: list[str], rng: random.Random, times: _Times, size: int
) -> XpanderStore:
    organization = uuid4(rng)
    users = [uuid4(rng) for _ in range(4)]
    every: list[Row] = []
    created_at: list[datetime] = []
    for i in range(size):
        status = XPANDER_STATUSES[i % len(XPANDER_STATUSES)]
        created = times.created(i)
        parent: Row | None = None
        if i % 6 == 5:
            # A sub-task, delegated by a slightly older task of another agent: agents take
            # turns, so task i - 1 - k * len(agents) never has this task's agent.
            back = 1 + len(agents) * rng.randrange(min(4, i // len(agents)))
            parent = every[i - back]
            created = min(times.now, created_at[i - back] + timedelta(seconds=rng.randint(1, 900)))
        title = f"{TOPICS[i % len(TOPICS)]} #{1000 + i}"
        task: Row = {
            "id": uuid4(rng),
            "agent_id": agents[i % len(agents)],
            "user_id": None if i % 5 == 0 else users[i % len(users)],
            "parent_task_id": parent["id"] if parent else None,
            "triggering_agent_id": parent["agent_id"] if parent else None,
            "organization_id": organization,
            "status": status,
            "source_node_type": ("sdk", "webhook", "assistant", "mcp")[i % 4],
            "created_at": iso_micro(created),
            "updated_at": iso_micro(times.updated(i, created)),
            "title": title,
            "result": f"Done: {title.lower()}" if status == "completed" else None,
        }
        every.append(task)
        created_at.append(created)
        store.internal[task["id"]] = XPANDER_INTERNAL[status]
    for agent in agents:
        store[agent] = sorted(
            (t for t in every if t["agent_id"] == agent),
            key=lambda t: (t["created_at"], t["id"]),
            reverse=True,
        )
    return store


def _orq(
    store: AgentTasks, agents: list[str], rng: random.Random, times: _Times, size: int
) -> AgentTasks:
    workspace, project = uuid4(rng), uuid4(rng)
    people = [uuid4(rng) for _ in range(3)]
    manifests = {agent: _orq_manifest(agent, project, rng, times.now) for agent in agents}
    for agent in agents:
        store[agent] = []
    for i in range(size):
        agent = agents[i % len(agents)]
        created = times.created(i)
        prompt, completion = 200 + int(rng.random() * 5800), 50 + int(rng.random() * 2450)
        input_cost, output_cost = round(prompt * 2.5e-6, 6), round(completion * 1e-5, 6)
        person = people[i % len(people)]
        store[agent].append(
            {
                "_id": ulid(created, rng),
                "agent_manifest_snapshot": manifests[agent],
                "created_by_id": person,
                "updated_by_id": person,
                "created": iso_milli(created),
                "updated": iso_milli(times.updated(i, created)),
                "name": f"{TOPICS[i % len(TOPICS)]} #{2000 + i}",
                "workspace_id": workspace,
                "memory": {"entity_id": f"customer-{i % 17}"},
                "metadata": {"channel": ("email", "chat", "api")[i % 3]} if i % 2 else {},
                "state": {
                    **ORQ_STATES[i % len(ORQ_STATES)],
                    "iteration": 1 + int(rng.random() * 9),
                    "accumulated_execution_time": round(rng.uniform(0.4, 240), 3),
                },
                "metrics": {
                    "input_cost": input_cost,
                    "output_cost": output_cost,
                    "total_cost": round(input_cost + output_cost, 6),
                    "prompt_tokens": prompt,
                    "completion_tokens": completion,
                    "total_tokens": prompt + completion,
                },
            }
        )
    for agent in agents:
        store[agent].sort(key=lambda t: t["_id"], reverse=True)
    return store


def _orq_manifest(agent: str, project: str, rng: random.Random, now: datetime) -> Row:
    """The agent's configuration when its tasks ran (one version per agent here)."""
    return {
        "_id": ulid(now - timedelta(days=30), rng),
        "key": agent,
        "role": agent.replace("-", " ").title(),
        "description": f"The {agent} agent",
        "instructions": "Answer briefly; ask before any refund.",
        "system_prompt": "You are a careful assistant.",
        "model": {
            "id": "openai/gpt-4o",
            "integration_id": ulid(now - timedelta(days=60), rng),
            "fallback_models": ["anthropic/claude-3-5-sonnet"],
            "max_tokens": 4096,
            "temperature": 0.2,
        },
        "settings": {
            "max_execution_time": 300,
            "max_iterations": 15,
            "tool_approval_required": "respect_tool",
            "tools": [],
        },
        "project_id": project,
    }


def _subnoto(store: SubnotoStore, rng: random.Random, times: _Times, size: int) -> SubnotoStore:
    for i in range(size):
        state = SUBNOTO_STATES[i % len(SUBNOTO_STATES)]
        report: Row = {
            "state": state,
            "summary": f"Envelope batch {3000 + i}: {state}",
            "timestamp": unix_ms(times.created(i)),
            "author": SUBNOTO_AUTHORS[i % len(SUBNOTO_AUTHORS)],
        }
        if i % 3 == 0:
            report["link"] = f"https://app.subnoto.com/envelopes/{uuid4(rng)}"
        store.append(
            {
                "taskUuid": uuid4(rng),
                "reportCount": 1 + int(rng.random() * 6),
                "latestReport": report,
            }
        )
    return store
