"""What the simulators' data generators share: the stores rows live in, the time and id
formats, and the moments tasks are created and updated at.

Generation is deterministic: the same seed, size and ``now`` give the same records. Times
span the three weeks before ``now``, and every tenth task of every vendor sits on one of a few
shared moments, so ties within and across vendors are everywhere the gateway must order or
page. Kept to plain loops so 50,000 tasks per vendor take a couple of seconds (the benchmarks
use that size).
"""

from __future__ import annotations

import base64
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from gateway.sandbox.common import Clock, Views

Row = dict[str, Any]

SPAN_SECONDS = 21 * 24 * 3600
TIE_EVERY = 10  # every tenth task of a vendor sits on a shared moment
TIE_MOMENTS = 3
AGENTS_PER_VENDOR = 3
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
    """Fixed-width ISO-8601 in UTC (always six fraction digits), as Python services write
    it. ``moment`` is UTC."""
    return moment.isoformat(timespec="microseconds")[:-6] + "Z"


def iso_milli(moment: datetime) -> str:
    """As JavaScript's ``toISOString`` writes it (orq). ``moment`` is UTC."""
    return moment.isoformat(timespec="milliseconds")[:-6] + "Z"


def unix_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def parse_iso(value: Any) -> datetime | None:
    """An ISO-8601 time as a database compares it (not as text); None when absent or
    unreadable, so a hand-loaded odd value sorts with the nulls instead of failing a list."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def sortable_time(value: Any) -> str | None:
    """A time as fixed-width UTC text (``iso_micro``), whose text order is time order: what a
    database compares, at the cost of a parse only for values not already in that form
    (the generated data's are, so a 50,000-row listing sorts quickly)."""
    if isinstance(value, str) and len(value) == 27 and value[10] == "T" and value[-1] == "Z":
        return value
    moment = parse_iso(value)
    return None if moment is None else iso_micro(moment.astimezone(UTC))


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


def copied(records: Any) -> Any:
    """Plain JSON values, copied: loaded records share nothing with the caller's."""
    return orjson.loads(orjson.dumps(records))


class Store:
    """What every vendor store carries besides its rows: the sandbox clock, and listings
    cached until ``changed()`` (a write, a progress step, a load, or a test editing rows)."""

    def __init__(self, clock: Clock) -> None:
        super().__init__()
        self.clock = clock
        self.views = Views()

    def changed(self) -> None:
        self.views.clear()


class AgentTasks(Store, dict[str, list[Row]]):
    """Tasks per agent (xpander's and orq's lists are per agent), each list newest first."""

    def __init__(self, clock: Clock, agents: list[str]) -> None:
        super().__init__(clock)
        self.agents = agents

    def file(
        self, tasks: list[Row], agent_of: Callable[[Row], str], newest: Callable[[Row], Any]
    ) -> None:
        """Replace every task, filed under its ``agent_of``, newest first by ``newest`` (a
        stable sort: ties keep the order given). Every known agent has a list, if empty."""
        self.clear()
        for agent in self.agents:
            self[agent] = []
        for task in sorted(tasks, key=newest, reverse=True):
            self.setdefault(agent_of(task), []).append(task)
        self.changed()


class Moments:
    """Creation and update moments in the three weeks before ``now``; every ``TIE_EVERY``-th
    task on one of the shared tie moments (for both times). One instance serves every
    vendor, so the tie moments are the same for all four; each vendor brings its own ``rng``
    so adding a vendor changes no other vendor's data."""

    def __init__(self, seed: int, now: datetime) -> None:
        rng = random.Random(f"moments:{seed}")
        self.now = now
        self.ties = [now - timedelta(hours=rng.randint(2, 24 * 20)) for _ in range(TIE_MOMENTS)]

    def tie(self, i: int) -> datetime | None:
        return self.ties[(i // TIE_EVERY) % TIE_MOMENTS] if i % TIE_EVERY == 0 else None

    def created(self, i: int, rng: random.Random) -> datetime:
        tie = self.tie(i)
        if tie is not None:
            return tie
        return self.now - timedelta(seconds=60 + rng.random() * SPAN_SECONDS)

    def updated(self, i: int, created: datetime, rng: random.Random) -> datetime:
        """Mostly within hours of creation, never after ``now``."""
        if self.tie(i) is not None:
            return created
        room = (self.now - created).total_seconds()
        return created + timedelta(seconds=min(room, rng.expovariate(1 / 5400)))
