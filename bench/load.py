"""Bounded load with a failing vendor: ``python -m bench.load [--clients N] [--seconds S]``.

N concurrent clients query for a fixed time while the sandbox makes orq fail (errors and
timeouts). Prints requests served, errors by ``extensions.code``, p50/p99, and checks that
nothing else was lost: every answer has the healthy vendors' part. Loopback only; stops by
itself.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Iterator

import httpx

from bench.harness import gateway_process, load, sandbox_process, set_knobs
from gateway.core.records import Vendor

QUERY = {
    "query": "{ tasks(first: 30) { missingVendors vendorParts { vendor ok } "
    "nodes { id vendor status } } }"
}
FAILING = Vendor.ORQ
HEALTHY = {v.name for v in Vendor if v is not FAILING}


def check(response: httpx.Response) -> Iterator[str]:
    """Error codes of one answer; "LOST" if a healthy vendor's part is missing."""
    if response.status_code != 200:
        yield f"HTTP_{response.status_code}"
        return
    body = response.json()
    for error in body.get("errors", []):
        yield error["extensions"]["code"]
    parts = {p["vendor"]: p["ok"] for p in body["data"]["tasks"]["vendorParts"]}
    if not all(parts.get(v) for v in HEALTHY):
        yield "LOST"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--error-rate", type=float, default=0.5)
    parser.add_argument("--timeout-rate", type=float, default=0.1)
    args = parser.parse_args()
    with (
        sandbox_process(1000) as sandbox,
        gateway_process(
            sandbox,
            vendor={"timeout": 1, "cache_ttl": 1, "first_page_ttl": 0.5},
        ) as (gateway, _),
    ):
        set_knobs(
            sandbox,
            FAILING,
            error_rate=args.error_rate,
            error_status=503,
            timeout_rate=args.timeout_rate,
        )
        run = asyncio.run(
            load(
                f"{gateway}/graphql",
                QUERY,
                concurrency=args.clients,
                seconds=args.seconds,
                check=check,
            )
        )
    lost = run.codes.pop("LOST", 0)
    print(
        f"load: {args.clients} clients for {args.seconds:.0f} s, {FAILING.value} failing "
        f"(errors {args.error_rate:.0%}, timeouts {args.timeout_rate:.0%})"
    )
    print(
        f"load: {len(run.latencies)} requests served, {run.rate:.0f} req/s, "
        f"p50 {run.p50:.1f} ms, p99 {run.pct(0.99):.1f} ms"
    )
    print(f"load: errors by code: {dict(sorted(run.codes.items())) or 'none'}")
    print(
        f"load: answers missing a healthy vendor's data: {lost} ({'PASS' if lost == 0 else 'FAIL'})"
    )
    if lost:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
