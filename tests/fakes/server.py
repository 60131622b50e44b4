"""Run a fake outside-world server (a Starlette app) on a free local port."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import uvicorn
from starlette.responses import HTMLResponse, Response
from starlette.types import ASGIApp

BAD_GATEWAY_PAGE = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)


@dataclass
class FlakyGateway:
    """What a marketplace's front proxy does on a bad day: every answer takes ``latency``
    seconds and every ``fail_every``-th request gets nginx's HTML 502 page instead."""

    fail_every: int = 0
    latency: float = 0.0
    requests: int = 0
    failures: int = 0

    async def answer(self) -> Response | None:
        """Call first in a fake's handler: a 502 to send back, or None to answer normally."""
        self.requests += 1
        if self.latency:
            await asyncio.sleep(self.latency)
        if self.fail_every and self.requests % self.fail_every == 0:
            self.failures += 1
            return HTMLResponse(BAD_GATEWAY_PAGE, status_code=502)
        return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve(app: ASGIApp, port: int | None = None, lifespan: str = "off") -> Iterator[str]:
    """Serve ``app`` on 127.0.0.1 in a background thread; yield its base URL."""
    port = port or free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan=lifespan)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError(f"server on port {port} failed to start (see the log above)")
        if time.monotonic() > deadline:
            raise RuntimeError(f"fake server did not start on port {port}")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
