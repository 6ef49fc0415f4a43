"""The vendor budgets' shared window: one rolling window per vendor in Redis, drawn from
atomically by every replica (``gateway.core.budget`` decides what to do with the answers).

Per vendor, under one hash tag (one Redis Cluster slot):

- ``…:window``: a sorted set of the calls granted in the last window, scored by the moment
  (ms); a grant is one ``ZADD`` of a unique member, made in the same script that counted,
  so two replicas can never both take the last call.
- ``…:block``: until when (ms) the vendor asked for silence (a 429, ``Remaining: 0``).
- ``…:limit``: the lowest ``X-RateLimit-Limit`` the vendor has sent lately.

And ``…:replicas``: every replica that drew lately, scored by when: the count a replica
remembers to take its share when Redis goes away.

Time is Redis's own (``TIME``), so replicas' clocks never disagree about a window; a test
passes its clock instead (``now_ms``).
"""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from gateway.core.codec import KEY_PREFIX
from gateway.core.records import Vendor

_NOW = """
local now = tonumber(ARGV[1])
if now < 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
"""

TAKE = (
    _NOW
    + """
local window, configured, reserve = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local background, peek = ARGV[5] == '1', ARGV[6] == '1'
local seen = tonumber(ARGV[9])
redis.call('ZADD', KEYS[4], now, ARGV[8])
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now - seen)
redis.call('PEXPIRE', KEYS[4], seen)
local replicas = redis.call('ZCARD', KEYS[4])
local limit = configured
local learned = tonumber(redis.call('GET', KEYS[3]) or '0') or 0
if learned > 0 and (limit == 0 or learned < limit) then limit = learned end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local used = redis.call('ZCARD', KEYS[1])
local blocked = (tonumber(redis.call('GET', KEYS[2]) or '0') or 0) - now
if blocked > 0 then return {0, used, blocked, limit, replicas, 1} end
local cap = limit
if background then cap = limit - math.ceil(limit * reserve) end
if limit == 0 or used < cap then
  if not peek then
    redis.call('ZADD', KEYS[1], now, ARGV[7])
    redis.call('PEXPIRE', KEYS[1], window)
    used = used + 1
  end
  return {1, used, 0, limit, replicas, 0}
end
local wait = window
if cap > 0 then
  local oldest = redis.call('ZRANGE', KEYS[1], used - cap, used - cap, 'WITHSCORES')
  wait = math.max(1, tonumber(oldest[2]) + window - now)
end
return {0, used, wait, limit, replicas, 0}
"""
)
"""ARGV: now (ms, -1: Redis's), window (ms), configured limit (0: none), interactive
reserve (share), background ('1'), peek ('1': count, take nothing), member, replica,
replicas-seen span (ms). Answers ``{granted, used, wait ms, limit in force, replicas,
blocked}``."""

LEARN = (
    _NOW
    + """
local quiet, limit, keep = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
if quiet > 0 then
  local current = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
  if now + quiet > current then redis.call('SET', KEYS[1], now + quiet, 'PX', quiet) end
end
if limit > 0 then redis.call('SET', KEYS[2], limit, 'PX', keep) end
return 1
"""
)
"""ARGV: now (ms, -1: Redis's), silence asked (ms, 0: none), limit the vendor sent (0: none),
how long a learned limit is kept (ms)."""


@dataclass(frozen=True, slots=True)
class Draw:
    """One answer of the shared window."""

    granted: bool
    used: int
    wait: float
    """Seconds until a call of this priority may go (0 when granted)."""
    limit: int | None
    replicas: int
    blocked: bool
    """Refused because the vendor asked for silence (not because the window is full)."""


def _keys(vendor: Vendor) -> tuple[str, str, str]:
    base = f"{KEY_PREFIX}:{{budget}}:{vendor.value}"
    return f"{base}:window", f"{base}:block", f"{base}:limit"


REPLICAS_KEY = f"{KEY_PREFIX}:{{budget}}:replicas"


class SharedWindow:
    """The scripts above on one Redis client (the page cache's). Redis errors propagate:
    the caller falls back to its share."""

    def __init__(self, client: Redis, replica: str, *, window: float, seen: float) -> None:
        self.client = client
        self.replica = replica
        self.window_ms = round(window * 1000)
        self.seen_ms = round(seen * 1000)
        self._take = client.register_script(TAKE)
        self._learn = client.register_script(LEARN)
        self._sequence = 0

    async def draw(
        self,
        vendor: Vendor,
        configured: int | None,
        reserve: float,
        background: bool,
        *,
        peek: bool = False,
        now: float | None = None,
    ) -> Draw:
        self._sequence += 1
        window, block, limit = _keys(vendor)
        answer = await self._take(
            keys=[window, block, limit, REPLICAS_KEY],
            args=[
                _ms(now),
                self.window_ms,
                configured or 0,
                repr(reserve),
                "1" if background else "0",
                "1" if peek else "0",
                f"{self.replica}:{self._sequence}",
                self.replica,
                self.seen_ms,
            ],
        )
        granted, used, wait, in_force, replicas, blocked = (int(x) for x in answer)
        return Draw(
            bool(granted), used, wait / 1000, in_force or None, max(1, replicas), bool(blocked)
        )

    async def learn(
        self, vendor: Vendor, quiet: float, limit: int | None, keep: float, now: float | None
    ) -> None:
        _, block, learned = _keys(vendor)
        await self._learn(
            keys=[block, learned],
            args=[_ms(now), max(0, round(quiet * 1000)), limit or 0, round(keep * 1000)],
        )


def _ms(now: float | None) -> int:
    return -1 if now is None else round(now * 1000)
