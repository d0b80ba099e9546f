"""A real HTTP backend for reactive consumers (Hypercorn on 127.0.0.1), shared by the tests and the fault run.

``POST /<any path>`` takes a batch: the body is kept (``calls``, with ``paths`` and ``headers``, unless
``keep`` is off) and ``reply`` decides the answer (200 when unset); ``GET /health`` answers 200, or 503
when not ``healthy``.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from hypercorn.asyncio import serve
from hypercorn.config import Config
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kafka_sidecar_testing.net import free_port

Reply = Callable[[dict[str, Any]], Awaitable[Response]]


@dataclass
class Backend:
    """A real HTTP backend. ``reply`` decides each answer; every request body is kept in ``calls``."""

    port: int = field(default_factory=free_port)
    reply: Reply | None = None
    healthy: bool = True
    calls: list[dict[str, Any]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    health_checks: int = 0
    keep: bool = True
    """Keep every request (``calls``, ``paths``, ``headers``); a long run that only counts in ``reply`` turns it off."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def records(self, path: str | None = None) -> list[dict[str, Any]]:
        return [r for p, call in zip(self.paths, self.calls, strict=True) if path in (None, p) for r in call["records"]]

    def offsets(self, path: str | None = None) -> dict[int, list[int]]:
        """Partition -> offsets in the order they were delivered (duplicates included)."""
        out: dict[int, list[int]] = {}
        for record in self.records(path):
            out.setdefault(record["partition"], []).append(record["offset"])
        return out

    def app(self) -> Starlette:
        async def deliver(request: Request) -> Response:
            body = json.loads(await request.body())
            if isinstance(body, list):  # request_format: java sends the bare record array
                body = {"records": body, "java": True}
            if self.keep:
                self.calls.append(body)
                self.paths.append(request.url.path)
                self.headers.append(dict(request.headers))
            if self.reply is None:
                return Response(status_code=200)
            return await self.reply(body)

        async def health(request: Request) -> Response:
            self.health_checks += 1
            return Response(status_code=200 if self.healthy else 503)

        return Starlette(
            routes=[
                Route("/health", health, methods=["GET"]),
                Route("/{path:path}", deliver, methods=["POST"]),
            ]
        )


@asynccontextmanager
async def serving(backend: Backend) -> AsyncIterator[Backend]:
    """Serve ``backend`` on 127.0.0.1 until the block ends."""
    config = Config()
    config.bind = [f"127.0.0.1:{backend.port}"]
    config.accesslog = None
    config.errorlog = None
    config.graceful_timeout = 0.5
    stop = asyncio.Event()
    task = asyncio.create_task(serve(backend.app(), config, shutdown_trigger=stop.wait))  # type: ignore[arg-type]
    try:
        await wait_for(lambda: _accepts(backend.port), 10, "backend to listen")
        yield backend
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


async def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``condition`` until true; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.05)  # polling a condition with a deadline
