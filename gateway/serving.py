"""Running ASGI apps under uvicorn: in the foreground (the CLI) or in a thread (tests, demo).

Binding the socket ourselves lets a caller ask for port 0 and learn the real port before
anything connects, so tests never race for a free port.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterable
from typing import Any

import uvicorn
from starlette.types import ASGIApp

DEFAULT_HOST = "127.0.0.1"
STOP_GRACE_SECONDS = 2.0


def bind_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on accepted sockets whose proto
    # says TCP; without it every response waits ~40 ms on Nagle and delayed ACKs.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def make_server(app: ASGIApp, **options: Any) -> uvicorn.Server:
    options.setdefault("log_level", "warning")
    options.setdefault("lifespan", "on")
    # The gateway writes its own request line; uvicorn's access log would otherwise still
    # build its arguments for every response (it only checks that some handler exists).
    options.setdefault("access_log", False)
    return uvicorn.Server(uvicorn.Config(app, **options))


class ServerThread:
    """An app served by uvicorn on its own thread and event loop, on a real socket.

    >>> with ServerThread(app) as server:
    ...     httpx.get(server.url + "/healthz")
    """

    def __init__(self, app: ASGIApp, host: str = DEFAULT_HOST, port: int = 0, **options: Any):
        self.socket = bind_socket(host, port)
        bound_host, bound_port = self.socket.getsockname()[:2]
        self.url = f"http://{bound_host}:{bound_port}"
        self.port: int = bound_port
        self.server = make_server(app, **options)
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._run, name=f"uvicorn:{bound_port}", daemon=True)

    def _run(self) -> None:
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self.server.serve(sockets=[self.socket]))
        self.loop.close()

    def start(self, timeout: float = 15.0) -> ServerThread:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"server on {self.url} did not start")
            time.sleep(0.01)
        return self

    def stop(self, timeout: float = 15.0, grace: float = STOP_GRACE_SECONDS) -> bool:
        """Stop the server; whether it stopped gracefully. One still waiting after ``grace``
        seconds for a connection its client never closed (an event stream, a WebSocket:
        uvicorn would wait for ever) is made to exit as a second Ctrl+C would, without
        the app's lifespan shutdown."""
        self.request_stop()
        graceful = self.wait(grace)
        if not graceful:
            self.server.force_exit = True
            self.wait(timeout)
        self.socket.close()
        return graceful

    def request_stop(self) -> None:
        """Ask the server to shut down, without waiting for it to."""
        self.server.should_exit = True

    def wait(self, timeout: float) -> bool:
        """Whether the server has stopped within ``timeout`` seconds."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def stop_all(servers: Iterable[ServerThread], timeout: float = 15.0) -> list[ServerThread]:
    """Stop many servers in the time of one; the ones that had to be forced
    (``ServerThread.stop``). uvicorn notices ``should_exit`` on its next 0.1 s tick and
    then waits 0.1 s more for connections to close: 50 gateways stopped one after another
    took 9-10 s, and 0.3 s when all are asked first."""
    servers = list(servers)
    for server in servers:
        server.request_stop()
    return [server for server in servers if not server.stop(timeout)]
