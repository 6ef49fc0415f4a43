"""``task-gateway serve | demo | sandbox | schema``."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from gateway.config import ConfigError, Settings, VendorConfig, load_settings
from gateway.core.records import Vendor
from gateway.serving import bind_socket, make_server

DEMO_PORT = 8000
SANDBOX_PORT = 9000
SHUTDOWN_GRACE_SECONDS = 25
"""On SIGTERM, in-flight requests get this long to finish (a request's own deadline is 15 s
by default) before the lifespan closes upstream clients; keep it under the orchestrator's
kill timeout (deploy/compose.yaml: stop_grace_period 30s)."""

EXAMPLE_QUERY = """\
# Every failed or running task of all four vendors, newest update first.
query RecentTasks {
  tasks(first: 20, filter: {statuses: [FAILED, RUNNING]}) {
    totalCount
    missingVendors
    nodes { vendor agentId status vendorStatus title summary updatedAt }
    pageInfo { hasNextPage endCursor }
  }
}
"""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="task-gateway", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the gateway against the configured vendors")
    _listen_options(serve, DEMO_PORT)
    serve.add_argument("--config", help="TOML settings file (default: $TASK_GATEWAY_CONFIG)")
    serve.add_argument("--workers", type=positive, default=1, help="uvicorn worker processes")

    demo = commands.add_parser("demo", help="run the sandbox and the gateway together")
    _listen_options(demo, DEMO_PORT)
    demo.add_argument("--sandbox-port", type=tcp_port, default=0, help="default: any free port")
    _sandbox_options(demo)

    sandbox = commands.add_parser("sandbox", help="run only the vendor simulators")
    _listen_options(sandbox, SANDBOX_PORT)
    _sandbox_options(sandbox)

    commands.add_parser("schema", help="print the GraphQL SDL")

    args = parser.parse_args(argv)
    try:
        if args.command == "schema":
            from gateway.graph.schema import print_sdl

            sys.stdout.write(print_sdl())
        elif args.command == "serve":
            return _serve(args)
        elif args.command == "demo":
            asyncio.run(_demo(args))
        elif args.command == "sandbox":
            asyncio.run(_sandbox(args))
    except ConfigError as exc:
        print(f"task-gateway: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a port in use, an address not ours: one line, no traceback
        print(f"task-gateway: {exc.strerror or exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


def _listen_options(parser: argparse.ArgumentParser, port: int) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=tcp_port, default=port, help=f"port (default {port})")


def tcp_port(text: str) -> int:
    """A TCP port, 0 (any free one) to 65535: argparse reports anything else in one line."""
    port = int(text)
    if not 0 <= port <= 65535:
        raise ValueError(text)
    return port


def positive(text: str) -> int:
    number = int(text)
    if number < 1:
        raise ValueError(text)
    return number


def _sandbox_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--size", type=int, default=300, help="tasks per vendor")
    parser.add_argument("--seed", type=int, default=7, help="data seed")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="added latency")
    parser.add_argument("--jitter-ms", type=float, default=0.0, help="added random latency")
    parser.add_argument("--error-rate", type=float, default=0.0, help="share of failed calls")
    parser.add_argument("--error-status", type=int, default=500, help="status of those")
    parser.add_argument(
        "--rate-limit-rate",
        type=float,
        default=0.0,
        help="share of calls answered 429 with Retry-After",
    )
    parser.add_argument(
        "--timeout-rate", type=float, default=0.0, help="share of calls never answered"
    )
    parser.add_argument(
        "--malformed-rate",
        type=float,
        default=0.0,
        help="share of calls answered with truncated JSON",
    )
    parser.add_argument(
        "--progress-seconds",
        type=float,
        default=None,
        help="move live tasks on (pending, running, completed) this often",
    )


def _make_sandbox(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from gateway.sandbox import Sandbox, SandboxOptions

    return Sandbox(
        SandboxOptions(
            size=args.size,
            seed=args.seed,
            latency_ms=args.latency_ms,
            jitter_ms=args.jitter_ms,
            error_rate=args.error_rate,
            error_status=args.error_status,
            rate_limit_rate=args.rate_limit_rate,
            timeout_rate=args.timeout_rate,
            malformed_rate=args.malformed_rate,
            progress_seconds=args.progress_seconds,
        )
    )


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from gateway.vendors.registry import connector_for

    settings = load_settings(args.config)  # fail fast, with one line, before forking workers
    for config in settings.enabled:
        warning = connector_for(config.vendor).startup_warning(config.base_url)
        if warning:
            print(f"task-gateway: warning: {warning}", file=sys.stderr)
    del settings
    if args.config:
        import os

        os.environ["TASK_GATEWAY_CONFIG"] = args.config
    uvicorn.run(
        "gateway.app:app_from_environment",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level="info",
        access_log=False,  # the gateway logs its own request line (see serving.make_server)
        proxy_headers=True,
        timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS,
    )
    return 0


def demo_settings(sandbox_url: str, sandbox: object) -> Settings:
    """Settings for the embedded sandbox: every vendor on, the sandbox's agents and keys."""
    from gateway.sandbox import SANDBOX_CREDENTIALS
    from gateway.vendors.registry import default_credentials

    vendors = {}
    for vendor in Vendor:
        secret = SANDBOX_CREDENTIALS.get(vendor)
        vendors[vendor] = VendorConfig(
            vendor=vendor,
            enabled=True,
            base_url=f"{sandbox_url}/{vendor.value}",
            credentials=default_credentials(vendor, secret) if secret else None,
            agents=tuple(sandbox.agents(vendor)),  # type: ignore[attr-defined]
        )
    return Settings(
        vendors=vendors, example_query=EXAMPLE_QUERY, open_access=True, rate_per_second=0
    )


async def _demo(args: argparse.Namespace) -> None:
    from gateway.app import create_app
    from gateway.observability.logging import setup_logging

    setup_logging()
    sandbox = _make_sandbox(args)
    sandbox_socket = bind_socket(args.host, args.sandbox_port)
    sandbox_url = "http://{}:{}".format(*sandbox_socket.getsockname()[:2])
    gateway_socket = bind_socket(args.host, args.port)
    app = create_app(demo_settings(sandbox_url, sandbox))
    sandbox_server = make_server(sandbox.app)
    gateway_server = make_server(app, log_level="info")
    print(f"sandbox:  {sandbox_url}/{_vendor_paths()}", flush=True)
    print(f"GraphiQL: http://{args.host}:{args.port}/graphql", flush=True)
    await asyncio.gather(
        sandbox_server.serve(sockets=[sandbox_socket]),
        gateway_server.serve(sockets=[gateway_socket]),
    )


async def _sandbox(args: argparse.Namespace) -> None:
    from gateway.sandbox.app import serve_sandbox

    sandbox = _make_sandbox(args)
    print(f"sandbox: http://{args.host}:{args.port}/{_vendor_paths()}", flush=True)
    await serve_sandbox(sandbox, args.host, args.port)


def _vendor_paths() -> str:
    """The sandbox's per-vendor paths in shell-brace style, one per ``Vendor`` value."""
    return "{" + ",".join(v.value for v in Vendor) + "}"


if __name__ == "__main__":
    raise SystemExit(main())
