"""``python -m bench budget``: issue 16, vendor budgets and an answer on time.

(a) Six clients for 70 s against the sandbox with orq's plan limit at 30 calls a minute (its
``per_minute`` knob: a rolling minute, 429 beyond it), the gateway configured with
``[vendors.orq] max_requests_per_minute = 30``; the default query (``tasks(first: 20)``,
default order, ``vendorParts``), every third request with ``fresh: true``. Printed: calls
orq received (the sandbox's counters), 429s it answered (the gateway's
``gateway_upstream_calls_total{status="429"}``: every refusal reaches it), answers served,
and the share of answers whose orq part was fresh, stale or missing. Target: no 429. The full
run also measures the same load without ``max_requests_per_minute``: the gateway then keeps
to the limit orq states in its ``X-RateLimit-Limit`` (the issue's "before", 48 calls received
and 18 refused, was measured before the gateway had budgets at all).

(b) One vendor hanging (the sandbox's ``hang`` knob: it holds every request): p50/p99 of
every answer, against the same run's baseline with no vendor hanging. Target: p99 <=
``graphql.answer_within`` + 10%.

``--quick`` (about 15 s of load): shorter runs, and ``answer_within = 1`` with 1 s TTLs so
that (b) meets the hanging vendor within its few seconds.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from bench.harness import Run, counters, gateway_process, load, reset_counters, set_knobs
from bench.harness import sandbox_process as sandbox_at
from gateway.config import DEFAULT_ANSWER_WITHIN_SECONDS
from gateway.core.records import Vendor

CLIENTS = 6
LIMITED = Vendor.ORQ
PER_MINUTE = 30
HANGING = Vendor.ORQ
SIZE, QUICK_SIZE = 1000, 300
"""Tasks per vendor: orq's three agents hold about 333 each, two pages of its whole read."""
QUERY = """query Page($fresh: Boolean = false) {
  tasks(first: 20, fresh: $fresh) {
    missingVendors
    vendorParts { vendor ok stale }
    nodes { id vendor status title updatedAt }
  }
}"""
PLAIN = {"query": QUERY}
FRESH = {"query": QUERY, "variables": {"fresh": True}}
TARGET_SLACK = 1.10


def orq_part(response: httpx.Response, vendor: Vendor) -> Iterator[str]:
    """How ``vendor``'s part of one answer came: fresh, stale or missing (or the HTTP status
    when there was no answer), and every error code of the answer."""
    if response.status_code != 200:
        yield f"HTTP_{response.status_code}"
        return
    body = response.json()
    for error in body.get("errors", []):
        yield error.get("extensions", {}).get("code", "NO_CODE")
    parts = {p["vendor"]: p for p in body["data"]["tasks"]["vendorParts"]}
    part = parts[vendor.name]
    yield "missing" if not part["ok"] else "stale" if part["stale"] else "fresh"


def metric(gateway: str, name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` (exposed name) that carry ``labels``."""
    text = httpx.get(f"{gateway}/metrics").text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )


PART_STATES = ("fresh", "stale", "missing")


def shares(run: Run) -> str:
    total = sum(run.codes.get(k, 0) for k in PART_STATES) or 1
    return ", ".join(f"{k} {run.codes.get(k, 0) / total:.0%}" for k in PART_STATES)


def limited(sandbox: str, quick: bool, budget: bool) -> list[str]:
    """(a): the load against orq's plan limit, with or without the gateway's budget."""
    seconds = 6.0 if quick else 70.0
    vendors: dict[str, Any] = {LIMITED.value: {"max_requests_per_minute": PER_MINUTE}}
    with gateway_process(sandbox, vendors=vendors if budget else {}) as (gateway, _):
        reset_counters(sandbox)
        set_knobs(sandbox, LIMITED, per_minute=PER_MINUTE)  # an empty window from here
        run = asyncio.run(
            load(
                f"{gateway}/graphql",
                None,
                concurrency=CLIENTS,
                seconds=seconds,
                bodies=[PLAIN, PLAIN, FRESH],
                check=lambda r: orq_part(r, LIMITED),
            )
        )
        received = counters(sandbox)[LIMITED]
        refused = metric(
            gateway, "gateway_upstream_calls_total", vendor=LIMITED.value, status="429"
        )
        set_knobs(sandbox, LIMITED, per_minute=0)
    name = "configured" if budget else "not configured (limit learned from orq's headers)"
    errors = {k: v for k, v in run.codes.items() if k not in PART_STATES}
    lines = [
        f"budget (a) {name}: {CLIENTS} clients for {seconds:.0f} s, {LIMITED.value} limited to "
        f"{PER_MINUTE}/min, every third request fresh: true",
        f"budget (a) {name}: {LIMITED.value} received {received} calls, answered 429 to "
        f"{refused:.0f}" + (f" (target 0: {'PASS' if refused == 0 else 'MISS'})" if budget else ""),
        f"budget (a) {name}: {len(run.latencies)} answers served ({run.rate:.0f}/s, p50 "
        f"{run.p50:.1f} ms, p99 {run.pct(0.99):.1f} ms); {LIMITED.value}'s part: {shares(run)}; "
        f"error codes {dict(sorted(errors.items())) or 'none'}",
    ]
    return lines


def hanging(sandbox: str, quick: bool) -> list[str]:
    """(b): every answer's latency with one vendor held, against none held, in one run."""
    within = 1.0 if quick else DEFAULT_ANSWER_WITHIN_SECONDS
    baseline_seconds, hang_seconds = (2.0, 5.0) if quick else (20.0, 40.0)
    vendor: dict[str, Any] = {"cache_ttl": 1, "first_page_ttl": 1} if quick else {}
    graphql = {"answer_within": within}
    with gateway_process(sandbox, graphql=graphql, vendor=vendor) as (gateway, _):
        url = f"{gateway}/graphql"

        def measure(seconds: float) -> Run:
            return asyncio.run(
                load(
                    url,
                    PLAIN,
                    concurrency=CLIENTS,
                    seconds=seconds,
                    check=lambda r: orq_part(r, HANGING),
                )
            )

        baseline = measure(baseline_seconds)
        set_knobs(sandbox, HANGING, hang=True)
        try:
            held = measure(hang_seconds)
            slow = metric(gateway, "gateway_vendor_slow_total", vendor=HANGING.value)
        finally:
            set_knobs(sandbox, HANGING, hang=False)
    target = within * 1000 * TARGET_SLACK
    p99 = held.pct(0.99)
    codes = Counter({k: v for k, v in held.codes.items() if k not in PART_STATES})
    return [
        f"budget (b): {CLIENTS} clients, answer_within {within:g} s; no vendor hanging "
        f"({baseline_seconds:.0f} s): {len(baseline.latencies)} answers, p50 "
        f"{baseline.p50:.1f} ms, p99 {baseline.pct(0.99):.1f} ms",
        f"budget (b): {HANGING.value} hanging ({hang_seconds:.0f} s): {len(held.latencies)} "
        f"answers, p50 {held.p50:.1f} ms, p99 {p99:.1f} ms (x{held.p50 / baseline.p50:.1f} and "
        f"x{p99 / baseline.pct(0.99):.1f} the baseline); target p99 <= {target:.0f} ms: "
        f"{'PASS' if p99 <= target else 'MISS'}",
        f"budget (b): {HANGING.value}'s part: {shares(held)}; answers marked slow "
        f"(gateway_vendor_slow_total) {slow:.0f}; codes {dict(sorted(codes.items()))}",
    ]


def run(quick: bool) -> list[str]:
    """The figures as lines to print."""
    with sandbox_at(QUICK_SIZE if quick else SIZE) as sandbox:
        lines = limited(sandbox, quick, budget=True)
        if not quick:
            lines += limited(sandbox, quick, budget=False)
        return lines + hanging(sandbox, quick)
