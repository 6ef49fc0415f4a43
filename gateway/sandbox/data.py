"""Deterministic sandbox data: the same seed, size and ``now`` give the same records.

Per vendor: several agents, ``size`` tasks, every status value of that vendor, times over
the last three weeks, and deliberate ties (tasks sharing one timestamp, within a vendor and
across vendors) so ordering and paging are tested where they are hardest.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from gateway.core.statuses import AGENTEX_STATUS_MAP

SPAN = timedelta(days=21)
NIL_UUID = "00000000-0000-0000-0000-000000000000"
AGENTS_PER_VENDOR = 3
TIE_SHARE = 0.06

AGENTEX_STATUSES = [*AGENTEX_STATUS_MAP, "Running", "COMPLETED", "Failed", "reticulating", None]
XPANDER_STATUSES = ["pending", "executing", "paused", "error", "failed", "completed", "stopped"]
SUBNOTO_STATES = ["working", "complete", "idle", "failure"]
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
AUTHORS = [
    {"uuid": NIL_UUID, "email": "system@subnoto.com", "name": "System"},
    {"uuid": "5d1c0c9e-3f5b-4c55-9a57-0f1d1b0f7a01", "email": "ada@example.com", "name": "Ada"},
    {"uuid": "8e2b7f41-6a0d-4a8e-b1f2-2d9c4e6b3c02", "email": "lin@example.com", "name": "Lin"},
]


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def ulid(moment: datetime, rng: random.Random) -> str:
    """A ULID: 48 bits of milliseconds then 80 random bits, Crockford base32."""
    value = (int(moment.timestamp() * 1000) << 80) | rng.getrandbits(80)
    return "".join(CROCKFORD[(value >> (5 * i)) & 31] for i in reversed(range(26)))


@dataclass
class SandboxData:
    now: datetime
    trackers: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: dict[str, list[str]] = field(default_factory=dict)
    xpander: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    orq: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    subnoto: list[dict[str, Any]] = field(default_factory=list)
    agents: dict[str, list[str]] = field(default_factory=dict)


class _Times:
    """Random moments in the last weeks, a share of them on shared "tie" moments."""

    def __init__(self, rng: random.Random, now: datetime, ties: list[datetime]) -> None:
        self.rng, self.now, self.ties = rng, now, ties

    def created(self) -> datetime:
        if self.rng.random() < TIE_SHARE:
            return self.rng.choice(self.ties)
        return self.now - timedelta(seconds=self.rng.uniform(60, SPAN.total_seconds()))

    def after(self, start: datetime) -> datetime:
        if self.rng.random() < TIE_SHARE:
            tie = self.rng.choice(self.ties)
            if tie >= start:
                return tie
        room = max((self.now - start).total_seconds(), 0.0)
        return start + timedelta(seconds=round(self.rng.uniform(0, room), 3))


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def generate(size: int, seed: int, now: datetime) -> SandboxData:
    rng = random.Random(seed)
    now = now.astimezone(UTC).replace(microsecond=0)
    ties = [now - timedelta(hours=rng.randint(1, 24 * 20)) for _ in range(4)]
    times = _Times(rng, now, ties)
    data = SandboxData(now=now)
    # Agents come first, from their own generator: the same seed gives the same agents at
    # any size, so a client can be configured without loading the data.
    agent_rng = random.Random(f"agents:{seed}")
    data.agents = {
        "agentex": [_uuid(agent_rng) for _ in range(AGENTS_PER_VENDOR)],
        "xpander": [_uuid(agent_rng) for _ in range(AGENTS_PER_VENDOR)],
        "orq": [f"support-agent-{n}" for n in range(1, AGENTS_PER_VENDOR + 1)],
        "subnoto": [],
    }
    _agentex(data, rng, times, size)
    _xpander(data, rng, times, size)
    _orq(data, rng, times, size)
    _subnoto(data, rng, times, size)
    return data


def _agentex(data: SandboxData, rng: random.Random, times: _Times, size: int) -> None:
    agents = data.agents["agentex"]
    for i in range(size):
        created = times.created()
        task_id = _uuid(rng)
        events = [_uuid(rng) for _ in range(rng.randint(1, 4))]
        data.events[task_id] = events
        status = AGENTEX_STATUSES[i % len(AGENTEX_STATUSES)]
        tracker = {
            "id": _uuid(rng),
            "agent_id": agents[i % len(agents)],
            "task_id": task_id,
            "status": status,
            "status_reason": None if status is None else f"{status} after step {i % 7}",
            "last_processed_event_id": events[rng.randrange(len(events))],
            "created_at": iso(created),
            "updated_at": iso(times.after(created)),
        }
        data.trackers[str(tracker["id"])] = tracker


def _xpander(data: SandboxData, rng: random.Random, times: _Times, size: int) -> None:
    agents = data.agents["xpander"]
    org = _uuid(rng)
    users = [_uuid(rng) for _ in range(4)]
    every: list[dict[str, Any]] = []
    for i in range(size):
        agent = agents[i % len(agents)]
        created = times.created()
        status = XPANDER_STATUSES[i % len(XPANDER_STATUSES)]
        task: dict[str, Any] = {
            "id": _uuid(rng),
            "agent_id": agent,
            "user_id": users[i % len(users)] if i % 5 else None,
            "parent_task_id": None,
            "triggering_agent_id": None,
            "organization_id": org,
            "status": status,
            "source_node_type": ["sdk", "webhook", "assistant"][i % 3],
            "created_at": iso(created),
            "updated_at": iso(times.after(created)),
            "title": f"Task {i}: summarize ticket #{1000 + i}",
            "result": f"Done: summary {i}" if status == "completed" else None,
        }
        if every and i % 6 == 5:  # a sub-task delegated by an older task of another agent
            parent = rng.choice([t for t in every[-30:] if t["agent_id"] != agent] or every)
            task["parent_task_id"] = parent["id"]
            task["triggering_agent_id"] = parent["agent_id"]
        every.append(task)
    for agent in agents:
        data.xpander[agent] = [t for t in every if t["agent_id"] == agent]


def _orq(data: SandboxData, rng: random.Random, times: _Times, size: int) -> None:
    agents = data.agents["orq"]
    workspace = _uuid(rng)
    states: list[dict[str, Any]] = [
        {"waiting_for_approval": False, "inactive": False, "error": None},
        {"waiting_for_approval": True, "inactive": False, "error": None},
        {"waiting_for_approval": False, "inactive": True, "error": None},
        {"waiting_for_approval": False, "inactive": True, "error": "Tool call failed: 503"},
        {"waiting_for_approval": True, "inactive": False, "error": "Model timeout"},
    ]
    for agent in agents:
        data.orq[agent] = []
    for i in range(size):
        agent = agents[i % len(agents)]
        created = times.created()
        prompt, completion = rng.randint(100, 4000), rng.randint(50, 2000)
        task = {
            "_id": ulid(created, rng),
            "agent_manifest_snapshot": {
                "_id": ulid(created, rng),
                "key": agent,
                "role": "Support",
                "description": "Answers support tickets",
                "instructions": "Be brief.",
                "system_prompt": "",
                "model": {
                    "id": "openai/gpt-4o",
                    "integration_id": None,
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
                "project_id": workspace,
            },
            "created_by_id": _uuid(rng),
            "updated_by_id": _uuid(rng),
            "created": iso(created),
            "updated": iso(times.after(created)),
            "name": f"Ticket {2000 + i}",
            "workspace_id": workspace,
            "memory": {"entity_id": f"user-{i % 9}"},
            "metadata": {},
            "state": {
                **states[i % len(states)],
                "iteration": rng.randint(1, 9),
                "accumulated_execution_time": round(rng.uniform(0.5, 90), 3),
            },
            "metrics": {
                "input_cost": round(prompt * 2.5e-6, 6),
                "output_cost": round(completion * 1e-5, 6),
                "total_cost": round(prompt * 2.5e-6 + completion * 1e-5, 6),
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            },
        }
        data.orq[agent].append(task)
    for agent in agents:
        data.orq[agent].sort(key=lambda t: t["_id"], reverse=True)


def _subnoto(data: SandboxData, rng: random.Random, times: _Times, size: int) -> None:
    for i in range(size):
        moment = times.created()
        state = SUBNOTO_STATES[i % len(SUBNOTO_STATES)]
        report: dict[str, Any] = {
            "state": state,
            "summary": f"Contract batch {i}: {state}",
            "timestamp": int(moment.timestamp() * 1000),
            "author": AUTHORS[i % len(AUTHORS)],
        }
        if i % 3 == 0:
            report["link"] = f"https://app.subnoto.com/envelopes/{i}"
        data.subnoto.append(
            {"taskUuid": _uuid(rng), "reportCount": 1 + i % 5, "latestReport": report}
        )
