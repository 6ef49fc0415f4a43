"""Fuzz a running gateway as an attacker would: ``python -m bench.fuzz [--cases N]``
(or ``python -m bench fuzz --cases N``).

The sandbox and a ``task-gateway serve`` with a client key run in their own processes on
loopback (``bench/harness.py``). Two kinds of cases:

* **generated operations**: ``--cases`` GraphQL documents from hypothesis-graphql against the
  schema the gateway serves (read by introspection), valid and invalid ones, queries and
  mutations. Each is sent once with the key, and once without it over another transport
  (GET parameters, percent-encoded names, form, multipart, ``application/graphql``,
  ``text/plain``, an HTML ``Accept``);
* **raw HTTP mutations**: ``--raw`` requests written byte by byte (no client library in
  the way): methods, paths, content types, body encodings (UTF-16, Latin-1, invalid UTF-8,
  gzip, chunked), header casing, key placement, oversized bodies, headers, URLs and values,
  deeply nested JSON, batches, persisted-query hashes; plus WebSocket handshakes.

It prints the count of cases, of 5xx answers (target 0), of answers carrying data to a
caller without a valid key (target 0), of answers repeating a key (target 0), and the
slowest answer. Not part of the test suite: it takes minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import json
import random
import re
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import graphql
import httpx
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from hypothesis_graphql import Mode, mutations, queries

from bench.harness import HOST, agents, free_port, process, sandbox_process
from gateway.sandbox import SANDBOX_CREDENTIALS

KEY = "fuzz-client-key-7f3a9c"
VENDOR_KEYS = [k for k in SANDBOX_CREDENTIALS.values() if k]
CONCURRENCY = 8
ANSWER_TIMEOUT = 30.0
STREAM_SECONDS = 3.0
"""A streaming answer (SSE, multipart subscriptions) is read this long, then cut."""
PLAIN_QUERY = "{ tasks(first: 5) { nodes { id title status } } }"
MUTATION = 'mutation { updateTracker(input: {id: "x", status: "y"}) { id } }'
SUBSCRIPTION = "subscription { taskChanged { id status } }"
DATA = re.compile(rb'"data"\s*:\s*[\[{"0-9tf]')
"""A GraphQL answer that carries data (``"data": null`` does not)."""


@dataclass
class Tally:
    cases: int = 0
    server_errors: list[str] = field(default_factory=list)
    leaks: list[str] = field(default_factory=list)
    secrets: list[str] = field(default_factory=list)
    no_answer: list[str] = field(default_factory=list)
    internal: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    slowest: tuple[float, str] = (0.0, "")
    latencies: list[float] = field(default_factory=list)
    generated: int = 0
    healthz_after: int = 0
    healthz_slowest: float = 0.0
    """The slowest ``/healthz`` probe while the cases ran."""
    """/healthz's status once every case has run: the gateway survived."""

    def record(self, label: str, status: int, body: bytes, seconds: float, keyed: bool) -> None:
        self.cases += 1
        self.statuses[status] = self.statuses.get(status, 0) + 1
        self.latencies.append(seconds)
        if seconds > self.slowest[0]:
            self.slowest = (seconds, label)
        if status >= 500:
            self.server_errors.append(f"{status} {label}: {body[:200]!r}")
        if b"INTERNAL_SERVER_ERROR" in body:
            self.internal += 1
        if not keyed and status < 300 and carries_data(label, body):
            self.leaks.append(f"{status} {label}: {body[:200]!r}")
        if any(secret.encode() in body for secret in (KEY, *VENDOR_KEYS)):
            self.secrets.append(label)


def carries_data(label: str, body: bytes) -> bool:
    """Task data in an answer: a GraphQL ``data`` object, a subscription event, an export."""
    if label.split()[1].startswith("/export"):
        return bool(body.strip())
    return bool(DATA.search(body)) or b"event: next" in body


# -- the gateway under test -----------------------------------------------------------------
@contextlib.contextmanager
def gateway(sandbox_url: str) -> Iterator[str]:
    """``task-gateway serve`` with one client key. Failed attempts are not throttled here, so
    every unauthenticated case reaches authentication instead of a 429."""
    lines = [
        "[auth]",
        f'api_keys = ["{KEY}"]',
        "failed_attempts_per_minute = 100000",
        "[limits]",
        "rate_per_second = 0",
    ]
    for vendor, vendor_agents in agents().items():
        lines += [f"[vendors.{vendor.value}]", f'base_url = "{sandbox_url}/{vendor.value}"']
        if vendor_agents:
            lines.append(f"agents = {json.dumps(vendor_agents)}")
    path = Path(tempfile.mkdtemp()) / "gateway.toml"
    path.write_text("\n".join(lines) + "\n")
    env = {f"TASK_GATEWAY_{v.name}_API_KEY": k for v, k in SANDBOX_CREDENTIALS.items() if k}
    port = free_port()
    url = f"http://{HOST}:{port}"
    command = [sys.executable, "-m", "gateway.cli", "serve", "--config", str(path)]
    with process([*command, "--port", str(port)], f"{url}/healthz", env):
        yield url


def served_schema(url: str) -> graphql.GraphQLSchema:
    answer = httpx.post(
        f"{url}/graphql",
        json={"query": graphql.get_introspection_query()},
        headers={"authorization": f"Bearer {KEY}"},
        timeout=30,
    ).json()
    return graphql.build_client_schema(answer["data"])


# -- generated operations -------------------------------------------------------------------
def generated(schema: graphql.GraphQLSchema, count: int, seed: int) -> list[str]:
    """``count`` documents: three in four valid, the rest invalid (hypothesis-graphql's
    negative mode), one in five a mutation."""
    scalars = {
        "DateTime": st.datetimes().map(lambda d: graphql.StringValueNode(value=d.isoformat())),
        "JSON": st.just(graphql.StringValueNode(value="{}")),
    }
    strategy = st.one_of(
        *(
            maker(schema, custom_scalars=scalars, mode=mode)  # type: ignore[arg-type]
            for maker in (queries, queries, queries, queries, mutations)
            for mode in (Mode.POSITIVE, Mode.POSITIVE, Mode.POSITIVE, Mode.NEGATIVE)
        )
    )
    found: list[str] = []

    @settings(
        max_examples=count,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    @hypothesis_seed(seed)
    def collect(document: object) -> None:
        found.append(str(document))

    collect()
    return found


# -- raw HTTP ------------------------------------------------------------------------------
@dataclass
class Raw:
    label: str
    head: bytes
    body: bytes
    keyed: bool


async def send(url: str, raw: Raw) -> tuple[int, bytes, float]:
    """Write the bytes, read one answer (a stream for at most ``STREAM_SECONDS``).

    The connection is kept alive (no ``Connection: close``) and the answer read while the
    body is still being written: a server that answers before reading a body, then closes,
    would otherwise reset the connection and drop its answer unread."""
    host, port = url.removeprefix("http://").split(":")
    started = time.perf_counter()
    reader, writer = await asyncio.open_connection(host, int(port))
    writing = asyncio.create_task(_write(writer, raw.head + raw.body))
    answer = b""
    try:
        deadline = started + ANSWER_TIMEOUT
        while not _complete(answer, raw.head.startswith(b"HEAD ")):
            remaining = deadline - time.perf_counter()
            if _streaming(answer):
                remaining = min(remaining, STREAM_SECONDS)
            try:
                chunk = await asyncio.wait_for(reader.read(65536), max(remaining, 0.01))
            except (TimeoutError, ConnectionError):
                break
            if not chunk:
                break
            answer += chunk
        seconds = time.perf_counter() - started
    finally:
        writing.cancel()
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
    match = re.match(rb"HTTP/1\.[01] (\d{3})", answer)
    status = int(match.group(1)) if match else 0
    return status, answer.partition(b"\r\n\r\n")[2], seconds


async def _write(writer: asyncio.StreamWriter, data: bytes) -> None:
    with contextlib.suppress(ConnectionError):
        writer.write(data)
        await writer.drain()


def _streaming(answer: bytes) -> bool:
    head = answer.partition(b"\r\n\r\n")[0].lower()
    return b"text/event-stream" in head or b"multipart/mixed" in head


def _complete(answer: bytes, head_only: bool) -> bool:
    """Whether ``answer`` holds a whole HTTP response (after any 1xx interim ones)."""
    head, separator, body = answer.partition(b"\r\n\r\n")
    if not separator:
        return False
    status = re.match(rb"HTTP/1\.[01] (\d{3})", head)
    if status and status.group(1).startswith(b"1") and status.group(1) != b"101":
        return _complete(body, head_only)
    if head_only or (status and status.group(1) in (b"101", b"204", b"304")):
        return True
    length = re.search(rb"\r\ncontent-length:\s*(\d+)", head.lower())
    if length:
        return len(body) >= int(length.group(1))
    if b"\r\ntransfer-encoding: chunked" in head.lower():
        return body.endswith(b"0\r\n\r\n")
    return False


def request(
    method: str,
    target: str,
    headers: list[tuple[str, str]],
    body: bytes = b"",
    *,
    length: bool = True,
) -> tuple[bytes, bytes]:
    lines = [f"{method} {target} HTTP/1.1", f"Host: {HOST}"]
    lines += [f"{name}: {value}" for name, value in headers]
    if length and (body or method not in ("GET", "HEAD")):
        lines.append(f"Content-Length: {len(body)}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")
    return head, body


AUTH_VARIANTS: list[tuple[str, list[tuple[str, str]], bool]] = [
    ("no key", [], False),
    ("wrong key", [("Authorization", "Bearer not-the-key")], False),
    ("empty bearer", [("authorization", "Bearer ")], False),
    ("key as a prefix", [("Authorization", f"Bearer {KEY[:-1]}")], False),
    ("key plus a byte", [("Authorization", f"Bearer {KEY}x")], False),
    ("basic scheme", [("Authorization", f"Basic {KEY}")], False),
    ("key in a cookie", [("Cookie", f"api_key={KEY}")], False),
    ("wrong x-api-key", [("X-API-KEY", "nope")], False),
    ("two wrong headers", [("authorization", "Bearer a"), ("authorization", "Bearer b")], False),
    ("key", [("Authorization", f"Bearer {KEY}")], True),
    ("key, upper header", [("AUTHORIZATION", f"Bearer {KEY}")], True),
    ("key, lower scheme", [("authorization", f"bearer {KEY}")], True),
    ("x-api-key mixed case", [("X-Api-Key", KEY)], True),
]
ACCEPTS = [
    None,
    "application/json",
    "text/html",
    "text/html,application/xhtml+xml,*/*;q=0.8",
    "application/graphql-response+json",
    "multipart/mixed;subscriptionSpec=1.0",
    "text/event-stream",
    "*/*",
    "TEXT/HTML",
]
PATHS = [
    "/graphql",
    "/graphql",
    "/graphql",
    "/graphql/",
    "/GRAPHQL",
    "//graphql",
    "/graphql;x",
    "/export/tasks.csv",
    "/export/tasks.ndjson",
    "/graphql/assets/..%2f..%2fpyproject.toml",
    "/metrics",
    "/healthz",
]
METHODS = ["GET", "POST", "POST", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "FUZZ"]


def documents(rng: random.Random) -> object:
    """A JSON payload (or a raw document) as a client, or an attacker, might send it."""
    choice = rng.randrange(14)
    if choice == 0:
        return [{"query": PLAIN_QUERY}, {"query": PLAIN_QUERY}]
    if choice == 1:
        return {"query": PLAIN_QUERY, "operationName": {"a": 1}}
    if choice == 2:
        return {"query": PLAIN_QUERY, "variables": "not an object"}
    if choice == 3:
        sha = "0" * 64
        return {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": sha}}}
    if choice == 4:
        return {"query": "{ " + " ".join(f"a{i}: vendors {{ vendor }}" for i in range(5000)) + "}"}
    if choice == 5:
        return {"query": "query($s: String) { task(id: $s) { id } }", "variables": {"s": "\ud800"}}
    if choice == 6:
        return {"query": PLAIN_QUERY.replace("5", "5" * 400)}
    if choice == 7:
        return {"query": SUBSCRIPTION}
    if choice == 8:
        return {"query": MUTATION}
    if choice == 9:
        return {"query": "{ tasks(first: 3) { nodes { id } } }\x00"}
    if choice == 10:
        return {"query": "{" * 5000 + "}" * 5000}
    if choice == 11:
        ids = [f"a{i}" for i in range(20_000)]
        return {"query": "query($a: [ID!]) { tasks(filter: {agentIds: $a}) { totalCount } }",
                "variables": {"a": ids}}  # fmt: skip
    return {"query": PLAIN_QUERY}


def encode(payload: object, rng: random.Random) -> tuple[bytes, str]:
    """A payload as a body in one of the ways a body can be written."""
    text = json.dumps(payload, ensure_ascii=rng.random() < 0.5)
    way = rng.randrange(10)
    if way == 0:
        return text.encode("utf-16", "surrogatepass"), "utf-16"
    if way == 1:
        return text.encode("utf-8", "surrogatepass") + b"\xff\xfe\xc0", "invalid utf-8"
    if way == 2:
        return "\ufeff".encode() + text.encode("utf-8", "surrogatepass"), "utf-8 bom"
    if way == 3:
        return text.encode("latin-1", "replace"), "latin-1"
    if way == 4:
        return b"[" * 100_000 + b"]" * 100_000, "nested json"
    if way == 5:
        return text.encode("utf-8", "surrogatepass") + b" " * 300_000, "oversized body"
    return text.encode("utf-8", "surrogatepass"), "utf-8"


def query_string(payload: object, rng: random.Random) -> tuple[str, str]:
    """A payload as GET parameters, with names spelled as a decoder would still read them."""
    query = payload.get("query", PLAIN_QUERY) if isinstance(payload, dict) else PLAIN_QUERY
    name = rng.choice(["query", "%71uery", "qu%65ry", "QUERY", "query[]", "%2571uery", "q"])
    value = quote(str(query), safe="")
    extra = rng.choice(["", "&operationName=%7B%7D", "&variables=%7B", "&extensions=%7B%7D"])
    if rng.random() < 0.05:
        value += "A" * 100_000
    return f"{name}={value}{extra}", f"param {name}"


def raw_case(rng: random.Random, url_path: str | None = None) -> Raw:
    method = rng.choice(METHODS)
    path = url_path or rng.choice(PATHS)
    auth_label, auth_headers, keyed = rng.choice(AUTH_VARIANTS)
    headers = list(auth_headers)
    accept = rng.choice(ACCEPTS)
    if accept:
        headers.append((rng.choice(["Accept", "accept", "ACCEPT"]), accept))
    payload = documents(rng)
    label = f"{method} {path} [{auth_label}; accept {accept}]"
    if method in ("GET", "HEAD", "DELETE", "OPTIONS") or rng.random() < 0.1:
        query, how = query_string(payload, rng)
        head, body = request(method, f"{path}?{query}", headers)
        return Raw(f"{label} {how}", head, body, keyed)
    body, how = encode(payload, rng)
    content_type = rng.choice(
        [
            "application/json",
            "APPLICATION/JSON; charset=utf-8",
            "application/json; charset=latin-1",
            "application/graphql",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=xyz",
            "text/plain",
            "application/graphql-response+json",
            None,
            "image/png",
        ]
    )
    if content_type == "application/graphql":
        query = payload.get("query", "") if isinstance(payload, dict) else ""
        body = str(query).encode("utf-8", "surrogatepass")
    elif content_type == "application/x-www-form-urlencoded":
        body = query_string(payload, rng)[0].encode()
    elif content_type and content_type.startswith("multipart"):
        body = (
            b'--xyz\r\nContent-Disposition: form-data; name="operations"\r\n\r\n'
            + body
            + b"\r\n--xyz--\r\n"
        )
    if content_type:
        headers.append((rng.choice(["Content-Type", "content-type", "CONTENT-TYPE"]), content_type))
    if rng.random() < 0.05:
        headers.append(("Content-Encoding", "gzip"))
        body = gzip.compress(body) if rng.random() < 0.5 else body
        how += " gzip"
    if rng.random() < 0.03:
        headers.append(("X-Padding", "p" * 70_000))
        how += " huge header"
    if rng.random() < 0.05:
        headers.append(("Transfer-Encoding", "chunked"))
        chunked = b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n" if body else b"0\r\n\r\n"
        head, _ = request(method, path, headers, length=False)
        return Raw(f"{label} {content_type} {how} chunked", head, chunked, keyed)
    head, body = request(method, path, headers, body)
    return Raw(f"{label} {content_type} {how}", head, body, keyed)


def unauthenticated_variant(document: str, rng: random.Random) -> Raw:
    """A generated document sent without a valid key, over one of the transports."""
    auth_label, headers, _ = rng.choice([a for a in AUTH_VARIANTS if not a[2]])
    headers = [*headers, ("Accept", rng.choice(["text/html", "application/json", "*/*"]))]
    way = rng.randrange(6)
    encoded = quote(document, safe="")
    if way == 0:
        head, body = request("GET", f"/graphql?%71uery={encoded}", headers)
    elif way == 1:
        head, body = request("GET", f"/graphql?query={encoded}", headers)
    elif way == 2:
        form = [*headers, ("Content-Type", "application/x-www-form-urlencoded")]
        head, body = request("POST", "/graphql", form, f"query={encoded}".encode())
    elif way == 3:
        raw = [*headers, ("Content-Type", "application/graphql")]
        head, body = request("POST", "/graphql", raw, document.encode("utf-8", "surrogatepass"))
    elif way == 4:
        plain = [*headers, ("Content-Type", "text/plain")]
        head, body = request("POST", "/graphql", plain, json.dumps({"query": document}).encode())
    else:
        typed = [*headers, ("Content-Type", "application/json")]
        head, body = request("POST", "/graphql", typed, json.dumps({"query": document}).encode())
    return Raw(f"generated /graphql [{auth_label}; way {way}]", head, body, False)


def keyed_post(document: str) -> Raw:
    headers = [("Authorization", f"Bearer {KEY}"), ("Content-Type", "application/json")]
    body = json.dumps({"query": document}).encode("utf-8", "surrogatepass")
    head, body = request("POST", "/graphql", headers, body)
    return Raw(f"generated /graphql [key] {document[:120]!r}", head, body, True)


async def websocket_cases(url: str, rng: random.Random, count: int, tally: Tally) -> None:
    """Subscriptions over WebSocket without a valid key: no event may arrive."""
    import websockets

    ws_url = url.replace("http://", "ws://") + "/graphql"
    for _ in range(count):
        protocol = rng.choice(["graphql-transport-ws", "graphql-ws"])
        payload = rng.choice(
            [{}, {"Authorization": "Bearer wrong"}, {"authorization": KEY}, {"x-api-key": ""}]
        )
        label = f"WS /graphql [{protocol} {sorted(payload)}]"
        started = time.perf_counter()
        received = b""
        try:
            async with websockets.connect(ws_url, subprotocols=[protocol]) as socket:  # type: ignore[list-item]
                await socket.send(json.dumps({"type": "connection_init", "payload": payload}))
                start = "subscribe" if protocol == "graphql-transport-ws" else "start"
                message = {"id": "1", "type": start, "payload": {"query": SUBSCRIPTION}}
                await socket.send(json.dumps(message))
                with contextlib.suppress(TimeoutError):
                    while True:
                        frame = await asyncio.wait_for(socket.recv(), 2)
                        received += frame.encode() if isinstance(frame, str) else frame
            status = 101
        except websockets.InvalidStatus as exc:
            status = exc.response.status_code
        except websockets.ConnectionClosed:
            status = 101
        events = re.search(rb'"type"\s*:\s*"(next|data)"', received)
        answer = b'"data": {}' if events else received  # an event is data, whatever it holds
        tally.record(label, status, answer, time.perf_counter() - started, False)


async def run_all(url: str, cases: list[Raw], tally: Tally) -> None:
    queue = iter(cases)

    async def worker() -> None:
        for raw in queue:
            try:
                status, body, seconds = await send(url, raw)
            except OSError as exc:
                tally.no_answer.append(f"{raw.label}: {exc}")
                continue
            if status == 0:
                tally.no_answer.append(raw.label)
                continue
            tally.record(raw.label, status, body, seconds, raw.keyed)

    probing = asyncio.create_task(probe_health(url, tally))
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    probing.cancel()


async def probe_health(url: str, tally: Tally) -> None:
    """``/healthz`` every 0.1 s while the cases run: its slowest answer is how long the
    event loop was held (a request that blocks the loop delays every other one)."""
    async with httpx.AsyncClient(timeout=ANSWER_TIMEOUT) as client:
        while True:
            started = time.perf_counter()
            await client.get(f"{url}/healthz")
            tally.healthz_slowest = max(tally.healthz_slowest, time.perf_counter() - started)
            await asyncio.sleep(0.1)


def fuzz(cases: int, raw_count: int, seed: int) -> Tally:
    rng = random.Random(seed)
    tally = Tally()
    with sandbox_process(100) as sandbox, gateway(sandbox) as url:
        raw = [raw_case(rng) for _ in range(raw_count)]  # first: a bug here fails at once
        schema = served_schema(url)
        started = time.perf_counter()
        operations = generated(schema, cases, seed)
        seconds = time.perf_counter() - started
        print(f"fuzz: {len(operations)} operations generated in {seconds:.0f} s", flush=True)
        work = [keyed_post(d) for d in operations]
        work += [unauthenticated_variant(d, rng) for d in operations]
        work += raw
        rng.shuffle(work)
        asyncio.run(run_all(url, work, tally))
        asyncio.run(websocket_cases(url, rng, max(20, raw_count // 100), tally))
        tally.healthz_after = httpx.get(f"{url}/healthz", timeout=5).status_code
    tally.generated = len(operations)
    return tally


def report(tally: Tally) -> list[str]:
    ordered = sorted(tally.latencies)
    p50 = ordered[len(ordered) // 2] * 1000 if ordered else 0.0
    p99 = ordered[int(len(ordered) * 0.99)] * 1000 if ordered else 0.0
    lines = [
        f"fuzz: {tally.cases} cases ({tally.generated} generated operations, "
        "each sent with the key and without it over another transport; raw HTTP mutations; "
        "WebSocket handshakes)",
        f"fuzz: 5xx answers {len(tally.server_errors)} (target 0); answers with data to a "
        f"caller without a valid key {len(tally.leaks)} (target 0); answers repeating a key "
        f"{len(tally.secrets)} (target 0); INTERNAL_SERVER_ERROR codes {tally.internal}; "
        f"no answer {len(tally.no_answer)}",
        f"fuzz: slowest answer {tally.slowest[0] * 1000:.0f} ms ({tally.slowest[1]}); "
        f"p50 {p50:.1f} ms, p99 {p99:.1f} ms; slowest /healthz probe meanwhile "
        f"{tally.healthz_slowest * 1000:.0f} ms; /healthz after: {tally.healthz_after}",
        "fuzz: statuses " + ", ".join(f"{s}: {n}" for s, n in sorted(tally.statuses.items())),
    ]
    for title, found in (
        ("5xx", tally.server_errors),
        ("data without a key", tally.leaks),
        ("key repeated", tally.secrets),
        ("no answer", tally.no_answer),
    ):
        lines += [f"fuzz: {title}: {line}" for line in found[:5]]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fuzz", description=__doc__)
    parser.add_argument("--cases", type=int, default=10_000, help="generated operations")
    parser.add_argument("--raw", type=int, default=3_000, help="raw HTTP mutations")
    parser.add_argument("--seed", type=int, default=14)
    args = parser.parse_args(argv)
    tally = fuzz(args.cases, args.raw, args.seed)
    for line in report(tally):
        print(line, flush=True)
    return 0 if not (tally.server_errors or tally.leaks or tally.secrets) else 1


if __name__ == "__main__":
    raise SystemExit(main())
