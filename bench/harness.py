"""Processes and load for the benchmarks: the sandbox, the gateway and a baseline each in its
own process on loopback, and a bounded load generator. Everything stops by itself."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from gateway.core.records import Vendor
from gateway.sandbox import SANDBOX_CREDENTIALS, Sandbox, SandboxOptions

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def wait_until_up(url: str, process: subprocess.Popen[bytes], seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: process exited with {process.returncode}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


@contextlib.contextmanager
def process(args: list[str], probe: str, env: dict[str, str] | None = None) -> Iterator[int]:
    proc = subprocess.Popen(
        args,
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until_up(probe, proc)
        yield proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@contextlib.contextmanager
def sandbox_process(size: int) -> Iterator[str]:
    port = free_port()
    url = f"http://{HOST}:{port}"
    with process(
        [sys.executable, "-m", "gateway.cli", "sandbox", "--port", str(port), "--size", str(size)],
        f"{url}/agentex/_sandbox/knobs",
    ):
        yield url


def agents() -> dict[Vendor, list[str]]:
    """The sandbox's agents depend on its seed only, not on its size."""
    sandbox = Sandbox(SandboxOptions(size=1))
    return {v: sandbox.agents(v) for v in Vendor}


@contextlib.contextmanager
def gateway_process(sandbox_url: str, **config: Any) -> Iterator[tuple[str, int]]:
    """``task-gateway serve`` with one worker against the sandbox; ``config`` adds TOML
    (``vendor``: keys for every vendor; ``vendors``: ``{"orq": {…}}`` for one)."""
    lines = ["[auth]", "open = true", "[limits]", "rate_per_second = 0"]
    graphql = config.pop("graphql", {})
    if graphql:
        lines.append("[graphql]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in graphql.items()]
    for vendor, vendor_agents in agents().items():
        lines += [f"[vendors.{vendor.value}]", f'base_url = "{sandbox_url}/{vendor.value}"']
        if vendor_agents:
            lines.append(f"agents = {json.dumps(vendor_agents)}")
        for key, value in config.get("vendor", {}).items():
            lines.append(f"{key} = {json.dumps(value)}")
        for key, value in config.get("vendors", {}).get(vendor.value, {}).items():
            lines.append(f"{key} = {json.dumps(value)}")
    if "cache" in config:
        lines.append("[cache]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in config["cache"].items()]
    if "index" in config:
        lines.append("[index]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in config["index"].items()]
    path = Path(tempfile.mkdtemp()) / "gateway.toml"
    path.write_text("\n".join(lines) + "\n")
    env = {f"TASK_GATEWAY_{v.name}_API_KEY": k for v, k in SANDBOX_CREDENTIALS.items() if k}
    port = free_port()
    url = f"http://{HOST}:{port}"
    with process(
        [sys.executable, "-m", "gateway.cli", "serve", "--config", str(path), "--port", str(port)],
        f"{url}/healthz",
        env,
    ) as pid:
        yield url, pid


def set_knobs(sandbox_url: str, vendor: Vendor, **knobs: Any) -> None:
    httpx.patch(f"{sandbox_url}/{vendor.value}/_sandbox/knobs", json=knobs).raise_for_status()


def counters(sandbox_url: str) -> dict[Vendor, int]:
    return {
        v: sum(httpx.get(f"{sandbox_url}/{v.value}/_sandbox/counters").json().values())
        for v in Vendor
    }


def reset_counters(sandbox_url: str) -> None:
    for vendor in Vendor:
        httpx.delete(f"{sandbox_url}/{vendor.value}/_sandbox/counters")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int, field_name: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    return 0


@dataclass
class Run:
    latencies: list[float] = field(default_factory=list)
    codes: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    rate_override: float | None = None
    percentiles: dict[str, float] = field(default_factory=dict)
    """From wrk: "50%", "99%" … in milliseconds."""

    @property
    def rate(self) -> float:
        if self.rate_override is not None:
            return self.rate_override
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def pct(self, q: float) -> float:
        key = f"{q * 100:g}%"
        if key in self.percentiles:
            return self.percentiles[key]
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    @property
    def p50(self) -> float:
        if "50%" in self.percentiles:
            return self.percentiles["50%"]
        return statistics.median(self.latencies) * 1000 if self.latencies else float("nan")


async def load(
    url: str,
    body: dict[str, Any] | None,
    *,
    concurrency: int,
    seconds: float,
    rate: float | None = None,
    headers: dict[str, str] | None = None,
    check: Any = None,
    bodies: list[dict[str, Any]] | None = None,
) -> Run:
    """``concurrency`` clients for ``seconds`` (or paced at ``rate`` requests/s in total);
    with ``bodies``, each client sends them in turn instead of ``body``."""
    run = Run()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    deadline = time.perf_counter() + seconds
    interval = concurrency / rate if rate else 0.0
    async with httpx.AsyncClient(limits=limits, timeout=30, headers=headers) as client:

        async def worker() -> None:
            next_at = time.perf_counter()
            sent = 0
            while time.perf_counter() < deadline:
                payload = bodies[sent % len(bodies)] if bodies else body
                sent += 1
                started = time.perf_counter()
                if payload is None:
                    response = await client.get(url)
                else:
                    response = await client.post(url, json=payload)
                run.latencies.append(time.perf_counter() - started)
                if check is not None:
                    for code in check(response):
                        run.codes[code] = run.codes.get(code, 0) + 1
                if interval:
                    next_at += interval
                    await asyncio.sleep(max(0.0, next_at - time.perf_counter()))

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        run.seconds = time.perf_counter() - started
    return run


def sequential(
    url: str, body: dict[str, Any], count: int, headers: dict[str, str] | None = None
) -> Run:
    run = Run()
    with httpx.Client(timeout=30, headers=headers) as client:
        started = time.perf_counter()
        for _ in range(count):
            t0 = time.perf_counter()
            response = client.post(url, json=body)
            response.raise_for_status()
            run.latencies.append(time.perf_counter() - t0)
        run.seconds = time.perf_counter() - started
    return run


WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = [[%s]]
"""

WRK_PACING = """
-- wrk waits delay() ms before each request on a connection; a random rounding makes a
-- fractional mean, so the connections together send at the asked rate.
local pause = %f
function delay()
    local whole = math.floor(pause)
    if math.random() < pause - whole then whole = whole + 1 end
    return whole
end
"""


def wrk_load(
    url: str,
    body: dict[str, Any],
    *,
    connections: int,
    seconds: float,
    pause_ms: float | None = None,
) -> Run | None:
    """Throughput from ``wrk`` (Debian package), a load generator that does not compete with
    the server for the CPU the way a Python client does; None when it is not installed.
    ``pause_ms`` paces each connection (see ``wrk_paced``)."""
    import shutil

    if shutil.which("wrk") is None:
        return None
    script = Path(tempfile.mkdtemp()) / "post.lua"
    lua = WRK_SCRIPT % json.dumps(body)
    if pause_ms is not None:
        lua += WRK_PACING % max(0.0, pause_ms)
    script.write_text(lua)
    out = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{connections}",
            f"-d{max(1, int(seconds))}s",
            "--latency",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
    ).stdout
    run = Run(seconds=float(seconds))
    percentiles: dict[str, float] = {}
    for line in out.splitlines():
        parts = line.split()
        if line.startswith("Requests/sec:"):
            run.rate_override = float(parts[1])
        elif len(parts) > 3 and parts[1:3] == ["requests", "in"]:  # "N requests in 10.01s,"
            run.seconds = wrk_ms(parts[3].rstrip(",")) / 1000
        elif len(parts) == 2 and parts[0].endswith("%"):
            percentiles[parts[0]] = wrk_ms(parts[1])
    run.percentiles = percentiles
    return run


def wrk_paced(
    url: str, body: dict[str, Any], *, rate: float, connections: int, seconds: float
) -> Run | None:
    """``wrk`` sending about ``rate`` requests/s in all: each connection pauses between its
    requests so that pause + latency = connections / rate. The latency is not known before,
    so a first short run measures it and the second, reported run subtracts it. wrk times
    each request from its send, so the pause is not counted as latency."""
    cycle_ms = connections * 1000 / rate
    probe = wrk_load(url, body, connections=connections, seconds=3, pause_ms=cycle_ms)
    if probe is None or not probe.rate:
        return probe
    latency_ms = max(0.0, connections * 1000 / probe.rate - cycle_ms)
    return wrk_load(
        url, body, connections=connections, seconds=seconds, pause_ms=cycle_ms - latency_ms
    )


def wrk_ms(value: str) -> float:
    """wrk's "456.00us", "1.23ms", "1.02s" in milliseconds."""
    if value.endswith("us"):
        return float(value[:-2]) / 1000
    if value.endswith("ms"):
        return float(value[:-2])
    return float(value.rstrip("s")) * 1000
