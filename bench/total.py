"""``python -m bench total``: what ``totalCount`` adds to an uncached page.

The default query of the README example (default order ``UPDATED_AT DESC``, 50 tasks, its
12 fields) with ``totalCount``, every cache bypassed, against the slowest vendor alone
without it (the least an answer from all four can take), vendors at 20/50/80/120 ms. The
series are interleaved, so drift on a noisy machine hits them alike. Target: a ratio of at
most 1.03 (the totals come from the page responses already read, and any other counting
runs beside the page, not after it).
"""

from __future__ import annotations

from bench.harness import gateway_process, sandbox_process, sequential, set_knobs
from gateway.core.records import Vendor

FIELDS = (
    "id vendor nativeId agentId status vendorStatus title summary createdAt updatedAt userId link"
)
LATENCIES = {Vendor.AGENTEX: 20, Vendor.XPANDER: 50, Vendor.ORQ: 80, Vendor.SUBNOTO: 120}
BYPASS = {"x-cache-bypass": "1"}
TARGET = 1.03


def query(selection: str, vendors: str = "") -> dict[str, str]:
    narrowed = f", filter: {{vendors: [{vendors}]}}" if vendors else ""
    return {"query": f"query Page {{ tasks(first: 50{narrowed}) {{ {selection} }} }}"}


def run(quick: bool) -> list[str]:
    """The figures as lines to print."""
    count = 15 if quick else 60
    slowest = max(LATENCIES, key=LATENCIES.__getitem__)
    bodies = {
        "all four with totalCount": query(f"totalCount nodes {{ {FIELDS} }}"),
        "all four without": query(f"nodes {{ {FIELDS} }}"),
        f"{slowest.value} alone without": query(f"nodes {{ {FIELDS} }}", slowest.name),
    }
    with sandbox_process(300) as sandbox, gateway_process(sandbox) as (gateway, _):
        for vendor, ms in LATENCIES.items():
            set_knobs(sandbox, vendor, latency_ms=ms)
        url = f"{gateway}/graphql"
        for body in bodies.values():
            sequential(url, body, 3, BYPASS)  # warm connections and code paths
        runs = {name: sequential(url, body, 0, BYPASS) for name, body in bodies.items()}
        for _ in range(count):
            for name, body in bodies.items():
                runs[name].latencies += sequential(url, body, 1, BYPASS).latencies
    with_total = runs["all four with totalCount"]
    baseline = runs[f"{slowest.value} alone without"]
    ratio = with_total.p50 / baseline.p50
    return [
        "total: p50 "
        + ", ".join(f"{name} {r.p50:.1f} ms (p99 {r.pct(0.99):.1f})" for name, r in runs.items()),
        f"total: ratio with totalCount to the slowest vendor alone {ratio:.3f} "
        f"(target <= {TARGET}: {'PASS' if ratio <= TARGET else 'MISS'}); "
        f"to all four without totalCount "
        f"{with_total.p50 / runs['all four without'].p50:.3f}",
    ]
